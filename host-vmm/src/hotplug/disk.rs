//! Hot-add of virtio-blk disks to a running VM.
//!
//! At boot the VM gets a pool of empty virtio-mmio slots (the windows and
//! GSIs after the boot devices), each an [`EmptySlot`] on the MMIO bus
//! (reads as zeros: no device), and one present-bitmap register
//! ([`PresentRegister`], bit n = hot slot n holds a device). The DSDT
//! declares every slot as an `LNRO0005` device inside a container device
//! (`\_SB_.VHPC`, PNP0A06) whose `_STA` reads that bit (see
//! `devices::virtio::acpi::VirtioHotplugAml`).
//!
//! [`DiskHotplug::add`] opens the disk, puts a virtio-mmio transport in the
//! first free slot, registers its irqfd and queue ioeventfds with KVM,
//! sets the slot's present bit and raises the GED interrupt with
//! [`GED_EVENT_VIRTIO`]. The guest's GED `_EVT` then sends a Bus Check to
//! the container; Linux's container scan handler rescans its children,
//! finds the new `_STA` = present device and binds virtio-mmio to it, and
//! the disk appears as the next `vdX` (find it by serial).
//!
//! [`DiskHotplug::remove`] clears the slot's present bit and raises the GED
//! again (the Bus Check makes Linux re-evaluate `_STA`: the ACPI device is
//! marked absent), then waits, with a deadline, until the guest's driver
//! has let go of the device: the virtio status register no longer has
//! DRIVER (Linux's virtio removal resets the device and acknowledges it
//! again, see [`driver_holds`]). Linux 6.12 never unregisters an ACPI-enumerated platform device
//! on `_STA` = 0 or on an eject (see ARCHITECTURE.md), so the guest agent
//! unbinds the virtio-mmio driver itself when it removes the container that
//! used the disk, and binds it again when a later disk lands in the slot.
//! Only then does the transport leave the window, its irqfd and ioeventfds
//! are unregistered, the file is closed and the slot is free.
//!
//! Serials: see [`super::slots`].
//!
//! Needs the GED, which comes with memory hot-plug (`memory_slots` > 0).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::devices::acpi::ged::{GedNotifier, GED_EVENT_VIRTIO};
use crate::devices::virtio::block::slots::{SlotError, SlotState, SlotTable};
use crate::devices::virtio::block::{serial_id, Block, DiskConfig, DiskError};
use crate::devices::virtio::mmio::{MmioError, VirtioMmioDevice, MMIO_NOTIFY_OFFSET};
use crate::devices::virtio::status;
use crate::devices::BusDevice;
use crate::kvm::{KvmError, Vm};
use crate::memory::GuestMemoryAtomic;

/// Bytes of the present-bitmap register window.
pub const PRESENT_REGISTER_SIZE: u64 = 4;
/// Most hot slots (bits of the present register).
pub const MAX_HOT_SLOTS: usize = 32;

/// The present bitmap as the guest reads it (4-byte reads at offset 0).
#[derive(Debug, Default)]
pub struct PresentRegister {
    bits: Arc<AtomicU32>,
}

impl PresentRegister {
    /// The bitmap, shared with [`DiskHotplug`].
    pub fn bits(&self) -> Arc<AtomicU32> {
        self.bits.clone()
    }
}

impl BusDevice for PresentRegister {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if offset == 0 && data.len() == 4 {
            data.copy_from_slice(&self.bits.load(Ordering::SeqCst).to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        crate::guest_warn!(
            offset,
            len = data.len(),
            "virtio hotplug: write to the read-only present register ignored"
        );
    }
}

/// A virtio-mmio window that may hold a device: empty until a hot-add.
#[derive(Default)]
pub struct EmptySlot {
    device: Option<VirtioMmioDevice>,
}

impl BusDevice for EmptySlot {
    fn read(&mut self, base: u64, offset: u64, data: &mut [u8]) {
        match &mut self.device {
            Some(d) => d.read(base, offset, data),
            None => data.fill(0),
        }
    }

    fn write(&mut self, base: u64, offset: u64, data: &[u8]) {
        if let Some(d) = &mut self.device {
            d.write(base, offset, data);
        }
    }
}

/// One hot slot: its place and its bus device.
pub struct HotSlot {
    /// Virtio-mmio device number (`_UID`, `VRnn`).
    pub index: usize,
    pub base: u64,
    pub gsi: u32,
    pub device: Arc<Mutex<EmptySlot>>,
}

/// What a hot-add did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotAdded {
    /// Hot slot number (bit in the present register).
    pub slot: usize,
    pub base: u64,
    pub gsi: u32,
    /// Disk size in 512-byte sectors.
    pub sectors: u64,
    /// The serial the guest finds it by (the VMM's when the request gave none).
    pub serial: String,
}

/// What a removal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotRemoved {
    pub slot: usize,
    pub serial: String,
    pub owner: Option<String>,
    /// How long the guest took to let go.
    pub waited: Duration,
}

/// A hot-added disk as [`DiskHotplug::disks`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HotDisk {
    pub slot: usize,
    pub serial: String,
    pub owner: Option<String>,
    /// Being removed (waiting for the guest).
    pub removing: bool,
}

/// Why a disk could not be hot-added or removed.
#[derive(Debug, thiserror::Error)]
pub enum DiskHotplugError {
    #[error(transparent)]
    Slot(#[from] SlotError),
    #[error(transparent)]
    Disk(#[from] DiskError),
    #[error("cannot create the virtio-mmio transport")]
    Mmio(#[source] MmioError),
    #[error("cannot wire the disk's interrupt or notifications")]
    Kvm(#[source] KvmError),
    #[error("cannot raise the GED interrupt")]
    Notify(#[source] std::io::Error),
    #[error(
        "the guest still uses disk {serial:?} after {waited:?} (its virtio driver is still \
         bound): unmount it and unbind it in the guest first (the agent does this \
         when the container that uses it is deleted)"
    )]
    NotReleased { serial: String, waited: Duration },
}

/// The hot slots of one VM.
pub struct DiskHotplug {
    vm: Arc<Vm>,
    mem: GuestMemoryAtomic,
    ged: Arc<GedNotifier>,
    present: Arc<AtomicU32>,
    slots: Vec<HotSlot>,
    /// Which slot holds which serial; also serialises slot choice and
    /// KVM (un)registration.
    table: Mutex<SlotTable>,
}

/// Empty slot devices and the present register for `places` (index,
/// base, gsi), to put on the MMIO bus at boot, at most [`MAX_HOT_SLOTS`].
pub fn hot_slots(places: &[(usize, u64, u32)]) -> (Vec<HotSlot>, PresentRegister) {
    let slots = places
        .iter()
        .take(MAX_HOT_SLOTS)
        .map(|&(index, base, gsi)| HotSlot {
            index,
            base,
            gsi,
            device: Arc::new(Mutex::new(EmptySlot::default())),
        })
        .collect();
    (slots, PresentRegister::default())
}

/// How often a removal looks whether the guest has let go.
const RELEASE_POLL: Duration = Duration::from_millis(10);

impl DiskHotplug {
    /// `boot_serials`: the serials of the boot disks (no hot disk may reuse them).
    pub fn new(
        vm: Arc<Vm>,
        mem: GuestMemoryAtomic,
        ged: Arc<GedNotifier>,
        slots: Vec<HotSlot>,
        present: Arc<AtomicU32>,
        boot_serials: Vec<String>,
    ) -> Self {
        let table = SlotTable::new(slots.len(), boot_serials);
        Self {
            vm,
            mem,
            ged,
            present,
            slots,
            table: Mutex::new(table),
        }
    }

    fn table(&self) -> MutexGuard<'_, SlotTable> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hot slots in all and in use (being removed counts as in use).
    pub fn usage(&self) -> (usize, usize) {
        self.table().usage()
    }

    /// The hot-added disks, by slot.
    pub fn disks(&self) -> Vec<HotDisk> {
        self.table()
            .states()
            .iter()
            .enumerate()
            .filter_map(|(slot, s)| {
                let (d, removing) = match s {
                    SlotState::Free => return None,
                    SlotState::Used(d) => (d, false),
                    SlotState::Removing(d) => (d, true),
                };
                Some(HotDisk {
                    slot,
                    serial: d.serial.clone(),
                    owner: d.owner.clone(),
                    removing,
                })
            })
            .collect()
    }

    /// Attach `cfg` in the first free slot and tell the guest. An empty
    /// serial gets a fresh one; a serial another live disk has is refused.
    /// `owner`: the container whose rootfs it is, if any (listed, and named
    /// when a removal is refused).
    pub fn add(&self, cfg: &DiskConfig, owner: Option<&str>) -> Result<HotAdded, DiskHotplugError> {
        let mut table = self.table();
        let mut cfg = cfg.clone();
        if cfg.serial.is_empty() {
            cfg.serial = table.fresh_serial();
        }
        // Check the serial's form before it takes a slot.
        serial_id(&cfg.serial)?;
        let slot = table.reserve(&cfg.serial, owner)?;
        match self.attach(slot, &cfg) {
            Ok(added) => Ok(added),
            Err(e) => {
                table.release(slot);
                Err(e)
            }
        }
    }

    fn attach(&self, slot: usize, cfg: &DiskConfig) -> Result<HotAdded, DiskHotplugError> {
        let place = &self.slots[slot];
        let block = Block::new(cfg)?;
        let sectors = block.capacity();
        let transport = VirtioMmioDevice::new(Box::new(block), self.mem.clone())
            .map_err(DiskHotplugError::Mmio)?;
        self.vm
            .register_irqfd(transport.interrupt_evt(), place.gsi)
            .map_err(DiskHotplugError::Kvm)?;
        for (queue, evt) in transport.queue_evts().iter().enumerate() {
            let queue = u32::try_from(queue).unwrap_or(u32::MAX);
            if let Err(e) =
                self.vm
                    .register_ioevent_mmio(evt, place.base + MMIO_NOTIFY_OFFSET, queue)
            {
                self.unwire(place, &transport);
                return Err(DiskHotplugError::Kvm(e));
            }
        }
        place
            .device
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .device = Some(transport);
        self.present.fetch_or(1 << slot, Ordering::SeqCst);
        self.ged
            .notify(GED_EVENT_VIRTIO)
            .map_err(DiskHotplugError::Notify)?;
        tracing::info!(
            slot,
            base = format_args!("{:#x}", place.base),
            gsi = place.gsi,
            disk = %cfg.path.display(),
            serial = cfg.serial,
            "disk hot-added"
        );
        Ok(HotAdded {
            slot,
            base: place.base,
            gsi: place.gsi,
            sectors,
            serial: cfg.serial.clone(),
        })
    }

    /// Unregister a transport's irqfd and queue ioeventfds (failures are
    /// logged: the eventfds close with the transport anyway).
    fn unwire(&self, place: &HotSlot, transport: &VirtioMmioDevice) {
        for (queue, evt) in transport.queue_evts().iter().enumerate() {
            let queue = u32::try_from(queue).unwrap_or(u32::MAX);
            if let Err(e) =
                self.vm
                    .unregister_ioevent_mmio(evt, place.base + MMIO_NOTIFY_OFFSET, queue)
            {
                tracing::debug!(slot = place.index, "queue notification: {e}");
            }
        }
        if let Err(e) = self
            .vm
            .unregister_irqfd(transport.interrupt_evt(), place.gsi)
        {
            tracing::debug!(slot = place.index, "interrupt: {e}");
        }
    }

    /// Remove the disk with `serial`: its slot reads absent (`_STA` = 0)
    /// and the guest gets a Bus Check; once the guest's driver has let go
    /// ([`driver_holds`] is false) the transport leaves the
    /// window, its interrupt and notifications are unregistered, the file
    /// is closed and the slot is free. If the guest still drives the device
    /// after `deadline`, the disk is put back as it was and
    /// [`DiskHotplugError::NotReleased`] says so.
    pub fn remove(&self, serial: &str, deadline: Duration) -> Result<HotRemoved, DiskHotplugError> {
        let (slot, disk) = self.table().begin_remove(serial)?;
        let place = &self.slots[slot];
        self.present.fetch_and(!(1 << slot), Ordering::SeqCst);
        if let Err(e) = self.ged.notify(GED_EVENT_VIRTIO) {
            tracing::warn!(slot, "disk removal: cannot raise the GED: {e}");
        }
        let started = Instant::now();
        let transport = loop {
            if let Ok(t) = take_if_released(&place.device) {
                break t;
            }
            if started.elapsed() >= deadline {
                // Present again, and the guest's ACPI view with it.
                self.present.fetch_or(1 << slot, Ordering::SeqCst);
                if let Err(e) = self.ged.notify(GED_EVENT_VIRTIO) {
                    tracing::warn!(slot, "disk removal: cannot raise the GED: {e}");
                }
                self.table().cancel_remove(slot);
                return Err(DiskHotplugError::NotReleased {
                    serial: serial.to_string(),
                    waited: started.elapsed(),
                });
            }
            std::thread::sleep(RELEASE_POLL);
        };
        let waited = started.elapsed();
        let mut table = self.table();
        if let Some(t) = transport {
            self.unwire(place, &t);
            // Stops the device's worker (if any) and closes the file.
            drop(t);
        }
        table.finish_remove(slot);
        tracing::info!(slot, serial, ?waited, "disk removed");
        Ok(HotRemoved {
            slot,
            serial: disk.serial,
            owner: disk.owner,
            waited,
        })
    }
}

/// The guest still drives the device in a slot.
struct InUse;

/// Whether a guest driver holds a device with this status: DRIVER set and
/// not FAILED. Linux's virtio-mmio removal resets the device (0) and then
/// acknowledges it again (`virtio_dev_remove`: ACKNOWLEDGE only), so an
/// unbound device reads 0 or ACKNOWLEDGE.
pub fn driver_holds(device_status: u32) -> bool {
    device_status & status::DRIVER != 0 && device_status & status::FAILED == 0
}

/// The slot's transport, taken out of the window, if the guest has let go
/// of it (see [`driver_holds`]); the check and the take happen under the
/// lock the vCPUs' accesses take.
fn take_if_released(slot: &Mutex<EmptySlot>) -> Result<Option<VirtioMmioDevice>, InUse> {
    let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
    match &slot.device {
        Some(d) if driver_holds(d.status()) => Err(InUse),
        _ => Ok(slot.device.take()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_present_register_and_empty_slot_read_as_nothing() {
        let (slots, mut reg) = hot_slots(&[(1, 0xd000_1000, 6), (2, 0xd000_2000, 7)]);
        assert_eq!(slots.len(), 2);
        let mut b = [0xffu8; 4];
        reg.read(0, 0, &mut b);
        assert_eq!(b, [0; 4]);
        reg.bits.store(0b10, Ordering::SeqCst);
        reg.read(0, 0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0b10);
        let mut b2 = [0xffu8; 2];
        reg.read(0, 0, &mut b2);
        assert_eq!(b2, [0; 2]);
        reg.write(0, 0, &[1, 2, 3, 4]);
        reg.read(0, 0, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0b10, "writes ignored");
        let mut slot = slots[0].device.lock().unwrap();
        let mut magic = [0xffu8; 4];
        slot.read(0, 0, &mut magic);
        assert_eq!(magic, [0; 4], "no virtio magic in an empty slot");
        slot.write(0, 0x70, &[1, 0, 0, 0]);
    }

    /// A stub guest (no Linux) polls the GED while the host hot-adds a
    /// disk from another thread, then prints the GED event bits, the
    /// present bitmap, the first byte of the slot's magic and its device ID.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn test_stub_guest_sees_disk_hot_add_while_running() {
        use crate::arch::x86_64::layout::{
            GED_MMIO_BASE, VIRTIO_HOTPLUG_MMIO_BASE, VIRTIO_MMIO_BASE, VIRTIO_MMIO_SLOTS,
        };
        use crate::arch::x86_64::test_utils::stub_bzimage;
        use crate::builder::{build_vm, BootOptions};
        use crate::config::HypervisorConfig;
        use crate::vmm::GuestExit;

        assert!(
            std::path::Path::new("/dev/kvm").exists(),
            "this test needs /dev/kvm, which this host does not have"
        );
        let mut code = vec![0x48, 0xbb]; // mov rbx, GED
        code.extend_from_slice(&GED_MMIO_BASE.to_le_bytes());
        code.extend_from_slice(&[0x8b, 0x03, 0x85, 0xc0, 0x74, 0xfa]); // 1: mov eax,[rbx]; test; jz 1b
        code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03, 0x04, b'0', 0xee]); // dx=COM1; al+='0'; out
        code.extend_from_slice(&[0x48, 0xbb]); // mov rbx, present register
        code.extend_from_slice(&VIRTIO_HOTPLUG_MMIO_BASE.to_le_bytes());
        code.extend_from_slice(&[0x8b, 0x03, 0x04, b'0', 0xee]); // mov eax,[rbx]; al+='0'; out
        code.extend_from_slice(&[0x48, 0xbb]); // mov rbx, slot 0's window
        code.extend_from_slice(&VIRTIO_MMIO_BASE.to_le_bytes());
        code.extend_from_slice(&[0x8b, 0x03, 0xee]); // mov eax,[rbx] (magic); out ('v')
        code.extend_from_slice(&[0x8b, 0x43, 0x08, 0x04, b'0', 0xee]); // device ID; al+='0'; out
        code.extend_from_slice(&[0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee]); // ACPI S5

        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let kernel = dir.as_path().join("bzImage");
        std::fs::write(&kernel, stub_bzimage(&code)).unwrap();
        let disk = dir.as_path().join("disk.img");
        std::fs::write(&disk, vec![0u8; 4096]).unwrap();
        let cfg = HypervisorConfig {
            kernel,
            initrd: None,
            image: None,
            firmware: None,
            kernel_params: String::new(),
            default_vcpus: 1,
            default_maxvcpus: 1,
            default_root_ports: 0,
            default_bridges: 0,
            default_memory: 64,
            memory_slots: 1,
            default_maxmemory: 1024,
        };
        let opts = BootOptions {
            console: Some(dir.as_path().join("console")),
            ..Default::default()
        };
        let vmm = build_vm(&cfg, &opts).unwrap();
        let hp = vmm.disk_hotplug().expect("hot slots with memory_slots > 0");
        let disk_cfg = DiskConfig {
            path: disk.clone(),
            read_only: true,
            serial: "hot".into(),
        };
        let adder = {
            let hp = hp.clone();
            let cfg = disk_cfg.clone();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(200));
                hp.add(&cfg, Some("c1"))
            })
        };
        let exit = vmm.run().unwrap();
        let added = adder.join().unwrap().unwrap();
        let console = std::fs::read_to_string(dir.as_path().join("console")).unwrap();
        assert_eq!(exit, GuestExit::PowerOff);
        assert_eq!(
            (added.slot, added.base, added.sectors, added.serial.as_str()),
            (0, VIRTIO_MMIO_BASE, 8, "hot")
        );
        // GED event 2 (virtio), present bits 1, magic "v...", device ID 2.
        assert_eq!(console, "21v2");
        // A bad serial takes no slot; neither does one already in use.
        let bad = DiskConfig {
            serial: "has space".into(),
            ..disk_cfg.clone()
        };
        assert!(matches!(hp.add(&bad, None), Err(DiskHotplugError::Disk(_))));
        let e = hp.add(&disk_cfg, None).unwrap_err();
        assert!(
            matches!(e, DiskHotplugError::Slot(SlotError::SerialInUse { .. })),
            "{e}"
        );
        assert_eq!(hp.usage(), (8, 1));
        // Without a serial the VMM hands out fresh ones; the pool runs out after all 8.
        let unnamed = DiskConfig {
            serial: String::new(),
            ..disk_cfg.clone()
        };
        let mut serials = vec![added.serial.clone()];
        for _ in 1..VIRTIO_MMIO_SLOTS {
            serials.push(hp.add(&unnamed, None).unwrap().serial);
        }
        assert_eq!(hp.usage(), (8, 8));
        let e = hp.add(&unnamed, None).unwrap_err();
        assert!(
            matches!(e, DiskHotplugError::Slot(SlotError::NoSlot { slots: 8 })),
            "{e}"
        );
        let mut unique = serials.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), serials.len(), "{serials:?}");
        assert_eq!(hp.disks()[0].owner.as_deref(), Some("c1"));

        // A guest whose driver holds the device (ACKNOWLEDGE | DRIVER)
        // keeps it: the removal times out, the disk stays present.
        let slot0 = hp.slots[0].device.clone();
        slot0.lock().unwrap().write(0, 0x70, &1u32.to_le_bytes());
        slot0.lock().unwrap().write(0, 0x70, &3u32.to_le_bytes());
        let e = hp.remove("hot", Duration::from_millis(50)).unwrap_err();
        assert!(matches!(e, DiskHotplugError::NotReleased { .. }), "{e}");
        assert!(e.to_string().contains("\"hot\""), "{e}");
        assert_eq!(hp.present.load(Ordering::SeqCst) & 1, 1);
        assert!(!hp.disks()[0].removing);
        // Unbound as Linux does it (reset, then ACKNOWLEDGE again): removed,
        // slot 0 empty and free again.
        slot0.lock().unwrap().write(0, 0x70, &0u32.to_le_bytes());
        slot0.lock().unwrap().write(0, 0x70, &1u32.to_le_bytes());
        let removed = hp.remove("hot", Duration::from_secs(5)).unwrap();
        assert_eq!((removed.slot, removed.owner.as_deref()), (0, Some("c1")));
        assert_eq!(hp.present.load(Ordering::SeqCst) & 1, 0);
        let mut magic = [0xffu8; 4];
        slot0.lock().unwrap().read(0, 0, &mut magic);
        assert_eq!(magic, [0; 4], "an empty window after removal");
        assert!(matches!(
            hp.remove("hot", Duration::ZERO),
            Err(DiskHotplugError::Slot(SlotError::Unknown { .. }))
        ));
        // 100 add/remove cycles through the same slot: the KVM
        // registrations are undone each time (a leftover ioeventfd would
        // make the next registration fail), the serial can be reused.
        for i in 0..100 {
            let a = hp.add(&disk_cfg, Some(&format!("c{i}"))).unwrap();
            assert_eq!(a.slot, 0);
            hp.remove("hot", Duration::from_secs(5)).unwrap();
        }
        assert_eq!(hp.usage(), (8, 7));
    }

    /// The guest's only levers on hot-plug state are the present register (read-only) and
    /// the slot windows: garbage at any offset and length panics nothing and changes
    /// nothing.
    #[test]
    fn test_guest_garbage_on_present_register_and_empty_slots() {
        let (slots, mut reg) = hot_slots(&[(1, 0xd000_1000, 6)]);
        reg.bits.store(0b1, Ordering::SeqCst);
        let mut slot = slots[0].device.lock().unwrap();
        for offset in [0u64, 1, 3, 4, 0x70, 0xfff, 0x1000, u64::MAX - 3, u64::MAX] {
            for len in [0usize, 1, 2, 3, 4, 8, 64] {
                let garbage = vec![0xa5u8; len];
                reg.write(0, offset, &garbage);
                slot.write(0, offset, &garbage);
                let mut back = vec![0x5au8; len];
                slot.read(0, offset, &mut back);
                assert!(
                    back.iter().all(|&b| b == 0),
                    "empty slot read {offset:#x}+{len}"
                );
                reg.read(0, offset, &mut back);
            }
        }
        assert_eq!(
            reg.bits.load(Ordering::SeqCst),
            0b1,
            "present bits unchanged"
        );
        assert!(slot.device.is_none());
    }

    #[test]
    fn test_driver_holds_only_with_driver_and_not_failed() {
        use status::*;
        assert!(!driver_holds(0));
        assert!(!driver_holds(ACKNOWLEDGE));
        assert!(driver_holds(ACKNOWLEDGE | DRIVER));
        assert!(driver_holds(ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK));
        assert!(!driver_holds(ACKNOWLEDGE | DRIVER | FAILED));
        assert!(driver_holds(!FAILED));
    }

    #[test]
    fn test_hot_slots_capped() {
        let places: Vec<_> = (0..40).map(|i| (i, 0x1000 * i as u64, i as u32)).collect();
        assert_eq!(hot_slots(&places).0.len(), MAX_HOT_SLOTS);
    }
}
