//! Putting an aarch64 vCPU into its boot state through KVM: the preferred
//! target with PSCI 0.2+, vCPU 0 at the reset vector of flash0, the others
//! powered off until the guest starts them with PSCI CPU_ON (KVM serves
//! PSCI itself).

use kvm_bindings::{
    kvm_vcpu_init, KVM_ARM_VCPU_POWER_OFF, KVM_ARM_VCPU_PSCI_0_2, KVM_REG_ARM64, KVM_REG_ARM_CORE,
    KVM_REG_SIZE_U64,
};
use kvm_ioctls::{VcpuFd, VmFd};

/// Why a vCPU could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum VcpuSetupError {
    #[error("KVM_ARM_PREFERRED_TARGET failed")]
    PreferredTarget(#[source] kvm_ioctls::Error),
    #[error("vCPU {vcpu}: {op} failed")]
    Ioctl {
        vcpu: u32,
        op: &'static str,
        #[source]
        source: kvm_ioctls::Error,
    },
}

/// Offsets in `struct kvm_regs` (arch/arm64/include/uapi/asm/kvm.h): the
/// 31 general registers, then sp, pc, pstate, 8 bytes each.
const REGS_X0: u64 = 0;
const REGS_PC: u64 = 8 * 32;
const REGS_PSTATE: u64 = 8 * 33;

/// PSTATE at reset: EL1 with SP_EL1 (EL1h), debug, SError, IRQ and FIQ masked.
pub const PSTATE_EL1H_DAIF: u64 = 0x3c5;

/// The KVM_{GET,SET}_ONE_REG id of the core register at `offset` of `kvm_regs`.
pub const fn core_reg(offset: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE as u64 | (offset / 4)
}

/// The target KVM prefers for this host, with PSCI 0.2 (KVM then offers
/// PSCI 1.x: SYSTEM_OFF and SYSTEM_RESET end in KVM system events).
pub fn preferred_target(vm: &VmFd) -> Result<kvm_vcpu_init, VcpuSetupError> {
    let mut kvi = kvm_vcpu_init::default();
    vm.get_preferred_target(&mut kvi)
        .map_err(VcpuSetupError::PreferredTarget)?;
    kvi.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
    Ok(kvi)
}

/// KVM_ARM_VCPU_INIT for vCPU `index` (others than 0 start powered off),
/// and for vCPU 0 its entry: PC = `entry`, x0 = `x0`.
pub fn init_vcpu(
    fd: &VcpuFd,
    target: &kvm_vcpu_init,
    index: u32,
    entry: u64,
    x0: u64,
) -> Result<(), VcpuSetupError> {
    let err = |op| {
        move |source| VcpuSetupError::Ioctl {
            vcpu: index,
            op,
            source,
        }
    };
    let mut kvi = *target;
    if index > 0 {
        kvi.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
    }
    fd.vcpu_init(&kvi).map_err(err("KVM_ARM_VCPU_INIT"))?;
    if index == 0 {
        for (offset, value, op) in [
            (REGS_PSTATE, PSTATE_EL1H_DAIF, "KVM_SET_ONE_REG pstate"),
            (REGS_PC, entry, "KVM_SET_ONE_REG pc"),
            (REGS_X0, x0, "KVM_SET_ONE_REG x0"),
        ] {
            fd.set_one_reg(core_reg(offset), &value.to_le_bytes())
                .map_err(err(op))?;
        }
    }
    Ok(())
}

/// PC and PSTATE of a vCPU, for error reports.
pub fn dump_registers(fd: &VcpuFd) -> String {
    let mut pc = [0u8; 8];
    let mut pstate = [0u8; 8];
    match (
        fd.get_one_reg(core_reg(REGS_PC), &mut pc),
        fd.get_one_reg(core_reg(REGS_PSTATE), &mut pstate),
    ) {
        (Ok(_), Ok(_)) => format!(
            "pc={:#x} pstate={:#x}",
            u64::from_le_bytes(pc),
            u64::from_le_bytes(pstate)
        ),
        _ => String::from("(registers unreadable)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_core_reg_ids_match_the_kernel_encoding() {
        // KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offset / 4
        assert_eq!(core_reg(REGS_PC), 0x6030_0000_0010_0040);
        assert_eq!(core_reg(REGS_PSTATE), 0x6030_0000_0010_0042);
        assert_eq!(core_reg(REGS_X0), 0x6030_0000_0010_0000);
    }
}
