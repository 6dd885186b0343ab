//! One vsock stream connection between a guest port and a host Unix
//! stream: its state machine, credit and the bounded buffer of guest data
//! the host has not read yet.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use super::credit::Credit;
use super::packet::{Op, VsockHeader, SHUTDOWN_BOTH, SHUTDOWN_RCV, SHUTDOWN_SEND};

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// The host asked (CONNECT); REQUEST sent or pending; waiting for the
    /// guest's RESPONSE until the deadline.
    LocalInit { deadline: Instant },
    /// Data flows.
    Established,
}

/// What the muxer must do after a connection handled an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Keep the connection.
    Keep,
    /// Send the guest an RST and drop the connection.
    Reset,
    /// Drop the connection without telling the guest (it sent RST).
    Drop,
}

/// Control packets owed to the guest, sent in this order.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Owed {
    request: bool,
    response: bool,
    shutdown: bool,
    credit_update: bool,
    credit_request: bool,
}

/// A host → guest packet: header plus `payload_len` bytes in the caller's
/// scratch buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxPacket {
    pub hdr: VsockHeader,
    pub payload_len: usize,
}

/// The host stream failed: the connection must be reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostStreamFailed;

/// One connection. `local_port` is the host-side port, `peer_port` the
/// guest's.
#[derive(Debug)]
pub struct Connection {
    pub local_port: u32,
    pub peer_port: u32,
    guest_cid: u64,
    pub stream: UnixStream,
    pub state: ConnState,
    pub credit: Credit,
    /// Guest data not yet written to the host stream. At most
    /// `credit.buf_alloc` bytes: the credit check guarantees it.
    to_host: VecDeque<u8>,
    owed: Owed,
    /// The host stream may have data (epoll said so, no EAGAIN since).
    pub host_readable: bool,
    /// The host stream reached end of file.
    pub host_eof: bool,
    /// The host stream hung up (both directions): it is out of epoll.
    pub host_hup: bool,
    /// SHUTDOWN flags received from the guest.
    pub peer_shutdown: u32,
    /// We wrote our half-close to the host stream.
    host_write_closed: bool,
    /// A CREDIT_REQUEST went out since credit last ran dry.
    credit_requested: bool,
    /// Epoll interest currently registered; `None` when not in epoll.
    pub interest: Option<u32>,
    /// In the muxer's rx work list.
    pub queued: bool,
}

impl Connection {
    fn new(
        guest_cid: u64,
        local_port: u32,
        peer_port: u32,
        stream: UnixStream,
        state: ConnState,
        buf_alloc: u32,
    ) -> Self {
        Self {
            local_port,
            peer_port,
            guest_cid,
            stream,
            state,
            credit: Credit::new(buf_alloc),
            to_host: VecDeque::new(),
            owed: Owed::default(),
            host_readable: false,
            host_eof: false,
            host_hup: false,
            peer_shutdown: 0,
            host_write_closed: false,
            credit_requested: false,
            interest: None,
            queued: false,
        }
    }

    /// A connection the host asked for: REQUEST owed to the guest.
    pub fn host_initiated(
        guest_cid: u64,
        local_port: u32,
        peer_port: u32,
        stream: UnixStream,
        buf_alloc: u32,
        deadline: Instant,
    ) -> Self {
        let mut c = Self::new(
            guest_cid,
            local_port,
            peer_port,
            stream,
            ConnState::LocalInit { deadline },
            buf_alloc,
        );
        c.owed.request = true;
        c
    }

    /// A connection the guest asked for (REQUEST `req`), already connected
    /// to the host listener: RESPONSE owed.
    pub fn guest_initiated(
        guest_cid: u64,
        req: &VsockHeader,
        stream: UnixStream,
        buf_alloc: u32,
    ) -> Self {
        let mut c = Self::new(
            guest_cid,
            req.dst_port,
            req.src_port,
            stream,
            ConnState::Established,
            buf_alloc,
        );
        c.credit.update_peer(req.buf_alloc, req.fwd_cnt);
        c.owed.response = true;
        c
    }

    /// Guest data held for the host.
    pub fn held(&self) -> usize {
        self.to_host.len()
    }

    /// Whether we want the host stream's data now: only what the guest
    /// has credit for, and never before the connection is established.
    pub fn wants_host_data(&self) -> bool {
        self.state == ConnState::Established
            && !self.host_eof
            && self.peer_shutdown & SHUTDOWN_RCV == 0
            && self.credit.peer_free() > 0
    }

    /// Whether the connection has a packet for the guest (or may have, if
    /// the host stream turns out to have data).
    pub fn has_rx(&self) -> bool {
        self.owed != Owed::default() || (self.host_readable && self.wants_host_data())
    }

    /// Epoll interest wanted now (EPOLLIN / EPOLLOUT bits).
    pub fn wanted_interest(&self) -> u32 {
        if self.host_hup {
            return 0;
        }
        let mut ev = 0;
        if self.wants_host_data() && !self.host_readable {
            ev |= libc::EPOLLIN as u32;
        }
        if !self.to_host.is_empty() {
            ev |= libc::EPOLLOUT as u32;
        }
        ev
    }

    fn header(&mut self, op: Op) -> VsockHeader {
        let mut h = VsockHeader::host_to_guest(self.guest_cid, self.local_port, self.peer_port, op);
        (h.buf_alloc, h.fwd_cnt) = self.credit.stamp();
        h
    }

    /// The next packet for the guest, reading host data into `scratch`
    /// (at most `scratch.len()` bytes). An error means: reset the
    /// connection (the host stream failed).
    pub fn next_rx(&mut self, scratch: &mut [u8]) -> Result<Option<RxPacket>, HostStreamFailed> {
        let take = std::mem::take::<bool>;
        let (op, len, flags) = if take(&mut self.owed.request) {
            (Op::Request, 0, 0)
        } else if take(&mut self.owed.response) {
            (Op::Response, 0, 0)
        } else if let Some(n) = self.read_host(scratch)? {
            (Op::Rw, n, 0)
        } else if take(&mut self.owed.shutdown) {
            (Op::Shutdown, 0, SHUTDOWN_SEND)
        } else if take(&mut self.owed.credit_update) {
            (Op::CreditUpdate, 0, 0)
        } else if take(&mut self.owed.credit_request) {
            (Op::CreditRequest, 0, 0)
        } else {
            return Ok(None);
        };
        // Every packet carries our credit: no separate update needed.
        self.owed.credit_update = false;
        let mut hdr = self.header(op);
        // `len` <= scratch.len() <= MAX_PKT_PAYLOAD.
        hdr.len = len as u32;
        hdr.flags = flags;
        Ok(Some(RxPacket {
            hdr,
            payload_len: len,
        }))
    }

    /// Read host data the guest has credit for. `Ok(None)`: nothing now
    /// (no credit, would block, or end of file, which owes a SHUTDOWN).
    fn read_host(&mut self, scratch: &mut [u8]) -> Result<Option<usize>, HostStreamFailed> {
        if !(self.host_readable && self.wants_host_data()) {
            return Ok(None);
        }
        let max = scratch.len().min(self.credit.peer_free() as usize);
        match (&self.stream).read(&mut scratch[..max]) {
            Ok(0) => {
                self.host_eof = true;
                self.host_readable = false;
                self.owed.shutdown = true;
                Ok(None)
            }
            Ok(n) => {
                self.credit.on_sent(n as u32);
                if self.credit.peer_free() == 0 && !self.credit_requested {
                    self.credit_requested = true;
                    self.owed.credit_request = true;
                }
                Ok(Some(n))
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.host_readable = false;
                Ok(None)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => {
                tracing::debug!(error = %e, port = self.peer_port, "vsock: host stream read failed");
                Err(HostStreamFailed)
            }
        }
    }

    /// Handle a packet from the guest for this connection. `payload` is the
    /// packet's data (RW only).
    pub fn recv(&mut self, hdr: &VsockHeader, op: Op, payload: &[u8]) -> Verdict {
        self.credit.update_peer(hdr.buf_alloc, hdr.fwd_cnt);
        if self.credit.peer_free() > 0 {
            self.credit_requested = false;
        }
        match (op, self.state) {
            (Op::Rst, _) => Verdict::Drop,
            (Op::Response, ConnState::LocalInit { .. }) => self.established(),
            (Op::Rw, ConnState::Established) => self.guest_data(payload),
            (Op::Shutdown, ConnState::Established) => {
                self.peer_shutdown |= hdr.flags & SHUTDOWN_BOTH;
                self.after_flush()
            }
            (Op::CreditUpdate, ConnState::Established) => Verdict::Keep,
            (Op::CreditRequest, ConnState::Established) => {
                self.owed.credit_update = true;
                Verdict::Keep
            }
            _ => {
                crate::guest_warn!(
                    op = ?op,
                    state = ?self.state,
                    port = self.peer_port,
                    "vsock: unexpected packet for the connection state: reset"
                );
                Verdict::Reset
            }
        }
    }

    /// The guest accepted a host connection: tell the host client.
    fn established(&mut self) -> Verdict {
        self.state = ConnState::Established;
        let line = format!("OK {}\n", self.local_port);
        // The first bytes on a fresh socket: they fit its buffer.
        match (&self.stream).write(line.as_bytes()) {
            Ok(n) if n == line.len() => Verdict::Keep,
            _ => {
                tracing::debug!(port = self.peer_port, "vsock: host client gone before OK");
                Verdict::Reset
            }
        }
    }

    fn guest_data(&mut self, payload: &[u8]) -> Verdict {
        if self.peer_shutdown & SHUTDOWN_SEND != 0 {
            crate::guest_warn!(
                port = self.peer_port,
                "vsock: guest sent data after SHUTDOWN: reset"
            );
            return Verdict::Reset;
        }
        let len = payload.len() as u32;
        if !self.credit.guest_may_send(len) {
            crate::guest_warn!(
                port = self.peer_port,
                len,
                held = self.held(),
                buf_alloc = self.credit.buf_alloc,
                "vsock: guest exceeded its credit: reset"
            );
            return Verdict::Reset;
        }
        self.credit.on_received(len);
        let mut rest = payload;
        if self.to_host.is_empty() && !self.host_write_closed {
            match write_some(&self.stream, rest) {
                Ok(n) => {
                    self.credit.on_forwarded(n as u32);
                    rest = &rest[n..];
                }
                Err(_) => return Verdict::Reset,
            }
        }
        // Grow geometrically but never past buf_alloc, so the memory held
        // is bounded by what we advertised, not twice that.
        let need = self.to_host.len() + rest.len();
        if need > self.to_host.capacity() {
            let target = (self.to_host.capacity() * 2)
                .max(need)
                .min(self.credit.buf_alloc as usize);
            self.to_host.reserve_exact(target - self.to_host.len());
        }
        self.to_host.extend(rest);
        if self.credit.wants_update() {
            self.owed.credit_update = true;
        }
        Verdict::Keep
    }

    /// EPOLLOUT on the host stream: write held data.
    pub fn flush(&mut self) -> Verdict {
        while !self.to_host.is_empty() {
            let (front, _) = self.to_host.as_slices();
            match write_some(&self.stream, front) {
                Ok(0) => break,
                Ok(n) => {
                    self.to_host.drain(..n);
                    self.credit.on_forwarded(n as u32);
                }
                Err(_) => return Verdict::Reset,
            }
        }
        if self.to_host.is_empty() && self.to_host.capacity() > 64 * 1024 {
            self.to_host.shrink_to(0);
        }
        if self.credit.wants_update() {
            self.owed.credit_update = true;
        }
        self.after_flush()
    }

    /// Act on the guest's SHUTDOWN once its data is with the host.
    fn after_flush(&mut self) -> Verdict {
        if !self.to_host.is_empty() {
            return Verdict::Keep;
        }
        if self.peer_shutdown == SHUTDOWN_BOTH {
            // The guest closed: our RST completes the close on its side.
            return Verdict::Reset;
        }
        if self.peer_shutdown & SHUTDOWN_SEND != 0 && !self.host_write_closed {
            self.host_write_closed = true;
            let _ = self.stream.shutdown(Shutdown::Write);
        }
        Verdict::Keep
    }

    /// EPOLLHUP: the host closed both directions. Unread data is still
    /// there to be read; nothing more can be written.
    pub fn hang_up(&mut self) -> Verdict {
        self.host_hup = true;
        self.host_readable = !self.host_eof;
        if !self.to_host.is_empty() {
            return Verdict::Reset;
        }
        self.check_done()
    }

    /// Both directions finished on the host side and nothing is left to
    /// deliver: reset (the guest learns the connection is gone).
    pub fn check_done(&self) -> Verdict {
        if self.host_hup && self.host_eof && self.to_host.is_empty() && !self.owed.shutdown {
            Verdict::Reset
        } else {
            Verdict::Keep
        }
    }

    /// The LocalInit deadline, if waiting for the guest.
    pub fn deadline(&self) -> Option<Instant> {
        match self.state {
            ConnState::LocalInit { deadline } => Some(deadline),
            ConnState::Established => None,
        }
    }
}

/// Write what the non-blocking stream takes now (0 on EAGAIN).
fn write_some(mut stream: &UnixStream, buf: &[u8]) -> io::Result<usize> {
    if buf.is_empty() {
        return Ok(0);
    }
    loop {
        match stream.write(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::debug!(error = %e, "vsock: host stream write failed");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::vsock::packet::{HOST_CID, TYPE_STREAM};

    fn req(buf_alloc: u32) -> VsockHeader {
        VsockHeader {
            src_cid: 3,
            dst_cid: HOST_CID,
            src_port: 40000,
            dst_port: 5000,
            type_: TYPE_STREAM,
            op: Op::Request as u16,
            buf_alloc,
            ..Default::default()
        }
    }

    #[test]
    fn test_connection_holds_at_most_buf_alloc_for_a_stalled_host() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let buf_alloc = 100_000;
        let mut c = Connection::guest_initiated(3, &req(0), ours, buf_alloc);
        let rw = VsockHeader {
            op: Op::Rw as u16,
            ..req(0)
        };
        let chunk = vec![7u8; 4096];
        // Fill the socket buffer and then our buffer, exactly to credit.
        let mut sent = 0u64;
        loop {
            let room = c.credit.buf_alloc - c.credit.held();
            let n = room.min(4096) as usize;
            if n == 0 {
                break;
            }
            assert_eq!(c.recv(&rw, Op::Rw, &chunk[..n]), Verdict::Keep);
            sent += n as u64;
        }
        assert_eq!(c.held(), buf_alloc as usize);
        assert!(
            c.to_host.capacity() <= buf_alloc as usize,
            "{}",
            c.to_host.capacity()
        );
        assert!(sent > u64::from(buf_alloc), "the socket took some directly");
        // One byte more is a credit violation.
        assert_eq!(c.recv(&rw, Op::Rw, &[1]), Verdict::Reset);
    }

    #[test]
    fn test_connection_packet_order_and_credit_stamp() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut c = Connection::guest_initiated(3, &req(1000), ours, 5000);
        let mut scratch = [0u8; 64];
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!(p.hdr.op(), Some(Op::Response));
        assert_eq!((p.hdr.buf_alloc, p.hdr.fwd_cnt), (5000, 0));
        assert_eq!(c.next_rx(&mut scratch).unwrap(), None);
        // Host data, limited by the scratch size and the guest's credit.
        (&theirs).write_all(&[9u8; 100]).unwrap();
        c.host_readable = true;
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!((p.hdr.op(), p.payload_len), (Some(Op::Rw), 64));
        c.credit.update_peer(70, 0);
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!(p.payload_len, 6, "credit left: 70 - 64");
        // Out of credit: a CREDIT_REQUEST, once.
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!(p.hdr.op(), Some(Op::CreditRequest));
        assert_eq!(c.next_rx(&mut scratch).unwrap(), None);
        assert!(!c.has_rx());
        // Host EOF: SHUTDOWN(SEND) once the guest has credit again.
        drop(theirs);
        c.credit.update_peer(1000, 70);
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!(p.payload_len, 30);
        let p = c.next_rx(&mut scratch).unwrap().unwrap();
        assert_eq!(
            (p.hdr.op(), p.hdr.flags),
            (Some(Op::Shutdown), SHUTDOWN_SEND)
        );
    }

    #[test]
    fn test_connection_unexpected_ops_reset() {
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let deadline = Instant::now();
        let mut c = Connection::host_initiated(3, 1 << 30, 1024, ours, 4096, deadline);
        let h = VsockHeader::default();
        // Data before RESPONSE.
        assert_eq!(c.recv(&h, Op::Rw, b"x"), Verdict::Reset);
        assert_eq!(c.recv(&h, Op::Rst, b""), Verdict::Drop);
        let (ours, _theirs) = UnixStream::pair().unwrap();
        let mut c = Connection::guest_initiated(3, &req(0), ours, 4096);
        assert_eq!(c.recv(&h, Op::Response, b""), Verdict::Reset);
        assert_eq!(c.recv(&h, Op::Request, b""), Verdict::Reset);
    }
}
