//! A test guest: owns guest RAM, brings the vsock device up through its
//! MMIO registers like a driver, keeps the rx queue stocked, sends packets
//! on the tx queue and reads what the device wrote. No KVM involved: the
//! device thread runs for real, the test thread plays the vCPU.

use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::tempdir::TempDir;

use crate::devices::virtio::mmio::VirtioMmioDevice;
use crate::devices::virtio::testutil::{Desc, GuestQueue, MmioDriver};
use crate::devices::virtio::vsock::packet::{Op, VsockHeader, HDR_SIZE, HOST_CID, TYPE_STREAM};
use crate::devices::virtio::vsock::{Vsock, VsockLimits};
use crate::devices::virtio::VIRTIO_F_VERSION_1;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap, GuestRegionMmap};

pub const QSIZE: u16 = 256;
const RAM: usize = 64 << 20;
const RXQ: u64 = 0x1_0000;
const TXQ: u64 = 0x2_0000;
const EVQ: u64 = 0x3_0000;
const RX_BUFS: u64 = 0x10_0000;
const TX_BUFS: u64 = 0x200_0000;
const TX_SLOT: u64 = 0x1_1000;
pub const TX_SLOTS: usize = 128;
/// Default rx payload room, as Linux posts (4 KiB).
pub const RX_PAYLOAD: u32 = 4096;

/// A packet the device put in the rx queue.
#[derive(Debug, Clone)]
pub struct Pkt {
    pub hdr: VsockHeader,
    pub data: Vec<u8>,
}

impl Pkt {
    pub fn op(&self) -> Option<Op> {
        self.hdr.op()
    }
}

pub struct TestGuest {
    /// The guest's view of its RAM (the current map).
    pub mem: GuestMemoryMmap,
    /// The shared map the device holds; [`Self::add_ram`] swaps regions in.
    memory: GuestMemoryAtomic,
    pub mmio: MmioDriver,
    pub cid: u64,
    pub uds: PathBuf,
    pub dir: TempDir,
    rxq: GuestQueue,
    txq: GuestQueue,
    _evq: GuestQueue,
    irq: EventFd,
    rx_payload: u32,
    /// Posted rx buffers: head -> buffer address.
    rx_posted: HashMap<u16, u64>,
    rx_split: bool,
    tx_free: Vec<u64>,
    tx_inflight: HashMap<u16, u64>,
    /// Packets received but not yet taken, in arrival order.
    inbox: VecDeque<Pkt>,
    raw_rx_used: Vec<(u16, u32)>,
}

/// How the test guest sets the device up.
#[derive(Debug, Clone)]
pub struct GuestOpts {
    pub cid: u64,
    pub limits: VsockLimits,
    /// Payload room per rx buffer.
    pub rx_payload: u32,
    /// Post header and payload as two descriptors (older Linux) instead of one.
    pub rx_split: bool,
    /// Rx buffers posted at start.
    pub rx_bufs: usize,
}

impl Default for GuestOpts {
    fn default() -> Self {
        Self {
            cid: 3,
            limits: VsockLimits::default(),
            rx_payload: RX_PAYLOAD,
            rx_split: false,
            rx_bufs: 128,
        }
    }
}

impl TestGuest {
    pub fn new() -> Self {
        Self::with_opts(GuestOpts::default())
    }

    pub fn with_limits(limits: VsockLimits) -> Self {
        Self::with_opts(GuestOpts {
            limits,
            ..Default::default()
        })
    }

    pub fn with_opts(o: GuestOpts) -> Self {
        let dir = TempDir::new().unwrap();
        let uds = dir.as_path().join("vsock.sock");
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let vsock = Vsock::with_limits(o.cid, &uds, o.limits).unwrap();
        let memory = GuestMemoryAtomic::new(mem.clone());
        let dev = VirtioMmioDevice::new(Box::new(vsock), memory.clone()).unwrap();
        let irq = dev.interrupt_evt().try_clone().unwrap();
        let mmio = MmioDriver::new(dev);
        assert!(mmio.negotiate(VIRTIO_F_VERSION_1));
        let rxq = GuestQueue::new(&mem, GuestAddress(RXQ), QSIZE);
        let txq = GuestQueue::new(&mem, GuestAddress(TXQ), QSIZE);
        let evq = GuestQueue::new(&mem, GuestAddress(EVQ), QSIZE);
        mmio.setup_queue(0, &rxq);
        mmio.setup_queue(1, &txq);
        mmio.setup_queue(2, &evq);
        let tx_free = (0..TX_SLOTS as u64)
            .map(|i| TX_BUFS + i * TX_SLOT)
            .collect();
        let mut g = Self {
            mem,
            memory,
            mmio,
            cid: o.cid,
            uds,
            dir,
            rxq,
            txq,
            _evq: evq,
            irq,
            rx_payload: o.rx_payload,
            rx_posted: HashMap::new(),
            rx_split: o.rx_split,
            tx_free,
            tx_inflight: HashMap::new(),
            inbox: VecDeque::new(),
            raw_rx_used: Vec::new(),
        };
        let stride = u64::from(HDR_SIZE as u32 + o.rx_payload + 64) & !63;
        for i in 0..o.rx_bufs as u64 {
            g.post_rx(RX_BUFS + i * stride);
        }
        g.mmio.driver_ok();
        assert!(g.mmio.dev.lock().unwrap().is_active());
        g
    }

    /// Hot-add `size` bytes of RAM at `base` while the device runs, the
    /// way hotplug::memory does: a new map with the region inserted,
    /// swapped into the shared one.
    pub fn add_ram(&mut self, base: u64, size: usize) {
        let region = GuestRegionMmap::from_range(GuestAddress(base), size, None).unwrap();
        let map = self
            .memory
            .memory()
            .insert_region(Arc::new(region))
            .unwrap();
        self.memory.lock().unwrap().replace(map.clone());
        self.mem = map;
    }

    /// Post a raw rx chain (e.g. a malformed one); its used entry goes to
    /// [`Self::raw_rx_used`] instead of the inbox.
    pub fn post_rx_raw(&mut self, descs: &[Desc]) -> u16 {
        let head = self.rxq.add_chain(&self.mem, descs);
        self.mmio.notify(0);
        head
    }

    /// Used entries (head, len) of chains posted with [`Self::post_rx_raw`].
    pub fn raw_rx_used(&self) -> &[(u16, u32)] {
        &self.raw_rx_used
    }

    fn post_rx(&mut self, addr: u64) {
        let hdr = HDR_SIZE as u32;
        let head = if self.rx_split {
            self.rxq.add_chain(
                &self.mem,
                &[
                    Desc::write(addr, hdr),
                    Desc::write(addr + u64::from(hdr), self.rx_payload),
                ],
            )
        } else {
            self.rxq
                .add_chain(&self.mem, &[Desc::write(addr, hdr + self.rx_payload)])
        };
        self.rx_posted.insert(head, addr);
    }

    /// A header from the guest (CID `self.cid`) to the host.
    pub fn hdr(&self, op: Op, src_port: u32, dst_port: u32) -> VsockHeader {
        VsockHeader {
            src_cid: self.cid,
            dst_cid: HOST_CID,
            src_port,
            dst_port,
            len: 0,
            type_: TYPE_STREAM,
            op: op as u16,
            flags: 0,
            buf_alloc: 256 * 1024,
            fwd_cnt: 0,
        }
    }

    fn reap_tx(&mut self) {
        while let Some((head, _)) = self.txq.pop_used(&self.mem) {
            if let Some(addr) = self.tx_inflight.remove(&head) {
                self.tx_free.push(addr);
            }
        }
    }

    /// Post raw descriptors on the tx queue and notify.
    pub fn send_raw(&mut self, descs: &[Desc]) {
        self.txq.add_chain(&self.mem, descs);
        self.mmio.notify(1);
    }

    /// Wait until the device has returned every tx chain.
    pub fn wait_tx_done(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.reap_tx();
            if self.txq.free_descs() == usize::from(QSIZE) {
                return;
            }
            assert!(Instant::now() < deadline, "tx queue never drained");
            self.wait_irq(5);
        }
    }

    /// Write raw descriptors without bookkeeping and publish `head`.
    pub fn send_raw_desc(&mut self, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        self.txq
            .write_raw_desc(&self.mem, index, addr, len, flags, next);
        self.txq.publish(&self.mem, index);
        self.mmio.notify(1);
    }

    /// Send a packet: header and payload in one descriptor, or split in
    /// two when `split`.
    pub fn send_split(&mut self, hdr: &VsockHeader, payload: &[u8], split: bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            self.reap_tx();
            if !self.tx_free.is_empty() && self.txq.free_descs() >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "tx queue never drained");
            self.wait_irq(5);
        }
        let addr = self.tx_free.pop().unwrap();
        self.mem
            .write_slice(&hdr.to_bytes(), GuestAddress(addr))
            .unwrap();
        let pay = addr + HDR_SIZE as u64;
        self.mem.write_slice(payload, GuestAddress(pay)).unwrap();
        let len = payload.len() as u32;
        let head = if split && !payload.is_empty() {
            self.txq.add_chain(
                &self.mem,
                &[Desc::read(addr, HDR_SIZE as u32), Desc::read(pay, len)],
            )
        } else {
            self.txq
                .add_chain(&self.mem, &[Desc::read(addr, HDR_SIZE as u32 + len)])
        };
        self.tx_inflight.insert(head, addr);
        self.mmio.notify(1);
    }

    pub fn send(&mut self, hdr: &VsockHeader, payload: &[u8]) {
        let mut h = *hdr;
        h.len = payload.len() as u32;
        self.send_split(&h, payload, false);
    }

    pub fn wait_irq(&self, ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.irq.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        let _ = self.irq.read();
    }

    /// Move every used rx buffer into the inbox and re-post it.
    pub fn pump(&mut self) -> usize {
        let mut n = 0;
        while let Some((head, len)) = self.rxq.pop_used(&self.mem) {
            let Some(addr) = self.rx_posted.remove(&head) else {
                self.raw_rx_used.push((head, len));
                continue;
            };
            let len = len as usize;
            assert!(len >= HDR_SIZE, "used rx buffer without a header: {len}");
            let mut raw = [0u8; HDR_SIZE];
            self.mem.read_slice(&mut raw, GuestAddress(addr)).unwrap();
            let hdr = VsockHeader::from_bytes(&raw);
            assert_eq!(hdr.len as usize, len - HDR_SIZE, "used len matches header");
            let mut data = vec![0u8; len - HDR_SIZE];
            self.mem
                .read_slice(&mut data, GuestAddress(addr + HDR_SIZE as u64))
                .unwrap();
            assert_eq!(hdr.dst_cid, self.cid);
            // An RST answering a packet to another CID comes from that CID.
            if hdr.op() != Some(Op::Rst) {
                assert_eq!(hdr.src_cid, HOST_CID);
            }
            self.inbox.push_back(Pkt { hdr, data });
            self.post_rx(addr);
            n += 1;
        }
        if n > 0 {
            self.mmio.notify(0);
        }
        self.reap_tx();
        n
    }

    /// The next packet matching `pred`, waiting up to `timeout`.
    pub fn recv_where(&mut self, timeout: Duration, pred: impl Fn(&Pkt) -> bool) -> Option<Pkt> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(i) = self.inbox.iter().position(&pred) {
                return self.inbox.remove(i);
            }
            if self.pump() == 0 {
                if Instant::now() >= deadline {
                    return None;
                }
                self.wait_irq(5);
            }
        }
    }

    /// The next packet of any kind.
    pub fn recv(&mut self, timeout: Duration) -> Option<Pkt> {
        self.recv_where(timeout, |_| true)
    }

    /// The next packet for guest port `port`.
    pub fn recv_for(&mut self, port: u32, timeout: Duration) -> Option<Pkt> {
        self.recv_where(timeout, |p| p.hdr.dst_port == port)
    }

    /// Wait until no packet arrives for `quiet`; return what did.
    pub fn drain(&mut self, quiet: Duration) -> Vec<Pkt> {
        let mut out: Vec<Pkt> = self.inbox.drain(..).collect();
        while let Some(p) = self.recv(quiet) {
            out.push(p);
        }
        out
    }
}

/// Deterministic test data: byte `i` of stream `seed`.
pub fn pattern(seed: u64, offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| {
            let x = (offset + i).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed;
            (x >> 29) as u8 ^ (x as u8)
        })
        .collect()
}

/// FNV-1a, the checksum the transfer tests compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fnv(pub u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x100_0000_01b3);
        }
    }
}
