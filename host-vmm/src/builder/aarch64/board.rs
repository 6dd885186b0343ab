//! The aarch64 board (aarch64 hosts only): the ROM in a read-only slot at
//! 0, RAM from 1 GiB, vCPUs then the GIC, the PL011, PL031 and flash
//! variable store on the MMIO bus; at boot the device tree at the start
//! of RAM and fw_cfg (kernel, initrd, command line, ACPI tables). vCPU 0
//! starts in the ROM; the ROM reads the rest.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};

use super::rom::{rom_region, RomdMirror};
use super::tables::{self, BoardDevices, FirmwareBoot, VirtioPlace};
use crate::arch::aarch64::fdt::{self, FdtConfig};
use crate::arch::aarch64::gic;
use crate::arch::aarch64::layout::{self as board, Board as Layout, GicVersion};
use crate::arch::aarch64::vcpu;
use crate::builder::board::{self as shared, Board, BootContext, Buses, CpuHotplugStart};
use crate::builder::board::{MemoryHotplugPlace, VirtioSlots};
use crate::builder::devices::{add_device, console_error, irq_eventfd, open_console};
use crate::builder::error::BuildError;
use crate::builder::BootOptions;
use crate::config::HypervisorConfig;
use crate::devices::acpi::ged::GedNotifier;
use crate::devices::firmware::{CfiFlash, FwCfg};
use crate::devices::legacy::{Pl011, Pl031};
use crate::devices::Bus;
use crate::hotplug::memory::HotplugDevices;
use crate::kvm::{Vcpu, Vm};
use crate::vmm::ExitSignal;

pub use super::error::BoardError;

/// The guest physical address width of the VM (KVM's default IPA size).
const IPA_BITS: u8 = 40;
/// The bus a bus error names.
pub const BUS_NAME: &str = "MMIO";
/// Who reserves the virtio-mmio slots, in the error when none is left.
pub const SLOTS_OWNER: &str = "board";

/// The aarch64 board of a VM being built.
pub struct ArchBoard {
    rom_path: PathBuf,
    rom: Vec<u8>,
    rom_size: u64,
    layout: Layout,
    rom_slot: u32,
    gic: Option<GicVersion>,
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, BoardError> {
    std::fs::read(path).map_err(|source| BoardError::ReadFile {
        field,
        path: path.to_path_buf(),
        source,
    })
}

impl Board for ArchBoard {
    fn new(cfg: &HypervisorConfig, mem_bytes: u64) -> Result<Self, BuildError> {
        tracing::info!(
            memory_mib = cfg.default_memory,
            vcpus = cfg.default_vcpus,
            "building VM (aarch64)"
        );
        // The ROM first: without it nothing else matters.
        let rom_path = cfg.firmware.clone().ok_or(BoardError::NoFirmware)?;
        let rom = std::fs::read(&rom_path).map_err(|source| BoardError::Firmware {
            path: rom_path.clone(),
            source,
        })?;
        let rom_size = board::flash0_slot_size(rom.len() as u64).map_err(BoardError::from)?;
        let max_vcpus = cfg.default_maxvcpus.max(cfg.default_vcpus);
        let layout = Layout::new(max_vcpus, mem_bytes, IPA_BITS).map_err(BoardError::from)?;
        Ok(ArchBoard {
            rom_path,
            rom,
            rom_size,
            layout,
            rom_slot: 0,
            gic: None,
        })
    }

    fn ram_regions(&self, mem_bytes: u64) -> Result<Vec<(GuestAddress, u64)>, BuildError> {
        // RAM from 1 GiB.
        Ok(vec![(GuestAddress(board::RAM_BASE), mem_bytes)])
    }

    fn setup_vm(&mut self, vm: &Vm) -> Result<(), BuildError> {
        // The ROM in its own read-only slot at 0.
        let rom_region = rom_region(&self.rom, self.rom_size)?;
        self.rom_slot = u32::try_from(vm.kvm().get_nr_memslots().saturating_sub(1)).unwrap_or(0);
        vm.add_rom_slot(self.rom_slot, rom_region)?;
        Ok(())
    }

    fn create_vcpus(&mut self, vm: &Vm, cfg: &HypervisorConfig) -> Result<Vec<Vcpu>, BuildError> {
        // vCPUs (0 at the reset vector, the others off until PSCI CPU_ON), then the GIC.
        let target = vcpu::preferred_target(vm.fd()).map_err(BoardError::VcpuSetup)?;
        let mut vcpus = Vec::new();
        for index in 0..cfg.default_vcpus {
            let fd = vm.create_vcpu(index)?;
            vcpu::init_vcpu(&fd, &target, index, board::FLASH0_BASE, board::FDT_BASE)
                .map_err(BoardError::VcpuSetup)?;
            vcpus.push(Vcpu { index, fd });
        }
        self.gic = Some(gic::create_gic(vm.fd()).map_err(BoardError::from)?);
        Ok(vcpus)
    }

    fn add_legacy_devices(
        &mut self,
        vm: &Arc<Vm>,
        buses: &mut Buses,
        opts: &BootOptions,
        _exit: &Arc<ExitSignal>,
    ) -> Result<(), BuildError> {
        let mmio = &mut buses.mmio;
        let console = open_console(opts)?;
        let uart_irq = irq_eventfd("PL011")?;
        vm.register_irqfd(&uart_irq, board::UART_SPI)?;
        let uart = Pl011::console(uart_irq, console).map_err(console_error(opts))?;
        add_device(mmio, "PL011", uart, board::UART_BASE, board::UART_SIZE)?;
        add_device(
            mmio,
            "PL031",
            Pl031::new(),
            board::RTC_BASE,
            board::RTC_SIZE,
        )?;
        // A fresh variable store per VM: erased, EDK2 formats it; never the
        // system's. Its array is mapped read-only while in read-array mode.
        let mut vars = CfiFlash::erased(board::FLASH1_SIZE as usize).map_err(BoardError::Flash)?;
        let mirror_slot = self.rom_slot.saturating_sub(1);
        vars.set_mirror(Box::new(RomdMirror::new(vm.clone(), mirror_slot)?));
        add_device(
            mmio,
            "flash variable store",
            vars,
            board::FLASH1_BASE,
            board::FLASH1_SIZE,
        )
    }

    fn virtio_slots(&self) -> VirtioSlots {
        VirtioSlots {
            place: |index| {
                tables::virtio_place(index).map(|p| shared::VirtioPlace {
                    index,
                    base: p.base,
                    irq: p.spi,
                })
            },
            count: board::VIRTIO_MMIO_SLOTS as usize,
            window: board::VIRTIO_MMIO_SIZE,
            present_base: board::VIRTIO_HOTPLUG_MMIO_BASE,
            present_device: "virtio hot-plug present register",
        }
    }

    fn memory_hotplug_place(&mut self, _vm: &Vm) -> Result<MemoryHotplugPlace, BuildError> {
        Ok(MemoryHotplugPlace {
            devices: HotplugDevices {
                controller_base: board::MEMORY_HOTPLUG_MMIO_BASE,
                ged_base: board::GED_MMIO_BASE,
                ged_gsi: board::GED_SPI,
            },
            min_start: board::hotplug_min_start(&self.layout),
            phys_bits: IPA_BITS,
        })
    }

    fn boot(&mut self, ctx: BootContext<'_>, _vcpus: &mut Vec<Vcpu>) -> Result<(), BuildError> {
        let gic = self.gic.ok_or(BoardError::NoGic)?;
        let cfg = ctx.cfg;
        // What the ROM reads: the device tree at the start of RAM, fw_cfg.
        let devices = BoardDevices {
            virtio: ctx.devices.virtio.iter().map(place).collect(),
            hot_virtio: ctx.devices.hot_virtio.iter().map(place).collect(),
            memory_slots: cfg.memory_slots,
        };
        let dtb = fdt::device_tree(&FdtConfig {
            board: self.layout,
            num_vcpus: cfg.default_vcpus,
            gic,
            virtio: devices.virtio.iter().map(|v| (v.base, v.spi)).collect(),
        })
        .map_err(BoardError::from)?;
        ctx.guest_memory
            .memory()
            .write_slice(&dtb, GuestAddress(board::FDT_BASE))
            .map_err(BoardError::FdtWrite)?;
        let acpi = tables::acpi_tables(&self.layout, cfg.default_vcpus, gic, &devices)
            .map_err(BoardError::Acpi)?;
        let boot = FirmwareBoot {
            kernel: read("kernel", &cfg.kernel)?,
            initrd: cfg
                .initrd
                .as_deref()
                .map(|p| read("initrd", p))
                .transpose()?,
            cmdline: tables::cmdline(&cfg.kernel_params).map_err(BoardError::from)?,
        };
        tracing::debug!(cmdline = %boot.cmdline, "kernel command line");
        let items = tables::fw_cfg_table(&self.layout, cfg.default_vcpus, &acpi, boot)
            .map_err(BoardError::FwCfg)?;
        add_device(
            ctx.mmio,
            "fw_cfg",
            FwCfg::new(items, ctx.guest_memory.clone()),
            board::FW_CFG_BASE,
            board::FW_CFG_SIZE,
        )
    }

    fn cpu_hotplug(
        &mut self,
        _vm: &Arc<Vm>,
        _mmio: &mut Bus,
        _cfg: &HypervisorConfig,
        _ged: Option<Arc<GedNotifier>>,
    ) -> Result<Option<CpuHotplugStart>, BuildError> {
        // Not on this board yet.
        Ok(None)
    }

    fn log_built(&self, cfg: &HypervisorConfig) {
        tracing::info!(
            vcpus = cfg.default_vcpus,
            memory_mib = cfg.default_memory,
            gic = ?self.gic,
            firmware = %self.rom_path.display(),
            kernel = %cfg.kernel.display(),
            "VM built"
        );
    }
}

/// A shared place as the tables want it.
fn place(p: &shared::VirtioPlace) -> VirtioPlace {
    VirtioPlace {
        index: u32::try_from(p.index).unwrap_or(u32::MAX),
        base: p.base,
        spi: p.irq,
    }
}
