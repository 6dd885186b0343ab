//! vCPU hot-plug in a VM being built: whether it is on, the controller on the MMIO
//! bus, its DSDT part, and the handle that creates vCPUs like the boot ones.

use std::sync::{Arc, Mutex};

use super::error::BoardError;
use crate::acpi::cpu_hotplug::CpuHotplugAml;
use crate::acpi::DsdtBuilder;
use crate::arch::x86_64::cpuid::VcpuTopology;
use crate::arch::x86_64::layout::CPU_HOTPLUG_MMIO_BASE;
use crate::arch::x86_64::vcpu::configure_vcpu;
use crate::builder::error::BuildError;
use crate::config::HypervisorConfig;
use crate::devices::acpi::cpu_hotplug::{CpuHotplugController, CHP_MMIO_SIZE};
use crate::devices::acpi::ged::GedNotifier;
use crate::devices::{Bus, SharedDevice};
use crate::errors::error_chain;
use crate::hotplug::cpu::{CpuHotplug, VcpuMaker};
use crate::hotplug::cpu_plan::CpuLimits;
use crate::kvm::{VcpuRunContext, Vm};

/// The vCPU limits, when vCPUs can be hot-plugged: more possible than boot vCPUs,
/// and a GED to announce them (it comes with memory hot-plug: `memory_slots > 0`).
pub(super) fn enabled(cfg: &HypervisorConfig) -> Option<CpuLimits> {
    let limits = CpuLimits {
        boot: cfg.default_vcpus,
        max: cfg.default_maxvcpus.max(cfg.default_vcpus),
    };
    (cfg.memory_slots > 0 && limits.max > limits.boot).then_some(limits)
}

/// The controller and the processor devices in the DSDT.
pub(super) fn add_aml(dsdt: &mut DsdtBuilder, limits: CpuLimits) {
    CpuHotplugAml {
        // In the 32-bit MMIO gap.
        controller_base: CPU_HOTPLUG_MMIO_BASE as u32,
        boot_cpus: limits.boot,
        max_cpus: limits.max,
    }
    .add_to(dsdt);
}

/// Puts the controller on the MMIO bus.
pub(super) fn attach_controller(
    mmio: &mut Bus,
    limits: CpuLimits,
) -> Result<Arc<Mutex<CpuHotplugController>>, BuildError> {
    let controller = Arc::new(Mutex::new(CpuHotplugController::new(
        limits.max,
        limits.boot,
    )));
    let shared: SharedDevice = controller.clone();
    mmio.insert(shared, CPU_HOTPLUG_MMIO_BASE, CHP_MMIO_SIZE)
        .map_err(|source| BuildError::Bus {
            device: "CPU hotplug controller",
            source,
        })?;
    Ok(controller)
}

/// The hot-plug handle: new vCPUs get the CPUID, MSRs and LAPIC setup of the boot
/// vCPUs (and wait for the guest's INIT/SIPI).
pub(super) fn handle(
    vm: &Arc<Vm>,
    supported: &kvm_bindings::CpuId,
    limits: CpuLimits,
    controller: Arc<Mutex<CpuHotplugController>>,
    ged: Arc<GedNotifier>,
    ctx: VcpuRunContext,
) -> Result<Arc<CpuHotplug>, BuildError> {
    let kick = crate::kvm::vcpu::kick_signal().map_err(BoardError::KickSignal)?;
    let (vm, supported) = (vm.clone(), supported.clone());
    let make: VcpuMaker = Box::new(move |index| {
        let fd = vm.create_vcpu(index).map_err(|e| error_chain(&e))?;
        let topo = VcpuTopology {
            index,
            max_vcpus: limits.max,
        };
        configure_vcpu(&fd, &supported, topo, None).map_err(|e| error_chain(&e))?;
        Ok(fd)
    });
    Ok(Arc::new(CpuHotplug::new(
        limits, controller, ged, ctx, make, kick,
    )))
}
