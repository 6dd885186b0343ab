//! The x86 ACPI tables (the VMM is the firmware): built from the devices
//! and written to guest memory.

use vm_memory::{Bytes, GuestAddress};

use super::cpu_hotplug;
use super::error::BoardError;
use crate::acpi::{self, AcpiConfig, AcpiContents, AcpiPorts};
use crate::arch::x86_64::layout::*;
use crate::builder::board::BootDevices;
use crate::config::HypervisorConfig;
use crate::devices::legacy::SerialAml;
use crate::devices::virtio::acpi::add_virtio_mmio_device;
use crate::devices::virtio::acpi::{VirtioHotplugAml, VIRTIO_HOTPLUG_SCAN};
use crate::memory::GuestMemoryMmap;

/// Ports the FADT points at: the ones the ACPI power device listens on.
pub(crate) fn acpi_ports() -> AcpiPorts {
    AcpiPorts {
        sleep_control: ACPI_SLEEP_CONTROL_PORT,
        sleep_status: ACPI_SLEEP_STATUS_PORT,
        reset: ACPI_RESET_PORT,
    }
}

/// Build the ACPI tables, copy them into guest memory, return the RSDP address.
pub(super) fn write_acpi_tables(
    mem: &GuestMemoryMmap,
    cfg: &HypervisorConfig,
    devices: &BootDevices,
) -> Result<u64, BoardError> {
    let acpi_cfg = AcpiConfig {
        num_vcpus: cfg.default_vcpus,
        max_vcpus: cfg.default_maxvcpus.max(cfg.default_vcpus),
        rsdp_addr: ACPI_RSDP_ADDR,
        tables_addr: ACPI_TABLES_ADDR,
    };
    let mut contents = AcpiContents {
        ports: acpi_ports(),
        ..Default::default()
    };
    contents.dsdt.add_system_bus(&SerialAml {
        base: SERIAL_PORT_BASE,
        len: SERIAL_PORT_SIZE as u8,
        gsi: SERIAL_IRQ,
    });
    let (virtio, hot) = (&devices.virtio, &devices.hot_virtio);
    for (i, slot) in virtio.iter().enumerate() {
        // The layout keeps every window below 4 GiB and fewer than 256 slots.
        let base = u32::try_from(slot.base).unwrap_or(u32::MAX);
        add_virtio_mmio_device(&mut contents.dsdt, i as u8, base, slot.irq);
    }
    // Hot slots are numbered after the boot devices (all in the 32-bit gap).
    let hot_aml = VirtioHotplugAml {
        present_base: VIRTIO_HOTPLUG_MMIO_BASE as u32,
        slots: hot
            .iter()
            .enumerate()
            .map(|(i, s)| ((virtio.len() + i) as u8, s.base as u32, s.irq))
            .collect(),
    };
    if !hot.is_empty() {
        contents.dsdt.add_system_bus(&hot_aml);
    }
    if cfg.memory_slots > 0 {
        // Both windows are in the 32-bit MMIO gap.
        acpi::memory_hotplug::MemoryHotplugAml {
            controller_base: MEMORY_HOTPLUG_MMIO_BASE as u32,
            slots: cfg.memory_slots,
            ged_base: GED_MMIO_BASE as u32,
            ged_gsi: GED_GSI,
        }
        .add_with_scans(
            &mut contents.dsdt,
            (!hot.is_empty()).then_some(VIRTIO_HOTPLUG_SCAN),
            cpu_hotplug::enabled(cfg).map(|_| acpi::cpu_hotplug::CPU_HOTPLUG_SCAN),
        );
    }
    if let Some(limits) = cpu_hotplug::enabled(cfg) {
        cpu_hotplug::add_aml(&mut contents.dsdt, limits);
    }
    let tables = acpi::create_acpi_tables_with(&acpi_cfg, contents).map_err(BoardError::Acpi)?;
    let (_, end) = tables.tables_range();
    let limit = ACPI_TABLES_ADDR + ACPI_TABLES_MAX_SIZE;
    if end > limit {
        return Err(BoardError::AcpiTooLarge { end, limit });
    }
    for (addr, bytes) in &tables.blobs {
        mem.write_slice(bytes, GuestAddress(*addr))
            .map_err(|source| BoardError::AcpiWrite {
                addr: *addr,
                source,
            })?;
    }
    Ok(tables.rsdp_addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_acpi_ports_match_the_acpi_module_defaults() {
        assert_eq!(acpi_ports(), AcpiPorts::default());
    }
}
