//! Credit-based flow control of one connection (virtio 1.2, 5.10.6.3),
//! both ways, as plain counters.
//!
//! Guest → host: we advertise `buf_alloc` (the bytes we will hold for the
//! connection) and `fwd_cnt` (bytes we have passed on to the host stream).
//! The guest may have at most `buf_alloc - (rx_cnt - fwd_cnt)` bytes in
//! flight; a guest that sends more is violating the protocol and the
//! connection is reset, so our buffer never exceeds `buf_alloc`.
//!
//! Host → guest: the guest advertises its own `buf_alloc` and `fwd_cnt`; we
//! read from the host stream only as much as the guest can take.
//!
//! All counters are free-running u32 and compared with wrapping arithmetic.

/// Flow-control counters of one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    /// Bytes we hold for guest data (advertised).
    pub buf_alloc: u32,
    /// Guest bytes received on the tx queue.
    pub rx_cnt: u32,
    /// Guest bytes written to the host stream (advertised).
    pub fwd_cnt: u32,
    /// The `fwd_cnt` in the last packet we sent the guest.
    pub last_fwd_cnt_sent: u32,
    /// The guest's receive buffer, from its last header.
    pub peer_buf_alloc: u32,
    /// Bytes the guest has consumed, from its last header.
    pub peer_fwd_cnt: u32,
    /// Bytes we have sent to the guest.
    pub tx_cnt: u32,
}

impl Credit {
    pub fn new(buf_alloc: u32) -> Self {
        Self {
            buf_alloc,
            rx_cnt: 0,
            fwd_cnt: 0,
            last_fwd_cnt_sent: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
        }
    }

    /// Record the credit fields of a guest header.
    pub fn update_peer(&mut self, buf_alloc: u32, fwd_cnt: u32) {
        self.peer_buf_alloc = buf_alloc;
        self.peer_fwd_cnt = fwd_cnt;
    }

    /// Bytes we may send the guest now. A guest claiming to have consumed
    /// more than we sent gets no credit until it makes sense again.
    pub fn peer_free(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        self.peer_buf_alloc.saturating_sub(in_flight)
    }

    /// Guest bytes we hold (received, not yet written to the host).
    pub fn held(&self) -> u32 {
        self.rx_cnt.wrapping_sub(self.fwd_cnt)
    }

    /// Whether the guest may send `len` more bytes within its credit.
    pub fn guest_may_send(&self, len: u32) -> bool {
        u64::from(self.held()) + u64::from(len) <= u64::from(self.buf_alloc)
    }

    pub fn on_received(&mut self, len: u32) {
        self.rx_cnt = self.rx_cnt.wrapping_add(len);
    }

    pub fn on_forwarded(&mut self, len: u32) {
        self.fwd_cnt = self.fwd_cnt.wrapping_add(len);
    }

    pub fn on_sent(&mut self, len: u32) {
        self.tx_cnt = self.tx_cnt.wrapping_add(len);
    }

    /// The (buf_alloc, fwd_cnt) to put in an outgoing header; records that
    /// the guest now knows this `fwd_cnt`.
    pub fn stamp(&mut self) -> (u32, u32) {
        self.last_fwd_cnt_sent = self.fwd_cnt;
        (self.buf_alloc, self.fwd_cnt)
    }

    /// The free space the guest believes we have.
    pub fn guest_view_free(&self) -> u32 {
        let unacked = self.rx_cnt.wrapping_sub(self.last_fwd_cnt_sent);
        self.buf_alloc.saturating_sub(unacked)
    }

    /// Whether a CREDIT_UPDATE is worth sending: a quarter of the buffer
    /// was freed since the guest last heard, or the guest believes it is
    /// nearly out of credit and we have freed anything.
    pub fn wants_update(&self) -> bool {
        let freed = self.fwd_cnt.wrapping_sub(self.last_fwd_cnt_sent);
        let threshold = (self.buf_alloc / 4).max(1);
        freed >= threshold || (freed > 0 && self.guest_view_free() < threshold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_credit_guest_bound_and_update() {
        let mut c = Credit::new(1000);
        assert!(c.guest_may_send(1000));
        assert!(!c.guest_may_send(1001));
        c.on_received(900);
        assert!(c.guest_may_send(100));
        assert!(!c.guest_may_send(101));
        assert_eq!(c.guest_view_free(), 100);
        assert!(!c.wants_update());
        c.on_forwarded(10);
        // The guest thinks 100 free (< 250): any freed byte is worth telling.
        assert!(c.wants_update());
        assert_eq!(c.stamp(), (1000, 10));
        assert!(!c.wants_update());
        assert_eq!(c.held(), 890);
    }

    #[test]
    fn test_credit_peer_free_wraps_and_distrusts() {
        let mut c = Credit::new(1);
        c.tx_cnt = u32::MAX - 5;
        c.update_peer(100, u32::MAX - 10);
        assert_eq!(c.peer_free(), 95);
        c.on_sent(20); // wraps past zero
        assert_eq!(c.peer_free(), 75);
        // A guest claiming to have consumed more than sent: no credit.
        c.update_peer(100, c.tx_cnt.wrapping_add(1));
        assert_eq!(c.peer_free(), 0);
        // A guest with a tiny buffer.
        c.update_peer(0, c.tx_cnt);
        assert_eq!(c.peer_free(), 0);
    }

    #[test]
    fn test_credit_held_wraps() {
        let mut c = Credit::new(64);
        c.rx_cnt = u32::MAX - 1;
        c.fwd_cnt = u32::MAX - 1;
        c.on_received(10);
        assert_eq!(c.held(), 10);
        c.on_forwarded(10);
        assert_eq!(c.held(), 0);
        assert!(c.wants_update() || c.fwd_cnt.wrapping_sub(c.last_fwd_cnt_sent) > 0);
    }
}
