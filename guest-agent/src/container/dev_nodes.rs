//! The container's device nodes (in the helper, before it enters the root): the standard
//! ones (null zero full random urandom tty, 0666) and the spec's `linux.devices`, each made
//! with `mknod` and then bind-mounted onto itself without `nodev`, the only way a node opens
//! in a container whose every other mount is `nodev` (see `mounts`). Plus the links `ptmx ->
//! pts/ptmx`, `fd`, `stdin`, `stdout`, `stderr`.
//!
//! The device cgroup allows `mknod` of any node and opening only of these (see `devices`).

use std::fs;
use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sys::stat::{makedev, mknod, Mode, SFlag};

use super::devices::DEFAULT_NODES;
use super::mounts::{io_err, make_mount_point, nix_err, secure_join};
use super::spec::LinuxDevice;

/// A node to make. Pure data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Absolute path in the container (under `/dev/`).
    pub path: String,
    pub kind: SFlag,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

/// The standard nodes, then the spec's (validated) `linux.devices`. Pure.
pub fn nodes(devices: &[LinuxDevice]) -> Vec<Node> {
    let mut out: Vec<Node> = DEFAULT_NODES
        .iter()
        .map(|&(name, major, minor)| Node {
            path: format!("/dev/{name}"),
            kind: SFlag::S_IFCHR,
            major: major.into(),
            minor: minor.into(),
            mode: 0o666,
            uid: 0,
            gid: 0,
        })
        .collect();
    for d in devices {
        let kind = match d.kind.as_str() {
            "b" => SFlag::S_IFBLK,
            "p" => SFlag::S_IFIFO,
            _ => SFlag::S_IFCHR,
        };
        let node = Node {
            path: d.path.clone(),
            kind,
            major: d.major.max(0) as u64,
            minor: d.minor.max(0) as u64,
            mode: d.file_mode.unwrap_or(0o666) & 0o7777,
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
        };
        // A spec node replaces a standard one at the same path.
        out.retain(|n| n.path != node.path);
        out.push(node);
    }
    out
}

/// Makes `nodes` under `root` and the standard links (see the module doc).
pub fn populate_dev(root: &Path, nodes: &[Node]) -> Result<(), String> {
    let dev = secure_join(root, "/dev").map_err(io_err("resolve /dev".into()))?;
    make_mount_point(&dev, true)?;
    for node in nodes {
        make_node(root, node)?;
    }
    let links = [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        let path = dev.join(name);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(target, &path).map_err(io_err(format!("link /dev/{name}")))?;
    }
    Ok(())
}

fn make_node(root: &Path, node: &Node) -> Result<(), String> {
    let name = &node.path;
    let path = secure_join(root, name).map_err(io_err(format!("resolve {name}")))?;
    if let Some(parent) = path.parent() {
        make_mount_point(parent, true)?;
    }
    // Whatever the image has there (on a nodev mount it could not be used anyway) makes way.
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => return Err(format!("{name} is a directory")),
        Ok(_) => fs::remove_file(&path).map_err(io_err(format!("replace {name}")))?,
        Err(_) => {}
    }
    let mode = Mode::from_bits_truncate(node.mode);
    mknod(&path, node.kind, mode, makedev(node.major, node.minor))
        .map_err(nix_err(format!("mknod {name}")))?;
    nix::unistd::chown(
        &path,
        Some(nix::unistd::Uid::from_raw(node.uid)),
        Some(nix::unistd::Gid::from_raw(node.gid)),
    )
    .map_err(nix_err(format!("chown {name}")))?;
    // mknod applies the umask, chown may clear set-id bits: set the mode exactly, last.
    nix::sys::stat::fchmodat(
        nix::fcntl::AT_FDCWD,
        &path,
        mode,
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(nix_err(format!("chmod {name}")))?;
    if node.kind == SFlag::S_IFIFO {
        return Ok(());
    }
    // Its own mount, without nodev: the one place this node opens.
    mount(
        Some(&path),
        &path,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(nix_err(format!("bind {name}")))?;
    mount(
        None::<&str>,
        &path,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(nix_err(format!("remount {name} with devices allowed")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_nodes_standard_then_spec() {
        let spec = [
            LinuxDevice {
                path: "/dev/fuse".into(),
                kind: "c".into(),
                major: 10,
                minor: 229,
                file_mode: Some(0o600),
                uid: Some(1000),
                gid: None,
            },
            LinuxDevice {
                path: "/dev/null".into(),
                kind: "c".into(),
                major: 1,
                minor: 3,
                file_mode: Some(0o640),
                uid: None,
                gid: None,
            },
            LinuxDevice {
                path: "/dev/pipe".into(),
                kind: "p".into(),
                major: 0,
                minor: 0,
                file_mode: None,
                uid: None,
                gid: None,
            },
        ];
        let n = nodes(&spec);
        assert_eq!(n.len(), 8);
        assert_eq!(n[0].path, "/dev/zero");
        let fuse = n.iter().find(|n| n.path == "/dev/fuse").unwrap();
        assert_eq!(
            (fuse.major, fuse.minor, fuse.mode, fuse.uid),
            (10, 229, 0o600, 1000)
        );
        let null: Vec<_> = n.iter().filter(|n| n.path == "/dev/null").collect();
        assert_eq!(null.len(), 1);
        assert_eq!(null[0].mode, 0o640);
        let pipe = n.iter().find(|n| n.path == "/dev/pipe").unwrap();
        assert_eq!((pipe.kind, pipe.mode), (SFlag::S_IFIFO, 0o666));
    }
}
