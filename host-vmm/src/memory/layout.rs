//! Where hot-pluggable RAM goes, and where the next DIMM lands (pure).
//!
//! The hot-plug region starts at the first memory-block boundary above both
//! the boot RAM and `min_start` (4 GiB on x86_64, so it never touches the
//! 32-bit MMIO gap). Its size is the smaller of what `default_maxmemory`
//! leaves after the boot RAM and what the guest's physical address width
//! leaves above the start, rounded down to whole memory blocks. DIMMs are
//! placed one after the other from the start, each taking one of the
//! `memory_slots` slots. Every base and size is a multiple of the memory
//! block size: Linux onlines and offlines memory in blocks.

use crate::units::format_size;

const MIB: u64 = 1 << 20;

/// Linux's memory block size on x86_64 guests with less than 64 GiB of boot
/// RAM (and on arm64 with 4 KiB pages): the granularity of hot-plug. A
/// constant for now; later the agent reports it (GetGuestDetails).
pub const GUEST_MEMORY_BLOCK_SIZE: u64 = 128 * MIB;

/// Guest physical address bits assumed when the CPU cannot be asked
/// (CPUID 0x80000008 on x86_64): 40 bits (1 TiB), what every x86_64 CPU of
/// the last decade offers and QEMU's default.
pub const FALLBACK_PHYS_BITS: u8 = 40;

/// Narrowest and widest physical address widths taken as given; values
/// outside are clamped (the CPUID field is 8 bits of guest-visible data).
const MIN_PHYS_BITS: u8 = 32;
const MAX_PHYS_BITS: u8 = 52;

/// What the hot-plug region is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugLayoutInput {
    /// Boot RAM in bytes (`default_memory`).
    pub boot_bytes: u64,
    /// End (exclusive) of the highest boot RAM region.
    pub boot_ram_end: u64,
    /// Total RAM allowed in bytes (`default_maxmemory`).
    pub max_bytes: u64,
    /// `memory_slots`.
    pub slots: u32,
    /// Lowest address the region may start at (4 GiB on x86_64).
    pub min_start: u64,
    /// Guest physical address bits.
    pub phys_bits: u8,
    /// Memory block size (a power of two).
    pub block_size: u64,
}

/// What limits the size of the hot-plug region (for logs and messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionLimit {
    /// `default_maxmemory` minus the boot RAM.
    MaxMemory,
    /// The guest's physical address width.
    PhysBits,
}

/// The hot-plug region: `[start, start + size)` in guest physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HotplugRegion {
    pub start: u64,
    /// Bytes, a multiple of `block_size`; 0 when nothing can be plugged.
    pub size: u64,
    pub slots: u32,
    pub block_size: u64,
    pub boot_bytes: u64,
    pub max_bytes: u64,
    pub phys_bits: u8,
    pub limited_by: RegionLimit,
}

/// Round `v` up to a multiple of `align` (a power of two); `None` on overflow.
fn align_up(v: u64, align: u64) -> Option<u64> {
    Some(v.checked_add(align - 1)? & !(align - 1))
}

/// Round `v` down to a multiple of `align` (a power of two).
fn align_down(v: u64, align: u64) -> u64 {
    v & !(align - 1)
}

/// The hot-plug region for `input`. A block size that is not a power of two
/// is treated as [`GUEST_MEMORY_BLOCK_SIZE`]; the physical address width is
/// clamped to 32..=52 bits.
pub fn hotplug_region(input: &HotplugLayoutInput) -> HotplugRegion {
    let block = if input.block_size.is_power_of_two() {
        input.block_size
    } else {
        GUEST_MEMORY_BLOCK_SIZE
    };
    let phys_bits = input.phys_bits.clamp(MIN_PHYS_BITS, MAX_PHYS_BITS);
    let phys_end = 1u64 << phys_bits;
    let start = align_up(input.boot_ram_end.max(input.min_start), block).unwrap_or(u64::MAX);
    let by_max = align_down(input.max_bytes.saturating_sub(input.boot_bytes), block);
    let by_phys = align_down(phys_end.saturating_sub(start), block);
    let (size, limited_by) = if by_phys < by_max {
        (by_phys, RegionLimit::PhysBits)
    } else {
        (by_max, RegionLimit::MaxMemory)
    };
    HotplugRegion {
        start,
        size: if input.slots == 0 { 0 } else { size },
        slots: input.slots,
        block_size: block,
        boot_bytes: input.boot_bytes,
        max_bytes: input.max_bytes,
        phys_bits,
        limited_by,
    }
}

/// The DIMMs plugged so far, in slot order (slot i is `plugged[i]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PluggedDimms {
    /// (base, size) of each plugged slot.
    pub dimms: Vec<(u64, u64)>,
}

impl PluggedDimms {
    /// Bytes plugged in all slots.
    pub fn bytes(&self) -> u64 {
        self.dimms.iter().map(|&(_, s)| s).sum()
    }

    /// First address after the last DIMM, or `start` when none is plugged.
    pub fn next_base(&self, start: u64) -> u64 {
        self.dimms.last().map_or(start, |&(b, s)| b + s)
    }
}

/// Where the next DIMM goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DimmPlacement {
    pub slot: u32,
    pub base: u64,
    pub size: u64,
}

/// Why a DIMM of the requested size cannot be plugged. Each message names
/// the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("memory hotplug is disabled: memory_slots = 0")]
    Disabled,
    #[error("a size of 0 bytes cannot be hot-plugged: give a multiple of the {} MiB memory block size", block / MIB)]
    ZeroSize { block: u64 },
    #[error("{} is not a multiple of the {} MiB memory block size", format_size(*size), block / MIB)]
    NotAligned { size: u64, block: u64 },
    #[error("memory_slots = {slots} are all in use")]
    NoSlot { slots: u32 },
    #[error(
        "would make {} MiB > default_maxmemory = {} MiB",
        total.div_ceil(MIB),
        max / MIB
    )]
    AboveMax { total: u64, max: u64 },
    #[error(
        "would end at {end:#x}, past the {phys_bits}-bit guest physical address space \
         (room for {} MiB more)",
        room / MIB
    )]
    AddressSpace { end: u64, phys_bits: u8, room: u64 },
}

/// Place a DIMM of `size` bytes after the ones in `plugged`.
pub fn plan_dimm(
    region: &HotplugRegion,
    plugged: &PluggedDimms,
    size: u64,
) -> Result<DimmPlacement, PlanError> {
    if region.slots == 0 {
        return Err(PlanError::Disabled);
    }
    let block = region.block_size;
    if size == 0 {
        return Err(PlanError::ZeroSize { block });
    }
    if size % block != 0 {
        return Err(PlanError::NotAligned { size, block });
    }
    let used = u32::try_from(plugged.dimms.len()).unwrap_or(u32::MAX);
    if used >= region.slots {
        return Err(PlanError::NoSlot {
            slots: region.slots,
        });
    }
    let total = region
        .boot_bytes
        .saturating_add(plugged.bytes())
        .saturating_add(size);
    if total > region.max_bytes {
        return Err(PlanError::AboveMax {
            total,
            max: region.max_bytes,
        });
    }
    let base = plugged.next_base(region.start);
    let region_end = region.start.saturating_add(region.size);
    let end = base.saturating_add(size);
    if end > region_end {
        return Err(PlanError::AddressSpace {
            end,
            phys_bits: region.phys_bits,
            room: region_end.saturating_sub(base),
        });
    }
    Ok(DimmPlacement {
        slot: used,
        base,
        size,
    })
}

/// Why the block size the guest reports cannot be used for the hot-plug region.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockSizeError {
    #[error("the guest's memory block size {0:#x} is not a power of two")]
    NotPowerOfTwo(u64),
    #[error(
        "the guest's memory block size is {} MiB, but the hot-plug region starts at {start:#x}, \
         which is not a multiple of it",
        guest / MIB
    )]
    RegionStart { guest: u64, start: u64 },
    #[error(
        "the guest's memory block size is {} MiB, but DIMMs already plugged are not multiples of it",
        guest / MIB
    )]
    Plugged { guest: u64 },
}

/// The block size hot-adds must use once the guest has said what its block size is (the
/// agent's GetGuestDetails): the larger of the region's and the guest's. A smaller guest
/// block needs nothing (the region's sizes are multiples of it). A larger one is adopted
/// only when the region's start and every plugged DIMM are aligned to it; otherwise hot-adds
/// could not be onlined whole, and the caller should say so.
pub fn guest_block_size(
    region: &HotplugRegion,
    plugged: &PluggedDimms,
    guest: u64,
) -> Result<u64, BlockSizeError> {
    if !guest.is_power_of_two() {
        return Err(BlockSizeError::NotPowerOfTwo(guest));
    }
    if guest <= region.block_size {
        return Ok(region.block_size);
    }
    if region.start % guest != 0 {
        return Err(BlockSizeError::RegionStart {
            guest,
            start: region.start,
        });
    }
    if plugged
        .dimms
        .iter()
        .any(|&(base, size)| base % guest != 0 || size % guest != 0)
    {
        return Err(BlockSizeError::Plugged { guest });
    }
    Ok(guest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_guest_block_size() {
        let r = HotplugRegion {
            start: 4 * GIB,
            size: 8 * GIB,
            slots: 4,
            block_size: BLOCK,
            boot_bytes: GIB,
            max_bytes: 9 * GIB,
            phys_bits: 40,
            limited_by: RegionLimit::MaxMemory,
        };
        let none = PluggedDimms::default();
        // Smaller or equal: the region's block stays.
        assert_eq!(guest_block_size(&r, &none, 64 * MIB), Ok(BLOCK));
        assert_eq!(guest_block_size(&r, &none, BLOCK), Ok(BLOCK));
        // Larger and aligned: adopted.
        assert_eq!(guest_block_size(&r, &none, GIB), Ok(GIB));
        assert_eq!(
            guest_block_size(&r, &none, 3 * BLOCK),
            Err(BlockSizeError::NotPowerOfTwo(3 * BLOCK))
        );
        let odd = HotplugRegion {
            start: 4 * GIB + BLOCK,
            ..r
        };
        let e = guest_block_size(&odd, &none, GIB).unwrap_err();
        assert!(e.to_string().contains("1024 MiB"), "{e}");
        let plugged = PluggedDimms {
            dimms: vec![(4 * GIB, BLOCK)],
        };
        assert_eq!(
            guest_block_size(&r, &plugged, GIB),
            Err(BlockSizeError::Plugged { guest: GIB })
        );
    }

    const GIB: u64 = 1 << 30;
    const BLOCK: u64 = GUEST_MEMORY_BLOCK_SIZE;

    fn input(boot_mib: u64, max_mib: u64, slots: u32) -> HotplugLayoutInput {
        let boot = boot_mib * MIB;
        HotplugLayoutInput {
            boot_bytes: boot,
            // x86_64: up to 3 GiB below the gap, the rest from 4 GiB.
            boot_ram_end: if boot <= 3 * GIB { boot } else { boot + GIB },
            max_bytes: max_mib * MIB,
            slots,
            min_start: 4 * GIB,
            phys_bits: 40,
            block_size: BLOCK,
        }
    }

    #[test]
    fn test_region_small_guest_starts_at_4g() {
        let r = hotplug_region(&input(512, 2048, 10));
        assert_eq!(r.start, 4 * GIB);
        assert_eq!(r.size, 1536 * MIB);
        assert_eq!(r.limited_by, RegionLimit::MaxMemory);
        assert_eq!(r.start % BLOCK, 0);
    }

    #[test]
    fn test_region_after_high_ram_block_aligned() {
        // 5 GiB + 64 MiB boot: high RAM ends at 6 GiB + 64 MiB; next block boundary.
        let mut i = input(5 * 1024 + 64, 16 * 1024, 4);
        i.boot_ram_end = 6 * GIB + 64 * MIB;
        let r = hotplug_region(&i);
        assert_eq!(r.start, 6 * GIB + BLOCK);
        assert_eq!(r.start % BLOCK, 0);
        // maxmemory - boot = 11 GiB - 64 MiB, rounded down to whole blocks.
        assert_eq!(r.size, 11 * GIB - BLOCK);
        assert_eq!(r.size % BLOCK, 0);
    }

    #[test]
    fn test_region_clamped_to_phys_bits() {
        let mut i = input(1024, 4 << 20, 8); // 4 TiB maximum
        i.phys_bits = 36; // 64 GiB of address space
        let r = hotplug_region(&i);
        assert_eq!(r.start, 4 * GIB);
        assert_eq!(r.size, 60 * GIB);
        assert_eq!(r.limited_by, RegionLimit::PhysBits);
        // Absurd widths are clamped, never shift-overflow.
        for bits in [0, 8, 63, 64, 200, 255] {
            i.phys_bits = bits;
            let r = hotplug_region(&i);
            assert!((32..=52).contains(&r.phys_bits), "{bits}");
            assert_eq!(r.size % BLOCK, 0);
        }
    }

    #[test]
    fn test_region_degenerate_inputs_never_panic() {
        let mut i = input(2048, 1024, 2); // maxmemory below boot: nothing to plug
        assert_eq!(hotplug_region(&i).size, 0);
        i.boot_ram_end = u64::MAX;
        let r = hotplug_region(&i);
        assert_eq!(r.size, 0);
        i.block_size = 3; // not a power of two
        assert_eq!(hotplug_region(&i).block_size, BLOCK);
        let r = hotplug_region(&input(512, 2048, 0));
        assert_eq!(r.size, 0);
        assert_eq!(
            plan_dimm(&r, &PluggedDimms::default(), BLOCK),
            Err(PlanError::Disabled)
        );
    }

    #[test]
    fn test_plan_places_dimms_back_to_back() {
        let r = hotplug_region(&input(512, 2048, 3));
        let mut p = PluggedDimms::default();
        for (i, size) in [512 * MIB, 256 * MIB, 768 * MIB].into_iter().enumerate() {
            let d = plan_dimm(&r, &p, size).unwrap();
            assert_eq!(d.slot, i as u32);
            assert_eq!(d.base, p.next_base(4 * GIB));
            assert_eq!(d.base % BLOCK, 0);
            p.dimms.push((d.base, d.size));
        }
        assert_eq!(p.dimms[2], (4 * GIB + 768 * MIB, 768 * MIB));
        assert_eq!(p.bytes(), 1536 * MIB);
    }

    #[test]
    fn test_plan_errors_name_the_limit() {
        let r = hotplug_region(&input(1024, 2048, 2));
        let none = PluggedDimms::default();
        let msg = |e: PlanError| e.to_string();
        assert_eq!(
            msg(plan_dimm(&r, &none, 100 * MIB).unwrap_err()),
            "100M is not a multiple of the 128 MiB memory block size"
        );
        assert!(msg(plan_dimm(&r, &none, 0).unwrap_err()).contains("128 MiB memory block"));
        assert_eq!(
            msg(plan_dimm(&r, &none, 2 * GIB).unwrap_err()),
            "would make 3072 MiB > default_maxmemory = 2048 MiB"
        );
        let two = PluggedDimms {
            dimms: vec![(4 * GIB, BLOCK), (4 * GIB + BLOCK, BLOCK)],
        };
        assert_eq!(
            msg(plan_dimm(&r, &two, BLOCK).unwrap_err()),
            "memory_slots = 2 are all in use"
        );
        // Address-space limit: 33 bits leave 4 GiB above the 4 GiB start.
        let mut i = input(512, 64 * 1024, 4);
        i.phys_bits = 33;
        let r = hotplug_region(&i);
        let e = plan_dimm(&r, &none, 8 * GIB).unwrap_err();
        assert!(
            matches!(e, PlanError::AddressSpace { phys_bits: 33, .. }),
            "{e}"
        );
        assert!(msg(e).contains("33-bit guest physical address space (room for 4096 MiB more)"));
        assert!(plan_dimm(&r, &none, 4 * GIB).is_ok());
    }

    #[test]
    fn test_plan_huge_sizes_do_not_overflow() {
        let r = hotplug_region(&input(512, u64::MAX / MIB, 4));
        for size in [!(BLOCK - 1), 1 << 62] {
            let e = plan_dimm(&r, &PluggedDimms::default(), size).unwrap_err();
            assert!(
                matches!(
                    e,
                    PlanError::AboveMax { .. } | PlanError::AddressSpace { .. }
                ),
                "{e}"
            );
        }
    }
}
