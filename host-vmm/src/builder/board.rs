//! What the arch-neutral build sequence asks of a board, and the board of
//! this host's architecture ([`ArchBoard`]): x86 in `x86_64/`, aarch64 in
//! `aarch64/`.

use std::sync::Arc;

use vm_memory::GuestAddress;

use super::error::BuildError;
use super::BootOptions;
use crate::config::HypervisorConfig;
use crate::devices::acpi::ged::GedNotifier;
use crate::devices::Bus;
use crate::hotplug::cpu::CpuHotplug;
use crate::hotplug::memory::HotplugDevices;
use crate::kvm::{Vcpu, VcpuRunContext, Vm};
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};
use crate::vmm::ExitSignal;

#[cfg(target_arch = "aarch64")]
pub use super::aarch64::board::{ArchBoard, BoardError, BUS_NAME, SLOTS_OWNER};
#[cfg(target_arch = "x86_64")]
pub use super::x86_64::{ArchBoard, BoardError, BUS_NAME, SLOTS_OWNER};

/// Where a virtio-mmio device sits: its number (`_UID`, `VRnn`), its
/// window and its interrupt (GSI on x86, SPI on aarch64).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioPlace {
    pub index: usize,
    pub base: u64,
    pub irq: u32,
}

/// The board's virtio-mmio slots.
#[derive(Debug, Clone, Copy)]
pub struct VirtioSlots {
    /// The place of slot `index`, `None` past the last.
    pub place: fn(usize) -> Option<VirtioPlace>,
    /// How many slots the board reserves.
    pub count: usize,
    /// The size of one window.
    pub window: u64,
    /// Where the hot-plug slots' present register goes.
    pub present_base: u64,
    /// The register's name in a bus error.
    pub present_device: &'static str,
}

/// Where memory hot-plug goes on the board.
#[derive(Debug, Clone, Copy)]
pub struct MemoryHotplugPlace {
    /// The controller's and the GED's windows, the GED's interrupt.
    pub devices: HotplugDevices,
    /// The lowest address of the hot-plug region.
    pub min_start: u64,
    /// The guest's physical address width.
    pub phys_bits: u8,
}

/// The devices the boot tables (ACPI, device tree) describe.
#[derive(Debug, Clone, Default)]
pub struct BootDevices {
    /// virtio-mmio devices present at boot, in slot order.
    pub virtio: Vec<VirtioPlace>,
    /// Free slots for disks added while the VM runs.
    pub hot_virtio: Vec<VirtioPlace>,
}

/// Starts CPU hot-plug once the VMM exists (it needs its run context).
pub type CpuHotplugStart = Box<dyn FnOnce(VcpuRunContext) -> Result<Arc<CpuHotplug>, BuildError>>;

/// The per-architecture steps of [`build_vm`](super::build_vm), in the
/// order it calls them.
pub trait Board: Sized {
    /// What the board needs before anything is created (aarch64: the ROM
    /// and the layout; x86: nothing).
    fn new(cfg: &HypervisorConfig, mem_bytes: u64) -> Result<Self, BuildError>;

    /// Guest RAM for `mem_bytes`: (start, size) regions.
    fn ram_regions(&self, mem_bytes: u64) -> Result<Vec<(GuestAddress, u64)>, BuildError>;

    /// The VM right after its RAM is registered (x86: the in-kernel
    /// irqchip; aarch64: the ROM's read-only slot).
    fn setup_vm(&mut self, vm: &Vm) -> Result<(), BuildError>;

    /// The vCPUs that come before the interrupt controller, then the
    /// controller (aarch64: every vCPU, then the GIC; x86: none, its
    /// vCPUs need the kernel's entry point and come with [`Board::boot`]).
    fn create_vcpus(&mut self, vm: &Vm, cfg: &HypervisorConfig) -> Result<Vec<Vcpu>, BuildError>;

    /// The console and the other legacy devices, on the port I/O or the
    /// MMIO bus.
    fn add_legacy_devices(
        &mut self,
        vm: &Arc<Vm>,
        buses: &mut Buses,
        opts: &BootOptions,
        exit: &Arc<ExitSignal>,
    ) -> Result<(), BuildError>;

    /// The board's virtio-mmio slots.
    fn virtio_slots(&self) -> VirtioSlots;

    /// Where memory hot-plug goes.
    fn memory_hotplug_place(&mut self, vm: &Vm) -> Result<MemoryHotplugPlace, BuildError>;

    /// Makes the VM bootable: x86 loads the kernel and initrd and writes
    /// the ACPI tables, command line and boot parameters, then creates the
    /// vCPUs (pushed to `vcpus`); aarch64 writes the device tree and puts
    /// fw_cfg (kernel, initrd, command line, ACPI tables) on the bus.
    fn boot(&mut self, ctx: BootContext<'_>, vcpus: &mut Vec<Vcpu>) -> Result<(), BuildError>;

    /// With CPU hot-plug on: its controller on the MMIO bus and what
    /// starts it; `None` when off or not supported by the board.
    fn cpu_hotplug(
        &mut self,
        vm: &Arc<Vm>,
        mmio: &mut Bus,
        cfg: &HypervisorConfig,
        ged: Option<Arc<GedNotifier>>,
    ) -> Result<Option<CpuHotplugStart>, BuildError>;

    /// Logs the VM built.
    fn log_built(&self, cfg: &HypervisorConfig);
}

/// The two buses of a VM.
pub struct Buses {
    /// Port I/O (x86 only; empty on aarch64).
    pub pio: Bus,
    pub mmio: Bus,
}

/// What [`Board::boot`] works with.
// Each board reads only some: x86 not the bus and the device memory map,
// aarch64 not the VM and the boot RAM.
#[allow(dead_code)]
pub struct BootContext<'a> {
    pub vm: &'a Vm,
    /// The boot RAM.
    pub mem: &'a GuestMemoryMmap,
    /// The memory map devices hold (boot RAM and hot-plugged DIMMs).
    pub guest_memory: &'a GuestMemoryAtomic,
    pub mmio: &'a mut Bus,
    pub cfg: &'a HypervisorConfig,
    pub devices: &'a BootDevices,
}
