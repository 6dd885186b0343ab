//! A container's rootfs from a CreateContainer request: the default image, a directory, or a
//! virtio-blk disk found by its serial (`/sys/block/vdX/serial`, the id the VMM gave it).
//!
//! [`requested_rootfs`] checks the request (pure); [`find_disk`] looks a serial up once under
//! a sysfs root (pure but for reading that tree) and refuses a serial two disks carry;
//! [`wait_for_disk`] polls it, since a disk hot-added just before CreateContainer may show up
//! a little later, binding reused hot slots ([`bind_present_slots`]); [`release_disk`] lets
//! go of a removed container's disk so the VMM can free its slot.

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

/// Checks a serial as `field`: at most [`MAX_SERIAL`] bytes, no '/' or NUL (it is looked up
/// under sysfs).
pub fn check_serial(field: &str, serial: &str) -> Result<(), RpcError> {
    if serial.is_empty() || serial.len() > MAX_SERIAL || serial.contains(['/', '\0']) {
        return Err(invalid(
            field,
            format!("{serial:?} must be 1 to {MAX_SERIAL} bytes without '/' or NUL"),
        ));
    }
    Ok(())
}

/// Where a block device (`major:minor`, as in `/sys/block/vdb/dev`) is mounted, from
/// `/proc/self/mountinfo` text (field 3 is the device).
pub fn mounted_at(mountinfo: &str, dev: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        let device = fields.nth(2)?;
        let point = fields.nth(1)?;
        (device == dev).then(|| point.to_string())
    })
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
            check_serial("rootfs.block_serial", serial)?;
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

/// Where the kernel lists platform devices (ACPI's `LNRO0005:NN` virtio-mmio slots).
pub const PLATFORM_DEVICES: &str = "/sys/bus/platform/devices";
/// The virtio-mmio platform driver (its `bind` and `unbind` files).
pub const VIRTIO_MMIO_DRIVER: &str = "/sys/bus/platform/drivers/virtio-mmio";
/// Name prefix of the platform devices ACPI makes from `LNRO0005` (virtio-mmio) entries.
const VIRTIO_MMIO_ACPI_PREFIX: &str = "LNRO0005:";

/// The sysfs and devtmpfs paths the disk lookup uses (the real ones, or a fake tree in
/// tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskPaths {
    pub block: PathBuf,
    pub dev: PathBuf,
    pub platform_devices: PathBuf,
    pub virtio_mmio: PathBuf,
}

impl DiskPaths {
    pub fn system() -> Self {
        DiskPaths {
            block: PathBuf::from(BLOCK_SYSFS),
            dev: PathBuf::from(DEV),
            platform_devices: PathBuf::from(PLATFORM_DEVICES),
            virtio_mmio: PathBuf::from(VIRTIO_MMIO_DRIVER),
        }
    }
}

/// The names (`vdb`) of the virtio-blk disks under `sys_block` whose `serial` file holds
/// exactly `serial`, sorted. Only `vd*` entries are looked at; one whose serial cannot be
/// read is skipped.
pub fn disks_with_serial(sys_block: &Path, serial: &str) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = fs::read_dir(sys_block)?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("vd"))
        .collect();
    names.sort();
    Ok(names
        .into_iter()
        .filter(|name| {
            fs::read(sys_block.join(name).join("serial")).is_ok_and(|text| {
                String::from_utf8_lossy(&text).trim_end_matches(['\n', '\0', ' ']) == serial
            })
        })
        .collect())
}

/// The one disk with `serial`: `None` if no disk has it, FAILED_PRECONDITION if several do
/// (the agent never guesses which one a container meant).
pub fn find_disk(sys_block: &Path, serial: &str) -> Result<Option<String>, RpcError> {
    let mut found = disks_with_serial(sys_block, serial)
        .map_err(RpcError::io(format!("list {}", sys_block.display())))?;
    if found.len() > 1 {
        return Err(RpcError::FailedPrecondition(format!(
            "rootfs.block_serial: {} disks carry serial {serial:?} ({}): refusing to pick one",
            found.len(),
            found.join(", ")
        )));
    }
    Ok(found.pop())
}

/// Binds the virtio-mmio driver to the ACPI virtio-mmio platform devices that have none
/// and whose ACPI `_STA` (`firmware_node/status`) says present, skipping those in `tried`
/// (each is tried once per wait: an empty window fails the probe).
///
/// Why: a hot slot whose earlier disk was released ([`release_disk`]) keeps its platform
/// device (Linux 6.12 unregisters an ACPI platform device only when its namespace node
/// goes away), so when the VMM puts a new disk in that slot, ACPI's rescan finds the
/// device already there and nothing probes it.
pub fn bind_present_slots(paths: &DiskPaths, tried: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(&paths.platform_devices) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if !name.starts_with(VIRTIO_MMIO_ACPI_PREFIX) || tried.contains(&name) {
            continue;
        }
        let device = paths.platform_devices.join(&name);
        if device.join("driver").exists() {
            continue;
        }
        let present = fs::read_to_string(device.join("firmware_node/status"))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .is_some_and(|sta| sta & 1 != 0);
        if !present {
            continue;
        }
        tried.push(name.clone());
        match fs::write(paths.virtio_mmio.join("bind"), &name) {
            Ok(()) => tracing::info!("disk: bound virtio-mmio to {name} (a reused hot slot)"),
            Err(e) => tracing::warn!("disk: bind virtio-mmio to {name}: {e}"),
        }
    }
}

/// The device node (`<dev>/vdb`) of the disk with `serial`, polling for up to `timeout`
/// until the disk and its node are there (binding reused hot slots on the way). NOT_FOUND
/// after that; FAILED_PRECONDITION if two disks carry the serial.
pub fn wait_for_disk(
    paths: &DiskPaths,
    serial: &str,
    timeout: Duration,
) -> Result<PathBuf, RpcError> {
    let start = Instant::now();
    let mut tried = Vec::new();
    loop {
        match find_disk(&paths.block, serial)? {
            Some(name) => {
                let node = paths.dev.join(&name);
                if node.exists() {
                    return Ok(node);
                }
            }
            None => bind_present_slots(paths, &mut tried),
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
    paths: &DiskPaths,
    timeout: Duration,
) -> Result<RootfsSource, RpcError> {
    match requested {
        RequestedRootfs::Dir(dir) => Ok(RootfsSource::Dir(dir)),
        RequestedRootfs::Disk { serial, fstype } => Ok(RootfsSource::Block {
            device: wait_for_disk(paths, &serial, timeout)?,
            fstype,
        }),
    }
}

/// Lets go of the disk whose node is `device` (`/dev/vdb`) once nothing mounts it: unbinds
/// the virtio-mmio driver from its platform device, so the disk leaves `/sys/block` and the
/// driver resets the device, which is what the VMM waits for before it frees the slot. A
/// disk that is already gone is fine.
pub fn release_disk(paths: &DiskPaths, device: &Path) -> Result<(), RpcError> {
    let Some(name) = device.file_name() else {
        return Err(RpcError::InvalidArgument(format!(
            "disk {}: no device name",
            device.display()
        )));
    };
    let block = paths.block.join(name);
    let virtio = match fs::canonicalize(block.join("device")) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(RpcError::io(format!("resolve {}/device", block.display()))(
                e,
            ))
        }
    };
    let platform = virtio.parent().unwrap_or(&virtio);
    let Some(pdev) = platform.file_name().and_then(|n| n.to_str()) else {
        return Err(RpcError::FailedPrecondition(format!(
            "disk {}: no platform device above {}",
            device.display(),
            virtio.display()
        )));
    };
    if !pdev.starts_with(VIRTIO_MMIO_ACPI_PREFIX) {
        return Err(RpcError::FailedPrecondition(format!(
            "disk {}: {pdev} is not an ACPI virtio-mmio device",
            device.display()
        )));
    }
    fs::write(paths.virtio_mmio.join("unbind"), pdev).map_err(RpcError::io(format!(
        "unbind virtio-mmio from {pdev} (disk {})",
        device.display()
    )))?;
    if block.exists() {
        return Err(RpcError::FailedPrecondition(format!(
            "disk {}: still in {} after unbinding {pdev}",
            device.display(),
            paths.block.display()
        )));
    }
    tracing::info!("disk {}: released ({pdev} unbound)", device.display());
    Ok(())
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

    /// A fake `/sys/block`, `/dev`, platform bus and virtio-mmio driver: `(name, serial)`
    /// disks, `None` for no serial file.
    fn fake(disks: &[(&str, Option<&str>)]) -> (TempDir, DiskPaths) {
        let dir = TempDir::new("block");
        let paths = DiskPaths {
            block: dir.path().join("sys-block"),
            dev: dir.path().join("dev"),
            platform_devices: dir.path().join("platform"),
            virtio_mmio: dir.path().join("virtio-mmio"),
        };
        fs::create_dir_all(&paths.dev).unwrap();
        fs::create_dir_all(&paths.block).unwrap();
        fs::create_dir_all(&paths.platform_devices).unwrap();
        fs::create_dir_all(&paths.virtio_mmio).unwrap();
        for (name, serial) in disks {
            fs::create_dir_all(paths.block.join(name)).unwrap();
            if let Some(serial) = serial {
                fs::write(paths.block.join(name).join("serial"), serial).unwrap();
            }
            fs::write(paths.dev.join(name), "").unwrap();
        }
        (dir, paths)
    }

    /// A platform device `name` with ACPI status `sta` (`None`: no `_STA`), bound or not.
    fn platform(paths: &DiskPaths, name: &str, sta: Option<&str>, bound: bool) -> PathBuf {
        let d = paths.platform_devices.join(name);
        fs::create_dir_all(d.join("firmware_node")).unwrap();
        if let Some(sta) = sta {
            fs::write(d.join("firmware_node/status"), sta).unwrap();
        }
        if bound {
            std::os::unix::fs::symlink(&paths.virtio_mmio, d.join("driver")).unwrap();
        }
        d
    }

    #[test]
    fn test_find_disk_by_exact_serial() {
        let (_dir, paths) = fake(&[
            ("loop0", Some("rootfs-c1")),
            ("vda", None),
            ("vdb", Some("data\n")),
            ("vdc", Some("rootfs-c1\n")),
            ("vdd", Some("rootfs-c10")),
        ]);
        let sys = &paths.block;
        assert_eq!(find_disk(sys, "rootfs-c1").unwrap().as_deref(), Some("vdc"));
        assert_eq!(find_disk(sys, "data").unwrap().as_deref(), Some("vdb"));
        assert_eq!(find_disk(sys, "rootfs").unwrap(), None);
        assert_eq!(find_disk(sys, "rootfs-c").unwrap(), None);
        assert!(find_disk(&sys.join("missing"), "data").is_err());
    }

    #[test]
    fn test_two_disks_with_one_serial_are_refused() {
        let (_dir, paths) = fake(&[("vdb", Some("disk-1")), ("vdc", Some("disk-1\n"))]);
        let e = find_disk(&paths.block, "disk-1").unwrap_err();
        assert_eq!(e.code(), Code::FAILED_PRECONDITION, "{e}");
        assert!(e.to_string().contains("vdb, vdc"), "{e}");
        let e = wait_for_disk(&paths, "disk-1", Duration::from_secs(5)).unwrap_err();
        assert_eq!(e.code(), Code::FAILED_PRECONDITION, "{e}");
    }

    #[test]
    fn test_wait_for_disk_finds_a_late_disk_and_times_out() {
        let (_dir, paths) = fake(&[("vda", Some("boot"))]);
        let (sys2, dev2) = (paths.block.clone(), paths.dev.clone());
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            fs::create_dir_all(sys2.join("vdb")).unwrap();
            fs::write(sys2.join("vdb/serial"), "late").unwrap();
            std::thread::sleep(Duration::from_millis(100));
            fs::write(dev2.join("vdb"), "").unwrap();
        });
        let node = wait_for_disk(&paths, "late", Duration::from_secs(5)).unwrap();
        late.join().unwrap();
        assert_eq!(node, paths.dev.join("vdb"));

        let e = wait_for_disk(&paths, "never", Duration::from_millis(100)).unwrap_err();
        assert_eq!(e.code(), Code::NOT_FOUND);
        assert!(e.to_string().contains("\"never\""), "{e}");
    }

    #[test]
    fn test_only_present_unbound_slots_are_bound_once() {
        let (_dir, paths) = fake(&[]);
        platform(&paths, "LNRO0005:01", None, true); // boot disk, bound
        platform(&paths, "LNRO0005:03", Some("15\n"), false); // reused slot, disk back
        platform(&paths, "LNRO0005:04", Some("0\n"), false); // released, empty
        platform(&paths, "LNRO0005:05", Some("15\n"), true); // bound
        platform(&paths, "serial8250", Some("15\n"), false); // not virtio-mmio
        let mut tried = Vec::new();
        bind_present_slots(&paths, &mut tried);
        assert_eq!(tried, ["LNRO0005:03"]);
        let bind = paths.virtio_mmio.join("bind");
        assert_eq!(fs::read_to_string(&bind).unwrap(), "LNRO0005:03");
        fs::remove_file(&bind).unwrap();
        bind_present_slots(&paths, &mut tried);
        assert!(!bind.exists(), "tried once per wait");
        // While waiting, a reused slot is bound.
        let e = wait_for_disk(&paths, "x", Duration::ZERO).unwrap_err();
        assert_eq!(e.code(), Code::NOT_FOUND);
        assert_eq!(fs::read_to_string(&bind).unwrap(), "LNRO0005:03");
    }

    #[test]
    fn test_release_disk_unbinds_its_platform_device() {
        let (_dir, paths) = fake(&[("vdb", Some("disk-0"))]);
        let pdev = platform(&paths, "LNRO0005:03", Some("0"), true);
        fs::create_dir_all(pdev.join("virtio3")).unwrap();
        std::os::unix::fs::symlink(pdev.join("virtio3"), paths.block.join("vdb/device")).unwrap();
        // The fake kernel does not drop vdb: the unbind is written, the leftover reported.
        let e = release_disk(&paths, &paths.dev.join("vdb")).unwrap_err();
        assert_eq!(e.code(), Code::FAILED_PRECONDITION, "{e}");
        assert_eq!(
            fs::read_to_string(paths.virtio_mmio.join("unbind")).unwrap(),
            "LNRO0005:03"
        );
        // A disk that is gone already is released.
        fs::remove_dir_all(paths.block.join("vdb")).unwrap();
        release_disk(&paths, &paths.dev.join("vdb")).unwrap();
        // A disk under something other than an ACPI virtio-mmio device is left alone.
        let other = paths.platform_devices.join("virtio-pci0");
        fs::create_dir_all(other.join("virtio1")).unwrap();
        fs::create_dir_all(paths.block.join("vdc")).unwrap();
        std::os::unix::fs::symlink(other.join("virtio1"), paths.block.join("vdc/device")).unwrap();
        let e = release_disk(&paths, &paths.dev.join("vdc")).unwrap_err();
        assert!(e.to_string().contains("not an ACPI virtio-mmio"), "{e}");
    }

    #[test]
    fn test_mounted_at_reads_the_device_field() {
        let info = "22 1 0:20 / / rw - rootfs rootfs rw\n\
                    40 22 254:16 / /run/containers/c/lower ro - erofs /dev/vdb ro\n\
                    41 22 0:30 / /run/x rw - tmpfs tmpfs rw\n";
        assert_eq!(
            mounted_at(info, "254:16").as_deref(),
            Some("/run/containers/c/lower")
        );
        assert_eq!(mounted_at(info, "254:32"), None);
        assert_eq!(mounted_at("garbage\n\n1 2", "254:16"), None);
    }

    #[test]
    fn test_check_serial() {
        check_serial("serial", "disk-0").unwrap();
        for bad in ["", "a/b", "a\0", &"x".repeat(21)] {
            let e = check_serial("serial", bad).unwrap_err();
            assert!(e.to_string().contains("serial"), "{e}");
        }
    }

    #[test]
    fn test_resolve() {
        let (_dir, paths) = fake(&[("vda", Some("img"))]);
        let disk = RequestedRootfs::Disk {
            serial: "img".into(),
            fstype: "ext4".into(),
        };
        assert_eq!(
            resolve(disk, &paths, Duration::ZERO).unwrap(),
            RootfsSource::Block {
                device: paths.dev.join("vda"),
                fstype: "ext4".into()
            }
        );
        let dir = RequestedRootfs::Dir(PathBuf::from("/x"));
        assert_eq!(
            resolve(dir, &paths, Duration::ZERO).unwrap(),
            RootfsSource::Dir(PathBuf::from("/x"))
        );
    }
}
