//! The ioctl request numbers the filters allow (`_IOC` encoding, the same on x86_64
//! and aarch64). kvm-ioctls keeps its numbers private, so they are computed here from
//! kvm-bindings' structure sizes, as the kernel's headers do.

use std::mem::size_of;

const KVMIO: u64 = 0xAE;
const IOC_WRITE: u64 = 1;
#[cfg(target_arch = "x86_64")]
const IOC_READ: u64 = 2;

const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}

/// vCPU: enter the guest.
pub const KVM_RUN: u64 = ioc(0, 0x80, 0);
/// VM: add, move or delete a guest memory slot (memory hot-add).
pub const KVM_SET_USER_MEMORY_REGION: u64 = ioc(
    IOC_WRITE,
    0x46,
    size_of::<kvm_bindings::kvm_userspace_memory_region>(),
);
/// VM: an eventfd that raises a guest interrupt (disk hot-add).
pub const KVM_IRQFD: u64 = ioc(IOC_WRITE, 0x76, size_of::<kvm_bindings::kvm_irqfd>());
/// VM: an eventfd KVM signals on a guest MMIO write (disk hot-add's queue notify).
pub const KVM_IOEVENTFD: u64 = ioc(IOC_WRITE, 0x79, size_of::<kvm_bindings::kvm_ioeventfd>());
/// vCPU: the general registers (the dump after a failed vCPU).
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_REGS: u64 = ioc(IOC_READ, 0x81, size_of::<kvm_bindings::kvm_regs>());
/// vCPU: the special registers (the dump after a failed vCPU).
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_SREGS: u64 = ioc(IOC_READ, 0x83, size_of::<kvm_bindings::kvm_sregs>());
/// VM: create a vCPU (vCPU hot-add).
pub const KVM_CREATE_VCPU: u64 = ioc(0, 0x41, 0);
/// vCPU: its CPUID (vCPU hot-add).
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_CPUID2: u64 = ioc(IOC_WRITE, 0x90, size_of::<kvm_bindings::kvm_cpuid2>());
/// vCPU: its MSRs (vCPU hot-add).
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_MSRS: u64 = ioc(IOC_WRITE, 0x89, size_of::<kvm_bindings::kvm_msrs>());
/// vCPU: its local APIC (vCPU hot-add: LINT0/LINT1 wiring).
#[cfg(target_arch = "x86_64")]
pub const KVM_GET_LAPIC: u64 = ioc(IOC_READ, 0x8e, size_of::<kvm_bindings::kvm_lapic_state>());
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_LAPIC: u64 = ioc(IOC_WRITE, 0x8f, size_of::<kvm_bindings::kvm_lapic_state>());
/// vCPU: its FPU state (vCPU hot-add).
#[cfg(target_arch = "x86_64")]
pub const KVM_SET_FPU: u64 = ioc(IOC_WRITE, 0x8d, size_of::<kvm_bindings::kvm_fpu>());
/// vCPU: one register (aarch64's register dump).
#[cfg(target_arch = "aarch64")]
pub const KVM_GET_ONE_REG: u64 = ioc(IOC_WRITE, 0xab, size_of::<kvm_bindings::kvm_one_reg>());

/// The vCPU threads' ioctls: KVM_RUN, and reading registers for the dump after a failure.
/// On aarch64 also KVM_SET_USER_MEMORY_REGION: the UEFI variable store's flash maps its
/// array as a read-only slot in read-array mode and unmaps it while a command runs (QEMU's
/// "ROMD"), and the guest's command write that switches it arrives as an MMIO exit on a
/// vCPU thread (`builder::aarch64`'s `RomdMirror`).
pub fn vcpu() -> Vec<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS]
    }
    #[cfg(target_arch = "aarch64")]
    {
        vec![KVM_RUN, KVM_GET_ONE_REG, KVM_SET_USER_MEMORY_REGION]
    }
}

/// Hot-adding memory (a new slot, its interrupt already registered at boot).
pub fn memory_hotplug() -> Vec<u64> {
    vec![KVM_SET_USER_MEMORY_REGION]
}

/// Hot-adding a disk: its interrupt and its queue-notify eventfds.
pub fn disk_hotplug() -> Vec<u64> {
    vec![KVM_IRQFD, KVM_IOEVENTFD]
}

/// Hot-adding a vCPU: create it and set it up like a boot vCPU (CPUID, MSRs, LAPIC, FPU).
pub fn cpu_hotplug() -> Vec<u64> {
    #[cfg(target_arch = "x86_64")]
    {
        vec![
            KVM_CREATE_VCPU,
            KVM_SET_CPUID2,
            KVM_SET_MSRS,
            KVM_GET_LAPIC,
            KVM_SET_LAPIC,
            KVM_SET_FPU,
        ]
    }
    #[cfg(target_arch = "aarch64")]
    {
        vec![KVM_CREATE_VCPU]
    }
}

/// A terminal: read and set its mode (`-t`'s raw mode), its window size.
pub fn terminal() -> Vec<u64> {
    vec![libc::TCGETS, libc::TCSETS, libc::TIOCGWINSZ]
}

/// `set_nonblocking` on a socket (Rust's std uses FIONBIO).
pub const FIONBIO: u64 = libc::FIONBIO;

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the kernel's headers give (and strace decodes).
    #[test]
    fn test_kvm_ioctl_numbers_match_the_kernel_headers() {
        assert_eq!(KVM_RUN, 0xae80);
        assert_eq!(KVM_SET_USER_MEMORY_REGION, 0x4020_ae46);
        assert_eq!(KVM_IRQFD, 0x4020_ae76);
        assert_eq!(KVM_IOEVENTFD, 0x4040_ae79);
        assert_eq!(KVM_CREATE_VCPU, 0xae41);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(KVM_SET_CPUID2, 0x4008_ae90);
            assert_eq!(KVM_SET_MSRS, 0x4008_ae89);
            assert_eq!(KVM_GET_LAPIC, 0x8400_ae8e);
            assert_eq!(KVM_SET_LAPIC, 0x4400_ae8f);
            assert_eq!(KVM_SET_FPU, 0x41a0_ae8d);
            assert_eq!(KVM_GET_REGS, 0x8090_ae81);
            assert_eq!(KVM_GET_SREGS, 0x8138_ae83);
        }
        #[cfg(target_arch = "aarch64")]
        assert_eq!(KVM_GET_ONE_REG, 0x4010_aeab);
    }
}
