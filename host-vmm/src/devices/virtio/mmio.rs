//! The virtio-mmio transport, version 2 (virtio 1.2, 4.2.2): a 4 KiB
//! register window in front of a [`VirtioDevice`].
//!
//! Register accesses arrive on vCPU threads through the MMIO [`Bus`]
//! (crate::devices::Bus), which holds this device's lock for the access.
//! Every access is checked: registers are 32-bit and aligned, writes are
//! only honoured in the device status that allows them, queue sizes must be
//! powers of two no larger than the device's maximum, and queue rings must
//! lie in guest RAM. A bad access is logged (rate-limited) and ignored; a
//! device that cannot start is marked DEVICE_NEEDS_RESET. Nothing panics.
//!
//! Notifications: a QueueNotify write signals that queue's eventfd. The
//! builder may instead register the same eventfds as KVM ioeventfds at
//! `base + MMIO_NOTIFY_OFFSET` (4 bytes, datamatch = queue index), so
//! notifications skip the vCPU exit; both paths end in the same eventfd.

use std::sync::Arc;

use virtio_bindings::virtio_mmio as r;
use virtio_queue::{Queue, QueueT};
use vm_memory::{GuestAddress, GuestAddressSpace, GuestMemoryBackend};
use vmm_sys_util::eventfd::EventFd;

use super::device::{DeviceQueues, VirtioDevice, VirtioInterrupt};
use super::{irq, status, VIRTIO_F_VERSION_1};
use crate::devices::BusDevice;
use crate::guest_warn;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// Size of one device's MMIO window.
pub const MMIO_WINDOW_SIZE: u64 = 0x1000;
/// Offset of QueueNotify in the window: where an ioeventfd goes.
pub const MMIO_NOTIFY_OFFSET: u64 = r::VIRTIO_MMIO_QUEUE_NOTIFY as u64;
/// "virt" in little endian.
pub const MMIO_MAGIC: u32 = 0x7472_6976;
/// Transport version: 2 = virtio 1.x (non-legacy).
pub const MMIO_VERSION: u32 = 2;
/// Our vendor ID ("HVMM" is arbitrary; the spec leaves it to the device).
pub const MMIO_VENDOR_ID: u32 = 0x4d4d_5648;
/// Start of the device configuration space in the window.
pub const MMIO_CONFIG_OFFSET: u64 = r::VIRTIO_MMIO_CONFIG as u64;

/// The kernel command-line parameter that declares a virtio-mmio device
/// at `base` with interrupt `irq` (Linux `virtio_mmio.device=`), for
/// guests without an ACPI/DT description of it.
pub fn kernel_cmdline_device(base: u64, irq: u32) -> String {
    format!("virtio_mmio.device=4K@{base:#x}:{irq}")
}

/// Feature bit VIRTIO_RING_F_EVENT_IDX.
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// Why the transport could not be created.
#[derive(Debug, thiserror::Error)]
pub enum MmioError {
    #[error("queue {index}: invalid maximum size {size} (a power of two up to 32768 is needed)")]
    QueueMaxSize { index: usize, size: u16 },
    #[error("the device offers no queues")]
    NoQueues,
    #[error("the device does not offer VIRTIO_F_VERSION_1")]
    NotVersion1,
    #[error("cannot create an eventfd")]
    EventFd(#[source] std::io::Error),
}

/// A virtio device behind a virtio-mmio register window.
pub struct VirtioMmioDevice {
    device: Box<dyn VirtioDevice>,
    /// The live guest memory map (hot-plug swaps regions in): checks take
    /// a fresh snapshot each time.
    mem: GuestMemoryAtomic,
    queues: Vec<Queue>,
    queue_evts: Vec<EventFd>,
    interrupt: Arc<VirtioInterrupt>,
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    queue_sel: u32,
    config_generation: u32,
    active: bool,
}

impl VirtioMmioDevice {
    /// Put `device` behind a register window; `mem` is the guest RAM its
    /// queues must lie in, including RAM hot-plugged later.
    pub fn new(device: Box<dyn VirtioDevice>, mem: GuestMemoryAtomic) -> Result<Self, MmioError> {
        if device.features() & VIRTIO_F_VERSION_1 == 0 {
            return Err(MmioError::NotVersion1);
        }
        let sizes = device.queue_max_sizes();
        if sizes.is_empty() {
            return Err(MmioError::NoQueues);
        }
        let queues = sizes
            .iter()
            .enumerate()
            .map(|(index, &size)| {
                Queue::new(size).map_err(|_| MmioError::QueueMaxSize { index, size })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let queue_evts = (0..queues.len())
            .map(|_| {
                EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(MmioError::EventFd)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let interrupt = Arc::new(VirtioInterrupt::new().map_err(MmioError::EventFd)?);
        Ok(Self {
            device,
            mem,
            queues,
            queue_evts,
            interrupt,
            status: 0,
            device_features_sel: 0,
            driver_features_sel: 0,
            driver_features: 0,
            queue_sel: 0,
            config_generation: 0,
            active: false,
        })
    }

    /// The eventfd that raises this device's interrupt: register it as a
    /// KVM irqfd for the device's IRQ line.
    pub fn interrupt_evt(&self) -> &EventFd {
        self.interrupt.eventfd()
    }

    /// One eventfd per queue, signalled on QueueNotify with that queue's
    /// index. Register queue `i`'s as a KVM ioeventfd at
    /// `base + MMIO_NOTIFY_OFFSET`, 4 bytes, datamatch `i` (optional).
    pub fn queue_evts(&self) -> &[EventFd] {
        &self.queue_evts
    }

    /// The device status register.
    pub fn status(&self) -> u32 {
        self.status
    }

    /// Whether the device is serving its queues (DRIVER_OK was accepted).
    pub fn is_active(&self) -> bool {
        self.active
    }

    fn selected_queue(&mut self) -> Option<&mut Queue> {
        self.queues.get_mut(self.queue_sel as usize)
    }

    fn read_register(&self, offset: u32) -> u32 {
        let queue = self.queues.get(self.queue_sel as usize);
        match offset {
            r::VIRTIO_MMIO_MAGIC_VALUE => MMIO_MAGIC,
            r::VIRTIO_MMIO_VERSION => MMIO_VERSION,
            r::VIRTIO_MMIO_DEVICE_ID => self.device.device_type(),
            r::VIRTIO_MMIO_VENDOR_ID => MMIO_VENDOR_ID,
            r::VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_sel {
                0 => self.device.features() as u32,
                1 => (self.device.features() >> 32) as u32,
                _ => 0,
            },
            r::VIRTIO_MMIO_QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            r::VIRTIO_MMIO_QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            r::VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            r::VIRTIO_MMIO_STATUS => self.status,
            r::VIRTIO_MMIO_CONFIG_GENERATION => self.config_generation,
            // No shared memory regions: their length reads as all ones.
            r::VIRTIO_MMIO_SHM_LEN_LOW
            | r::VIRTIO_MMIO_SHM_LEN_HIGH
            | r::VIRTIO_MMIO_SHM_BASE_LOW
            | r::VIRTIO_MMIO_SHM_BASE_HIGH => u32::MAX,
            _ => {
                guest_warn!(
                    offset,
                    "virtio-mmio: read of a write-only or unknown register"
                );
                0
            }
        }
    }

    fn write_register(&mut self, offset: u32, value: u32) {
        match offset {
            r::VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_sel = value,
            r::VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            r::VIRTIO_MMIO_DRIVER_FEATURES => self.write_driver_features(value),
            r::VIRTIO_MMIO_QUEUE_SEL => self.queue_sel = value,
            r::VIRTIO_MMIO_QUEUE_NUM
            | r::VIRTIO_MMIO_QUEUE_READY
            | r::VIRTIO_MMIO_QUEUE_DESC_LOW
            | r::VIRTIO_MMIO_QUEUE_DESC_HIGH
            | r::VIRTIO_MMIO_QUEUE_AVAIL_LOW
            | r::VIRTIO_MMIO_QUEUE_AVAIL_HIGH
            | r::VIRTIO_MMIO_QUEUE_USED_LOW
            | r::VIRTIO_MMIO_QUEUE_USED_HIGH => self.write_queue_register(offset, value),
            r::VIRTIO_MMIO_QUEUE_NOTIFY => self.notify(value),
            r::VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.ack(value),
            r::VIRTIO_MMIO_STATUS => self.write_status(value),
            r::VIRTIO_MMIO_SHM_SEL => {}
            _ => guest_warn!(
                offset,
                value,
                "virtio-mmio: write to a read-only, legacy or unknown register"
            ),
        }
    }

    fn write_driver_features(&mut self, value: u32) {
        if self.status & status::DRIVER == 0
            || self.status & (status::FEATURES_OK | status::FAILED) != 0
        {
            guest_warn!(
                status = self.status,
                "virtio-mmio: DriverFeatures written outside feature negotiation"
            );
            return;
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value),
            1 => {
                self.driver_features =
                    (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
            }
            sel if value != 0 => {
                guest_warn!(sel, value, "virtio-mmio: driver features beyond bit 63");
            }
            _ => {}
        }
    }

    /// Queue configuration is allowed between FEATURES_OK and DRIVER_OK,
    /// on a queue that is not ready (except to make it not ready).
    fn write_queue_register(&mut self, offset: u32, value: u32) {
        let configuring = self.status & status::FEATURES_OK != 0
            && self.status & (status::DRIVER_OK | status::FAILED | status::DEVICE_NEEDS_RESET) == 0;
        if !configuring {
            // Linux writes QueueReady = 0 while tearing down after a reset.
            if !(offset == r::VIRTIO_MMIO_QUEUE_READY && value == 0) {
                guest_warn!(
                    offset,
                    status = self.status,
                    "virtio-mmio: queue register written outside queue setup"
                );
            }
            return;
        }
        let sel = self.queue_sel;
        // A snapshot now: RAM hot-plugged since activation counts.
        let mem = self.mem.memory();
        let Some(q) = self.selected_queue() else {
            guest_warn!(
                sel,
                "virtio-mmio: queue register written for a queue that does not exist"
            );
            return;
        };
        if q.ready() && offset != r::VIRTIO_MMIO_QUEUE_READY {
            guest_warn!(
                sel,
                offset,
                "virtio-mmio: queue register written while the queue is ready"
            );
            return;
        }
        let low = |old: u64| (old & !0xffff_ffff) | u64::from(value);
        let high = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
        let result = match offset {
            r::VIRTIO_MMIO_QUEUE_NUM => u16::try_from(value)
                .map_err(|_| virtio_queue::Error::InvalidSize)
                .and_then(|size| q.try_set_size(size)),
            r::VIRTIO_MMIO_QUEUE_READY => {
                set_queue_ready(q, value, &mem);
                Ok(())
            }
            r::VIRTIO_MMIO_QUEUE_DESC_LOW => {
                q.try_set_desc_table_address(GuestAddress(low(q.desc_table())))
            }
            r::VIRTIO_MMIO_QUEUE_DESC_HIGH => {
                q.try_set_desc_table_address(GuestAddress(high(q.desc_table())))
            }
            r::VIRTIO_MMIO_QUEUE_AVAIL_LOW => {
                q.try_set_avail_ring_address(GuestAddress(low(q.avail_ring())))
            }
            r::VIRTIO_MMIO_QUEUE_AVAIL_HIGH => {
                q.try_set_avail_ring_address(GuestAddress(high(q.avail_ring())))
            }
            r::VIRTIO_MMIO_QUEUE_USED_LOW => {
                q.try_set_used_ring_address(GuestAddress(low(q.used_ring())))
            }
            r::VIRTIO_MMIO_QUEUE_USED_HIGH => {
                q.try_set_used_ring_address(GuestAddress(high(q.used_ring())))
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            guest_warn!(sel, offset, value, error = %e, "virtio-mmio: invalid queue setting ignored");
        }
    }

    fn notify(&mut self, value: u32) {
        match self.queue_evts.get(value as usize) {
            Some(evt) if self.active => {
                if let Err(e) = evt.write(1) {
                    tracing::debug!(error = %e, queue = value, "virtio-mmio: notify eventfd write failed");
                }
            }
            Some(_) => guest_warn!(queue = value, "virtio-mmio: notify before DRIVER_OK"),
            None => guest_warn!(
                queue = value,
                "virtio-mmio: notify for a queue that does not exist"
            ),
        }
    }

    /// The status state machine (virtio 1.2, 3.1.1): bits are only added,
    /// in order ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK; FAILED may be
    /// set at any time; 0 resets the device.
    fn write_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let old = self.status;
        if value & status::FAILED != 0 {
            tracing::info!(
                status = value,
                "virtio-mmio: driver marked the device FAILED"
            );
            self.status |= status::FAILED;
            return;
        }
        if old & (status::FAILED | status::DEVICE_NEEDS_RESET) != 0 {
            guest_warn!(old, value, "virtio-mmio: status write ignored until reset");
            return;
        }
        if old & !value != 0 {
            guest_warn!(
                old,
                value,
                "virtio-mmio: status bits cleared without a reset"
            );
            return;
        }
        let known = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK;
        if value & !known != 0 {
            guest_warn!(
                value,
                "virtio-mmio: unknown or device-only status bits written"
            );
            return;
        }
        let needs = |bit: u32, before: u32| value & bit == 0 || value & before != 0;
        if !(needs(status::DRIVER, status::ACKNOWLEDGE)
            && needs(status::FEATURES_OK, status::DRIVER)
            && needs(status::DRIVER_OK, status::FEATURES_OK))
        {
            guest_warn!(old, value, "virtio-mmio: status bits set out of order");
            return;
        }
        let mut new = value;
        if new & status::FEATURES_OK != 0 && old & status::FEATURES_OK == 0 {
            let offered = self.device.features();
            let acked = self.driver_features;
            if acked & !offered != 0 || acked & VIRTIO_F_VERSION_1 == 0 {
                // The spec's way to refuse: FEATURES_OK does not stick.
                guest_warn!(
                    offered,
                    acked,
                    "virtio-mmio: driver features refused (unknown bits or no VERSION_1)"
                );
                new &= !(status::FEATURES_OK | status::DRIVER_OK);
            }
        }
        self.status = new;
        if new & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 {
            self.activate();
        }
    }

    fn activate(&mut self) {
        let result = self.device_queues().and_then(|dq| self.device.activate(dq));
        match result {
            Ok(()) => {
                self.active = true;
                tracing::debug!(
                    device = self.device.device_type(),
                    "virtio device activated"
                );
            }
            Err(e) => {
                guest_warn!(error = %e, "virtio-mmio: device activation failed: needs reset");
                self.status |= status::DEVICE_NEEDS_RESET;
                self.interrupt.trigger(irq::CONFIG);
            }
        }
    }

    fn device_queues(&self) -> Result<DeviceQueues, super::ActivateError> {
        let event_idx = self.driver_features & VIRTIO_RING_F_EVENT_IDX != 0;
        let mut queues = Vec::with_capacity(self.queues.len());
        let mem = self.mem.memory();
        for (index, q) in self.queues.iter().enumerate() {
            // Re-checked here: the rings must lie in guest RAM.
            if q.ready() && !rings_in_memory(q, &mem) {
                return Err(super::ActivateError::QueueNotReady { index });
            }
            let mut state = q.state();
            state.event_idx_enabled = event_idx;
            let q = Queue::try_from(state)
                .map_err(|_| super::ActivateError::QueueNotReady { index })?;
            queues.push(q);
        }
        let queue_evts = self
            .queue_evts
            .iter()
            .map(EventFd::try_clone)
            .collect::<Result<Vec<_>, _>>()
            .map_err(super::ActivateError::EventFd)?;
        Ok(DeviceQueues {
            mem: self.mem.clone(),
            queues,
            queue_evts,
            interrupt: self.interrupt.clone(),
            acked_features: self.driver_features,
        })
    }

    fn reset(&mut self) {
        if self.active {
            self.device.reset();
            self.active = false;
        }
        for q in &mut self.queues {
            q.reset();
        }
        for evt in &self.queue_evts {
            // Drain stale notifications; EAGAIN when there were none.
            let _ = evt.read();
        }
        self.interrupt.clear();
        self.status = 0;
        self.device_features_sel = 0;
        self.driver_features_sel = 0;
        self.driver_features = 0;
        self.queue_sel = 0;
        tracing::debug!(device = self.device.device_type(), "virtio device reset");
    }
}

/// QueueReady: 1 makes the queue live if its size and rings are valid.
fn set_queue_ready(q: &mut Queue, value: u32, mem: &GuestMemoryMmap) {
    match value {
        0 => q.set_ready(false),
        1 if rings_in_memory(q, mem) => q.set_ready(true),
        1 => guest_warn!(
            desc = q.desc_table(),
            avail = q.avail_ring(),
            used = q.used_ring(),
            size = q.size(),
            "virtio-mmio: queue rings not in guest RAM: queue stays not ready"
        ),
        _ => guest_warn!(value, "virtio-mmio: QueueReady must be 0 or 1"),
    }
}

/// Whether the descriptor table, available ring and used ring of `q` (at
/// its current size) lie entirely in guest RAM. Alignment is enforced when
/// the addresses are set.
pub fn rings_in_memory(q: &Queue, mem: &GuestMemoryMmap) -> bool {
    let n = u64::from(q.size());
    // The ring layouts (virtio 1.2, 2.7): 16-byte descriptors; avail =
    // flags, idx, ring[n], used_event; used = flags, idx, ring[n] of 8
    // bytes, avail_event.
    let parts = [
        (q.desc_table(), 16 * n),
        (q.avail_ring(), 6 + 2 * n),
        (q.used_ring(), 6 + 8 * n),
    ];
    parts.iter().all(|&(addr, len)| {
        usize::try_from(len).is_ok_and(|len| mem.check_range(GuestAddress(addr), len))
    })
}

impl BusDevice for VirtioMmioDevice {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if offset >= MMIO_CONFIG_OFFSET {
            self.device.read_config(offset - MMIO_CONFIG_OFFSET, data);
            return;
        }
        let Some(reg) = register(offset, data.len()) else {
            guest_warn!(
                offset,
                len = data.len(),
                "virtio-mmio: misaligned or non-32-bit read"
            );
            data.fill(0);
            return;
        };
        data.copy_from_slice(&self.read_register(reg).to_le_bytes());
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if offset >= MMIO_CONFIG_OFFSET {
            if self.status & status::DRIVER == 0 {
                guest_warn!(offset, "virtio-mmio: config written before DRIVER");
                return;
            }
            self.device.write_config(offset - MMIO_CONFIG_OFFSET, data);
            return;
        }
        let Some(reg) = register(offset, data.len()) else {
            guest_warn!(
                offset,
                len = data.len(),
                "virtio-mmio: misaligned or non-32-bit write"
            );
            return;
        };
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(data);
        self.write_register(reg, u32::from_le_bytes(bytes));
    }
}

/// The register at `offset` if the access is an aligned 32-bit one.
fn register(offset: u64, len: usize) -> Option<u32> {
    (len == 4 && offset % 4 == 0)
        .then(|| u32::try_from(offset).ok())
        .flatten()
}

impl Drop for VirtioMmioDevice {
    fn drop(&mut self) {
        if self.active {
            self.device.reset();
        }
    }
}

impl std::fmt::Debug for VirtioMmioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioMmioDevice")
            .field("device_type", &self.device.device_type())
            .field("status", &self.status)
            .field("active", &self.active)
            .finish()
    }
}

#[cfg(test)]
#[path = "mmio_tests.rs"]
mod tests;
