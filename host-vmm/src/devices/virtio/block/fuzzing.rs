//! The `block_queues` fuzz harness (cargo-fuzz target in `host-vmm/fuzz`,
//! and the stable `fuzz_smoke` test): a hostile guest posts arbitrary
//! descriptor chains (any address, length, direction, next index) with
//! request headers near the interesting values (every type, sectors
//! around the end of the disk and u64::MAX), corrupts the available
//! index, and the device's worker is driven synchronously.
//!
//! Checked after each run: the disk file kept its size, and a read-only
//! disk kept its contents.

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::tempfile::TempFile;

use super::io::Disk;
use super::request::HEADER_SIZE;
use super::worker::BlockWorker;
use crate::devices::virtio::fuzzing::{self, addr, Input, QSIZE};
use crate::devices::virtio::{DeviceQueues, VirtioInterrupt, VIRTIO_F_VERSION_1};
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// Where the request queue's rings are.
const RING: u64 = 0x1000;
/// Disk: 128 sectors.
const DISK_BYTES: usize = 64 * 1024;

/// What a [`block_queues`] run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Chains returned.
    pub used: usize,
    /// Requests that succeeded.
    pub ok: usize,
}

fn ring_addrs() -> (u64, u64, u64) {
    fuzzing::ring_addrs(RING)
}

fn len(inp: &mut Input) -> u32 {
    match inp.u8() % 6 {
        0 => inp.u32(),
        1 => HEADER_SIZE as u32,
        2 => 1,
        3 => 512 * u32::from(1 + inp.u8() % 16),
        _ => u32::from(inp.u16() % 0x2000),
    }
}

fn header(inp: &mut Input) -> [u8; HEADER_SIZE] {
    let type_ = match inp.u8() % 8 {
        0 | 1 => 0, // IN
        2 | 3 => 1, // OUT
        4 => 4,     // FLUSH
        5 => 8,     // GET_ID
        6 => 11,    // DISCARD (unsupported)
        _ => inp.u32(),
    };
    let capacity = (DISK_BYTES / 512) as u64;
    let sector = match inp.u8() % 6 {
        0 => inp.u64(),
        1 => u64::MAX - u64::from(inp.u8()),
        2 => capacity - u64::from(inp.u8() % 4),
        _ => u64::from(inp.u8()) % capacity,
    };
    let mut h = [0u8; HEADER_SIZE];
    h[0..4].copy_from_slice(&type_.to_le_bytes());
    h[8..16].copy_from_slice(&sector.to_le_bytes());
    h
}

struct Harness {
    mem: GuestMemoryMmap,
    worker: BlockWorker,
    file: TempFile,
    /// (next avail index, next free descriptor).
    avail_idx: u16,
    next_desc: u16,
}

impl Harness {
    fn new(read_only: bool, pattern: &[u8]) -> Option<Self> {
        let mem = fuzzing::guest_ram()?;
        let file = TempFile::new().ok()?;
        std::fs::write(file.as_path(), pattern).ok()?;
        let disk = Disk::open(file.as_path(), read_only, "fuzz").ok()?;
        let q = fuzzing::ready_queue(RING)?;
        let dq = DeviceQueues {
            mem: GuestMemoryAtomic::new(mem.clone()),
            queues: vec![q],
            queue_evts: vec![EventFd::new(libc::EFD_NONBLOCK).ok()?],
            interrupt: Arc::new(VirtioInterrupt::new().ok()?),
            acked_features: VIRTIO_F_VERSION_1,
        };
        let kill = EventFd::new(libc::EFD_NONBLOCK).ok()?;
        let worker = BlockWorker::new(dq, kill, Arc::new(disk)).ok()?;
        Some(Self {
            mem,
            worker,
            file,
            avail_idx: 0,
            next_desc: 0,
        })
    }

    fn post_chain(&mut self, inp: &mut Input) {
        let n = 1 + inp.u8() % 5;
        let head = self.next_desc % QSIZE;
        for i in 0..n {
            let idx = (head + u16::from(i)) % QSIZE;
            let a = addr(inp);
            let l = len(inp);
            let f = inp.u8();
            // Header first (readable), then mostly writable buffers for
            // reads, readable for writes: let the input flip any of it.
            let mut flags = u16::from(f & 4); // INDIRECT sometimes
            if (i > 0 && i + 1 == n) != (f & 2 != 0) {
                flags |= 2;
            }
            let last = i + 1 == n;
            let next = if f & 8 != 0 {
                u16::from(inp.u8() % 20)
            } else {
                (idx + 1) % QSIZE
            };
            if !last || f & 16 != 0 {
                flags |= 1;
            }
            let mut raw = [0u8; 16];
            raw[0..8].copy_from_slice(&a.to_le_bytes());
            raw[8..12].copy_from_slice(&l.to_le_bytes());
            raw[12..14].copy_from_slice(&flags.to_le_bytes());
            raw[14..16].copy_from_slice(&next.to_le_bytes());
            let _ = self
                .mem
                .write_slice(&raw, GuestAddress(RING + 16 * u64::from(idx)));
            if i == 0 {
                let h = header(inp);
                let _ = self.mem.write_slice(&h, GuestAddress(a));
            }
        }
        self.next_desc = head + u16::from(n);
        let published = if inp.u8() % 8 == 0 {
            u16::from(inp.u8())
        } else {
            head
        };
        let (_, avail, _) = ring_addrs();
        let slot = avail + 4 + 2 * u64::from(self.avail_idx % QSIZE);
        let _ = self.mem.write_obj(published, GuestAddress(slot));
        self.avail_idx = self.avail_idx.wrapping_add(1);
        let _ = self.mem.write_obj(self.avail_idx, GuestAddress(avail + 2));
    }
}

/// Drive the block device with arbitrary queue contents. See the module
/// documentation.
pub fn block_queues(data: &[u8]) -> BlockOutcome {
    let mut out = BlockOutcome::default();
    let mut inp = Input::new(data);
    let read_only = inp.u8() & 1 == 1;
    let pattern: Vec<u8> = (0..DISK_BYTES).map(|i| (i / 512) as u8).collect();
    let Some(mut h) = Harness::new(read_only, &pattern) else {
        return out;
    };
    for _ in 0..48 {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 8 {
            0..=5 => h.post_chain(&mut inp),
            6 => {
                let v = inp.u16();
                let (_, avail, _) = ring_addrs();
                let _ = h.mem.write_obj(v, GuestAddress(avail + 2));
            }
            _ => {
                // A head the guest never wrote a chain for.
                let head = inp.u16();
                let (_, avail, _) = ring_addrs();
                let slot = avail + 4 + 2 * u64::from(h.avail_idx % QSIZE);
                let _ = h.mem.write_obj(head, GuestAddress(slot));
                h.avail_idx = h.avail_idx.wrapping_add(1);
                let _ = h.mem.write_obj(h.avail_idx, GuestAddress(avail + 2));
            }
        }
        let p = h.worker.process_queue();
        out.used += p.used;
        out.ok += p.ok;
    }
    let after = std::fs::read(h.file.as_path()).unwrap_or_default();
    assert_eq!(after.len(), DISK_BYTES, "the disk changed size");
    if read_only {
        assert!(after == pattern, "a read-only disk was written");
    }
    out
}
