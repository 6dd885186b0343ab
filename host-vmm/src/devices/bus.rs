//! The device bus: one trait for every emulated device, and an address map
//! (one for port I/O, one for MMIO) that routes a guest access to the device
//! whose range holds it.

use std::sync::{Arc, Mutex, PoisonError};

/// A device the guest reaches by port I/O or MMIO. `base` is the start of
/// the device's range on the bus and `offset` the access's distance from it
/// (always inside the range). `data` is the access, 1..=8 bytes, guest
/// controlled: implementations must accept any length and any value.
pub trait BusDevice: Send {
    /// Fill `data` for a guest read.
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]);
    /// Handle a guest write of `data`.
    fn write(&mut self, base: u64, offset: u64, data: &[u8]);
}

/// A device shared between the bus and whoever else needs it.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

/// Why a device could not be added to a bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    #[error("device range at {base:#x} has zero length")]
    ZeroLength { base: u64 },
    #[error("device range {base:#x} + {len:#x} runs past the end of the address space")]
    Overflow { base: u64, len: u64 },
    #[error(
        "device range [{base:#x}, {end:#x}) overlaps the device at [{other_base:#x}, {other_end:#x})"
    )]
    Overlap {
        base: u64,
        end: u64,
        other_base: u64,
        other_end: u64,
    },
}

#[derive(Clone)]
struct Entry {
    base: u64,
    /// Exclusive end.
    end: u64,
    device: SharedDevice,
}

/// An address map of non-overlapping device ranges.
#[derive(Clone, Default)]
pub struct Bus {
    /// Sorted by `base`; ranges never overlap.
    entries: Vec<Entry>,
}

impl Bus {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add `device` at `[base, base + len)`. Overlapping ranges are refused.
    pub fn insert(&mut self, device: SharedDevice, base: u64, len: u64) -> Result<(), BusError> {
        if len == 0 {
            return Err(BusError::ZeroLength { base });
        }
        let end = base
            .checked_add(len)
            .ok_or(BusError::Overflow { base, len })?;
        let pos = self.entries.partition_point(|e| e.base < base);
        let neighbours = [pos.checked_sub(1), Some(pos)];
        for other in neighbours.into_iter().flatten() {
            if let Some(o) = self.entries.get(other) {
                if base < o.end && o.base < end {
                    return Err(BusError::Overlap {
                        base,
                        end,
                        other_base: o.base,
                        other_end: o.end,
                    });
                }
            }
        }
        self.entries.insert(pos, Entry { base, end, device });
        Ok(())
    }

    /// The device whose range holds `addr`, with that range's base.
    fn find(&self, addr: u64) -> Option<&Entry> {
        let pos = self.entries.partition_point(|e| e.base <= addr);
        let e = self.entries.get(pos.checked_sub(1)?)?;
        (addr < e.end).then_some(e)
    }

    /// Route a guest read. Returns false if no device holds `addr` (then
    /// `data` is left to the caller, which fills it with ones).
    pub fn read(&self, addr: u64, data: &mut [u8]) -> bool {
        let Some(e) = self.find(addr) else {
            return false;
        };
        let mut dev = e.device.lock().unwrap_or_else(PoisonError::into_inner);
        dev.read(e.base, addr - e.base, data);
        true
    }

    /// Route a guest write. Returns false if no device holds `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> bool {
        let Some(e) = self.find(addr) else {
            return false;
        };
        let mut dev = e.device.lock().unwrap_or_else(PoisonError::into_inner);
        dev.write(e.base, addr - e.base, data);
        true
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|e| e.base..e.end))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the last access.
    #[derive(Default)]
    struct Probe {
        last: Option<(u64, u64, Vec<u8>)>,
    }

    impl BusDevice for Probe {
        fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
            self.last = Some((base, offset, data.to_vec()));
        }
        fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
            self.last = Some((base, offset, data.to_vec()));
        }
    }

    fn probe() -> (Arc<Mutex<Probe>>, SharedDevice) {
        let p = Arc::new(Mutex::new(Probe::default()));
        let d: SharedDevice = p.clone();
        (p, d)
    }

    #[test]
    fn test_bus_routes_to_device_with_base_and_offset() {
        let mut bus = Bus::new();
        let (a, da) = probe();
        let (b, db) = probe();
        bus.insert(da, 0x3f8, 8).unwrap();
        bus.insert(db, 0x60, 5).unwrap();
        let mut buf = [0u8; 1];
        assert!(bus.read(0x3fd, &mut buf));
        assert_eq!(buf, [5]);
        assert_eq!(a.lock().unwrap().last, Some((0x3f8, 5, vec![5])));
        assert!(bus.write(0x64, &[0xfe]));
        assert_eq!(b.lock().unwrap().last, Some((0x60, 4, vec![0xfe])));
    }

    #[test]
    fn test_bus_misses_outside_ranges() {
        let mut bus = Bus::new();
        let (_, d) = probe();
        bus.insert(d, 0x100, 0x10).unwrap();
        let mut buf = [0xffu8; 4];
        assert!(!bus.read(0xff, &mut buf));
        assert!(!bus.read(0x110, &mut buf));
        assert!(!bus.write(0, &[1]));
        assert!(!bus.write(u64::MAX, &[1]));
        assert!(bus.read(0x10f, &mut buf));
    }

    #[test]
    fn test_bus_refuses_overlap_zero_length_and_overflow() {
        let mut bus = Bus::new();
        let (_, d) = probe();
        bus.insert(d.clone(), 0x100, 0x10).unwrap();
        for (base, len) in [(0x100, 1), (0xf8, 0x9), (0x10f, 4), (0x0, 0x1000)] {
            assert!(
                matches!(
                    bus.insert(d.clone(), base, len),
                    Err(BusError::Overlap { .. })
                ),
                "{base:#x}+{len:#x}"
            );
        }
        assert_eq!(
            bus.insert(d.clone(), 0x200, 0),
            Err(BusError::ZeroLength { base: 0x200 })
        );
        assert!(matches!(
            bus.insert(d.clone(), u64::MAX, 2),
            Err(BusError::Overflow { .. })
        ));
        // Adjacent ranges on both sides are fine.
        bus.insert(d.clone(), 0xf0, 0x10).unwrap();
        bus.insert(d, 0x110, 0x10).unwrap();
    }
}
