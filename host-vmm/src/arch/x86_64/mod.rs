//! x86_64: memory layout, boot params, e820, registers, CPUID.
//!
//! - [`layout`]: guest physical addresses and fixed I/O ports.
//! - [`e820`]: RAM regions around the MMIO gap and the e820 map.
//! - [`loader`]: bzImage / PVH vmlinux and initrd loading.
//! - [`cmdline`], [`boot_params`]: what the kernel reads at entry.
//! - [`gdt`], [`regs`], [`msrs`], [`cpuid`], [`lapic`]: the vCPU's start state.
//! - [`vcpu`]: applies that state to a KVM vCPU; [`dump`]: register dumps.

pub mod boot_params;
pub mod cmdline;
pub mod cpuid;
pub mod dump;
pub mod e820;
pub mod gdt;
pub mod lapic;
pub mod layout;
pub mod loader;
pub mod msrs;
pub mod regs;
#[cfg(test)]
pub mod test_utils;
pub mod vcpu;
