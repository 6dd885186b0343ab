//! The hot-plug AML through ACPICA: `iasl -d` disassembles it without a
//! complaint and recompiles it; `acpiexec` evaluates `_STA`, `_CRS` and the
//! GED's `_EVT` against simulated registers.

use acpi_tables::aml::{
    Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, Method, OpRegion,
    OpRegionSpace, Path, Store,
};

use super::*;
use crate::acpi::tests::iasl_util::{acpiexec, disassemble, round_trip, ScratchDir};

const CONTROLLER: u32 = 0xd100_1000;
const GED: u32 = 0xd100_0000;
const GSI: u32 = 13;

fn aml(slots: u32) -> MemoryHotplugAml {
    MemoryHotplugAml {
        controller_base: CONTROLLER,
        slots,
        ged_base: GED,
        ged_gsi: GSI,
    }
}

fn dsdt(slots: u32) -> Vec<u8> {
    let mut b = DsdtBuilder::with_base();
    aml(slots).add_to(&mut b);
    b.build().unwrap()
}

/// `\TSET`: fills the simulated registers (acpiexec backs an OperationRegion
/// with plain memory) as the VMM would after plugging 512 MiB at 4.5 GiB:
/// base 0x1_2000_0000, size 0x2000_0000, ENABLED | INSERTING; and the GED's
/// memory event bit.
fn dsdt_with_test_setup(slots: u32) -> Vec<u8> {
    let mut b = DsdtBuilder::with_base();
    aml(slots).add_to(&mut b);
    b.add_root(&OpRegion::new(
        Path::new("TREG"),
        OpRegionSpace::SystemMemory,
        &CONTROLLER,
        &(MHP_MMIO_SIZE as u32),
    ));
    b.add_root(&Field::new(
        Path::new("TREG"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![
            FieldEntry::Reserved(32),
            FieldEntry::Named(*b"TBLO", 32),
            FieldEntry::Named(*b"TBHI", 32),
            FieldEntry::Named(*b"TSLO", 32),
            FieldEntry::Named(*b"TSHI", 32),
            FieldEntry::Named(*b"TSTS", 32),
        ],
    ));
    b.add_root(&OpRegion::new(
        Path::new("TGED"),
        OpRegionSpace::SystemMemory,
        &GED,
        &(GED_MMIO_SIZE as u32),
    ));
    b.add_root(&Field::new(
        Path::new("TGED"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"TEVT", 32)],
    ));
    b.add_root(&Method::new(
        Path::new("TSET"),
        0,
        false,
        vec![
            &Store::new(&Path::new("TBLO"), &0x2000_0000u32),
            &Store::new(&Path::new("TBHI"), &1u32),
            &Store::new(&Path::new("TSLO"), &0x2000_0000u32),
            &Store::new(&Path::new("TSHI"), &0u32),
            &Store::new(
                &Path::new("TSTS"),
                &(MHP_STATUS_ENABLED | MHP_STATUS_INSERTING),
            ),
            &Store::new(&Path::new("TEVT"), &GED_EVENT_MEMORY),
        ],
    ));
    b.build().unwrap()
}

#[test]
fn test_slot_device_names() {
    assert_eq!(slot_device_name(0), "M000");
    assert_eq!(slot_device_name(10), "M00A");
    assert_eq!(slot_device_name(255), "M0FF");
    assert_eq!(slot_device_name(MAX_AML_SLOTS - 1), "MFFF");
}

#[test]
fn test_memory_hotplug_aml_disassembles_and_recompiles_cleanly() {
    let dir = ScratchDir::new("mhp");
    let bytes = dsdt(3);
    let dsl = disassemble(dir.path(), "dsdt", &bytes);
    for want in [
        "Device (MHPC)",
        "\"PNP0A06\"",
        "Memory32Fixed (ReadWrite,",
        "0xD1001000",
        "OperationRegion (MREG, SystemMemory, 0xD1001000, 0x20)",
        "Field (MREG, DWordAcc, NoLock, WriteAsZeros)",
        "Mutex (MLCK, 0x00)",
        "Method (MSTA, 1, Serialized)",
        "Method (MCRS, 1, Serialized)",
        "Method (MSCN, 0, Serialized)",
        "Device (M000)",
        "Device (M002)",
        "EisaId (\"PNP0C80\")",
        "Notify (\\_SB.M002, One)",
        "\"ACPI0013\"",
        "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
        "0x0000000D,",
        "OperationRegion (GREG, SystemMemory, 0xD1000000, 0x04)",
        "Method (_EVT, 1, Serialized)",
        "QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,",
    ] {
        assert!(dsl.contains(want), "{want:?} missing from:\n{dsl}");
    }
    assert!(!dsl.contains("Device (M003)"), "{dsl}");
    round_trip(dir.path(), "dsdt2", &bytes);
}

#[test]
fn test_many_slots_fit_and_disassemble() {
    // The configuration allows 256 slots: the DSDT stays well inside the
    // ACPI area (about 124 KiB on x86_64).
    let bytes = dsdt(256);
    assert!(bytes.len() < 48 * 1024, "{} bytes", bytes.len());
    let dir = ScratchDir::new("mhp256");
    let dsl = disassemble(dir.path(), "dsdt", &bytes);
    assert!(dsl.contains("Device (M0FF)"));
    assert!(dsl.contains("Notify (\\_SB.M0FF, One)"));
}

#[test]
fn test_empty_slots_are_absent_in_acpiexec() {
    let dir = ScratchDir::new("mhp-sta0");
    let out = acpiexec(dir.path(), &dsdt(2), "Evaluate \\_SB.M001._STA");
    assert!(out.contains("[Integer] = 0000000000000000"), "{out}");
}

#[test]
fn test_plugged_slot_sta_crs_and_ged_scan_in_acpiexec() {
    let dir = ScratchDir::new("mhp-exec");
    let bytes = dsdt_with_test_setup(2);
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\_SB.M001._STA; Evaluate \\_SB.M001._CRS",
    );
    assert!(out.contains("[Integer] = 000000000000000F"), "{out}");
    // QWordMemory: min 0x1_2000_0000 at byte 14, max 0x1_3FFF_FFFF at 22,
    // length 0x2000_0000 at 38 (little-endian).
    let hex: String = out
        .lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_hexdigit()) && l.contains(':'))
        .flat_map(|l| {
            l.split(':')
                .nth(1)
                .unwrap_or("")
                .split_whitespace()
                .take(16)
        })
        .filter(|w| w.len() == 2 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect::<Vec<_>>()
        .join(" ");
    for want in [
        "00 00 00 20 01 00 00 00", // min
        "FF FF FF 3F 01 00 00 00", // max
        "00 00 00 20 00 00 00 00", // length
    ] {
        assert!(
            hex.contains(want),
            "{want} missing from _CRS bytes {hex}\n{out}"
        );
    }
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\_SB.GED_._EVT 13",
    );
    assert!(
        out.contains("M000") && out.contains("M001"),
        "no Notify:\n{out}"
    );
}

/// The GED with virtio hot-plug: its `_EVT` sends a Bus Check to
/// `\_SB_.VHPC` on the virtio bit, and each hot slot's `_STA` reads its bit
/// of the present register.
#[test]
fn test_virtio_hotplug_slots_sta_and_ged_bus_check_in_acpiexec() {
    use crate::devices::acpi::ged::GED_EVENT_VIRTIO;
    use crate::devices::virtio::acpi::{VirtioHotplugAml, VIRTIO_HOTPLUG_SCAN};
    const PRESENT: u32 = 0xd100_2000;
    let mut b = DsdtBuilder::with_base();
    aml(1).add_with_virtio_scan(&mut b, Some(VIRTIO_HOTPLUG_SCAN));
    b.add_system_bus(&VirtioHotplugAml {
        present_base: PRESENT,
        slots: vec![(1, 0xd000_1000, 6), (2, 0xd000_2000, 7)],
    });
    b.add_root(&OpRegion::new(
        Path::new("TPRS"),
        OpRegionSpace::SystemMemory,
        &PRESENT,
        &4u32,
    ));
    b.add_root(&Field::new(
        Path::new("TPRS"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"TPRE", 32)],
    ));
    b.add_root(&OpRegion::new(
        Path::new("TGED"),
        OpRegionSpace::SystemMemory,
        &GED,
        &(GED_MMIO_SIZE as u32),
    ));
    b.add_root(&Field::new(
        Path::new("TGED"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Named(*b"TEVT", 32)],
    ));
    // Slot 1 (VR02) plugged, the GED's virtio event pending.
    b.add_root(&Method::new(
        Path::new("TSET"),
        0,
        false,
        vec![
            &Store::new(&Path::new("TPRE"), &2u32),
            &Store::new(&Path::new("TEVT"), &GED_EVENT_VIRTIO),
        ],
    ));
    // Slot 1 removed again (DiskHotplug::remove): bit cleared, the same GED event.
    b.add_root(&Method::new(
        Path::new("TCLR"),
        0,
        false,
        vec![
            &Store::new(&Path::new("TPRE"), &0u32),
            &Store::new(&Path::new("TEVT"), &GED_EVENT_VIRTIO),
        ],
    ));
    let bytes = b.build().unwrap();
    let dir = ScratchDir::new("virtio-hp-exec");
    round_trip(dir.path(), "dsdt", &bytes);
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\_SB.VHPC.VR01._STA",
    );
    assert!(
        out.contains("[Integer] = 0000000000000000"),
        "empty slot present:\n{out}"
    );
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\_SB.VHPC.VR02._STA",
    );
    assert!(
        out.contains("[Integer] = 000000000000000F"),
        "plugged slot absent:\n{out}"
    );
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\_SB.GED_._EVT 13",
    );
    assert!(out.contains("VHPC"), "no Notify of the container:\n{out}");
    // Removal: the slot reads absent again and the GED sends the container a Bus Check
    // (Linux re-evaluates every child's _STA on it).
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\TCLR; Evaluate \\_SB.VHPC.VR02._STA",
    );
    assert!(
        out.contains("[Integer] = 0000000000000000"),
        "removed slot still present:\n{out}"
    );
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET; Evaluate \\TCLR; Evaluate \\_SB.GED_._EVT 13",
    );
    assert!(
        out.contains("Notify on [VHPC]") && out.contains("(Bus Check)"),
        "no Bus Check of the container on removal:\n{out}"
    );
}
