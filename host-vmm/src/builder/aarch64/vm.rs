//! Assembling an aarch64 VM, top to bottom: the ROM and RAM, the KVM VM,
//! vCPUs, the GIC, the devices on the MMIO bus, the device tree and the
//! fw_cfg items. vCPU 0 starts in the ROM; the ROM reads the rest.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use vmm_sys_util::eventfd::EventFd;

use super::tables::{self, BoardDevices, CmdlineError, FirmwareBoot, VirtioPlace};
use crate::acpi::AcpiError;
use crate::arch::aarch64::fdt::{self, FdtConfig, FdtError};
use crate::arch::aarch64::gic::{self, GicError};
use crate::arch::aarch64::layout::{self as board, Board, LayoutError};
use crate::arch::aarch64::vcpu::{self, VcpuSetupError};
use crate::builder::BootOptions;
use crate::config::HypervisorConfig;
use crate::devices::firmware::fw_cfg::ItemError;
use crate::devices::firmware::{CfiFlash, FwCfg};
use crate::devices::legacy::{ConsoleOutput, Pl011, Pl031};
use crate::devices::virtio::block::slots::duplicate_serial;
use crate::devices::virtio::block::{Block, DiskError};
use crate::devices::virtio::mmio::MmioError;
use crate::devices::virtio::vsock::{Vsock, VsockError, DEFAULT_GUEST_CID};
use crate::devices::virtio::{VirtioDevice, VirtioMmioDevice, MMIO_NOTIFY_OFFSET};
use crate::devices::{Bus, BusDevice, BusError, SharedDevice};
use crate::hotplug::disk::{hot_slots, DiskHotplug, PRESENT_REGISTER_SIZE};
use crate::hotplug::memory::{self as memory_hotplug, HotplugDevices, HotplugSetupError};
use crate::kvm::{KvmError, Vcpu, Vm};
use crate::memory::layout::{self as memory_layout, HotplugLayoutInput};
use crate::memory::{self, GuestMemoryAtomic, GuestRegionMmap, MemoryError};
use crate::vmm::{ExitSignal, Vmm};

/// Where Debian puts the ROM, for the error that names a missing one.
pub const DEBIAN_FIRMWARE: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
/// The guest physical address width of the VM (KVM's default IPA size).
const IPA_BITS: u8 = 40;

/// Why the VM could not be built. Each names the configuration field or
/// file at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("firmware: not set; aarch64 boots a UEFI ROM (Debian's is {DEBIAN_FIRMWARE}, package qemu-efi-aarch64)")]
    NoFirmware,
    #[error("firmware: cannot read {} (Debian's ROM is {DEBIAN_FIRMWARE}, package qemu-efi-aarch64)", path.display())]
    Firmware {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{field}: cannot read {}", path.display())]
    ReadFile {
        field: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Layout(#[from] LayoutError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error("cannot map the firmware ROM: {0}")]
    RomMap(String),
    #[error(transparent)]
    Kvm(#[from] KvmError),
    #[error("default_vcpus: cannot set up the vCPUs")]
    VcpuSetup(#[source] VcpuSetupError),
    #[error(transparent)]
    Gic(#[from] GicError),
    #[error("console {}: cannot open for writing (a FIFO must already have a reader)", path.display())]
    Console {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the {device} interrupt eventfd")]
    EventFd {
        device: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot place the {device} on the MMIO bus")]
    Bus {
        device: &'static str,
        #[source]
        source: BusError,
    },
    #[error("cannot create the vsock device on {}", path.display())]
    Vsock {
        path: PathBuf,
        #[source]
        source: VsockError,
    },
    #[error("cannot attach virtio-blk disk {index}")]
    Disk {
        index: usize,
        #[source]
        source: DiskError,
    },
    #[error("disks {first} and {second} both have serial {serial:?}: each disk needs its own")]
    DuplicateSerial {
        first: usize,
        second: usize,
        serial: String,
    },
    #[error(
        "no virtio-mmio slot left for the {device} (the board has {})",
        board::VIRTIO_MMIO_SLOTS
    )]
    VirtioSlots { device: &'static str },
    #[error("cannot create the virtio-mmio transport of the {device}")]
    VirtioMmio {
        device: &'static str,
        #[source]
        source: MmioError,
    },
    #[error("cannot create the flash variable store")]
    Flash(#[source] crate::devices::firmware::flash::FlashError),
    #[error("cannot build the ACPI tables")]
    Acpi(#[source] AcpiError),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error("cannot build the fw_cfg items")]
    FwCfg(#[source] ItemError),
    #[error(transparent)]
    Fdt(#[from] FdtError),
    #[error("cannot write the device tree to guest memory")]
    FdtWrite(#[source] vm_memory::GuestMemoryError),
    #[error("memory_slots: cannot set up memory hotplug")]
    MemoryHotplug(#[source] HotplugSetupError),
}

fn read(field: &'static str, path: &std::path::Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::ReadFile {
        field,
        path: path.to_path_buf(),
        source,
    })
}

fn add_mmio(
    bus: &mut Bus,
    device: &'static str,
    dev: impl BusDevice + 'static,
    base: u64,
    len: u64,
) -> Result<(), BuildError> {
    let shared: SharedDevice = Arc::new(Mutex::new(dev));
    bus.insert(shared, base, len)
        .map_err(|source| BuildError::Bus { device, source })
}

fn irq_eventfd(device: &'static str) -> Result<EventFd, BuildError> {
    EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
        .map_err(|source| BuildError::EventFd { device, source })
}

/// Assemble a VM from `cfg`, ready to [`Vmm::run`].
pub fn build_vm(cfg: &HypervisorConfig, opts: &BootOptions) -> Result<Vmm, BuildError> {
    tracing::info!(
        memory_mib = cfg.default_memory,
        vcpus = cfg.default_vcpus,
        "building VM (aarch64)"
    );
    // The ROM first: without it nothing else matters.
    let rom_path = cfg.firmware.as_ref().ok_or(BuildError::NoFirmware)?;
    let rom = std::fs::read(rom_path).map_err(|source| BuildError::Firmware {
        path: rom_path.clone(),
        source,
    })?;
    let rom_size = board::flash0_slot_size(rom.len() as u64)?;
    let max_vcpus = cfg.default_maxvcpus.max(cfg.default_vcpus);
    let mem_bytes = memory::mib_to_bytes(cfg.default_memory)?;
    let layout = Board::new(max_vcpus, mem_bytes, IPA_BITS)?;

    // RAM from 1 GiB; the ROM in its own read-only slot at 0.
    let mem = memory::create_guest_memory(
        &[(GuestAddress(board::RAM_BASE), mem_bytes)],
        cfg.default_memory,
    )?;
    let guest_memory = GuestMemoryAtomic::new(mem.clone());
    let vm = Vm::new()?;
    vm.register_memory(&mem)?;
    let rom_region = rom_region(&rom, rom_size)?;
    let rom_slot = u32::try_from(vm.kvm().get_nr_memslots().saturating_sub(1)).unwrap_or(0);
    vm.add_rom_slot(rom_slot, rom_region)?;

    // vCPUs (0 at the reset vector, the others off until PSCI CPU_ON), then the GIC.
    let target = vcpu::preferred_target(vm.fd()).map_err(BuildError::VcpuSetup)?;
    let mut vcpus = Vec::new();
    for index in 0..cfg.default_vcpus {
        let fd = vm.create_vcpu(index)?;
        vcpu::init_vcpu(&fd, &target, index, board::FLASH0_BASE, board::FDT_BASE)
            .map_err(BuildError::VcpuSetup)?;
        vcpus.push(Vcpu { index, fd });
    }
    let gic = gic::create_gic(vm.fd())?;
    let vm = Arc::new(vm);

    // Devices on the MMIO bus.
    let exit = ExitSignal::new();
    let mut mmio = Bus::new();
    let console_err = |source| BuildError::Console {
        path: opts.console.clone().unwrap_or_default(),
        source,
    };
    let console = ConsoleOutput::open(opts.console.as_deref()).map_err(console_err)?;
    let uart_irq = irq_eventfd("PL011")?;
    vm.register_irqfd(&uart_irq, board::UART_SPI)?;
    let uart = Pl011::console(uart_irq, console).map_err(console_err)?;
    add_mmio(&mut mmio, "PL011", uart, board::UART_BASE, board::UART_SIZE)?;
    add_mmio(
        &mut mmio,
        "PL031",
        Pl031::new(),
        board::RTC_BASE,
        board::RTC_SIZE,
    )?;
    // A fresh variable store per VM: erased, EDK2 formats it; never the
    // system's. Its array is mapped read-only while in read-array mode.
    let mut vars = CfiFlash::erased(board::FLASH1_SIZE as usize).map_err(BuildError::Flash)?;
    let mirror_slot = rom_slot.saturating_sub(1);
    vars.set_mirror(Box::new(RomdMirror::new(vm.clone(), mirror_slot)?));
    add_mmio(
        &mut mmio,
        "flash variable store",
        vars,
        board::FLASH1_BASE,
        board::FLASH1_SIZE,
    )?;

    let mut virtio = Vec::new();
    if let Some(path) = &opts.vsock_socket {
        let vsock = Vsock::new(DEFAULT_GUEST_CID, path).map_err(|source| BuildError::Vsock {
            path: path.clone(),
            source,
        })?;
        let at = virtio.len();
        virtio.push(add_virtio(
            &vm,
            &mut mmio,
            &guest_memory,
            "vsock device",
            Box::new(vsock),
            at,
        )?);
    }
    if let Some((first, second)) = duplicate_serial(&opts.disks) {
        return Err(BuildError::DuplicateSerial {
            first,
            second,
            serial: opts.disks[second].serial.clone(),
        });
    }
    for (index, disk) in opts.disks.iter().enumerate() {
        let block = Block::new(disk).map_err(|source| BuildError::Disk { index, source })?;
        let at = virtio.len();
        virtio.push(add_virtio(
            &vm,
            &mut mmio,
            &guest_memory,
            "block device",
            Box::new(block),
            at,
        )?);
    }
    // Free slots for disks added while the VM runs; they share the GED,
    // which comes with memory hot-plug.
    let hot: Vec<VirtioPlace> = if cfg.memory_slots > 0 {
        (virtio.len()..board::VIRTIO_MMIO_SLOTS as usize)
            .filter_map(tables::virtio_place)
            .collect()
    } else {
        Vec::new()
    };
    let places: Vec<(usize, u64, u32)> = hot
        .iter()
        .map(|p| (p.index as usize, p.base, p.spi))
        .collect();
    let (hot_slots, present) = hot_slots(&places);
    let hot_used: Vec<VirtioPlace> = hot.iter().take(hot_slots.len()).copied().collect();
    for slot in &hot_slots {
        let shared: SharedDevice = slot.device.clone();
        mmio.insert(shared, slot.base, board::VIRTIO_MMIO_SIZE)
            .map_err(|source| BuildError::Bus {
                device: "virtio-mmio hot-plug slot",
                source,
            })?;
    }
    let present_bits = present.bits();
    if !hot_slots.is_empty() {
        add_mmio(
            &mut mmio,
            "virtio hot-plug present register",
            present,
            board::VIRTIO_HOTPLUG_MMIO_BASE,
            PRESENT_REGISTER_SIZE,
        )?;
    }

    // Memory hot-plug: DIMMs above the boot RAM, the controller and the GED.
    let hotplug = if cfg.memory_slots > 0 {
        let region = memory_layout::hotplug_region(&HotplugLayoutInput {
            boot_bytes: mem_bytes,
            boot_ram_end: layout.ram_end(),
            max_bytes: memory::mib_to_bytes(cfg.default_maxmemory)?,
            slots: cfg.memory_slots,
            min_start: board::hotplug_min_start(&layout),
            phys_bits: IPA_BITS,
            block_size: memory_layout::GUEST_MEMORY_BLOCK_SIZE,
        });
        let at = HotplugDevices {
            controller_base: board::MEMORY_HOTPLUG_MMIO_BASE,
            ged_base: board::GED_MMIO_BASE,
            ged_gsi: board::GED_SPI,
        };
        Some(
            memory_hotplug::attach(&vm, &mut mmio, &guest_memory, region, at)
                .map_err(BuildError::MemoryHotplug)?,
        )
    } else {
        None
    };
    let disk_hotplug = match (&hotplug, hot_slots.is_empty()) {
        (Some(h), false) => Some(Arc::new(DiskHotplug::new(
            vm.clone(),
            guest_memory.clone(),
            h.ged(),
            hot_slots,
            present_bits,
            opts.disks
                .iter()
                .filter(|d| !d.serial.is_empty())
                .map(|d| d.serial.clone())
                .collect(),
        ))),
        _ => None,
    };

    // What the ROM reads: the device tree at the start of RAM, fw_cfg.
    let devices = BoardDevices {
        virtio: virtio.clone(),
        hot_virtio: hot_used,
        memory_slots: cfg.memory_slots,
    };
    let dtb = fdt::device_tree(&FdtConfig {
        board: layout,
        num_vcpus: cfg.default_vcpus,
        gic,
        virtio: virtio.iter().map(|v| (v.base, v.spi)).collect(),
    })?;
    guest_memory
        .memory()
        .write_slice(&dtb, GuestAddress(board::FDT_BASE))
        .map_err(BuildError::FdtWrite)?;
    let acpi =
        tables::acpi_tables(&layout, cfg.default_vcpus, gic, &devices).map_err(BuildError::Acpi)?;
    let boot = FirmwareBoot {
        kernel: read("kernel", &cfg.kernel)?,
        initrd: cfg
            .initrd
            .as_deref()
            .map(|p| read("initrd", p))
            .transpose()?,
        cmdline: tables::cmdline(&cfg.kernel_params)?,
    };
    tracing::debug!(cmdline = %boot.cmdline, "kernel command line");
    let items =
        tables::fw_cfg_table(&layout, cfg.default_vcpus, &acpi, boot).map_err(BuildError::FwCfg)?;
    add_mmio(
        &mut mmio,
        "fw_cfg",
        FwCfg::new(items, guest_memory.clone()),
        board::FW_CFG_BASE,
        board::FW_CFG_SIZE,
    )?;

    tracing::info!(
        vcpus = cfg.default_vcpus,
        memory_mib = cfg.default_memory,
        ?gic,
        firmware = %rom_path.display(),
        kernel = %cfg.kernel.display(),
        "VM built"
    );
    Ok(Vmm::new(vm, mem, vcpus, Bus::new(), mmio, exit)
        .with_memory_hotplug(hotplug)
        .with_disk_hotplug(disk_hotplug))
}

/// The ROM's bytes in an anonymous mapping of `size` (its tail zero).
fn rom_region(rom: &[u8], size: u64) -> Result<GuestRegionMmap, BuildError> {
    // The size is at most one 64 MiB flash bank (checked by the layout).
    let region =
        vm_memory::MmapRegion::new(size as usize).map_err(|e| BuildError::RomMap(e.to_string()))?;
    let region = GuestRegionMmap::new(region, GuestAddress(board::FLASH0_BASE))
        .ok_or_else(|| BuildError::RomMap("the ROM's range overflows".into()))?;
    region
        .write_slice(rom, vm_memory::MemoryRegionAddress(0))
        .map_err(|e| BuildError::RomMap(e.to_string()))?;
    Ok(region)
}

/// The variable store's array as a read-only memory slot while the flash is
/// in read-array mode (QEMU's "ROMD"): the guest's loads, load-pairs
/// included, read memory; in the other modes the slot is gone and reads
/// exit to the device, which answers with its status.
struct RomdMirror {
    vm: Arc<Vm>,
    /// Also kept by the VM, for its whole life: no teardown order (and no
    /// slot removal on a thread whose filter forbids it) is needed.
    region: Arc<GuestRegionMmap>,
    slot: u32,
    mapped: bool,
}

impl RomdMirror {
    fn new(vm: Arc<Vm>, slot: u32) -> Result<Self, BuildError> {
        let region = vm_memory::MmapRegion::new(board::FLASH1_SIZE as usize)
            .map_err(|e| BuildError::RomMap(e.to_string()))?;
        let region = GuestRegionMmap::new(region, GuestAddress(board::FLASH1_BASE))
            .ok_or_else(|| BuildError::RomMap("the variable store's range overflows".into()))?;
        let region = Arc::new(region);
        vm.keep_mapped(region.clone());
        Ok(RomdMirror {
            vm,
            region,
            slot,
            mapped: false,
        })
    }
}

impl crate::devices::firmware::FlashMirror for RomdMirror {
    fn update(&mut self, offset: usize, data: &[u8]) {
        // The flash checks offsets against its size, which is the region's.
        let _ = self
            .region
            .write_slice(data, vm_memory::MemoryRegionAddress(offset as u64));
    }

    fn array_mode(&mut self, on: bool) {
        let result = if on && !self.mapped {
            // SAFETY: the VM keeps `self.region` mapped for its whole life
            // (`keep_mapped` in `new`), so it outlives the slot.
            unsafe { self.vm.map_readonly(self.slot, &self.region) }
        } else if !on && self.mapped {
            self.vm.remove_memory_slot(self.slot, board::FLASH1_BASE)
        } else {
            return;
        };
        match result {
            Ok(()) => self.mapped = on,
            Err(e) => tracing::warn!("flash variable store: cannot switch read-array mapping: {e}"),
        }
    }
}

/// Put `device` behind a virtio-mmio transport in slot `index`: window,
/// irqfd, ioeventfds, bus entry.
fn add_virtio(
    vm: &Vm,
    bus: &mut Bus,
    mem: &GuestMemoryAtomic,
    name: &'static str,
    device: Box<dyn VirtioDevice>,
    index: usize,
) -> Result<VirtioPlace, BuildError> {
    let place = tables::virtio_place(index).ok_or(BuildError::VirtioSlots { device: name })?;
    let transport =
        VirtioMmioDevice::new(device, mem.clone()).map_err(|source| BuildError::VirtioMmio {
            device: name,
            source,
        })?;
    vm.register_irqfd(transport.interrupt_evt(), place.spi)?;
    for (queue, evt) in transport.queue_evts().iter().enumerate() {
        let queue = u32::try_from(queue).unwrap_or(u32::MAX);
        vm.register_ioevent_mmio(evt, place.base + MMIO_NOTIFY_OFFSET, queue)?;
    }
    let shared: SharedDevice = Arc::new(Mutex::new(transport));
    bus.insert(shared, place.base, board::VIRTIO_MMIO_SIZE)
        .map_err(|source| BuildError::Bus {
            device: name,
            source,
        })?;
    tracing::debug!(
        device = name,
        base = format_args!("{:#x}", place.base),
        spi = place.spi,
        "virtio-mmio device"
    );
    Ok(place)
}
