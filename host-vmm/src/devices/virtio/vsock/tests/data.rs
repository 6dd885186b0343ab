//! Bulk transfers with checksums, credit exhaustion and recovery.

use std::io::{Read, Write};
use std::time::Duration;

use super::conn::GuestConn;
use super::guest::GuestOpts;
use super::handshake::established_host_conn;
use super::util::{accept, listen, T};
use super::{pattern, Fnv, TestGuest};
use crate::devices::virtio::vsock::packet::{Op, MAX_PKT_PAYLOAD};
use crate::devices::virtio::vsock::VsockLimits;

const MIB16: usize = 16 << 20;

/// Host writes 16 MiB to the guest; the guest consumes it, sending credit
/// updates like Linux, and checks every byte and the checksum.
fn host_to_guest_16mib(opts: GuestOpts) {
    let mut g = TestGuest::with_opts(opts);
    let (host, hp) = established_host_conn(&mut g, 1024);
    let mut conn = GuestConn::new(1024, hp, 256 * 1024);
    let writer = std::thread::spawn(move || {
        let mut host = host;
        let mut sum = Fnv::default();
        let mut off = 0;
        while off < MIB16 {
            let chunk = pattern(7, off as u64, 100_000.min(MIB16 - off));
            sum.update(&chunk);
            host.write_all(&chunk).unwrap();
            off += chunk.len();
        }
        sum
    });
    let mut got = 0usize;
    let mut sum = Fnv::default();
    while got < MIB16 {
        let p = g.recv_for(1024, T).expect("data keeps coming");
        conn.note(&p);
        if p.op() != Some(Op::Rw) {
            continue;
        }
        let in_flight = conn.fwd_cnt.wrapping_add(p.data.len() as u32);
        assert!(
            p.hdr.len as usize <= MAX_PKT_PAYLOAD
                && in_flight.wrapping_sub(conn.fwd_cnt) <= conn.buf_alloc,
            "device exceeded the guest's credit"
        );
        assert_eq!(p.data, pattern(7, got as u64, p.data.len()), "at {got}");
        sum.update(&p.data);
        got += p.data.len();
        conn.consumed(&mut g, p.data.len());
    }
    assert_eq!(got, MIB16);
    assert_eq!(sum, writer.join().unwrap());
}

#[test]
fn test_vsock_16mib_host_to_guest_checksum() {
    host_to_guest_16mib(GuestOpts::default());
}

#[test]
fn test_vsock_16mib_host_to_guest_split_rx_buffers() {
    host_to_guest_16mib(GuestOpts {
        rx_split: true,
        rx_payload: 64 * 1024,
        ..Default::default()
    });
}

#[test]
fn test_vsock_16mib_guest_to_host_checksum() {
    let mut g = TestGuest::new();
    let l = listen(&g, 5000);
    let mut conn = GuestConn::new(40000, 5000, 256 * 1024);
    let h = conn.hdr(&g, Op::Request);
    g.send(&h, &[]);
    let resp = g.recv_for(40000, T).expect("RESPONSE");
    assert_eq!(resp.op(), Some(Op::Response));
    conn.note(&resp);
    let host = accept(&l);
    let reader = std::thread::spawn(move || {
        let mut host = host;
        let mut sum = Fnv::default();
        let mut buf = vec![0u8; 100_000];
        let mut off = 0usize;
        while off < MIB16 {
            let n = host.read(&mut buf).unwrap();
            assert!(n > 0, "early EOF at {off}");
            assert_eq!(buf[..n], pattern(9, off as u64, n)[..], "at {off}");
            sum.update(&buf[..n]);
            off += n;
        }
        sum
    });
    let mut sum = Fnv::default();
    for (i, off) in (0..MIB16).step_by(1 << 20).enumerate() {
        let chunk = pattern(9, off as u64, 1 << 20);
        sum.update(&chunk);
        conn.send_all(&mut g, &chunk, i % 2 == 1);
    }
    assert_eq!(reader.join().unwrap(), sum);
}

#[test]
fn test_vsock_guest_to_host_credit_exhaustion_and_recovery() {
    let buf_alloc = 64 * 1024;
    let mut g = TestGuest::with_limits(VsockLimits {
        buf_alloc,
        ..Default::default()
    });
    let (mut host, hp) = established_host_conn(&mut g, 1024);
    let mut conn = GuestConn::new(1024, hp, 256 * 1024);
    conn.peer_buf_alloc = buf_alloc; // from the REQUEST
                                     // The host reader is paused: send until the device stops granting
                                     // credit (its buffer plus the socket buffer are full).
    let total = 4 << 20;
    let data = pattern(3, 0, total);
    let mut sent = 0usize;
    loop {
        while conn.credit() > 0 && sent < total {
            let n = (conn.credit() as usize)
                .min(MAX_PKT_PAYLOAD)
                .min(total - sent);
            let mut h = conn.hdr(&g, Op::Rw);
            h.len = n as u32;
            g.send_split(&h, &data[sent..sent + n], false);
            conn.tx_cnt = conn.tx_cnt.wrapping_add(n as u32);
            sent += n;
        }
        match g.recv_for(1024, Duration::from_millis(300)) {
            Some(p) => conn.note(&p),
            None => break, // no more credit: stalled
        }
    }
    assert!(
        sent < total,
        "a paused reader must stall the guest ({sent} sent)"
    );
    assert_eq!(conn.credit(), 0);
    // The device never holds more than buf_alloc unforwarded bytes.
    let held = conn.tx_cnt.wrapping_sub(conn.peer_fwd_cnt);
    assert!(held <= buf_alloc, "held {held}");
    // The reader resumes: credit comes back and everything arrives.
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; total];
        host.read_exact(&mut got).unwrap();
        got
    });
    while sent < total {
        if conn.credit() == 0 {
            let p = g
                .recv_for(1024, T)
                .expect("CREDIT_UPDATE after the reader resumed");
            assert_eq!(p.op(), Some(Op::CreditUpdate));
            conn.note(&p);
            continue;
        }
        let n = (conn.credit() as usize)
            .min(MAX_PKT_PAYLOAD)
            .min(total - sent);
        let mut h = conn.hdr(&g, Op::Rw);
        h.len = n as u32;
        g.send_split(&h, &data[sent..sent + n], true);
        conn.tx_cnt = conn.tx_cnt.wrapping_add(n as u32);
        sent += n;
    }
    let got = reader.join().unwrap();
    assert!(got == data, "data lost or reordered");
}

#[test]
fn test_vsock_host_to_guest_respects_guest_credit() {
    let mut g = TestGuest::new();
    let l = listen(&g, 5000);
    let guest_buf = 16 * 1024u32;
    let mut conn = GuestConn::new(40000, 5000, guest_buf);
    let h = conn.hdr(&g, Op::Request);
    g.send(&h, &[]);
    conn.note(&g.recv_for(40000, T).expect("RESPONSE"));
    let host = accept(&l);
    let total = 128 * 1024;
    let writer = std::thread::spawn(move || {
        let mut host = host;
        host.write_all(&pattern(5, 0, total)).unwrap();
        host
    });
    let mut got = Vec::new();
    while got.len() < total {
        // Receive our whole window; then the device must stop and ask
        // for credit, and send nothing more until it gets some.
        let window_end = (conn.fwd_cnt as usize + guest_buf as usize).min(total);
        let mut saw_credit_request = false;
        // Returns whether `p` is a CREDIT_REQUEST.
        let handle = |p: super::Pkt, got: &mut Vec<u8>, conn: &mut GuestConn| {
            conn.note(&p);
            let credit_request = match p.op() {
                Some(Op::Rw) => {
                    got.extend_from_slice(&p.data);
                    false
                }
                Some(Op::CreditRequest) => true,
                other => panic!("unexpected {other:?}"),
            };
            assert!(got.len() <= window_end, "device overran the guest's buffer");
            credit_request
        };
        while got.len() < window_end {
            let p = g.recv_for(40000, T).expect("data within the window");
            saw_credit_request |= handle(p, &mut got, &mut conn);
        }
        if got.len() < total {
            while !saw_credit_request {
                let p = g
                    .recv_for(40000, T)
                    .expect("CREDIT_REQUEST when out of credit");
                saw_credit_request |= handle(p, &mut got, &mut conn);
            }
            // Quiet: no data beyond the window.
            while let Some(p) = g.recv_for(40000, Duration::from_millis(100)) {
                assert!(!handle(p, &mut got, &mut conn), "one CREDIT_REQUEST");
            }
        }
        // Consume everything and say so.
        conn.fwd_cnt = got.len() as u32;
        let h = conn.hdr(&g, Op::CreditUpdate);
        g.send(&h, &[]);
    }
    assert!(got == pattern(5, 0, total));
    drop(writer.join().unwrap());
}

#[test]
fn test_vsock_guest_exceeding_credit_is_reset() {
    let buf_alloc = 8 * 1024;
    let mut g = TestGuest::with_limits(VsockLimits {
        buf_alloc,
        ..Default::default()
    });
    // The host never reads.
    let (_host, hp) = established_host_conn(&mut g, 1024);
    // Fill the host socket so nothing more can be forwarded, then
    // overrun the advertised buffer.
    let big = vec![0u8; MAX_PKT_PAYLOAD];
    let mut rst = None;
    for _ in 0..200 {
        g.send(&g.hdr(Op::Rw, 1024, hp), &big[..buf_alloc as usize]);
        if let Some(p) = g.recv_where(Duration::from_millis(10), |p| p.op() == Some(Op::Rst)) {
            rst = Some(p);
            break;
        }
    }
    let rst = rst.expect("credit overrun resets the connection");
    assert_eq!((rst.hdr.src_port, rst.hdr.dst_port), (hp, 1024));
}
