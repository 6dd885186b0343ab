//! The container engine's cgroup and namespace setup on this host, as root, without a VM.
//!
//! The guest mounts cgroup2 at /sys/fs/cgroup; this Debian host has cgroup v1 with a
//! cgroup2 hierarchy at /sys/fs/cgroup/unified. The engine takes its cgroup2 root as a
//! parameter, so these tests run it on a temporary cgroup under that hierarchy (which
//! offers no controllers here: resource files are missing, and the tests check that this
//! is a clear error). They fail, saying why, when they are not root or there is no cgroup2.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use guest_agent::container::cgroup::{CgroupError, CgroupTree};
use guest_agent::container::namespaces::{create_pod_namespaces, NsKind};
use guest_agent::container::spec::Resources;

/// The host's cgroup2 hierarchy: the guest's place, or the hybrid host's.
fn cgroup2_root() -> PathBuf {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests need root (cgroups, unshare)"
    );
    for dir in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        if Path::new(dir).join("cgroup.procs").exists()
            && Path::new(dir).join("cgroup.subtree_control").exists()
        {
            return PathBuf::from(dir);
        }
    }
    panic!("no cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup");
}

/// A temporary cgroup under the host's cgroup2 root, removed (with what is under it) on
/// drop.
struct TempCgroup(PathBuf);

impl TempCgroup {
    fn new(name: &str) -> Self {
        let path = cgroup2_root().join(format!("host-vmm-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&path);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for TempCgroup {
    fn drop(&mut self) {
        // Children first (the sandbox and its containers).
        for _ in 0..3 {
            if let Ok(entries) = walk_dirs(&self.0) {
                for dir in entries.iter().rev() {
                    let _ = std::fs::remove_dir(dir);
                }
            }
        }
        let _ = std::fs::remove_dir(&self.0);
    }
}

fn walk_dirs(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            out.push(entry.path());
            out.extend(walk_dirs(&entry.path())?);
        }
    }
    Ok(out)
}

struct Sleeper(Child);

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn test_sandbox_and_container_cgroups_on_real_cgroup2() {
    let tmp = TempCgroup::new("cg");
    let tree = CgroupTree::new(&tmp.0);
    // The sandbox cgroup, then a container's under it.
    let failures = tree.create_sandbox().expect("create the sandbox cgroup");
    assert!(failures.is_empty(), "controller failures: {failures:?}");
    assert!(tree.sandbox_path().is_dir());
    let cg = tree
        .create_container("c1")
        .expect("create the container cgroup");
    assert!(cg.path().starts_with(tree.sandbox_path()));
    assert!(
        matches!(tree.create_container("c1"), Err(CgroupError::Exists { .. })),
        "a second container with the same id is refused"
    );

    // A process moves in, is listed, and cgroup-wide SIGKILL takes it.
    let sleeper = Sleeper(
        Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep"),
    );
    let pid = i32::try_from(sleeper.0.id()).expect("pid");
    cg.add_process(pid)
        .expect("move the process into the cgroup");
    assert_eq!(cg.processes().expect("cgroup.procs"), vec![pid]);
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("/proc/PID/cgroup");
    assert!(own.contains("/host-vmm-test-cg-"), "{own}");
    let stats = cg.stats().expect("stats of a live cgroup");
    assert_eq!(
        stats.pids_current, 0,
        "no pids controller here: reads as zero"
    );
    cg.signal_all(libc::SIGKILL).expect("kill the cgroup");
    let mut sleeper = sleeper;
    let status = sleeper.0.wait().expect("wait sleep");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );

    // Resource files this hierarchy lacks give an error naming the file.
    let resources: Resources =
        serde_json::from_str(r#"{"memory": {"limit": 67108864}}"#).expect("resources JSON");
    match cg.apply(&resources, "linux.resources") {
        Err(e) => assert!(format!("{e}").contains("memory.max"), "{e}"),
        Ok(()) => {
            // A cgroup2 host with the memory controller: the limit is really there.
            let max = std::fs::read_to_string(cg.path().join("memory.max")).expect("memory.max");
            assert_eq!(max.trim(), "67108864");
        }
    }

    // Empty now: both cgroups go, and nothing is left.
    cg.remove(Duration::from_secs(5))
        .expect("remove the container cgroup");
    assert!(!cg.path().exists());
    tree.remove_sandbox().expect("remove the sandbox cgroup");
    assert!(!tree.sandbox_path().exists());
}

#[test]
fn test_a_busy_cgroup_is_not_removed() {
    let tmp = TempCgroup::new("busy");
    let tree = CgroupTree::new(&tmp.0);
    tree.create_sandbox().expect("create the sandbox cgroup");
    let cg = tree
        .create_container("busy")
        .expect("create the container cgroup");
    let sleeper = Sleeper(
        Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep"),
    );
    cg.add_process(i32::try_from(sleeper.0.id()).expect("pid"))
        .expect("move the process in");
    let e = cg
        .remove(Duration::from_millis(50))
        .expect_err("a cgroup with a process cannot be removed");
    assert!(format!("{e}").contains("remove cgroup"), "{e}");
    drop(sleeper);
    cg.remove(Duration::from_secs(5))
        .expect("removed once empty");
}

fn ns_inode(path: &str) -> String {
    std::fs::read_link(path)
        .unwrap_or_else(|e| panic!("readlink {path}: {e}"))
        .display()
        .to_string()
}

#[test]
fn test_pod_namespaces_are_new_with_loopback_up() {
    let _root = cgroup2_root(); // root check
    let pod = create_pod_namespaces().expect("create the pod's net and ipc namespaces");
    assert_eq!((pod.net.kind, pod.ipc.kind), (NsKind::Net, NsKind::Ipc));
    // Join them in a thread of our own and look around.
    let (net, ipc, net_dev) = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&pod.net.fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns net");
            nix::sched::setns(&pod.ipc.fd, nix::sched::CloneFlags::CLONE_NEWIPC)
                .expect("setns ipc");
            let dev =
                std::fs::read_to_string("/proc/thread-self/net/dev").expect("net/dev in the pod");
            (
                ns_inode("/proc/thread-self/ns/net"),
                ns_inode("/proc/thread-self/ns/ipc"),
                dev,
            )
        })
        .join()
        .expect("namespace thread")
    });
    assert_ne!(
        net,
        ns_inode("/proc/self/ns/net"),
        "a network namespace of its own"
    );
    assert_ne!(
        ipc,
        ns_inode("/proc/self/ns/ipc"),
        "an ipc namespace of its own"
    );
    // Only loopback in the new network namespace.
    let ifaces: Vec<&str> = net_dev
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(ifaces, ["lo"], "{net_dev}");
    // lo is up: binding 127.0.0.1 in the pod works only then.
    let up = std::thread::scope(|s| {
        s.spawn(|| {
            nix::sched::setns(&pod.net.fd, nix::sched::CloneFlags::CLONE_NEWNET)
                .expect("setns net");
            std::net::UdpSocket::bind("127.0.0.1:0").is_ok()
        })
        .join()
        .expect("namespace thread")
    });
    assert!(up, "lo is not up in the pod's network namespace");
}
