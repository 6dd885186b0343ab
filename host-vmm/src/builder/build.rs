//! [`build_vm`]: the build sequence, the same on every board.

use std::sync::Arc;

use super::board::{ArchBoard, Board, BootContext, BootDevices, Buses};
use super::error::BuildError;
use super::hotplug::{attach_memory_hotplug, disk_hotplug};
use super::virtio::{attach_boot_devices, attach_hot_slots, hot_places};
use super::BootOptions;
use crate::config::HypervisorConfig;
use crate::devices::Bus;
use crate::kvm::Vm;
use crate::memory::{self, GuestMemoryAtomic};
use crate::vmm::{ExitSignal, Vmm};

/// Assemble a VM from `cfg`, ready to [`Vmm::run`].
pub fn build_vm(cfg: &HypervisorConfig, opts: &BootOptions) -> Result<Vmm, BuildError> {
    // Memory: the board says where the RAM goes (and checks what it needs
    // first: the aarch64 ROM).
    let mem_bytes = memory::mib_to_bytes(cfg.default_memory)?;
    let mut board = ArchBoard::new(cfg, mem_bytes)?;
    let regions = board.ram_regions(mem_bytes)?;
    let mem = memory::create_guest_memory(&regions, cfg.default_memory)?;
    // The map devices should hold to reach hot-plugged RAM too.
    let guest_memory = GuestMemoryAtomic::new(mem.clone());

    // KVM VM with its memory slots, then the board's own setup.
    let vm = Vm::new()?;
    vm.register_memory(&mem)?;
    board.setup_vm(&vm)?;

    // vCPUs and the interrupt controller, in the board's order.
    let mut vcpus = board.create_vcpus(&vm, cfg)?;
    let vm = Arc::new(vm);

    // The console and the legacy devices.
    let exit = ExitSignal::new();
    let mut buses = Buses {
        pio: Bus::new(),
        mmio: Bus::new(),
    };
    board.add_legacy_devices(&vm, &mut buses, opts, &exit)?;
    let Buses { pio, mut mmio } = buses;

    // virtio devices: vsock, then the disks.
    let slots = board.virtio_slots();
    let virtio = attach_boot_devices(&vm, &mut mmio, &guest_memory, &slots, opts)?;

    // Free virtio-mmio slots for disks added while the VM runs; their
    // guest notification shares the GED, which comes with memory hot-plug.
    let hot = if cfg.memory_slots > 0 {
        attach_hot_slots(&mut mmio, &slots, virtio.len())?
    } else {
        None
    };
    let devices = BootDevices {
        virtio,
        hot_virtio: hot_places(hot.as_ref()),
    };

    // Memory hot-plug: DIMMs above the boot RAM, the controller and the GED.
    let place = board.memory_hotplug_place(&vm)?;
    let memory_hotplug = attach_memory_hotplug(&vm, &mut mmio, &guest_memory, cfg, place)?;
    let disk_hotplug = disk_hotplug(&vm, &guest_memory, hot, memory_hotplug.as_ref(), opts);

    // Boot: what the kernel (x86) or the ROM (aarch64) finds.
    let ctx = BootContext {
        vm: &vm,
        mem: &mem,
        guest_memory: &guest_memory,
        mmio: &mut mmio,
        cfg,
        devices: &devices,
    };
    board.boot(ctx, &mut vcpus)?;

    // CPU hot-plug: the controller now, started once the VMM exists.
    let ged = memory_hotplug.as_ref().map(|h| h.ged());
    let cpu_hotplug = board.cpu_hotplug(&vm, &mut mmio, cfg, ged)?;
    board.log_built(cfg);
    let vmm = Vmm::new(vm, mem, vcpus, pio, mmio, exit)
        .with_memory_hotplug(memory_hotplug)
        .with_disk_hotplug(disk_hotplug);
    let cpus = cpu_hotplug
        .map(|start| start(vmm.run_context()))
        .transpose()?;
    Ok(vmm.with_cpu_hotplug(cpus))
}
