//! Checks the guest initramfs that `make rootfs` (rootfs/build.sh) writes: `/init` is the
//! static guest-agent with mode 0755, the mount points exist, and `dev/console` is there.
//!
//! Fails, never skips, when the archive is missing. Override the path with ROOTFS_INITRAMFS.

mod support;

use std::path::PathBuf;

use support::cpio::{self, Entry, S_IFCHR, S_IFDIR, S_IFREG};
use support::elf;

fn workspace_target() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target")
}

fn read_archive() -> Vec<u8> {
    let path = std::env::var_os("ROOTFS_INITRAMFS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_target().join("rootfs/initramfs.cpio"));
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the initramfs {}: {e}; run `make rootfs` first",
            path.display()
        )
    })
}

fn find<'a>(entries: &'a [Entry<'a>], name: &str) -> &'a Entry<'a> {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("initramfs has no {name}"))
}

#[test]
fn test_initramfs_init_is_static_agent_with_mode_0755() {
    let archive = read_archive();
    let entries = cpio::parse(&archive).expect("initramfs is not a valid cpio newc archive");
    let init = find(&entries, "init");
    assert_eq!(init.file_type(), S_IFREG, "/init is not a regular file");
    assert_eq!(
        init.permissions(),
        0o755,
        "/init mode {:o}",
        init.permissions()
    );
    assert_eq!((init.uid, init.gid), (0, 0), "/init not owned by root");

    let facts = elf::facts(init.data).expect("/init is not an ELF64 executable");
    assert!(
        [elf::EM_X86_64, elf::EM_AARCH64].contains(&facts.machine),
        "/init machine {}",
        facts.machine
    );
    assert!(!facts.has_interp, "/init has PT_INTERP: not static");
    assert_eq!(facts.needed_count, 0, "/init needs shared libraries");

    // Stale archive: the agent was rebuilt since `make rootfs`.
    let agent = workspace_target().join("x86_64-unknown-linux-gnu/agent/guest-agent");
    if let Ok(built) = std::fs::read(&agent) {
        assert!(
            built == init.data,
            "/init differs from {}: run `make rootfs` again",
            agent.display()
        );
    }
}

#[test]
fn test_initramfs_has_mount_points_and_console() {
    let archive = read_archive();
    let entries = cpio::parse(&archive).expect("initramfs is not a valid cpio newc archive");
    for dir in ["proc", "sys", "dev", "run", "tmp"] {
        assert_eq!(
            find(&entries, dir).file_type(),
            S_IFDIR,
            "{dir} not a directory"
        );
    }
    let console = find(&entries, "dev/console");
    assert_eq!(
        console.file_type(),
        S_IFCHR,
        "dev/console not a char device"
    );
    assert_eq!((console.rdev_major, console.rdev_minor), (5, 1));
}
