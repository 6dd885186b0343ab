//! The aarch64 board: a VM in the style of QEMU's `virt`, booted from the
//! UEFI ROM in flash0, which reads the kernel and the ACPI tables from
//! fw_cfg and the hardware from the device tree.
//!
//! - [`tables`]: the DSDT, ACPI tables, command line and fw_cfg items (pure).
//! - `vm` (aarch64 hosts only): [`build_vm`], the assembly.

pub mod tables;

#[cfg(target_arch = "aarch64")]
pub use vm::{build_vm, BuildError};

#[cfg(target_arch = "aarch64")]
mod vm;
