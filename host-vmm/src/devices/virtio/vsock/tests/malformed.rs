//! Malformed descriptors and headers: logged, dropped or answered with
//! RST, never a panic; the device keeps working afterwards.

use std::time::Duration;

use vm_memory::{Bytes, GuestAddress};

use super::guest::GuestOpts;
use super::util::{accept, listen, T};
use super::TestGuest;
use crate::devices::virtio::testutil::{Desc, VRING_DESC_F_NEXT};
use crate::devices::virtio::vsock::packet::{Op, VsockHeader, HDR_SIZE, MAX_PKT_PAYLOAD};

const SCRATCH: u64 = 0x300_0000;

/// The device still serves a fresh guest connection.
fn still_works(g: &mut TestGuest, guest_port: u32) {
    let l = listen(g, 7000 + guest_port % 1000);
    g.send(
        &g.hdr(Op::Request, guest_port, 7000 + guest_port % 1000),
        &[],
    );
    let p = g
        .recv_where(T, |p| {
            p.hdr.dst_port == guest_port && p.op() == Some(Op::Response)
        })
        .expect("device still answers");
    assert_eq!(p.op(), Some(Op::Response));
    let _ = accept(&l);
}

fn write_hdr(g: &TestGuest, at: u64, h: &VsockHeader) {
    g.mem.write_slice(&h.to_bytes(), GuestAddress(at)).unwrap();
}

#[test]
fn test_vsock_malformed_headers_get_rst_or_are_dropped() {
    let mut g = TestGuest::new();
    let mut rst_expected = Vec::new();
    // Not for the host CID.
    let mut h = g.hdr(Op::Request, 1, 5000);
    h.dst_cid = 7;
    g.send(&h, &[]);
    rst_expected.push(1);
    // Not a stream (SEQPACKET).
    let mut h = g.hdr(Op::Request, 2, 5000);
    h.type_ = 2;
    g.send(&h, &[]);
    rst_expected.push(2);
    // Unknown op.
    let mut h = g.hdr(Op::Request, 3, 5000);
    h.op = 99;
    g.send(&h, &[]);
    rst_expected.push(3);
    // Data, shutdown, credit ops for a connection that does not exist.
    for (port, op) in [
        (4, Op::Rw),
        (5, Op::Shutdown),
        (6, Op::CreditUpdate),
        (7, Op::Response),
    ] {
        g.send(&g.hdr(op, port, 5000), b"x");
        rst_expected.push(port);
    }
    // RW whose len exceeds its buffer or the maximum.
    let mut h = g.hdr(Op::Rw, 8, 5000);
    h.len = 100;
    g.send_split(&h, b"short", false);
    rst_expected.push(8);
    let mut h = g.hdr(Op::Rw, 9, 5000);
    h.len = MAX_PKT_PAYLOAD as u32 + 1;
    g.send_split(&h, &vec![0u8; MAX_PKT_PAYLOAD + 1], false);
    rst_expected.push(9);
    // Dropped silently: spoofed source CID, RST for nothing.
    let mut h = g.hdr(Op::Request, 10, 5000);
    h.src_cid = 4;
    g.send(&h, &[]);
    g.send(&g.hdr(Op::Rst, 11, 5000), &[]);

    let mut got = Vec::new();
    while got.len() < rst_expected.len() {
        got.push(g.recv(T).expect("an RST for each bad packet"));
    }
    got.extend(g.drain(Duration::from_millis(200)));
    let mut rst_ports: Vec<u32> = got
        .iter()
        .inspect(|p| assert_eq!(p.op(), Some(Op::Rst), "{p:?}"))
        .map(|p| p.hdr.dst_port)
        .collect();
    rst_ports.sort();
    assert_eq!(rst_ports, rst_expected);
    still_works(&mut g, 12);
}

#[test]
fn test_vsock_malformed_tx_descriptors_never_panic() {
    let mut g = TestGuest::new();
    let h = g.hdr(Op::Request, 20, 5000);
    write_hdr(&g, SCRATCH, &h);
    // Header shorter than 44 bytes.
    g.send_raw(&[Desc::read(SCRATCH, 20)]);
    // Header split across descriptors at an odd offset: valid, gets RST
    // (nobody listens on 5000).
    g.send_raw(&[
        Desc::read(SCRATCH, 7),
        Desc::read(SCRATCH + 7, HDR_SIZE as u32 - 7),
    ]);
    // Device-writable header: nothing readable.
    g.send_raw(&[Desc::write(SCRATCH, HDR_SIZE as u32)]);
    // Buffers outside guest RAM, straddling its end, at the top of the
    // address space.
    g.send_raw(&[Desc::read(0x1_0000_0000, HDR_SIZE as u32)]);
    g.send_raw(&[Desc::read((64 << 20) - 10, HDR_SIZE as u32)]);
    g.send_raw(&[Desc::read(u64::MAX - 8, HDR_SIZE as u32)]);
    // Huge length.
    g.send_raw(&[Desc::read(SCRATCH, u32::MAX)]);
    // Readable after writable.
    g.send_raw(&[
        Desc::write(SCRATCH + 0x1000, 8),
        Desc::read(SCRATCH, HDR_SIZE as u32),
    ]);
    // Too many descriptors (65 > 64).
    let many: Vec<Desc> = (0..65).map(|i| Desc::read(SCRATCH + i, 1)).collect();
    g.send_raw(&many);
    // A loop, a next index past the table, a head past the table.
    g.send_raw_desc(200, SCRATCH, 8, VRING_DESC_F_NEXT, 201);
    g.send_raw_desc(201, SCRATCH, 8, VRING_DESC_F_NEXT, 200);
    g.send_raw_desc(202, SCRATCH, 8, VRING_DESC_F_NEXT, 9999);
    g.send_raw_desc(203, SCRATCH, 8, 4 /* INDIRECT */, 0);
    let mut got = vec![g.recv(T).expect("RST for the split-header REQUEST")];
    got.extend(g.drain(Duration::from_millis(200)));
    // Only the split-header REQUEST got an answer (the loop at 200/201
    // published head 201 as well, whose walk also loops).
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].op(), got[0].hdr.dst_port), (Some(Op::Rst), 20));
    still_works(&mut g, 21);
}

#[test]
fn test_vsock_malformed_rx_buffers_are_returned_empty() {
    let mut g = TestGuest::with_opts(GuestOpts {
        rx_bufs: 0,
        ..Default::default()
    });
    // Bad rx buffers first: too small, read-only, outside RAM.
    let heads = [
        g.post_rx_raw(&[Desc::write(SCRATCH, 20)]),
        g.post_rx_raw(&[Desc::read(SCRATCH, 4096)]),
        g.post_rx_raw(&[Desc::write(0x2_0000_0000, 4096)]),
        g.post_rx_raw(&[Desc::write(SCRATCH, 4), Desc::write(SCRATCH + 8, 30)]),
    ];
    // Something for the guest: an RST.
    g.send(&g.hdr(Op::Rw, 30, 5000), b"x");
    // A good buffer chain: header in two descriptors at an odd split.
    let good = g.post_rx_raw(&[
        Desc::write(SCRATCH + 0x100, 13),
        Desc::write(SCRATCH + 0x200, 100),
    ]);
    let deadline = std::time::Instant::now() + T;
    while g.raw_rx_used().len() < 5 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            g.raw_rx_used()
        );
        g.pump();
        g.wait_irq(5);
    }
    let used = g.raw_rx_used().to_vec();
    for h in heads {
        assert!(used.contains(&(h, 0)), "{h} returned empty: {used:?}");
    }
    assert!(used.contains(&(good, HDR_SIZE as u32)), "{used:?}");
    let mut raw = [0u8; HDR_SIZE];
    g.mem
        .read_slice(&mut raw[..13], GuestAddress(SCRATCH + 0x100))
        .unwrap();
    g.mem
        .read_slice(&mut raw[13..], GuestAddress(SCRATCH + 0x200))
        .unwrap();
    let h = VsockHeader::from_bytes(&raw);
    assert_eq!((h.op(), h.dst_port), (Some(Op::Rst), 30));
}

#[test]
fn test_vsock_bogus_avail_index_does_not_panic() {
    let mut g = TestGuest::new();
    let tx = g.mem.clone();
    // The guest claims 1000 new tx entries in a 256-entry ring.
    let avail_idx_addr = GuestAddress(0x2_0000 + 16 * 256 + 2);
    tx.write_obj(1000u16, avail_idx_addr).unwrap();
    g.mmio.notify(1);
    assert!(g.drain(Duration::from_millis(200)).is_empty());
    // The tx queue is unusable until reset, but the device is alive: rx
    // and host clients still work.
    let s = super::util::host_connect(&g, 1024);
    let req = g.recv(T).expect("REQUEST still delivered");
    assert_eq!(req.op(), Some(Op::Request));
    drop(s.set_read_timeout(None));
}
