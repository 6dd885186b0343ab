//! 8250 UART (COM1) on the PIO bus: vm-superio's `Serial` with the guest's
//! interrupt line raised through an eventfd registered with KVM (irqfd).

use std::io;

use vm_superio::{Serial, Trigger};
use vmm_sys_util::eventfd::EventFd;

use super::console::{ConsoleOutput, ConsoleQueue};
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

/// The COM1 UART. Byte accesses only; wider accesses read as ones and are
/// ignored on write, as on real hardware with an 8-bit data bus.
pub struct SerialConsole {
    serial: Serial<IrqTrigger, vm_superio::serial::NoEvents, ConsoleQueue>,
    /// A failing console is reported once, not once per guest byte.
    warned: bool,
}

impl SerialConsole {
    /// The UART writing to `out` through a [`ConsoleQueue`] (this starts
    /// its writer thread), so a stalled reader never blocks the vCPU.
    pub fn new(irq: EventFd, out: ConsoleOutput) -> io::Result<Self> {
        Ok(SerialConsole {
            serial: Serial::new(IrqTrigger(irq), ConsoleQueue::spawn(out)?),
            warned: false,
        })
    }

    /// Console bytes dropped because the reader did not keep up.
    pub fn dropped(&self) -> u64 {
        self.serial.writer().dropped()
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
        SerialConsole::new(evt, ConsoleOutput::Sink).unwrap()
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
        let mut s = SerialConsole::new(evt.try_clone().unwrap(), ConsoleOutput::Sink).unwrap();
        // IER: enable THR-empty interrupt, then transmit a byte.
        s.write(0x3f8, 1, &[0x2]);
        s.write(0x3f8, 0, b"x");
        assert!(evt.read().unwrap() >= 1);
        // LSR reports the transmitter empty.
        let mut lsr = [0u8];
        s.read(0x3f8, 5, &mut lsr);
        assert_ne!(lsr[0] & 0x20, 0);
    }

    /// Issue 10, finding 7: the console is a pipe nobody reads. The vCPU
    /// side (port writes to THR) of 4 MiB returns; it used to block in
    /// `write` once the pipe was full.
    #[test]
    fn test_serial_never_blocks_the_vcpu_on_a_stalled_console() {
        use std::os::fd::{FromRawFd, OwnedFd};
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (_r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let out = ConsoleOutput::File(std::io::LineWriter::new(std::fs::File::from(w)));
        let evt = EventFd::new(libc::EFD_NONBLOCK).unwrap();
        let mut s = SerialConsole::new(evt, out).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for i in 0..(4u32 << 20) {
                let b = if i % 80 == 79 { b'\n' } else { b'x' };
                s.write(0x3f8, 0, &[b]);
            }
            let _ = tx.send(s.dropped());
        });
        let dropped = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("4 MiB of console writes returned");
        assert!(dropped > 2 << 20, "dropped {dropped}");
    }
}
