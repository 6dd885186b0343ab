//! What the aarch64 board hands its UEFI ROM (pure, built and tested on
//! every architecture): the DSDT of its devices, the relocatable ACPI
//! tables, the kernel command line and the fw_cfg item table (kernel,
//! initrd, command line, `etc/acpi/*`, `etc/table-loader`).
//!
//! The DSDT shares its arch-neutral AML with x86: the virtio-mmio devices
//! (`LNRO0005`), the disk hot-add container (`VHPC`), the memory devices,
//! the memory hot-plug controller and the GED (`ACPI0013`) come from the
//! same sources; only the UART (`ARMH0011`) and the interrupt numbers
//! (GIC INTIDs) are the board's.

use crate::acpi::arm::{self, ArmPlatform, FirmwareTables, GicVersion};
use crate::acpi::memory_hotplug::MemoryHotplugAml;
use crate::acpi::{AcpiError, DsdtBuilder};
use crate::arch::aarch64::layout::{self as board, Board};
use crate::devices::firmware::fw_cfg::items::{
    KEY_MAX_CPUS, KEY_NB_CPUS, KEY_NOGRAPHIC, KEY_RAM_SIZE,
};
use crate::devices::firmware::fw_cfg::loader::{self, LOADER_FILE, RSDP_FILE, TABLES_FILE};
use crate::devices::firmware::fw_cfg::{ItemError, Items, Table};
use crate::devices::legacy::Pl011Aml;
use crate::devices::virtio::acpi::{add_virtio_mmio_device, VirtioHotplugAml, VIRTIO_HOTPLUG_SCAN};

/// The VMM's part of the kernel command line:
/// - `console=ttyAMA0`: the PL011 (the SPCR names it too);
/// - `panic=-1`: a panic reboots at once (PSCI SYSTEM_RESET ends the VM);
/// - `quiet`: every console byte is an MMIO exit.
pub const BASE_CMDLINE: &str = "console=ttyAMA0 panic=-1 quiet";
/// arm64's `COMMAND_LINE_SIZE`, NUL included.
pub const CMDLINE_MAX: usize = 2048;

/// Why the command line cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("kernel_params: the command line is {len} bytes, the kernel accepts at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("kernel_params: contains a NUL byte")]
    Nul,
}

/// [`BASE_CMDLINE`] followed by `extra` (trimmed).
pub fn cmdline(extra: &str) -> Result<String, CmdlineError> {
    if extra.contains('\0') {
        return Err(CmdlineError::Nul);
    }
    let extra = extra.trim();
    let line = if extra.is_empty() {
        BASE_CMDLINE.to_string()
    } else {
        format!("{BASE_CMDLINE} {extra}")
    };
    if line.len() >= CMDLINE_MAX {
        return Err(CmdlineError::TooLong {
            len: line.len(),
            max: CMDLINE_MAX - 1,
        });
    }
    Ok(line)
}

/// A virtio-mmio device's place: its number (`_UID`, `VRnn`), window, SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VirtioPlace {
    pub index: u32,
    pub base: u64,
    pub spi: u32,
}

/// The place of virtio-mmio slot `index`, `None` past the board's slots.
pub fn virtio_place(index: usize) -> Option<VirtioPlace> {
    let index = u32::try_from(index)
        .ok()
        .filter(|&i| i < board::VIRTIO_MMIO_SLOTS)?;
    Some(VirtioPlace {
        index,
        base: board::virtio_mmio_base(index),
        spi: board::virtio_mmio_spi(index),
    })
}

/// The devices the DSDT describes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BoardDevices {
    /// virtio-mmio devices present at boot.
    pub virtio: Vec<VirtioPlace>,
    /// Free slots for disks added while the VM runs (needs the GED).
    pub hot_virtio: Vec<VirtioPlace>,
    /// `memory_slots`: with any, the memory devices, controller and GED.
    pub memory_slots: u32,
}

/// Every window below RAM fits 32 bits (a const check in the layout).
fn base32(addr: u64) -> u32 {
    u32::try_from(addr).unwrap_or(u32::MAX)
}

/// The board's DSDT.
pub fn dsdt(devices: &BoardDevices) -> DsdtBuilder {
    let mut d = DsdtBuilder::new();
    d.add_system_bus(&Pl011Aml {
        base: base32(board::UART_BASE),
        len: base32(board::UART_SIZE),
        gsiv: board::spi_intid(board::UART_SPI),
    });
    for v in &devices.virtio {
        // Fewer than 256 slots (the layout has 32).
        add_virtio_mmio_device(
            &mut d,
            v.index as u8,
            base32(v.base),
            board::spi_intid(v.spi),
        );
    }
    let hot = !devices.hot_virtio.is_empty() && devices.memory_slots > 0;
    if hot {
        d.add_system_bus(&VirtioHotplugAml {
            present_base: base32(board::VIRTIO_HOTPLUG_MMIO_BASE),
            slots: devices
                .hot_virtio
                .iter()
                .map(|v| (v.index as u8, base32(v.base), board::spi_intid(v.spi)))
                .collect(),
        });
    }
    if devices.memory_slots > 0 {
        MemoryHotplugAml {
            controller_base: base32(board::MEMORY_HOTPLUG_MMIO_BASE),
            slots: devices.memory_slots,
            ged_base: base32(board::GED_MMIO_BASE),
            ged_gsi: board::spi_intid(board::GED_SPI),
        }
        .add_with_virtio_scan(&mut d, hot.then_some(VIRTIO_HOTPLUG_SCAN));
    }
    d
}

/// The relocatable ACPI tables of the board.
pub fn acpi_tables(
    board: &Board,
    num_vcpus: u32,
    gic: GicVersion,
    devices: &BoardDevices,
) -> Result<FirmwareTables, AcpiError> {
    let platform = ArmPlatform::from_board(board, num_vcpus, gic);
    arm::create_tables(&platform, dsdt(devices))
}

/// What the firmware boots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirmwareBoot {
    /// The arm64 `Image` (its EFI stub is what the ROM starts).
    pub kernel: Vec<u8>,
    pub initrd: Option<Vec<u8>>,
    pub cmdline: String,
}

/// The fw_cfg items: machine facts, the kernel, initrd and command line,
/// and the ACPI blobs with their loader commands.
pub fn fw_cfg_table(
    board: &Board,
    num_vcpus: u32,
    tables: &FirmwareTables,
    boot: FirmwareBoot,
) -> Result<Table, ItemError> {
    let mut items = Items::new();
    items.set_u64(KEY_RAM_SIZE, board.ram_bytes);
    items.set_u16(KEY_NOGRAPHIC, 1);
    // At most 123 vCPUs (the layout's bound).
    items.set_u16(KEY_NB_CPUS, num_vcpus as u16);
    items.set_u16(KEY_MAX_CPUS, board.max_vcpus as u16);
    items.set_kernel(boot.kernel)?;
    if let Some(initrd) = boot.initrd {
        items.set_initrd(initrd)?;
    }
    items.set_cmdline(&boot.cmdline)?;
    items.add_file(TABLES_FILE, tables.tables.clone())?;
    items.add_file(RSDP_FILE, tables.rsdp.clone())?;
    items.add_file(LOADER_FILE, loader::encode(&loader::acpi_commands(tables)))?;
    Ok(items.finish())
}

#[cfg(test)]
mod tests;
