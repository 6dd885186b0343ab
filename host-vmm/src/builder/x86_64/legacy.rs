//! The x86 legacy devices on the port I/O bus: the serial console (COM1),
//! the i8042 (reset) and the ACPI power device.

use std::sync::Arc;

use super::super::devices::{add_device, console_error, irq_eventfd, open_console};
use super::super::error::BuildError;
use super::super::BootOptions;
use crate::arch::x86_64::layout::*;
use crate::devices::acpi_pm::{AcpiPm, ACPI_PM_PORTS};
use crate::devices::legacy::{SerialConsole, I8042};
use crate::devices::Bus;
use crate::kvm::Vm;
use crate::vmm::ExitSignal;

/// Puts the serial console, the i8042 and the ACPI power device on `pio`.
pub(super) fn add_legacy_devices(
    vm: &Vm,
    pio: &mut Bus,
    opts: &BootOptions,
    exit: &Arc<ExitSignal>,
) -> Result<(), BuildError> {
    let console = open_console(opts)?;
    let serial_irq = irq_eventfd("serial port")?;
    vm.register_irqfd(&serial_irq, SERIAL_IRQ)?;
    let serial = SerialConsole::new(serial_irq, console).map_err(console_error(opts))?;
    add_pio(
        pio,
        "serial port",
        serial,
        SERIAL_PORT_BASE,
        SERIAL_PORT_SIZE,
    )?;
    add_pio(
        pio,
        "i8042",
        I8042::new(exit.clone()),
        I8042_PORT_BASE,
        I8042_PORT_SIZE,
    )?;
    add_pio(
        pio,
        "ACPI power device",
        AcpiPm::new(exit.clone()),
        ACPI_SLEEP_CONTROL_PORT,
        ACPI_PM_PORTS as u16,
    )
}

fn add_pio(
    pio: &mut Bus,
    device: &'static str,
    dev: impl crate::devices::BusDevice + 'static,
    base: u16,
    len: u16,
) -> Result<(), BuildError> {
    add_device(pio, device, dev, u64::from(base), u64::from(len))
}
