//! The aarch64 board's flash: the UEFI ROM's bytes for its read-only slot
//! ([`rom_region`]) and the variable store's read-array mapping
//! ([`RomdMirror`]).

use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress};

use super::error::BoardError;
use crate::arch::aarch64::layout as board;
use crate::kvm::Vm;
use crate::memory::GuestRegionMmap;

/// The ROM's bytes in an anonymous mapping of `size` (its tail zero).
pub(super) fn rom_region(rom: &[u8], size: u64) -> Result<GuestRegionMmap, BoardError> {
    // The size is at most one 64 MiB flash bank (checked by the layout).
    let region =
        vm_memory::MmapRegion::new(size as usize).map_err(|e| BoardError::RomMap(e.to_string()))?;
    let region = GuestRegionMmap::new(region, GuestAddress(board::FLASH0_BASE))
        .ok_or_else(|| BoardError::RomMap("the ROM's range overflows".into()))?;
    region
        .write_slice(rom, vm_memory::MemoryRegionAddress(0))
        .map_err(|e| BoardError::RomMap(e.to_string()))?;
    Ok(region)
}

/// The variable store's array as a read-only memory slot while the flash is
/// in read-array mode (QEMU's "ROMD"): the guest's loads, load-pairs
/// included, read memory; in the other modes the slot is gone and reads
/// exit to the device, which answers with its status.
pub(super) struct RomdMirror {
    vm: Arc<Vm>,
    /// Also kept by the VM, for its whole life: no teardown order (and no
    /// slot removal on a thread whose filter forbids it) is needed.
    region: Arc<GuestRegionMmap>,
    slot: u32,
    mapped: bool,
}

impl RomdMirror {
    pub(super) fn new(vm: Arc<Vm>, slot: u32) -> Result<Self, BoardError> {
        let region = vm_memory::MmapRegion::new(board::FLASH1_SIZE as usize)
            .map_err(|e| BoardError::RomMap(e.to_string()))?;
        let region = GuestRegionMmap::new(region, GuestAddress(board::FLASH1_BASE))
            .ok_or_else(|| BoardError::RomMap("the variable store's range overflows".into()))?;
        let region = Arc::new(region);
        vm.keep_mapped(region.clone());
        Ok(RomdMirror {
            vm,
            region,
            slot,
            mapped: false,
        })
    }
}

impl crate::devices::firmware::FlashMirror for RomdMirror {
    fn update(&mut self, offset: usize, data: &[u8]) {
        // The flash checks offsets against its size, which is the region's.
        let _ = self
            .region
            .write_slice(data, vm_memory::MemoryRegionAddress(offset as u64));
    }

    fn array_mode(&mut self, on: bool) {
        let result = if on && !self.mapped {
            // SAFETY: the VM keeps `self.region` mapped for its whole life
            // (`keep_mapped` in `new`), so it outlives the slot.
            unsafe { self.vm.map_readonly(self.slot, &self.region) }
        } else if !on && self.mapped {
            self.vm.remove_memory_slot(self.slot, board::FLASH1_BASE)
        } else {
            return;
        };
        match result {
            Ok(()) => self.mapped = on,
            Err(e) => tracing::warn!("flash variable store: cannot switch read-array mapping: {e}"),
        }
    }
}
