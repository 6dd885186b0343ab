//! A container's rootfs from a CreateContainer request: the default image, a directory, or a
//! virtio-blk disk found by its serial (`/sys/block/vdX/serial`, the id the VMM gave it).
//!
//! [`requested_rootfs`] checks the request (pure); [`find_disk`] looks a serial up once under
//! a sysfs root (pure but for reading that tree); [`wait_for_disk`] polls it, since a disk
//! hot-added just before CreateContainer may show up a little later.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use protocol::agent::Rootfs;

use super::RpcError;
use crate::container::{RootfsSource, DEFAULT_IMAGE};

/// Where the kernel lists block devices.
pub const BLOCK_SYSFS: &str = "/sys/block";
/// Where their device nodes are (devtmpfs).
pub const DEV: &str = "/dev";
/// How long a disk may take to appear.
pub const DISK_WAIT: Duration = Duration::from_secs(5);
/// The longest serial virtio-blk carries (`VIRTIO_BLK_ID_BYTES`).
pub const MAX_SERIAL: usize = 20;
/// Filesystems a disk image may hold.
pub const DISK_FSTYPES: [&str; 2] = ["erofs", "ext4"];
const POLL: Duration = Duration::from_millis(50);

/// What the request asks for, checked but not yet looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedRootfs {
    Dir(PathBuf),
    Disk { serial: String, fstype: String },
}

fn invalid(field: &str, problem: impl std::fmt::Display) -> RpcError {
    RpcError::InvalidArgument(format!("{field}: {problem}"))
}

/// Checks `rootfs` (unset: the default image). Exactly one of `dir` and `block_serial`, or
/// neither; `fstype` (erofs or ext4) goes with `block_serial` only.
pub fn requested_rootfs(rootfs: Option<&Rootfs>) -> Result<RequestedRootfs, RpcError> {
    let default = Rootfs::new();
    let r = rootfs.unwrap_or(&default);
    match (r.dir.is_empty(), r.block_serial.is_empty()) {
        (false, false) => Err(invalid("rootfs", "set dir or block_serial, not both")),
        (dir_empty, true) => {
            if !r.fstype.is_empty() {
                return Err(invalid(
                    "rootfs.fstype",
                    "only goes with rootfs.block_serial",
                ));
            }
            if dir_empty {
                return Ok(RequestedRootfs::Dir(PathBuf::from(DEFAULT_IMAGE)));
            }
            if !r.dir.starts_with('/') {
                return Err(invalid(
                    "rootfs.dir",
                    format!("{:?} is not an absolute path", r.dir),
                ));
            }
            Ok(RequestedRootfs::Dir(PathBuf::from(&r.dir)))
        }
        (true, false) => {
            let serial = &r.block_serial;
            if serial.len() > MAX_SERIAL || serial.contains(['/', '\0']) {
                return Err(invalid(
                    "rootfs.block_serial",
                    format!("{serial:?} must be at most {MAX_SERIAL} bytes without '/' or NUL"),
                ));
            }
            if !DISK_FSTYPES.contains(&r.fstype.as_str()) {
                return Err(invalid(
                    "rootfs.fstype",
                    format!("{:?} is not erofs or ext4", r.fstype),
                ));
            }
            Ok(RequestedRootfs::Disk {
                serial: serial.clone(),
                fstype: r.fstype.clone(),
            })
        }
    }
}

/// The name (`vdb`) of the virtio-blk disk under `sys_block` whose `serial` file holds
/// `serial`, if one does. Only `vd*` entries are looked at; one whose serial cannot be read
/// is skipped.
pub fn find_disk(sys_block: &Path, serial: &str) -> io::Result<Option<String>> {
    let mut names: Vec<String> = fs::read_dir(sys_block)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("vd"))
        .collect();
    names.sort();
    for name in names {
        let Ok(text) = fs::read(sys_block.join(&name).join("serial")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&text);
        if text.trim_end_matches(['\n', '\0', ' ']) == serial {
            return Ok(Some(name));
        }
    }
    Ok(None)
}

/// The device node (`<dev>/vdb`) of the disk with `serial`, polling `sys_block` for up to
/// `timeout` until the disk and its node are there. NOT_FOUND after that.
pub fn wait_for_disk(
    sys_block: &Path,
    dev: &Path,
    serial: &str,
    timeout: Duration,
) -> Result<PathBuf, RpcError> {
    let start = Instant::now();
    loop {
        let found = find_disk(sys_block, serial)
            .map_err(RpcError::io(format!("list {}", sys_block.display())))?;
        if let Some(name) = found {
            let node = dev.join(&name);
            if node.exists() {
                return Ok(node);
            }
        }
        if start.elapsed() >= timeout {
            return Err(RpcError::NotFound(format!(
                "rootfs.block_serial: no virtio-blk disk with serial {serial:?} after {timeout:?}"
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The engine's rootfs source for a checked request, looking a disk up (and waiting for it).
pub fn resolve(
    requested: RequestedRootfs,
    sys_block: &Path,
    dev: &Path,
    timeout: Duration,
) -> Result<RootfsSource, RpcError> {
    match requested {
        RequestedRootfs::Dir(dir) => Ok(RootfsSource::Dir(dir)),
        RequestedRootfs::Disk { serial, fstype } => Ok(RootfsSource::Block {
            device: wait_for_disk(sys_block, dev, &serial, timeout)?,
            fstype,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::testutil::TempDir;
    use protocol::ttrpc::Code;

    fn rootfs(dir: &str, serial: &str, fstype: &str) -> Rootfs {
        let mut r = Rootfs::new();
        r.dir = dir.into();
        r.block_serial = serial.into();
        r.fstype = fstype.into();
        r
    }

    fn invalid_field(r: Rootfs) -> String {
        let e = requested_rootfs(Some(&r)).unwrap_err();
        assert_eq!(e.code(), Code::INVALID_ARGUMENT, "{e}");
        e.to_string()
    }

    #[test]
    fn test_unset_or_empty_is_the_default_image() {
        let default = RequestedRootfs::Dir(PathBuf::from(DEFAULT_IMAGE));
        assert_eq!(requested_rootfs(None).unwrap(), default);
        assert_eq!(requested_rootfs(Some(&Rootfs::new())).unwrap(), default);
    }

    #[test]
    fn test_dir_and_disk() {
        assert_eq!(
            requested_rootfs(Some(&rootfs("/images/alpine", "", ""))).unwrap(),
            RequestedRootfs::Dir(PathBuf::from("/images/alpine"))
        );
        assert_eq!(
            requested_rootfs(Some(&rootfs("", "rootfs-c1", "erofs"))).unwrap(),
            RequestedRootfs::Disk {
                serial: "rootfs-c1".into(),
                fstype: "erofs".into()
            }
        );
    }

    #[test]
    fn test_bad_requests_name_the_field() {
        let both = invalid_field(rootfs("/images/busybox", "s1", "ext4"));
        assert!(both.contains("not both"), "{both}");
        let fstype = invalid_field(rootfs("", "s1", "xfs"));
        assert!(fstype.contains("rootfs.fstype"), "{fstype}");
        let fstype = invalid_field(rootfs("", "s1", ""));
        assert!(fstype.contains("rootfs.fstype"), "{fstype}");
        let fstype = invalid_field(rootfs("/images/busybox", "", "ext4"));
        assert!(fstype.contains("rootfs.fstype"), "{fstype}");
        let fstype = invalid_field(rootfs("", "", "ext4"));
        assert!(fstype.contains("rootfs.fstype"), "{fstype}");
        let dir = invalid_field(rootfs("images/busybox", "", ""));
        assert!(dir.contains("rootfs.dir"), "{dir}");
        let serial = invalid_field(rootfs("", &"x".repeat(21), "ext4"));
        assert!(serial.contains("rootfs.block_serial"), "{serial}");
        let serial = invalid_field(rootfs("", "../vda", "ext4"));
        assert!(serial.contains("rootfs.block_serial"), "{serial}");
    }

    /// A fake `/sys/block` and `/dev`: `(name, serial)` disks, `None` for no serial file.
    fn fake(disks: &[(&str, Option<&str>)]) -> (TempDir, PathBuf, PathBuf) {
        let dir = TempDir::new("block");
        let sys = dir.path().join("sys-block");
        let dev = dir.path().join("dev");
        fs::create_dir_all(&dev).unwrap();
        for (name, serial) in disks {
            fs::create_dir_all(sys.join(name)).unwrap();
            if let Some(serial) = serial {
                fs::write(sys.join(name).join("serial"), serial).unwrap();
            }
            fs::write(dev.join(name), "").unwrap();
        }
        (dir, sys, dev)
    }

    #[test]
    fn test_find_disk_by_serial() {
        let (_dir, sys, _dev) = fake(&[
            ("loop0", Some("rootfs-c1")),
            ("vda", None),
            ("vdb", Some("data\n")),
            ("vdc", Some("rootfs-c1\n")),
        ]);
        assert_eq!(
            find_disk(&sys, "rootfs-c1").unwrap().as_deref(),
            Some("vdc")
        );
        assert_eq!(find_disk(&sys, "data").unwrap().as_deref(), Some("vdb"));
        assert_eq!(find_disk(&sys, "rootfs").unwrap(), None);
        assert!(find_disk(&sys.join("missing"), "data").is_err());
    }

    #[test]
    fn test_wait_for_disk_finds_a_late_disk_and_times_out() {
        let (_dir, sys, dev) = fake(&[("vda", Some("boot"))]);
        let (sys2, dev2) = (sys.clone(), dev.clone());
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            fs::create_dir_all(sys2.join("vdb")).unwrap();
            fs::write(sys2.join("vdb/serial"), "late").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            fs::write(dev2.join("vdb"), "").unwrap();
        });
        let node = wait_for_disk(&sys, &dev, "late", Duration::from_secs(5)).unwrap();
        late.join().unwrap();
        assert_eq!(node, dev.join("vdb"));

        let e = wait_for_disk(&sys, &dev, "never", Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.code(), Code::NOT_FOUND);
        assert!(e.to_string().contains("\"never\""), "{e}");
    }

    #[test]
    fn test_resolve() {
        let (_dir, sys, dev) = fake(&[("vda", Some("img"))]);
        let disk = RequestedRootfs::Disk {
            serial: "img".into(),
            fstype: "ext4".into(),
        };
        assert_eq!(
            resolve(disk, &sys, &dev, Duration::ZERO).unwrap(),
            RootfsSource::Block {
                device: dev.join("vda"),
                fstype: "ext4".into()
            }
        );
        let dir = RequestedRootfs::Dir(PathBuf::from("/x"));
        assert_eq!(
            resolve(dir, &sys, &dev, Duration::ZERO).unwrap(),
            RootfsSource::Dir(PathBuf::from("/x"))
        );
    }
}
