//! Which hot slot holds which disk: the bookkeeping behind
//! [`DiskHotplug`](crate::hotplug::disk::DiskHotplug), pure and unit-tested.
//!
//! Every disk of a VM (boot disks included) has a serial no other live
//! disk has: a hot-add with a serial already in use is refused, and a
//! hot-add without one gets a fresh `disk-<n>` (n counts up for the VM's
//! life, so a serial is never handed out twice). A slot is `Free`, `Used`
//! by one disk, or `Removing` it (the guest was asked to let go; the slot
//! and the serial stay taken until it has).

use super::DiskConfig;

/// Prefix of the serials the VMM hands out.
pub const FRESH_SERIAL_PREFIX: &str = "disk-";

/// Fresh serial numbers stay below this, so `disk-<n>` fits virtio-blk's 20 bytes.
const FRESH_SERIAL_WRAP: u64 = 1_000_000_000_000_000;

/// A disk in a slot: its serial and, when a container's rootfs, that
/// container's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDisk {
    pub serial: String,
    pub owner: Option<String>,
}

/// The state of one hot slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    Free,
    Used(SlotDisk),
    Removing(SlotDisk),
}

/// Why the table refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    #[error(
        "serial {serial:?} is already in use by {by} of this VM (each disk needs its own serial)"
    )]
    SerialInUse { serial: String, by: String },
    #[error("no free hot-plug slot for a disk (the VM has {slots}, all in use)")]
    NoSlot { slots: usize },
    #[error("no hot-added disk has serial {serial:?}")]
    Unknown { serial: String },
    #[error("disk {serial:?} is already being removed")]
    Removing { serial: String },
}

/// The hot slots of one VM and the serials of its boot disks.
#[derive(Debug, Clone)]
pub struct SlotTable {
    slots: Vec<SlotState>,
    boot_serials: Vec<String>,
    next_fresh: u64,
}

impl SlotTable {
    /// `slots` free hot slots; `boot_serials` are taken for good.
    pub fn new(slots: usize, boot_serials: Vec<String>) -> Self {
        SlotTable {
            slots: vec![SlotState::Free; slots],
            boot_serials,
            next_fresh: 0,
        }
    }

    /// Who holds `serial`: a boot disk, a hot slot, or nobody.
    fn holder(&self, serial: &str) -> Option<String> {
        if self.boot_serials.iter().any(|s| s == serial) {
            return Some("a boot disk".into());
        }
        self.slots.iter().enumerate().find_map(|(i, s)| match s {
            SlotState::Used(d) | SlotState::Removing(d) if d.serial == serial => {
                Some(format!("the disk in hot slot {i}"))
            }
            _ => None,
        })
    }

    /// A serial no live disk has, never handed out before: `disk-<n>`.
    pub fn fresh_serial(&mut self) -> String {
        loop {
            let serial = format!("{FRESH_SERIAL_PREFIX}{}", self.next_fresh);
            self.next_fresh = (self.next_fresh + 1) % FRESH_SERIAL_WRAP;
            if self.holder(&serial).is_none() {
                return serial;
            }
        }
    }

    /// Takes the first free slot for `serial` (refused if some live disk has it).
    pub fn reserve(&mut self, serial: &str, owner: Option<&str>) -> Result<usize, SlotError> {
        if let Some(by) = self.holder(serial) {
            return Err(SlotError::SerialInUse {
                serial: serial.to_string(),
                by,
            });
        }
        let slot = self
            .slots
            .iter()
            .position(|s| *s == SlotState::Free)
            .ok_or(SlotError::NoSlot {
                slots: self.slots.len(),
            })?;
        self.slots[slot] = SlotState::Used(SlotDisk {
            serial: serial.to_string(),
            owner: owner.map(str::to_string),
        });
        Ok(slot)
    }

    /// Gives back a slot whose hot-add failed after [`Self::reserve`].
    pub fn release(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            *s = SlotState::Free;
        }
    }

    /// Marks the disk with `serial` as being removed; its slot number.
    pub fn begin_remove(&mut self, serial: &str) -> Result<(usize, SlotDisk), SlotError> {
        for (i, s) in self.slots.iter_mut().enumerate() {
            match s {
                SlotState::Used(d) if d.serial == serial => {
                    let disk = d.clone();
                    *s = SlotState::Removing(disk.clone());
                    return Ok((i, disk));
                }
                SlotState::Removing(d) if d.serial == serial => {
                    return Err(SlotError::Removing {
                        serial: serial.to_string(),
                    })
                }
                _ => {}
            }
        }
        Err(SlotError::Unknown {
            serial: serial.to_string(),
        })
    }

    /// The guest did not let go: the disk stays in its slot.
    pub fn cancel_remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            if let SlotState::Removing(d) = s {
                *s = SlotState::Used(d.clone());
            }
        }
    }

    /// The guest let go and the device is gone: the slot (and serial) are free.
    pub fn finish_remove(&mut self, slot: usize) {
        if let Some(s) = self.slots.get_mut(slot) {
            if matches!(s, SlotState::Removing(_)) {
                *s = SlotState::Free;
            }
        }
    }

    /// Every slot's state, by slot number.
    pub fn states(&self) -> &[SlotState] {
        &self.slots
    }

    /// Slots in all and not free.
    pub fn usage(&self) -> (usize, usize) {
        let used = self.slots.iter().filter(|s| **s != SlotState::Free).count();
        (self.slots.len(), used)
    }
}

/// The first two disks (by index) with the same non-empty serial, if any.
pub fn duplicate_serial(disks: &[DiskConfig]) -> Option<(usize, usize)> {
    disks.iter().enumerate().find_map(|(second, d)| {
        if d.serial.is_empty() {
            return None;
        }
        disks[..second]
            .iter()
            .position(|o| o.serial == d.serial)
            .map(|first| (first, second))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_duplicate_boot_serials_found() {
        let d = |serial: &str| DiskConfig {
            serial: serial.into(),
            ..Default::default()
        };
        assert_eq!(duplicate_serial(&[d("a"), d("b"), d(""), d("")]), None);
        assert_eq!(
            duplicate_serial(&[d("a"), d("b"), d("c"), d("b")]),
            Some((1, 3))
        );
        assert_eq!(duplicate_serial(&[]), None);
    }

    #[test]
    fn test_reserve_refuses_duplicate_serials_live_and_boot() {
        let mut t = SlotTable::new(3, vec!["rootfs".into()]);
        assert_eq!(t.reserve("a", Some("c1")), Ok(0));
        let e = t.reserve("a", None).unwrap_err();
        assert_eq!(
            e,
            SlotError::SerialInUse {
                serial: "a".into(),
                by: "the disk in hot slot 0".into()
            }
        );
        assert!(e.to_string().contains("\"a\""), "{e}");
        let e = t.reserve("rootfs", None).unwrap_err();
        assert!(e.to_string().contains("a boot disk"), "{e}");
        assert_eq!(t.usage(), (3, 1), "a refusal takes no slot");
        // Still refused while it is being removed; free again after.
        let (slot, disk) = t.begin_remove("a").unwrap();
        assert_eq!((slot, disk.owner.as_deref()), (0, Some("c1")));
        assert!(matches!(
            t.reserve("a", None),
            Err(SlotError::SerialInUse { .. })
        ));
        t.finish_remove(0);
        assert_eq!(t.reserve("a", None), Ok(0));
    }

    #[test]
    fn test_slots_run_out_and_come_back_on_removal() {
        let mut t = SlotTable::new(2, vec![]);
        assert_eq!(t.reserve("a", None), Ok(0));
        assert_eq!(t.reserve("b", None), Ok(1));
        assert_eq!(t.reserve("c", None), Err(SlotError::NoSlot { slots: 2 }));
        t.begin_remove("a").unwrap();
        assert_eq!(t.usage(), (2, 2), "a slot being removed is not free");
        assert_eq!(t.reserve("c", None), Err(SlotError::NoSlot { slots: 2 }));
        t.finish_remove(0);
        assert_eq!(t.usage(), (2, 1));
        assert_eq!(t.reserve("c", None), Ok(0));
        t.begin_remove("b").unwrap();
        t.finish_remove(1);
        // 100 cycles through 2 slots never run out.
        for i in 0..100 {
            let serial = t.fresh_serial();
            let slot = t.reserve(&serial, Some(&format!("c{i}"))).unwrap();
            let (removed, _) = t.begin_remove(&serial).unwrap();
            assert_eq!(removed, slot);
            t.finish_remove(slot);
        }
        assert_eq!(t.usage(), (2, 1));
    }

    #[test]
    fn test_cancelled_removal_keeps_the_disk() {
        let mut t = SlotTable::new(1, vec![]);
        t.reserve("a", None).unwrap();
        let (slot, _) = t.begin_remove("a").unwrap();
        assert_eq!(
            t.begin_remove("a"),
            Err(SlotError::Removing { serial: "a".into() })
        );
        t.cancel_remove(slot);
        assert_eq!(
            t.states()[0],
            SlotState::Used(SlotDisk {
                serial: "a".into(),
                owner: None
            })
        );
        assert_eq!(
            t.begin_remove("b"),
            Err(SlotError::Unknown { serial: "b".into() })
        );
        // Out-of-range and wrong-state calls change nothing.
        t.finish_remove(0);
        t.release(7);
        t.cancel_remove(7);
        t.finish_remove(7);
        assert_eq!(t.usage(), (1, 1));
    }

    #[test]
    fn test_fresh_serials_are_new_fit_20_bytes_and_skip_taken_ones() {
        let mut t = SlotTable::new(4, vec!["disk-1".into()]);
        t.reserve("disk-2", None).unwrap();
        assert_eq!(t.fresh_serial(), "disk-0");
        assert_eq!(t.fresh_serial(), "disk-3", "disk-1 and disk-2 are taken");
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            let s = t.fresh_serial();
            assert!(s.len() <= 20 && s.bytes().all(|b| b.is_ascii_graphic()));
            assert!(seen.insert(s), "a serial handed out twice");
        }
        t.next_fresh = FRESH_SERIAL_WRAP - 1;
        assert_eq!(t.fresh_serial().len(), 20);
        assert_eq!(t.fresh_serial(), "disk-0", "wraps (disk-0 is free again)");
    }
}
