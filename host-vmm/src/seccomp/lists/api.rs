//! The control socket's thread: one request per connection (accept, read with a
//! timeout, write), and what the requests do: memory hot-add (an anonymous mapping, a
//! KVM memory slot, an eventfd write) and disk hot-add (open and size the file, an
//! irqfd and ioeventfds registered with KVM) and vCPU hot-plug (create and set up a
//! vCPU; its thread comes from the thread factory; park a removed one: tgkill with the
//! kick signal).

use libc::*;

use super::super::ioctls;
use super::super::rules::List;
use super::sys;

pub fn list() -> List {
    let mut l = super::base::list();
    let mut vm_ioctls = ioctls::memory_hotplug();
    vm_ioctls.extend(ioctls::disk_hotplug());
    vm_ioctls.extend(ioctls::cpu_hotplug());
    l.allow(&[
        SYS_accept4,
        SYS_read,
        SYS_recvfrom,
        SYS_sendto,
        SYS_setsockopt,
        SYS_lseek,
        SYS_eventfd2,
    ])
    .allow_values(SYS_tgkill, 2, &[SIGRTMIN() as u64])
    .allow(sys::POLL)
    .allow(sys::OPEN)
    .allow(sys::STAT)
    .allow_values(SYS_ioctl, 1, &vm_ioctls)
    .allow_values(
        SYS_fcntl,
        1,
        &[F_DUPFD_CLOEXEC as u64, F_GETFL as u64, F_SETFL as u64],
    );
    l
}
