//! The aarch64 tables: FADT (hardware-reduced, PSCI over HVC), MADT (GIC),
//! GTDT (architected timer) and SPCR (the PL011 console).
//!
//! Facts: ACPI 6.4 sections 5.2.9 (FADT, ARM_BOOT_ARCH at offset 129),
//! 5.2.12.14-17 (GICC 80 bytes, GICD 24, GICR 16), 5.2.24 (GTDT); the SPCR
//! is Microsoft's "Serial Port Console Redirection Table" revision 2. Linux
//! arm64 refuses an FADT older than 5.1 or without HW_REDUCED_ACPI
//! (`acpi_fadt_sanity_check`) and takes PSCI's conduit from ARM_BOOT_ARCH.

use super::super::fadt::{
    FADT_LEN, FADT_REVISION, FLAGS, FLAG_HW_REDUCED_ACPI, MINOR_REVISION, X_DSDT,
};
use super::super::sdt::{AddressSpace, Gas, Sdt};
use super::super::AcpiError;
use super::{ArmPlatform, GicVersion};

/// FADT ARM_BOOT_ARCH (u16).
pub const FADT_ARM_BOOT_ARCH: usize = 129;
/// ARM_BOOT_ARCH bit 0: PSCI is implemented; bit 1: call it with HVC (not SMC).
pub const ARM_PSCI_COMPLIANT: u16 = 1 << 0;
pub const ARM_PSCI_USE_HVC: u16 = 1 << 1;
/// FADT minor revision: ACPI 6.3 (Linux accepts >= 5.1).
const ARM_FADT_MINOR_REVISION: u8 = 3;

/// The FADT of the aarch64 board, pointing at the DSDT at `dsdt_addr`.
pub fn fadt(dsdt_addr: u64) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"FACP", FADT_REVISION, *b"HVMFADT ");
    t.zero_fill_to(FADT_LEN);
    t.put_u32(FLAGS, FLAG_HW_REDUCED_ACPI);
    t.put_u16(FADT_ARM_BOOT_ARCH, ARM_PSCI_COMPLIANT | ARM_PSCI_USE_HVC);
    t.put_u8(MINOR_REVISION, ARM_FADT_MINOR_REVISION);
    t.put_u64(X_DSDT, dsdt_addr);
    t.finish()
}

/// MADT revision 5 (ACPI 6.3/6.4).
pub const MADT_REVISION: u8 = 5;
pub const TYPE_GICC: u8 = 0x0b;
pub const TYPE_GICD: u8 = 0x0c;
pub const TYPE_GICR: u8 = 0x0e;
pub const GICC_LEN: u8 = 80;
pub const GICD_LEN: u8 = 24;
pub const GICR_LEN: u8 = 16;
/// GICC flag: the processor is usable.
pub const GICC_ENABLED: u32 = 1 << 0;
/// Offset of the first MADT entry.
pub const MADT_ENTRIES_OFFSET: usize = 44;

/// The MADT: one GICC per possible vCPU (the first `num_vcpus` enabled),
/// the distributor, and (GICv3) the redistributor range.
pub fn madt(p: &ArmPlatform) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"APIC", MADT_REVISION, *b"HVMMADT ");
    t.push_u32(0); // no local interrupt controller address on ARM
    t.push_u32(0); // flags
    for index in 0..p.max_vcpus {
        let flags = if index < p.num_vcpus { GICC_ENABLED } else { 0 };
        t.push_bytes(&[TYPE_GICC, GICC_LEN]);
        t.push_u16(0);
        t.push_u32(index); // CPU interface number
        t.push_u32(index); // ACPI processor UID
        t.push_u32(flags);
        t.push_u32(0); // parking protocol version
        t.push_u32(0); // performance interrupt (no PMU)
        t.push_u64(0); // parked address
        let cpu_interface = match p.gic {
            GicVersion::V2 => p.gicc_base,
            GicVersion::V3 => 0,
        };
        t.push_u64(cpu_interface);
        t.push_u64(0); // GICV
        t.push_u64(0); // GICH
        t.push_u32(0); // VGIC maintenance interrupt (no EL2 in the guest)
        t.push_u64(0); // GICR base: the GICR entry describes them all
        t.push_u64((p.mpidr)(index));
        t.push_u8(0); // efficiency class
        t.push_u8(0);
        t.push_u16(0); // SPE overflow interrupt
    }
    t.push_bytes(&[TYPE_GICD, GICD_LEN]);
    t.push_u16(0);
    t.push_u32(0); // GIC ID
    t.push_u64(p.gicd_base);
    t.push_u32(0); // system vector base
    t.push_u8(match p.gic {
        GicVersion::V2 => 2,
        GicVersion::V3 => 3,
    });
    t.push_bytes(&[0, 0, 0]);
    if p.gic == GicVersion::V3 {
        t.push_bytes(&[TYPE_GICR, GICR_LEN]);
        t.push_u16(0);
        t.push_u64(p.gicr_base);
        // The layout caps the region far below 4 GiB.
        t.push_u32(u32::try_from(p.gicr_size).unwrap_or(u32::MAX));
    }
    t.finish()
}

/// GTDT revision 2 (ACPI 6.0..6.2 layout, 96 bytes).
pub const GTDT_REVISION: u8 = 2;
pub const GTDT_LEN: usize = 96;
/// "Not provided" for the memory-mapped counter blocks.
const NO_ADDRESS: u64 = u64::MAX;
/// Timer flags: level-triggered, active high (QEMU's choice).
const TIMER_FLAGS_LEVEL_HIGH: u32 = 0;

/// The GTDT: the four architected timers' interrupts.
pub fn gtdt(p: &ArmPlatform) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"GTDT", GTDT_REVISION, *b"HVMGTDT ");
    t.push_u64(NO_ADDRESS); // CntControlBase
    t.push_u32(0);
    for gsiv in [
        p.timer_gsiv.secure_el1,
        p.timer_gsiv.nonsecure_el1,
        p.timer_gsiv.virtual_el1,
        p.timer_gsiv.el2,
    ] {
        t.push_u32(gsiv);
        t.push_u32(TIMER_FLAGS_LEVEL_HIGH);
    }
    t.push_u64(NO_ADDRESS); // CntReadBase
    t.push_u32(0); // platform timers
    t.push_u32(0); // their offset
    debug_assert_eq!(t.len(), GTDT_LEN);
    t.finish()
}

/// SPCR revision 2, 80 bytes.
pub const SPCR_REVISION: u8 = 2;
pub const SPCR_LEN: usize = 80;
/// Interface type 3: ARM PL011.
pub const SPCR_INTERFACE_PL011: u8 = 3;
/// Interrupt type bit 3: ARM GIC.
pub const SPCR_INTERRUPT_GIC: u8 = 1 << 3;
/// Baud rate 7: 115200.
const SPCR_BAUD_115200: u8 = 7;

/// The SPCR: the console is the PL011 at `uart_base` on `uart_gsiv`.
pub fn spcr(p: &ArmPlatform) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"SPCR", SPCR_REVISION, *b"HVMSPCR ");
    t.push_u8(SPCR_INTERFACE_PL011);
    t.push_bytes(&[0, 0, 0]);
    t.push_bytes(
        &Gas {
            space: AddressSpace::SystemMemory,
            bit_width: 32,
            bit_offset: 0,
            access_size: 3, // dword
            address: p.uart_base,
        }
        .to_bytes(),
    );
    t.push_u8(SPCR_INTERRUPT_GIC);
    t.push_u8(0); // PC-AT IRQ
    t.push_u32(p.uart_gsiv);
    t.push_u8(SPCR_BAUD_115200);
    t.push_u8(0); // no parity
    t.push_u8(1); // one stop bit
    t.push_u8(0); // no flow control
    t.push_u8(0); // terminal type VT100
    t.push_u8(0); // reserved
    t.push_u16(0xffff); // not a PCI device
    t.push_u16(0xffff);
    t.push_u8(0);
    t.push_u8(0);
    t.push_u8(0);
    t.push_u32(0);
    t.push_u8(0);
    t.push_u32(0);
    debug_assert_eq!(t.len(), SPCR_LEN);
    t.finish()
}
