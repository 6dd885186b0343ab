//! AML for vCPU hot-plug: the CPU hot-plug controller device and one ACPI0007
//! processor device per possible vCPU.
//!
//! ```text
//! \_SB_.CPHC  controller (PNP0A06): its registers (see
//!             devices::acpi::cpu_hotplug) as an OperationRegion + Field, a
//!             mutex, and three methods:
//!             CSTA(cpu) -> _STA value, CEJ0(cpu) writes EJECT for it,
//!             CSCN() for every hot-pluggable CPU: INSERTING set -> Notify(Cxxx,
//!             1) (Device Check) and acknowledge; REMOVING set -> Notify(Cxxx, 3)
//!             (Eject Request) and acknowledge.
//! \_SB_.C000 .. \_SB_.Cnnn  processors (ACPI0007, _UID = vCPU index = the
//!             MADT's ACPI Processor UID and APIC ID): _STA = CSTA(cpu),
//!             _MAT = the MADT entry marked Enabled, and for hot-pluggable CPUs
//!             (index >= the boot vCPUs) _EJ0 = CEJ0(cpu).
//! ```
//!
//! The GED's `_EVT` calls `CSCN` on [`GED_EVENT_CPU`] (see
//! [`super::memory_hotplug::MemoryHotplugAml::add_with_scans`]). On an Eject
//! Request Linux offlines the CPU itself (its processor scan handler has no
//! `demand_offline`), then evaluates `_EJ0`, then `_STA`, which must read 0 at
//! once: the controller clears ENABLED on the eject write.

use acpi_tables::aml::{
    Acquire, BufferData, Device, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule,
    FieldUpdateRule, If, Local, Memory32Fixed, Method, MethodCall, Mutex, Name, Notify, OpRegion,
    OpRegionSpace, Path, Release, ResourceTemplate, Return, Store, ONE, ZERO,
};
use acpi_tables::{Aml, AmlSink};

use super::madt::{LAPIC_ENABLED, MAX_XAPIC_ID, TYPE_LOCAL_APIC, TYPE_LOCAL_X2APIC};
pub use super::registers::GED_EVENT_CPU;
use super::registers::{
    CHP_MMIO_SIZE, CHP_REG_COUNT, CHP_REG_SELECT, CHP_REG_STATUS, CHP_STATUS_EJECT,
    CHP_STATUS_ENABLED, CHP_STATUS_INSERTING, CHP_STATUS_REMOVING,
};
use super::DsdtBuilder;

/// The method the GED's `_EVT` calls on [`GED_EVENT_CPU`].
pub const CPU_HOTPLUG_SCAN: &str = "\\_SB_.CPHC.CSCN";

/// Most CPUs the AML can name (`C000`..`CFFF`: three hex digits), more than
/// [`super::MAX_VCPUS`] allows.
pub const MAX_AML_CPUS: u32 = 0x1000;

/// _STA of a present, enabled, shown and functioning device.
const STA_PRESENT: u8 = 0x0f;
/// Notify values: Device Check (add the device), Eject Request (offline, `_EJ0`).
const NOTIFY_DEVICE_CHECK: u8 = 1;
const NOTIFY_EJECT_REQUEST: u8 = 3;
/// Wait forever for the controller mutex.
const ACQUIRE_FOREVER: u16 = 0xffff;

// The Field below lists SEL, the four STATUS bits (+ 28 reserved) and COUNT in order.
const _: () = {
    assert!(CHP_REG_SELECT == 0x00 && CHP_REG_STATUS == 0x04 && CHP_REG_COUNT == 0x08);
    assert!(CHP_MMIO_SIZE == 0x10);
    assert!(CHP_STATUS_ENABLED == 1 && CHP_STATUS_INSERTING == 2);
    assert!(CHP_STATUS_REMOVING == 4 && CHP_STATUS_EJECT == 8);
};

/// Where the controller is and which CPUs there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuHotplugAml {
    /// Guest physical base of the controller's register window.
    pub controller_base: u32,
    /// vCPUs present at boot (never removed, no `_EJ0`).
    pub boot_cpus: u32,
    /// Possible vCPUs (`default_maxvcpus`; capped at [`MAX_AML_CPUS`]).
    pub max_cpus: u32,
}

/// Namespace name of CPU `cpu`'s device: `C` and three hex digits.
pub fn cpu_device_name(cpu: u32) -> String {
    format!("C{:03X}", cpu % MAX_AML_CPUS)
}

/// `_MAT` of CPU `cpu`: its MADT entry (xAPIC up to [`MAX_XAPIC_ID`], x2APIC
/// above), marked Enabled. APIC ID = ACPI Processor UID = `cpu`, as in the MADT.
pub fn mat_entry(cpu: u32) -> Vec<u8> {
    match u8::try_from(cpu) {
        Ok(id) if cpu <= MAX_XAPIC_ID => {
            let mut e = vec![TYPE_LOCAL_APIC, 8, id, id];
            e.extend_from_slice(&LAPIC_ENABLED.to_le_bytes());
            e
        }
        _ => {
            let mut e = vec![TYPE_LOCAL_X2APIC, 16, 0, 0];
            e.extend_from_slice(&cpu.to_le_bytes());
            e.extend_from_slice(&LAPIC_ENABLED.to_le_bytes());
            e.extend_from_slice(&cpu.to_le_bytes());
            e
        }
    }
}

impl CpuHotplugAml {
    /// Add the controller and every processor device under `\_SB_`.
    pub fn add_to(&self, dsdt: &mut DsdtBuilder) {
        let max = self.max_cpus.min(MAX_AML_CPUS);
        let boot = self.boot_cpus.min(max);
        dsdt.add_system_bus(&ControllerAml {
            base: self.controller_base,
            hot: boot..max,
        });
        for cpu in 0..max {
            dsdt.add_system_bus(&CpuDeviceAml {
                cpu,
                ejectable: cpu >= boot,
            });
        }
    }
}

/// `\_SB_.CPHC`.
struct ControllerAml {
    base: u32,
    /// The CPUs the scan looks at.
    hot: std::ops::Range<u32>,
}

impl Aml for ControllerAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let size = CHP_MMIO_SIZE as u32;
        Device::new(
            Path::new("CPHC"),
            vec![
                &Name::new(Path::new("_HID"), &"PNP0A06"),
                &Name::new(Path::new("_UID"), &"CPU Hotplug Controller"),
                &Name::new(
                    Path::new("_CRS"),
                    &ResourceTemplate::new(vec![&Memory32Fixed::new(true, self.base, size)]),
                ),
                &OpRegion::new(
                    Path::new("CREG"),
                    OpRegionSpace::SystemMemory,
                    &self.base,
                    &size,
                ),
                &Field::new(
                    Path::new("CREG"),
                    FieldAccessType::DWord,
                    FieldLockRule::NoLock,
                    FieldUpdateRule::WriteAsZeroes,
                    vec![
                        FieldEntry::Named(*b"CSEL", 32),
                        FieldEntry::Named(*b"CENA", 1),
                        FieldEntry::Named(*b"CINS", 1),
                        FieldEntry::Named(*b"CRMV", 1),
                        FieldEntry::Named(*b"CEJF", 1),
                        FieldEntry::Reserved(28),
                        FieldEntry::Named(*b"CCNT", 32),
                    ],
                ),
                &Mutex::new(Path::new("CLCK"), 0),
                &CstaMethod,
                &Cej0Method,
                &ScanMethod {
                    cpus: self.hot.clone(),
                },
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `CSTA(cpu)`: 0x0F if the CPU is present, else 0.
struct CstaMethod;

impl Aml for CstaMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        Method::new(
            Path::new("CSTA"),
            1,
            true,
            vec![
                &Acquire::new(Path::new("CLCK"), ACQUIRE_FOREVER),
                &Store::new(&Path::new("CSEL"), &acpi_tables::aml::Arg(0)),
                &Store::new(&Local(0), &ZERO),
                &If::new(
                    &Equal::new(&Path::new("CENA"), &ONE),
                    vec![&Store::new(&Local(0), &STA_PRESENT)],
                ),
                &Release::new(Path::new("CLCK")),
                &Return::new(&Local(0)),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `CEJ0(cpu)`: write EJECT for the CPU.
struct Cej0Method;

impl Aml for Cej0Method {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        Method::new(
            Path::new("CEJ0"),
            1,
            true,
            vec![
                &Acquire::new(Path::new("CLCK"), ACQUIRE_FOREVER),
                &Store::new(&Path::new("CSEL"), &acpi_tables::aml::Arg(0)),
                &Store::new(&Path::new("CEJF"), &ONE),
                &Release::new(Path::new("CLCK")),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `CSCN()`: notify and acknowledge every CPU with INSERTING or REMOVING set.
struct ScanMethod {
    cpus: std::ops::Range<u32>,
}

impl Aml for ScanMethod {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let cpus: Vec<ScanCpu> = self.cpus.clone().map(|cpu| ScanCpu { cpu }).collect();
        let acquire = Acquire::new(Path::new("CLCK"), ACQUIRE_FOREVER);
        let release = Release::new(Path::new("CLCK"));
        let mut body: Vec<&dyn Aml> = vec![&acquire];
        body.extend(cpus.iter().map(|s| s as &dyn Aml));
        body.push(&release);
        Method::new(Path::new("CSCN"), 0, true, body).to_aml_bytes(sink);
    }
}

/// One CPU of CSCN: `CSEL = cpu; If (CINS == 1) { Notify (Cxxx, 1); CINS = 1 }
/// If (CRMV == 1) { Notify (Cxxx, 3); CRMV = 1 }`.
struct ScanCpu {
    cpu: u32,
}

impl Aml for ScanCpu {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let device = Path::new(&format!("\\_SB_.{}", cpu_device_name(self.cpu)));
        Store::new(&Path::new("CSEL"), &self.cpu).to_aml_bytes(sink);
        If::new(
            &Equal::new(&Path::new("CINS"), &ONE),
            vec![
                &Notify::new(&device, &NOTIFY_DEVICE_CHECK),
                &Store::new(&Path::new("CINS"), &ONE),
            ],
        )
        .to_aml_bytes(sink);
        If::new(
            &Equal::new(&Path::new("CRMV"), &ONE),
            vec![
                &Notify::new(&device, &NOTIFY_EJECT_REQUEST),
                &Store::new(&Path::new("CRMV"), &ONE),
            ],
        )
        .to_aml_bytes(sink);
    }
}

/// `\_SB_.Cxxx`: one ACPI0007 processor device.
struct CpuDeviceAml {
    cpu: u32,
    ejectable: bool,
}

impl Aml for CpuDeviceAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let name = cpu_device_name(self.cpu);
        let hid = Name::new(Path::new("_HID"), &"ACPI0007");
        let uid = Name::new(Path::new("_UID"), &self.cpu);
        let csta = MethodCall::new(Path::new("\\_SB_.CPHC.CSTA"), vec![&self.cpu]);
        let ret = Return::new(&csta);
        let sta = Method::new(Path::new("_STA"), 0, false, vec![&ret]);
        let buffer = BufferData::new(mat_entry(self.cpu));
        let mat = Name::new(Path::new("_MAT"), &buffer);
        let cej0 = MethodCall::new(Path::new("\\_SB_.CPHC.CEJ0"), vec![&self.cpu]);
        let ej0 = Method::new(Path::new("_EJ0"), 1, false, vec![&cej0]);
        let mut children: Vec<&dyn Aml> = vec![&hid, &uid, &sta, &mat];
        if self.ejectable {
            children.push(&ej0);
        }
        Device::new(Path::new(&name), children).to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests;
