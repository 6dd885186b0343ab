//! Device reset and drop.

use std::io::Write;

use super::handshake::established_host_conn;
use super::util::{host_connect, sees_eof, T};
use super::TestGuest;
use crate::devices::virtio::status;
use crate::devices::virtio::vsock::packet::Op;

#[test]
fn test_vsock_reset_stops_worker_and_closes_connections() {
    let mut g = TestGuest::new();
    let (mut host, _) = established_host_conn(&mut g, 1024);
    g.mmio
        .write(virtio_bindings::virtio_mmio::VIRTIO_MMIO_STATUS, 0);
    assert!(!g.mmio.dev.lock().unwrap().is_active());
    assert_eq!(g.mmio.status(), 0);
    assert!(sees_eof(&mut host), "connections close on reset");
    // The listener survives a reset: a client can connect (it is served
    // once the driver is back).
    let _c = host_connect(&g, 1024);
    // Notifications after reset are ignored.
    g.mmio.notify(1);
    assert!(g.uds.exists());
}

#[test]
fn test_vsock_drop_removes_socket_and_closes_clients() {
    let mut g = TestGuest::new();
    let (mut host, _) = established_host_conn(&mut g, 1024);
    let uds = g.uds.clone();
    let TestGuest { mmio, dir, .. } = g;
    let dev = mmio.dev;
    drop(dev);
    assert!(!uds.exists(), "socket file removed");
    assert!(sees_eof(&mut host));
    drop(dir);
}

#[test]
fn test_vsock_failed_driver_status_keeps_device_running_until_reset() {
    let mut g = TestGuest::new();
    let (mut host, hp) = established_host_conn(&mut g, 1024);
    let s = g.mmio.status();
    g.mmio.write(
        virtio_bindings::virtio_mmio::VIRTIO_MMIO_STATUS,
        s | status::FAILED,
    );
    assert_ne!(g.mmio.status() & status::FAILED, 0);
    // Still active until the driver resets it.
    host.write_all(b"x").unwrap();
    let p = g.recv_for(1024, T).unwrap();
    assert_eq!((p.op(), p.hdr.src_port), (Some(Op::Rw), hp));
}
