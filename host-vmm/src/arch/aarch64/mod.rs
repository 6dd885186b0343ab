//! aarch64: a board in the style of QEMU's `virt`, booted from a UEFI ROM in
//! flash.
//!
//! - [`layout`]: the memory map and interrupt numbers (pure).
//! - [`fdt`]: the device tree the ROM reads (pure).
//! - `gic`, `vcpu` (aarch64 hosts only): the in-kernel GIC and the vCPUs' boot state.

pub mod fdt;
#[cfg(target_arch = "aarch64")]
pub mod gic;
pub mod layout;
#[cfg(target_arch = "aarch64")]
pub mod vcpu;
