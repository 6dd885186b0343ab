//! virtio-blk driven through guest memory and the virtio-mmio registers,
//! as a guest driver does it: the device thread runs for real, the test
//! plays the vCPU. No KVM involved.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use virtio_bindings::virtio_blk as b;
use virtio_bindings::virtio_mmio as r;
use vm_memory::{Bytes, GuestAddress};
use vmm_sys_util::eventfd::EventFd;
use vmm_sys_util::tempdir::TempDir;

use super::request::{HEADER_SIZE, STATUS_IOERR, STATUS_OK, STATUS_UNSUPP};
use super::{Block, DiskConfig, VIRTIO_ID_BLOCK};
use crate::devices::virtio::mmio::VirtioMmioDevice;
use crate::devices::virtio::testutil::{Desc, GuestQueue, MmioDriver};
use crate::devices::virtio::VIRTIO_F_VERSION_1;
use crate::memory::{GuestMemoryAtomic, GuestMemoryMmap};

const RAM: usize = 16 << 20;
const QUEUE: u64 = 0x1000;
const HDR: u64 = 0x10_0000;
const DATA: u64 = 0x20_0000;
const STATUS: u64 = 0x30_0000;
/// 64 sectors.
const DISK_BYTES: usize = 32 * 1024;

struct TestGuest {
    mem: GuestMemoryMmap,
    mmio: MmioDriver,
    q: GuestQueue,
    irq: EventFd,
    dir: TempDir,
}

fn pattern() -> Vec<u8> {
    (0..DISK_BYTES)
        .map(|i| (i / 512) as u8 ^ (i as u8))
        .collect()
}

impl TestGuest {
    fn new(read_only: bool) -> Self {
        Self::with_features(read_only, None)
    }

    fn with_features(read_only: bool, features: Option<u64>) -> Self {
        let dir = TempDir::new().unwrap();
        let path = dir.as_path().join("disk.img");
        std::fs::write(&path, pattern()).unwrap();
        let blk = Block::new(&DiskConfig {
            path,
            read_only,
            serial: "serial-0123456789abc".into(),
        })
        .unwrap();
        let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM)]).unwrap();
        let dev =
            VirtioMmioDevice::new(Box::new(blk), GuestMemoryAtomic::new(mem.clone())).unwrap();
        let irq = dev.interrupt_evt().try_clone().unwrap();
        let mmio = MmioDriver::new(dev);
        let offered = mmio_features(&mmio);
        assert!(mmio.negotiate(features.unwrap_or(offered)));
        let q = GuestQueue::new(&mem, GuestAddress(QUEUE), 64);
        mmio.setup_queue(0, &q);
        mmio.driver_ok();
        Self {
            mem,
            mmio,
            q,
            irq,
            dir,
        }
    }

    fn disk(&self) -> Vec<u8> {
        std::fs::read(self.dir.as_path().join("disk.img")).unwrap()
    }

    fn header(&self, at: u64, type_: u32, sector: u64) {
        let mut h = [0u8; HEADER_SIZE];
        h[0..4].copy_from_slice(&type_.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.mem.write_slice(&h, GuestAddress(at)).unwrap();
    }

    /// Post `descs`, notify, wait for the chain to come back: (used len,
    /// status byte at STATUS).
    fn submit(&mut self, descs: &[Desc]) -> (u32, u8) {
        self.mem.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        let head = self.q.add_chain(&self.mem, descs);
        self.mmio.notify(0);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some((h, len)) = self.q.pop_used(&self.mem) {
                assert_eq!(h, head);
                let status: u8 = self.mem.read_obj(GuestAddress(STATUS)).unwrap();
                return (len, status);
            }
            assert!(Instant::now() < deadline, "request never completed");
            self.wait_irq(5);
        }
    }

    /// A well-formed request of `type_` at `sector` with `data` bytes.
    fn request(&mut self, type_: u32, sector: u64, data: u32) -> (u32, u8) {
        self.header(HDR, type_, sector);
        let data_desc = match type_ {
            b::VIRTIO_BLK_T_OUT => Some(Desc::read(DATA, data)),
            _ if data > 0 => Some(Desc::write(DATA, data)),
            _ => None,
        };
        let mut descs = vec![Desc::read(HDR, HEADER_SIZE as u32)];
        descs.extend(data_desc);
        descs.push(Desc::write(STATUS, 1));
        self.submit(&descs)
    }

    fn wait_irq(&self, ms: i32) {
        let mut pfd = libc::pollfd {
            fd: self.irq.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: `pfd` is a valid pollfd for the duration of the call.
        unsafe { libc::poll(&mut pfd, 1, ms) };
        let _ = self.irq.read();
    }

    fn data(&self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.mem.read_slice(&mut v, GuestAddress(DATA)).unwrap();
        v
    }
}

fn mmio_features(mmio: &MmioDriver) -> u64 {
    mmio.write(r::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    let lo = mmio.read(r::VIRTIO_MMIO_DEVICE_FEATURES);
    mmio.write(r::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    let hi = mmio.read(r::VIRTIO_MMIO_DEVICE_FEATURES);
    u64::from(lo) | u64::from(hi) << 32
}

#[test]
fn test_block_identity_features_and_capacity() {
    let g = TestGuest::new(true);
    assert_eq!(g.mmio.read(r::VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_BLOCK);
    let f = mmio_features(&g.mmio);
    for bit in [
        b::VIRTIO_BLK_F_RO,
        b::VIRTIO_BLK_F_FLUSH,
        b::VIRTIO_BLK_F_BLK_SIZE,
    ] {
        assert_ne!(f & 1 << bit, 0, "feature bit {bit}");
    }
    assert_ne!(f & VIRTIO_F_VERSION_1, 0);
    let cap = u64::from(g.mmio.read(0x100)) | u64::from(g.mmio.read(0x104)) << 32;
    assert_eq!(cap, (DISK_BYTES / 512) as u64);
    let rw = TestGuest::new(false);
    assert_eq!(mmio_features(&rw.mmio) & 1 << b::VIRTIO_BLK_F_RO, 0);
}

#[test]
fn test_block_read_returns_file_contents() {
    let mut g = TestGuest::new(true);
    let (len, status) = g.request(b::VIRTIO_BLK_T_IN, 3, 2048);
    assert_eq!((len, status), (2049, STATUS_OK));
    assert_eq!(g.data(2048), pattern()[3 * 512..7 * 512]);
    // The last sector.
    let (_, status) = g.request(b::VIRTIO_BLK_T_IN, 63, 512);
    assert_eq!(status, STATUS_OK);
    assert_eq!(g.data(512), pattern()[63 * 512..]);
}

#[test]
fn test_block_read_scattered_over_buffers() {
    let mut g = TestGuest::new(true);
    g.header(HDR, b::VIRTIO_BLK_T_IN, 1);
    let (len, status) = g.submit(&[
        Desc::read(HDR, 8),
        Desc::read(HDR + 8, 8),
        Desc::write(DATA, 100),
        Desc::write(DATA + 0x1000, 412),
        Desc::write(DATA + 0x2000, 512),
        Desc::write(STATUS, 1),
    ]);
    assert_eq!((len, status), (1025, STATUS_OK));
    let mut got = g.data(100);
    let mut more = vec![0u8; 412];
    g.mem
        .read_slice(&mut more, GuestAddress(DATA + 0x1000))
        .unwrap();
    got.extend(more);
    let mut more = vec![0u8; 512];
    g.mem
        .read_slice(&mut more, GuestAddress(DATA + 0x2000))
        .unwrap();
    got.extend(more);
    assert_eq!(got, pattern()[512..1536]);
}

#[test]
fn test_block_write_then_flush_reaches_the_file() {
    let mut g = TestGuest::new(false);
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    g.mem.write_slice(&data, GuestAddress(DATA)).unwrap();
    assert_eq!(g.request(b::VIRTIO_BLK_T_OUT, 10, 1024), (1, STATUS_OK));
    assert_eq!(g.request(b::VIRTIO_BLK_T_FLUSH, 0, 0), (1, STATUS_OK));
    let mut want = pattern();
    want[10 * 512..12 * 512].copy_from_slice(&data);
    assert_eq!(g.disk(), want);
    // Read back through the device.
    g.mem.write_slice(&[0u8; 1024], GuestAddress(DATA)).unwrap();
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 10, 1024).1, STATUS_OK);
    assert_eq!(g.data(1024), data);
}

#[test]
fn test_block_get_id_is_the_serial() {
    let mut g = TestGuest::new(true);
    assert_eq!(g.request(b::VIRTIO_BLK_T_GET_ID, 0, 20), (21, STATUS_OK));
    assert_eq!(g.data(20), b"serial-0123456789abc");
}

#[test]
fn test_block_write_to_read_only_is_ioerr_and_file_unchanged() {
    let mut g = TestGuest::new(true);
    g.mem.write_slice(&[0xaa; 512], GuestAddress(DATA)).unwrap();
    assert_eq!(g.request(b::VIRTIO_BLK_T_OUT, 0, 512), (1, STATUS_IOERR));
    assert_eq!(g.disk(), pattern());
}

#[test]
fn test_block_out_of_range_and_bad_requests_get_a_status() {
    let mut g = TestGuest::new(false);
    // One sector past the end, a range that wraps, a partial sector.
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 64, 512).1, STATUS_IOERR);
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 63, 1024).1, STATUS_IOERR);
    assert_eq!(
        g.request(b::VIRTIO_BLK_T_OUT, u64::MAX, 512).1,
        STATUS_IOERR
    );
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 0, 100).1, STATUS_IOERR);
    // Unknown and unoffered types.
    assert_eq!(g.request(b::VIRTIO_BLK_T_DISCARD, 0, 0).1, STATUS_UNSUPP);
    assert_eq!(g.request(0x1234, 0, 0).1, STATUS_UNSUPP);
    // Header too short.
    g.header(HDR, b::VIRTIO_BLK_T_IN, 0);
    assert_eq!(
        g.submit(&[
            Desc::read(HDR, 8),
            Desc::write(DATA, 512),
            Desc::write(STATUS, 1)
        ]),
        (1, STATUS_IOERR)
    );
    // Status descriptor device-readable: nothing to answer in; returned empty.
    let head =
        g.q.add_chain(&g.mem, &[Desc::read(HDR, 16), Desc::read(STATUS, 1)]);
    g.mmio.notify(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let used = loop {
        if let Some(u) = g.q.pop_used(&g.mem) {
            break u;
        }
        assert!(Instant::now() < deadline);
        g.wait_irq(5);
    };
    assert_eq!(used, (head, 0));
    assert_eq!(g.disk(), pattern());
}

#[test]
fn test_block_malformed_chains_are_returned_and_device_keeps_serving() {
    let mut g = TestGuest::new(false);
    // A buffer outside guest RAM.
    g.header(HDR, b::VIRTIO_BLK_T_IN, 0);
    assert_eq!(
        g.submit(&[
            Desc::read(HDR, 16),
            Desc::write(RAM as u64 - 256, 512),
            Desc::write(STATUS, 1)
        ])
        .0,
        0
    );
    // Readable after writable.
    assert_eq!(
        g.submit(&[
            Desc::read(HDR, 16),
            Desc::write(STATUS, 1),
            Desc::read(DATA, 512)
        ])
        .0,
        0
    );
    // A chain using every descriptor of the queue (below SEG_MAX + 2).
    let mut descs = vec![Desc::read(HDR, 16)];
    descs.extend((0..62).map(|i| Desc::write(DATA + i * 512, 512)));
    descs.push(Desc::write(STATUS, 1));
    assert_eq!(
        g.submit(&descs),
        (62 * 512 + 1, STATUS_OK),
        "64 descriptors are fine"
    );
    // Still serving.
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 0, 512), (513, STATUS_OK));
}

#[test]
fn test_block_reset_and_reactivate() {
    let mut g = TestGuest::new(true);
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 0, 512).1, STATUS_OK);
    g.mmio.write(r::VIRTIO_MMIO_STATUS, 0);
    let f = mmio_features(&g.mmio);
    assert!(g.mmio.negotiate(f));
    g.q = GuestQueue::new(&g.mem, GuestAddress(QUEUE), 64);
    g.mmio.setup_queue(0, &g.q);
    g.mmio.driver_ok();
    assert_eq!(g.request(b::VIRTIO_BLK_T_IN, 1, 512).1, STATUS_OK);
    assert_eq!(g.data(512), pattern()[512..1024]);
}

#[test]
fn test_block_refuses_unoffered_features() {
    let dir = TempDir::new().unwrap();
    let path = dir.as_path().join("d");
    std::fs::write(&path, [0u8; 512]).unwrap();
    let blk = Block::new(&DiskConfig {
        path,
        read_only: false,
        serial: String::new(),
    })
    .unwrap();
    let mem = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000)]).unwrap();
    let dev = VirtioMmioDevice::new(Box::new(blk), GuestMemoryAtomic::new(mem)).unwrap();
    let mmio = MmioDriver::new(dev);
    // DISCARD was not offered.
    assert!(!mmio.negotiate(VIRTIO_F_VERSION_1 | 1 << b::VIRTIO_BLK_F_DISCARD));
}
