//! The guest side of one connection, with the credit bookkeeping a
//! well-behaved driver (like Linux) does.

use std::time::Duration;

use super::{Pkt, TestGuest};
use crate::devices::virtio::vsock::packet::{Op, VsockHeader, MAX_PKT_PAYLOAD};

pub struct GuestConn {
    /// Guest port.
    pub port: u32,
    /// Host port.
    pub peer: u32,
    /// What we advertise.
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
    last_fwd_sent: u32,
    /// What the device advertised.
    pub peer_buf_alloc: u32,
    pub peer_fwd_cnt: u32,
    /// Bytes we sent.
    pub tx_cnt: u32,
}

impl GuestConn {
    pub fn new(port: u32, peer: u32, buf_alloc: u32) -> Self {
        Self {
            port,
            peer,
            buf_alloc,
            fwd_cnt: 0,
            last_fwd_sent: 0,
            peer_buf_alloc: 0,
            peer_fwd_cnt: 0,
            tx_cnt: 0,
        }
    }

    /// Record the credit fields of a device packet on this connection.
    pub fn note(&mut self, p: &Pkt) {
        assert_eq!((p.hdr.dst_port, p.hdr.src_port), (self.port, self.peer));
        self.peer_buf_alloc = p.hdr.buf_alloc;
        self.peer_fwd_cnt = p.hdr.fwd_cnt;
    }

    /// Bytes the device lets us send now.
    pub fn credit(&self) -> u32 {
        let in_flight = self.tx_cnt.wrapping_sub(self.peer_fwd_cnt);
        assert!(
            in_flight <= self.peer_buf_alloc,
            "device lowered credit below data in flight"
        );
        self.peer_buf_alloc - in_flight
    }

    pub fn hdr(&mut self, g: &TestGuest, op: Op) -> VsockHeader {
        let mut h = g.hdr(op, self.port, self.peer);
        h.buf_alloc = self.buf_alloc;
        h.fwd_cnt = self.fwd_cnt;
        self.last_fwd_sent = self.fwd_cnt;
        h
    }

    /// Send `data` within credit (`split`: header and payload in separate
    /// descriptors). Packets for this connection that arrive while waiting
    /// for credit are credit updates; anything else is a test failure.
    pub fn send_all(&mut self, g: &mut TestGuest, data: &[u8], split: bool) {
        let mut off = 0;
        while off < data.len() {
            let mut credit = self.credit() as usize;
            while credit == 0 {
                let p = g
                    .recv_for(self.port, Duration::from_secs(10))
                    .expect("credit update");
                assert!(
                    matches!(p.op(), Some(Op::CreditUpdate | Op::CreditRequest | Op::Rw)),
                    "unexpected {:?}",
                    p.op()
                );
                assert!(p.data.is_empty(), "no data expected on this connection");
                self.note(&p);
                credit = self.credit() as usize;
            }
            let n = credit.min(MAX_PKT_PAYLOAD).min(data.len() - off);
            let mut h = self.hdr(g, Op::Rw);
            h.len = n as u32;
            g.send_split(&h, &data[off..off + n], split);
            self.tx_cnt = self.tx_cnt.wrapping_add(n as u32);
            off += n;
        }
    }

    /// Consume received bytes; tell the device when a Linux guest would
    /// (free space below 64 KiB since the last update).
    pub fn consumed(&mut self, g: &mut TestGuest, n: usize) {
        self.fwd_cnt = self.fwd_cnt.wrapping_add(n as u32);
        let unacked = self.fwd_cnt.wrapping_sub(self.last_fwd_sent);
        if self.buf_alloc - unacked.min(self.buf_alloc) < MAX_PKT_PAYLOAD as u32 {
            let h = self.hdr(g, Op::CreditUpdate);
            g.send(&h, &[]);
        }
    }
}
