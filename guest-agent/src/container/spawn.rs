//! Starting the helper: the agent binary re-executed as `ga-container-helper` in the right
//! namespaces, with the process's stdio as fds 0-2 and its end of the channel as fd 3.
//!
//! Why re-exec: the agent is multi-threaded, and after `fork` in a multi-threaded process only
//! async-signal-safe calls are allowed until `exec` (another thread may hold the allocator's
//! or the logger's lock). Container setup needs much more than that, so the child of `clone`
//! does nothing but `dup2` and `execveat` of the agent's own binary; the fresh, single-threaded
//! helper then does the setup (see `helper`).
//!
//! How, step by step ([`spawn_helper`]):
//! 1. A throw-away thread joins the namespaces in `join` (`setns` acts on the calling thread
//!    only; `unshare(CLONE_FS)` first when a mount namespace is among them). A pid namespace
//!    joined this way is the one its children are born in.
//! 2. Under the reaper's lock (so the exit cannot be missed) it calls `clone` with the new
//!    namespaces in `new_namespaces` and `SIGCHLD`, like `fork` (no `CLONE_VM`).
//! 3. The child `dup2`s the fds into place (they were first duplicated to fds >= 10, so no
//!    source is also a target) and `execveat`s the agent binary by fd (`/proc/self/exe`,
//!    opened before the thread joined any mount namespace).
//! 4. The parent opens a pidfd for the child, for race-free signals later.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::Receiver;

use nix::sched::{setns, unshare, CloneFlags};
use nix::unistd::Pid;

use crate::reaper::{ChildPid, ExitStatus, Reaper};

use super::namespaces::NsFd;

/// `argv[0]` of the helper; [`crate::entry`] dispatches on it before anything else.
pub const HELPER_ARGV0: &str = "ga-container-helper";

/// The fd the helper finds its channel on.
pub const CHANNEL_FD: RawFd = 3;

/// Lowest fd the sources are moved to before `clone`, above every target (0-3).
const HIGH_FD: RawFd = 10;

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("open the agent binary /proc/self/exe")]
    Exe(#[source] io::Error),
    #[error("duplicate an fd for the helper")]
    Dup(#[source] io::Error),
    #[error("unshare(CLONE_FS) before joining a mount namespace")]
    UnshareFs(#[source] nix::Error),
    #[error("join the {0} namespace")]
    Join(&'static str, #[source] nix::Error),
    #[error("clone the helper")]
    Clone(#[source] io::Error),
    #[error("pidfd_open of the helper (pid {0})")]
    Pidfd(i32, #[source] io::Error),
    #[error("the spawner thread panicked")]
    Panicked,
}

/// What to spawn.
pub struct HelperSpawn<'a> {
    /// Namespaces to join first, in order.
    pub join: &'a [&'a NsFd],
    /// New namespaces for the helper (`CLONE_NEW*`).
    pub new_namespaces: CloneFlags,
    /// The process's stdin, stdout, stderr.
    pub stdio: [BorrowedFd<'a>; 3],
    /// The helper's end of the channel.
    pub channel: BorrowedFd<'a>,
}

/// A spawned helper.
#[derive(Debug)]
pub struct Spawned {
    pub pid: Pid,
    pub pidfd: OwnedFd,
    pub exit: Receiver<ExitStatus>,
}

struct Cloned {
    pid: Pid,
    pidfd: OwnedFd,
}

impl ChildPid for Cloned {
    fn child_pid(&self) -> Pid {
        self.pid
    }
}

/// Spawns the helper (see the module doc).
pub fn spawn_helper(reaper: &Reaper, request: &HelperSpawn<'_>) -> Result<Spawned, SpawnError> {
    let exe = File::options()
        .read(true)
        .custom_flags(libc::O_PATH)
        .open("/proc/self/exe")
        .map_err(SpawnError::Exe)?;
    let sources = [
        request.stdio[0],
        request.stdio[1],
        request.stdio[2],
        request.channel,
    ];
    let high: Vec<OwnedFd> = sources
        .iter()
        .map(|fd| dup_high(*fd))
        .collect::<Result<_, _>>()
        .map_err(SpawnError::Dup)?;
    let raw: [RawFd; 4] = [0, 1, 2, 3].map(|i| high[i].as_raw_fd());
    let argv0 = CString::new(HELPER_ARGV0).map_err(|e| SpawnError::Clone(io::Error::other(e)))?;
    let exe_fd = exe.as_raw_fd();
    let flags = request.new_namespaces;
    let join = request.join;

    let (cloned, exit) = std::thread::scope(|s| {
        s.spawn(|| {
            if join
                .iter()
                .any(|ns| ns.kind == super::namespaces::NsKind::Mnt)
            {
                unshare(CloneFlags::CLONE_FS).map_err(SpawnError::UnshareFs)?;
            }
            for ns in join {
                setns(ns.fd.as_fd(), ns.kind.clone_flag())
                    .map_err(|e| SpawnError::Join(ns.kind.proc_name(), e))?;
            }
            // Built here: raw pointers cannot cross threads.
            let argv = [argv0.as_ptr(), std::ptr::null()];
            let envp = [std::ptr::null::<libc::c_char>()];
            reaper.spawn(|| {
                // SAFETY: the pointers point into `argv`, `envp` and `raw`, which outlive the
                // call; the child only runs async-signal-safe calls (see clone_exec).
                let pid = unsafe { clone_exec(flags, &raw, exe_fd, argv.as_ptr(), envp.as_ptr()) }
                    .map_err(SpawnError::Clone)?;
                match pidfd_open(pid) {
                    Ok(pidfd) => Ok(Cloned { pid, pidfd }),
                    Err(e) => {
                        // SAFETY: kill with integers; the child is ours and not yet reaped
                        // (the reaper's lock is held), so the pid is still this child.
                        unsafe { libc::kill(pid.as_raw(), libc::SIGKILL) };
                        Err(SpawnError::Pidfd(pid.as_raw(), e))
                    }
                }
            })
        })
        .join()
        .unwrap_or(Err(SpawnError::Panicked))
    })?;
    Ok(Spawned {
        pid: cloned.pid,
        pidfd: cloned.pidfd,
        exit,
    })
}

/// A close-on-exec duplicate of `fd` numbered at least [`HIGH_FD`].
fn dup_high(fd: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an fd we borrow returns a new fd that nobody else owns.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, HIGH_FD) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh fd owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// `clone(flags | SIGCHLD)`; the child puts `fds[i]` at fd `i` and execs `exe`.
///
/// # Safety
/// `argv` and `envp` must be null-terminated arrays of valid C strings and `fds`/`exe` open
/// fds. In the child (a copy of a multi-threaded process) only `dup2`, `execveat` and `_exit`
/// run: all async-signal-safe, no allocation, no locks.
unsafe fn clone_exec(
    flags: CloneFlags,
    fds: &[RawFd; 4],
    exe: RawFd,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
) -> io::Result<Pid> {
    let flags = libc::c_ulong::from(flags.bits() as u32) | libc::SIGCHLD as libc::c_ulong;
    // SAFETY: clone without CLONE_VM and with a null stack behaves like fork: the child gets a
    // copy of the address space and continues here on its copy of this stack. All the other
    // arguments are unused without the matching CLONE_* flags.
    let rc = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    if rc > 0 {
        // Pids fit in i32.
        return Ok(Pid::from_raw(rc as i32));
    }
    // Child.
    for (target, source) in fds.iter().enumerate() {
        // SAFETY: dup2 on open fds; targets 0-3 are below every source (>= HIGH_FD).
        if unsafe { libc::dup2(*source, target as RawFd) } < 0 {
            // SAFETY: _exit is async-signal-safe and never returns.
            unsafe { libc::_exit(126) };
        }
    }
    // SAFETY: the caller guarantees the arrays; execveat only returns on failure.
    unsafe {
        libc::syscall(
            libc::SYS_execveat,
            exe,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        );
        libc::_exit(127)
    }
}

/// `pidfd_open(pid, 0)`.
fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags; it returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd from the kernel, owned by nothing else. Fds fit in i32.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// `pidfd_send_signal(pidfd, signal, NULL, 0)`.
pub fn pidfd_signal(pidfd: BorrowedFd<'_>, signal: i32) -> io::Result<()> {
    // SAFETY: pidfd_send_signal with a null siginfo sends like kill(); the fd is open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
