//! Guest RAM: anonymous mmap regions laid out by the architecture (RAM hot-plugged while
//! the guest runs is added by [`crate::hotplug::memory`]).
//!
//! - [`layout`]: where the hot-plug region and each DIMM go (pure).

pub mod layout;

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryRegion};

/// The guest's RAM.
pub type GuestMemoryMmap = vm_memory::GuestMemoryMmap<()>;
/// One mapped region of guest RAM.
pub type GuestRegionMmap = vm_memory::GuestRegionMmap<()>;
/// The guest's RAM as it changes with hot-plug: readers take a snapshot with
/// `memory()`, the hot-plug code swaps in a new map.
pub type GuestMemoryAtomic = vm_memory::GuestMemoryAtomic<GuestMemoryMmap>;

/// Why guest RAM could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("default_memory: {mib} MiB does not fit this host's address space")]
    TooLarge { mib: u64 },
    #[error("default_memory: cannot allocate {mib} MiB of guest RAM")]
    Allocate {
        mib: u64,
        #[source]
        source: vm_memory::mmap::FromRangesError,
    },
}

/// Bytes in `mib` MiB, checked.
pub fn mib_to_bytes(mib: u64) -> Result<u64, MemoryError> {
    mib.checked_mul(1 << 20)
        .ok_or(MemoryError::TooLarge { mib })
}

/// Map `regions` (start, size) as guest RAM. `mib` names the configured
/// size in errors.
pub fn create_guest_memory(
    regions: &[(GuestAddress, u64)],
    mib: u64,
) -> Result<GuestMemoryMmap, MemoryError> {
    let ranges = regions
        .iter()
        .map(|&(start, size)| {
            usize::try_from(size)
                .map(|s| (start, s))
                .map_err(|_| MemoryError::TooLarge { mib })
        })
        .collect::<Result<Vec<_>, _>>()?;
    GuestMemoryMmap::from_ranges(&ranges).map_err(|source| MemoryError::Allocate { mib, source })
}

/// Total bytes of guest RAM.
pub fn total_size(mem: &GuestMemoryMmap) -> u64 {
    mem.iter().map(|r| r.len()).sum()
}

/// End (exclusive) of the highest region of guest RAM (0 without RAM).
pub fn end_address(mem: &GuestMemoryMmap) -> u64 {
    mem.iter()
        .map(|r| r.start_addr().0.saturating_add(r.len()))
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_create_guest_memory_regions() {
        let mem = create_guest_memory(
            &[(GuestAddress(0), 1 << 20), (GuestAddress(1 << 30), 4096)],
            1,
        )
        .unwrap();
        assert_eq!(mem.num_regions(), 2);
        assert_eq!(total_size(&mem), (1 << 20) + 4096);
    }

    #[test]
    fn test_mib_to_bytes_overflow_names_field() {
        assert_eq!(mib_to_bytes(2).unwrap(), 2 << 20);
        let e = mib_to_bytes(u64::MAX).unwrap_err().to_string();
        assert!(e.starts_with("default_memory:"), "{e}");
    }
}
