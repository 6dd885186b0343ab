//! aarch64: a board in the style of QEMU's `virt`, booted from a UEFI ROM in
//! flash.
//!
//! - [`layout`]: the memory map and interrupt numbers (pure).
//! - [`fdt`]: the device tree the ROM reads (pure).

pub mod fdt;
pub mod layout;
