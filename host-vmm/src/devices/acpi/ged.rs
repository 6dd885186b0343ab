//! Generic Event Device (ACPI0013): one interrupt line and one event register.
//!
//! The VMM sets event bits and raises the GED interrupt; the guest's GED
//! driver runs `_EVT`, which reads the event register and calls the handler
//! of each pending event (see `crate::acpi::memory_hotplug`).
//!
//! | Offset | Name | Access | Meaning |
//! |--------|------|--------|---------|
//! | 0x0    | GEVT | R (read clears) | pending event bits ([`GED_EVENT_MEMORY`], ...) |
//!
//! Only a 4-byte read at offset 0 returns and clears the pending bits; any
//! other read returns zeros and clears nothing; writes are ignored.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use vmm_sys_util::eventfd::EventFd;

use crate::devices::BusDevice;

pub use crate::acpi::registers::{
    GED_EVENT_MEMORY, GED_EVENT_VIRTIO, GED_MMIO_SIZE, GED_REG_EVENT,
};

/// The host's side of the GED: set event bits and raise the interrupt.
#[derive(Debug)]
pub struct GedNotifier {
    pending: AtomicU32,
    irq: EventFd,
}

impl GedNotifier {
    /// `irq` is the eventfd registered as the GED's irqfd.
    pub fn new(irq: EventFd) -> Arc<Self> {
        Arc::new(GedNotifier {
            pending: AtomicU32::new(0),
            irq,
        })
    }

    /// The interrupt eventfd (to register with KVM).
    pub fn irq(&self) -> &EventFd {
        &self.irq
    }

    /// Mark `events` pending and raise the interrupt.
    pub fn notify(&self, events: u32) -> io::Result<()> {
        self.pending.fetch_or(events, Ordering::SeqCst);
        self.irq.write(1)
    }

    /// The pending bits, cleared (what a guest read of GEVT returns).
    fn take(&self) -> u32 {
        self.pending.swap(0, Ordering::SeqCst)
    }
}

/// The GED's register window on the MMIO bus.
pub struct Ged {
    notifier: Arc<GedNotifier>,
}

impl Ged {
    pub fn new(notifier: Arc<GedNotifier>) -> Self {
        Ged { notifier }
    }
}

impl BusDevice for Ged {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        if offset == GED_REG_EVENT && data.len() == 4 {
            data.copy_from_slice(&self.notifier.take().to_le_bytes());
        } else {
            data.fill(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        tracing::trace!(offset, len = data.len(), "GED: write ignored");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ged() -> (Arc<GedNotifier>, Ged) {
        let n = GedNotifier::new(EventFd::new(libc::EFD_NONBLOCK).unwrap());
        (n.clone(), Ged::new(n))
    }

    fn read32(g: &mut Ged, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        g.read(0, offset, &mut b);
        u32::from_le_bytes(b)
    }

    #[test]
    fn test_ged_notify_raises_irq_and_read_clears() {
        let (n, mut g) = ged();
        assert_eq!(read32(&mut g, 0), 0);
        n.notify(GED_EVENT_MEMORY).unwrap();
        n.notify(1 << 3).unwrap();
        assert_eq!(n.irq().read().unwrap(), 2, "one irqfd write per notify");
        assert_eq!(read32(&mut g, 0), GED_EVENT_MEMORY | 1 << 3);
        assert_eq!(read32(&mut g, 0), 0);
    }

    #[test]
    fn test_ged_odd_accesses_clear_nothing() {
        let (n, mut g) = ged();
        n.notify(GED_EVENT_MEMORY).unwrap();
        for len in [0usize, 1, 2, 3, 8] {
            let mut b = vec![0xaa; len];
            g.read(0, 0, &mut b);
            assert!(b.iter().all(|&x| x == 0), "len {len}");
        }
        for offset in [1, 2, 4, u64::MAX] {
            assert_eq!(read32(&mut g, offset), 0);
        }
        g.write(0, 0, &[0xff; 4]);
        g.write(0, u64::MAX, &[]);
        assert_eq!(read32(&mut g, 0), GED_EVENT_MEMORY);
    }
}
