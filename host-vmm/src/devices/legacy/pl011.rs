//! ARM PL011 UART: the aarch64 console (output only), written through the
//! same bounded [`ConsoleQueue`] as the 8250, so a stalled reader never
//! blocks a vCPU.
//!
//! Facts (ARM PrimeCell UART (PL011) TRM, DDI 0183): DR 0x000, RSR/ECR
//! 0x004, FR 0x018 (TXFE bit 7, RXFF 6, TXFF 5, RXFE 4, BUSY 3), ILPR 0x020,
//! IBRD 0x024, FBRD 0x028, LCR_H 0x02c, CR 0x030, IFLS 0x034, IMSC 0x038,
//! RIS 0x03c, MIS 0x040, ICR 0x044, DMACR 0x048; peripheral and PrimeCell
//! ids at 0xfe0..0xfff. Interrupt bits: RX 4, TX 5, RT 6.
//!
//! The transmit FIFO drains at once, so it is always empty: the TX
//! interrupt is raised whenever it is unmasked (its status is "at or below
//! the trigger level"). Nothing is ever received. The interrupt is an irqfd
//! pulse (described as edge-triggered to the guest), sent when an unmasked
//! status bit rises, and on every IMSC write that leaves one pending (Linux
//! rewrites IMSC each time it wants a TX interrupt).

use std::io::{self, Write};

use vmm_sys_util::eventfd::EventFd;

use super::console::{ConsoleOutput, ConsoleQueue};
use crate::acpi::{aml, Aml};
use crate::devices::BusDevice;

pub const REG_DR: u64 = 0x000;
pub const REG_RSR: u64 = 0x004;
pub const REG_FR: u64 = 0x018;
pub const REG_ILPR: u64 = 0x020;
pub const REG_IBRD: u64 = 0x024;
pub const REG_FBRD: u64 = 0x028;
pub const REG_LCR_H: u64 = 0x02c;
pub const REG_CR: u64 = 0x030;
pub const REG_IFLS: u64 = 0x034;
pub const REG_IMSC: u64 = 0x038;
pub const REG_RIS: u64 = 0x03c;
pub const REG_MIS: u64 = 0x040;
pub const REG_ICR: u64 = 0x044;
pub const REG_DMACR: u64 = 0x048;

pub const FR_TXFE: u32 = 1 << 7;
pub const FR_RXFE: u32 = 1 << 4;
pub const INT_RX: u32 = 1 << 4;
pub const INT_TX: u32 = 1 << 5;
pub const INT_RT: u32 = 1 << 6;
/// Interrupt bits a guest can mask or clear (RIMIS..OEIM).
const INT_MASK: u32 = 0x7ff;

/// Peripheral id 0..3 and PrimeCell id 0..3, at 0xfe0 + 4 * i (QEMU's PL011).
const IDS: [u8; 8] = [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Where the PL011 sends its interrupt pulses.
pub trait Pl011Irq: Send {
    fn trigger(&self) -> io::Result<()>;
}

impl Pl011Irq for EventFd {
    fn trigger(&self) -> io::Result<()> {
        self.write(1)
    }
}

/// The UART.
pub struct Pl011<I: Pl011Irq = EventFd, W: Write + Send = ConsoleQueue> {
    irq: I,
    out: W,
    imsc: u32,
    /// Raw interrupt status, apart from TX (always pending: the FIFO is empty).
    ris: u32,
    cr: u32,
    lcr_h: u32,
    ibrd: u32,
    fbrd: u32,
    ifls: u32,
    ilpr: u32,
    dmacr: u32,
    /// A failing console or interrupt is reported once.
    warned: bool,
}

impl Pl011 {
    /// The UART writing to `out` through a [`ConsoleQueue`] (this starts its
    /// writer thread) and pulsing `irq`.
    pub fn console(irq: EventFd, out: ConsoleOutput) -> io::Result<Self> {
        Ok(Pl011::new(irq, ConsoleQueue::spawn(out)?))
    }
}

impl<I: Pl011Irq, W: Write + Send> Pl011<I, W> {
    pub fn new(irq: I, out: W) -> Self {
        Pl011 {
            irq,
            out,
            imsc: 0,
            ris: 0,
            // Reset values: UART, TX and RX enabled as QEMU leaves them (the
            // firmware prints before programming the UART); RX/TX FIFO at 1/2.
            cr: 0x300,
            lcr_h: 0,
            ibrd: 0,
            fbrd: 0,
            ifls: 0x12,
            ilpr: 0,
            dmacr: 0,
            warned: false,
        }
    }

    /// The console writer (for tests and the drop count).
    pub fn output(&self) -> &W {
        &self.out
    }

    fn raw_status(&self) -> u32 {
        self.ris | INT_TX
    }

    fn masked_status(&self) -> u32 {
        self.raw_status() & self.imsc
    }

    fn warn_once(&mut self, what: &str, e: &io::Error) {
        if !self.warned {
            self.warned = true;
            tracing::warn!("PL011: {what}: {e} (further errors not logged)");
        }
    }

    fn register(&self, offset: u64) -> u32 {
        match offset {
            REG_DR | REG_RSR => 0,
            REG_FR => FR_TXFE | FR_RXFE,
            REG_ILPR => self.ilpr,
            REG_IBRD => self.ibrd,
            REG_FBRD => self.fbrd,
            REG_LCR_H => self.lcr_h,
            REG_CR => self.cr,
            REG_IFLS => self.ifls,
            REG_IMSC => self.imsc,
            REG_RIS => self.raw_status(),
            REG_MIS => self.masked_status(),
            REG_DMACR => self.dmacr,
            0xfe0..=0xfff if offset % 4 == 0 => {
                // In the match arm's range: the index is 0..8.
                u32::from(IDS[((offset - 0xfe0) / 4) as usize])
            }
            _ => 0,
        }
    }

    fn set_register(&mut self, offset: u64, v: u32) {
        let before = self.masked_status();
        match offset {
            REG_DR => {
                // The low 8 bits are the character.
                if let Err(e) = self.out.write_all(&[v as u8]) {
                    self.warn_once("console", &e);
                }
            }
            REG_RSR => {} // clears errors; there are none
            REG_ILPR => self.ilpr = v & 0xff,
            REG_IBRD => self.ibrd = v & 0xffff,
            REG_FBRD => self.fbrd = v & 0x3f,
            REG_LCR_H => self.lcr_h = v & 0xff,
            REG_CR => self.cr = v & 0xff87,
            REG_IFLS => self.ifls = v & 0x3f,
            REG_IMSC => self.imsc = v & INT_MASK,
            REG_ICR => self.ris &= !v,
            REG_DMACR => self.dmacr = v & 0x7,
            _ => {}
        }
        let after = self.masked_status();
        let rose = after & !before != 0;
        if rose || (offset == REG_IMSC && after != 0) {
            if let Err(e) = self.irq.trigger() {
                self.warn_once("interrupt", &e);
            }
        }
    }
}

impl<I: Pl011Irq, W: Write + Send> BusDevice for Pl011<I, W> {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        // Registers are 32 bits wide; narrower reads see the low bytes.
        let v = if offset % 4 == 0 {
            self.register(offset)
        } else {
            0
        };
        let bytes = u64::from(v).to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if data.is_empty() || offset % 4 != 0 {
            return;
        }
        let mut b = [0u8; 4];
        let n = data.len().min(4);
        b[..n].copy_from_slice(&data[..n]);
        self.set_register(offset, u32::from_le_bytes(b));
    }
}

/// The UART as an ACPI device (`COM0`, ARMH0011: Linux binds its SBSA/PL011
/// driver to it) for the DSDT's `\\_SB_`: its register window and its
/// interrupt (edge-triggered, active high: the line is an irqfd pulse).
pub struct Pl011Aml {
    pub base: u32,
    pub len: u32,
    /// GIC INTID (the SPI + 32).
    pub gsiv: u32,
}

impl Aml for Pl011Aml {
    fn to_aml_bytes(&self, sink: &mut dyn acpi_tables::AmlSink) {
        let irq = aml::Interrupt::new(true, true, false, false, self.gsiv);
        let mem = aml::Memory32Fixed::new(true, self.base, self.len);
        let crs = aml::ResourceTemplate::new(vec![&mem, &irq]);
        let hid = aml::Name::new("_HID".into(), &"ARMH0011");
        let uid = aml::Name::new("_UID".into(), &aml::ZERO);
        let crs = aml::Name::new("_CRS".into(), &crs);
        aml::Device::new("COM0".into(), vec![&hid, &uid, &crs]).to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    use super::*;

    #[derive(Clone, Default)]
    struct Count(Arc<AtomicU32>);

    impl Pl011Irq for Count {
        fn trigger(&self) -> io::Result<()> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    impl Count {
        fn get(&self) -> u32 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn uart() -> (Pl011<Count, Vec<u8>>, Count) {
        let c = Count::default();
        (Pl011::new(c.clone(), Vec::new()), c)
    }

    fn read32(u: &mut Pl011<Count, Vec<u8>>, off: u64) -> u32 {
        let mut b = [0u8; 4];
        u.read(0, off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn test_pl011_dr_writes_reach_the_console() {
        let (mut u, irq) = uart();
        for c in b"hi\n" {
            u.write(0, REG_DR, &u32::from(*c).to_le_bytes());
        }
        // A byte write (the firmware's) works too.
        u.write(0, REG_DR, b"!");
        assert_eq!(u.output(), b"hi\n!");
        assert_eq!(irq.get(), 0, "TX interrupt masked");
    }

    #[test]
    fn test_pl011_flags_say_tx_empty_rx_empty_never_full() {
        let (mut u, _) = uart();
        assert_eq!(read32(&mut u, REG_FR), FR_TXFE | FR_RXFE);
    }

    #[test]
    fn test_pl011_ids_are_a_pl011() {
        let (mut u, _) = uart();
        let ids: Vec<u32> = (0..8).map(|i| read32(&mut u, 0xfe0 + 4 * i)).collect();
        assert_eq!(ids, [0x11, 0x10, 0x14, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
    }

    #[test]
    fn test_pl011_tx_interrupt_when_unmasked_as_linux_asks() {
        let (mut u, irq) = uart();
        u.write(0, REG_IMSC, &(INT_RX | INT_RT).to_le_bytes());
        assert_eq!(irq.get(), 0);
        assert_eq!(read32(&mut u, REG_MIS), 0);
        // pl011_start_tx: write the characters, then unmask TX.
        u.write(0, REG_DR, b"x");
        u.write(0, REG_IMSC, &(INT_RX | INT_RT | INT_TX).to_le_bytes());
        assert_eq!(irq.get(), 1);
        assert_eq!(read32(&mut u, REG_MIS), INT_TX);
        // Writing IMSC again while TX is pending pulses again.
        u.write(0, REG_IMSC, &(INT_RX | INT_RT | INT_TX).to_le_bytes());
        assert_eq!(irq.get(), 2);
        // pl011_stop_tx masks it: no pulse.
        u.write(0, REG_IMSC, &(INT_RX | INT_RT).to_le_bytes());
        assert_eq!(irq.get(), 2);
        assert_eq!(read32(&mut u, REG_MIS), 0);
        assert_eq!(read32(&mut u, REG_RIS), INT_TX);
    }

    #[test]
    fn test_pl011_registers_keep_what_the_guest_wrote() {
        let (mut u, _) = uart();
        for (reg, v) in [
            (REG_IBRD, 13u32),
            (REG_FBRD, 1),
            (REG_LCR_H, 0x70),
            (REG_CR, 0x301),
        ] {
            u.write(0, reg, &v.to_le_bytes());
            assert_eq!(read32(&mut u, reg), v, "{reg:#x}");
        }
    }

    #[test]
    fn test_pl011_aml_is_armh0011_with_window_and_interrupt() {
        let mut bytes = Vec::new();
        Pl011Aml {
            base: 0x0900_0000,
            len: 0x1000,
            gsiv: 33,
        }
        .to_aml_bytes(&mut bytes);
        assert!(bytes.windows(8).any(|w| w == b"ARMH0011"));
        assert!(bytes.windows(4).any(|w| w == b"COM0"));
        let mut mem = vec![0x86, 0x09, 0x00, 0x01];
        mem.extend_from_slice(&0x0900_0000u32.to_le_bytes());
        mem.extend_from_slice(&0x1000u32.to_le_bytes());
        assert!(bytes.windows(mem.len()).any(|w| w == mem));
        assert!(bytes
            .windows(9)
            .any(|w| w == [0x89, 0x06, 0x00, 0x03, 0x01, 33, 0x00, 0x00, 0x00]));
    }

    #[test]
    fn test_pl011_arbitrary_accesses_never_panic() {
        let (mut u, _) = uart();
        for off in (0..0x1000u64).chain([u64::MAX, u64::MAX - 3]) {
            for len in 0..=9 {
                let mut buf = vec![0xffu8; len];
                u.read(0, off, &mut buf);
                u.write(0, off, &buf);
            }
        }
    }
}
