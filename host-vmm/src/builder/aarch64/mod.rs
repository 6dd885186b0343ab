//! The aarch64 board: a VM in the style of QEMU's `virt`, booted from the
//! UEFI ROM in flash0, which reads the kernel and the ACPI tables from
//! fw_cfg and the hardware from the device tree.
//!
//! - [`tables`]: the DSDT, ACPI tables, command line and fw_cfg items (pure).
//! - `board` (aarch64 hosts only): the board's steps of `build_vm`;
//!   `rom`: the flash's memory slots; `error`: the board's errors.

pub mod tables;

#[cfg(target_arch = "aarch64")]
pub(crate) mod board;
#[cfg(target_arch = "aarch64")]
mod error;
#[cfg(target_arch = "aarch64")]
mod rom;
