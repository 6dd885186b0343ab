//! The assembled set of tables: checksums, lengths, pointers between them.

use super::super::madt::{processor_entries, LAPIC_ENABLED, LAPIC_ONLINE_CAPABLE};
use super::super::root::{RSDP_LEN, RSDP_V1_LEN, RSDP_XSDT_OFFSET};
use super::super::sdt::{byte_sum, Sdt, HEADER_LEN};
use super::super::{
    create_acpi_tables, create_acpi_tables_with, fadt, AcpiConfig, AcpiContents, AcpiTables,
    BASE_TABLES_MAX_SIZE, MAX_VCPUS,
};

pub(super) const RSDP_ADDR: u64 = 0x000E_0000;
pub(super) const TABLES_ADDR: u64 = 0x000E_1000;

pub(super) fn cfg(num_vcpus: u32, max_vcpus: u32) -> AcpiConfig {
    AcpiConfig {
        num_vcpus,
        max_vcpus,
        rsdp_addr: RSDP_ADDR,
        tables_addr: TABLES_ADDR,
    }
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// The table whose blob starts at `addr`.
pub(super) fn table_at(t: &AcpiTables, addr: u64) -> &[u8] {
    t.blobs
        .iter()
        .find(|(a, _)| *a == addr)
        .map(|(_, b)| b.as_slice())
        .unwrap_or_else(|| panic!("no blob starts at {addr:#x}"))
}

/// The table with `signature`.
pub(super) fn table(t: &AcpiTables, signature: &[u8; 4]) -> (u64, Vec<u8>) {
    t.blobs
        .iter()
        .find(|(_, b)| b.len() >= 4 && &b[0..4] == signature)
        .cloned()
        .unwrap_or_else(|| panic!("no {} table", String::from_utf8_lossy(signature)))
}

#[test]
fn test_tables_checksums_and_lengths() {
    let t = create_acpi_tables(&cfg(2, 8)).unwrap();
    assert_eq!(t.rsdp_addr, RSDP_ADDR);
    assert_eq!(t.blobs.len(), 5);
    for (addr, b) in &t.blobs {
        if *addr == t.rsdp_addr {
            assert_eq!(b.len(), RSDP_LEN);
            assert_eq!(byte_sum(&b[..RSDP_V1_LEN]), 0, "RSDP v1 checksum");
            assert_eq!(byte_sum(b), 0, "RSDP extended checksum");
            assert_eq!(u32_at(b, 20) as usize, RSDP_LEN);
            continue;
        }
        let sig = String::from_utf8_lossy(&b[0..4]).into_owned();
        assert!(b.len() >= HEADER_LEN, "{sig} shorter than a header");
        assert_eq!(u32_at(b, 4) as usize, b.len(), "{sig} length field");
        assert_eq!(byte_sum(b), 0, "{sig} checksum");
    }
}

#[test]
fn test_tables_do_not_overlap_and_are_aligned() {
    let t = create_acpi_tables(&cfg(1, 300)).unwrap();
    let mut ranges: Vec<(u64, u64)> = t
        .blobs
        .iter()
        .map(|(a, b)| (*a, a + b.len() as u64))
        .collect();
    ranges.sort();
    for w in ranges.windows(2) {
        assert!(w[0].1 <= w[1].0, "{:x?} overlaps {:x?}", w[0], w[1]);
    }
    for (a, _) in &t.blobs {
        assert_eq!(a % 8, 0, "{a:#x} not 8-byte aligned");
    }
    let (start, end) = t.tables_range();
    assert_eq!(start, TABLES_ADDR);
    assert!(end > start);
}

#[test]
fn test_pointers_chain_rsdp_xsdt_fadt_madt_dsdt() {
    let t = create_acpi_tables(&cfg(2, 4)).unwrap();
    let rsdp = table_at(&t, t.rsdp_addr);
    assert_eq!(&rsdp[0..8], b"RSD PTR ");
    assert_eq!(u32_at(rsdp, 16), 0, "no RSDT");
    let xsdt_addr = u64_at(rsdp, RSDP_XSDT_OFFSET);
    let xsdt = table_at(&t, xsdt_addr);
    assert_eq!(&xsdt[0..4], b"XSDT");

    let entries: Vec<u64> = (HEADER_LEN..xsdt.len())
        .step_by(8)
        .map(|o| u64_at(xsdt, o))
        .collect();
    let sigs: Vec<&[u8]> = entries.iter().map(|a| &table_at(&t, *a)[0..4]).collect();
    assert_eq!(sigs, vec![&b"FACP"[..], &b"APIC"[..]]);

    let (fadt_addr, fadt_bytes) = table(&t, b"FACP");
    assert_eq!(entries[0], fadt_addr);
    let dsdt_addr = u64_at(&fadt_bytes, fadt::X_DSDT);
    assert_eq!(&table_at(&t, dsdt_addr)[0..4], b"DSDT");
}

#[test]
fn test_madt_has_max_vcpus_entries_num_enabled() {
    for (num, max) in [(1, 1), (2, 8), (4, 4), (3, 255), (1, 256), (7, 1000)] {
        let t = create_acpi_tables(&cfg(num, max)).unwrap();
        let (_, madt) = table(&t, b"APIC");
        let procs = processor_entries(&madt).unwrap();
        assert_eq!(procs.len(), max as usize, "entries for {num}/{max}");
        let enabled = procs
            .iter()
            .filter(|p| p.flags & LAPIC_ENABLED != 0)
            .count();
        assert_eq!(enabled, num as usize, "enabled for {num}/{max}");
        for (i, p) in procs.iter().enumerate() {
            assert_eq!(p.apic_id, i as u32);
            let want = if (i as u32) < num {
                LAPIC_ENABLED
            } else {
                LAPIC_ONLINE_CAPABLE
            };
            assert_eq!(p.flags, want, "flags of vCPU {i}");
            assert_eq!(p.x2apic, i > 254, "entry type of vCPU {i}");
        }
    }
}

#[test]
fn test_tables_are_deterministic() {
    let a = create_acpi_tables(&cfg(2, 4)).unwrap();
    let b = create_acpi_tables(&cfg(2, 4)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn test_extra_tables_listed_in_xsdt() {
    let mut extra = Sdt::new(*b"OEM1", 1, *b"HVMTEST ");
    extra.push_u32(0x1234_5678);
    let extra = extra.finish().unwrap();
    let contents = AcpiContents {
        extra_tables: vec![extra.clone()],
        ..AcpiContents::default()
    };
    let t = create_acpi_tables_with(&cfg(1, 2), contents).unwrap();
    assert_eq!(t.blobs.len(), 6);
    let rsdp = table_at(&t, t.rsdp_addr);
    let xsdt = table_at(&t, u64_at(rsdp, RSDP_XSDT_OFFSET));
    assert_eq!(xsdt.len(), HEADER_LEN + 3 * 8);
    let third = u64_at(xsdt, HEADER_LEN + 16);
    assert_eq!(table_at(&t, third), extra.as_slice());
    assert_eq!(third % 8, 0);
}

#[test]
fn test_base_tables_fit_in_documented_size() {
    for max in [1, 254, 255, 1024, MAX_VCPUS] {
        let t = create_acpi_tables(&cfg(1, max)).unwrap();
        let (start, end) = t.tables_range();
        assert!(
            end - start <= BASE_TABLES_MAX_SIZE,
            "{max} vCPUs: {} bytes",
            end - start
        );
    }
}
