//! The aarch64 board: a VM in the style of QEMU's `virt`, booted from the
//! UEFI ROM in flash0, which reads the kernel and the ACPI tables from
//! fw_cfg and the hardware from the device tree.
//!
//! - [`tables`]: the DSDT, ACPI tables, command line and fw_cfg items (pure).

pub mod tables;

#[cfg(target_arch = "aarch64")]
pub use vm::{build_vm, BuildError};

#[cfg(target_arch = "aarch64")]
mod vm {
    use crate::builder::BootOptions;
    use crate::config::HypervisorConfig;
    use crate::vmm::Vmm;

    /// Why the VM could not be built.
    #[derive(Debug, thiserror::Error)]
    pub enum BuildError {
        #[error("aarch64 boot not implemented yet")]
        NotImplemented,
    }

    pub fn build_vm(_cfg: &HypervisorConfig, _opts: &BootOptions) -> Result<Vmm, BuildError> {
        Err(BuildError::NotImplemented)
    }
}
