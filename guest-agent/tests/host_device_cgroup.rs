//! The device program on this host's cgroup2 hierarchy, as root, without a VM: built from the
//! default rules, loaded and attached to a temporary cgroup, then a shell moved into that
//! cgroup tries real device opens. They fail, saying why, when not root or without cgroup2.

use std::path::{Path, PathBuf};
use std::process::Command;

use guest_agent::container::devices::{container_rules, install};
use guest_agent::container::spec::DeviceCgroupRule;

fn cgroup2_root() -> PathBuf {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root (cgroups, bpf)"
    );
    for dir in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        if Path::new(dir).join("cgroup.procs").exists() {
            return PathBuf::from(dir);
        }
    }
    panic!("no cgroup2 hierarchy at /sys/fs/cgroup/unified or /sys/fs/cgroup");
}

struct TempCgroup(PathBuf);

impl Drop for TempCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.0).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Runs `script` in `sh` inside `cgroup` (the shell moves itself in first); returns its
/// status and stderr.
fn sh_in(cgroup: Option<&Path>, script: &str) -> (bool, String) {
    let enter = match cgroup {
        Some(cg) => format!("echo $$ > {}/cgroup.procs || exit 99; ", cg.display()),
        None => String::new(),
    };
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("{enter}{script}"))
        .output()
        .expect("run sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_device_program_allows_the_list_and_refuses_the_rest() {
    let cg =
        TempCgroup(cgroup2_root().join(format!("host-vmm-test-devices-{}", std::process::id())));
    std::fs::create_dir(&cg.0).unwrap();
    let tmp = std::env::temp_dir().join(format!("host-vmm-test-devnodes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir(&tmp).unwrap();
    // Control: outside the cgroup, /dev/kmsg (1:11, not on the list) opens.
    let (ok, err) = sh_in(None, "head -c 0 /dev/kmsg");
    assert!(ok, "control open of /dev/kmsg failed: {err}");

    install(&container_rules(&[], &[]).unwrap(), &cg.0).unwrap();
    let (ok, err) = sh_in(
        Some(&cg.0),
        "head -c 1 /dev/zero >/dev/null && echo x >/dev/null",
    );
    assert!(ok, "allowed devices refused: {err}");
    let (ok, err) = sh_in(Some(&cg.0), "head -c 0 /dev/kmsg");
    assert!(!ok, "/dev/kmsg opened inside the cgroup");
    assert!(err.contains("Operation not permitted"), "{err}");
    // mknod is allowed (as runc does); opening the node made is not.
    let node = tmp.join("kmsg");
    let (ok, err) = sh_in(
        Some(&cg.0),
        &format!("mknod {0} c 1 11 && head -c 0 {0}", node.display()),
    );
    assert!(node.exists(), "mknod refused: {err}");
    assert!(!ok && err.contains("Operation not permitted"), "{err}");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn test_device_program_honours_spec_rules() {
    let cg =
        TempCgroup(cgroup2_root().join(format!("host-vmm-test-devices2-{}", std::process::id())));
    std::fs::create_dir(&cg.0).unwrap();
    // Allow reading 1:11 only.
    let rules = container_rules(
        &[DeviceCgroupRule {
            allow: true,
            kind: Some("c".into()),
            major: Some(1),
            minor: Some(11),
            access: Some("r".into()),
        }],
        &[],
    )
    .unwrap();
    install(&rules, &cg.0).unwrap();
    let (ok, err) = sh_in(Some(&cg.0), "head -c 0 /dev/kmsg");
    assert!(ok, "read of an allowed device refused: {err}");
    let (ok, err) = sh_in(Some(&cg.0), "echo x > /dev/kmsg");
    assert!(
        !ok && err.contains("Operation not permitted"),
        "write allowed: {err}"
    );
}
