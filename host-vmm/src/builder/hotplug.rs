//! Memory and disk hot-plug in a VM being built: the same on every board,
//! at the board's places.

use std::sync::Arc;

use vm_memory::GuestAddressSpace;

use super::board::MemoryHotplugPlace;
use super::error::BuildError;
use super::virtio::HotSlots;
use super::BootOptions;
use crate::config::HypervisorConfig;
use crate::devices::Bus;
use crate::hotplug::disk::DiskHotplug;
use crate::hotplug::memory::{self as memory_hotplug, MemoryHotplug};
use crate::kvm::Vm;
use crate::memory::layout::{self as memory_layout, HotplugLayoutInput};
use crate::memory::{self, GuestMemoryAtomic};

/// With `memory_slots` > 0: the hot-plug region above the boot RAM
/// (within `default_maxmemory` and the guest's physical address bits),
/// its controller and GED. The boot tables describe them later.
pub fn attach_memory_hotplug(
    vm: &Arc<Vm>,
    mmio: &mut Bus,
    guest_memory: &GuestMemoryAtomic,
    cfg: &HypervisorConfig,
    at: MemoryHotplugPlace,
) -> Result<Option<Arc<MemoryHotplug>>, BuildError> {
    if cfg.memory_slots == 0 {
        return Ok(None);
    }
    let mem = guest_memory.memory();
    let region = memory_layout::hotplug_region(&HotplugLayoutInput {
        boot_bytes: memory::total_size(&mem),
        boot_ram_end: memory::end_address(&mem),
        max_bytes: memory::mib_to_bytes(cfg.default_maxmemory)?,
        slots: cfg.memory_slots,
        min_start: at.min_start,
        phys_bits: at.phys_bits,
        block_size: memory_layout::GUEST_MEMORY_BLOCK_SIZE,
    });
    memory_hotplug::attach(vm, mmio, guest_memory, region, at.devices)
        .map(Some)
        .map_err(BuildError::MemoryHotplug)
}

/// Disk hot-plug, when there are free slots and a GED to announce them.
pub fn disk_hotplug(
    vm: &Arc<Vm>,
    guest_memory: &GuestMemoryAtomic,
    hot: Option<HotSlots>,
    memory: Option<&Arc<MemoryHotplug>>,
    opts: &BootOptions,
) -> Option<Arc<DiskHotplug>> {
    let ((slots, present), memory) = hot.zip(memory)?;
    Some(Arc::new(DiskHotplug::new(
        vm.clone(),
        guest_memory.clone(),
        memory.ged(),
        slots,
        present,
        opts.disks
            .iter()
            .filter(|d| !d.serial.is_empty())
            .map(|d| d.serial.clone())
            .collect(),
    )))
}
