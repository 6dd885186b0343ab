//! The muxer alone, driven past each of its bounds by a guest that posts
//! no rx buffers (so nothing it queues for the guest ever drains).

use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use vmm_sys_util::tempdir::TempDir;

use super::{Muxer, VsockLimits, TOKEN_LISTENER};
use crate::devices::virtio::vsock::packet::{Op, VsockHeader, HOST_CID, TYPE_STREAM};
use crate::devices::virtio::vsock::unix::{bind_listener, port_socket_path};

const CID: u64 = 3;

struct Rig {
    _dir: TempDir,
    uds: PathBuf,
    mux: Muxer,
}

fn rig(limits: VsockLimits) -> Rig {
    let dir = TempDir::new().unwrap();
    let uds = dir.as_path().join("v.sock");
    let listener = bind_listener(&uds).unwrap();
    let mux = Muxer::new(CID, uds.clone(), listener, limits).unwrap();
    Rig {
        _dir: dir,
        uds,
        mux,
    }
}

fn pkt(op: Op, guest_port: u32, host_port: u32) -> VsockHeader {
    VsockHeader {
        src_cid: CID,
        dst_cid: HOST_CID,
        src_port: guest_port,
        dst_port: host_port,
        type_: TYPE_STREAM,
        op: op as u16,
        buf_alloc: 4096,
        ..Default::default()
    }
}

fn small_limits() -> VsockLimits {
    VsockLimits {
        buf_alloc: 4096,
        max_connections: 8,
        max_pending_clients: 4,
        connect_timeout: Duration::from_secs(60),
        max_queued_rsts: 16,
    }
}

/// Issue 10, finding 3: REQUEST then RST, 20,000 times, on one key,
/// with no rx buffers: every REQUEST queues a RESPONSE. The rx work list
/// used to keep the killed connection's key and queue the next one's
/// again (20,000 entries, 0 connections).
#[test]
fn test_muxer_request_rst_loop_keeps_rx_work_bounded() {
    let mut r = rig(VsockLimits::default());
    let host = bind_listener(&port_socket_path(&r.uds, 7000)).unwrap();
    for i in 0..20_000 {
        r.mux.recv_pkt(&pkt(Op::Request, 5000, 7000), &[]);
        assert_eq!(r.mux.connection_count(), 1, "loop {i}");
        // Keep the host listener's backlog empty.
        drop(host.accept().unwrap());
        r.mux.recv_pkt(&pkt(Op::Rst, 5000, 7000), &[]);
        assert!(r.mux.rx_work_len() <= r.mux.connection_count(), "loop {i}");
    }
    assert_eq!(r.mux.connection_count(), 0);
    assert_eq!(r.mux.rx_work_len(), 0);
    // Different keys each time: the same bound.
    for i in 0..2_000u32 {
        r.mux.recv_pkt(&pkt(Op::Request, 10_000 + i, 7000), &[]);
        drop(host.accept().unwrap());
        r.mux.recv_pkt(&pkt(Op::Rst, 10_000 + i, 7000), &[]);
    }
    assert_eq!(r.mux.rx_work_len(), 0);
    assert_eq!(r.mux.queued_rsts(), 0, "an RST from the guest gets no RST");
}

/// Live connections stop at `max_connections` (extra REQUESTs get an
/// RST) and the rx work list at one entry per connection.
#[test]
fn test_muxer_connections_and_rx_work_stop_at_the_bound() {
    let limits = small_limits();
    let mut r = rig(limits.clone());
    let _host = UnixListener::bind(port_socket_path(&r.uds, 7000)).unwrap();
    for p in 0..100 {
        r.mux.recv_pkt(&pkt(Op::Request, 5000 + p, 7000), &[]);
    }
    assert_eq!(r.mux.connection_count(), limits.max_connections);
    assert_eq!(r.mux.rx_work_len(), limits.max_connections);
    assert_eq!(r.mux.queued_rsts(), limits.max_queued_rsts);
}

/// RSTs for a guest that never reads stop at `max_queued_rsts`.
#[test]
fn test_muxer_rst_queue_stops_at_the_bound() {
    let limits = small_limits();
    let mut r = rig(limits.clone());
    for p in 0..10_000 {
        // RW for no connection: answered with RST.
        r.mux.recv_pkt(&pkt(Op::Rw, p, 9), &[]);
        assert!(r.mux.queued_rsts() <= limits.max_queued_rsts);
    }
    assert_eq!(r.mux.queued_rsts(), limits.max_queued_rsts);
    assert_eq!(r.mux.connection_count(), 0);
}

/// Host clients that never send `CONNECT` stop at `max_pending_clients`.
#[test]
fn test_muxer_pending_clients_stop_at_the_bound() {
    let limits = small_limits();
    let mut r = rig(limits.clone());
    let clients: Vec<UnixStream> = (0..40)
        .map(|_| {
            let c = UnixStream::connect(&r.uds).unwrap();
            r.mux.handle_event(TOKEN_LISTENER, libc::EPOLLIN as u32);
            c
        })
        .collect();
    assert_eq!(clients.len(), 40);
    assert_eq!(r.mux.pending_clients(), limits.max_pending_clients);
}

/// A host listener that never accepts: once its backlog is full, guest
/// REQUESTs are refused at once (RST) instead of blocking the device
/// thread in `connect()`.
#[test]
fn test_muxer_full_listener_backlog_refuses_without_blocking() {
    let mut r = rig(VsockLimits::default());
    let host = UnixListener::bind(port_socket_path(&r.uds, 7000)).unwrap();
    // A small backlog (std asks for SOMAXCONN); listen() again sets it.
    let fd = std::os::fd::AsRawFd::as_raw_fd(&host);
    // SAFETY: listen() on a socket we own takes no pointers.
    let rc = unsafe { libc::listen(fd, 4) };
    assert_eq!(rc, 0);
    let start = std::time::Instant::now();
    for p in 0..super::MAX_CONNECTIONS as u32 {
        r.mux.recv_pkt(&pkt(Op::Request, 5000 + p, 7000), &[]);
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    let conns = r.mux.connection_count();
    assert!(
        conns < super::MAX_CONNECTIONS,
        "backlog never filled: {conns}"
    );
    assert_eq!(
        r.mux.queued_rsts(),
        super::MAX_CONNECTIONS - conns,
        "every refused REQUEST gets an RST"
    );
}
