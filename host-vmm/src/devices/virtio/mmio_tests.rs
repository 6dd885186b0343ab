//! Register-level tests of the virtio-mmio transport with a stub device.

use std::sync::{Arc, Mutex};

use virtio_bindings::virtio_mmio as r;
use vm_memory::GuestAddress;

use super::*;
use crate::devices::virtio::testutil::{GuestQueue, MmioDriver};
use crate::devices::virtio::ActivateError;

/// (queue eventfds, acked features, (size, ready) per queue).
type Activation = (usize, u64, Vec<(u16, bool)>);

#[derive(Default)]
struct Calls {
    activated: Vec<Activation>,
    resets: usize,
    config_writes: Vec<(u64, Vec<u8>)>,
}

struct Stub {
    calls: Arc<Mutex<Calls>>,
    fail: bool,
}

impl VirtioDevice for Stub {
    fn device_type(&self) -> u32 {
        42
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 8]
    }
    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1 | 0b101
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        data.fill(offset as u8 ^ 0xa5);
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        self.calls
            .lock()
            .unwrap()
            .config_writes
            .push((offset, data.to_vec()));
    }
    fn activate(&mut self, dq: DeviceQueues) -> Result<(), ActivateError> {
        if self.fail {
            return Err(ActivateError::QueueNotReady { index: 1 });
        }
        let qs = dq.queues.iter().map(|q| (q.size(), q.ready())).collect();
        self.calls
            .lock()
            .unwrap()
            .activated
            .push((dq.queue_evts.len(), dq.acked_features, qs));
        Ok(())
    }
    fn reset(&mut self) {
        self.calls.lock().unwrap().resets += 1;
    }
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
}

fn setup(fail: bool) -> (MmioDriver, Arc<Mutex<Calls>>, GuestMemoryMmap) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let mem = mem();
    let stub = Stub {
        calls: calls.clone(),
        fail,
    };
    let dev = VirtioMmioDevice::new(Box::new(stub), GuestMemoryAtomic::new(mem.clone())).unwrap();
    (MmioDriver::new(dev), calls, mem)
}

const ACK_DRIVER: u32 = status::ACKNOWLEDGE | status::DRIVER;
const FEAT_OK: u32 = ACK_DRIVER | status::FEATURES_OK;

#[test]
fn test_mmio_identity_registers_and_feature_pages() {
    let (d, _, _) = setup(false);
    assert_eq!(d.read(r::VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
    assert_eq!(d.read(r::VIRTIO_MMIO_VERSION), 2);
    assert_eq!(d.read(r::VIRTIO_MMIO_DEVICE_ID), 42);
    assert_eq!(d.read(r::VIRTIO_MMIO_VENDOR_ID), MMIO_VENDOR_ID);
    d.write(r::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_eq!(d.read(r::VIRTIO_MMIO_DEVICE_FEATURES), 0b101);
    d.write(r::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_DEVICE_FEATURES), 1);
    d.write(r::VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
    assert_eq!(d.read(r::VIRTIO_MMIO_DEVICE_FEATURES), 0);
    for (sel, max) in [(0, 16), (1, 8), (2, 0), (u32::MAX, 0)] {
        d.write(r::VIRTIO_MMIO_QUEUE_SEL, sel);
        assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_NUM_MAX), max, "queue {sel}");
        assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    }
    assert_eq!(d.read(r::VIRTIO_MMIO_SHM_LEN_LOW), u32::MAX);
    assert_eq!(d.read(r::VIRTIO_MMIO_CONFIG_GENERATION), 0);
    // Write-only registers read as zero.
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_NOTIFY), 0);
}

#[test]
fn test_mmio_full_init_activates_and_reset_clears() {
    let (d, calls, mem) = setup(false);
    assert!(d.negotiate(VIRTIO_F_VERSION_1 | 0b100));
    let q0 = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
    let q1 = GuestQueue::new(&mem, GuestAddress(0x4000), 4);
    d.setup_queue(0, &q0);
    d.setup_queue(1, &q1);
    d.driver_ok();
    assert_eq!(d.status(), FEAT_OK | status::DRIVER_OK);
    assert!(d.dev.lock().unwrap().is_active());
    {
        let c = calls.lock().unwrap();
        assert_eq!(
            c.activated,
            vec![(2, VIRTIO_F_VERSION_1 | 0b100, vec![(16, true), (4, true)])]
        );
    }
    // Queue registers are frozen after DRIVER_OK.
    d.write(r::VIRTIO_MMIO_QUEUE_SEL, 1);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 0);
    d.write(r::VIRTIO_MMIO_QUEUE_NUM, 2);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 1);
    // Reset.
    d.dev.lock().unwrap().interrupt.trigger(irq::VRING);
    d.write(r::VIRTIO_MMIO_STATUS, 0);
    assert_eq!(d.status(), 0);
    assert_eq!(d.read(r::VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    assert!(!d.dev.lock().unwrap().is_active());
    assert_eq!(calls.lock().unwrap().resets, 1);
    // And it can be brought up again.
    assert!(d.negotiate(VIRTIO_F_VERSION_1));
    d.setup_queue(0, &q0);
    d.setup_queue(1, &q1);
    d.driver_ok();
    assert_eq!(calls.lock().unwrap().activated.len(), 2);
}

#[test]
fn test_mmio_status_out_of_order_or_cleared_bits_ignored() {
    let (d, calls, _) = setup(false);
    for bad in [
        status::DRIVER,
        status::ACKNOWLEDGE | status::FEATURES_OK,
        status::ACKNOWLEDGE | status::DRIVER_OK,
        status::DEVICE_NEEDS_RESET,
        0x10,
        0x20,
    ] {
        d.write(r::VIRTIO_MMIO_STATUS, bad);
        assert_eq!(d.status(), 0, "{bad:#x}");
    }
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER);
    // Clearing a bit without a reset.
    d.write(r::VIRTIO_MMIO_STATUS, status::ACKNOWLEDGE);
    assert_eq!(d.status(), ACK_DRIVER);
    // DRIVER_OK before FEATURES_OK.
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER | status::DRIVER_OK);
    assert_eq!(d.status(), ACK_DRIVER);
    assert!(calls.lock().unwrap().activated.is_empty());
}

#[test]
fn test_mmio_features_refused_without_version1_or_with_unknown_bits() {
    let (d, _, _) = setup(false);
    assert!(!d.negotiate(0b1));
    assert_eq!(d.status(), ACK_DRIVER);
    assert!(!d.negotiate(VIRTIO_F_VERSION_1 | 0b10));
    assert!(d.negotiate(VIRTIO_F_VERSION_1 | 0b1));
    // Driver features are frozen after FEATURES_OK.
    d.write(r::VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    d.write(r::VIRTIO_MMIO_DRIVER_FEATURES, 0b10);
    assert_eq!(
        d.dev.lock().unwrap().driver_features,
        VIRTIO_F_VERSION_1 | 0b1
    );
    // Features above bit 63 are ignored.
    let (d, _, _) = setup(false);
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER);
    d.write(r::VIRTIO_MMIO_DRIVER_FEATURES_SEL, 5);
    d.write(r::VIRTIO_MMIO_DRIVER_FEATURES, u32::MAX);
    assert_eq!(d.dev.lock().unwrap().driver_features, 0);
}

#[test]
fn test_mmio_queue_size_and_address_checks() {
    let (d, _, mem) = setup(false);
    // Before FEATURES_OK queue writes are ignored.
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER);
    d.write(r::VIRTIO_MMIO_QUEUE_SEL, 0);
    d.write(r::VIRTIO_MMIO_QUEUE_NUM, 4);
    assert_eq!(d.dev.lock().unwrap().queues[0].size(), 16);
    assert!(d.negotiate(VIRTIO_F_VERSION_1));
    d.write(r::VIRTIO_MMIO_QUEUE_SEL, 0);
    for bad in [0, 3, 12, 32, 0x1_0000 + 4, u32::MAX] {
        d.write(r::VIRTIO_MMIO_QUEUE_NUM, bad);
        assert_eq!(d.dev.lock().unwrap().queues[0].size(), 16, "{bad}");
    }
    d.write(r::VIRTIO_MMIO_QUEUE_NUM, 8);
    assert_eq!(d.dev.lock().unwrap().queues[0].size(), 8);
    // Misaligned ring addresses are ignored.
    d.write(r::VIRTIO_MMIO_QUEUE_DESC_LOW, 0x1008);
    d.write(r::VIRTIO_MMIO_QUEUE_AVAIL_LOW, 0x2001);
    d.write(r::VIRTIO_MMIO_QUEUE_USED_LOW, 0x3002);
    {
        let dev = d.dev.lock().unwrap();
        let q = &dev.queues[0];
        assert_ne!(q.desc_table(), 0x1008);
        assert_ne!(q.avail_ring(), 0x2001);
        assert_ne!(q.used_ring(), 0x3002);
    }
    // Rings outside guest RAM: the queue does not become ready.
    let q = GuestQueue::new(&mem, GuestAddress(0x1000), 8);
    d.setup_queue(0, &q);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 1);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 0);
    d.write(r::VIRTIO_MMIO_QUEUE_USED_HIGH, 1); // used ring at 4 GiB + ...
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    d.write(r::VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
    d.write(r::VIRTIO_MMIO_QUEUE_DESC_LOW, 0xffff_fff0); // past RAM end
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    // Straddling the end of RAM.
    d.write(r::VIRTIO_MMIO_QUEUE_DESC_LOW, 0x10_0000 - 0x40);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 2);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
    // A ready queue cannot be reconfigured.
    d.write(r::VIRTIO_MMIO_QUEUE_DESC_LOW, q.desc as u32);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 1);
    d.write(r::VIRTIO_MMIO_QUEUE_NUM, 4);
    assert_eq!(d.dev.lock().unwrap().queues[0].size(), 8);
    // Queue registers of a queue that does not exist.
    d.write(r::VIRTIO_MMIO_QUEUE_SEL, 9);
    d.write(r::VIRTIO_MMIO_QUEUE_NUM, 4);
    d.write(r::VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_QUEUE_READY), 0);
}

#[test]
fn test_mmio_misaligned_and_odd_width_accesses_are_ignored() {
    let (d, _, _) = setup(false);
    let mut dev = d.dev.lock().unwrap();
    for (off, len) in [
        (0u64, 1usize),
        (0, 2),
        (0, 8),
        (1, 4),
        (2, 4),
        (0x71, 1),
        (0xfe, 2),
    ] {
        let mut b = vec![0xffu8; len];
        dev.read(0, off, &mut b);
        assert!(b.iter().all(|&x| x == 0), "{off:#x}/{len}");
    }
    dev.write(0, r::VIRTIO_MMIO_STATUS as u64, &[1]);
    dev.write(0, r::VIRTIO_MMIO_STATUS as u64 + 1, &[1, 0, 0, 0]);
    dev.write(0, r::VIRTIO_MMIO_STATUS as u64, &[1, 0, 0, 0, 0, 0, 0, 0]);
    dev.write(0, 0xf8, &[1, 2, 3, 4]); // unknown register
    dev.write(0, 0, &[]);
    assert_eq!(dev.status(), 0);
}

#[test]
fn test_mmio_notify_only_when_active_and_in_range() {
    let (d, _, mem) = setup(false);
    let evts: Vec<EventFd> = d
        .dev
        .lock()
        .unwrap()
        .queue_evts()
        .iter()
        .map(|e| e.try_clone().unwrap())
        .collect();
    d.notify(0);
    assert!(evts[0].read().is_err(), "no notify before DRIVER_OK");
    assert!(d.negotiate(VIRTIO_F_VERSION_1));
    d.setup_queue(0, &GuestQueue::new(&mem, GuestAddress(0x1000), 16));
    d.setup_queue(1, &GuestQueue::new(&mem, GuestAddress(0x4000), 8));
    d.driver_ok();
    d.notify(1);
    d.notify(5);
    d.notify(u32::MAX);
    assert!(evts[0].read().is_err());
    assert_eq!(evts[1].read().unwrap(), 1);
    assert_eq!(MMIO_NOTIFY_OFFSET, 0x50);
}

#[test]
fn test_mmio_interrupt_status_and_ack() {
    let (d, _, _) = setup(false);
    let irq_evt = d.dev.lock().unwrap().interrupt_evt().try_clone().unwrap();
    d.dev
        .lock()
        .unwrap()
        .interrupt
        .trigger(irq::VRING | irq::CONFIG);
    assert_eq!(irq_evt.read().unwrap(), 1);
    assert_eq!(d.read(r::VIRTIO_MMIO_INTERRUPT_STATUS), 3);
    d.write(r::VIRTIO_MMIO_INTERRUPT_ACK, irq::VRING);
    assert_eq!(d.read(r::VIRTIO_MMIO_INTERRUPT_STATUS), irq::CONFIG);
    d.write(r::VIRTIO_MMIO_INTERRUPT_ACK, u32::MAX);
    assert_eq!(d.read(r::VIRTIO_MMIO_INTERRUPT_STATUS), 0);
}

#[test]
fn test_mmio_activation_failure_sets_needs_reset_and_raises_config_irq() {
    let (d, _, mem) = setup(true);
    assert!(d.negotiate(VIRTIO_F_VERSION_1));
    d.setup_queue(0, &GuestQueue::new(&mem, GuestAddress(0x1000), 16));
    d.driver_ok();
    assert_eq!(
        d.status(),
        FEAT_OK | status::DRIVER_OK | status::DEVICE_NEEDS_RESET
    );
    assert!(!d.dev.lock().unwrap().is_active());
    assert_eq!(d.read(r::VIRTIO_MMIO_INTERRUPT_STATUS), irq::CONFIG);
    // Nothing but a reset moves it on.
    d.write(r::VIRTIO_MMIO_STATUS, FEAT_OK | status::DRIVER_OK | 0x10);
    assert_ne!(d.status() & status::DEVICE_NEEDS_RESET, 0);
    d.write(r::VIRTIO_MMIO_STATUS, 0);
    assert_eq!(d.status(), 0);
}

#[test]
fn test_mmio_failed_blocks_progress_until_reset() {
    let (d, calls, _) = setup(false);
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER);
    d.write(r::VIRTIO_MMIO_STATUS, ACK_DRIVER | status::FAILED);
    assert_eq!(d.status(), ACK_DRIVER | status::FAILED);
    d.write(r::VIRTIO_MMIO_STATUS, FEAT_OK);
    assert_eq!(d.status(), ACK_DRIVER | status::FAILED);
    assert!(calls.lock().unwrap().activated.is_empty());
    d.write(r::VIRTIO_MMIO_STATUS, 0);
    assert_eq!(d.status(), 0);
}

#[test]
fn test_mmio_config_space_passthrough_after_driver() {
    let (d, calls, _) = setup(false);
    let mut dev = d.dev.lock().unwrap();
    let mut b = [0u8; 3];
    dev.read(0, 0x105, &mut b);
    assert_eq!(b, [5 ^ 0xa5; 3]);
    dev.write(0, 0x100, &[1, 2]);
    assert!(calls.lock().unwrap().config_writes.is_empty());
    dev.write(
        0,
        r::VIRTIO_MMIO_STATUS as u64,
        &status::ACKNOWLEDGE.to_le_bytes(),
    );
    dev.write(0, r::VIRTIO_MMIO_STATUS as u64, &ACK_DRIVER.to_le_bytes());
    dev.write(0, 0x100, &[1, 2]);
    assert_eq!(calls.lock().unwrap().config_writes, vec![(0, vec![1, 2])]);
}

#[test]
fn test_mmio_new_refuses_bad_devices() {
    struct Bad(Vec<u16>, u64);
    impl VirtioDevice for Bad {
        fn device_type(&self) -> u32 {
            1
        }
        fn queue_max_sizes(&self) -> &[u16] {
            &self.0
        }
        fn features(&self) -> u64 {
            self.1
        }
        fn read_config(&self, _: u64, _: &mut [u8]) {}
        fn write_config(&mut self, _: u64, _: &[u8]) {}
        fn activate(&mut self, _: DeviceQueues) -> Result<(), ActivateError> {
            Ok(())
        }
        fn reset(&mut self) {}
    }
    let m = GuestMemoryAtomic::new(mem());
    let new = |q: Vec<u16>, f| VirtioMmioDevice::new(Box::new(Bad(q, f)), m.clone());
    assert!(matches!(
        new(vec![], VIRTIO_F_VERSION_1),
        Err(MmioError::NoQueues)
    ));
    assert!(matches!(new(vec![16], 0), Err(MmioError::NotVersion1)));
    assert!(matches!(
        new(vec![16, 12], VIRTIO_F_VERSION_1),
        Err(MmioError::QueueMaxSize { index: 1, size: 12 })
    ));
    assert!(new(vec![16], VIRTIO_F_VERSION_1).is_ok());
}

#[test]
fn test_kernel_cmdline_device() {
    assert_eq!(
        kernel_cmdline_device(0xd000_0000, 5),
        "virtio_mmio.device=4K@0xd0000000:5"
    );
    assert_eq!(MMIO_WINDOW_SIZE, 4096);
}
