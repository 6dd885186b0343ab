//! The virtio-mmio slots of a VM: one allocator ([`virtio_slot`]) for
//! the 4 KiB windows and GSIs, boot devices put in them ([`add_virtio`]),
//! and the slots left free as hot-plug slots ([`attach_hot_slots`], see
//! `hotplug::disk`).

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use super::BuildError;
use crate::arch::x86_64::layout::{
    VIRTIO_HOTPLUG_MMIO_BASE, VIRTIO_MMIO_BASE, VIRTIO_MMIO_GSI_BASE, VIRTIO_MMIO_SLOTS,
};
use crate::devices::virtio::{
    VirtioDevice, VirtioMmioDevice, MMIO_NOTIFY_OFFSET, MMIO_WINDOW_SIZE,
};
use crate::devices::{Bus, SharedDevice};
use crate::hotplug::disk::{hot_slots, HotSlot, PRESENT_REGISTER_SIZE};
use crate::kvm::Vm;
use crate::memory::GuestMemoryAtomic;

/// Where a virtio-mmio device sits: its window and its interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VirtioSlot {
    pub(super) base: u64,
    pub(super) gsi: u32,
}

/// The one allocator of virtio-mmio slots: device number `index` (in
/// attach order: vsock first, then the disks) gets the `index`-th 4 KiB
/// window from `VIRTIO_MMIO_BASE` and GSI `VIRTIO_MMIO_GSI_BASE +
/// index`; `None` past the `VIRTIO_MMIO_SLOTS` the layout reserves.
pub(crate) fn virtio_slot(index: usize) -> Option<VirtioSlot> {
    let index = u32::try_from(index)
        .ok()
        .filter(|&i| i < VIRTIO_MMIO_SLOTS)?;
    Some(VirtioSlot {
        base: VIRTIO_MMIO_BASE + u64::from(index) * MMIO_WINDOW_SIZE,
        gsi: VIRTIO_MMIO_GSI_BASE + index,
    })
}

/// Put `device` behind a virtio-mmio transport in slot `index`: MMIO window,
/// irqfd, bus entry. The DSDT entry comes with the ACPI tables.
pub(super) fn add_virtio(
    vm: &Vm,
    bus: &mut Bus,
    mem: &GuestMemoryAtomic,
    name: &'static str,
    device: Box<dyn VirtioDevice>,
    index: usize,
) -> Result<VirtioSlot, BuildError> {
    let VirtioSlot { base, gsi } =
        virtio_slot(index).ok_or(BuildError::VirtioSlots { device: name })?;
    let transport =
        VirtioMmioDevice::new(device, mem.clone()).map_err(|source| BuildError::VirtioMmio {
            device: name,
            source,
        })?;
    vm.register_irqfd(transport.interrupt_evt(), gsi)?;
    // Queue notifications go straight to the device's eventfds (ioeventfd).
    for (queue, evt) in transport.queue_evts().iter().enumerate() {
        let queue = u32::try_from(queue).unwrap_or(u32::MAX);
        vm.register_ioevent_mmio(evt, base + MMIO_NOTIFY_OFFSET, queue)?;
    }
    let shared: SharedDevice = Arc::new(Mutex::new(transport));
    bus.insert(shared, base, MMIO_WINDOW_SIZE)
        .map_err(|source| BuildError::Bus {
            device: name,
            source,
        })?;
    tracing::debug!(
        device = name,
        base = format_args!("{base:#x}"),
        gsi,
        "virtio-mmio device"
    );
    Ok(VirtioSlot { base, gsi })
}

/// The virtio-mmio slots after the first `used` as empty hot-plug
/// slots on the bus, and their present register; `None` if none is
/// left.
#[allow(clippy::type_complexity)]
pub(super) fn attach_hot_slots(
    bus: &mut Bus,
    used: usize,
) -> Result<Option<(Vec<HotSlot>, Arc<AtomicU32>)>, BuildError> {
    let places: Vec<_> = (used..VIRTIO_MMIO_SLOTS as usize)
        .filter_map(|i| virtio_slot(i).map(|s| (i, s.base, s.gsi)))
        .collect();
    if places.is_empty() {
        return Ok(None);
    }
    let (slots, present) = hot_slots(&places);
    let device = "virtio-mmio hot-plug slot";
    for slot in &slots {
        let shared: SharedDevice = slot.device.clone();
        bus.insert(shared, slot.base, MMIO_WINDOW_SIZE)
            .map_err(|source| BuildError::Bus { device, source })?;
    }
    let bits = present.bits();
    let shared: SharedDevice = Arc::new(Mutex::new(present));
    bus.insert(shared, VIRTIO_HOTPLUG_MMIO_BASE, PRESENT_REGISTER_SIZE)
        .map_err(|source| BuildError::Bus { device, source })?;
    Ok(Some((slots, bits)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::x86_64::layout::{GED_GSI, GED_MMIO_BASE, SERIAL_IRQ};

    #[test]
    fn test_virtio_slot_windows_and_gsis_are_distinct_and_bounded() {
        let slots: Vec<_> = (0..VIRTIO_MMIO_SLOTS as usize)
            .map(|i| virtio_slot(i).unwrap())
            .collect();
        assert_eq!(
            slots[0],
            VirtioSlot {
                base: 0xd000_0000,
                gsi: 5
            }
        );
        assert_eq!(
            slots[1],
            VirtioSlot {
                base: 0xd000_1000,
                gsi: 6
            }
        );
        for (i, s) in slots.iter().enumerate() {
            assert!(s.base + MMIO_WINDOW_SIZE <= GED_MMIO_BASE);
            assert!(s.gsi < GED_GSI && s.gsi != SERIAL_IRQ);
            assert!(slots[..i]
                .iter()
                .all(|o| o.base != s.base && o.gsi != s.gsi));
        }
        assert_eq!(virtio_slot(VIRTIO_MMIO_SLOTS as usize), None);
        assert_eq!(virtio_slot(usize::MAX), None);
    }
}
