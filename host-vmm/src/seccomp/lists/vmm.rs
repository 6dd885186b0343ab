//! The thread that runs the VM (`boot`'s main thread, `run`'s `vm` thread): waits for
//! the guest's end, kicks the vCPUs out of KVM_RUN (tgkill with the kick signal only),
//! joins them and tears the sandbox down: wakes the control socket's accept (a connect
//! to it), stops the log sink (shutdown), removes the runtime directory (`remove_dir_all`:
//! open, getdents, unlinkat).

use libc::*;

use super::super::rules::List;
use super::sys;

pub fn list() -> List {
    let mut l = super::base::list();
    l.allow_values(SYS_tgkill, 2, &[SIGRTMIN() as u64])
        .allow_values(SYS_socket, 0, &[AF_UNIX as u64])
        .allow(&[
            SYS_connect,
            SYS_shutdown,
            SYS_getdents64,
            SYS_flock,
            SYS_read,
        ])
        .allow(sys::UNLINK)
        .allow(sys::RENAME)
        .allow(sys::OPEN)
        .allow(sys::STAT)
        .allow_values(
            SYS_fcntl,
            1,
            &[F_GETFL as u64, F_SETFL as u64, F_SETFD as u64],
        );
    l
}
