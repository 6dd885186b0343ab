//! The spec's mounts: option parsing (pure), resolving destinations inside the rootfs without
//! following symlinks out of it, and (in the helper, in the container's mount namespace)
//! mounting them, masked and read-only paths (the `/dev` nodes are `dev_nodes`').
//!
//! `nodev` everywhere: every mount the engine makes for a container is `nodev` (the overlay
//! root, the `/dev` tmpfs, `/dev/shm`, `/dev/mqueue`, `/proc`, `/sys`, cgroup2, every tmpfs
//! and bind mount, masked and read-only paths), except `devpts` (its pty nodes must open; no
//! one can `mknod` in a devpts). The nodes a container may use are each bind-mounted onto
//! themselves without `nodev` (`dev_nodes`), so a node made with `mknod` anywhere writable,
//! `/dev` included, cannot be opened, whatever the device cgroup says. The `dev` option is
//! refused by validation.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, MsFlags};

use super::spec::Mount;

/// Filesystems a container may mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountKind {
    Proc,
    Sysfs,
    Tmpfs,
    Devpts,
    Mqueue,
    Cgroup2,
    Bind,
}

impl MountKind {
    /// The kind of a mount with `type` `kind` whose options do (`bind`) or do not bind.
    pub fn of(kind: Option<&str>, bind: bool) -> Result<Self, String> {
        if bind {
            return Ok(Self::Bind);
        }
        Ok(match kind.unwrap_or("") {
            "proc" => Self::Proc,
            "sysfs" => Self::Sysfs,
            "tmpfs" => Self::Tmpfs,
            "devpts" => Self::Devpts,
            "mqueue" => Self::Mqueue,
            "cgroup" | "cgroup2" => Self::Cgroup2,
            "bind" => Self::Bind,
            other => {
                return Err(format!(
                    "unsupported mount type {other:?} (proc, sysfs, tmpfs, devpts, mqueue, \
                     cgroup2 or a bind mount)"
                ))
            }
        })
    }

    pub fn fstype(self) -> &'static str {
        match self {
            Self::Proc => "proc",
            Self::Sysfs => "sysfs",
            Self::Tmpfs => "tmpfs",
            Self::Devpts => "devpts",
            Self::Mqueue => "mqueue",
            Self::Cgroup2 => "cgroup2",
            Self::Bind => "none",
        }
    }
}

/// Parsed `mounts[].options`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    pub flags: MsFlags,
    /// `private`, `rslave`, ...: applied after the mount.
    pub propagation: Option<MsFlags>,
    pub bind: bool,
    /// `rbind`.
    pub recursive: bool,
    /// Filesystem data (`mode=755`, `size=64k`, `newinstance`), joined with commas.
    pub data: Vec<String>,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            propagation: None,
            bind: false,
            recursive: false,
            data: Vec::new(),
        }
    }
}

/// Parses mount options; the error is the problem, for the caller to name the field.
pub fn parse_options(options: &[String]) -> Result<MountOptions, String> {
    let mut out = MountOptions::default();
    for option in options {
        let set = |out: &mut MountOptions, f: MsFlags| out.flags.insert(f);
        let clear = |out: &mut MountOptions, f: MsFlags| out.flags.remove(f);
        match option.as_str() {
            "defaults" | "rw" => clear(&mut out, MsFlags::MS_RDONLY),
            "ro" => set(&mut out, MsFlags::MS_RDONLY),
            "nosuid" => set(&mut out, MsFlags::MS_NOSUID),
            "suid" => clear(&mut out, MsFlags::MS_NOSUID),
            "nodev" => set(&mut out, MsFlags::MS_NODEV),
            "dev" => clear(&mut out, MsFlags::MS_NODEV),
            "noexec" => set(&mut out, MsFlags::MS_NOEXEC),
            "exec" => clear(&mut out, MsFlags::MS_NOEXEC),
            "sync" => set(&mut out, MsFlags::MS_SYNCHRONOUS),
            "async" => clear(&mut out, MsFlags::MS_SYNCHRONOUS),
            "dirsync" => set(&mut out, MsFlags::MS_DIRSYNC),
            "noatime" => set(&mut out, MsFlags::MS_NOATIME),
            "atime" => clear(&mut out, MsFlags::MS_NOATIME),
            "nodiratime" => set(&mut out, MsFlags::MS_NODIRATIME),
            "diratime" => clear(&mut out, MsFlags::MS_NODIRATIME),
            "relatime" => set(&mut out, MsFlags::MS_RELATIME),
            "norelatime" => clear(&mut out, MsFlags::MS_RELATIME),
            "strictatime" => set(&mut out, MsFlags::MS_STRICTATIME),
            "nostrictatime" => clear(&mut out, MsFlags::MS_STRICTATIME),
            "bind" => out.bind = true,
            "rbind" => {
                out.bind = true;
                out.recursive = true;
            }
            "private" => out.propagation = Some(MsFlags::MS_PRIVATE),
            "rprivate" => out.propagation = Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            "slave" => out.propagation = Some(MsFlags::MS_SLAVE),
            "rslave" => out.propagation = Some(MsFlags::MS_SLAVE | MsFlags::MS_REC),
            "unbindable" => out.propagation = Some(MsFlags::MS_UNBINDABLE),
            "runbindable" => out.propagation = Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
            "shared" | "rshared" => {
                return Err(format!(
                    "option {option:?}: shared propagation out of a container is not allowed"
                ))
            }
            "newinstance" => out.data.push(option.clone()),
            o if o.contains(',') || o.contains('\0') => {
                return Err(format!("option {o:?} holds a comma or NUL"))
            }
            o if o.contains('=') => out.data.push(o.to_string()),
            o => return Err(format!("unknown mount option {o:?}")),
        }
    }
    Ok(out)
}

/// `root` joined with `path` as seen from inside `root`: symlinks are resolved relative to
/// `root` (an absolute link target starts again at `root`, `..` stops at `root`), so the
/// result never lies outside `root`. Components that do not exist are appended as they are.
pub fn secure_join(root: &Path, path: &str) -> io::Result<PathBuf> {
    const MAX_LINKS: u32 = 40;
    let mut pending: VecDeque<String> = split(path);
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let full = root.join(&candidate);
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(io::Error::from_raw_os_error(libc::ELOOP));
                }
                let target = fs::read_link(&full)?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved = PathBuf::new();
                }
                for part in split(&target).into_iter().rev() {
                    pending.push_front(part);
                }
            }
            _ => resolved = candidate,
        }
    }
    Ok(root.join(resolved))
}

/// The non-empty, non-`.` components of a path.
fn split(path: &str) -> VecDeque<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

pub(super) fn io_err(what: String) -> impl FnOnce(io::Error) -> String {
    move |e| format!("{what}: {e}")
}

pub(super) fn nix_err(what: String) -> impl FnOnce(nix::Error) -> String {
    move |e| format!("{what}: {e}")
}

/// The mount flags of a mount of `kind` with `options`: the options' flags, plus `nodev` for
/// everything but devpts (see the module doc). Pure.
pub fn mount_flags(kind: MountKind, options: &MountOptions) -> MsFlags {
    match kind {
        MountKind::Devpts => options.flags,
        _ => options.flags | MsFlags::MS_NODEV,
    }
}

/// Mounts one spec mount under `root` (in the helper). Returns the resolved destination.
pub fn mount_one(root: &Path, m: &Mount) -> Result<PathBuf, String> {
    let options = parse_options(&m.options)?;
    let kind = MountKind::of(m.kind.as_deref(), options.bind)?;
    let flags = mount_flags(kind, &options);
    let dest =
        secure_join(root, &m.destination).map_err(io_err(format!("resolve {}", m.destination)))?;
    let data = options.data.join(",");
    if kind == MountKind::Bind {
        let source = m.source.as_deref().unwrap_or("");
        make_mount_point(&dest, Path::new(source).is_dir())?;
        let mut flags = MsFlags::MS_BIND;
        if options.recursive {
            flags |= MsFlags::MS_REC;
        }
        mount(Some(source), &dest, None::<&str>, flags, None::<&str>)
            .map_err(nix_err(format!("bind {source} on {}", m.destination)))?;
        // Per-mount flags (ro, nosuid, nodev, ...) of a bind need a remount.
        mount(
            None::<&str>,
            &dest,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | flags,
            None::<&str>,
        )
        .map_err(nix_err(format!("remount bind {}", m.destination)))?;
    } else {
        make_mount_point(&dest, true)?;
        let source = m.source.as_deref().unwrap_or(kind.fstype());
        mount(
            Some(source),
            &dest,
            Some(kind.fstype()),
            flags,
            (!data.is_empty()).then_some(data.as_str()),
        )
        .map_err(nix_err(format!(
            "mount {} on {}",
            kind.fstype(),
            m.destination
        )))?;
    }
    if let Some(propagation) = options.propagation {
        mount(None::<&str>, &dest, None::<&str>, propagation, None::<&str>)
            .map_err(nix_err(format!("set propagation of {}", m.destination)))?;
    }
    Ok(dest)
}

pub(super) fn make_mount_point(dest: &Path, dir: bool) -> Result<(), String> {
    if dest.exists() {
        return Ok(());
    }
    let parent = if dir {
        dest
    } else {
        dest.parent().unwrap_or(dest)
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(parent)
        .map_err(io_err(format!("create {}", parent.display())))?;
    if !dir {
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(dest)
            .map_err(io_err(format!("create {}", dest.display())))?;
    }
    Ok(())
}

/// Binds the process's terminal (fd 0, a pty slave of the agent's devpts) onto
/// `<root>/dev/console`, as runc does: the container's own devpts does not hold it, and this
/// gives `ttyname()` a name to find. The fd's own mount belongs to the agent's mount namespace
/// and cannot be bound from here, so the bind source is the same pty in this namespace's copy
/// of the agent's `/dev/pts`, found by its device number (checked to be the same device).
pub fn bind_console(root: &Path) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    const PTY_SLAVE_MAJOR: u64 = 136;
    let tty = fs::metadata("/proc/self/fd/0").map_err(io_err("stat the terminal".into()))?;
    let (major, minor) = (
        libc::major(tty.rdev()) as u64,
        libc::minor(tty.rdev()) as u64,
    );
    if !tty.file_type().is_char_device() || !(PTY_SLAVE_MAJOR..PTY_SLAVE_MAJOR + 8).contains(&major)
    {
        return Err(format!("fd 0 is not a pty slave (device {major}:{minor})"));
    }
    let source = format!("/dev/pts/{}", (major - PTY_SLAVE_MAJOR) * 256 + minor);
    match fs::metadata(&source) {
        Ok(m) if m.rdev() == tty.rdev() && m.dev() == tty.dev() => {}
        _ => return Err(format!("{source} is not the process's terminal")),
    }
    let console =
        secure_join(root, "/dev/console").map_err(io_err("resolve /dev/console".into()))?;
    make_mount_point(&console, false)?;
    mount(
        Some(source.as_str()),
        &console,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(nix_err(format!(
        "bind the terminal {source} on /dev/console"
    )))
}

/// Hides `paths` (inside `root`, which has `/dev/null`): a directory gets an empty read-only
/// tmpfs on top, anything else `/dev/null`. Missing paths are skipped.
pub fn mask_paths(root: &Path, paths: &[String]) -> Result<(), String> {
    let null = secure_join(root, "/dev/null").map_err(io_err("resolve /dev/null".into()))?;
    for path in paths {
        let target = secure_join(root, path).map_err(io_err(format!("resolve {path}")))?;
        let Ok(meta) = target.metadata() else {
            continue;
        };
        let result = if meta.is_dir() {
            mount(
                Some("tmpfs"),
                &target,
                Some("tmpfs"),
                MsFlags::MS_RDONLY | MsFlags::MS_NODEV | MsFlags::MS_NOSUID,
                Some("size=0"),
            )
        } else {
            mount(
                Some(&null),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        };
        result.map_err(nix_err(format!("mask {path}")))?;
    }
    Ok(())
}

/// Makes `paths` (inside `root`) read-only with a read-only bind on themselves. Missing
/// paths are skipped.
pub fn readonly_paths(root: &Path, paths: &[String]) -> Result<(), String> {
    for path in paths {
        let target = secure_join(root, path).map_err(io_err(format!("resolve {path}")))?;
        if target.symlink_metadata().is_err() {
            continue;
        }
        mount(
            Some(&target),
            &target,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(nix_err(format!("bind {path}")))?;
        mount(
            None::<&str>,
            &target,
            None::<&str>,
            MsFlags::MS_BIND
                | MsFlags::MS_REMOUNT
                | MsFlags::MS_RDONLY
                | MsFlags::MS_NOSUID
                | MsFlags::MS_NODEV
                | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .map_err(nix_err(format!("make {path} read-only")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::testutil::TempDir;
    use std::os::unix::fs::symlink;

    fn opts(list: &[&str]) -> Result<MountOptions, String> {
        parse_options(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn test_parse_options_flags_and_data() {
        let o = opts(&["nosuid", "strictatime", "mode=755", "size=65536k"]).unwrap();
        assert_eq!(o.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(o.data, vec!["mode=755", "size=65536k"]);
        assert!(!o.bind);
        let o = opts(&["rbind", "ro", "rprivate"]).unwrap();
        assert!(o.bind && o.recursive);
        assert_eq!(o.flags, MsFlags::MS_RDONLY);
        assert_eq!(o.propagation, Some(MsFlags::MS_PRIVATE | MsFlags::MS_REC));
        let o = opts(&["ro", "rw", "newinstance"]).unwrap();
        assert!(o.flags.is_empty());
        assert_eq!(o.data, vec!["newinstance"]);
    }

    #[test]
    fn test_parse_options_rejects_unknown_and_shared() {
        assert_eq!(
            opts(&["frob"]).unwrap_err(),
            "unknown mount option \"frob\""
        );
        assert!(opts(&["rshared"])
            .unwrap_err()
            .contains("shared propagation"));
        assert!(opts(&["mode=1,uid=0"]).unwrap_err().contains("comma"));
    }

    #[test]
    fn test_mount_flags_nodev_but_devpts() {
        let o = opts(&["nosuid", "ro"]).unwrap();
        for kind in [
            MountKind::Proc,
            MountKind::Sysfs,
            MountKind::Tmpfs,
            MountKind::Mqueue,
            MountKind::Cgroup2,
            MountKind::Bind,
        ] {
            assert_eq!(
                mount_flags(kind, &o),
                MsFlags::MS_NOSUID | MsFlags::MS_RDONLY | MsFlags::MS_NODEV,
                "{kind:?}"
            );
        }
        assert_eq!(
            mount_flags(MountKind::Devpts, &o),
            MsFlags::MS_NOSUID | MsFlags::MS_RDONLY
        );
    }

    #[test]
    fn test_mount_kind() {
        assert_eq!(MountKind::of(Some("proc"), false), Ok(MountKind::Proc));
        assert_eq!(MountKind::of(Some("none"), true), Ok(MountKind::Bind));
        assert_eq!(MountKind::of(None, true), Ok(MountKind::Bind));
        assert_eq!(MountKind::of(Some("cgroup"), false), Ok(MountKind::Cgroup2));
        assert!(MountKind::of(Some("none"), false).is_err());
        assert!(MountKind::of(Some("ext4"), false).is_err());
    }

    #[test]
    fn test_secure_join_keeps_symlinks_inside_root() {
        let dir = TempDir::new("securejoin");
        let root = dir.path();
        fs::create_dir_all(root.join("real/sub")).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink("../../../../..", root.join("up")).unwrap();
        symlink("real/sub", root.join("rel")).unwrap();
        symlink("loop2", root.join("loop1")).unwrap();
        symlink("loop1", root.join("loop2")).unwrap();
        assert_eq!(
            secure_join(root, "/abs/passwd").unwrap(),
            root.join("etc/passwd")
        );
        assert_eq!(secure_join(root, "/up/etc").unwrap(), root.join("etc"));
        assert_eq!(
            secure_join(root, "/rel/x").unwrap(),
            root.join("real/sub/x")
        );
        assert_eq!(secure_join(root, "/../../x").unwrap(), root.join("x"));
        assert_eq!(secure_join(root, "/").unwrap(), root.to_path_buf());
        assert_eq!(
            secure_join(root, "/./real//sub/").unwrap(),
            root.join("real/sub")
        );
        let err = secure_join(root, "/loop1").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ELOOP));
    }

    #[test]
    fn test_make_mount_point_file_and_dir() {
        let dir = TempDir::new("mountpoint");
        let file = dir.path().join("a/b/hosts");
        make_mount_point(&file, false).unwrap();
        assert!(file.is_file());
        let sub = dir.path().join("c/d");
        make_mount_point(&sub, true).unwrap();
        assert!(sub.is_dir());
    }
}
