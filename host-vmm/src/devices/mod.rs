//! Emulated devices and the bus that routes guest accesses to them.
//!
//! - [`bus`]: the `BusDevice` trait and the PIO/MMIO address maps.
//! - [`legacy`]: the 8250 serial port and the i8042 reset line.
//! - [`acpi_pm`]: the hardware-reduced ACPI sleep/reset registers.

pub mod acpi_pm;
pub mod bus;
pub mod legacy;

pub use bus::{Bus, BusDevice, BusError, SharedDevice};
