//! The x86 board: RAM split around the 3–4 GiB MMIO gap, the in-kernel
//! PIC/IOAPIC/LAPIC/PIT, legacy devices on the port I/O bus, and a kernel
//! booted directly (the VMM writes the ACPI tables and boot parameters).

use std::sync::Arc;

use vm_memory::GuestAddress;

use super::board::{Board, BootContext, Buses, CpuHotplugStart, MemoryHotplugPlace, VirtioSlots};
use super::error::BuildError;
use super::BootOptions;
use crate::arch::x86_64::e820;
use crate::arch::x86_64::layout::MEMORY_HOTPLUG_MMIO_BASE;
use crate::arch::x86_64::layout::{GED_GSI, GED_MMIO_BASE, HOTPLUG_MIN_START};
use crate::config::HypervisorConfig;
use crate::devices::acpi::ged::GedNotifier;
use crate::devices::Bus;
use crate::hotplug::memory::HotplugDevices;
use crate::kvm::{Vcpu, Vm};
use crate::memory::layout as memory_layout;
use crate::vmm::ExitSignal;

mod acpi;
mod boot;
mod cpu_hotplug;
mod error;
mod legacy;
mod virtio_slots;

pub use error::BoardError;

/// The bus a bus error names (every device used to be on the I/O bus).
pub const BUS_NAME: &str = "I/O";
/// Who reserves the virtio-mmio slots, in the error when none is left.
pub const SLOTS_OWNER: &str = "layout";

/// The x86 board of a VM being built.
pub struct ArchBoard {
    mem_bytes: u64,
    /// The CPUID KVM supports: the vCPUs' and the guest's physical
    /// address bits.
    supported: Option<kvm_bindings::CpuId>,
}

impl ArchBoard {
    /// The CPUID KVM supports, read once.
    fn supported(&mut self, vm: &Vm) -> Result<&kvm_bindings::CpuId, BuildError> {
        let cpuid = match self.supported.take() {
            Some(cpuid) => cpuid,
            None => vm
                .kvm()
                .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
                .map_err(BoardError::Cpuid)?,
        };
        Ok(self.supported.insert(cpuid))
    }
}

impl Board for ArchBoard {
    fn new(cfg: &HypervisorConfig, mem_bytes: u64) -> Result<Self, BuildError> {
        tracing::info!(
            memory_mib = cfg.default_memory,
            vcpus = cfg.default_vcpus,
            "building VM"
        );
        Ok(ArchBoard {
            mem_bytes,
            supported: None,
        })
    }

    fn ram_regions(&self, mem_bytes: u64) -> Result<Vec<(GuestAddress, u64)>, BuildError> {
        // RAM below the 3 GiB..4 GiB MMIO gap, the rest above 4 GiB.
        Ok(e820::ram_regions(mem_bytes).map_err(BoardError::from)?)
    }

    fn setup_vm(&mut self, vm: &Vm) -> Result<(), BuildError> {
        // In-kernel PIC/IOAPIC/LAPIC/PIT.
        vm.setup_irqchip()?;
        Ok(())
    }

    fn create_vcpus(&mut self, _vm: &Vm, _cfg: &HypervisorConfig) -> Result<Vec<Vcpu>, BuildError> {
        // The boot vCPU needs the kernel's entry point: see `boot`.
        Ok(Vec::new())
    }

    fn add_legacy_devices(
        &mut self,
        vm: &Arc<Vm>,
        buses: &mut Buses,
        opts: &BootOptions,
        exit: &Arc<ExitSignal>,
    ) -> Result<(), BuildError> {
        legacy::add_legacy_devices(vm, &mut buses.pio, opts, exit)
    }

    fn virtio_slots(&self) -> VirtioSlots {
        virtio_slots::slots()
    }

    fn memory_hotplug_place(&mut self, vm: &Vm) -> Result<MemoryHotplugPlace, BuildError> {
        // CPUID 0x80000008 EAX[7:0]: physical address bits.
        let phys_bits = self
            .supported(vm)?
            .as_slice()
            .iter()
            .find(|e| e.function == 0x8000_0008)
            .map_or(memory_layout::FALLBACK_PHYS_BITS, |e| (e.eax & 0xff) as u8);
        Ok(MemoryHotplugPlace {
            devices: HotplugDevices {
                controller_base: MEMORY_HOTPLUG_MMIO_BASE,
                ged_base: GED_MMIO_BASE,
                ged_gsi: GED_GSI,
            },
            min_start: HOTPLUG_MIN_START,
            phys_bits,
        })
    }

    fn boot(&mut self, ctx: BootContext<'_>, vcpus: &mut Vec<Vcpu>) -> Result<(), BuildError> {
        let entry = boot::write_boot(ctx.mem, ctx.cfg, ctx.devices, self.mem_bytes)?;
        let supported = self.supported(ctx.vm)?;
        vcpus.extend(boot::create_vcpus(ctx.vm, ctx.cfg, supported, entry)?);
        Ok(())
    }

    fn cpu_hotplug(
        &mut self,
        vm: &Arc<Vm>,
        mmio: &mut Bus,
        cfg: &HypervisorConfig,
        ged: Option<Arc<GedNotifier>>,
    ) -> Result<Option<CpuHotplugStart>, BuildError> {
        let (Some(limits), Some(ged)) = (cpu_hotplug::enabled(cfg), ged) else {
            return Ok(None);
        };
        let controller = cpu_hotplug::attach_controller(mmio, limits)?;
        let (vm, supported) = (vm.clone(), self.supported(vm)?.clone());
        Ok(Some(Box::new(move |ctx| {
            cpu_hotplug::handle(&vm, &supported, limits, controller, ged, ctx)
        })))
    }

    fn log_built(&self, cfg: &HypervisorConfig) {
        tracing::info!(
            vcpus = cfg.default_vcpus,
            memory_mib = cfg.default_memory,
            kernel = %cfg.kernel.display(),
            "VM built"
        );
    }
}
