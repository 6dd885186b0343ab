//! Onlining on a fake sysfs tree in a temporary directory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::*;

struct FakeSysfs(PathBuf);

impl FakeSysfs {
    /// `memoryN/state` for each (N, state), plus the files a real tree has
    /// that are not blocks.
    fn new(blocks: &[(u32, &str)]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ga-memory-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("block_size_bytes"), "8000000\n").unwrap();
        fs::write(dir.join("auto_online_blocks"), "offline\n").unwrap();
        fs::create_dir_all(dir.join("power")).unwrap();
        let fake = FakeSysfs(dir);
        for &(n, state) in blocks {
            fake.add(n, state);
        }
        fake
    }

    fn add(&self, n: u32, state: &str) {
        let d = self.0.join(format!("memory{n}"));
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("state"), format!("{state}\n")).unwrap();
    }

    fn state(&self, n: u32) -> String {
        fs::read_to_string(self.0.join(format!("memory{n}/state")))
            .unwrap()
            .trim()
            .to_string()
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[test]
fn test_online_type_values() {
    assert_eq!(OnlineType::parse("online"), Some(OnlineType::Online));
    assert_eq!(OnlineType::parse("movable"), Some(OnlineType::Movable));
    assert_eq!(OnlineType::parse("online_movable"), None);
    assert_eq!(OnlineType::default(), OnlineType::Movable);
    assert_eq!(OnlineType::Online.state_value(), "online");
    assert_eq!(OnlineType::Movable.state_value(), "online_movable");
}

#[test]
fn test_parse_block_name() {
    assert_eq!(parse_block_name("memory0"), Some(0));
    assert_eq!(parse_block_name("memory4095"), Some(4095));
    for bad in [
        "memory",
        "memoryx",
        "memory-1",
        "memory 1",
        "power",
        "block_size_bytes",
    ] {
        assert_eq!(parse_block_name(bad), None, "{bad}");
    }
    assert_eq!(parse_block_name("memory99999999999"), None);
}

#[test]
fn test_online_block_is_idempotent() {
    let sys = FakeSysfs::new(&[(0, "online"), (32, "offline")]);
    let o = Onliner::new(&sys.0, OnlineType::Online);
    assert_eq!(o.online_block(32).unwrap(), BlockOutcome::Onlined);
    assert_eq!(sys.state(32), "online");
    assert_eq!(o.online_block(32).unwrap(), BlockOutcome::AlreadyOnline);
    assert_eq!(o.online_block(0).unwrap(), BlockOutcome::AlreadyOnline);
    assert_eq!(sys.state(0), "online");
}

#[test]
fn test_movable_writes_online_movable() {
    let sys = FakeSysfs::new(&[(33, "offline")]);
    let o = Onliner::new(&sys.0, OnlineType::Movable);
    assert_eq!(o.online_block(33).unwrap(), BlockOutcome::Onlined);
    assert_eq!(sys.state(33), "online_movable");
}

#[test]
fn test_online_all_onlines_offline_blocks_only() {
    let sys = FakeSysfs::new(&[
        (0, "online"),
        (1, "online"),
        (32, "offline"),
        (33, "offline"),
        (34, "offline"),
    ]);
    let o = Onliner::new(&sys.0, OnlineType::Online);
    assert_eq!(o.list_blocks().unwrap(), vec![0, 1, 32, 33, 34]);
    let r = o.online_all().unwrap();
    assert_eq!(
        (r.onlined, r.already_online, r.offline, r.failed),
        (3, 2, 0, 0)
    );
    for n in [32, 33, 34] {
        assert_eq!(sys.state(n), "online");
    }
    let r = o.online_all().unwrap();
    assert_eq!((r.onlined, r.already_online), (0, 5));
}

#[test]
fn test_failures_are_reported_not_ignored() {
    let sys = FakeSysfs::new(&[(0, "online"), (5, "going-offline"), (6, "offline")]);
    // A block whose state cannot be read.
    fs::create_dir_all(sys.0.join("memory7/state")).unwrap();
    let o = Onliner::new(&sys.0, OnlineType::Online);
    let e = o.online_block(5).unwrap_err().to_string();
    assert!(e.contains("still \"going-offline\""), "{e}");
    assert!(matches!(
        o.online_block(7),
        Err(MemoryError::ReadState { .. })
    ));
    assert!(matches!(
        o.online_block(99),
        Err(MemoryError::ReadState { .. })
    ));
    let r = o.online_all().unwrap();
    assert_eq!((r.onlined, r.offline, r.failed), (1, 2, 2));
    let text = r.to_string();
    assert!(
        text.contains("memory5: ") && text.contains("memory7: read "),
        "{text}"
    );
    assert_eq!(sys.state(6), "online");
}

#[test]
fn test_report_keeps_a_bounded_number_of_failures() {
    let blocks: Vec<(u32, &str)> = (0..100).map(|n| (n, "going-offline")).collect();
    let sys = FakeSysfs::new(&blocks);
    let r = Onliner::new(&sys.0, OnlineType::Online)
        .online_all()
        .unwrap();
    assert_eq!(r.failed, 100);
    assert_eq!(r.failures.len(), MAX_REPORTED_FAILURES);
}

#[test]
fn test_missing_root_is_an_error() {
    let o = Onliner::new("/nonexistent/memory", OnlineType::Online);
    assert!(matches!(o.online_all(), Err(MemoryError::List { .. })));
}

#[test]
fn test_online_all_blocking_waits_for_stuck_blocks() {
    let sys = FakeSysfs::new(&[(0, "online"), (8, "going-offline")]);
    let o = Arc::new(Onliner::new(&sys.0, OnlineType::Online));
    // Times out while block 8 stays stuck, naming it.
    let e = o
        .online_all_blocking(Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(&e, MemoryError::Timeout { report, .. } if report.offline == 1));
    assert!(e.to_string().contains("memory8"), "{e}");
    // Succeeds once the block becomes offline (the kernel finished) and is onlined.
    let path = sys.0.join("memory8/state");
    let unstick = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        fs::write(path, "offline\n").unwrap();
    });
    let r = o.online_all_blocking(Duration::from_secs(10)).unwrap();
    unstick.join().unwrap();
    assert_eq!((r.onlined, r.offline), (1, 0));
    assert!(r.failed >= 1, "the stuck passes are counted: {r}");
    assert_eq!(sys.state(8), "online");
}

#[test]
fn test_parse_mem_total() {
    assert_eq!(
        parse_mem_total_kib("MemTotal:        2012345 kB\nMemFree: 1 kB\n"),
        Some(2_012_345)
    );
    assert_eq!(parse_mem_total_kib("MemFree: 1 kB\n"), None);
    assert!(mem_total_kib().is_some());
}

#[test]
fn test_online_all_covering_waits_for_blocks_to_appear() {
    const BLOCK: u64 = 128 << 20;
    // Boot RAM of 4 blocks; the host says 6 blocks' worth is plugged.
    let sys = FakeSysfs::new(&[(0, "online"), (1, "online"), (2, "online"), (3, "online")]);
    let o = Arc::new(Onliner::new(&sys.0, OnlineType::Online));
    // All present blocks are online, but they do not cover the total yet.
    let e = o
        .online_all_covering(6 * BLOCK, BLOCK, Duration::from_millis(50))
        .unwrap_err();
    assert!(matches!(e, MemoryError::Timeout { .. }), "{e}");
    // The kernel adds the two hot-plugged blocks later, offline.
    let root = sys.0.clone();
    let adder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(60));
        for n in [40, 41] {
            let d = root.join(format!("memory{n}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("state"), "offline\n").unwrap();
        }
    });
    let r = o
        .online_all_covering(6 * BLOCK, BLOCK, Duration::from_secs(10))
        .unwrap();
    adder.join().unwrap();
    assert_eq!((r.onlined, r.offline), (2, 0), "{r}");
    assert_eq!(
        (sys.state(40), sys.state(41)),
        ("online".into(), "online".into())
    );
    // Boot RAM that is not a whole number of blocks is covered by rounding up.
    assert!(o
        .online_all_covering(6 * BLOCK - (1 << 20), BLOCK, Duration::from_millis(10))
        .is_ok());
}

#[test]
fn test_blocks_cover() {
    assert!(blocks_cover(8, 128 << 20, 1 << 30));
    assert!(!blocks_cover(7, 128 << 20, 1 << 30));
    assert!(blocks_cover(u64::MAX, u64::MAX, u64::MAX));
    assert!(blocks_cover(0, 128 << 20, 0));
}
