//! vCPU threads: KVM_RUN and what the exits they handle do: console output (write),
//! interrupts (eventfd writes), and a virtio device's activation on DRIVER_OK (a kill
//! eventfd, the worker's epoll set, a duplicated fd; the worker thread itself comes from
//! the thread factory). Reading registers for the dump after a failure.

use libc::*;

use super::super::ioctls;
use super::super::rules::List;

pub fn list(first_entry_hook: bool) -> List {
    let mut l = super::base::list();
    l.allow_values(SYS_ioctl, 1, &ioctls::vcpu())
        // Eventfd reads (a virtio transport clearing a notification).
        .allow(&[SYS_read, SYS_eventfd2, SYS_epoll_create1, SYS_epoll_ctl])
        .allow_values(SYS_fcntl, 1, &[F_DUPFD_CLOEXEC as u64]);
    if first_entry_hook {
        // The benchmarks' hook (kvm::first_entry): a timer kicks the first entry, then
        // the process reads its CPU time and stops itself.
        l.allow(&[
            SYS_timer_create,
            SYS_timer_settime,
            SYS_timer_delete,
            SYS_getrusage,
        ])
        .allow_values(SYS_tgkill, 2, &[SIGSTOP as u64]);
    }
    l
}
