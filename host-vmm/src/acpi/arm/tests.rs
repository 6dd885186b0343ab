//! The aarch64 tables: structure, linking as the firmware does, and iasl.

use super::super::memory_hotplug::MemoryHotplugAml;
use super::super::tests::iasl_util::{disassemble, round_trip, ScratchDir};
use super::tables::*;
use super::*;
use crate::arch::aarch64::layout::{self as board, Board};

const TABLES_AT: u64 = 0x7f00_0000;

fn platform(num: u32, max: u32, gic: GicVersion) -> ArmPlatform {
    let b = Board::new(max, 1 << 30, 40).unwrap();
    ArmPlatform::from_board(&b, num, gic)
}

fn dsdt() -> DsdtBuilder {
    let mut d = DsdtBuilder::new();
    MemoryHotplugAml {
        controller_base: board::MEMORY_HOTPLUG_MMIO_BASE as u32,
        slots: 2,
        ged_base: board::GED_MMIO_BASE as u32,
        ged_gsi: board::spi_intid(board::GED_SPI),
    }
    .add_to(&mut d);
    d
}

fn linked(num: u32, max: u32, gic: GicVersion) -> (FirmwareTables, Vec<u8>, Vec<u8>) {
    let t = create_tables(&platform(num, max, gic), dsdt()).unwrap();
    let (rsdp, tables) = t.link(TABLES_AT);
    (t, rsdp, tables)
}

fn table<'a>(t: &FirmwareTables, tables: &'a [u8], sig: &[u8; 4]) -> &'a [u8] {
    let at = t.layout.iter().find(|(s, _)| s == sig).unwrap().1 as usize;
    let len = u32::from_le_bytes(tables[at + 4..at + 8].try_into().unwrap()) as usize;
    &tables[at..at + len]
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

#[test]
fn test_arm_tables_link_like_the_firmware() {
    let (t, rsdp, tables) = linked(2, 4, GicVersion::V3);
    assert_eq!(byte_sum(&rsdp[..20]), 0);
    assert_eq!(byte_sum(&rsdp), 0);
    let xsdt_at = t.layout.last().unwrap().1 as u64;
    assert_eq!(&t.layout.last().unwrap().0, b"XSDT");
    assert_eq!(u64_at(&rsdp, 24), TABLES_AT + xsdt_at);
    let xsdt = table(&t, &tables, b"XSDT");
    let listed: Vec<&[u8]> = (0..(xsdt.len() - 36) / 8)
        .map(|i| {
            let addr = u64_at(xsdt, 36 + 8 * i) - TABLES_AT;
            &tables[addr as usize..addr as usize + 4]
        })
        .collect();
    assert_eq!(listed, [&b"FACP"[..], b"APIC", b"GTDT", b"SPCR"]);
    let fadt = table(&t, &tables, b"FACP");
    let dsdt_at = t.layout.iter().find(|(s, _)| s == b"DSDT").unwrap().1 as u64;
    assert_eq!(
        u64_at(fadt, super::super::fadt::X_DSDT),
        TABLES_AT + dsdt_at
    );
    for (sig, _) in &t.layout {
        assert_eq!(
            byte_sum(table(&t, &tables, sig)),
            0,
            "{}",
            String::from_utf8_lossy(sig)
        );
    }
    // Unlinked, every checksum byte is 0 (the firmware sums the range with
    // it) and every pointer holds an offset inside the tables blob.
    for c in &t.checksums {
        let b = match c.blob {
            Blob::Rsdp => &t.rsdp,
            Blob::Tables => &t.tables,
        };
        assert_eq!(b[c.offset as usize], 0, "{c:?}");
    }
    for p in &t.pointers {
        let b = match p.blob {
            Blob::Rsdp => &t.rsdp,
            Blob::Tables => &t.tables,
        };
        assert!(
            u64_at(b, p.offset as usize) < t.tables.len() as u64,
            "{p:?}"
        );
    }
}

#[test]
fn test_arm_fadt_is_hardware_reduced_psci_over_hvc() {
    let (t, _, tables) = linked(1, 1, GicVersion::V3);
    let f = table(&t, &tables, b"FACP");
    assert_eq!(f.len(), super::super::fadt::FADT_LEN);
    assert_eq!(f[8], 6);
    assert_eq!(f[super::super::fadt::MINOR_REVISION], 3);
    assert_ne!(u32_at(f, super::super::fadt::FLAGS) & (1 << 20), 0);
    let arch = u16::from_le_bytes([f[FADT_ARM_BOOT_ARCH], f[FADT_ARM_BOOT_ARCH + 1]]);
    assert_eq!(arch, ARM_PSCI_COMPLIANT | ARM_PSCI_USE_HVC);
}

#[test]
fn test_arm_madt_gicc_per_possible_vcpu_then_gicd_and_gicr() {
    let (t, _, tables) = linked(2, 20, GicVersion::V3);
    let m = table(&t, &tables, b"APIC");
    let mut off = MADT_ENTRIES_OFFSET;
    for i in 0..20u32 {
        assert_eq!(&m[off..off + 2], &[TYPE_GICC, GICC_LEN]);
        assert_eq!(u32_at(m, off + 8), i, "UID");
        let want = if i < 2 { GICC_ENABLED } else { 0 };
        assert_eq!(u32_at(m, off + 12), want);
        assert_eq!(u64_at(m, off + 68), board::mpidr(i));
        assert_eq!(u64_at(m, off + 32), 0, "no GICv2 CPU interface with v3");
        off += usize::from(GICC_LEN);
    }
    assert_eq!(&m[off..off + 2], &[TYPE_GICD, GICD_LEN]);
    assert_eq!(u64_at(m, off + 8), board::GICD_BASE);
    assert_eq!(m[off + 20], 3);
    off += usize::from(GICD_LEN);
    assert_eq!(&m[off..off + 2], &[TYPE_GICR, GICR_LEN]);
    assert_eq!(u64_at(m, off + 4), board::GICR_BASE);
    assert_eq!(u32_at(m, off + 12) as u64, 20 * board::GICR_STRIDE);
    assert_eq!(off + usize::from(GICR_LEN), m.len());

    let (t, _, tables) = linked(1, 1, GicVersion::V2);
    let m = table(&t, &tables, b"APIC");
    assert_eq!(u64_at(m, MADT_ENTRIES_OFFSET + 32), board::GICC_BASE);
    let gicd = MADT_ENTRIES_OFFSET + usize::from(GICC_LEN);
    assert_eq!(m[gicd + 20], 2);
    assert_eq!(m.len(), gicd + usize::from(GICD_LEN), "no GICR with v2");
}

#[test]
fn test_arm_gtdt_and_spcr_fields() {
    let (t, _, tables) = linked(1, 1, GicVersion::V3);
    let g = table(&t, &tables, b"GTDT");
    assert_eq!(g.len(), GTDT_LEN);
    assert_eq!(
        [u32_at(g, 48), u32_at(g, 56), u32_at(g, 64), u32_at(g, 72)],
        [29, 30, 27, 26]
    );
    let s = table(&t, &tables, b"SPCR");
    assert_eq!(s.len(), SPCR_LEN);
    assert_eq!(s[36], SPCR_INTERFACE_PL011);
    assert_eq!(u64_at(s, 44), board::UART_BASE);
    assert_eq!(s[52], SPCR_INTERRUPT_GIC);
    assert_eq!(u32_at(s, 54), 33);
}

#[test]
fn test_arm_tables_refuse_bad_vcpu_counts() {
    let mut p = platform(1, 4, GicVersion::V3);
    p.num_vcpus = 0;
    assert_eq!(create_tables(&p, dsdt()), Err(AcpiError::NoVcpus));
    p.num_vcpus = 5;
    assert!(matches!(
        create_tables(&p, dsdt()),
        Err(AcpiError::NumVcpusAboveMax { .. })
    ));
}

#[test]
fn test_arm_iasl_disassembles_and_recompiles_every_table() {
    for (num, max, gic) in [
        (1, 1, GicVersion::V3),
        (2, 8, GicVersion::V3),
        (1, 2, GicVersion::V2),
    ] {
        let dir = ScratchDir::new("arm");
        let (t, _, tables) = linked(num, max, gic);
        for (sig, _) in &t.layout {
            let bytes = table(&t, &tables, sig);
            let name = String::from_utf8_lossy(sig).to_ascii_lowercase();
            let re = round_trip(dir.path(), &name, bytes);
            assert!(!re.is_empty(), "{name}: empty recompiled table");
        }
        let madt = disassemble(dir.path(), "madt-check", table(&t, &tables, b"APIC"));
        assert!(madt.contains("Generic Interrupt Controller"), "{madt}");
        let fadt = disassemble(dir.path(), "fadt-check", table(&t, &tables, b"FACP"));
        assert!(fadt.contains("PSCI Compliant : 1"), "{fadt}");
        assert!(fadt.contains("Must use HVC for PSCI : 1"), "{fadt}");
    }
}
