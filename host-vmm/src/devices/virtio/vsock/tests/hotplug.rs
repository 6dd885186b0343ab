//! RAM hot-added while the device runs: buffers in it are used (the
//! device reads guest memory through the shared, swapped map, not a copy
//! of the boot map), buffers outside every region are still refused.

use std::time::{Duration, Instant};

use vm_memory::{Bytes, GuestAddress};

use super::guest::GuestOpts;
use super::util::{accept, listen, T};
use super::TestGuest;
use crate::devices::virtio::testutil::Desc;
use crate::devices::virtio::vsock::packet::{Op, VsockHeader, HDR_SIZE};

/// Where the hot-added DIMM goes: above the boot RAM, at 4 GiB.
const HOT: u64 = 4 << 30;
const HOT_SIZE: usize = 1 << 20;

/// Pump until `n` raw rx buffers came back or `wait` passes.
fn wait_raw_rx(g: &mut TestGuest, n: usize, wait: Duration) {
    let deadline = Instant::now() + wait;
    while g.raw_rx_used().len() < n && Instant::now() < deadline {
        g.pump();
        g.wait_irq(5);
    }
}

#[test]
fn test_vsock_uses_buffers_in_hot_added_ram() {
    let mut g = TestGuest::with_opts(GuestOpts {
        rx_bufs: 0,
        ..Default::default()
    });
    let hdr_len = HDR_SIZE as u32;
    let l = listen(&g, 6000);

    // Before the hot-add, 4 GiB is not guest RAM: the packet is dropped.
    g.send_raw(&[Desc::read(HOT, hdr_len)]);
    g.wait_tx_done();

    g.add_ram(HOT, HOT_SIZE);
    // Rx buffer and tx packet both in the new region.
    let rx_buf = HOT + 0x1000;
    let rx_head = g.post_rx_raw(&[Desc::write(rx_buf, hdr_len + 256)]);
    let req = g.hdr(Op::Request, 41, 6000);
    g.mem
        .write_slice(&req.to_bytes(), GuestAddress(HOT))
        .unwrap();
    g.send_raw(&[Desc::read(HOT, hdr_len)]);
    wait_raw_rx(&mut g, 1, T);
    assert_eq!(g.raw_rx_used(), &[(rx_head, hdr_len)]);
    let mut raw = [0u8; HDR_SIZE];
    g.mem.read_slice(&mut raw, GuestAddress(rx_buf)).unwrap();
    let resp = VsockHeader::from_bytes(&raw);
    assert_eq!(
        (resp.op(), resp.src_port, resp.dst_port),
        (Some(Op::Response), 6000, 41)
    );
    let _host = accept(&l);

    // Still refused: past the new region, straddling its end, in the gap
    // between the boot RAM and the new region. None gets an answer.
    g.post_rx_raw(&[Desc::write(rx_buf + 0x1000, hdr_len + 256)]);
    for addr in [
        HOT + HOT_SIZE as u64,
        HOT + HOT_SIZE as u64 - 10,
        HOT - 0x1000,
        0x2_0000_0000,
    ] {
        g.send_raw(&[Desc::read(addr, hdr_len)]);
    }
    wait_raw_rx(&mut g, 2, Duration::from_millis(200));
    assert_eq!(g.raw_rx_used().len(), 1, "{:?}", g.raw_rx_used());
}
