//! Guest RAM regions around the 32-bit MMIO gap, and the e820 memory map
//! the kernel gets (in the zero page, or as the PVH memory map).

use vm_memory::GuestAddress;

use super::layout::{
    ACPI_RSDP_ADDR, ACPI_TABLES_ADDR, ACPI_TABLES_MAX_SIZE, EBDA_START, HIMEM_START, MMIO_GAP_END,
    MMIO_GAP_START,
};

/// e820 entry types (the values of the BIOS interface).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum E820Kind {
    Ram = 1,
    Reserved = 2,
}

/// One e820 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Kind,
}

/// Why a memory size cannot be laid out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("default_memory: {bytes} bytes is too small: at least {min} bytes are needed")]
    TooSmall { bytes: u64, min: u64 },
    #[error("default_memory: {bytes} bytes does not fit the guest physical address space")]
    TooLarge { bytes: u64 },
}

/// Smallest RAM that can be laid out: the 1 MiB legacy area plus one MiB.
pub const MIN_RAM_BYTES: u64 = 2 * HIMEM_START;

/// The RAM regions (start, size) for `bytes` of guest RAM: up to
/// [`MMIO_GAP_START`] from 0, the rest from [`MMIO_GAP_END`].
pub fn ram_regions(bytes: u64) -> Result<Vec<(GuestAddress, u64)>, LayoutError> {
    if bytes < MIN_RAM_BYTES {
        return Err(LayoutError::TooSmall {
            bytes,
            min: MIN_RAM_BYTES,
        });
    }
    let low = bytes.min(MMIO_GAP_START);
    let mut regions = vec![(GuestAddress(0), low)];
    let high = bytes - low;
    if high > 0 {
        MMIO_GAP_END
            .checked_add(high)
            .ok_or(LayoutError::TooLarge { bytes })?;
        regions.push((GuestAddress(MMIO_GAP_END), high));
    }
    Ok(regions)
}

/// End (exclusive) of the RAM below the MMIO gap: kernel, initrd and boot
/// structures live there.
pub fn low_ram_end(bytes: u64) -> u64 {
    bytes.min(MMIO_GAP_START)
}

/// The e820 map for `bytes` of RAM (sorted, non-overlapping): base RAM below
/// the EBDA, the ACPI tables reserved, RAM from 1 MiB to the gap, and RAM
/// above 4 GiB.
pub fn e820_map(bytes: u64) -> Result<Vec<E820Entry>, LayoutError> {
    let regions = ram_regions(bytes)?;
    let mut map = vec![
        E820Entry {
            addr: 0,
            size: EBDA_START,
            kind: E820Kind::Ram,
        },
        E820Entry {
            addr: ACPI_RSDP_ADDR,
            size: ACPI_TABLES_ADDR + ACPI_TABLES_MAX_SIZE - ACPI_RSDP_ADDR,
            kind: E820Kind::Reserved,
        },
        E820Entry {
            addr: HIMEM_START,
            size: low_ram_end(bytes) - HIMEM_START,
            kind: E820Kind::Ram,
        },
    ];
    if let Some(&(start, size)) = regions.get(1) {
        map.push(E820Entry {
            addr: start.0,
            size,
            kind: E820Kind::Ram,
        });
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn ram(map: &[E820Entry]) -> u64 {
        map.iter()
            .filter(|e| e.kind == E820Kind::Ram)
            .map(|e| e.size)
            .sum()
    }

    #[test]
    fn test_e820_small_memory() {
        let map = e820_map(512 * MIB).unwrap();
        assert_eq!(
            map,
            vec![
                E820Entry {
                    addr: 0,
                    size: 0x9fc00,
                    kind: E820Kind::Ram
                },
                E820Entry {
                    addr: 0xe0000,
                    size: 0x20000,
                    kind: E820Kind::Reserved
                },
                E820Entry {
                    addr: 0x10_0000,
                    size: 511 * MIB,
                    kind: E820Kind::Ram
                },
            ]
        );
        assert_eq!(
            ram_regions(512 * MIB).unwrap(),
            vec![(GuestAddress(0), 512 * MIB)]
        );
    }

    #[test]
    fn test_e820_exactly_3g_has_no_high_ram() {
        let map = e820_map(3 * GIB).unwrap();
        assert_eq!(map.len(), 3);
        assert_eq!(map[2].addr + map[2].size, MMIO_GAP_START);
    }

    #[test]
    fn test_e820_above_3g_splits_around_gap() {
        let bytes = 6 * GIB;
        let map = e820_map(bytes).unwrap();
        assert_eq!(map.len(), 4);
        assert_eq!(map[2].addr + map[2].size, 3 * GIB);
        assert_eq!(
            map[3],
            E820Entry {
                addr: 4 * GIB,
                size: 3 * GIB,
                kind: E820Kind::Ram
            }
        );
        // All RAM but the legacy hole (640 KiB .. 1 MiB) is described.
        assert_eq!(ram(&map), bytes - (HIMEM_START - EBDA_START));
        assert_eq!(
            ram_regions(bytes).unwrap(),
            vec![(GuestAddress(0), 3 * GIB), (GuestAddress(4 * GIB), 3 * GIB)]
        );
        // Sorted and non-overlapping.
        for w in map.windows(2) {
            assert!(w[0].addr + w[0].size <= w[1].addr);
        }
    }

    #[test]
    fn test_e820_reserves_acpi_tables() {
        let map = e820_map(64 * MIB).unwrap();
        let r = map.iter().find(|e| e.kind == E820Kind::Reserved).unwrap();
        assert!(r.addr <= ACPI_RSDP_ADDR);
        assert!(r.addr + r.size >= ACPI_TABLES_ADDR + ACPI_TABLES_MAX_SIZE);
    }

    #[test]
    fn test_layout_rejects_too_small_and_too_large() {
        assert!(matches!(
            ram_regions(MIB),
            Err(LayoutError::TooSmall { .. })
        ));
        assert!(e820_map(0)
            .unwrap_err()
            .to_string()
            .starts_with("default_memory:"));
        assert!(matches!(
            ram_regions(u64::MAX),
            Err(LayoutError::TooLarge { .. })
        ));
    }
}
