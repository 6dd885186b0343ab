//! The command-line side: the agent client (a Unix socket, the hybrid vsock handshake,
//! ttrpc, which starts a thread per connection), the stdio pumps (read stdin, write
//! stdout/stderr), the terminal (`-t`), `run -m`'s memory hot-add (a KVM memory slot),
//! waiting with timeouts. Files only opened read-only (the sandbox's pid file).

use libc::*;

use super::super::ioctls;
use super::super::rules::List;
use super::sys;

pub fn list() -> List {
    let mut l = super::base::list();
    l.merge(&super::base::thread_start());
    let mut ioctl = ioctls::terminal();
    ioctl.push(ioctls::FIONBIO);
    ioctl.extend(ioctls::memory_hotplug());
    l.allow(&[
        SYS_read,
        SYS_readv,
        SYS_recvfrom,
        SYS_sendto,
        SYS_recvmsg,
        SYS_sendmsg,
        SYS_connect,
        SYS_shutdown,
        SYS_setsockopt,
        SYS_getsockopt,
        SYS_getsockname,
        SYS_getpeername,
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_eventfd2,
        SYS_pipe2,
        SYS_lseek,
        SYS_rt_sigtimedwait,
        // Liveness of a sandbox: its pid file's lock.
        SYS_flock,
        // Seen in the test host on a client's error path (`cpus --set` refused, `run`
        // stopped while booting), from library code on the way out; a handler change
        // gives a client thread nothing the rest of its list does not.
        SYS_rt_sigaction,
        // The runtime root depends on who runs host-vmm.
        SYS_geteuid,
        SYS_getuid,
    ])
    .allow(sys::POLL)
    .allow(sys::EPOLL_WAIT)
    .allow(sys::STAT)
    .allow_values(SYS_socket, 0, &[AF_UNIX as u64])
    // ttrpc's client: a socket pair to stop its reader, marked close-on-exec.
    .allow_values(SYS_socketpair, 0, &[AF_UNIX as u64])
    .allow_values(SYS_ioctl, 1, &ioctl)
    .allow_values(
        SYS_fcntl,
        1,
        &[
            F_GETFL as u64,
            F_SETFL as u64,
            F_SETFD as u64,
            F_DUPFD_CLOEXEC as u64,
        ],
    );
    // Read-only opens (the sandbox's pid file) come with `thread_start`.
    l
}
