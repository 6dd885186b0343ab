//! Emulated devices and the bus that routes guest accesses to them.
//!
//! - [`bus`]: the `BusDevice` trait and the PIO/MMIO address maps.
//! - [`legacy`]: the 8250 serial port, the i8042 reset line, the PL011 UART and PL031 RTC.
//! - [`firmware`]: the aarch64 UEFI ROM's CFI flash and fw_cfg.
//! - [`acpi_pm`]: the hardware-reduced ACPI sleep/reset registers.
//! - [`acpi`]: the Generic Event Device and the memory hot-plug controller.
//! - [`virtio`]: the virtio-mmio transport and virtio devices (vsock).

pub mod acpi;
pub mod acpi_pm;
pub mod bus;
pub mod firmware;
pub mod legacy;
pub mod virtio;

pub use bus::{Bus, BusDevice, BusError, SharedDevice};
