//! The DSDT entry that tells an ACPI guest about a virtio-mmio device: a
//! `LNRO0005` device with its 4 KiB register window and its interrupt
//! (edge-triggered, active-high: the line is an irqfd pulse). The
//! alternative for guests without ACPI is [`super::kernel_cmdline_device`].

use acpi_tables::aml::{Device, Interrupt, Memory32Fixed, Name, Path, ResourceTemplate};

use super::MMIO_WINDOW_SIZE;
use crate::acpi::DsdtBuilder;

/// Add virtio-mmio device number `index` (its `_UID`; name `VRnn`) at
/// `base` with interrupt `gsi` under `\_SB_`.
pub fn add_virtio_mmio_device(dsdt: &mut DsdtBuilder, index: u8, base: u32, gsi: u32) {
    let name = format!("VR{index:02X}");
    dsdt.add_system_bus(&Device::new(
        Path::new(&name),
        vec![
            &Name::new(Path::new("_HID"), &"LNRO0005"),
            &Name::new(Path::new("_UID"), &index),
            &Name::new(
                Path::new("_CRS"),
                &ResourceTemplate::new(vec![
                    &Memory32Fixed::new(true, base, MMIO_WINDOW_SIZE as u32),
                    &Interrupt::new(true, true, false, false, gsi),
                ]),
            ),
        ],
    ));
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
