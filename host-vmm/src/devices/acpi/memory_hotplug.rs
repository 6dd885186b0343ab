//! The memory hot-plug controller: a small MMIO register window through
//! which the DSDT's AML learns, slot by slot, where hot-plugged DIMMs are.
//!
//! All registers are 32-bit little-endian at 4-byte aligned offsets:
//!
//! | Offset | Name    | Access | Meaning |
//! |--------|---------|--------|---------|
//! | 0x00   | SEL     | RW     | Selected slot. A write of a slot number below SLOTS selects it; any other value is ignored (the selection stays). Reads back the selection. |
//! | 0x04   | BASE_LO | R      | Guest physical base of the selected slot, bits 31:0 (0 when empty). |
//! | 0x08   | BASE_HI | R      | Base, bits 63:32. |
//! | 0x0c   | SIZE_LO | R      | Size in bytes of the selected slot, bits 31:0 (0 when empty). |
//! | 0x10   | SIZE_HI | R      | Size, bits 63:32. |
//! | 0x14   | STATUS  | RW     | Bit 0 ENABLED (read-only): the slot holds memory. Bit 1 INSERTING: set by the VMM on hot-add, cleared by the guest writing 1 to it (acknowledge). Other bits read 0; writing 0 changes nothing. |
//! | 0x18   | SLOTS   | R      | Number of slots. |
//! | 0x1c   | -       | R      | Reserved, reads 0. |
//!
//! The guest is untrusted: reads of any width and offset return the bytes of
//! the register file (zeros past its end); writes are only honoured at a
//! register's start with 1, 2 or 4 bytes (zero-extended); everything else is
//! ignored. Nothing a guest writes can panic the VMM or enable a slot.

use crate::devices::BusDevice;

pub use crate::acpi::registers::{
    MHP_MMIO_SIZE, MHP_REG_BASE_HI, MHP_REG_BASE_LO, MHP_REG_SELECT, MHP_REG_SIZE_HI,
    MHP_REG_SIZE_LO, MHP_REG_SLOTS, MHP_REG_STATUS, MHP_STATUS_ENABLED, MHP_STATUS_INSERTING,
};

/// Why the VMM could not record a DIMM in the controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    #[error("memory slot {slot} does not exist (the controller has {slots})")]
    NoSuchSlot { slot: u32, slots: u32 },
    #[error("memory slot {slot} already holds memory")]
    SlotInUse { slot: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slot {
    base: u64,
    size: u64,
    enabled: bool,
    inserting: bool,
}

/// What the guest sees of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotStatus {
    pub base: u64,
    pub size: u64,
    pub enabled: bool,
    /// Still waiting for the guest's acknowledgement.
    pub inserting: bool,
}

/// The controller's state; shared by the MMIO bus and the hot-plug code.
#[derive(Debug)]
pub struct MemoryHotplugController {
    slots: Vec<Slot>,
    selected: u32,
}

impl MemoryHotplugController {
    pub fn new(slots: u32) -> Self {
        MemoryHotplugController {
            slots: vec![Slot::default(); slots as usize],
            selected: 0,
        }
    }

    /// Number of slots.
    pub fn slot_count(&self) -> u32 {
        // The vector was built from a u32.
        u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
    }

    /// Record a hot-added DIMM in `slot`: enabled, inserting.
    pub fn insert(&mut self, slot: u32, base: u64, size: u64) -> Result<(), ControllerError> {
        let slots = self.slot_count();
        let s = self
            .slots
            .get_mut(slot as usize)
            .ok_or(ControllerError::NoSuchSlot { slot, slots })?;
        if s.enabled {
            return Err(ControllerError::SlotInUse { slot });
        }
        *s = Slot {
            base,
            size,
            enabled: true,
            inserting: true,
        };
        Ok(())
    }

    /// Forget `slot` (undo an [`insert`](Self::insert) the guest was never told about).
    pub fn clear(&mut self, slot: u32) {
        if let Some(s) = self.slots.get_mut(slot as usize) {
            *s = Slot::default();
        }
    }

    pub fn status(&self, slot: u32) -> Option<SlotStatus> {
        self.slots.get(slot as usize).map(|s| SlotStatus {
            base: s.base,
            size: s.size,
            enabled: s.enabled,
            inserting: s.inserting,
        })
    }

    fn selected_slot(&self) -> Slot {
        self.slots
            .get(self.selected as usize)
            .copied()
            .unwrap_or_default()
    }

    /// The register file as the guest reads it.
    fn registers(&self) -> [u8; MHP_MMIO_SIZE as usize] {
        let s = self.selected_slot();
        let status = if s.enabled { MHP_STATUS_ENABLED } else { 0 }
            | if s.inserting { MHP_STATUS_INSERTING } else { 0 };
        let words: [u32; 8] = [
            self.selected,
            s.base as u32,
            (s.base >> 32) as u32,
            s.size as u32,
            (s.size >> 32) as u32,
            status,
            self.slot_count(),
            0,
        ];
        let mut out = [0u8; MHP_MMIO_SIZE as usize];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            MHP_REG_SELECT => {
                if value < self.slot_count() {
                    self.selected = value;
                } else {
                    tracing::debug!(value, "memory hotplug: out-of-range slot select ignored");
                }
            }
            MHP_REG_STATUS => {
                if value & MHP_STATUS_INSERTING != 0 {
                    if let Some(s) = self.slots.get_mut(self.selected as usize) {
                        s.inserting = false;
                    }
                }
            }
            _ => tracing::trace!(
                offset,
                "memory hotplug: write to read-only register ignored"
            ),
        }
    }
}

impl BusDevice for MemoryHotplugController {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        let regs = self.registers();
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| regs.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if offset % 4 != 0 || !matches!(data.len(), 1 | 2 | 4) {
            tracing::trace!(
                offset,
                len = data.len(),
                "memory hotplug: odd write ignored"
            );
            return;
        }
        let mut word = [0u8; 4];
        word[..data.len()].copy_from_slice(data);
        self.write_register(offset, u32::from_le_bytes(word));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn r32(c: &mut MemoryHotplugController, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        c.read(0, offset, &mut b);
        u32::from_le_bytes(b)
    }

    fn w32(c: &mut MemoryHotplugController, offset: u64, v: u32) {
        c.write(0, offset, &v.to_le_bytes());
    }

    #[test]
    fn test_select_read_fields_and_acknowledge() {
        let mut c = MemoryHotplugController::new(4);
        c.insert(1, 4 * GIB + (1 << 27), 5 * GIB).unwrap();
        assert_eq!(r32(&mut c, MHP_REG_SLOTS), 4);
        // Slot 0 is empty.
        assert_eq!(r32(&mut c, MHP_REG_STATUS), 0);
        assert_eq!(r32(&mut c, MHP_REG_BASE_HI), 0);
        w32(&mut c, MHP_REG_SELECT, 1);
        assert_eq!(r32(&mut c, MHP_REG_SELECT), 1);
        assert_eq!(r32(&mut c, MHP_REG_BASE_LO), 1 << 27);
        assert_eq!(r32(&mut c, MHP_REG_BASE_HI), 1);
        assert_eq!(r32(&mut c, MHP_REG_SIZE_LO), (GIB) as u32);
        assert_eq!(r32(&mut c, MHP_REG_SIZE_HI), 1);
        assert_eq!(
            r32(&mut c, MHP_REG_STATUS),
            MHP_STATUS_ENABLED | MHP_STATUS_INSERTING
        );
        // Writing 0 or ENABLED acknowledges nothing and disables nothing.
        w32(&mut c, MHP_REG_STATUS, 0);
        w32(&mut c, MHP_REG_STATUS, MHP_STATUS_ENABLED);
        assert_eq!(
            r32(&mut c, MHP_REG_STATUS),
            MHP_STATUS_ENABLED | MHP_STATUS_INSERTING
        );
        w32(&mut c, MHP_REG_STATUS, MHP_STATUS_INSERTING);
        assert_eq!(r32(&mut c, MHP_REG_STATUS), MHP_STATUS_ENABLED);
        assert_eq!(
            c.status(1),
            Some(SlotStatus {
                base: 4 * GIB + (1 << 27),
                size: 5 * GIB,
                enabled: true,
                inserting: false
            })
        );
    }

    #[test]
    fn test_out_of_range_select_is_ignored() {
        let mut c = MemoryHotplugController::new(2);
        w32(&mut c, MHP_REG_SELECT, 1);
        for bad in [2, 3, 0xff, u32::MAX] {
            w32(&mut c, MHP_REG_SELECT, bad);
            assert_eq!(r32(&mut c, MHP_REG_SELECT), 1, "{bad}");
        }
        // A controller without slots keeps selecting nothing.
        let mut z = MemoryHotplugController::new(0);
        w32(&mut z, MHP_REG_SELECT, 0);
        w32(&mut z, MHP_REG_STATUS, MHP_STATUS_INSERTING);
        assert_eq!(r32(&mut z, MHP_REG_STATUS), 0);
        assert_eq!(r32(&mut z, MHP_REG_SLOTS), 0);
    }

    #[test]
    fn test_insert_refuses_bad_and_used_slots() {
        let mut c = MemoryHotplugController::new(1);
        assert_eq!(
            c.insert(1, 0, 1),
            Err(ControllerError::NoSuchSlot { slot: 1, slots: 1 })
        );
        c.insert(0, 4 * GIB, GIB).unwrap();
        assert_eq!(
            c.insert(0, 8 * GIB, GIB),
            Err(ControllerError::SlotInUse { slot: 0 })
        );
        c.clear(0);
        c.clear(7);
        assert_eq!(c.status(0).map(|s| s.enabled), Some(false));
        assert_eq!(c.status(1), None);
    }

    #[test]
    fn test_read_only_registers_ignore_writes() {
        let mut c = MemoryHotplugController::new(2);
        c.insert(0, 4 * GIB, GIB).unwrap();
        let before = c.registers();
        for off in [
            MHP_REG_BASE_LO,
            MHP_REG_BASE_HI,
            MHP_REG_SIZE_LO,
            MHP_REG_SIZE_HI,
            MHP_REG_SLOTS,
            0x1c,
        ] {
            w32(&mut c, off, 0xdead_beef);
        }
        assert_eq!(c.registers(), before);
    }

    #[test]
    fn test_any_guest_access_never_panics() {
        let mut c = MemoryHotplugController::new(3);
        c.insert(2, 4 * GIB, GIB).unwrap();
        // Every offset (also far outside the window) and length 0..=8.
        let offsets = (0..0x40).chain([u64::MAX - 3, u64::MAX]);
        for off in offsets {
            for len in 0..=8 {
                let mut b = vec![0xaa; len];
                c.read(0, off, &mut b);
                if off >= MHP_MMIO_SIZE {
                    assert!(b.iter().all(|&x| x == 0), "off {off:#x} len {len}");
                }
                c.write(0, off, &vec![0xff; len]);
            }
        }
        // Unaligned/odd-width writes did not select or acknowledge anything;
        // 1-, 2- and 4-byte writes at 0 asked for slots 0xff.. and were ignored.
        assert!(r32(&mut c, MHP_REG_SELECT) < 3);
        // Narrow reads return the bytes of the register.
        let mut b = [0u8; 1];
        c.read(0, MHP_REG_SLOTS, &mut b);
        assert_eq!(b, [3]);
        // An 8-byte read at BASE_LO returns base lo and hi once slot 2 is selected.
        c.write(0, MHP_REG_SELECT, &[2]);
        let mut q = [0u8; 8];
        c.read(0, MHP_REG_BASE_LO, &mut q);
        assert_eq!(u64::from_le_bytes(q), 4 * GIB);
    }
}
