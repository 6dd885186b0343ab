//! The virtio-blk device thread: waits on the request queue's eventfd
//! (signalled by QueueNotify or a KVM ioeventfd) and a kill eventfd, and
//! serves requests synchronously, one chain at a time.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::GuestAddressSpace;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::EventFd;

use super::io::{Disk, BOUNCE_SIZE};
use super::request::{Request, HEADER_SIZE, STATUS_IOERR, STATUS_OK};
use crate::devices::virtio::chain::DescChain;
use crate::devices::virtio::{irq, ActivateError, DeviceQueues, VirtioInterrupt};
use crate::guest_warn;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// Longest chain accepted: header + [`SEG_MAX`] data buffers + status.
pub const MAX_CHAIN_DESCS: usize = SEG_MAX as usize + 2;
/// Data buffers per request the driver may use (config `seg_max`).
pub const SEG_MAX: u32 = 126;

const TOKEN_KILL: u64 = 0;
const TOKEN_QUEUE: u64 = 1;

/// What one pass over the queue did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Chains returned to the used ring.
    pub used: usize,
    /// Of those, requests that completed with VIRTIO_BLK_S_OK.
    pub ok: usize,
    /// The queue may hold more right away.
    pub more: bool,
}

/// The device thread's state. [`BlockWorker::run`] is the thread body;
/// [`BlockWorker::process_queue`] is public for tests and fuzzing.
pub struct BlockWorker {
    /// The live guest memory map; one snapshot per batch.
    mem: GuestMemoryAtomic,
    queue: Queue,
    queue_evt: EventFd,
    kill: EventFd,
    interrupt: Arc<VirtioInterrupt>,
    disk: Arc<Disk>,
    bounce: Vec<u8>,
}

impl BlockWorker {
    pub fn new(dq: DeviceQueues, kill: EventFd, disk: Arc<Disk>) -> Result<Self, ActivateError> {
        let DeviceQueues {
            mem,
            queues,
            queue_evts,
            interrupt,
            ..
        } = dq;
        let got = queues.len();
        let (Ok([queue]), Ok([queue_evt])) = (
            <[Queue; 1]>::try_from(queues),
            <[EventFd; 1]>::try_from(queue_evts),
        ) else {
            return Err(ActivateError::QueueCount { got, want: 1 });
        };
        if !queue.ready() {
            return Err(ActivateError::QueueNotReady { index: 0 });
        }
        Ok(Self {
            mem,
            queue,
            queue_evt,
            kill,
            interrupt,
            disk,
            bounce: vec![0; BOUNCE_SIZE],
        })
    }

    /// The thread body: serve the queue until the kill eventfd fires.
    pub fn run(mut self) {
        let epoll = match self.epoll() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "virtio-blk: cannot set up epoll: device stops");
                return;
            }
        };
        tracing::debug!(disk = %self.disk.path().display(), "virtio-blk worker started");
        // Requests posted before activation.
        let mut more = self.process_queue().more;
        let mut events = [EpollEvent::default(); 2];
        loop {
            let n = match epoll.wait(if more { 0 } else { -1 }, &mut events) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::error!(error = %e, "virtio-blk: epoll wait failed: device stops");
                    return;
                }
            };
            for ev in &events[..n] {
                if ev.data() == TOKEN_KILL {
                    tracing::debug!("virtio-blk worker stopped");
                    return;
                }
                // Clear the counter; EAGAIN if a kick raced us.
                let _ = self.queue_evt.read();
            }
            more = self.process_queue().more;
        }
    }

    fn epoll(&self) -> std::io::Result<Epoll> {
        let epoll = Epoll::new()?;
        for (fd, token) in [
            (self.kill.as_raw_fd(), TOKEN_KILL),
            (self.queue_evt.as_raw_fd(), TOKEN_QUEUE),
        ] {
            epoll.ctl(
                ControlOperation::Add,
                fd,
                EpollEvent::new(EventSet::IN, token),
            )?;
        }
        Ok(epoll)
    }

    /// Serve at most one queue's worth of requests and raise the
    /// interrupt if any chain was returned.
    pub fn process_queue(&mut self) -> Progress {
        let mem = self.mem.memory();
        let mut p = Progress {
            more: true,
            ..Default::default()
        };
        for _ in 0..self.queue.size() {
            let chain = match self.queue.iter(&*mem) {
                Ok(mut it) => it.next(),
                Err(e) => {
                    guest_warn!(error = %e, "virtio-blk: queue unusable");
                    p.more = false;
                    break;
                }
            };
            let Some(chain) = chain else {
                p.more = false;
                break;
            };
            let head = chain.head_index();
            let (len, ok) = match DescChain::parse(chain, &mem, MAX_CHAIN_DESCS) {
                Ok(c) => self.serve(&mem, &c),
                Err(e) => {
                    guest_warn!(error = %e, "virtio-blk: bad descriptor chain returned unanswered");
                    (0, false)
                }
            };
            if self.add_used(&mem, head, len) {
                p.used += 1;
                p.ok += usize::from(ok);
            }
        }
        // On a memory error (rings are checked to be in RAM) notify anyway.
        if p.used > 0 && self.queue.needs_notification(&*mem).unwrap_or(true) {
            self.interrupt.trigger(irq::VRING);
        }
        p
    }

    /// Parse, execute and answer one request. Returns the used length
    /// (bytes written, status included) and whether it succeeded.
    fn serve(&mut self, mem: &GuestMemoryMmap, c: &DescChain) -> (u32, bool) {
        let mut raw = [0u8; HEADER_SIZE];
        let header = c.read_at(mem, 0, &mut raw).ok().map(|()| &raw);
        let req = match Request::parse(
            header,
            c.readable_len(),
            c.writable_len(),
            self.disk.geometry(),
        ) {
            Ok(r) => r,
            Err(e) => {
                guest_warn!(error = %e, "virtio-blk: request refused");
                return match e.status() {
                    Some(s) => {
                        let at = c.writable_len().saturating_sub(1);
                        (self.write_status(mem, c, at, s, 0), false)
                    }
                    None => (0, false),
                };
            }
        };
        match self.disk.execute(&req, c, mem, &mut self.bounce) {
            Ok(n) => (
                self.write_status(mem, c, req.status_offset, STATUS_OK, n),
                true,
            ),
            Err(e) => {
                guest_warn!(error = %e, disk = %self.disk.path().display(), "virtio-blk: request failed");
                (
                    self.write_status(mem, c, req.status_offset, STATUS_IOERR, 0),
                    false,
                )
            }
        }
    }

    /// Write the status byte at `offset` in the writable buffers; the used
    /// length is `written` data bytes plus the status (0 if it could not
    /// be written).
    fn write_status(
        &self,
        mem: &GuestMemoryMmap,
        c: &DescChain,
        offset: usize,
        status: u8,
        written: usize,
    ) -> u32 {
        match c.write_at(mem, offset, &[status]) {
            // The chain is at most 4 GiB (DescChain::parse), so this fits.
            Ok(()) => u32::try_from(written + 1).unwrap_or(u32::MAX),
            Err(e) => {
                guest_warn!(error = %e, "virtio-blk: cannot write the request status");
                0
            }
        }
    }

    /// Return a chain to the guest; a head past the queue (refused by
    /// virtio-queue) cannot be returned and is only logged.
    fn add_used(&mut self, mem: &GuestMemoryMmap, head: u16, len: u32) -> bool {
        if head >= self.queue.size() {
            guest_warn!(
                head,
                "virtio-blk: descriptor head index out of range: chain dropped"
            );
            return false;
        }
        match self.queue.add_used(mem, head, len) {
            Ok(()) => true,
            Err(e) => {
                guest_warn!(error = %e, "virtio-blk: cannot return a chain to the used ring");
                false
            }
        }
    }
}
