//! ARM PL031 real-time clock: the firmware reads the time from it (without
//! one, the stock UEFI ROM drops to its shell), and so does Linux.
//!
//! Facts (ARM PrimeCell RTC (PL031) TRM, DDI 0224): DR 0x00 (seconds,
//! read-only), MR 0x04 (match), LR 0x08 (load: sets the counter), CR 0x0c
//! (bit 0: start; reads 1 once started), IMSC 0x10, RIS 0x14, MIS 0x18, ICR
//! 0x1c; peripheral and PrimeCell ids at 0xfe0..0xfff.
//!
//! The counter is the host's wall clock plus an offset the guest sets by
//! writing LR. The match interrupt is not raised (no timer runs for it):
//! Linux's driver and the firmware only read and set the time; a wake alarm
//! never fires.

use crate::devices::BusDevice;

pub const REG_DR: u64 = 0x00;
pub const REG_MR: u64 = 0x04;
pub const REG_LR: u64 = 0x08;
pub const REG_CR: u64 = 0x0c;
pub const REG_IMSC: u64 = 0x10;
pub const REG_RIS: u64 = 0x14;
pub const REG_MIS: u64 = 0x18;
pub const REG_ICR: u64 = 0x1c;

/// Peripheral id 0..3 and PrimeCell id 0..3, at 0xfe0 + 4 * i.
const IDS: [u8; 8] = [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1];

/// Seconds since the Unix epoch, from the host.
pub type Clock = Box<dyn Fn() -> u64 + Send>;

fn host_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The RTC.
pub struct Pl031 {
    clock: Clock,
    /// DR = (clock + offset) mod 2^32.
    offset: u32,
    mr: u32,
    imsc: u32,
    ris: u32,
}

impl Default for Pl031 {
    fn default() -> Self {
        Pl031::with_clock(Box::new(host_seconds))
    }
}

impl Pl031 {
    /// The RTC on the host's wall clock.
    pub fn new() -> Self {
        Self::default()
    }

    /// The RTC on `clock` (tests).
    pub fn with_clock(clock: Clock) -> Self {
        Pl031 {
            clock,
            offset: 0,
            mr: 0,
            imsc: 0,
            ris: 0,
        }
    }

    fn now(&self) -> u32 {
        // The counter is 32 bits: it wraps in 2106, as the hardware's does.
        ((self.clock)() as u32).wrapping_add(self.offset)
    }

    fn register(&self, offset: u64) -> u32 {
        match offset {
            REG_DR => self.now(),
            REG_MR => self.mr,
            REG_LR => self.now(),
            REG_CR => 1,
            REG_IMSC => self.imsc,
            REG_RIS => self.ris,
            REG_MIS => self.ris & self.imsc,
            0xfe0..=0xfff if offset % 4 == 0 => u32::from(IDS[((offset - 0xfe0) / 4) as usize]),
            _ => 0,
        }
    }

    fn set_register(&mut self, offset: u64, v: u32) {
        match offset {
            REG_MR => self.mr = v,
            REG_LR => self.offset = v.wrapping_sub((self.clock)() as u32),
            REG_IMSC => self.imsc = v & 1,
            REG_ICR => self.ris &= !v,
            _ => {} // DR and the status registers are read-only; CR only starts
        }
    }
}

impl BusDevice for Pl031 {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    use super::*;

    fn rtc_at(t: Arc<AtomicU64>) -> Pl031 {
        Pl031::with_clock(Box::new(move || t.load(Ordering::SeqCst)))
    }

    fn read32(r: &mut Pl031, off: u64) -> u32 {
        let mut b = [0u8; 4];
        r.read(0, off, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn test_pl031_counts_host_seconds() {
        let t = Arc::new(AtomicU64::new(1_700_000_000));
        let mut r = rtc_at(t.clone());
        assert_eq!(read32(&mut r, REG_DR), 1_700_000_000);
        t.fetch_add(5, Ordering::SeqCst);
        assert_eq!(read32(&mut r, REG_DR), 1_700_000_005);
        assert_eq!(read32(&mut r, REG_CR), 1, "started");
    }

    #[test]
    fn test_pl031_load_sets_the_counter_which_keeps_running() {
        let t = Arc::new(AtomicU64::new(1_000));
        let mut r = rtc_at(t.clone());
        r.write(0, REG_LR, &42u32.to_le_bytes());
        assert_eq!(read32(&mut r, REG_DR), 42);
        t.fetch_add(10, Ordering::SeqCst);
        assert_eq!(read32(&mut r, REG_DR), 52);
        // DR is read-only.
        r.write(0, REG_DR, &0u32.to_le_bytes());
        assert_eq!(read32(&mut r, REG_DR), 52);
    }

    #[test]
    fn test_pl031_ids_and_interrupt_registers() {
        let mut r = Pl031::new();
        let ids: Vec<u32> = (0..8).map(|i| read32(&mut r, 0xfe0 + 4 * i)).collect();
        assert_eq!(ids, [0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1]);
        r.write(0, REG_IMSC, &u32::MAX.to_le_bytes());
        assert_eq!(read32(&mut r, REG_IMSC), 1);
        assert_eq!(read32(&mut r, REG_MIS), 0);
        r.write(0, REG_MR, &7u32.to_le_bytes());
        assert_eq!(read32(&mut r, REG_MR), 7);
        assert!(read32(&mut r, REG_DR) > 1_600_000_000, "host wall clock");
    }

    #[test]
    fn test_pl031_arbitrary_accesses_never_panic() {
        let mut r = Pl031::new();
        for off in (0..0x1000u64).chain([u64::MAX, u64::MAX - 3]) {
            for len in 0..=9 {
                let mut buf = vec![0xffu8; len];
                r.read(0, off, &mut buf);
                r.write(0, off, &buf);
            }
        }
    }
}
