//! What a virtio device implements, and the interrupt line it shares with
//! its transport.

use std::sync::atomic::{AtomicU32, Ordering};

use virtio_queue::Queue;
use vmm_sys_util::eventfd::EventFd;

use crate::memory::GuestMemoryAtomic;

/// The interrupt of one virtio-mmio device: the InterruptStatus bits and
/// the eventfd that raises the line (an irqfd the builder registers with
/// KVM). Shared by the transport (which reads and acknowledges the bits on
/// vCPU threads) and the device's worker (which sets them).
#[derive(Debug)]
pub struct VirtioInterrupt {
    status: AtomicU32,
    evt: EventFd,
}

impl VirtioInterrupt {
    pub fn new() -> std::io::Result<Self> {
        Ok(Self {
            status: AtomicU32::new(0),
            evt: EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)?,
        })
    }

    /// Set `bits` (see [`super::irq`]) in InterruptStatus and raise the line.
    pub fn trigger(&self, bits: u32) {
        self.status.fetch_or(bits, Ordering::SeqCst);
        if let Err(e) = self.evt.write(1) {
            // Only fails if the counter would overflow, i.e. nobody has
            // consumed 2^64 - 2 interrupts: the line is raised anyway.
            tracing::debug!(error = %e, "virtio interrupt eventfd write failed");
        }
    }

    /// InterruptStatus as the guest reads it.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// InterruptACK: clear `bits`.
    pub fn ack(&self, bits: u32) {
        self.status.fetch_and(!bits, Ordering::SeqCst);
    }

    /// Clear every bit (device reset).
    pub fn clear(&self) {
        self.status.store(0, Ordering::SeqCst);
    }

    /// The eventfd to register as KVM irqfd for the device's interrupt line.
    pub fn eventfd(&self) -> &EventFd {
        &self.evt
    }
}

/// What a device gets when the driver sets DRIVER_OK: guest memory (the
/// live map: hot-plugged RAM is swapped into it, so the device takes a
/// fresh `.memory()` snapshot for each batch of work, never keeps one), the
/// queues the driver configured (index = queue number), one eventfd per
/// queue that the transport (or a KVM ioeventfd) signals on QueueNotify,
/// and the interrupt.
pub struct DeviceQueues {
    pub mem: GuestMemoryAtomic,
    pub queues: Vec<Queue>,
    pub queue_evts: Vec<EventFd>,
    pub interrupt: std::sync::Arc<VirtioInterrupt>,
    /// The features the driver acknowledged.
    pub acked_features: u64,
}

/// Why a device could not start.
#[derive(Debug, thiserror::Error)]
pub enum ActivateError {
    #[error("the driver enabled {got} queues, the device needs {want}")]
    QueueCount { got: usize, want: usize },
    #[error("queue {index} is not ready")]
    QueueNotReady { index: usize },
    #[error("cannot duplicate an eventfd for the device worker")]
    EventFd(#[source] std::io::Error),
    #[error("cannot start the device worker thread")]
    Thread(#[source] std::io::Error),
    #[error("the device is already active")]
    AlreadyActive,
}

/// A virtio device, independent of the transport. Called with the
/// transport's lock held, from vCPU threads: implementations return quickly
/// and do their I/O on their own thread, started by `activate`.
pub trait VirtioDevice: Send {
    /// Virtio device ID (e.g. 19 for vsock).
    fn device_type(&self) -> u32;
    /// Maximum size of each queue (each a power of two, at most 32768).
    /// The length is the number of queues.
    fn queue_max_sizes(&self) -> &[u16];
    /// Feature bits offered to the driver (must include VIRTIO_F_VERSION_1).
    fn features(&self) -> u64;
    /// Fill `data` from the device configuration space at `offset`.
    /// Guest controlled: any offset and length.
    fn read_config(&self, offset: u64, data: &mut [u8]);
    /// A driver write to the configuration space. Guest controlled.
    fn write_config(&mut self, offset: u64, data: &[u8]);
    /// Start serving the queues (DRIVER_OK).
    fn activate(&mut self, queues: DeviceQueues) -> Result<(), ActivateError>;
    /// Stop serving the queues and drop all per-driver state (status 0).
    /// Afterwards the device can be activated again.
    fn reset(&mut self);
}
