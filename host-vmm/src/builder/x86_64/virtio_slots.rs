//! The virtio-mmio slots of the x86 board: one allocator ([`virtio_slot`])
//! for the 4 KiB windows and GSIs, handed to the shared virtio code
//! ([`slots`]: boot devices, then hot-plug slots).

use crate::arch::x86_64::layout::{
    VIRTIO_HOTPLUG_MMIO_BASE, VIRTIO_MMIO_BASE, VIRTIO_MMIO_GSI_BASE, VIRTIO_MMIO_SLOTS,
};
use crate::builder::board::{VirtioPlace, VirtioSlots};
use crate::devices::virtio::MMIO_WINDOW_SIZE;

/// Where a virtio-mmio device sits: its window and its interrupt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VirtioSlot {
    pub(crate) base: u64,
    pub(crate) gsi: u32,
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

/// The board's slots, for the shared virtio code.
pub(super) fn slots() -> VirtioSlots {
    VirtioSlots {
        place: |index| {
            virtio_slot(index).map(|s| VirtioPlace {
                index,
                base: s.base,
                irq: s.gsi,
            })
        },
        count: VIRTIO_MMIO_SLOTS as usize,
        window: MMIO_WINDOW_SIZE,
        present_base: VIRTIO_HOTPLUG_MMIO_BASE,
        present_device: "virtio-mmio hot-plug slot",
    }
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
