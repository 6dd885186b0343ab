//! The one place a VM is assembled from the configuration. Read top to
//! bottom: memory, KVM VM, interrupt controllers, devices, kernel and
//! initrd, ACPI tables, boot parameters, vCPUs.

use std::path::PathBuf;

#[cfg(target_arch = "x86_64")]
use crate::config::HypervisorConfig;
pub use crate::devices::virtio::block::DiskConfig;
#[cfg(target_arch = "x86_64")]
use crate::vmm::Vmm;

/// Boot options that are not part of the configuration file.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Where the guest console goes; stdout when `None`.
    pub console: Option<PathBuf>,
    /// The hybrid vsock socket (`<runtime dir>/vsock.sock`): with it, the VM
    /// gets a virtio-vsock device (guest CID 3) served on this Unix socket.
    pub vsock_socket: Option<PathBuf>,
    /// virtio-blk disks, in order (the guest's vda, vdb, ... when nothing
    /// else claims those names; find them by serial), each in the next
    /// virtio-mmio slot after vsock.
    pub disks: Vec<DiskConfig>,
}

#[cfg(target_arch = "x86_64")]
pub use x86_64::{build_vm, BuildError};

#[cfg(target_arch = "aarch64")]
pub use aarch64::{build_vm, BuildError};

/// The aarch64 board: its pure parts (DSDT, fw_cfg items) build everywhere.
pub mod aarch64;

#[cfg(target_arch = "x86_64")]
mod x86_64 {
    use std::path::PathBuf;
    use std::sync::{Arc, Mutex};

    use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
    use vmm_sys_util::eventfd::EventFd;

    use super::*;
    use crate::acpi::{self, AcpiConfig, AcpiContents, AcpiPorts};
    use crate::arch::x86_64::boot_params::{self, BootParamsError};
    use crate::arch::x86_64::cmdline::{build_cmdline, cmdline_bytes, CmdlineError};
    use crate::arch::x86_64::cpuid::VcpuTopology;
    use crate::arch::x86_64::e820::{self, LayoutError};
    use crate::arch::x86_64::layout::*;
    use crate::arch::x86_64::loader::{self, BootProtocol, LoadError, LoadedKernel};
    use crate::arch::x86_64::regs::{write_boot_tables, EntryMode, RegsError};
    use crate::arch::x86_64::vcpu::{configure_vcpu, BootEntry, VcpuSetupError};
    use crate::devices::acpi_pm::{AcpiPm, ACPI_PM_PORTS};
    use crate::devices::legacy::{ConsoleOutput, SerialAml, SerialConsole, I8042};
    use crate::devices::virtio::acpi::add_virtio_mmio_device;
    use crate::devices::virtio::acpi::{VirtioHotplugAml, VIRTIO_HOTPLUG_SCAN};
    use crate::devices::virtio::block::slots::duplicate_serial;
    use crate::devices::virtio::block::{Block, DiskError};
    use crate::devices::virtio::mmio::MmioError;
    use crate::devices::virtio::vsock::{Vsock, VsockError, DEFAULT_GUEST_CID};
    use crate::devices::{Bus, BusError, SharedDevice};
    use crate::hotplug::disk::DiskHotplug;
    use crate::hotplug::memory::{self as memory_hotplug, HotplugDevices, HotplugSetupError};
    use crate::kvm::{KvmError, Vcpu, Vm};
    use crate::memory::layout::{self as memory_layout, HotplugLayoutInput};
    use crate::memory::{self, GuestMemoryAtomic, GuestMemoryMmap, MemoryError};
    use crate::vmm::ExitSignal;

    mod cpu_hotplug;
    mod virtio_slots;
    use virtio_slots::{add_virtio, attach_hot_slots, VirtioSlot};

    /// Why the VM could not be built. Each names the configuration field
    /// or file at fault where there is one.
    #[derive(Debug, thiserror::Error)]
    pub enum BuildError {
        #[error(transparent)]
        Layout(#[from] LayoutError),
        #[error(transparent)]
        Memory(#[from] MemoryError),
        #[error(transparent)]
        Kvm(#[from] KvmError),
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
        #[error("cannot place the {device} on the I/O bus")]
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
        #[error("no virtio-mmio slot left for the {device} (the layout has {VIRTIO_MMIO_SLOTS})")]
        VirtioSlots { device: &'static str },
        #[error("cannot create the virtio-mmio transport of the {device}")]
        VirtioMmio {
            device: &'static str,
            #[source]
            source: MmioError,
        },
        #[error(transparent)]
        Load(#[from] LoadError),
        #[error("cannot build the ACPI tables")]
        Acpi(#[source] acpi::AcpiError),
        #[error("the ACPI tables end at {end:#x}, past the reserved area ending at {limit:#x}")]
        AcpiTooLarge { end: u64, limit: u64 },
        #[error("cannot write the ACPI table at {addr:#x} to guest memory")]
        AcpiWrite {
            addr: u64,
            #[source]
            source: vm_memory::GuestMemoryError,
        },
        #[error(transparent)]
        Cmdline(#[from] CmdlineError),
        #[error("cannot write the kernel command line to guest memory")]
        CmdlineWrite(#[source] vm_memory::GuestMemoryError),
        #[error(transparent)]
        BootParams(#[from] BootParamsError),
        #[error(transparent)]
        Regs(#[from] RegsError),
        #[error("default_vcpus: cannot set up the vCPUs")]
        VcpuSetup(#[source] VcpuSetupError),
        #[error("default_vcpus: cannot read the CPUID KVM supports")]
        Cpuid(#[source] kvm_ioctls::Error),
        #[error("memory_slots: cannot set up memory hotplug")]
        MemoryHotplug(#[source] HotplugSetupError),
        #[error("cannot register the vCPU kick signal")]
        KickSignal(#[source] vmm_sys_util::errno::Error),
    }

    /// Assemble a VM from `cfg`, ready to [`Vmm::run`].
    pub fn build_vm(cfg: &HypervisorConfig, opts: &BootOptions) -> Result<Vmm, BuildError> {
        tracing::info!(
            memory_mib = cfg.default_memory,
            vcpus = cfg.default_vcpus,
            "building VM"
        );
        // Memory: RAM below the 3 GiB..4 GiB MMIO gap, the rest above 4 GiB.
        let mem_bytes = memory::mib_to_bytes(cfg.default_memory)?;
        let regions = e820::ram_regions(mem_bytes)?;
        let mem = memory::create_guest_memory(&regions, cfg.default_memory)?;
        let low_end = e820::low_ram_end(mem_bytes);
        // The map devices should hold to reach hot-plugged RAM too.
        let guest_memory = GuestMemoryAtomic::new(mem.clone());

        // KVM VM with its memory slots and in-kernel PIC/IOAPIC/LAPIC/PIT.
        let vm = Vm::new()?;
        vm.register_memory(&mem)?;
        vm.setup_irqchip()?;

        // Devices on the port I/O bus.
        let exit = ExitSignal::new();
        let mut pio = Bus::new();
        let console =
            ConsoleOutput::open(opts.console.as_deref()).map_err(|source| BuildError::Console {
                path: opts.console.clone().unwrap_or_default(),
                source,
            })?;
        let serial_irq =
            EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(|source| {
                BuildError::EventFd {
                    device: "serial port",
                    source,
                }
            })?;
        vm.register_irqfd(&serial_irq, SERIAL_IRQ)?;
        let serial =
            SerialConsole::new(serial_irq, console).map_err(|source| BuildError::Console {
                path: opts.console.clone().unwrap_or_default(),
                source,
            })?;
        add_pio(
            &mut pio,
            "serial port",
            serial,
            SERIAL_PORT_BASE,
            SERIAL_PORT_SIZE,
        )?;
        add_pio(
            &mut pio,
            "i8042",
            I8042::new(exit.clone()),
            I8042_PORT_BASE,
            I8042_PORT_SIZE,
        )?;
        add_pio(
            &mut pio,
            "ACPI power device",
            AcpiPm::new(exit.clone()),
            ACPI_SLEEP_CONTROL_PORT,
            ACPI_PM_PORTS as u16,
        )?;

        // virtio devices on the MMIO bus, each with a 4 KiB window and an irqfd.
        let mut mmio = Bus::new();
        let mut virtio = Vec::new();
        if let Some(path) = &opts.vsock_socket {
            let vsock =
                Vsock::new(DEFAULT_GUEST_CID, path).map_err(|source| BuildError::Vsock {
                    path: path.clone(),
                    source,
                })?;
            virtio.push(add_virtio(
                &vm,
                &mut mmio,
                &guest_memory,
                "vsock device",
                Box::new(vsock),
                virtio.len(),
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
            virtio.push(add_virtio(
                &vm,
                &mut mmio,
                &guest_memory,
                "block device",
                Box::new(block),
                virtio.len(),
            )?);
        }

        // Free virtio-mmio slots for disks added while the VM runs; their
        // guest notification shares the GED, which comes with memory hot-plug.
        let hot_slots = if cfg.memory_slots > 0 {
            attach_hot_slots(&mut mmio, virtio.len())?
        } else {
            None
        };

        // Kernel and initrd.
        let kernel = loader::load_kernel(&mem, &cfg.kernel, low_end, cfg.default_memory)?;
        let initrd = cfg
            .initrd
            .as_deref()
            .map(|p| loader::load_initrd(&mem, p, &kernel, low_end, cfg.default_memory))
            .transpose()?;

        // ACPI tables (the VMM is the firmware).
        let hot_places: Vec<VirtioSlot> = hot_slots
            .as_ref()
            .map(|(slots, _)| {
                slots
                    .iter()
                    .map(|s| VirtioSlot {
                        base: s.base,
                        gsi: s.gsi,
                    })
                    .collect()
            })
            .unwrap_or_default();
        let rsdp_addr = write_acpi_tables(&mem, cfg, &virtio, &hot_places)?;

        // Boot parameters: command line, zero page or PVH start info, GDT
        // and page tables.
        let max_cmdline = match kernel.protocol {
            BootProtocol::Linux64(hdr) if hdr.cmdline_size > 0 => hdr.cmdline_size as usize,
            _ => CMDLINE_MAX_SIZE - 1,
        }
        .min(CMDLINE_MAX_SIZE - 1);
        let line = build_cmdline(&cfg.kernel_params, max_cmdline)?;
        tracing::debug!(cmdline = %line, "kernel command line");
        mem.write_slice(&cmdline_bytes(&line), GuestAddress(CMDLINE_START))
            .map_err(BuildError::CmdlineWrite)?;
        let e820 = e820::e820_map(mem_bytes)?;
        let mode = write_boot_params(&mem, &kernel, initrd, &e820, rsdp_addr)?;
        write_boot_tables(&mem, mode)?;

        // vCPUs: the boot vCPU starts at the kernel entry, the others wait for SIPI.
        let supported = vm
            .kvm()
            .get_supported_cpuid(kvm_bindings::KVM_MAX_CPUID_ENTRIES)
            .map_err(BuildError::Cpuid)?;
        let mut vcpus = Vec::new();
        for index in 0..cfg.default_vcpus {
            let fd = vm.create_vcpu(index)?;
            let topo = VcpuTopology {
                index,
                max_vcpus: cfg.default_maxvcpus.max(cfg.default_vcpus),
            };
            let boot = (index == 0).then_some(BootEntry {
                mode,
                entry: kernel.entry.0,
            });
            configure_vcpu(&fd, &supported, topo, boot).map_err(BuildError::VcpuSetup)?;
            vcpus.push(Vcpu { index, fd });
        }
        // Memory hot-plug: the controller and the GED on the MMIO bus; the CPU
        // hot-plug controller next to them.
        let vm = Arc::new(vm);
        let hotplug = attach_memory_hotplug(&vm, &mut mmio, &guest_memory, cfg, &supported)?;
        let cpu_controller = match (cpu_hotplug::enabled(cfg), &hotplug) {
            (Some(limits), Some(_)) => {
                Some((limits, cpu_hotplug::attach_controller(&mut mmio, limits)?))
            }
            _ => None,
        };
        let disk_hotplug = match (hot_slots, &hotplug) {
            (Some((slots, present)), Some(h)) => Some(Arc::new(DiskHotplug::new(
                vm.clone(),
                guest_memory.clone(),
                h.ged(),
                slots,
                present,
                opts.disks
                    .iter()
                    .filter(|d| !d.serial.is_empty())
                    .map(|d| d.serial.clone())
                    .collect(),
            ))),
            _ => None,
        };
        tracing::info!(
            vcpus = cfg.default_vcpus,
            memory_mib = cfg.default_memory,
            kernel = %cfg.kernel.display(),
            "VM built"
        );
        let ged = hotplug.as_ref().map(|h| h.ged());
        let vmm = Vmm::new(vm.clone(), mem, vcpus, pio, mmio, exit)
            .with_memory_hotplug(hotplug)
            .with_disk_hotplug(disk_hotplug);
        let cpus = match (cpu_controller, ged) {
            (Some((limits, controller)), Some(ged)) => Some(cpu_hotplug::handle(
                &vm,
                &supported,
                limits,
                controller,
                ged,
                vmm.run_context(),
            )?),
            _ => None,
        };
        Ok(vmm.with_cpu_hotplug(cpus))
    }

    /// With `memory_slots` > 0: the hot-plug region above the boot RAM
    /// (within `default_maxmemory` and the guest's physical address bits),
    /// its controller and GED. The DSDT part is added by [`write_acpi_tables`].
    fn attach_memory_hotplug(
        vm: &Arc<Vm>,
        mmio: &mut Bus,
        guest_memory: &GuestMemoryAtomic,
        cfg: &HypervisorConfig,
        supported: &kvm_bindings::CpuId,
    ) -> Result<Option<Arc<memory_hotplug::MemoryHotplug>>, BuildError> {
        if cfg.memory_slots == 0 {
            return Ok(None);
        }
        // CPUID 0x80000008 EAX[7:0]: physical address bits.
        let phys_bits = supported
            .as_slice()
            .iter()
            .find(|e| e.function == 0x8000_0008)
            .map_or(memory_layout::FALLBACK_PHYS_BITS, |e| (e.eax & 0xff) as u8);
        let mem = guest_memory.memory();
        let region = memory_layout::hotplug_region(&HotplugLayoutInput {
            boot_bytes: memory::total_size(&mem),
            boot_ram_end: memory::end_address(&mem),
            max_bytes: memory::mib_to_bytes(cfg.default_maxmemory)?,
            slots: cfg.memory_slots,
            min_start: HOTPLUG_MIN_START,
            phys_bits,
            block_size: memory_layout::GUEST_MEMORY_BLOCK_SIZE,
        });
        let at = HotplugDevices {
            controller_base: MEMORY_HOTPLUG_MMIO_BASE,
            ged_base: GED_MMIO_BASE,
            ged_gsi: GED_GSI,
        };
        memory_hotplug::attach(vm, mmio, guest_memory, region, at)
            .map(Some)
            .map_err(BuildError::MemoryHotplug)
    }

    fn add_pio(
        bus: &mut Bus,
        device: &'static str,
        dev: impl crate::devices::BusDevice + 'static,
        base: u16,
        len: u16,
    ) -> Result<(), BuildError> {
        let shared: SharedDevice = Arc::new(Mutex::new(dev));
        bus.insert(shared, u64::from(base), u64::from(len))
            .map_err(|source| BuildError::Bus { device, source })
    }

    /// Ports the FADT points at: the ones the ACPI power device listens on.
    pub(crate) fn acpi_ports() -> AcpiPorts {
        AcpiPorts {
            sleep_control: ACPI_SLEEP_CONTROL_PORT,
            sleep_status: ACPI_SLEEP_STATUS_PORT,
            reset: ACPI_RESET_PORT,
        }
    }

    /// Build the ACPI tables, copy them into guest memory, return the RSDP address.
    fn write_acpi_tables(
        mem: &GuestMemoryMmap,
        cfg: &HypervisorConfig,
        virtio: &[VirtioSlot],
        hot: &[VirtioSlot],
    ) -> Result<u64, BuildError> {
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
        for (i, slot) in virtio.iter().enumerate() {
            // The layout keeps every window below 4 GiB and fewer than 256 slots.
            let base = u32::try_from(slot.base).unwrap_or(u32::MAX);
            add_virtio_mmio_device(&mut contents.dsdt, i as u8, base, slot.gsi);
        }
        // Hot slots are numbered after the boot devices (all in the 32-bit gap).
        let hot_aml = VirtioHotplugAml {
            present_base: VIRTIO_HOTPLUG_MMIO_BASE as u32,
            slots: hot
                .iter()
                .enumerate()
                .map(|(i, s)| ((virtio.len() + i) as u8, s.base as u32, s.gsi))
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
        let tables =
            acpi::create_acpi_tables_with(&acpi_cfg, contents).map_err(BuildError::Acpi)?;
        let (_, end) = tables.tables_range();
        let limit = ACPI_TABLES_ADDR + ACPI_TABLES_MAX_SIZE;
        if end > limit {
            return Err(BuildError::AcpiTooLarge { end, limit });
        }
        for (addr, bytes) in &tables.blobs {
            mem.write_slice(bytes, GuestAddress(*addr))
                .map_err(|source| BuildError::AcpiWrite {
                    addr: *addr,
                    source,
                })?;
        }
        Ok(tables.rsdp_addr)
    }

    /// Write the zero page (bzImage) or the PVH start info; return how the
    /// boot vCPU enters the kernel.
    fn write_boot_params(
        mem: &GuestMemoryMmap,
        kernel: &LoadedKernel,
        initrd: Option<loader::LoadedInitrd>,
        e820: &[e820::E820Entry],
        rsdp_addr: u64,
    ) -> Result<EntryMode, BuildError> {
        match kernel.protocol {
            BootProtocol::Linux64(hdr) => {
                let params =
                    boot_params::linux_boot_params(&hdr, CMDLINE_START, initrd, e820, rsdp_addr)?;
                boot_params::write_linux_boot_params(mem, &params)?;
                Ok(EntryMode::Long64)
            }
            BootProtocol::Pvh => {
                let info = boot_params::pvh_boot_info(CMDLINE_START, initrd, e820, rsdp_addr)?;
                boot_params::write_pvh_boot_info(mem, &info)?;
                Ok(EntryMode::Pvh32)
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn test_acpi_ports_match_the_acpi_module_defaults() {
            assert_eq!(acpi_ports(), AcpiPorts::default());
        }
    }
}
