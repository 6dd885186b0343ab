//! The CPU hot-plug AML through ACPICA: `iasl -d` disassembles it cleanly and
//! recompiles it; `acpiexec` evaluates `_STA`, `_MAT`, `_EJ0` and the GED's `_EVT`
//! against simulated registers.

use acpi_tables::aml::{
    Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, Method, OpRegion,
    OpRegionSpace, Path, Store,
};

use super::*;
use crate::acpi::memory_hotplug::MemoryHotplugAml;
use crate::acpi::registers::GED_MMIO_SIZE;
use crate::acpi::tests::iasl_util::{acpiexec, disassemble, round_trip, ScratchDir};

const CONTROLLER: u32 = 0xd100_3000;
const GED: u32 = 0xd100_0000;

fn dsdt_builder(boot: u32, max: u32) -> DsdtBuilder {
    let mut b = DsdtBuilder::with_base();
    MemoryHotplugAml {
        controller_base: 0xd100_1000,
        slots: 1,
        ged_base: GED,
        ged_gsi: 13,
    }
    .add_with_scans(&mut b, None, Some(CPU_HOTPLUG_SCAN));
    CpuHotplugAml {
        controller_base: CONTROLLER,
        boot_cpus: boot,
        max_cpus: max,
    }
    .add_to(&mut b);
    b
}

/// `\TSET`: CPU `Arg0`'s simulated STATUS (acpiexec backs an OperationRegion with
/// plain memory, so the register reads back whatever was written last: the
/// selection is not modelled) and the GED's CPU event bit.
fn with_test_setup(mut b: DsdtBuilder) -> Vec<u8> {
    b.add_root(&OpRegion::new(
        Path::new("TREG"),
        OpRegionSpace::SystemMemory,
        &CONTROLLER,
        &(CHP_MMIO_SIZE as u32),
    ));
    b.add_root(&Field::new(
        Path::new("TREG"),
        FieldAccessType::DWord,
        FieldLockRule::NoLock,
        FieldUpdateRule::WriteAsZeroes,
        vec![FieldEntry::Reserved(32), FieldEntry::Named(*b"TSTS", 32)],
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
        1,
        false,
        vec![
            &Store::new(&Path::new("TSTS"), &acpi_tables::aml::Arg(0)),
            &Store::new(&Path::new("TEVT"), &GED_EVENT_CPU),
        ],
    ));
    b.build().unwrap()
}

#[test]
fn test_cpu_device_names_and_mat_entries() {
    assert_eq!(cpu_device_name(0), "C000");
    assert_eq!(cpu_device_name(10), "C00A");
    assert_eq!(cpu_device_name(MAX_AML_CPUS - 1), "CFFF");
    const { assert!(crate::acpi::MAX_VCPUS <= MAX_AML_CPUS) };
    // Type 0, length 8, UID 3, APIC ID 3, flags Enabled.
    assert_eq!(mat_entry(3), vec![0, 8, 3, 3, 1, 0, 0, 0]);
    // Type 9, length 16, reserved, x2APIC ID 300, flags Enabled, UID 300.
    assert_eq!(
        mat_entry(300),
        vec![9, 16, 0, 0, 0x2c, 1, 0, 0, 1, 0, 0, 0, 0x2c, 1, 0, 0]
    );
}

#[test]
fn test_cpu_hotplug_aml_bytes_are_stable() {
    let mut b = DsdtBuilder::new();
    CpuHotplugAml {
        controller_base: CONTROLLER,
        boot_cpus: 1,
        max_cpus: 2,
    }
    .add_to(&mut b);
    let bytes = b.build().unwrap();
    // The processor device of CPU 1: Device (C001) { _HID "ACPI0007", _UID 1, ... }.
    let needle = b"C001\x08_HID\x0dACPI0007\x00\x08_UID\x01";
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "{bytes:02x?}"
    );
    // Its _MAT buffer: Buffer (8) { 0, 8, 1, 1, 1, 0, 0, 0 }.
    let mat = b"_MAT\x11\x0b\x0a\x08\x00\x08\x01\x01\x01\x00\x00\x00";
    assert!(bytes.windows(mat.len()).any(|w| w == mat), "{bytes:02x?}");
    // CPU 0 (boot) has no _EJ0; CPU 1 has.
    let ej0 = b"_EJ0";
    assert_eq!(bytes.windows(4).filter(|w| w == ej0).count(), 1);
}

#[test]
fn test_cpu_hotplug_aml_disassembles_and_recompiles_cleanly() {
    let dir = ScratchDir::new("chp");
    let bytes = dsdt_builder(1, 4).build().unwrap();
    let dsl = disassemble(dir.path(), "dsdt", &bytes);
    for want in [
        "Device (CPHC)",
        "OperationRegion (CREG, SystemMemory, 0xD1003000, 0x10)",
        "Field (CREG, DWordAcc, NoLock, WriteAsZeros)",
        "Mutex (CLCK, 0x00)",
        "Method (CSTA, 1, Serialized)",
        "Method (CEJ0, 1, Serialized)",
        "Method (CSCN, 0, Serialized)",
        "Device (C000)",
        "Device (C003)",
        "\"ACPI0007\"",
        "Name (_MAT, Buffer (0x08)",
        "Method (_EJ0, 1, NotSerialized)",
        "Notify (\\_SB.C003, One)",
        "Notify (\\_SB.C003, 0x03)",
        "\\_SB.CPHC.CSCN ()",
    ] {
        assert!(dsl.contains(want), "{want:?} missing from:\n{dsl}");
    }
    assert!(!dsl.contains("Device (C004)"), "{dsl}");
    // The boot CPU is never scanned.
    assert!(!dsl.contains("Notify (\\_SB.C000"), "{dsl}");
    round_trip(dir.path(), "dsdt2", &bytes);
}

#[test]
fn test_max_cpus_fit_and_disassemble() {
    // default_maxvcpus is at most KVM's limit (240 on this kind of host).
    let bytes = dsdt_builder(1, 240).build().unwrap();
    assert!(bytes.len() < 40 * 1024, "{} bytes", bytes.len());
    let dir = ScratchDir::new("chp240");
    let dsl = disassemble(dir.path(), "dsdt", &bytes);
    assert!(dsl.contains("Device (C0EF)"));
    assert!(dsl.contains("Notify (\\_SB.C0EF, 0x03)"));
}

#[test]
fn test_cpu_sta_follows_enabled_bit_in_acpiexec() {
    let dir = ScratchDir::new("chp-sta");
    let bytes = with_test_setup(dsdt_builder(1, 2));
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET 0; Evaluate \\_SB.C001._STA",
    );
    assert!(out.contains("[Integer] = 0000000000000000"), "{out}");
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET 1; Evaluate \\_SB.C001._STA",
    );
    assert!(out.contains("[Integer] = 000000000000000F"), "{out}");
    let out = acpiexec(dir.path(), &bytes, "Evaluate \\_SB.C001._MAT");
    assert!(out.contains("[Buffer] Length 08"), "{out}");
}

#[test]
fn test_ged_cpu_event_sends_device_check_and_eject_request_in_acpiexec() {
    let dir = ScratchDir::new("chp-evt");
    let bytes = with_test_setup(dsdt_builder(1, 2));
    // INSERTING: a Device Check on C001.
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET 3; Evaluate \\_SB.GED_._EVT 13",
    );
    assert!(
        out.contains("Notify on [C001]") && out.contains("(Device Check)"),
        "no Device Check:\n{out}"
    );
    // REMOVING: an Eject Request on C001.
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET 5; Evaluate \\_SB.GED_._EVT 13",
    );
    assert!(
        out.contains("Notify on [C001]") && out.contains("(Eject Request)"),
        "no Eject Request:\n{out}"
    );
    // _EJ0 writes EJECT (WriteAsZeros: the write carries only bit 3).
    let out = acpiexec(
        dir.path(),
        &bytes,
        "Evaluate \\TSET 1; Evaluate \\_SB.C001._EJ0 1; Evaluate \\TSTS",
    );
    assert!(out.contains("[Integer] = 0000000000000008"), "{out}");
}
