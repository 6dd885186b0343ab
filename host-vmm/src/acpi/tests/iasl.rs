//! Every table, checked by ACPICA's own disassembler and compiler.

use super::super::create_acpi_tables;
use super::super::root::RSDP_XSDT_OFFSET;
use super::super::sdt::CHECKSUM_OFFSET;
use super::iasl_util::{compile, disassemble, round_trip, ScratchDir};
use super::structure::{cfg, table};

/// Header bytes iasl rewrites when it compiles a table: the checksum and
/// the creator ("ASL compiler") ID and revision.
fn same_except_compiler_fields(ours: &[u8], iasl: &[u8]) -> bool {
    ours.len() == iasl.len()
        && ours
            .iter()
            .zip(iasl)
            .enumerate()
            .all(|(i, (a, b))| i == CHECKSUM_OFFSET || (28..36).contains(&i) || a == b)
}

#[test]
fn test_iasl_disassembles_and_recompiles_every_table() {
    // 300 vCPUs: x2APIC entries and the x2APIC NMI entry too.
    for (num, max) in [(1, 1), (2, 8), (3, 300)] {
        let dir = ScratchDir::new("all");
        let t = create_acpi_tables(&cfg(num, max)).unwrap();
        for (addr, bytes) in &t.blobs {
            if *addr == t.rsdp_addr {
                continue; // iasl cannot load a bare RSDP; see the RSDP test
            }
            let name = String::from_utf8_lossy(&bytes[0..4]).to_ascii_lowercase();
            let re = round_trip(dir.path(), &name, bytes);
            assert!(!re.is_empty(), "{name}: empty recompiled table");
        }
    }
}

#[test]
fn test_iasl_round_trip_is_byte_identical_for_data_tables() {
    // Below 255 vCPUs (iasl 20200925 does not know the x2APIC Online
    // Capable bit, so it would drop it on recompiling).
    let dir = ScratchDir::new("rt");
    let t = create_acpi_tables(&cfg(2, 8)).unwrap();
    for sig in [b"FACP", b"APIC", b"XSDT"] {
        let (_, ours) = table(&t, sig);
        let name = String::from_utf8_lossy(sig).to_ascii_lowercase();
        let re = round_trip(dir.path(), &name, &ours);
        assert!(
            same_except_compiler_fields(&ours, &re),
            "{name}: iasl recompiled it differently\nours: {ours:02x?}\niasl: {re:02x?}"
        );
    }
}

#[test]
fn test_iasl_dsdt_disassembly_has_s5_and_sb() {
    let dir = ScratchDir::new("dsdt");
    let t = create_acpi_tables(&cfg(1, 1)).unwrap();
    let (_, dsdt) = table(&t, b"DSDT");
    let dsl = disassemble(dir.path(), "dsdt", &dsdt);
    assert!(dsl.contains("Name (_S5, Package (0x04)"), "{dsl}");
    assert!(dsl.contains("0x05,"), "{dsl}");
    assert!(dsl.contains("Scope (\\_SB)"), "{dsl}");
    compile(dir.path(), "dsdt-re", &dsl);
}

#[test]
fn test_iasl_compiles_same_rsdp() {
    // iasl cannot disassemble a bare RSDP, so compile one from its data
    // table language with our values and let iasl compute both checksums.
    let dir = ScratchDir::new("rsdp");
    let t = create_acpi_tables(&cfg(2, 4)).unwrap();
    let (_, ours) = t
        .blobs
        .iter()
        .find(|(a, _)| *a == t.rsdp_addr)
        .cloned()
        .unwrap();
    let xsdt = u64::from_le_bytes(
        ours[RSDP_XSDT_OFFSET..RSDP_XSDT_OFFSET + 8]
            .try_into()
            .unwrap(),
    );
    let source = format!(
        "[0008] Signature : \"RSD PTR \"\n\
         [0001] Checksum : 00\n\
         [0006] Oem ID : \"HOSTVM\"\n\
         [0001] Revision : 02\n\
         [0004] RSDT Address : 00000000\n\
         [0004] Length : 00000024\n\
         [0008] XSDT Address : {xsdt:016X}\n\
         [0001] Extended Checksum : 00\n\
         [0003] Reserved : 000000\n"
    );
    let theirs = compile(dir.path(), "rsdp", &source);
    assert_eq!(ours, theirs, "RSDP differs from iasl's");
}
