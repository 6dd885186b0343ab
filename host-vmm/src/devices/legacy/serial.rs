//! 8250 UART (COM1) on the PIO bus: vm-superio's `Serial` with the guest's
//! interrupt line raised through an eventfd registered with KVM (irqfd).

use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::path::Path;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use crate::acpi::{aml, Aml};
use crate::devices::BusDevice;

/// Raises the serial IRQ: a write to an eventfd that KVM turns into an
/// interrupt (irqfd).
#[derive(Debug)]
pub struct IrqTrigger(pub EventFd);

impl Trigger for IrqTrigger {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        self.0.write(1)
    }
}

/// Where the guest's console bytes go.
pub enum ConsoleOutput {
    Stdout(io::Stdout),
    File(LineWriter<File>),
    /// Discarded (tests).
    Sink,
}

impl ConsoleOutput {
    /// The console for `path`, or stdout when `None`. The file is created
    /// (truncated) now so a bad path fails before the guest starts.
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        Ok(match path {
            Some(p) => ConsoleOutput::File(LineWriter::new(File::create(p)?)),
            None => ConsoleOutput::Stdout(io::stdout()),
        })
    }
}

impl Write for ConsoleOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ConsoleOutput::Stdout(s) => s.write(buf),
            ConsoleOutput::File(f) => f.write(buf),
            ConsoleOutput::Sink => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ConsoleOutput::Stdout(s) => s.flush(),
            ConsoleOutput::File(f) => f.flush(),
            ConsoleOutput::Sink => Ok(()),
        }
    }
}

/// The COM1 UART. Byte accesses only; wider accesses read as ones and are
/// ignored on write, as on real hardware with an 8-bit data bus.
pub struct SerialConsole {
    serial: Serial<IrqTrigger, vm_superio::serial::NoEvents, ConsoleOutput>,
    /// A failing console is reported once, not once per guest byte.
    warned: bool,
}

impl SerialConsole {
    pub fn new(irq: EventFd, out: ConsoleOutput) -> Self {
        SerialConsole {
            serial: Serial::new(IrqTrigger(irq), out),
            warned: false,
        }
    }
}

impl BusDevice for SerialConsole {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        match (data.len(), u8::try_from(offset)) {
            (1, Ok(off)) => data[0] = self.serial.read(off),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        let (1, Ok(off)) = (data.len(), u8::try_from(offset)) else {
            tracing::trace!(offset, len = data.len(), "serial: ignored wide write");
            return;
        };
        if let Err(e) = self.serial.write(off, data[0]) {
            // A console that cannot be written must not stop the guest.
            if !self.warned {
                self.warned = true;
                tracing::warn!("serial console: {e:?} (further errors not logged)");
            }
        }
    }
}

/// The UART as an ACPI device (`COM1`, PNP0501) for the DSDT's `\\_SB_`.
///
/// A hardware-reduced ACPI guest has no legacy PIC and so no ISA IRQs by
/// default: the kernel maps the UART's interrupt only through this `_CRS`
/// (I/O range, and an edge-triggered, active-high GSI).
pub struct SerialAml {
    pub base: u16,
    pub len: u8,
    pub gsi: u32,
}

impl Aml for SerialAml {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        let irq = aml::Interrupt::new(true, true, false, false, self.gsi);
        let io = aml::IO::new(self.base, self.base, 1, self.len);
        let crs = aml::ResourceTemplate::new(vec![&io, &irq]);
        let hid = aml::EISAName::new("PNP0501");
        let hid = aml::Name::new("_HID".into(), &hid);
        let uid = aml::Name::new("_UID".into(), &aml::ZERO);
        let crs = aml::Name::new("_CRS".into(), &crs);
        aml::Device::new("COM1".into(), vec![&hid, &uid, &crs]).to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serial() -> SerialConsole {
        let evt = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        SerialConsole::new(evt, ConsoleOutput::Sink)
    }

    #[test]
    fn test_serial_arbitrary_accesses_never_panic() {
        let mut s = serial();
        for off in 0..16u64 {
            for len in 0..=8 {
                let mut buf = vec![0u8; len];
                s.read(0x3f8, off, &mut buf);
                for v in [0u8, 0x80, 0xff, 0x3, 0x1f] {
                    buf.fill(v);
                    s.write(0x3f8, off, &buf);
                }
            }
        }
        s.read(0x3f8, u64::MAX, &mut [0u8; 1]);
        s.write(0x3f8, u64::MAX, &[1]);
    }

    #[test]
    fn test_serial_aml_describes_com1() {
        let mut bytes = Vec::new();
        SerialAml {
            base: 0x3f8,
            len: 8,
            gsi: 4,
        }
        .to_aml_bytes(&mut bytes);
        assert_eq!(bytes[0..2], [0x5b, 0x82], "DeviceOp");
        assert!(bytes.windows(4).any(|w| w == b"COM1"));
        // EISA id of PNP0501, as the 32-bit value AML stores.
        assert!(bytes.windows(4).any(|w| w == [0x41, 0xd0, 0x05, 0x01]));
        // Extended interrupt descriptor: consumer, edge, active high, GSI 4.
        assert!(bytes
            .windows(9)
            .any(|w| w == [0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00]));
    }

    #[test]
    fn test_serial_wide_read_is_ones() {
        let mut s = serial();
        let mut buf = [0u8; 2];
        s.read(0x3f8, 0, &mut buf);
        assert_eq!(buf, [0xff, 0xff]);
    }

    #[test]
    fn test_serial_transmit_raises_irq_when_enabled() {
        let evt = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut s = SerialConsole::new(evt.try_clone().unwrap(), ConsoleOutput::Sink);
        // IER: enable THR-empty interrupt, then transmit a byte.
        s.write(0x3f8, 1, &[0x2]);
        s.write(0x3f8, 0, b"x");
        assert!(evt.read().unwrap() >= 1);
        // LSR reports the transmitter empty.
        let mut lsr = [0u8];
        s.read(0x3f8, 5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
    }
}
