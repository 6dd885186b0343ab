//! Why the aarch64 board's own steps fail.

use std::path::PathBuf;

use super::tables::CmdlineError;
use crate::acpi::AcpiError;
use crate::arch::aarch64::fdt::FdtError;
use crate::arch::aarch64::gic::GicError;
use crate::arch::aarch64::layout::LayoutError;
use crate::arch::aarch64::vcpu::VcpuSetupError;
use crate::devices::firmware::flash::FlashError;
use crate::devices::firmware::fw_cfg::ItemError;

/// Where Debian puts the ROM, for the error that names a missing one.
pub const DEBIAN_FIRMWARE: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";

/// Why the aarch64 board could not set up the VM.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error("firmware: not set; aarch64 boots a UEFI ROM (Debian's is {DEBIAN_FIRMWARE}, package qemu-efi-aarch64)")]
    NoFirmware,
    #[error("firmware: cannot read {} (Debian's ROM is {DEBIAN_FIRMWARE}, package qemu-efi-aarch64)", path.display())]
    Firmware {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: cannot read {}", path.display())]
    ReadFile {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error("cannot map the firmware ROM: {0}")]
    RomMap(String),
    #[error("default_vcpus: cannot set up the vCPUs")]
    VcpuSetup(#[source] VcpuSetupError),
    #[error(transparent)]
    Gic(#[from] GicError),
    #[error("the GIC is created with the vCPUs, before the boot tables")]
    NoGic,
    #[error("cannot create the flash variable store")]
    Flash(#[source] FlashError),
    #[error("cannot build the ACPI tables")]
    Acpi(#[source] AcpiError),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error("cannot build the fw_cfg items")]
    FwCfg(#[source] ItemError),
    #[error(transparent)]
    Fdt(#[from] FdtError),
    #[error("cannot write the device tree to guest memory")]
    FdtWrite(#[source] vm_memory::GuestMemoryError),
}
