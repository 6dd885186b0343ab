//! Why the x86 board's own steps fail.

use crate::acpi::AcpiError;
use crate::arch::x86_64::boot_params::BootParamsError;
use crate::arch::x86_64::cmdline::CmdlineError;
use crate::arch::x86_64::e820::LayoutError;
use crate::arch::x86_64::loader::LoadError;
use crate::arch::x86_64::regs::RegsError;
use crate::arch::x86_64::vcpu::VcpuSetupError;

/// Why the x86 board could not set up the VM.
#[derive(Debug, thiserror::Error)]
pub enum BoardError {
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("cannot build the ACPI tables")]
    Acpi(#[source] AcpiError),
    #[error("the ACPI tables end at {end:#x}, past the reserved area ending at {limit:#x}")]
    AcpiTooLarge { end: u64, limit: u64 },
    #[error("cannot write the ACPI table at {addr:#x} to guest memory")]
    AcpiWrite {
        addr: u64,
        #[source]
        source: vm_memory::GuestMemoryError,
    },
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error("cannot write the kernel command line to guest memory")]
    CmdlineWrite(#[source] vm_memory::GuestMemoryError),
    #[error(transparent)]
    BootParams(#[from] BootParamsError),
    #[error(transparent)]
    Regs(#[from] RegsError),
    #[error("default_vcpus: cannot set up the vCPUs")]
    VcpuSetup(#[source] VcpuSetupError),
    #[error("default_vcpus: cannot read the CPUID KVM supports")]
    Cpuid(#[source] kvm_ioctls::Error),
    #[error("cannot register the vCPU kick signal")]
    KickSignal(#[source] vmm_sys_util::errno::Error),
}
