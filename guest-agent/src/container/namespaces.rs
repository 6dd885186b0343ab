//! Namespaces, held open by file descriptors.
//!
//! Policy (the engine decides, not the spec; see `spec` for what a spec may ask):
//! - the sandbox owns one network namespace (with `lo` up) and one ipc namespace, created by
//!   [`create_pod_namespaces`] and held by fds; every container joins them;
//! - each container gets new mount and uts namespaces, and a new pid namespace unless the
//!   sandbox shares one (then held by its pause process and an fd);
//! - a cgroup namespace only when the spec lists one.
//!
//! Namespaces are joined or created per thread: `setns`/`unshare` of net, ipc, uts, pid (for
//! children) and cgroup act on the calling thread only, and a mount namespace too once the
//! thread has its own `fs_struct` (`unshare(CLONE_FS)`). So the agent does that in a
//! short-lived thread, which then ends, leaving the rest of the agent where it was.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::{unshare, CloneFlags};

/// One namespace type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    Ipc,
    Uts,
    Net,
    Pid,
    Cgroup,
    Mnt,
}

impl NsKind {
    /// Its file name under `/proc/<pid>/ns/`.
    pub fn proc_name(self) -> &'static str {
        match self {
            Self::Ipc => "ipc",
            Self::Uts => "uts",
            Self::Net => "net",
            Self::Pid => "pid",
            Self::Cgroup => "cgroup",
            Self::Mnt => "mnt",
        }
    }

    pub fn clone_flag(self) -> CloneFlags {
        match self {
            Self::Ipc => CloneFlags::CLONE_NEWIPC,
            Self::Uts => CloneFlags::CLONE_NEWUTS,
            Self::Net => CloneFlags::CLONE_NEWNET,
            Self::Pid => CloneFlags::CLONE_NEWPID,
            Self::Cgroup => CloneFlags::CLONE_NEWCGROUP,
            Self::Mnt => CloneFlags::CLONE_NEWNS,
        }
    }
}

/// An open namespace.
#[derive(Debug)]
pub struct NsFd {
    pub kind: NsKind,
    pub fd: OwnedFd,
}

/// Opens namespace `kind` of process `pid`.
pub fn open_ns(pid: i32, kind: NsKind) -> io::Result<NsFd> {
    let path = format!("/proc/{pid}/ns/{}", kind.proc_name());
    let file =
        File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
    Ok(NsFd {
        kind,
        fd: file.into(),
    })
}

/// The sandbox's shared namespaces.
#[derive(Debug)]
pub struct PodNamespaces {
    pub net: NsFd,
    pub ipc: NsFd,
}

/// Creates the sandbox's network namespace (with loopback up) and ipc namespace in a
/// throw-away thread and returns fds that keep them alive.
pub fn create_pod_namespaces() -> io::Result<PodNamespaces> {
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<PodNamespaces> {
            unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWIPC).map_err(|e| {
                io::Error::new(io::Error::from(e).kind(), format!("unshare net+ipc: {e}"))
            })?;
            loopback_up()?;
            let open = |kind: NsKind| -> io::Result<NsFd> {
                let path = format!("/proc/thread-self/ns/{}", kind.proc_name());
                let file = File::open(&path)
                    .map_err(|e| io::Error::new(e.kind(), format!("open {path}: {e}")))?;
                Ok(NsFd {
                    kind,
                    fd: file.into(),
                })
            };
            Ok(PodNamespaces {
                net: open(NsKind::Net)?,
                ipc: open(NsKind::Ipc)?,
            })
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}

/// Sets `IFF_UP` on `lo` in the calling thread's network namespace.
pub fn loopback_up() -> io::Result<()> {
    let socket = nix::sys::socket::socket(
        nix::sys::socket::AddressFamily::Inet,
        nix::sys::socket::SockType::Datagram,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| io::Error::new(io::Error::from(e).kind(), format!("socket for lo: {e}")))?;
    // SAFETY: ifreq is plain data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name from and writes the flags into `req`, which lives
    // on this frame; the socket fd is open.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("SIOCGIFFLAGS lo: {e}")));
    }
    // SAFETY: the union member ifru_flags is the one SIOCGIFFLAGS filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(socket.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } != 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(e.kind(), format!("SIOCSIFFLAGS lo: {e}")));
    }
    Ok(())
}

/// A running container's namespaces, opened from its init process right after it was
/// created, for exec processes to join.
#[derive(Debug)]
pub struct ContainerNamespaces {
    pub all: Vec<NsFd>,
}

impl ContainerNamespaces {
    /// Opens the namespaces of `pid` that an exec process joins. The order is the order of
    /// joining: the mount namespace last (joining it changes the thread's root).
    pub fn open(pid: i32, cgroup: bool) -> io::Result<Self> {
        let mut kinds = vec![NsKind::Ipc, NsKind::Uts, NsKind::Net, NsKind::Pid];
        if cgroup {
            kinds.push(NsKind::Cgroup);
        }
        kinds.push(NsKind::Mnt);
        let all = kinds
            .into_iter()
            .map(|k| open_ns(pid, k))
            .collect::<io::Result<_>>()?;
        Ok(Self { all })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ns_kind_names_and_flags() {
        assert_eq!(NsKind::Net.proc_name(), "net");
        assert_eq!(NsKind::Mnt.clone_flag(), CloneFlags::CLONE_NEWNS);
        assert_eq!(NsKind::Pid.clone_flag(), CloneFlags::CLONE_NEWPID);
    }

    #[test]
    fn test_open_own_namespace() {
        let ns = open_ns(std::process::id() as i32, NsKind::Uts).unwrap();
        assert_eq!(ns.kind, NsKind::Uts);
        assert!(open_ns(-5, NsKind::Uts).is_err());
    }
}
