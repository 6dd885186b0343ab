//! Virtio devices behind the virtio-mmio transport.
//!
//! - [`acpi`]: the DSDT entry (LNRO0005) that describes a device to the guest.
//! - [`device`]: the [`VirtioDevice`] trait a device implements, and the
//!   interrupt line it shares with its transport.
//! - [`mmio`]: the virtio-mmio (version 2) register block, a
//!   [`BusDevice`](crate::devices::BusDevice) generic over the device.
//! - [`chain`]: descriptor chains checked against guest RAM before use.
//! - [`block`]: virtio-blk on a host file (read-only or read-write).
//! - [`vsock`]: virtio-vsock served in userspace ("hybrid vsock"): guest
//!   streams end at Unix sockets on the host.
//!
//! Everything the guest writes (registers, rings, descriptors, packets) is
//! untrusted: it is checked, and a bad value is logged (rate-limited) and
//! ignored, or the device is marked as needing a reset. Nothing the guest
//! does panics the VMM or reaches memory outside guest RAM.

pub mod acpi;
pub mod block;
pub mod chain;
pub mod device;
#[doc(hidden)]
pub mod fuzzing;
pub mod mmio;
#[doc(hidden)]
pub mod ratelimit;
pub mod vsock;
pub mod worker_thread;

#[cfg(test)]
pub(crate) mod fuzz_smoke;
#[cfg(test)]
pub(crate) mod testutil;

pub use device::{ActivateError, DeviceQueues, VirtioDevice, VirtioInterrupt};
pub use mmio::{kernel_cmdline_device, VirtioMmioDevice, MMIO_NOTIFY_OFFSET, MMIO_WINDOW_SIZE};

/// Feature bit: the device follows virtio 1.x (non-legacy). Required by
/// the MMIO version 2 transport.
pub const VIRTIO_F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;

/// Device status bits (virtio 1.2, 2.1).
pub mod status {
    use virtio_bindings::virtio_config as c;

    pub const ACKNOWLEDGE: u32 = c::VIRTIO_CONFIG_S_ACKNOWLEDGE;
    pub const DRIVER: u32 = c::VIRTIO_CONFIG_S_DRIVER;
    pub const DRIVER_OK: u32 = c::VIRTIO_CONFIG_S_DRIVER_OK;
    pub const FEATURES_OK: u32 = c::VIRTIO_CONFIG_S_FEATURES_OK;
    pub const DEVICE_NEEDS_RESET: u32 = c::VIRTIO_CONFIG_S_NEEDS_RESET;
    pub const FAILED: u32 = c::VIRTIO_CONFIG_S_FAILED;
}

/// Interrupt status bits (virtio-mmio InterruptStatus).
pub mod irq {
    /// A used ring was updated.
    pub const VRING: u32 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING;
    /// The configuration (or the device status, e.g. NEEDS_RESET) changed.
    pub const CONFIG: u32 = virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_CONFIG;
}
