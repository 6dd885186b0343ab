//! The fuzz harnesses on stable: every seed in `host-vmm/fuzz/corpus/`
//! plus pseudo-random inputs from a fixed seed, within a time budget.
//! `FUZZ_SMOKE_SECS` (default 2) sets the budget per harness and
//! `FUZZ_SMOKE_SEED` the seed, to explore further than `cargo test` does.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::fuzzing;

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % max;
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub(crate) fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "empty seed corpus {}", dir.display());
    out
}

/// Run `harness` on the corpus, then on random inputs until the budget
/// is spent (at least `min_random` of them). Returns the count.
pub(crate) fn smoke(target: &str, harness: fn(&[u8]), max_len: usize, min_random: usize) -> usize {
    for (path, data) in corpus(target) {
        let r = std::panic::catch_unwind(|| harness(&data));
        assert!(r.is_ok(), "{target}: seed {} panicked", path.display());
    }
    let budget = Duration::from_secs(env_u64("FUZZ_SMOKE_SECS", 2));
    let seed = env_u64("FUZZ_SMOKE_SEED", 0x5eed_1234_abcd_0001);
    let mut rng = Rng(seed | 1);
    let start = Instant::now();
    let mut n = 0;
    while n < min_random || start.elapsed() < budget {
        let input = rng.bytes(max_len);
        let r = std::panic::catch_unwind(|| harness(&input));
        assert!(
            r.is_ok(),
            "{target}: input #{n} (seed {seed:#x}) panicked: {input:02x?}"
        );
        n += 1;
    }
    n
}

fn vsock(data: &[u8]) {
    fuzzing::vsock_queues(data);
}

#[test]
fn test_fuzz_smoke_vsock_queues() {
    let n = smoke("vsock_queues", vsock, 2048, 50);
    eprintln!("vsock_queues: {n} random inputs");
}

#[test]
fn test_fuzz_smoke_mmio_registers() {
    let n = smoke("mmio_registers", fuzzing::mmio_registers, 1024, 500);
    eprintln!("mmio_registers: {n} random inputs");
}

/// The seeds reach the connection logic, not just the parsers.
#[test]
fn test_fuzz_seeds_reach_connections() {
    let seed = |name: &str| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/vsock_queues")
            .join(name);
        fuzzing::vsock_queues(&std::fs::read(p).unwrap())
    };
    let o = seed("request_5000");
    assert_eq!((o.connections, o.tx_used), (1, 1), "{o:?}");
    assert!(o.rx_used >= 1, "RESPONSE delivered: {o:?}");
    let o = seed("request_then_data");
    assert_eq!(o.connections, 1, "{o:?}");
    let o = seed("host_connect_then_response");
    assert_eq!(o.connections, 1, "{o:?}");
    assert!(o.rx_used >= 1, "REQUEST delivered: {o:?}");
    let o = seed("rw_unknown_connection");
    assert_eq!((o.connections, o.rx_used), (0, 1), "RST delivered: {o:?}");
}

#[test]
fn test_fuzz_smoke_block_queues() {
    let n = smoke(
        "block_queues",
        |d| {
            super::block::fuzzing::block_queues(d);
        },
        2048,
        50,
    );
    eprintln!("block_queues: {n} random inputs");
}

/// The block seeds reach the disk, not just the parsers.
#[test]
fn test_fuzz_block_seeds_reach_io() {
    let seed = |name: &str| {
        let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/block_queues")
            .join(name);
        super::block::fuzzing::block_queues(&std::fs::read(p).unwrap())
    };
    let o = seed("read_ok");
    assert_eq!((o.used, o.ok), (1, 1), "{o:?}");
    let o = seed("write_ok");
    assert_eq!((o.used, o.ok), (2, 2), "{o:?}");
    let o = seed("write_read_only");
    assert_eq!((o.used, o.ok), (1, 0), "{o:?}");
    let o = seed("flush_and_get_id");
    assert_eq!((o.used, o.ok), (2, 2), "{o:?}");
    let o = seed("read_past_end");
    assert_eq!((o.used, o.ok), (1, 0), "{o:?}");
}
