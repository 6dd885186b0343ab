//! The AML building blocks later devices need, checked end to end: a DSDT
//! with a virtio-mmio device (LNRO0005), a Generic Event Device (ACPI0013),
//! a power button (PNP0C0C), a memory-hotplug controller (OperationRegion,
//! Field, Mutex, Method) and a PNP0C80 memory device must disassemble and
//! recompile cleanly with iasl, and ACPICA's interpreter (acpiexec) must
//! evaluate their objects.

use acpi_tables::aml::Field;
use acpi_tables::aml::{
    AddressSpace, AddressSpaceCacheable, And, Device, EISAName, Equal, FieldAccessType, FieldEntry,
    FieldLockRule, FieldUpdateRule, If, Interrupt, Local, Memory32Fixed, Method, MethodCall, Mutex,
    Name, Notify, OpRegion, OpRegionSpace, Path, ResourceTemplate, Return, Store, ZERO,
};

use super::super::{create_acpi_tables_with, AcpiContents, DsdtBuilder};
use super::iasl_util::{acpiexec, disassemble, round_trip, ScratchDir};
use super::structure::{cfg, table};

const VIRTIO_BASE: u32 = 0xD000_0000;
const VIRTIO_IRQ: u32 = 5;
const GED_BASE: u32 = 0xFED0_0000;
const GED_IRQ: u32 = 9;
const MHPC_BASE: u32 = 0xFED1_0000;
const MEM_BASE: u64 = 0x1_0000_0000;
const MEM_SIZE: u64 = 0x800_0000;

// Each device is built in one expression: the `aml` types borrow their
// children, and temporaries live until the end of the statement.

fn add_virtio_mmio(b: &mut DsdtBuilder) {
    b.add_system_bus(&Device::new(
        Path::new("V000"),
        vec![
            &Name::new(Path::new("_HID"), &"LNRO0005"),
            &Name::new(Path::new("_UID"), &0u8),
            &Name::new(
                Path::new("_CRS"),
                &ResourceTemplate::new(vec![
                    &Memory32Fixed::new(true, VIRTIO_BASE, 0x1000),
                    &Interrupt::new(true, true, false, false, VIRTIO_IRQ),
                ]),
            ),
        ],
    ));
}

fn add_power_button(b: &mut DsdtBuilder) {
    b.add_system_bus(&Device::new(
        Path::new("PWRB"),
        vec![
            &Name::new(Path::new("_HID"), &EISAName::new("PNP0C0C")),
            &Name::new(Path::new("_UID"), &0u8),
        ],
    ));
}

fn add_memory_hotplug_controller(b: &mut DsdtBuilder) {
    b.add_system_bus(&Device::new(
        Path::new("MHPC"),
        vec![
            &Name::new(Path::new("_HID"), &"PNP0A06"),
            &Name::new(Path::new("_UID"), &"Memory Hotplug Controller"),
            &Name::new(
                Path::new("_CRS"),
                &ResourceTemplate::new(vec![&Memory32Fixed::new(true, MHPC_BASE, 0x18)]),
            ),
            &OpRegion::new(
                Path::new("MHPR"),
                OpRegionSpace::SystemMemory,
                &MHPC_BASE,
                &0x18u8,
            ),
            &Field::new(
                Path::new("MHPR"),
                FieldAccessType::DWord,
                FieldLockRule::NoLock,
                FieldUpdateRule::WriteAsZeroes,
                vec![
                    FieldEntry::Named(*b"MHBL", 32),
                    FieldEntry::Named(*b"MHBH", 32),
                    FieldEntry::Named(*b"MHLL", 32),
                    FieldEntry::Named(*b"MHLH", 32),
                    FieldEntry::Named(*b"MSEL", 32),
                    FieldEntry::Named(*b"MEN_", 1),
                    FieldEntry::Named(*b"MINS", 1),
                    FieldEntry::Reserved(30),
                ],
            ),
            &Mutex::new(Path::new("MLCK"), 0),
            &Method::new(
                Path::new("MSCN"),
                0,
                true,
                vec![
                    &Store::new(&Path::new("MSEL"), &ZERO),
                    &If::new(
                        &Equal::new(&Path::new("MINS"), &1u8),
                        vec![&Notify::new(&Path::new("\\_SB_.M000"), &1u8)],
                    ),
                ],
            ),
        ],
    ));
}

fn add_memory_device(b: &mut DsdtBuilder) {
    b.add_system_bus(&Device::new(
        Path::new("M000"),
        vec![
            &Name::new(Path::new("_HID"), &EISAName::new("PNP0C80")),
            &Name::new(Path::new("_UID"), &0u8),
            &Method::new(Path::new("_STA"), 0, false, vec![&Return::new(&0x0Fu8)]),
            &Method::new(
                Path::new("_CRS"),
                0,
                true,
                vec![&Return::new(&ResourceTemplate::new(vec![
                    &AddressSpace::new_memory(
                        AddressSpaceCacheable::Cacheable,
                        true,
                        MEM_BASE,
                        MEM_BASE + MEM_SIZE - 1,
                        None,
                    ),
                ]))],
            ),
        ],
    ));
}

fn add_ged(b: &mut DsdtBuilder) {
    b.add_system_bus(&Device::new(
        Path::new("GED_"),
        vec![
            &Name::new(Path::new("_HID"), &"ACPI0013"),
            &Name::new(Path::new("_UID"), &0u8),
            &Name::new(
                Path::new("_CRS"),
                &ResourceTemplate::new(vec![&Interrupt::new(true, true, false, false, GED_IRQ)]),
            ),
            &OpRegion::new(
                Path::new("GDST"),
                OpRegionSpace::SystemMemory,
                &GED_BASE,
                &4u8,
            ),
            &Field::new(
                Path::new("GDST"),
                FieldAccessType::DWord,
                FieldLockRule::NoLock,
                FieldUpdateRule::WriteAsZeroes,
                vec![FieldEntry::Named(*b"GDAT", 32)],
            ),
            &Method::new(
                Path::new("_EVT"),
                1,
                true,
                vec![
                    &Store::new(&Local(0), &Path::new("GDAT")),
                    &If::new(
                        &Equal::new(&And::new(&ZERO, &Local(0), &1u8), &1u8),
                        vec![&MethodCall::new(Path::new("\\_SB_.MHPC.MSCN"), vec![])],
                    ),
                    &If::new(
                        &Equal::new(&And::new(&ZERO, &Local(0), &2u8), &2u8),
                        vec![&Notify::new(&Path::new("\\_SB_.PWRB"), &0x80u8)],
                    ),
                ],
            ),
        ],
    ));
}

fn sample_builder() -> DsdtBuilder {
    let mut b = DsdtBuilder::with_base();
    add_virtio_mmio(&mut b);
    add_power_button(&mut b);
    add_memory_hotplug_controller(&mut b);
    add_memory_device(&mut b);
    add_ged(&mut b);
    b
}

fn sample_dsdt() -> Vec<u8> {
    sample_builder().build().unwrap()
}

#[test]
fn test_sample_devices_disassemble_and_recompile_cleanly() {
    let dir = ScratchDir::new("blocks");
    let dsdt = sample_dsdt();
    let dsl = disassemble(dir.path(), "dsdt", &dsdt);
    for want in [
        "Device (V000)",
        "\"LNRO0005\"",
        "Memory32Fixed (ReadWrite,",
        "0xD0000000",
        "Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive, ,, )",
        "EisaId (\"PNP0C0C\")",
        "EisaId (\"PNP0C80\")",
        "\"ACPI0013\"",
        "OperationRegion (MHPR, SystemMemory, 0xFED10000, 0x18)",
        "Field (MHPR, DWordAcc, NoLock, WriteAsZeros)",
        "Mutex (MLCK, 0x00)",
        "Method (_EVT, 1, Serialized)",
        "QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite,",
        "0x0000000107FFFFFF",
    ] {
        assert!(dsl.contains(want), "{want:?} missing from:\n{dsl}");
    }
    round_trip(dir.path(), "dsdt2", &dsdt);
}

#[test]
fn test_sample_devices_evaluate_in_acpiexec() {
    let dir = ScratchDir::new("exec");
    let dsdt = sample_dsdt();
    let out = acpiexec(dir.path(), &dsdt, "Evaluate \\_S5_");
    assert!(out.contains("[Integer] = 0000000000000005"), "{out}");
    let out = acpiexec(dir.path(), &dsdt, "Evaluate \\_SB.M000._STA");
    assert!(out.contains("[Integer] = 000000000000000F"), "{out}");
    let out = acpiexec(dir.path(), &dsdt, "Evaluate \\_SB.M000._CRS");
    assert!(out.contains("[Buffer]"), "{out}");
    let out = acpiexec(dir.path(), &dsdt, "Evaluate \\_SB.V000._HID");
    assert!(out.contains("LNRO0005"), "{out}");
}

#[test]
fn test_sample_devices_in_full_table_set() {
    let contents = AcpiContents {
        dsdt: sample_builder(),
        ..AcpiContents::default()
    };
    let t = create_acpi_tables_with(&cfg(2, 4), contents).unwrap();
    let (_, dsdt) = table(&t, b"DSDT");
    assert_eq!(dsdt, sample_dsdt());
}
