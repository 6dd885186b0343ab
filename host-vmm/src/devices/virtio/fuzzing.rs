//! Fuzz harnesses, shared by the cargo-fuzz targets in `host-vmm/fuzz`
//! and the stable randomized smoke test (`fuzz_smoke`), which is part of
//! `cargo test`. Each takes arbitrary bytes and plays a hostile guest:
//!
//! - [`vsock_queues`]: descriptor chains (any address, length, flags,
//!   next index), packet headers (any field) and payloads on the vsock
//!   tx/rx queues, host clients connecting, writing and closing, with the
//!   device's worker driven synchronously.
//! - [`mmio_registers`]: any sequence of MMIO reads and writes (any
//!   offset, width and value) on the virtio-mmio transport.
//!
//! A harness returns normally for any input; a panic is a bug.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::tempdir::TempDir;

use super::device::{ActivateError, DeviceQueues, VirtioDevice, VirtioInterrupt};
use super::mmio::VirtioMmioDevice;
use super::vsock::muxer::{Muxer, VsockLimits};
use super::vsock::packet::{VsockHeader, HDR_SIZE};
use super::vsock::unix::{bind_listener, port_socket_path};
use super::vsock::worker::VsockWorker;
use super::VIRTIO_F_VERSION_1;
use crate::devices::BusDevice;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

/// Reads fuzz input; zeros once it runs out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    pub fn u8(&mut self) -> u8 {
        self.bytes(1).first().copied().unwrap_or(0)
    }
    pub fn u16(&mut self) -> u16 {
        u16::from(self.u8()) | u16::from(self.u8()) << 8
    }
    pub fn u32(&mut self) -> u32 {
        u32::from(self.u16()) | u32::from(self.u16()) << 16
    }
    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | u64::from(self.u32()) << 32
    }
}

// The fuzz guest both harnesses (vsock here, block in `block::fuzzing`) drive.

/// Guest RAM: 256 KiB at 0 and 64 KiB at 1 MiB, with a hole between.
pub(crate) const RAM: [(u64, usize); 2] = [(0, 0x4_0000), (0x10_0000, 0x1_0000)];
pub(crate) const QSIZE: u16 = 16;
const RING_BASE: [u64; 3] = [0x1000, 0x2000, 0x3000];
pub(crate) const BUF_BASE: u64 = 0x8000;
pub(crate) const BUF_AREA: u64 = 0x3_0000;

/// (descriptor table, avail ring, used ring) of a queue of [`QSIZE`] at `base`.
pub(crate) fn ring_addrs(base: u64) -> (u64, u64, u64) {
    let n = u64::from(QSIZE);
    let avail = base + 16 * n;
    let used = (avail + 6 + 2 * n + 3) & !3;
    (base, avail, used)
}

/// A guest address: mostly inside the buffer area, sometimes anywhere.
pub(crate) fn addr(inp: &mut Input) -> u64 {
    match inp.u8() % 8 {
        0 => inp.u64(),
        1 => RAM[1].0 + u64::from(inp.u16()),
        2 => RAM[0].1 as u64 - u64::from(inp.u8()),
        3 => u64::MAX - u64::from(inp.u8()),
        _ => BUF_BASE + u64::from(inp.u32()) % BUF_AREA,
    }
}

/// The fuzz guest's RAM ([`RAM`]).
pub(crate) fn guest_ram() -> Option<GuestMemoryMmap> {
    GuestMemoryMmap::from_ranges(
        &RAM.iter()
            .map(|&(a, l)| (GuestAddress(a), l))
            .collect::<Vec<_>>(),
    )
    .ok()
}

/// A ready queue of [`QSIZE`] with its rings at `base` ([`ring_addrs`]).
pub(crate) fn ready_queue(base: u64) -> Option<Queue> {
    let (desc, avail, used) = ring_addrs(base);
    let mut q = Queue::new(QSIZE).ok()?;
    q.try_set_desc_table_address(GuestAddress(desc)).ok()?;
    q.try_set_avail_ring_address(GuestAddress(avail)).ok()?;
    q.try_set_used_ring_address(GuestAddress(used)).ok()?;
    q.set_ready(true);
    Some(q)
}

fn len(inp: &mut Input) -> u32 {
    match inp.u8() % 4 {
        0 => inp.u32(),
        1 => HDR_SIZE as u32,
        _ => u32::from(inp.u16() % 0x2000),
    }
}

/// A header with fields near the interesting values.
fn header(inp: &mut Input) -> VsockHeader {
    let pick32 = |inp: &mut Input, common: &[u32]| {
        let i = inp.u8() as usize;
        common
            .get(i % (common.len() + 1))
            .copied()
            .unwrap_or_else(|| inp.u32())
    };
    VsockHeader {
        src_cid: if inp.u8() % 8 == 0 { inp.u64() } else { 3 },
        dst_cid: if inp.u8() % 8 == 0 { inp.u64() } else { 2 },
        src_port: pick32(inp, &[40000, 40001]),
        dst_port: pick32(inp, &[5000, 1024, 1 << 30]),
        len: pick32(inp, &[0, 1, 100, 4096, 65536]),
        type_: if inp.u8() % 8 == 0 { inp.u16() } else { 1 },
        op: u16::from(inp.u8() % 9),
        flags: u32::from(inp.u8() % 4),
        buf_alloc: pick32(inp, &[0, 4096, 256 * 1024]),
        fwd_cnt: pick32(inp, &[0, 100]),
    }
}

struct VsockHarness {
    mem: GuestMemoryMmap,
    worker: VsockWorker,
    /// (avail ring address, next avail index, next free descriptor).
    rings: [(u64, u16, u16); 3],
    _dir: TempDir,
    uds: std::path::PathBuf,
    _host_listener: UnixListener,
    clients: Vec<UnixStream>,
}

impl VsockHarness {
    fn new() -> Option<Self> {
        let mem = guest_ram()?;
        let dir = TempDir::new().ok()?;
        let uds = dir.as_path().join("v.sock");
        let listener = bind_listener(&uds).ok()?;
        let host_listener = UnixListener::bind(port_socket_path(&uds, 5000)).ok()?;
        host_listener.set_nonblocking(true).ok()?;
        let limits = VsockLimits {
            buf_alloc: 4096,
            max_connections: 8,
            max_pending_clients: 4,
            connect_timeout: std::time::Duration::from_millis(20),
            max_queued_rsts: 16,
        };
        let muxer = Muxer::new(3, uds.clone(), listener, limits).ok()?;
        let mut queues = Vec::new();
        let mut rings = [(0, 0, 0); 3];
        for (i, &base) in RING_BASE.iter().enumerate() {
            let (_, avail, _) = ring_addrs(base);
            queues.push(ready_queue(base)?);
            rings[i] = (avail, 0, 0);
        }
        let dq = DeviceQueues {
            mem: GuestMemoryAtomic::new(mem.clone()),
            queues,
            queue_evts: (0..3)
                .map(|_| EventFd::new(libc::EFD_NONBLOCK))
                .collect::<Result<_, _>>()
                .ok()?,
            interrupt: Arc::new(VirtioInterrupt::new().ok()?),
            acked_features: VIRTIO_F_VERSION_1,
        };
        let kill = EventFd::new(libc::EFD_NONBLOCK).ok()?;
        let worker = VsockWorker::new(dq, kill, muxer).ok()?;
        Some(Self {
            mem,
            worker,
            rings,
            _dir: dir,
            uds,
            _host_listener: host_listener,
            clients: Vec::new(),
        })
    }

    /// Post a chain of `n` descriptors on queue `q`; `write_default`
    /// makes descriptors device-writable unless the input says otherwise.
    fn post_chain(&mut self, inp: &mut Input, q: usize, write_default: bool) {
        let (desc_table, _, _) = ring_addrs(RING_BASE[q]);
        let n = 1 + inp.u8() % 4;
        let head = self.rings[q].2 % QSIZE;
        for i in 0..n {
            let idx = (head + u16::from(i)) % QSIZE;
            let a = addr(inp);
            let l = len(inp);
            let f = inp.u8();
            let mut flags = u16::from(f & 4); // INDIRECT sometimes
            if write_default != (f & 2 != 0) {
                flags |= 2;
            }
            let last = i + 1 == n;
            let next = if f & 8 != 0 {
                u16::from(inp.u8() % 20)
            } else {
                (idx + 1) % QSIZE
            };
            if !last || f & 16 != 0 {
                flags |= 1;
            }
            let mut raw = [0u8; 16];
            raw[0..8].copy_from_slice(&a.to_le_bytes());
            raw[8..12].copy_from_slice(&l.to_le_bytes());
            raw[12..14].copy_from_slice(&flags.to_le_bytes());
            raw[14..16].copy_from_slice(&next.to_le_bytes());
            let _ = self
                .mem
                .write_slice(&raw, GuestAddress(desc_table + 16 * u64::from(idx)));
            // Put a plausible header (and payload) where it points.
            if !write_default && i == 0 {
                let h = header(inp).to_bytes();
                let _ = self.mem.write_slice(&h, GuestAddress(a));
                let n = usize::from(inp.u16() % 300);
                let pay = inp.bytes(n);
                let _ = self.mem.write_slice(pay, GuestAddress(a.wrapping_add(44)));
            }
        }
        self.rings[q].2 = head + u16::from(n);
        let published = if inp.u8() % 8 == 0 {
            u16::from(inp.u8())
        } else {
            head
        };
        self.publish(q, published);
    }

    fn publish(&mut self, q: usize, head: u16) {
        let (avail, idx, _) = self.rings[q];
        let slot = avail + 4 + 2 * u64::from(idx % QSIZE);
        let _ = self.mem.write_obj(head, GuestAddress(slot));
        let idx = idx.wrapping_add(1);
        self.rings[q].1 = idx;
        let _ = self.mem.write_obj(idx, GuestAddress(avail + 2));
    }

    fn host_action(&mut self, inp: &mut Input) {
        match inp.u8() % 4 {
            0 if self.clients.len() < 6 => {
                if let Ok(mut s) = UnixStream::connect(&self.uds) {
                    let _ = s.set_nonblocking(true);
                    let line: &[u8] = match inp.u8() % 3 {
                        0 => b"CONNECT 1024\n",
                        1 => b"CONNECT 40000\n",
                        _ => inp.bytes(16),
                    };
                    let _ = s.write_all(line);
                    self.clients.push(s);
                }
            }
            1 => {
                let n = self.clients.len();
                if let Some(s) = self.clients.get_mut(inp.u8() as usize % n.max(1)) {
                    let n = usize::from(inp.u16() % 512);
                    let _ = s.write(inp.bytes(n));
                }
            }
            2 => {
                for s in &mut self.clients {
                    let mut b = [0u8; 4096];
                    let _ = s.read(&mut b);
                }
            }
            _ => {
                if !self.clients.is_empty() {
                    let i = inp.u8() as usize % self.clients.len();
                    self.clients.swap_remove(i);
                }
            }
        }
    }
}

/// What a [`vsock_queues`] run did, so tests can check that seeds reach
/// past the parsers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct VsockOutcome {
    pub rx_used: usize,
    pub tx_used: usize,
    pub connections: usize,
}

/// Drive the vsock device with arbitrary queue contents. See the module
/// documentation.
pub fn vsock_queues(data: &[u8]) -> VsockOutcome {
    let mut out = VsockOutcome::default();
    let mut inp = Input::new(data);
    let Some(mut h) = VsockHarness::new() else {
        return out;
    };
    for _ in 0..64 {
        if inp.is_empty() {
            break;
        }
        match inp.u8() % 8 {
            0..=2 => h.post_chain(&mut inp, 1, false),
            3 | 4 => h.post_chain(&mut inp, 0, true),
            5 => h.host_action(&mut inp),
            6 => {
                let mut more = false;
                let _ = h.worker.poll_once(0, &mut more);
            }
            _ => {
                let q = usize::from(inp.u8() % 2);
                let v = inp.u16();
                let avail = h.rings[q].0;
                let _ = h.mem.write_obj(v, GuestAddress(avail + 2));
            }
        }
        let p = h.worker.process_queues();
        out.rx_used += p.rx_used;
        out.tx_used += p.tx_used;
    }
    let mut more = false;
    let _ = h.worker.poll_once(0, &mut more);
    let p = h.worker.process_queues();
    out.rx_used += p.rx_used;
    out.tx_used += p.tx_used;
    let m = h.worker.muxer();
    assert!(m.connection_count() <= 8);
    assert!(m.held_bytes() <= 4096 * m.connection_count());
    out.connections = m.connection_count();
    out
}

/// A device with two queues that accepts activation (no thread).
struct Stub;

impl VirtioDevice for Stub {
    fn device_type(&self) -> u32 {
        19
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 4]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | 1
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        data.fill(offset as u8);
    }
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}
    fn activate(&mut self, dq: DeviceQueues) -> Result<(), ActivateError> {
        if dq.queues.iter().all(|q| q.ready()) {
            Ok(())
        } else {
            Err(ActivateError::QueueNotReady { index: 0 })
        }
    }
    fn reset(&mut self) {}
}

/// Any sequence of MMIO accesses on the transport. See the module
/// documentation.
pub fn mmio_registers(data: &[u8]) {
    let mut inp = Input::new(data);
    let Ok(mem) = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x1_0000)]) else {
        return;
    };
    let Ok(mut dev) = VirtioMmioDevice::new(Box::new(Stub), GuestMemoryAtomic::new(mem)) else {
        return;
    };
    for _ in 0..256 {
        if inp.is_empty() {
            break;
        }
        let op = inp.u8();
        // Mostly aligned register accesses, sometimes anything.
        let offset = if op & 0x80 != 0 {
            u64::from(inp.u16() % 0x1000)
        } else {
            u64::from(inp.u8() % 0x44) * 4
        };
        let width = [4usize, 4, 4, 1, 2, 8, 0, 3][usize::from(op >> 4 & 7)];
        if op & 1 == 0 {
            let mut b = vec![0u8; width];
            dev.read(0, offset, &mut b);
        } else {
            let v = match op >> 1 & 3 {
                0 => u64::from(inp.u8() % 16),
                1 => 0x8f,
                _ => inp.u64(),
            };
            dev.write(0, offset, &v.to_le_bytes()[..width]);
        }
        let s = dev.status();
        if dev.is_active() {
            assert_ne!(s & super::status::DRIVER_OK, 0, "active without DRIVER_OK");
        }
    }
}
