//! The DSDT entry that tells an ACPI guest about a virtio-mmio device: a
//! `LNRO0005` device with its 4 KiB register window and its interrupt
//! (edge-triggered, active-high: the line is an irqfd pulse). The
//! alternative for guests without ACPI is [`super::kernel_cmdline_device`].

use acpi_tables::aml::{
    And, Device, Equal, Field, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule, If,
    Interrupt, Local, Memory32Fixed, Method, Name, Notify, OpRegion, OpRegionSpace, Path,
    ResourceTemplate, Return, Store, ZERO,
};
use acpi_tables::{Aml, AmlSink};

use super::MMIO_WINDOW_SIZE;
use crate::acpi::DsdtBuilder;

/// Add virtio-mmio device number `index` (its `_UID`; name `VRnn`) at
/// `base` with interrupt `gsi` under `\_SB_`.
pub fn add_virtio_mmio_device(dsdt: &mut DsdtBuilder, index: u8, base: u32, gsi: u32) {
    dsdt.add_system_bus(&MmioDeviceAml {
        index,
        base,
        gsi,
        hot_bit: None,
    });
}

/// `VRnn`: one virtio-mmio device; a hot slot's `_STA` reads its bit of
/// the present register (`\_SB_.VHPC.VPRS`).
struct MmioDeviceAml {
    index: u8,
    base: u32,
    gsi: u32,
    hot_bit: Option<u32>,
}

impl Aml for MmioDeviceAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let name = format!("VR{:02X}", self.index);
        let hid = Name::new(Path::new("_HID"), &"LNRO0005");
        let uid = Name::new(Path::new("_UID"), &self.index);
        let crs = Name::new(
            Path::new("_CRS"),
            &ResourceTemplate::new(vec![
                &Memory32Fixed::new(true, self.base, MMIO_WINDOW_SIZE as u32),
                &Interrupt::new(true, true, false, false, self.gsi),
            ]),
        );
        match self.hot_bit {
            None => Device::new(Path::new(&name), vec![&hid, &uid, &crs]).to_aml_bytes(sink),
            Some(bit) => {
                let mask = 1u32 << bit;
                Device::new(
                    Path::new(&name),
                    vec![
                        &hid,
                        &uid,
                        &crs,
                        &Method::new(
                            Path::new("_STA"),
                            0,
                            false,
                            vec![
                                &Store::new(&Local(0), &ZERO),
                                &If::new(
                                    &Equal::new(
                                        &And::new(&ZERO, &Path::new("\\_SB_.VHPC.VPRS"), &mask),
                                        &mask,
                                    ),
                                    vec![&Store::new(&Local(0), &STA_PRESENT)],
                                ),
                                &Return::new(&Local(0)),
                            ],
                        ),
                    ],
                )
                .to_aml_bytes(sink)
            }
        }
    }
}

/// _STA of a present, enabled, shown and functioning device.
const STA_PRESENT: u8 = 0x0f;
/// Notify value: Bus Check (rescan the device's children).
const NOTIFY_BUS_CHECK: u8 = 0;

/// The hot-plug slots: `\_SB_.VHPC`, a container (PNP0A06: Linux's
/// container scan handler rescans its children on a Bus Check) with the
/// present register (`VPRS`), the method the GED calls (`VSCN`: Bus Check
/// on the container), and one `VRnn` per slot whose `_STA` reads its bit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtioHotplugAml {
    /// Guest physical address of the 4-byte present register.
    pub present_base: u32,
    /// (device number, window base, GSI) per hot slot; slot n is bit n.
    pub slots: Vec<(u8, u32, u32)>,
}

/// Path of the method the GED's `_EVT` calls on [`GED_EVENT_VIRTIO`](crate::devices::acpi::ged::GED_EVENT_VIRTIO).
pub const VIRTIO_HOTPLUG_SCAN: &str = "\\_SB_.VHPC.VSCN";

impl Aml for VirtioHotplugAml {
    fn to_aml_bytes(&self, sink: &mut dyn AmlSink) {
        let devices: Vec<MmioDeviceAml> = self
            .slots
            .iter()
            .enumerate()
            .map(|(bit, &(index, base, gsi))| MmioDeviceAml {
                index,
                base,
                gsi,
                hot_bit: Some(bit as u32),
            })
            .collect();
        let hid = Name::new(Path::new("_HID"), &"PNP0A06");
        let uid = Name::new(Path::new("_UID"), &"Virtio Hotplug Slots");
        let crs = Name::new(
            Path::new("_CRS"),
            &ResourceTemplate::new(vec![&Memory32Fixed::new(true, self.present_base, 4)]),
        );
        let region = OpRegion::new(
            Path::new("VREG"),
            OpRegionSpace::SystemMemory,
            &self.present_base,
            &4u32,
        );
        let field = Field::new(
            Path::new("VREG"),
            FieldAccessType::DWord,
            FieldLockRule::NoLock,
            FieldUpdateRule::WriteAsZeroes,
            vec![FieldEntry::Named(*b"VPRS", 32)],
        );
        let container = Path::new("\\_SB_.VHPC");
        let notify = Notify::new(&container, &NOTIFY_BUS_CHECK);
        let scan = Method::new(Path::new("VSCN"), 0, true, vec![&notify]);
        let mut children: Vec<&dyn Aml> = vec![&hid, &uid, &crs, &region, &field, &scan];
        for d in &devices {
            children.push(d);
        }
        Device::new(Path::new("VHPC"), children).to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_add_virtio_mmio_device_emits_lnro0005_with_resources() {
        let mut b = DsdtBuilder::with_base();
        add_virtio_mmio_device(&mut b, 0x1a, 0xd000_0000, 5);
        let dsdt = b.build().unwrap();
        let has = |needle: &[u8]| dsdt.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"LNRO0005"));
        assert!(has(b"VR1A"));
        // Memory32Fixed: tag 0x86, length 9, read-write, base, size.
        let mut mem = vec![0x86, 0x09, 0x00, 0x01];
        mem.extend_from_slice(&0xd000_0000u32.to_le_bytes());
        mem.extend_from_slice(&0x1000u32.to_le_bytes());
        assert!(has(&mem), "Memory32Fixed");
        // Extended Interrupt: consumer, edge, active-high, exclusive, GSI 5.
        let mut irq = vec![0x89, 0x06, 0x00, 0x03, 0x01];
        irq.extend_from_slice(&5u32.to_le_bytes());
        assert!(has(&irq), "Interrupt");
    }

    #[test]
    fn test_several_virtio_mmio_devices_get_their_own_names_windows_and_irqs() {
        let mut b = DsdtBuilder::with_base();
        for i in 0..3u8 {
            add_virtio_mmio_device(
                &mut b,
                i,
                0xd000_0000 + u32::from(i) * 0x1000,
                5 + u32::from(i),
            );
        }
        let dsdt = b.build().unwrap();
        let has = |needle: &[u8]| dsdt.windows(needle.len()).any(|w| w == needle);
        for i in 0..3u32 {
            assert!(has(format!("VR{i:02X}").as_bytes()));
            assert!(has(&(0xd000_0000 + i * 0x1000).to_le_bytes()));
            let mut irq = vec![0x89, 0x06, 0x00, 0x03, 0x01];
            irq.extend_from_slice(&(5 + i).to_le_bytes());
            assert!(has(&irq), "Interrupt {i}");
        }
    }
}
