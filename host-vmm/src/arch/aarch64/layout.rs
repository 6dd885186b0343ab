//! aarch64 guest physical memory map, in the style of QEMU's `virt` board, so
//! that Debian's stock UEFI ROM (`QEMU_EFI.fd`, built for that board) finds
//! what it expects where it expects it.
//!
//! ```text
//! 0x0000_0000  flash0: the UEFI ROM (`firmware`), a read-only memory slot; vCPU 0 starts here
//! 0x0400_0000  flash1: the CFI flash variable store (per sandbox)
//! 0x0800_0000  GIC distributor (64 KiB)
//! 0x0801_0000  GICv2 CPU interface (fallback when GICv3 cannot be created)
//! 0x080a_0000  GICv3 redistributors, 128 KiB per possible vCPU (at most 123)
//! 0x0900_0000  PL011 UART (SPI 1)        0x0901_0000  PL031 RTC (SPI 2)
//! 0x0902_0000  fw_cfg (MMIO with DMA)
//! 0x0907_0000  memory hot-plug controller  0x0908_0000  GED (SPI 9)
//! 0x0909_0000  virtio hot-plug present register
//! 0x0a00_0000  virtio-mmio windows, 4 KiB each (SPI 16 + n)
//! 0x4000_0000  RAM: the device tree at its start, the firmware's memory after it
//! then         hot-pluggable RAM (DIMM slots), from the first memory block
//!              boundary above the boot RAM (memory::layout)
//! ```
//!
//! The addresses and SPI numbers are QEMU's (hw/arm/virt.c `base_memmap` and
//! `a15irqmap`), except the virtio-mmio windows, which are 4 KiB here (the
//! transport's window) instead of 512 bytes. Pure: builds and is tested on
//! every architecture.

/// Bytes in a KiB, MiB, GiB.
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// Page size every window is aligned to.
pub const PAGE_SIZE: u64 = 4 * KIB;

/// flash0: the UEFI ROM, mapped read-only at 0 (the reset vector).
pub const FLASH0_BASE: u64 = 0;
/// flash1: the CFI variable store.
pub const FLASH1_BASE: u64 = 0x0400_0000;
/// Each flash bank's window (QEMU virt: 64 MiB each).
pub const FLASH_BANK_SIZE: u64 = 64 * MIB;
/// Bytes of the variable store behind flash1 (four erase blocks): EDK2's
/// ArmVirtQemu keeps its variables, fault-tolerant-write working area and
/// spare area in the first 768 KiB. The guest reads it straight from a
/// read-only memory slot in read-array mode, so this is what the host maps.
pub const FLASH1_SIZE: u64 = 4 * FLASH_SECTOR_SIZE;
/// Erase block of the CFI flash (QEMU virt's `VIRT_FLASH_SECTOR_SIZE`; EDK2's
/// `QEMU_NOR_BLOCK_SIZE`).
pub const FLASH_SECTOR_SIZE: u64 = 256 * KIB;

/// GIC distributor (GICv2 and GICv3).
pub const GICD_BASE: u64 = 0x0800_0000;
pub const GICD_SIZE: u64 = 64 * KIB;
/// GICv2 CPU interface (only with the GICv2 fallback). KVM's VGIC CPU
/// interface is 8 KiB; QEMU reserves 64 KiB.
pub const GICC_BASE: u64 = 0x0801_0000;
pub const GICC_SIZE: u64 = 64 * KIB;
/// GICv3 redistributors: one 128 KiB frame pair (RD + SGI) per vCPU.
pub const GICR_BASE: u64 = 0x080a_0000;
/// Bytes of one vCPU's redistributor.
pub const GICR_STRIDE: u64 = 128 * KIB;
/// The room for redistributors, up to the UART.
pub const GICR_MAX_SIZE: u64 = 0x00f6_0000;
/// Most vCPUs whose redistributors fit below the UART (QEMU places more in a
/// second region above RAM; this board does not).
pub const MAX_VCPUS: u32 = (GICR_MAX_SIZE / GICR_STRIDE) as u32;

/// PL011 UART (the console).
pub const UART_BASE: u64 = 0x0900_0000;
pub const UART_SIZE: u64 = 4 * KIB;
pub const UART_SPI: u32 = 1;
/// PL031 RTC (without it the ROM drops to its shell).
pub const RTC_BASE: u64 = 0x0901_0000;
pub const RTC_SIZE: u64 = 4 * KIB;
pub const RTC_SPI: u32 = 2;
/// fw_cfg's MMIO registers: data (8 bytes) at +0, selector (2) at +8, DMA
/// address (8) at +0x10.
pub const FW_CFG_BASE: u64 = 0x0902_0000;
pub const FW_CFG_SIZE: u64 = 0x18;

/// Memory hot-plug controller registers (QEMU's `VIRT_PCDIMM_ACPI`).
pub const MEMORY_HOTPLUG_MMIO_BASE: u64 = 0x0907_0000;
/// Generic Event Device event register (QEMU's `VIRT_ACPI_GED`).
pub const GED_MMIO_BASE: u64 = 0x0908_0000;
/// The GED's interrupt (QEMU's `VIRT_ACPI_GED` SPI).
pub const GED_SPI: u32 = 9;
/// Present bitmap of the hot-pluggable virtio-mmio slots (4 bytes).
pub const VIRTIO_HOTPLUG_MMIO_BASE: u64 = 0x0909_0000;

/// virtio-mmio windows, one per device.
pub const VIRTIO_MMIO_BASE: u64 = 0x0a00_0000;
/// Bytes of one window (the transport's register window).
pub const VIRTIO_MMIO_SIZE: u64 = 4 * KIB;
/// Windows reserved (QEMU virt has 32): every bit of the 32-bit present register.
pub const VIRTIO_MMIO_SLOTS: u32 = 32;
/// SPI of window 0; window n has `VIRTIO_MMIO_SPI_BASE + n`.
pub const VIRTIO_MMIO_SPI_BASE: u32 = 16;

/// RAM starts at 1 GiB.
pub const RAM_BASE: u64 = 0x4000_0000;
/// The device tree goes at the start of RAM, where the ROM looks for it
/// (EDK2's `PcdDeviceTreeInitialBaseAddress`).
pub const FDT_BASE: u64 = RAM_BASE;
/// Most bytes the device tree may take (QEMU: 1 MiB).
pub const FDT_MAX_SIZE: u64 = MIB;
/// Least boot RAM: the device tree plus room for the ROM to run in.
pub const MIN_RAM_SIZE: u64 = 128 * MIB;

/// Interrupt IDs: SPI n is INTID 32 + n (what ACPI calls its GSIV); the
/// KVM irqfd "GSI" of an SPI on the in-kernel GIC is n itself.
pub const SPI_BASE_INTID: u32 = 32;
/// Highest SPI used by the board (the last virtio-mmio window).
pub const LAST_SPI: u32 = VIRTIO_MMIO_SPI_BASE + VIRTIO_MMIO_SLOTS - 1;
/// Interrupt lines the GIC is created with (INTIDs 0..IRQS; a multiple of 32).
pub const GIC_NR_IRQS: u32 = 128;

/// Architected timer PPIs (INTID = 16 + PPI): secure physical 13, non-secure
/// physical 14, virtual 11, hypervisor 10 (the numbers QEMU's device tree uses).
pub const TIMER_PPI_SECURE: u32 = 13;
pub const TIMER_PPI_NONSECURE: u32 = 14;
pub const TIMER_PPI_VIRTUAL: u32 = 11;
pub const TIMER_PPI_HYP: u32 = 10;
/// INTID of PPI 0.
pub const PPI_BASE_INTID: u32 = 16;

/// The GIC a VM gets: v3 where KVM can create it, v2 otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GicVersion {
    V2,
    V3,
}

/// The MPIDR affinity KVM gives vCPU `index` (`reset_mpidr` in
/// arch/arm64/kvm/sys_regs.c: Aff0 = bits 0..3 of the index, Aff1 the next
/// 8, Aff2 the 8 after); what the MADT's GICC and the device tree's `cpu`
/// nodes name a CPU by.
pub const fn mpidr(index: u32) -> u64 {
    let i = index as u64;
    (i & 0xf) | ((i >> 4) & 0xff) << 8 | ((i >> 12) & 0xff) << 16
}

/// The GIC's INTID of SPI `spi` (ACPI's GSIV).
pub const fn spi_intid(spi: u32) -> u32 {
    SPI_BASE_INTID + spi
}

/// The GIC's INTID of PPI `ppi`.
pub const fn ppi_intid(ppi: u32) -> u32 {
    PPI_BASE_INTID + ppi
}

/// Base of virtio-mmio window `slot` (no check: see [`VIRTIO_MMIO_SLOTS`]).
pub const fn virtio_mmio_base(slot: u32) -> u64 {
    VIRTIO_MMIO_BASE + slot as u64 * VIRTIO_MMIO_SIZE
}

/// SPI of virtio-mmio window `slot`.
pub const fn virtio_mmio_spi(slot: u32) -> u32 {
    VIRTIO_MMIO_SPI_BASE + slot
}

/// Why the board cannot hold a VM of this shape; each names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("default_maxvcpus: {max_vcpus} vCPUs need more GIC redistributors than the board has room for (at most {MAX_VCPUS})")]
    TooManyVcpus { max_vcpus: u32 },
    #[error("default_maxvcpus: 0 (at least one vCPU)")]
    NoVcpus,
    #[error("default_memory: {bytes} bytes is below the {} MiB the firmware needs", MIN_RAM_SIZE / MIB)]
    TooLittleRam { bytes: u64 },
    #[error("default_memory: {bytes} bytes of RAM from {RAM_BASE:#x} would pass the {phys_bits}-bit guest physical address space")]
    TooMuchRam { bytes: u64, phys_bits: u8 },
    #[error("default_memory: {bytes} bytes is not a multiple of the {PAGE_SIZE}-byte page")]
    RamNotPageAligned { bytes: u64 },
    #[error("firmware: {bytes} bytes does not fit the {} MiB flash bank", FLASH_BANK_SIZE / MIB)]
    FirmwareTooLarge { bytes: u64 },
    #[error("firmware: the file is empty")]
    FirmwareEmpty,
}

/// One named window of the map (for checks and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub name: &'static str,
    pub base: u64,
    pub size: u64,
}

impl Window {
    pub fn end(&self) -> u64 {
        self.base + self.size
    }
}

/// The board for one VM: what depends on its vCPUs and RAM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Board {
    /// Possible vCPUs (`default_maxvcpus`): one redistributor each.
    pub max_vcpus: u32,
    /// Boot RAM in bytes, from [`RAM_BASE`].
    pub ram_bytes: u64,
}

impl Board {
    /// Check `max_vcpus` and `ram_bytes` fit the board within `phys_bits`
    /// (the VM's IPA size).
    pub fn new(max_vcpus: u32, ram_bytes: u64, phys_bits: u8) -> Result<Board, LayoutError> {
        if max_vcpus == 0 {
            return Err(LayoutError::NoVcpus);
        }
        if max_vcpus > MAX_VCPUS {
            return Err(LayoutError::TooManyVcpus { max_vcpus });
        }
        if ram_bytes < MIN_RAM_SIZE {
            return Err(LayoutError::TooLittleRam { bytes: ram_bytes });
        }
        if ram_bytes % PAGE_SIZE != 0 {
            return Err(LayoutError::RamNotPageAligned { bytes: ram_bytes });
        }
        let limit = 1u64.checked_shl(u32::from(phys_bits)).unwrap_or(u64::MAX);
        match RAM_BASE.checked_add(ram_bytes) {
            Some(end) if end <= limit => Ok(Board {
                max_vcpus,
                ram_bytes,
            }),
            _ => Err(LayoutError::TooMuchRam {
                bytes: ram_bytes,
                phys_bits,
            }),
        }
    }

    /// Bytes of the GICv3 redistributor region.
    pub fn gicr_size(&self) -> u64 {
        u64::from(self.max_vcpus) * GICR_STRIDE
    }

    /// End (exclusive) of the boot RAM; the hot-plug region starts at the
    /// first memory block boundary at or above it.
    pub fn ram_end(&self) -> u64 {
        RAM_BASE + self.ram_bytes
    }

    /// Every window of the map below RAM, then RAM, in address order.
    pub fn windows(&self) -> Vec<Window> {
        let w = |name, base, size| Window { name, base, size };
        let mut v = vec![
            w("flash0", FLASH0_BASE, FLASH_BANK_SIZE),
            w("flash1", FLASH1_BASE, FLASH_BANK_SIZE),
            w("GIC distributor", GICD_BASE, GICD_SIZE),
            w("GICv2 CPU interface", GICC_BASE, GICC_SIZE),
            w("GICv3 redistributors", GICR_BASE, self.gicr_size()),
            w("PL011", UART_BASE, UART_SIZE),
            w("PL031", RTC_BASE, RTC_SIZE),
            w("fw_cfg", FW_CFG_BASE, FW_CFG_SIZE),
            w(
                "memory hot-plug controller",
                MEMORY_HOTPLUG_MMIO_BASE,
                PAGE_SIZE,
            ),
            w("GED", GED_MMIO_BASE, PAGE_SIZE),
            w(
                "virtio hot-plug present",
                VIRTIO_HOTPLUG_MMIO_BASE,
                PAGE_SIZE,
            ),
        ];
        for slot in 0..VIRTIO_MMIO_SLOTS {
            v.push(w("virtio-mmio", virtio_mmio_base(slot), VIRTIO_MMIO_SIZE));
        }
        v.push(w("RAM", RAM_BASE, self.ram_bytes));
        v
    }
}

/// Bytes of the flash0 memory slot for a ROM of `rom_bytes`: rounded up to
/// a page (KVM slots are page-granular), at most one flash bank.
pub fn flash0_slot_size(rom_bytes: u64) -> Result<u64, LayoutError> {
    if rom_bytes == 0 {
        return Err(LayoutError::FirmwareEmpty);
    }
    if rom_bytes > FLASH_BANK_SIZE {
        return Err(LayoutError::FirmwareTooLarge { bytes: rom_bytes });
    }
    Ok(rom_bytes.div_ceil(PAGE_SIZE) * PAGE_SIZE)
}

/// Lowest address hot-plugged RAM may take: right after the boot RAM
/// (there is no MMIO above RAM on this board). The DIMM region itself is
/// `memory::layout::hotplug_region` with this as `min_start`.
pub fn hotplug_min_start(board: &Board) -> u64 {
    board.ram_end()
}

/// The board's fixed 32-bit windows fit the AML (which takes 32-bit bases).
const _: () = {
    assert!(VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOTS as u64 * VIRTIO_MMIO_SIZE <= RAM_BASE);
    assert!(GICR_BASE + GICR_MAX_SIZE <= UART_BASE);
    assert!(LAST_SPI + SPI_BASE_INTID < GIC_NR_IRQS);
    assert!(GIC_NR_IRQS % 32 == 0);
    assert!(GED_SPI < VIRTIO_MMIO_SPI_BASE && RTC_SPI != UART_SPI);
    assert!(FLASH1_BASE == FLASH0_BASE + FLASH_BANK_SIZE);
    assert!(FLASH_BANK_SIZE % FLASH_SECTOR_SIZE == 0);
    assert!(FLASH1_SIZE % FLASH_SECTOR_SIZE == 0 && FLASH1_SIZE >= 0xc_0000);
    assert!(FLASH1_SIZE <= FLASH_BANK_SIZE);
    assert!(RAM_BASE % GIB == 0);
};

#[cfg(test)]
mod tests {
    use super::*;

    fn board() -> Board {
        Board::new(MAX_VCPUS, 2 * GIB, 40).unwrap()
    }

    #[test]
    fn test_layout_windows_do_not_overlap_and_are_sorted() {
        for max in [1, 2, 8, MAX_VCPUS] {
            let b = Board::new(max, 512 * MIB, 40).unwrap();
            let w = b.windows();
            for pair in w.windows(2) {
                assert!(
                    pair[0].end() <= pair[1].base,
                    "{:?} overlaps {:?}",
                    pair[0],
                    pair[1]
                );
            }
        }
    }

    #[test]
    fn test_layout_windows_are_page_aligned() {
        for w in board().windows() {
            assert_eq!(w.base % PAGE_SIZE, 0, "{w:?}");
            // fw_cfg's registers are 0x18 bytes inside their own page.
            if w.name != "fw_cfg" {
                assert_eq!(w.size % PAGE_SIZE, 0, "{w:?}");
            }
        }
        assert_eq!(
            GICR_BASE % (64 * KIB),
            0,
            "redistributors are 64 KiB aligned"
        );
        assert_eq!(GICD_BASE % (64 * KIB), 0);
        assert_eq!(FLASH1_BASE % FLASH_SECTOR_SIZE, 0);
    }

    #[test]
    fn test_layout_matches_qemu_virt_where_the_rom_looks() {
        assert_eq!(FLASH0_BASE, 0);
        assert_eq!(FLASH1_BASE, 0x0400_0000);
        assert_eq!(UART_BASE, 0x0900_0000);
        assert_eq!(RTC_BASE, 0x0901_0000);
        assert_eq!(FW_CFG_BASE, 0x0902_0000);
        assert_eq!(RAM_BASE, 0x4000_0000);
        assert_eq!(FDT_BASE, RAM_BASE);
        assert_eq!(spi_intid(UART_SPI), 33);
        assert_eq!(ppi_intid(TIMER_PPI_VIRTUAL), 27);
    }

    #[test]
    fn test_layout_redistributors_sized_for_max_vcpus() {
        let b = Board::new(4, 512 * MIB, 40).unwrap();
        assert_eq!(b.gicr_size(), 4 * GICR_STRIDE);
        assert_eq!(MAX_VCPUS, 123);
        assert_eq!(
            Board::new(MAX_VCPUS + 1, 512 * MIB, 40),
            Err(LayoutError::TooManyVcpus {
                max_vcpus: MAX_VCPUS + 1
            })
        );
        assert_eq!(Board::new(0, 512 * MIB, 40), Err(LayoutError::NoVcpus));
    }

    #[test]
    fn test_layout_ram_bounds_name_default_memory() {
        let e = Board::new(1, 64 * MIB, 40).unwrap_err();
        assert!(e.to_string().starts_with("default_memory:"), "{e}");
        let e = Board::new(1, 1 << 40, 40).unwrap_err();
        assert!(matches!(e, LayoutError::TooMuchRam { .. }), "{e}");
        assert!(Board::new(1, (1 << 40) - RAM_BASE, 40).is_ok());
        assert!(Board::new(1, u64::MAX - 4095, 64).is_err());
        assert!(matches!(
            Board::new(1, 128 * MIB + 1, 40),
            Err(LayoutError::RamNotPageAligned { .. })
        ));
    }

    #[test]
    fn test_layout_hotplug_starts_after_ram() {
        let b = board();
        assert_eq!(hotplug_min_start(&b), RAM_BASE + 2 * GIB);
        let last = *b.windows().last().unwrap();
        assert_eq!(last.name, "RAM");
        assert_eq!(last.end(), hotplug_min_start(&b));
    }

    #[test]
    fn test_layout_flash0_slot_rounds_to_pages_within_the_bank() {
        assert_eq!(flash0_slot_size(2 * MIB), Ok(2 * MIB));
        assert_eq!(flash0_slot_size(1), Ok(PAGE_SIZE));
        assert_eq!(flash0_slot_size(64 * MIB), Ok(64 * MIB));
        assert_eq!(
            flash0_slot_size(64 * MIB + 1),
            Err(LayoutError::FirmwareTooLarge {
                bytes: 64 * MIB + 1
            })
        );
        assert_eq!(flash0_slot_size(0), Err(LayoutError::FirmwareEmpty));
    }

    #[test]
    fn test_layout_mpidr_follows_kvm() {
        assert_eq!(mpidr(0), 0);
        assert_eq!(mpidr(15), 0xf);
        assert_eq!(mpidr(16), 0x100);
        assert_eq!(mpidr(17), 0x101);
        assert_eq!(mpidr(122), 0x70a);
    }

    #[test]
    fn test_layout_virtio_windows_and_spis() {
        assert_eq!(virtio_mmio_base(0), 0x0a00_0000);
        assert_eq!(virtio_mmio_base(31), 0x0a01_f000);
        assert_eq!(virtio_mmio_spi(31), 47);
        assert!(spi_intid(LAST_SPI) < GIC_NR_IRQS);
    }
}
