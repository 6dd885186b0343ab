//! Hot-adding RAM to a running guest, one DIMM per slot.
//!
//! [`MemoryHotplug::hotplug_memory`] places the DIMM ([`super::layout`]),
//! maps anonymous memory for it, registers it as a new KVM memory slot,
//! swaps it into the guest memory map (so devices can reach it), records it
//! in the hot-plug controller (ENABLED | INSERTING) and raises the GED
//! interrupt. The guest's AML then scans the controller and notifies the
//! new PNP0C80 device; Linux adds the memory as offline blocks, which the
//! agent onlines. vCPUs keep running throughout: KVM adds memory slots
//! under SRCU without stopping them.
//!
//! A request that breaks a limit (slots, block alignment, maxmemory, address
//! space) fails before anything changes; a failure half-way (mmap, KVM) is
//! rolled back.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryBackend};
use vmm_sys_util::eventfd::EventFd;

use crate::devices::acpi::ged::{Ged, GedNotifier, GED_EVENT_MEMORY, GED_MMIO_SIZE};
use crate::devices::acpi::memory_hotplug::{
    ControllerError, MemoryHotplugController, MHP_MMIO_SIZE,
};
use crate::devices::{Bus, BusError, SharedDevice};
use crate::kvm::{KvmError, Vm};
use crate::memory::layout::{
    guest_block_size, plan_dimm, BlockSizeError, DimmPlacement, HotplugRegion, PlanError,
    PluggedDimms,
};
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap, GuestRegionMmap};
use crate::units::format_size;

/// Why the hot-plug devices could not be set up while building the VM.
#[derive(Debug, thiserror::Error)]
pub enum HotplugSetupError {
    #[error("cannot create the GED interrupt eventfd")]
    EventFd(#[source] std::io::Error),
    #[error(transparent)]
    Kvm(#[from] KvmError),
    #[error("cannot place the {device} on the MMIO bus")]
    Bus {
        device: &'static str,
        #[source]
        source: BusError,
    },
    #[error("memory_slots = {slots}: KVM memory slot numbers would overflow")]
    TooManySlots { slots: u32 },
}

/// Why a hot-add failed. Every variant but `Notify` leaves the VM as it was.
#[derive(Debug, thiserror::Error)]
pub enum HotplugError {
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(
        "the guest has {} MiB; memory cannot shrink to {} MiB (no hot-unplug)",
        current >> 20,
        total >> 20
    )]
    Shrink { total: u64, current: u64 },
    #[error("cannot allocate {} of guest RAM for memory slot {slot}", format_size(*size))]
    Allocate {
        slot: u32,
        size: u64,
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
    #[error("{} at {base:#x} does not fit this host's address space", format_size(*size))]
    TooLarge { base: u64, size: u64 },
    #[error("memory slot {slot} at {base:#x} conflicts with the guest memory map")]
    MemoryMap {
        slot: u32,
        base: u64,
        #[source]
        source: vm_memory::GuestRegionCollectionError,
    },
    #[error("KVM refused memory slot {slot} at {base:#x}")]
    Kvm {
        slot: u32,
        base: u64,
        #[source]
        source: KvmError,
    },
    #[error("the memory hot-plug controller refused slot {slot}")]
    Controller {
        slot: u32,
        #[source]
        source: ControllerError,
    },
    #[error(
        "{} was added in memory slot {slot} at {base:#x}, but the GED interrupt could not be \
         raised: the guest sees it at its next scan",
        format_size(*size)
    )]
    Notify {
        slot: u32,
        base: u64,
        size: u64,
        #[source]
        source: std::io::Error,
    },
}

/// A DIMM that was hot-added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugResult {
    /// Slot index (the DSDT device `Mxxx` with this number).
    pub slot: u32,
    /// Guest physical base.
    pub base: u64,
    pub size: u64,
    /// Guest RAM now: boot RAM plus every plugged DIMM.
    pub total_bytes: u64,
}

/// The memory of the VM, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugStatus {
    pub boot_bytes: u64,
    pub hotplugged_bytes: u64,
    pub total_bytes: u64,
    /// `default_maxmemory`.
    pub max_bytes: u64,
    pub slots_total: u32,
    pub slots_used: u32,
    /// Sizes must be multiples of it.
    pub block_bytes: u64,
    /// The hot-plug region `[start, start + size)`.
    pub region_start: u64,
    pub region_size: u64,
}

/// Where the hot-plug devices go on the MMIO bus, and the GED's interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugDevices {
    pub controller_base: u64,
    pub ged_base: u64,
    pub ged_gsi: u32,
}

struct State {
    plugged: PluggedDimms,
    /// Sizes must be multiples of it: the region's, or the guest's larger one once the
    /// agent has reported it ([`MemoryHotplug::use_guest_block_size`]).
    block_size: u64,
    /// The mappings of the plugged DIMMs, kept for as long as their KVM
    /// slots exist (the memory map holds them too).
    regions: Vec<Arc<GuestRegionMmap>>,
}

/// The hot-plug side of a VM; share it (`Arc`) with whoever adds memory.
/// Field order is drop order: the VM goes before the mappings it uses.
pub struct MemoryHotplug {
    vm: Arc<Vm>,
    memory: GuestMemoryAtomic,
    controller: Arc<Mutex<MemoryHotplugController>>,
    ged: Arc<GedNotifier>,
    region: HotplugRegion,
    /// KVM slot number of hot-plug slot 0 (the boot regions come first).
    kvm_slot_base: u32,
    state: Mutex<State>,
}

/// Create the controller and the GED, put them on `mmio`, wire the GED's
/// irqfd, and return the hot-plug handle. `memory` holds the boot RAM,
/// already registered with KVM as slots `0..num_regions()`; hot-added DIMMs
/// are swapped into it, so devices holding a clone reach them.
pub fn attach(
    vm: &Arc<Vm>,
    mmio: &mut Bus,
    memory: &GuestMemoryAtomic,
    region: HotplugRegion,
    at: HotplugDevices,
) -> Result<Arc<MemoryHotplug>, HotplugSetupError> {
    let kvm_slot_base = u32::try_from(memory.memory().num_regions()).unwrap_or(u32::MAX);
    kvm_slot_base
        .checked_add(region.slots)
        .ok_or(HotplugSetupError::TooManySlots {
            slots: region.slots,
        })?;
    let irq =
        EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(HotplugSetupError::EventFd)?;
    vm.register_irqfd(&irq, at.ged_gsi)?;
    let ged = GedNotifier::new(irq);
    let controller = Arc::new(Mutex::new(MemoryHotplugController::new(region.slots)));
    let shared: SharedDevice = controller.clone();
    mmio.insert(shared, at.controller_base, MHP_MMIO_SIZE)
        .map_err(|source| HotplugSetupError::Bus {
            device: "memory hotplug controller",
            source,
        })?;
    let ged_dev: SharedDevice = Arc::new(Mutex::new(Ged::new(ged.clone())));
    mmio.insert(ged_dev, at.ged_base, GED_MMIO_SIZE)
        .map_err(|source| HotplugSetupError::Bus {
            device: "generic event device",
            source,
        })?;
    tracing::debug!(
        slots = region.slots,
        start = format_args!("{:#x}", region.start),
        size = region.size,
        limited_by = ?region.limited_by,
        phys_bits = region.phys_bits,
        "memory hotplug region"
    );
    Ok(Arc::new(MemoryHotplug {
        vm: vm.clone(),
        memory: memory.clone(),
        controller,
        ged,
        region,
        kvm_slot_base,
        state: Mutex::new(State {
            plugged: PluggedDimms::default(),
            block_size: region.block_size,
            regions: Vec::new(),
        }),
    }))
}

impl MemoryHotplug {
    fn state(&self) -> MutexGuard<'_, State> {
        // Every update of the state completes before its guard drops.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The Generic Event Device, which other hot-plug kinds (virtio-mmio
    /// disks) share.
    pub fn ged(&self) -> Arc<GedNotifier> {
        self.ged.clone()
    }

    /// The guest memory map, boot RAM and hot-plugged DIMMs: what devices
    /// doing DMA should hold to reach hot-plugged RAM.
    pub fn guest_memory(&self) -> GuestMemoryAtomic {
        self.memory.clone()
    }

    /// The hot-plug region and its limits.
    pub fn region(&self) -> &HotplugRegion {
        &self.region
    }

    pub fn status(&self) -> HotplugStatus {
        let st = self.state();
        let hotplugged = st.plugged.bytes();
        HotplugStatus {
            boot_bytes: self.region.boot_bytes,
            hotplugged_bytes: hotplugged,
            total_bytes: self.region.boot_bytes + hotplugged,
            max_bytes: self.region.max_bytes,
            slots_total: self.region.slots,
            slots_used: u32::try_from(st.plugged.dimms.len()).unwrap_or(u32::MAX),
            block_bytes: st.block_size,
            region_start: self.region.start,
            region_size: self.region.size,
        }
    }

    /// Take the memory block size the guest reports (GetGuestDetails) into account: from now
    /// on sizes must be multiples of it when it is larger than the region's. Returns the
    /// block size in force; an error (nothing changed) when the region cannot honour it.
    pub fn use_guest_block_size(&self, guest: u64) -> Result<u64, BlockSizeError> {
        let mut st = self.state();
        let block = guest_block_size(&self.region, &st.plugged, guest)?;
        if block != st.block_size {
            tracing::info!(
                block_mib = block >> 20,
                "memory hotplug: using the guest's memory block size"
            );
        }
        st.block_size = block;
        Ok(block)
    }

    /// Hot-add `size_bytes` of RAM as one DIMM in the next free slot. Safe
    /// to call from any thread while the vCPUs run; concurrent calls are
    /// serialised.
    pub fn hotplug_memory(&self, size_bytes: u64) -> Result<HotplugResult, HotplugError> {
        self.add(self.state(), size_bytes)
    }

    /// Hot-add one DIMM so the guest has `total_bytes` of RAM: `None` when
    /// it has that much already; an error if it has more.
    pub fn grow_to(&self, total_bytes: u64) -> Result<Option<HotplugResult>, HotplugError> {
        let st = self.state();
        let current = self.region.boot_bytes + st.plugged.bytes();
        match total_bytes.checked_sub(current) {
            Some(0) => Ok(None),
            Some(size) => self.add(st, size).map(Some),
            None => Err(HotplugError::Shrink {
                total: total_bytes,
                current,
            }),
        }
    }

    fn add(
        &self,
        mut st: MutexGuard<'_, State>,
        size_bytes: u64,
    ) -> Result<HotplugResult, HotplugError> {
        let region = HotplugRegion {
            block_size: st.block_size,
            ..self.region
        };
        let place = plan_dimm(&region, &st.plugged, size_bytes)?;
        let region = self.map_dimm(&place)?;
        let kvm_slot = self.kvm_slot_base + place.slot;
        let new_map = self
            .memory
            .memory()
            .insert_region(region.clone())
            .map_err(|source| HotplugError::MemoryMap {
                slot: place.slot,
                base: place.base,
                source,
            })?;
        self.vm
            .add_memory_slot(kvm_slot, &region)
            .map_err(|source| HotplugError::Kvm {
                slot: place.slot,
                base: place.base,
                source,
            })?;
        if let Err(source) = self.record(&place) {
            self.undo_kvm_slot(kvm_slot, place.base);
            return Err(HotplugError::Controller {
                slot: place.slot,
                source,
            });
        }
        self.swap_in(new_map);
        st.plugged.dimms.push((place.base, place.size));
        st.regions.push(region);
        let total_bytes = self.region.boot_bytes + st.plugged.bytes();
        drop(st);
        tracing::info!(
            slot = place.slot,
            base = format_args!("{:#x}", place.base),
            size = %format_size(place.size),
            total_mib = total_bytes >> 20,
            "memory hot-added"
        );
        self.ged
            .notify(GED_EVENT_MEMORY)
            .map_err(|source| HotplugError::Notify {
                slot: place.slot,
                base: place.base,
                size: place.size,
                source,
            })?;
        Ok(HotplugResult {
            slot: place.slot,
            base: place.base,
            size: place.size,
            total_bytes,
        })
    }

    /// An anonymous private mapping for the DIMM (MAP_NORESERVE: host RAM is
    /// only used as the guest touches it).
    fn map_dimm(&self, place: &DimmPlacement) -> Result<Arc<GuestRegionMmap>, HotplugError> {
        let len = usize::try_from(place.size).map_err(|_| HotplugError::TooLarge {
            base: place.base,
            size: place.size,
        })?;
        GuestRegionMmap::from_range(GuestAddress(place.base), len, None)
            .map(Arc::new)
            .map_err(|source| HotplugError::Allocate {
                slot: place.slot,
                size: place.size,
                source,
            })
    }

    fn record(&self, place: &DimmPlacement) -> Result<(), ControllerError> {
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(place.slot, place.base, place.size)
    }

    fn swap_in(&self, map: GuestMemoryMmap) {
        // Only this type swaps the map, under `state`: the guard just serialises.
        let guard = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
        guard.replace(map);
    }

    fn undo_kvm_slot(&self, kvm_slot: u32, base: u64) {
        if let Err(e) = self.vm.remove_memory_slot(kvm_slot, base) {
            tracing::error!(
                kvm_slot,
                "cannot delete the KVM slot of a failed hot-add: {e}"
            );
        }
    }
}

// These tests hot-add into a real KVM VM: they run where the unit tests have
// /dev/kvm (x86_64 hosts), not in the aarch64 cross-check under qemu-user.
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;
