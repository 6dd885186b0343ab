use super::*;
use crate::container::testutil::TempDir;

fn fake(dir: &TempDir, online: &[u32], present: u32) -> CpuPaths {
    let sysfs = dir.path().join("cpu");
    for cpu in 0..present {
        let d = sysfs.join(format!("cpu{cpu}"));
        fs::create_dir_all(&d).unwrap();
        let state = if online.contains(&cpu) { "1" } else { "0" };
        fs::write(d.join("online"), state).unwrap();
    }
    fs::write(sysfs.join("online"), format_cpu_list(online)).unwrap();
    let cgroup_root = dir.path().join("cgroup");
    fs::create_dir_all(cgroup_root.join("sandbox/c1")).unwrap();
    fs::create_dir_all(cgroup_root.join("sandbox/c2")).unwrap();
    fs::write(cgroup_root.join("sandbox/cpuset.cpus"), "").unwrap();
    fs::write(cgroup_root.join("sandbox/c1/cpuset.cpus"), "1-3\n").unwrap();
    fs::write(cgroup_root.join("sandbox/c2/cpuset.cpus"), "0\n").unwrap();
    CpuPaths { sysfs, cgroup_root }
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap().trim().to_string()
}

#[test]
fn test_parse_and_format_cpu_lists() {
    assert_eq!(
        parse_cpu_list("0-3,5,7-8\n", 64),
        Some(vec![0, 1, 2, 3, 5, 7, 8])
    );
    assert_eq!(parse_cpu_list("", 64), Some(vec![]));
    assert_eq!(parse_cpu_list("3-1", 64), None);
    assert_eq!(parse_cpu_list("x", 64), None);
    // A hostile list cannot make it allocate past the limit.
    assert_eq!(parse_cpu_list("0-4294967295", MAX_CPUS), None);
    assert_eq!(format_cpu_list(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(format_cpu_list(&[]), "");
    assert_eq!(format_cpu_list(&[3]), "3");
}

#[test]
fn test_without_cpus_only_rewrites_lists_naming_them() {
    assert_eq!(without_cpus("1-3", &[3, 2]), Some("1".into()));
    assert_eq!(without_cpus("0", &[3]), None);
    assert_eq!(without_cpus("", &[3]), None);
    assert_eq!(without_cpus("3", &[3]), Some(String::new()));
    assert_eq!(without_cpus("garbage", &[3]), None);
}

#[test]
fn test_offline_from_drops_cpusets_then_offlines_highest_first() {
    let dir = TempDir::new("cpus-offline");
    let p = fake(&dir, &[0, 1, 2, 3], 4);
    let done = p.offline_from(1).unwrap();
    assert_eq!(done, vec![3, 2, 1]);
    for cpu in 1..4 {
        assert_eq!(read(&p.sysfs.join(format!("cpu{cpu}/online"))), "0");
    }
    assert_eq!(read(&p.sysfs.join("cpu0/online")), "1");
    // c1 named 1-3: now empty (the parent's set); c2 (CPU 0) and the sandbox untouched.
    assert_eq!(read(&p.cgroup_root.join("sandbox/c1/cpuset.cpus")), "");
    assert_eq!(read(&p.cgroup_root.join("sandbox/c2/cpuset.cpus")), "0");
    assert_eq!(read(&p.cgroup_root.join("sandbox/cpuset.cpus")), "");
}

#[test]
fn test_offline_of_a_missing_cpu_undoes_the_others() {
    let dir = TempDir::new("cpus-missing");
    // CPU 2 is listed online but its directory is gone.
    let p = fake(&dir, &[0, 1, 2, 3], 4);
    fs::remove_dir_all(p.sysfs.join("cpu2")).unwrap();
    let e = p.offline_from(1).unwrap_err();
    assert!(e.to_string().contains("CPU 2"), "{e}");
    assert_eq!(read(&p.sysfs.join("cpu3/online")), "1", "undone");
}

#[test]
fn test_wait_online_onlines_present_cpus_and_waits_for_the_count() {
    let dir = TempDir::new("cpus-online");
    let p = fake(&dir, &[0], 3);
    // The kernel's aggregate follows a little later.
    let online = p.sysfs.join("online");
    let kernel = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(30));
        fs::write(online, "0-2\n").unwrap();
    });
    assert_eq!(p.wait_online(3, Duration::from_secs(5)).unwrap(), 3);
    kernel.join().unwrap();
    assert_eq!(read(&p.sysfs.join("cpu1/online")), "1");
    assert_eq!(read(&p.sysfs.join("cpu2/online")), "1");
    let e = p.wait_online(4, Duration::from_millis(20)).unwrap_err();
    assert!(e.to_string().contains("only 3 of 4 CPUs online"), "{e}");
}
