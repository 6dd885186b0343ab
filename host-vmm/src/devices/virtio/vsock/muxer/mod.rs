//! The connection multiplexer: routes guest packets to connections, host
//! clients to new connections, and picks the next packet for the guest.
//!
//! It owns the epoll set of the device thread (the worker adds its
//! eventfds under tokens below [`FIRST_MUXER_TOKEN`]), the Unix listener,
//! the host clients still sending their `CONNECT` line, and the
//! connections. Everything it holds is bounded: connections and pending
//! clients by [`VsockLimits`], each connection's guest data by its
//! `buf_alloc`, and queued RSTs by `max_queued_rsts`.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};

mod clients;
#[cfg(test)]
mod tests;

use clients::PendingClient;

use super::connection::{Connection, HostStreamFailed, RxPacket, Verdict};
use super::packet::{Op, VsockHeader, HOST_CID, TYPE_STREAM};
use super::unix::{connect_nonblocking, port_socket_path};
use crate::guest_warn;

/// Tokens below this belong to the worker.
pub const FIRST_MUXER_TOKEN: u64 = 8;
const TOKEN_LISTENER: u64 = FIRST_MUXER_TOKEN;
const FIRST_DYNAMIC_TOKEN: u64 = 16;
/// Host ports for host-initiated connections start here.
const FIRST_LOCAL_PORT: u32 = 1 << 30;
/// Clients accepted per listener event (then epoll again).
const ACCEPT_BATCH: usize = 64;

/// Bytes of guest data held per connection before the host stream takes
/// them (advertised to the guest as `buf_alloc`; the credit check refuses
/// more).
pub const DEFAULT_BUF_ALLOC: u32 = 256 * 1024;
/// Live connections at once, both directions. The rx work list holds at
/// most one entry per live connection.
pub const MAX_CONNECTIONS: usize = 256;
/// Host clients accepted that have not sent their `CONNECT` line.
pub const MAX_PENDING_CLIENTS: usize = 64;
/// How long a host client may take to send `CONNECT`, and the guest to
/// answer a host REQUEST.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// RSTs waiting for an rx buffer (a guest that does not read its rx queue
/// gets no more; they are dropped and logged).
pub const MAX_QUEUED_RSTS: usize = 1024;

/// The device's resource bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsockLimits {
    /// Bytes of guest data held per connection (advertised as buf_alloc).
    pub buf_alloc: u32,
    /// Live connections at once.
    pub max_connections: usize,
    /// Host clients that connected but have not sent `CONNECT` yet.
    pub max_pending_clients: usize,
    /// How long a host client may take to send `CONNECT`, and the guest
    /// to answer the REQUEST.
    pub connect_timeout: Duration,
    /// RSTs waiting for an rx buffer.
    pub max_queued_rsts: usize,
}

impl Default for VsockLimits {
    /// Worst-case memory for held guest data: 256 KiB × 256 = 64 MiB.
    fn default() -> Self {
        Self {
            buf_alloc: DEFAULT_BUF_ALLOC,
            max_connections: MAX_CONNECTIONS,
            max_pending_clients: MAX_PENDING_CLIENTS,
            connect_timeout: CONNECT_TIMEOUT,
            max_queued_rsts: MAX_QUEUED_RSTS,
        }
    }
}

/// (host port, guest port).
pub type ConnKey = (u32, u32);

#[derive(Debug, Clone, Copy)]
enum Target {
    Pending,
    Conn(ConnKey),
}

/// See the module documentation.
pub struct Muxer {
    guest_cid: u64,
    uds_path: PathBuf,
    limits: VsockLimits,
    epoll: Epoll,
    listener: UnixListener,
    conns: HashMap<ConnKey, Connection>,
    conn_tokens: HashMap<ConnKey, u64>,
    targets: HashMap<u64, Target>,
    pending: HashMap<u64, PendingClient>,
    next_token: u64,
    next_local_port: u32,
    rsts: VecDeque<VsockHeader>,
    rx_work: VecDeque<ConnKey>,
}

fn ctl(epoll: &Epoll, op: ControlOperation, fd: i32, events: u32, token: u64) -> io::Result<()> {
    epoll.ctl(
        op,
        fd,
        EpollEvent::new(EventSet::from_bits_truncate(events), token),
    )
}

impl Muxer {
    /// `listener` is the device's non-blocking listener at `uds_path`.
    pub fn new(
        guest_cid: u64,
        uds_path: PathBuf,
        listener: UnixListener,
        limits: VsockLimits,
    ) -> io::Result<Self> {
        let epoll = Epoll::new()?;
        ctl(
            &epoll,
            ControlOperation::Add,
            listener.as_raw_fd(),
            libc::EPOLLIN as u32,
            TOKEN_LISTENER,
        )?;
        Ok(Self {
            guest_cid,
            uds_path,
            limits,
            epoll,
            listener,
            conns: HashMap::new(),
            conn_tokens: HashMap::new(),
            targets: HashMap::new(),
            pending: HashMap::new(),
            next_token: FIRST_DYNAMIC_TOKEN,
            next_local_port: FIRST_LOCAL_PORT,
            rsts: VecDeque::new(),
            rx_work: VecDeque::new(),
        })
    }

    /// The device thread's epoll set.
    pub fn epoll(&self) -> &Epoll {
        &self.epoll
    }

    /// Live connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Entries in the rx work list: at most one per live connection.
    pub fn rx_work_len(&self) -> usize {
        self.rx_work.len()
    }

    /// RSTs waiting for an rx buffer: at most `max_queued_rsts`.
    pub fn queued_rsts(&self) -> usize {
        self.rsts.len()
    }

    /// Host clients still sending their `CONNECT` line.
    pub fn pending_clients(&self) -> usize {
        self.pending.len()
    }

    /// Guest data held for host streams, over all connections.
    pub fn held_bytes(&self) -> usize {
        self.conns.values().map(Connection::held).sum()
    }

    /// An epoll event for a token at or above [`FIRST_MUXER_TOKEN`].
    pub fn handle_event(&mut self, token: u64, events: u32) {
        if token == TOKEN_LISTENER {
            self.accept_clients();
            return;
        }
        match self.targets.get(&token).copied() {
            Some(Target::Pending) => self.pending_readable(token),
            Some(Target::Conn(key)) => self.conn_event(key, events),
            None => {}
        }
    }

    fn alloc_token(&mut self, target: Target) -> u64 {
        let t = self.next_token;
        self.next_token += 1;
        self.targets.insert(t, target);
        t
    }

    fn conn_event(&mut self, key: ConnKey, events: u32) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let mut v = Verdict::Keep;
        if events & libc::EPOLLERR as u32 != 0 {
            v = Verdict::Reset;
        }
        if v == Verdict::Keep && events & libc::EPOLLIN as u32 != 0 {
            conn.host_readable = true;
        }
        if v == Verdict::Keep && events & libc::EPOLLOUT as u32 != 0 {
            v = conn.flush();
        }
        if v == Verdict::Keep && events & libc::EPOLLHUP as u32 != 0 {
            v = conn.hang_up();
        }
        self.apply(key, v);
    }

    /// Carry out a connection's verdict.
    fn apply(&mut self, key: ConnKey, v: Verdict) {
        match v {
            Verdict::Keep => self.sync(key),
            Verdict::Reset => self.kill(key, true),
            Verdict::Drop => self.kill(key, false),
        }
    }

    /// Bring the connection's epoll interest and rx-work membership up to
    /// date.
    fn sync(&mut self, key: ConnKey) {
        let Some(conn) = self.conns.get_mut(&key) else {
            return;
        };
        let Some(&token) = self.conn_tokens.get(&key) else {
            return;
        };
        let want = (!conn.host_hup).then(|| conn.wanted_interest());
        if want != conn.interest {
            let fd = conn.stream.as_raw_fd();
            let res = match (conn.interest, want) {
                (Some(_), None) => ctl(&self.epoll, ControlOperation::Delete, fd, 0, token),
                (None, Some(ev)) => ctl(&self.epoll, ControlOperation::Add, fd, ev, token),
                (Some(_), Some(ev)) => ctl(&self.epoll, ControlOperation::Modify, fd, ev, token),
                (None, None) => Ok(()),
            };
            if let Err(e) = res {
                tracing::warn!(error = %e, "vsock: epoll update failed: connection reset");
                conn.interest = None;
                self.kill(key, true);
                return;
            }
            conn.interest = want;
        }
        if conn.has_rx() && !conn.queued {
            conn.queued = true;
            self.rx_work.push_back(key);
        }
    }

    /// Remove a connection (closing its host stream), optionally telling
    /// the guest with an RST.
    fn kill(&mut self, key: ConnKey, rst: bool) {
        let Some(conn) = self.conns.remove(&key) else {
            return;
        };
        if conn.queued {
            // The rx work list holds live keys only, each at most once, so
            // it never outgrows `max_connections` (a REQUEST/RST loop from
            // a guest that posts no rx buffers used to grow it forever).
            self.rx_work.retain(|k| *k != key);
        }
        if let Some(token) = self.conn_tokens.remove(&key) {
            if conn.interest.is_some() {
                let _ = ctl(
                    &self.epoll,
                    ControlOperation::Delete,
                    conn.stream.as_raw_fd(),
                    0,
                    token,
                );
            }
            self.targets.remove(&token);
        }
        tracing::debug!(
            local_port = key.0,
            peer_port = key.1,
            rst,
            "vsock: connection closed"
        );
        if rst {
            let h = VsockHeader::host_to_guest(self.guest_cid, key.0, key.1, Op::Rst);
            self.queue_rst(h);
        }
    }

    fn queue_rst(&mut self, h: VsockHeader) {
        if self.rsts.len() >= self.limits.max_queued_rsts {
            guest_warn!("vsock: RST queue full (guest not reading its rx queue): RST dropped");
            return;
        }
        self.rsts.push_back(h);
    }

    /// Answer a guest packet with RST (unless it is one).
    fn refuse(&mut self, hdr: &VsockHeader) {
        if hdr.op != Op::Rst as u16 {
            let mut r = hdr.rst_reply();
            r.dst_cid = self.guest_cid;
            self.queue_rst(r);
        }
    }

    /// A packet the worker could not take (bad length): reset its
    /// connection if there is one, else answer RST.
    pub fn reject(&mut self, hdr: &VsockHeader) {
        let key = (hdr.dst_port, hdr.src_port);
        if hdr.src_cid == self.guest_cid && self.conns.contains_key(&key) {
            self.kill(key, true);
        } else if hdr.src_cid == self.guest_cid {
            self.refuse(hdr);
        }
    }

    /// A packet from the guest's tx queue. `payload` is its data (RW only;
    /// empty otherwise), already checked against `hdr.len`.
    pub fn recv_pkt(&mut self, hdr: &VsockHeader, payload: &[u8]) {
        if hdr.src_cid != self.guest_cid {
            guest_warn!(
                src_cid = hdr.src_cid,
                "vsock: packet with a spoofed source CID dropped"
            );
            return;
        }
        if hdr.dst_cid != HOST_CID || hdr.type_ != TYPE_STREAM {
            guest_warn!(
                dst_cid = hdr.dst_cid,
                type_ = hdr.type_,
                "vsock: packet not for a host stream: RST"
            );
            self.refuse(hdr);
            return;
        }
        let Some(op) = hdr.op() else {
            guest_warn!(op = hdr.op, "vsock: unknown packet op: RST");
            self.refuse(hdr);
            return;
        };
        let key = (hdr.dst_port, hdr.src_port);
        if let Some(conn) = self.conns.get_mut(&key) {
            let v = if op == Op::Request {
                guest_warn!(
                    port = hdr.dst_port,
                    "vsock: REQUEST for a live connection: reset"
                );
                Verdict::Reset
            } else {
                conn.recv(hdr, op, payload)
            };
            self.apply(key, v);
            return;
        }
        match op {
            Op::Request => self.guest_connect(hdr),
            Op::Rst => {}
            _ => self.refuse(hdr),
        }
    }

    /// The guest connects to host port `hdr.dst_port`: connect to the
    /// listener at `<uds_path>_<port>` or refuse.
    fn guest_connect(&mut self, hdr: &VsockHeader) {
        if self.conns.len() >= self.limits.max_connections {
            guest_warn!(
                port = hdr.dst_port,
                "vsock: too many connections: guest REQUEST refused"
            );
            self.refuse(hdr);
            return;
        }
        let path = port_socket_path(&self.uds_path, hdr.dst_port);
        let stream = match connect_nonblocking(&path) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(path = %path.display(), error = %e, "vsock: guest connection refused");
                self.refuse(hdr);
                return;
            }
        };
        let key = (hdr.dst_port, hdr.src_port);
        let conn = Connection::guest_initiated(self.guest_cid, hdr, stream, self.limits.buf_alloc);
        let token = self.alloc_token(Target::Conn(key));
        self.conn_tokens.insert(key, token);
        self.conns.insert(key, conn);
        tracing::debug!(
            local_port = key.0,
            peer_port = key.1,
            "vsock: guest connected"
        );
        self.sync(key);
    }

    /// Whether a packet may be waiting for the guest.
    pub fn has_rx(&self) -> bool {
        !self.rsts.is_empty() || !self.rx_work.is_empty()
    }

    /// The next packet for the guest; RW data goes to `scratch`.
    pub fn next_rx(&mut self, scratch: &mut [u8]) -> Option<RxPacket> {
        if let Some(hdr) = self.rsts.pop_front() {
            return Some(RxPacket {
                hdr,
                payload_len: 0,
            });
        }
        for _ in 0..self.rx_work.len() {
            let key = self.rx_work.pop_front()?;
            let Some(conn) = self.conns.get_mut(&key) else {
                continue;
            };
            conn.queued = false;
            let pkt = match conn.next_rx(scratch) {
                Ok(p) => p,
                Err(HostStreamFailed) => {
                    self.kill(key, true);
                    return self.rsts.pop_front().map(|hdr| RxPacket {
                        hdr,
                        payload_len: 0,
                    });
                }
            };
            let v = conn.check_done();
            self.apply(key, v);
            if pkt.is_some() {
                return pkt;
            }
        }
        self.rsts.pop_front().map(|hdr| RxPacket {
            hdr,
            payload_len: 0,
        })
    }

    /// Writing a packet to the guest failed after its data was taken from
    /// the host: the stream has a hole, so reset the connection.
    pub fn lost(&mut self, hdr: &VsockHeader) {
        self.kill((hdr.src_port, hdr.dst_port), true);
    }

    /// Milliseconds until the next deadline (-1: none).
    pub fn timeout_ms(&self, now: Instant) -> i32 {
        let next = self
            .pending
            .values()
            .map(|p| p.deadline)
            .chain(self.conns.values().filter_map(Connection::deadline))
            .min();
        match next {
            None => -1,
            Some(d) => {
                let ms = d.saturating_duration_since(now).as_millis();
                // Round up so we wake after, not just before, the deadline.
                i32::try_from(ms + 1).unwrap_or(i32::MAX)
            }
        }
    }

    /// Drop host clients and host connections whose deadline passed.
    pub fn expire(&mut self, now: Instant) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        for t in late {
            tracing::warn!("vsock: host client sent no CONNECT line in time");
            self.drop_pending(t);
        }
        let late: Vec<ConnKey> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline().is_some_and(|d| d <= now))
            .map(|(&k, _)| k)
            .collect();
        for key in late {
            tracing::warn!(
                peer_port = key.1,
                "vsock: guest did not answer a host connection in time"
            );
            self.kill(key, true);
        }
    }
}
