//! The virtio-mmio devices of a VM, in the board's slots: vsock, then the
//! disks ([`attach_boot_devices`]), each behind a transport with its
//! window, irqfd and ioeventfds ([`add_virtio`]); the slots left free as
//! hot-plug slots ([`attach_hot_slots`], see `hotplug::disk`).

use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use super::board::{VirtioPlace, VirtioSlots};
use super::error::BuildError;
use super::BootOptions;
use crate::devices::virtio::block::slots::duplicate_serial;
use crate::devices::virtio::block::Block;
use crate::devices::virtio::vsock::{Vsock, DEFAULT_GUEST_CID};
use crate::devices::virtio::{VirtioDevice, VirtioMmioDevice, MMIO_NOTIFY_OFFSET};
use crate::devices::{Bus, SharedDevice};
use crate::hotplug::disk::{hot_slots, HotSlot, PRESENT_REGISTER_SIZE};
use crate::kvm::Vm;
use crate::memory::GuestMemoryAtomic;

/// The vsock device (with a socket), then the disks, in the first slots;
/// their places in slot order.
pub fn attach_boot_devices(
    vm: &Vm,
    mmio: &mut Bus,
    mem: &GuestMemoryAtomic,
    slots: &VirtioSlots,
    opts: &BootOptions,
) -> Result<Vec<VirtioPlace>, BuildError> {
    let mut virtio = Vec::new();
    if let Some(path) = &opts.vsock_socket {
        let vsock = Vsock::new(DEFAULT_GUEST_CID, path).map_err(|source| BuildError::Vsock {
            path: path.clone(),
            source,
        })?;
        let at = virtio.len();
        let device = Box::new(vsock);
        virtio.push(add_virtio(
            vm,
            mmio,
            mem,
            slots,
            "vsock device",
            device,
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
        let device = Box::new(block);
        virtio.push(add_virtio(
            vm,
            mmio,
            mem,
            slots,
            "block device",
            device,
            at,
        )?);
    }
    Ok(virtio)
}

/// Put `device` behind a virtio-mmio transport in slot `index`: MMIO
/// window, irqfd, ioeventfds, bus entry. The boot tables describe it later.
pub fn add_virtio(
    vm: &Vm,
    bus: &mut Bus,
    mem: &GuestMemoryAtomic,
    slots: &VirtioSlots,
    name: &'static str,
    device: Box<dyn VirtioDevice>,
    index: usize,
) -> Result<VirtioPlace, BuildError> {
    let place = (slots.place)(index).ok_or(BuildError::VirtioSlots {
        device: name,
        slots: slots.count,
    })?;
    let transport =
        VirtioMmioDevice::new(device, mem.clone()).map_err(|source| BuildError::VirtioMmio {
            device: name,
            source,
        })?;
    vm.register_irqfd(transport.interrupt_evt(), place.irq)?;
    // Queue notifications go straight to the device's eventfds (ioeventfd).
    for (queue, evt) in transport.queue_evts().iter().enumerate() {
        let queue = u32::try_from(queue).unwrap_or(u32::MAX);
        vm.register_ioevent_mmio(evt, place.base + MMIO_NOTIFY_OFFSET, queue)?;
    }
    let shared: SharedDevice = Arc::new(Mutex::new(transport));
    bus.insert(shared, place.base, slots.window)
        .map_err(|source| BuildError::Bus {
            device: name,
            source,
        })?;
    tracing::debug!(
        device = name,
        base = format_args!("{:#x}", place.base),
        irq = place.irq,
        "virtio-mmio device"
    );
    Ok(place)
}

/// The hot-plug slots and the bits of their present register.
pub type HotSlots = (Vec<HotSlot>, Arc<AtomicU32>);

/// The slots after the first `used` as empty hot-plug slots on the bus,
/// and their present register; `None` if none is left.
pub fn attach_hot_slots(
    bus: &mut Bus,
    slots: &VirtioSlots,
    used: usize,
) -> Result<Option<HotSlots>, BuildError> {
    let places: Vec<_> = (used..slots.count)
        .filter_map(slots.place)
        .map(|p| (p.index, p.base, p.irq))
        .collect();
    if places.is_empty() {
        return Ok(None);
    }
    let (hot, present) = hot_slots(&places);
    for slot in &hot {
        let shared: SharedDevice = slot.device.clone();
        bus.insert(shared, slot.base, slots.window)
            .map_err(|source| BuildError::Bus {
                device: "virtio-mmio hot-plug slot",
                source,
            })?;
    }
    let bits = present.bits();
    let shared: SharedDevice = Arc::new(Mutex::new(present));
    bus.insert(shared, slots.present_base, PRESENT_REGISTER_SIZE)
        .map_err(|source| BuildError::Bus {
            device: slots.present_device,
            source,
        })?;
    Ok(Some((hot, bits)))
}

/// The places of the hot-plug slots, for the boot tables.
pub fn hot_places(hot: Option<&HotSlots>) -> Vec<VirtioPlace> {
    hot.map(|(slots, _)| {
        slots
            .iter()
            .map(|s| VirtioPlace {
                index: s.index,
                base: s.base,
                irq: s.gsi,
            })
            .collect()
    })
    .unwrap_or_default()
}
