//! Putting an x86_64 vCPU into its boot state through KVM.

use kvm_bindings::{CpuId, Msrs};
use kvm_ioctls::VcpuFd;

use super::cpuid::{adjust_cpuid, VcpuTopology};
use super::dump::format_regs;
use super::lapic::set_lint;
use super::msrs::boot_msrs;
use super::regs::{boot_fpu, boot_regs, boot_sregs, EntryMode};

/// Why a vCPU could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum VcpuSetupError {
    #[error("vCPU {vcpu}: {op} failed")]
    Ioctl {
        vcpu: u32,
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
    #[error("vCPU {vcpu}: KVM_SET_MSRS set {set} of {total} MSRs; MSR {msr:#x} was refused")]
    Msr {
        vcpu: u32,
        set: usize,
        total: usize,
        msr: u32,
    },
    #[error("vCPU {vcpu}: cannot build the MSR list")]
    MsrList { vcpu: u32 },
}

/// Where the boot vCPU starts.
#[derive(Debug, Clone, Copy)]
pub struct BootEntry {
    pub mode: EntryMode,
    pub entry: u64,
}

/// CPUID, MSRs, LAPIC for every vCPU; registers for the boot vCPU
/// (`boot` is `Some`). The others wait in the in-kernel LAPIC for INIT/SIPI.
pub fn configure_vcpu(
    fd: &VcpuFd,
    supported_cpuid: &CpuId,
    topo: VcpuTopology,
    boot: Option<BootEntry>,
) -> Result<(), VcpuSetupError> {
    let vcpu = topo.index;
    let err = |op| move |source| VcpuSetupError::Ioctl { vcpu, op, source };

    let mut cpuid = supported_cpuid.clone();
    adjust_cpuid(cpuid.as_mut_slice(), topo);
    fd.set_cpuid2(&cpuid).map_err(err("KVM_SET_CPUID2"))?;

    let entries = boot_msrs();
    let msrs = Msrs::from_entries(&entries).map_err(|_| VcpuSetupError::MsrList { vcpu })?;
    let set = fd.set_msrs(&msrs).map_err(err("KVM_SET_MSRS"))?;
    if set != entries.len() {
        return Err(VcpuSetupError::Msr {
            vcpu,
            set,
            total: entries.len(),
            msr: entries.get(set).map_or(0, |e| e.index),
        });
    }

    let mut lapic = fd.get_lapic().map_err(err("KVM_GET_LAPIC"))?;
    set_lint(&mut lapic);
    fd.set_lapic(&lapic).map_err(err("KVM_SET_LAPIC"))?;

    fd.set_fpu(&boot_fpu()).map_err(err("KVM_SET_FPU"))?;
    if let Some(b) = boot {
        let sregs = fd.get_sregs().map_err(err("KVM_GET_SREGS"))?;
        fd.set_sregs(&boot_sregs(b.mode, sregs))
            .map_err(err("KVM_SET_SREGS"))?;
        fd.set_regs(&boot_regs(b.mode, b.entry))
            .map_err(err("KVM_SET_REGS"))?;
    }
    Ok(())
}

/// The vCPU's registers as text (or why they could not be read).
pub fn dump_registers(fd: &VcpuFd) -> String {
    match (fd.get_regs(), fd.get_sregs()) {
        (Ok(regs), Ok(sregs)) => format_regs(&regs, &sregs),
        (Err(e), _) | (_, Err(e)) => format!("(registers unavailable: {e})"),
    }
}
