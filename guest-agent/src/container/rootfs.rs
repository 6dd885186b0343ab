//! The container's root filesystem.
//!
//! Agent side ([`prepare`], [`PreparedRootfs::teardown`]), in the agent's mount namespace:
//! `<run>/containers/<id>` gets its own tmpfs holding `upper/` and `work/`, and an overlay
//! at `<run>/containers/<id>/rootfs` puts that writable layer on the read-only image (a
//! directory such as `/images/busybox`, or a block device with erofs or ext4 mounted
//! read-only at `lower/`). Writes land in the container's tmpfs and are charged to its memory
//! cgroup; removing the container unmounts it all.
//!
//! Helper side ([`enter`]), in the container's new mount namespace.
//!
//! Why not `pivot_root`: the guest's root is the initramfs (`rootfs`), which has no parent
//! mount, and `pivot_root` refuses such a root (EINVAL), in every mount namespace. So the
//! helper does what `switch_root` does, made safe for a container:
//! 1. makes every mount private (nothing propagates back to the agent),
//! 2. moves the container's root onto [`PARK`], an empty directory of the initramfs,
//! 3. detaches every other mount of its copy of the agent's tree (`/proc`, `/sys`, `/dev`,
//!    `/run` with the other containers' roots, ...), so nothing of the agent stays reachable,
//! 4. remounts its copy of the initramfs root read-only (a per-mount flag: the agent's own
//!    mount stays writable),
//! 5. moves the container's root onto `/` and `chroot`s into it.
//!
//! What remains underneath is a read-only view of the initramfs (the agent binary and the
//! built-in images), reachable only by a chroot escape, which needs `CAP_SYS_CHROOT`. The
//! alternative, switching the agent itself to a tmpfs root at boot so `pivot_root` works,
//! would copy the initramfs at every boot; the VM is the security boundary, so this is the
//! trade taken.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

/// The empty initramfs directory a container's root is parked on while the helper detaches
/// the agent's mounts (each container does this in its own mount namespace, so they do not
/// collide).
pub const PARK: &str = "/.container-root";

/// Where a container's image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// A directory in the guest, used read-only as the lower layer.
    Dir(PathBuf),
    /// A block device holding `fstype` (`erofs` or `ext4`), mounted read-only.
    Block { device: PathBuf, fstype: String },
}

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("image directory {0} does not exist")]
    NoImage(String),
    #[error("path {0} holds a character (',' ':' '\\') an overlay option cannot carry")]
    BadPath(String),
    #[error("unsupported image filesystem {0:?} (erofs or ext4)")]
    FsType(String),
    #[error("create {path}")]
    Create {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("mount {what} on {path}")]
    Mount {
        what: String,
        path: String,
        #[source]
        source: nix::Error,
    },
    #[error("unmount {path}")]
    Unmount {
        path: String,
        #[source]
        source: nix::Error,
    },
}

/// A prepared root in the agent's mount namespace.
#[derive(Debug)]
pub struct PreparedRootfs {
    base: PathBuf,
    rootfs: PathBuf,
    lower_mounted: bool,
}

/// Prepares the overlay root of a container under `base` (`<run>/containers/<id>`).
pub fn prepare(base: &Path, source: &RootfsSource) -> Result<PreparedRootfs, RootfsError> {
    let lower = match source {
        RootfsSource::Dir(dir) => {
            if !dir.is_dir() {
                return Err(RootfsError::NoImage(dir.display().to_string()));
            }
            dir.clone()
        }
        RootfsSource::Block { fstype, .. } if !matches!(fstype.as_str(), "erofs" | "ext4") => {
            return Err(RootfsError::FsType(fstype.clone()))
        }
        RootfsSource::Block { .. } => base.join("lower"),
    };
    for path in [&lower, &base.to_path_buf()] {
        check_overlay_path(path)?;
    }
    make_dir(base)?;
    let mut prepared = PreparedRootfs {
        base: base.to_path_buf(),
        rootfs: base.join("rootfs"),
        lower_mounted: false,
    };
    // From here on, a failure undoes what was done.
    let result = (|| {
        do_mount(
            Some(Path::new("tmpfs")),
            base,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
            Some("mode=0700"),
        )?;
        for dir in ["upper", "work", "rootfs"] {
            make_dir(&base.join(dir))?;
        }
        if let RootfsSource::Block { device, fstype } = source {
            make_dir(&lower)?;
            do_mount(
                Some(device.as_path()),
                &lower,
                Some(fstype.as_str()),
                MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                None,
            )?;
            prepared.lower_mounted = true;
        }
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        // nodev: a node made anywhere in the root cannot be opened (see `mounts`).
        do_mount(
            Some(Path::new("overlay")),
            &prepared.rootfs,
            Some("overlay"),
            MsFlags::MS_NODEV,
            Some(&data),
        )?;
        // The merged root takes the mode of `upper/`: make it 0755 whatever the agent's umask.
        fs::set_permissions(
            &prepared.rootfs,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .map_err(|source| RootfsError::Create {
            path: prepared.rootfs.display().to_string(),
            source,
        })?;
        Ok(())
    })();
    match result {
        Ok(()) => Ok(prepared),
        Err(e) => {
            if let Err(cleanup) = prepared.teardown() {
                tracing::warn!("undo rootfs of {}: {cleanup}", base.display());
            }
            Err(e)
        }
    }
}

impl PreparedRootfs {
    /// The overlay, in the agent's mount namespace.
    pub fn path(&self) -> &Path {
        &self.rootfs
    }

    /// The container's directory (`<run>/containers/<id>`): its tmpfs, image and overlay.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// Unmounts the overlay, the image and the tmpfs, and removes the directory. Mounts that
    /// are already gone are fine; it can be called again after a failure.
    pub fn teardown(&mut self) -> Result<(), RootfsError> {
        let mut targets = vec![self.rootfs.clone()];
        if self.lower_mounted {
            targets.push(self.base.join("lower"));
        }
        targets.push(self.base.clone());
        for target in &targets {
            match umount2(target, MntFlags::MNT_DETACH) {
                Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
                Err(source) => {
                    return Err(RootfsError::Unmount {
                        path: target.display().to_string(),
                        source,
                    })
                }
            }
        }
        self.lower_mounted = false;
        match fs::remove_dir_all(&self.base) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(RootfsError::Create {
                path: self.base.display().to_string(),
                source,
            }),
        }
    }
}

/// Creates [`PARK`] if the initramfs lacks it.
pub fn ensure_park() -> Result<(), RootfsError> {
    make_dir(Path::new(PARK))
}

fn check_overlay_path(path: &Path) -> Result<(), RootfsError> {
    let text = path.display().to_string();
    if text.contains([',', ':', '\\']) {
        return Err(RootfsError::BadPath(text));
    }
    Ok(())
}

fn make_dir(path: &Path) -> Result<(), RootfsError> {
    match fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
    {
        Ok(()) => Ok(()),
        Err(source) => Err(RootfsError::Create {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn do_mount(
    source: Option<&Path>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> Result<(), RootfsError> {
    mount(source, target, fstype, flags, data).map_err(|e| RootfsError::Mount {
        what: fstype.unwrap_or("bind").to_string(),
        path: target.display().to_string(),
        source: e,
    })
}

/// Mount points directly on the root mount in `/proc/self/mountinfo` text, except `/` and
/// `keep`: what [`enter`] detaches. Pure.
pub fn top_level_mounts(mountinfo: &str, keep: &str) -> Vec<String> {
    let entries: Vec<(&str, &str, String)> = mountinfo
        .lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let id = f.next()?;
            let parent = f.next()?;
            let point = f.nth(2)?;
            Some((id, parent, unescape(point)))
        })
        .collect();
    let Some((root_id, _, _)) = entries.iter().find(|(_, _, p)| p == "/") else {
        return Vec::new();
    };
    entries
        .iter()
        .filter(|(_, parent, point)| parent == root_id && point != "/" && point != keep)
        .map(|(_, _, point)| point.clone())
        .collect()
}

/// Mount points at or under `dir` in `/proc/self/mountinfo` text: what a removed
/// container must not leave behind. Pure.
pub fn mounts_under(mountinfo: &str, dir: &Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4).map(unescape))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect()
}

/// Undoes mountinfo's `\ooo` escapes.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let code = b
            .get(i + 1..i + 4)
            .filter(|_| b[i] == b'\\')
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match code {
            Some(c) => {
                out.push(c);
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// In the helper, after the container's mounts are in place under `rootfs`: switches into it
/// (see the module doc). The caller is in its own mount namespace.
pub fn enter(rootfs: &Path) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_string();
        move |e: nix::Error| format!("{what}: {e}")
    };
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(err("make mounts private"))?;
    mount(
        Some(rootfs),
        PARK,
        None::<&str>,
        MsFlags::MS_MOVE,
        None::<&str>,
    )
    .map_err(err("move the root onto the park directory"))?;
    let mountinfo =
        fs::read_to_string("/proc/self/mountinfo").map_err(|e| format!("read mountinfo: {e}"))?;
    for point in top_level_mounts(&mountinfo, PARK) {
        match umount2(point.as_str(), MntFlags::MNT_DETACH) {
            Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
            Err(e) => return Err(format!("detach {point}: {e}")),
        }
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
        None::<&str>,
    )
    .map_err(err("make the old root read-only"))?;
    nix::unistd::chdir(PARK).map_err(err("chdir to the new root"))?;
    mount(Some("."), "/", None::<&str>, MsFlags::MS_MOVE, None::<&str>)
        .map_err(err("move the new root onto /"))?;
    nix::unistd::chroot(".").map_err(err("chroot"))?;
    nix::unistd::chdir("/").map_err(err("chdir /"))?;
    Ok(())
}

/// In the helper, inside the container: makes `/` read-only (`root.readonly`), keeping it
/// `nodev` (a bind remount sets every per-mount flag anew).
pub fn make_root_readonly() -> Result<(), String> {
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
        None::<&str>,
    )
    .map_err(|e| format!("make the root read-only: {e}"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn test_mounts_under() {
        let mountinfo = "\
22 1 0:21 / / rw - rootfs rootfs rw
26 25 0:25 / /run/sandbox/containers/a rw - tmpfs tmpfs rw
27 26 254:0 / /run/sandbox/containers/a/lower ro - erofs /dev/vda ro
28 26 0:26 / /run/sandbox/containers/a/rootfs rw - overlay overlay rw
29 25 0:27 / /run/sandbox/containers/ab rw - tmpfs tmpfs rw
30 25 0:28 / /run/sandbox/containers/with\\040space rw - tmpfs tmpfs rw
";
        let base = Path::new("/run/sandbox/containers/a");
        assert_eq!(
            mounts_under(mountinfo, base),
            [
                "/run/sandbox/containers/a",
                "/run/sandbox/containers/a/lower",
                "/run/sandbox/containers/a/rootfs"
            ]
        );
        assert_eq!(
            mounts_under(mountinfo, Path::new("/run/sandbox/containers/with space")),
            ["/run/sandbox/containers/with space"]
        );
        assert!(mounts_under(mountinfo, Path::new("/run/sandbox/containers/b")).is_empty());
    }

    use super::*;

    const MOUNTINFO: &str = "\
1 1 0:2 / / rw - rootfs rootfs rw
20 1 0:20 / /proc rw,nosuid - proc proc rw
21 1 0:21 / /sys rw - sysfs sysfs rw
22 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw
23 1 0:5 / /dev rw - devtmpfs devtmpfs rw
24 23 0:23 / /dev/pts rw - devpts devpts rw
25 1 0:24 / /run rw - tmpfs tmpfs rw
26 25 0:25 / /run/sandbox/containers/a rw - tmpfs tmpfs rw
27 1 0:26 / /.container-root rw - overlay overlay rw
28 1 0:27 / /with\\040space rw - tmpfs tmpfs rw
";

    #[test]
    fn test_top_level_mounts_skips_root_park_and_nested() {
        assert_eq!(
            top_level_mounts(MOUNTINFO, PARK),
            vec!["/proc", "/sys", "/dev", "/run", "/with space"]
        );
    }

    #[test]
    fn test_top_level_mounts_without_root_is_empty() {
        assert!(top_level_mounts("20 1 0:20 / /proc rw - proc proc rw\n", PARK).is_empty());
    }

    #[test]
    fn test_prepare_refuses_missing_image_and_bad_paths() {
        let base = Path::new("/nonexistent/ga-test/c1");
        let err = prepare(base, &RootfsSource::Dir("/nonexistent/image".into())).unwrap_err();
        assert!(matches!(err, RootfsError::NoImage(_)));
        let err = prepare(
            base,
            &RootfsSource::Block {
                device: "/dev/vdb".into(),
                fstype: "xfs".into(),
            },
        )
        .unwrap_err();
        assert!(matches!(err, RootfsError::FsType(_)));
        let err = prepare(Path::new("/run/a,b"), &RootfsSource::Dir("/".into())).unwrap_err();
        assert!(matches!(err, RootfsError::BadPath(_)));
    }
}
