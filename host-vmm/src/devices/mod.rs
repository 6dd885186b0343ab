//! Emulated devices and the bus that routes guest accesses to them.
//!
//! - [`bus`]: the `BusDevice` trait and the PIO/MMIO address maps.
//! - [`legacy`]: the 8250 serial port and the i8042 reset line.
//! - [`acpi_pm`]: the hardware-reduced ACPI sleep/reset registers.
//! - [`acpi`]: the Generic Event Device and the memory hot-plug controller.
//! - [`virtio`]: the virtio-mmio transport and virtio devices (vsock).

pub mod acpi;
pub mod acpi_pm;
pub mod bus;
pub mod legacy;
pub mod virtio;

pub use bus::{Bus, BusDevice, BusError, SharedDevice};
