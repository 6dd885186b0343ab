//! The virtio workers.
//!
//! virtio-vsock: one epoll loop over its queues' eventfds and the Unix sockets of
//! hybrid vsock (accepting host clients on `vsock.sock`, connecting to `vsock.sock_PORT`
//! for the guest's connections, non-blocking reads and writes).
//!
//! virtio-blk: one epoll loop over its queue eventfd, `pread`/`pwrite`/`fdatasync` on
//! the disk file.

use libc::*;

use super::super::ioctls;
use super::super::rules::List;
use super::sys;

pub fn vsock() -> List {
    let mut l = super::base::list();
    l.allow(&[
        SYS_epoll_ctl,
        SYS_read,
        SYS_readv,
        SYS_recvfrom,
        SYS_sendto,
        SYS_recvmsg,
        SYS_sendmsg,
        SYS_accept4,
        SYS_connect,
        SYS_shutdown,
        SYS_getsockopt,
    ])
    .allow(sys::EPOLL_WAIT)
    .allow_values(SYS_socket, 0, &[AF_UNIX as u64])
    .allow_values(SYS_ioctl, 1, &[ioctls::FIONBIO])
    .allow_values(SYS_fcntl, 1, &[F_GETFL as u64, F_SETFL as u64]);
    l
}

pub fn block() -> List {
    let mut l = super::base::list();
    l.allow(&[
        // Its epoll set is made when the worker starts.
        SYS_epoll_create1,
        SYS_epoll_ctl,
        SYS_read,
        SYS_pread64,
        SYS_pwrite64,
        SYS_preadv,
        SYS_pwritev,
        SYS_fsync,
        SYS_fdatasync,
    ])
    .allow(sys::EPOLL_WAIT);
    l
}
