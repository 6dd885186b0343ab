//! The vsock device thread: one epoll loop over the queue eventfds, a kill
//! eventfd, the Unix listener and the host streams. It moves guest packets
//! from the tx queue to the muxer and the muxer's packets into rx buffers,
//! and raises the interrupt when it used buffers.

use std::sync::Arc;
use std::time::Instant;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestAddressSpace;
use vmm_sys_util::epoll::{ControlOperation, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::muxer::{Muxer, FIRST_MUXER_TOKEN};
use super::packet::{Op, VsockHeader, HDR_SIZE, MAX_PKT_PAYLOAD};
use crate::devices::virtio::chain::DescChain;
use crate::devices::virtio::{irq, ActivateError, DeviceQueues, VirtioInterrupt};
use crate::guest_warn;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// Queue indices (virtio 1.2, 5.10.2).
pub const RX_QUEUE: usize = 0;
pub const TX_QUEUE: usize = 1;
pub const EVENT_QUEUE: usize = 2;
/// Number of queues.
pub const NUM_QUEUES: usize = 3;

const TOKEN_KILL: u64 = 0;
const TOKEN_RX: u64 = 1;
const TOKEN_TX: u64 = 2;
const TOKEN_EVENT: u64 = 3;

/// Longest descriptor chain we accept for one packet.
pub const MAX_CHAIN_DESCS: usize = 64;

/// What one pass of the loop found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Buffers returned on the rx queue.
    pub rx_used: usize,
    /// Buffers returned on the tx queue.
    pub tx_used: usize,
    /// A queue has more to do right away.
    pub more: bool,
}

/// The device thread's state. [`VsockWorker::run`] is the thread body;
/// the `process_*` steps are public for tests and fuzzing, which drive
/// them synchronously.
pub struct VsockWorker {
    /// The live guest memory map: each batch of work takes a fresh
    /// snapshot, so RAM hot-plugged after activation is reachable.
    mem: GuestMemoryAtomic,
    rx: Queue,
    tx: Queue,
    queue_evts: Vec<EventFd>,
    /// Kept open: it is in the epoll set (a closed fd would leave it).
    _kill: EventFd,
    interrupt: Arc<VirtioInterrupt>,
    muxer: Muxer,
    scratch: Vec<u8>,
}

impl VsockWorker {
    /// Take over the queues; register the eventfds in the muxer's epoll.
    pub fn new(dq: DeviceQueues, kill: EventFd, muxer: Muxer) -> Result<Self, ActivateError> {
        let DeviceQueues {
            mem,
            queues,
            queue_evts,
            interrupt,
            ..
        } = dq;
        if queues.len() != NUM_QUEUES || queue_evts.len() != NUM_QUEUES {
            return Err(ActivateError::QueueCount {
                got: queues.len(),
                want: NUM_QUEUES,
            });
        }
        if let Some(index) = queues.iter().position(|q| !q.ready()) {
            return Err(ActivateError::QueueNotReady { index });
        }
        let mut queues = queues.into_iter();
        let (Some(rx), Some(tx)) = (queues.next(), queues.next()) else {
            return Err(ActivateError::QueueCount {
                got: 0,
                want: NUM_QUEUES,
            });
        };
        let epoll = muxer.epoll();
        let watch = |fd: &EventFd, token| {
            epoll
                .ctl(
                    ControlOperation::Add,
                    std::os::fd::AsRawFd::as_raw_fd(fd),
                    EpollEvent::new(EventSet::IN, token),
                )
                .map_err(ActivateError::EventFd)
        };
        watch(&kill, TOKEN_KILL)?;
        watch(&queue_evts[RX_QUEUE], TOKEN_RX)?;
        watch(&queue_evts[TX_QUEUE], TOKEN_TX)?;
        watch(&queue_evts[EVENT_QUEUE], TOKEN_EVENT)?;
        Ok(Self {
            mem,
            rx,
            tx,
            queue_evts,
            _kill: kill,
            interrupt,
            muxer,
            scratch: vec![0; MAX_PKT_PAYLOAD],
        })
    }

    pub fn muxer(&self) -> &Muxer {
        &self.muxer
    }

    /// The thread body: serve until the kill eventfd fires.
    pub fn run(mut self) {
        tracing::debug!("vsock worker started");
        let mut more = self.process();
        while self.poll_once(if more { 0 } else { -1 }, &mut more) {}
        tracing::debug!("vsock worker stopped");
    }

    /// Wait up to `timeout_ms` (or the muxer's next deadline) for events,
    /// handle them and process the queues. Returns false once killed.
    pub fn poll_once(&mut self, timeout_ms: i32, more: &mut bool) -> bool {
        let deadline = self.muxer.timeout_ms(Instant::now());
        let timeout = match (timeout_ms, deadline) {
            (-1, d) => d,
            (t, -1) => t,
            (t, d) => t.min(d),
        };
        let mut events = [EpollEvent::default(); 32];
        let n = match self.muxer.epoll().wait(timeout, &mut events) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => {
                tracing::error!(error = %e, "vsock: epoll wait failed: device stops");
                return false;
            }
        };
        for ev in &events[..n] {
            match ev.data() {
                TOKEN_KILL => return false,
                TOKEN_RX | TOKEN_TX | TOKEN_EVENT => {
                    let i = (ev.data() - TOKEN_RX) as usize;
                    // Clear the counter; EAGAIN if a kick raced us.
                    let _ = self.queue_evts[i].read();
                }
                t if t >= FIRST_MUXER_TOKEN => self.muxer.handle_event(t, ev.events()),
                _ => {}
            }
        }
        self.muxer.expire(Instant::now());
        *more = self.process();
        true
    }

    /// Drain the tx queue, fill rx buffers, raise the interrupt. Returns
    /// whether more work is ready right away.
    pub fn process(&mut self) -> bool {
        let p = self.process_queues();
        p.more
    }

    /// [`Self::process`] with the counts, for tests.
    pub fn process_queues(&mut self) -> Progress {
        // One snapshot of guest memory for this batch (hot-plug may have
        // added RAM since the last one).
        let mem = self.mem.memory();
        let (tx_used, tx_more) = self.process_tx_in(&mem);
        let (rx_used, rx_more) = self.process_rx_in(&mem);
        if tx_used > 0 {
            self.signal_used(&mem, TX_QUEUE);
        }
        if rx_used > 0 {
            self.signal_used(&mem, RX_QUEUE);
        }
        Progress {
            rx_used,
            tx_used,
            more: tx_more || rx_more,
        }
    }

    fn signal_used(&mut self, mem: &GuestMemoryMmap, queue: usize) {
        let q = if queue == RX_QUEUE {
            &mut self.rx
        } else {
            &mut self.tx
        };
        // On a memory error (rings are checked to be in RAM) notify anyway.
        if q.needs_notification(mem).unwrap_or(true) {
            self.interrupt.trigger(irq::VRING);
        }
    }

    /// Return a chain to the guest; a head index past the queue (refused
    /// by virtio-queue) cannot be returned and is only logged.
    fn add_used(q: &mut Queue, mem: &GuestMemoryMmap, head: u16, len: u32) -> bool {
        if head >= q.size() {
            guest_warn!(
                head,
                "vsock: descriptor head index out of range: chain dropped"
            );
            return false;
        }
        match q.add_used(mem, head, len) {
            Ok(()) => true,
            Err(e) => {
                guest_warn!(error = %e, "vsock: cannot return a buffer to the used ring");
                false
            }
        }
    }

    /// Take at most one queue's worth of tx chains. Returns (used, more).
    pub fn process_tx(&mut self) -> (usize, bool) {
        let mem = self.mem.memory();
        self.process_tx_in(&mem)
    }

    fn process_tx_in(&mut self, mem: &GuestMemoryMmap) -> (usize, bool) {
        let mut used = 0;
        for _ in 0..self.tx.size() {
            let chain = match self.tx.iter(mem) {
                Ok(mut it) => it.next(),
                Err(e) => {
                    guest_warn!(error = %e, "vsock: tx queue unusable");
                    return (used, false);
                }
            };
            let Some(chain) = chain else {
                return (used, false);
            };
            let head = chain.head_index();
            match DescChain::parse(chain, mem, MAX_CHAIN_DESCS) {
                Ok(c) => self.tx_packet(mem, &c),
                Err(e) => guest_warn!(error = %e, "vsock: bad tx descriptor chain dropped"),
            }
            if Self::add_used(&mut self.tx, mem, head, 0) {
                used += 1;
            }
        }
        (used, true)
    }

    fn tx_packet(&mut self, mem: &GuestMemoryMmap, c: &DescChain) {
        let mut raw = [0u8; HDR_SIZE];
        if c.read_at(mem, 0, &mut raw).is_err() {
            guest_warn!(
                len = c.readable_len(),
                "vsock: tx packet shorter than its header dropped"
            );
            return;
        }
        let hdr = VsockHeader::from_bytes(&raw);
        if hdr.op != Op::Rw as u16 {
            self.muxer.recv_pkt(&hdr, &[]);
            return;
        }
        let len = hdr.len as usize;
        if len > MAX_PKT_PAYLOAD || len > c.readable_len() - HDR_SIZE {
            guest_warn!(
                len,
                readable = c.readable_len(),
                "vsock: tx packet length exceeds its buffers or the maximum: reset"
            );
            self.muxer.reject(&hdr);
            return;
        }
        let payload = &mut self.scratch[..len];
        if c.read_at(mem, HDR_SIZE, payload).is_err() {
            self.muxer.reject(&hdr);
            return;
        }
        self.muxer.recv_pkt(&hdr, payload);
    }

    /// Fill rx buffers while the muxer has packets. Returns (used, more).
    pub fn process_rx(&mut self) -> (usize, bool) {
        let mem = self.mem.memory();
        self.process_rx_in(&mem)
    }

    fn process_rx_in(&mut self, mem: &GuestMemoryMmap) -> (usize, bool) {
        let mut used = 0;
        for _ in 0..self.rx.size() {
            if !self.muxer.has_rx() {
                return (used, false);
            }
            let chain = match self.rx.iter(mem) {
                Ok(mut it) => it.next(),
                Err(e) => {
                    guest_warn!(error = %e, "vsock: rx queue unusable");
                    return (used, false);
                }
            };
            // No buffer: wait for the guest's next rx notification.
            let Some(chain) = chain else {
                return (used, false);
            };
            let head = chain.head_index();
            let c = match DescChain::parse(chain, mem, MAX_CHAIN_DESCS) {
                Ok(c) if c.writable_len() >= HDR_SIZE => c,
                Ok(c) => {
                    guest_warn!(
                        len = c.writable_len(),
                        "vsock: rx buffer smaller than a header"
                    );
                    used += usize::from(Self::add_used(&mut self.rx, mem, head, 0));
                    continue;
                }
                Err(e) => {
                    guest_warn!(error = %e, "vsock: bad rx descriptor chain returned empty");
                    used += usize::from(Self::add_used(&mut self.rx, mem, head, 0));
                    continue;
                }
            };
            let room = (c.writable_len() - HDR_SIZE).min(MAX_PKT_PAYLOAD);
            let Some(pkt) = self.muxer.next_rx(&mut self.scratch[..room]) else {
                // Nothing after all (e.g. the host stream had no data).
                self.rx.go_to_previous_position();
                return (used, false);
            };
            let payload = &self.scratch[..pkt.payload_len];
            let written = c
                .write_at(mem, 0, &pkt.hdr.to_bytes())
                .and_then(|()| c.write_at(mem, HDR_SIZE, payload));
            let len = match written {
                Ok(()) => HDR_SIZE + pkt.payload_len,
                Err(e) => {
                    guest_warn!(error = %e, "vsock: cannot write an rx packet: connection reset");
                    self.muxer.lost(&pkt.hdr);
                    0
                }
            };
            // len <= HDR_SIZE + MAX_PKT_PAYLOAD fits u32.
            used += usize::from(Self::add_used(&mut self.rx, mem, head, len as u32));
        }
        (used, self.muxer.has_rx())
    }
}
