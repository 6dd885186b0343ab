//! The base mounts of the guest: proc, sysfs, devtmpfs, devpts, `/dev/shm`, `/run`, cgroup2.
//!
//! Idempotent: a target that `/proc/self/mountinfo` already lists as a mount point is left as
//! it is (and a different filesystem type there is reported, not replaced). Missing mount-point
//! directories are created.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use nix::mount::{mount, MsFlags};

const MOUNTINFO_PATH: &str = "/proc/self/mountinfo";

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("create mount point {target}")]
    CreateDir {
        target: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("mount {fstype} on {target}")]
    Mount {
        target: &'static str,
        fstype: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// One filesystem to mount.
#[derive(Debug, Clone, Copy)]
pub struct MountSpec {
    pub source: &'static str,
    pub target: &'static str,
    pub fstype: &'static str,
    pub flags: MsFlags,
    pub data: Option<&'static str>,
}

const NOSUID_NODEV_NOEXEC: MsFlags = MsFlags::MS_NOSUID
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC);

/// The base mounts, in order: each target lies on a filesystem mounted before it.
pub const BASE_MOUNTS: [MountSpec; 7] = [
    MountSpec {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    MountSpec {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
    MountSpec {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    MountSpec {
        // Each devpts mount is its own instance; /dev/ptmx resolves to the `pts` next to it.
        source: "devpts",
        target: "/dev/pts",
        fstype: "devpts",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NOEXEC),
        data: Some("mode=0620,ptmxmode=0666"),
    },
    MountSpec {
        source: "shm",
        target: "/dev/shm",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777"),
    },
    MountSpec {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755"),
    },
    MountSpec {
        source: "cgroup2",
        target: "/sys/fs/cgroup",
        fstype: "cgroup2",
        flags: NOSUID_NODEV_NOEXEC,
        data: None,
    },
];

/// What happened to one mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountOutcome {
    Mounted,
    /// Already a mount point, holding this filesystem type.
    AlreadyMounted(String),
}

/// Mounts every spec in order, skipping targets that are already mount points.
pub fn mount_all(specs: &[MountSpec]) -> Result<Vec<(MountSpec, MountOutcome)>, MountError> {
    let mut report = Vec::with_capacity(specs.len());
    for spec in specs {
        // Before /proc is mounted there is no mount table: nothing is mounted yet.
        let table = fs::read_to_string(MOUNTINFO_PATH).unwrap_or_default();
        let outcome = match mounted_fstype(&table, spec.target) {
            Some(fstype) => MountOutcome::AlreadyMounted(fstype),
            None => {
                mount_one(spec)?;
                MountOutcome::Mounted
            }
        };
        report.push((*spec, outcome));
    }
    Ok(report)
}

fn mount_one(spec: &MountSpec) -> Result<(), MountError> {
    if !Path::new(spec.target).is_dir() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(spec.target)
            .map_err(|source| MountError::CreateDir {
                target: spec.target,
                source,
            })?;
    }
    mount(
        Some(spec.source),
        spec.target,
        Some(spec.fstype),
        spec.flags,
        spec.data,
    )
    .map_err(|source| MountError::Mount {
        target: spec.target,
        fstype: spec.fstype,
        source,
    })
}

/// If `target` is a mount point in the `/proc/self/mountinfo` text, the filesystem type of
/// the topmost mount there. Pure.
pub fn mounted_fstype(mountinfo: &str, target: &str) -> Option<String> {
    let target = target.trim_end_matches('/');
    let target = if target.is_empty() { "/" } else { target };
    // Later lines are mounted later: the last match is on top.
    mountinfo
        .lines()
        .rev()
        .filter_map(parse_mountinfo_line)
        .find(|(mount_point, _)| mount_point == target)
        .map(|(_, fstype)| fstype)
}

/// `(mount point, fstype)` of one mountinfo line:
/// `36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue`.
fn parse_mountinfo_line(line: &str) -> Option<(String, String)> {
    let mut fields = line.split(' ');
    let mount_point = fields.nth(4)?;
    // Optional fields end at a lone "-"; the filesystem type follows it.
    let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
    Some((unescape_octal(mount_point), unescape_octal(fstype)))
}

/// Undoes the kernel's `\ooo` escaping of space, tab, newline and backslash in mountinfo.
fn unescape_octal(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        match escape.and_then(|d| std::str::from_utf8(d).ok()) {
            Some(digits) => match u8::from_str_radix(digits, 8) {
                Ok(b) => {
                    out.push(b);
                    i += 4;
                }
                Err(_) => {
                    out.push(bytes[i]);
                    i += 1;
                }
            },
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_TABLE: &str = "\
1 1 0:2 / / rw - rootfs rootfs rw,size=241156k,nr_inodes=60289
2 1 0:19 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
3 1 0:20 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
4 1 0:5 / /dev rw,nosuid,relatime shared:2 master:1 - devtmpfs devtmpfs rw,size=1k,mode=755
5 3 0:21 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw
6 1 0:22 / /my\\040dir rw - tmpfs tmpfs rw
";

    #[test]
    fn test_mounted_fstype_finds_mount_points() {
        assert_eq!(
            mounted_fstype(GUEST_TABLE, "/proc").as_deref(),
            Some("proc")
        );
        assert_eq!(
            mounted_fstype(GUEST_TABLE, "/dev").as_deref(),
            Some("devtmpfs")
        );
        assert_eq!(
            mounted_fstype(GUEST_TABLE, "/sys/fs/cgroup/").as_deref(),
            Some("cgroup2")
        );
        assert_eq!(mounted_fstype(GUEST_TABLE, "/").as_deref(), Some("rootfs"));
    }

    #[test]
    fn test_mounted_fstype_not_a_mount_point() {
        assert_eq!(mounted_fstype(GUEST_TABLE, "/run"), None);
        assert_eq!(mounted_fstype(GUEST_TABLE, "/dev/pts"), None);
        assert_eq!(mounted_fstype(GUEST_TABLE, "/pro"), None);
        assert_eq!(mounted_fstype("", "/proc"), None);
    }

    #[test]
    fn test_mounted_fstype_unescapes_and_takes_topmost() {
        assert_eq!(
            mounted_fstype(GUEST_TABLE, "/my dir").as_deref(),
            Some("tmpfs")
        );
        let stacked = "1 1 0:2 / /run rw - tmpfs tmpfs rw\n7 1 0:30 / /run rw - ramfs none rw\n";
        assert_eq!(mounted_fstype(stacked, "/run").as_deref(), Some("ramfs"));
    }

    #[test]
    fn test_mounted_fstype_ignores_malformed_lines() {
        assert_eq!(mounted_fstype("garbage\n1 2 3 / /proc rw\n", "/proc"), None);
    }

    #[test]
    fn test_unescape_octal_leaves_plain_and_bad_escapes() {
        assert_eq!(unescape_octal("a\\134b"), "a\\b");
        assert_eq!(unescape_octal("a\\9xy"), "a\\9xy");
        assert_eq!(unescape_octal("end\\"), "end\\");
    }

    #[test]
    fn test_base_mounts_order_parents_first() {
        for (i, spec) in BASE_MOUNTS.iter().enumerate() {
            let parent = Path::new(spec.target).parent().and_then(Path::to_str);
            if let Some(parent) = parent.filter(|p| *p != "/") {
                let parent_pos = BASE_MOUNTS
                    .iter()
                    .position(|s| parent.starts_with(s.target));
                assert!(
                    parent_pos.is_some_and(|p| p < i),
                    "{} before its parent",
                    spec.target
                );
            }
        }
    }
}
