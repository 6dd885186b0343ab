//! Connection slots: at most `max` connections live at once. A slot is taken when a
//! connection is accepted and given back when its [`Slot`] drops.
//!
//! The slot rides in the connection's ttrpc data ([`ttrpc`]'s `HookOutput.data`). ttrpc
//! 0.10's sync server keeps that data in one `Arc<ConnectionContext>` whose clones are held
//! by the connection's reader thread, its control thread and every handler thread (and by
//! each call's `TtrpcContext` while the call runs); the listener drops its own at once. So
//! the slot is given back only when every thread of the connection has finished, including
//! a handler still blocked in a call after the peer hung up: a slot counts a connection's
//! threads, not only its socket. (`tests` in `super` checks this against the real server.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The shared counter of live connections.
#[derive(Debug, Clone)]
pub struct Slots {
    live: Arc<AtomicUsize>,
    max: usize,
}

/// One live connection; dropping it frees its slot.
#[derive(Debug)]
pub struct Slot {
    live: Arc<AtomicUsize>,
}

impl Slots {
    pub fn new(max: usize) -> Self {
        Self {
            live: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Takes a slot, or `Err(live)` when all `max` are taken.
    pub fn take(&self) -> Result<Slot, usize> {
        self.live
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .map(|_| Slot {
                live: Arc::clone(&self.live),
            })
    }

    /// Connections live now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_at_most_max_and_a_dropped_slot_is_free_again() {
        let slots = Slots::new(2);
        let a = slots.take().unwrap();
        let b = slots.take().unwrap();
        assert_eq!(slots.take().unwrap_err(), 2);
        assert_eq!(slots.live(), 2);
        drop(a);
        assert_eq!(slots.live(), 1);
        let c = slots.take().unwrap();
        assert!(slots.take().is_err());
        drop((b, c));
        assert_eq!(slots.live(), 0);
    }

    #[test]
    fn test_racing_takers_never_pass_the_max() {
        let slots = Slots::new(8);
        let taken: Vec<Slot> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..32).map(|_| s.spawn(|| slots.take().ok())).collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().unwrap())
                .collect()
        });
        assert_eq!(taken.len(), 8);
        assert_eq!(slots.live(), 8);
        drop(taken);
        assert_eq!(slots.live(), 0);
    }
}
