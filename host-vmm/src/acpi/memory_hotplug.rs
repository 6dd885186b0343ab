//! AML for memory hot-plug: the controller device, one PNP0C80 memory
//! device per slot, and the Generic Event Device whose interrupt starts a
//! scan.
//!
//! ```text
//! \_SB_.MHPC  controller (PNP0A06): its registers (see
//!             devices::acpi::memory_hotplug) as an OperationRegion + Field,
//!             a mutex, and three methods:
//!             MSTA(slot) -> _STA value, MCRS(slot) -> _CRS buffer,
//!             MSCN() Notify(Mxxx, 1) for every slot with INSERTING set, and
//!             acknowledge it.
//! \_SB_.M000 .. \_SB_.Mnnn  memory devices (PNP0C80, _UID = slot):
//!             _STA = MSTA(slot), _CRS = MCRS(slot).
//! \_SB_.GED_  Generic Event Device (ACPI0013): _CRS is its interrupt;
//!             _EVT reads the event register and calls MSCN on the memory bit.
//! ```
//!
//! Every register access selects the slot first, under the controller mutex,
//! so two methods running at once never read another slot's fields.

use acpi_tables::aml::{
    Acquire, Add, AddressSpace, AddressSpaceCacheable, And, Arg, CreateQWordField, Device,
    EISAName, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, If,
    Interrupt, Local, Memory32Fixed, Method, MethodCall, Mutex, Name, Notify, OpRegion,
    OpRegionSpace, Or, Path, Release, ResourceTemplate, Return, ShiftLeft, Store, Subtract, ONE,
    ZERO,
};
use acpi_tables::{Aml, AmlSink};

use super::registers::{
    GED_EVENT_CPU, GED_EVENT_MEMORY, GED_EVENT_VIRTIO, GED_MMIO_SIZE, GED_REG_EVENT,
};
use super::registers::{
    MHP_MMIO_SIZE, MHP_REG_BASE_HI, MHP_REG_BASE_LO, MHP_REG_SELECT, MHP_REG_SIZE_HI,
    MHP_REG_SIZE_LO, MHP_REG_SLOTS, MHP_REG_STATUS, MHP_STATUS_ENABLED, MHP_STATUS_INSERTING,
};
use super::DsdtBuilder;

/// Most slots the AML can name (`M000`..`MFFF`: three hex digits).
pub const MAX_AML_SLOTS: u32 = 0x1000;

/// _STA of a present, enabled, shown and functioning device.
const STA_PRESENT: u8 = 0x0f;
/// Notify value: Device Check (re-evaluate _STA, add the device).
const NOTIFY_DEVICE_CHECK: u8 = 1;
/// Wait forever for the controller mutex.
const ACQUIRE_FOREVER: u16 = 0xffff;
/// Byte offsets of Minimum, Maximum and Length in a QWord address space
/// descriptor (ACPI 6.5, 6.4.3.5.1).
const QWORD_MIN_OFFSET: u8 = 14;
const QWORD_MAX_OFFSET: u8 = 22;
const QWORD_LEN_OFFSET: u8 = 38;

// The Field below lists the registers in order, 32 bits each, with the two
// status bits at bit 0 and 1 of STATUS: the offsets must be consecutive.
const _: () = {
    assert!(MHP_REG_SELECT == 0x00 && MHP_REG_BASE_LO == 0x04 && MHP_REG_BASE_HI == 0x08);
    assert!(MHP_REG_SIZE_LO == 0x0c && MHP_REG_SIZE_HI == 0x10);
    assert!(MHP_REG_STATUS == 0x14 && MHP_REG_SLOTS == 0x18 && MHP_MMIO_SIZE == 0x20);
    assert!(MHP_STATUS_ENABLED == 1 && MHP_STATUS_INSERTING == 2);
    assert!(GED_REG_EVENT == 0 && GED_MMIO_SIZE == 4);
};

/// Where the hot-plug devices are and how many slots there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryHotplugAml {
    /// Guest physical base of the controller's register window.
    pub controller_base: u32,
    /// Memory slots (capped at [`MAX_AML_SLOTS`]).
    pub slots: u32,
    /// Guest physical base of the GED event register.
    pub ged_base: u32,
    /// The GED's interrupt (edge-triggered, active high).
    pub ged_gsi: u32,
}

/// Namespace name of slot `slot`'s memory device: `M` and three hex digits.
pub fn slot_device_name(slot: u32) -> String {
    format!("M{:03X}", slot % MAX_AML_SLOTS)
}

impl MemoryHotplugAml {
    /// Add the controller, the memory devices and the GED under `\_SB_`.
    pub fn add_to(&self, dsdt: &mut DsdtBuilder) {
        self.add_with_virtio_scan(dsdt, None);
    }

    /// [`Self::add_to`], with the GED also calling `virtio_scan` (a method
    /// path) on `GED_EVENT_VIRTIO`: virtio-mmio hot-plug shares the GED.
    pub fn add_with_virtio_scan(&self, dsdt: &mut DsdtBuilder, virtio_scan: Option<&'static str>) {
        self.add_with_scans(dsdt, virtio_scan, None);
    }

    /// [`Self::add_with_virtio_scan`], with the GED also calling `cpu_scan` (a method
    /// path, [`super::cpu_hotplug::CPU_HOTPLUG_SCAN`]) on `GED_EVENT_CPU`.
    pub fn add_with_scans(
        &self,
        dsdt: &mut DsdtBuilder,
        virtio_scan: Option<&'static str>,
        cpu_scan: Option<&'static str>,
    ) {
        let slots = self.slots.min(MAX_AML_SLOTS);
        dsdt.add_system_bus(&ControllerAml {
            base: self.controller_base,
            slots,
        });
        for slot in 0..slots {
            dsdt.add_system_bus(&MemoryDeviceAml { slot });
        }
        dsdt.add_system_bus(&GedAml {
            base: self.ged_base,
            gsi: self.ged_gsi,
            virtio_scan,
            cpu_scan,
        });
    }
}

/// `\_SB_.MHPC`.
struct ControllerAml {
    base: u32,
    slots: u32,
}

impl Aml for ControllerAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let size = MHP_MMIO_SIZE as u32;
        Device::new(
            Path::new("MHPC"),
            vec![
                &Name::new(Path::new("_HID"), &"PNP0A06"),
                &Name::new(Path::new("_UID"), &"Memory Hotplug Controller"),
                &Name::new(
                    Path::new("_CRS"),
                    &ResourceTemplate::new(vec![&Memory32Fixed::new(true, self.base, size)]),
                ),
                &OpRegion::new(
                    Path::new("MREG"),
                    OpRegionSpace::SystemMemory,
                    &self.base,
                    &size,
                ),
                &Field::new(
                    Path::new("MREG"),
                    FieldAccessType::DWord,
                    FieldLockRule::NoLock,
                    FieldUpdateRule::WriteAsZeroes,
                    vec![
                        FieldEntry::Named(*b"MSEL", 32),
                        FieldEntry::Named(*b"MBLO", 32),
                        FieldEntry::Named(*b"MBHI", 32),
                        FieldEntry::Named(*b"MSLO", 32),
                        FieldEntry::Named(*b"MSHI", 32),
                        FieldEntry::Named(*b"MENA", 1),
                        FieldEntry::Named(*b"MINS", 1),
                        FieldEntry::Reserved(30),
                        FieldEntry::Named(*b"MCNT", 32),
                    ],
                ),
                &Mutex::new(Path::new("MLCK"), 0),
                &StaMethod,
                &CrsMethod,
                &ScanMethod { slots: self.slots },
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `MSTA(slot)`: 0x0F if the slot holds memory, else 0.
struct StaMethod;

impl Aml for StaMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        Method::new(
            Path::new("MSTA"),
            1,
            true,
            vec![
                &Acquire::new(Path::new("MLCK"), ACQUIRE_FOREVER),
                &Store::new(&Path::new("MSEL"), &Arg(0)),
                &Store::new(&Local(0), &ZERO),
                &If::new(
                    &Equal::new(&Path::new("MENA"), &ONE),
                    vec![&Store::new(&Local(0), &STA_PRESENT)],
                ),
                &Release::new(Path::new("MLCK")),
                &Return::new(&Local(0)),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `MCRS(slot)`: a QWordMemory resource with the slot's base and size.
struct CrsMethod;

impl Aml for CrsMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        Method::new(
            Path::new("MCRS"),
            1,
            true,
            vec![
                &Acquire::new(Path::new("MLCK"), ACQUIRE_FOREVER),
                &Store::new(&Path::new("MSEL"), &Arg(0)),
                &Name::new(
                    Path::new("MR64"),
                    &ResourceTemplate::new(vec![&AddressSpace::new_memory(
                        AddressSpaceCacheable::Cacheable,
                        true,
                        0u64,
                        0u64,
                        None,
                    )]),
                ),
                &CreateQWordField::new(&Path::new("MMIN"), &Path::new("MR64"), &QWORD_MIN_OFFSET),
                &CreateQWordField::new(&Path::new("MMAX"), &Path::new("MR64"), &QWORD_MAX_OFFSET),
                &CreateQWordField::new(&Path::new("MLEN"), &Path::new("MR64"), &QWORD_LEN_OFFSET),
                // MMIN = MBHI << 32 | MBLO; MLEN = MSHI << 32 | MSLO
                &Or::new(
                    &Path::new("MMIN"),
                    &ShiftLeft::new(&ZERO, &Path::new("MBHI"), &32u8),
                    &Path::new("MBLO"),
                ),
                &Or::new(
                    &Path::new("MLEN"),
                    &ShiftLeft::new(&ZERO, &Path::new("MSHI"), &32u8),
                    &Path::new("MSLO"),
                ),
                // MMAX = MMIN + MLEN - 1
                &Subtract::new(
                    &Path::new("MMAX"),
                    &Add::new(&ZERO, &Path::new("MMIN"), &Path::new("MLEN")),
                    &ONE,
                ),
                &Release::new(Path::new("MLCK")),
                &Return::new(&Path::new("MR64")),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `MSCN()`: for each slot with INSERTING set, Notify its device and acknowledge.
struct ScanMethod {
    slots: u32,
}

impl Aml for ScanMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let slots: Vec<ScanSlot> = (0..self.slots).map(|slot| ScanSlot { slot }).collect();
        let acquire = Acquire::new(Path::new("MLCK"), ACQUIRE_FOREVER);
        let release = Release::new(Path::new("MLCK"));
        let mut body: Vec<&dyn Aml> = vec![&acquire];
        body.extend(slots.iter().map(|s| s as &dyn Aml));
        body.push(&release);
        Method::new(Path::new("MSCN"), 0, true, body).to_aml_bytes(sink);
    }
}

/// One slot of MSCN: `MSEL = slot; If (MINS == 1) { Notify (Mxxx, 1); MINS = 1 }`.
struct ScanSlot {
    slot: u32,
}

impl Aml for ScanSlot {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let device = Path::new(&format!("\\_SB_.{}", slot_device_name(self.slot)));
        Store::new(&Path::new("MSEL"), &self.slot).to_aml_bytes(sink);
        If::new(
            &Equal::new(&Path::new("MINS"), &ONE),
            vec![
                &Notify::new(&device, &NOTIFY_DEVICE_CHECK),
                &Store::new(&Path::new("MINS"), &ONE),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `\_SB_.Mxxx`: one PNP0C80 memory device.
struct MemoryDeviceAml {
    slot: u32,
}

impl Aml for MemoryDeviceAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let name = slot_device_name(self.slot);
        Device::new(
            Path::new(&name),
            vec![
                &Name::new(Path::new("_HID"), &EISAName::new("PNP0C80")),
                &Name::new(Path::new("_UID"), &self.slot),
                &Method::new(
                    Path::new("_STA"),
                    0,
                    false,
                    vec![&Return::new(&MethodCall::new(
                        Path::new("\\_SB_.MHPC.MSTA"),
                        vec![&self.slot],
                    ))],
                ),
                &Method::new(
                    Path::new("_CRS"),
                    0,
                    false,
                    vec![&Return::new(&MethodCall::new(
                        Path::new("\\_SB_.MHPC.MCRS"),
                        vec![&self.slot],
                    ))],
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `\_SB_.GED_`.
struct GedAml {
    base: u32,
    gsi: u32,
    /// Also call the virtio hot-plug scan method on `GED_EVENT_VIRTIO`.
    virtio_scan: Option<&'static str>,
    /// Also call the CPU hot-plug scan method on `GED_EVENT_CPU`.
    cpu_scan: Option<&'static str>,
}

impl Aml for GedAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let size = GED_MMIO_SIZE as u32;
        Device::new(
            Path::new("GED_"),
            vec![
                &Name::new(Path::new("_HID"), &"ACPI0013"),
                &Name::new(Path::new("_UID"), &ZERO),
                // Only interrupts: Linux's GED driver refuses any other resource.
                &Name::new(
                    Path::new("_CRS"),
                    &ResourceTemplate::new(vec![&Interrupt::new(
                        true, true, false, false, self.gsi,
                    )]),
                ),
                &OpRegion::new(
                    Path::new("GREG"),
                    OpRegionSpace::SystemMemory,
                    &self.base,
                    &size,
                ),
                &Field::new(
                    Path::new("GREG"),
                    FieldAccessType::DWord,
                    FieldLockRule::NoLock,
                    FieldUpdateRule::WriteAsZeroes,
                    vec![FieldEntry::Named(*b"GEVT", 32)],
                ),
                &EvtMethod {
                    virtio_scan: self.virtio_scan,
                    cpu_scan: self.cpu_scan,
                },
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// The GED's `_EVT`: read (and so clear) the pending events, call each
/// event's handler.
struct EvtMethod {
    virtio_scan: Option<&'static str>,
    cpu_scan: Option<&'static str>,
}

/// `If ((Local0 & bit) == bit) { scan() }`.
struct EventCall {
    bit: u32,
    scan: &'static str,
}

impl Aml for EventCall {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        If::new(
            &Equal::new(&And::new(&ZERO, &Local(0), &self.bit), &self.bit),
            vec![&MethodCall::new(Path::new(self.scan), vec![])],
        )
        .to_aml_bytes(sink);
    }
}

impl Aml for EvtMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let local0 = Local(0);
        let gevt = Path::new("GEVT");
        let load = Store::new(&local0, &gevt);
        let calls: Vec<EventCall> = [
            Some((GED_EVENT_MEMORY, "\\_SB_.MHPC.MSCN")),
            self.virtio_scan.map(|s| (GED_EVENT_VIRTIO, s)),
            self.cpu_scan.map(|s| (GED_EVENT_CPU, s)),
        ]
        .into_iter()
        .flatten()
        .map(|(bit, scan)| EventCall { bit, scan })
        .collect();
        let mut body: Vec<&dyn Aml> = vec![&load];
        body.extend(calls.iter().map(|c| c as &dyn Aml));
        Method::new(Path::new("_EVT"), 1, true, body).to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests;
