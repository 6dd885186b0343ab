//! Test helpers that play the guest driver: split virtqueues laid out in a
//! `GuestMemoryMmap`, and register access to a virtio-mmio device.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress};

use super::mmio::VirtioMmioDevice;
use super::status;
use crate::devices::BusDevice;
use crate::memory::GuestMemoryMmap;
use virtio_bindings::virtio_mmio as r;

pub const VRING_DESC_F_NEXT: u16 = 1;
pub const VRING_DESC_F_WRITE: u16 = 2;

/// One buffer of a chain the test driver posts.
#[derive(Debug, Clone, Copy)]
pub struct Desc {
    pub addr: u64,
    pub len: u32,
    pub write: bool,
}

impl Desc {
    pub fn read(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            write: false,
        }
    }
    pub fn write(addr: u64, len: u32) -> Self {
        Self {
            addr,
            len,
            write: true,
        }
    }
}

/// The driver side of a split virtqueue.
pub struct GuestQueue {
    pub size: u16,
    pub desc: u64,
    pub avail: u64,
    pub used: u64,
    free: Vec<u16>,
    chains: HashMap<u16, Vec<u16>>,
    avail_idx: u16,
    used_seen: u16,
}

impl GuestQueue {
    /// Lay out a queue of `size` entries at `base` (16-byte aligned) and
    /// zero its rings.
    pub fn new(mem: &GuestMemoryMmap, base: GuestAddress, size: u16) -> Self {
        let n = u64::from(size);
        let desc = base.0;
        let avail = desc + 16 * n;
        let used = (avail + 6 + 2 * n + 3) & !3;
        let end = used + 6 + 8 * n;
        mem.write_slice(&vec![0u8; (end - desc) as usize], base)
            .unwrap();
        Self {
            size,
            desc,
            avail,
            used,
            free: (0..size).rev().collect(),
            chains: HashMap::new(),
            avail_idx: 0,
            used_seen: 0,
        }
    }

    /// A device-side `Queue` for these rings (ready), for unit tests that
    /// skip the transport.
    pub fn device_queue(&self) -> Queue {
        let mut q = Queue::new(self.size).unwrap();
        q.try_set_desc_table_address(GuestAddress(self.desc))
            .unwrap();
        q.try_set_avail_ring_address(GuestAddress(self.avail))
            .unwrap();
        q.try_set_used_ring_address(GuestAddress(self.used))
            .unwrap();
        q.set_ready(true);
        q
    }

    pub fn free_descs(&self) -> usize {
        self.free.len()
    }

    /// Write descriptor `index` as given, without bookkeeping.
    pub fn write_raw_desc(
        &self,
        mem: &GuestMemoryMmap,
        index: u16,
        addr: u64,
        len: u32,
        flags: u16,
        next: u16,
    ) {
        let at = self.desc + 16 * u64::from(index % self.size);
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write_slice(&raw, GuestAddress(at)).unwrap();
    }

    /// Put `head` in the available ring and publish it.
    pub fn publish(&mut self, mem: &GuestMemoryMmap, head: u16) {
        let slot = self.avail + 4 + 2 * u64::from(self.avail_idx % self.size);
        mem.write_obj(head.to_le(), GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        mem.store(
            self.avail_idx.to_le(),
            GuestAddress(self.avail + 2),
            Ordering::Release,
        )
        .unwrap();
    }

    /// Post a chain; `None` if the table is full.
    pub fn try_add_chain(&mut self, mem: &GuestMemoryMmap, descs: &[Desc]) -> Option<u16> {
        if descs.is_empty() || descs.len() > self.free.len() {
            return None;
        }
        let idx: Vec<u16> = (0..descs.len()).map(|_| self.free.pop().unwrap()).collect();
        for (i, d) in descs.iter().enumerate() {
            let mut flags = if d.write { VRING_DESC_F_WRITE } else { 0 };
            let next = idx.get(i + 1).copied().unwrap_or(0);
            if i + 1 < descs.len() {
                flags |= VRING_DESC_F_NEXT;
            }
            self.write_raw_desc(mem, idx[i], d.addr, d.len, flags, next);
        }
        let head = idx[0];
        self.chains.insert(head, idx);
        self.publish(mem, head);
        Some(head)
    }

    pub fn add_chain(&mut self, mem: &GuestMemoryMmap, descs: &[Desc]) -> u16 {
        self.try_add_chain(mem, descs)
            .expect("descriptor table full")
    }

    /// The next used entry (head, len), freeing its descriptors.
    pub fn pop_used(&mut self, mem: &GuestMemoryMmap) -> Option<(u16, u32)> {
        let idx: u16 = mem
            .load(GuestAddress(self.used + 2), Ordering::Acquire)
            .unwrap();
        if idx == self.used_seen {
            return None;
        }
        let slot = self.used + 4 + 8 * u64::from(self.used_seen % self.size);
        let id: u32 = mem.read_obj(GuestAddress(slot)).unwrap();
        let len: u32 = mem.read_obj(GuestAddress(slot + 4)).unwrap();
        self.used_seen = self.used_seen.wrapping_add(1);
        let head = id as u16;
        if let Some(descs) = self.chains.remove(&head) {
            self.free.extend(descs);
        }
        Some((head, len))
    }
}

/// Register access to a virtio-mmio device, as a guest driver does it.
#[derive(Clone)]
pub struct MmioDriver {
    pub dev: Arc<Mutex<VirtioMmioDevice>>,
}

impl MmioDriver {
    pub fn new(dev: VirtioMmioDevice) -> Self {
        Self {
            dev: Arc::new(Mutex::new(dev)),
        }
    }

    pub fn read(&self, offset: u32) -> u32 {
        let mut b = [0u8; 4];
        self.dev.lock().unwrap().read(0, u64::from(offset), &mut b);
        u32::from_le_bytes(b)
    }

    pub fn write(&self, offset: u32, value: u32) {
        self.dev
            .lock()
            .unwrap()
            .write(0, u64::from(offset), &value.to_le_bytes());
    }

    pub fn status(&self) -> u32 {
        self.read(r::VIRTIO_MMIO_STATUS)
    }

    /// ACKNOWLEDGE, DRIVER, features, FEATURES_OK; returns whether the
    /// device kept FEATURES_OK.
    pub fn negotiate(&self, features: u64) -> bool {
        self.write(r::VIRTIO_MMIO_STATUS, 0);
        self.write(r::VIRTIO_MMIO_STATUS, status::ACKNOWLEDGE);
        self.write(r::VIRTIO_MMIO_STATUS, status::ACKNOWLEDGE | status::DRIVER);
        self.write(r::VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
        self.write(r::VIRTIO_MMIO_DRIVER_FEATURES, features as u32);
        self.write(r::VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
        self.write(r::VIRTIO_MMIO_DRIVER_FEATURES, (features >> 32) as u32);
        let s = status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK;
        self.write(r::VIRTIO_MMIO_STATUS, s);
        self.status() & status::FEATURES_OK != 0
    }

    /// Configure queue `index` with `q`'s rings and make it ready.
    pub fn setup_queue(&self, index: u32, q: &GuestQueue) {
        self.write(r::VIRTIO_MMIO_QUEUE_SEL, index);
        self.write(r::VIRTIO_MMIO_QUEUE_NUM, u32::from(q.size));
        for (lo, hi, addr) in [
            (
                r::VIRTIO_MMIO_QUEUE_DESC_LOW,
                r::VIRTIO_MMIO_QUEUE_DESC_HIGH,
                q.desc,
            ),
            (
                r::VIRTIO_MMIO_QUEUE_AVAIL_LOW,
                r::VIRTIO_MMIO_QUEUE_AVAIL_HIGH,
                q.avail,
            ),
            (
                r::VIRTIO_MMIO_QUEUE_USED_LOW,
                r::VIRTIO_MMIO_QUEUE_USED_HIGH,
                q.used,
            ),
        ] {
            self.write(lo, addr as u32);
            self.write(hi, (addr >> 32) as u32);
        }
        self.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    }

    pub fn driver_ok(&self) {
        let s = self.status();
        self.write(r::VIRTIO_MMIO_STATUS, s | status::DRIVER_OK);
    }

    pub fn notify(&self, queue: u32) {
        self.write(r::VIRTIO_MMIO_QUEUE_NOTIFY, queue);
    }
}
