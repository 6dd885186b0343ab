//! Connection set-up and tear-down, both directions.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use super::util::{accept, host_connect, listen, read_line, sees_eof, T};
use super::TestGuest;
use crate::devices::virtio::vsock::packet::{Op, SHUTDOWN_BOTH, SHUTDOWN_SEND, TYPE_STREAM};
use crate::devices::virtio::vsock::VsockLimits;

/// Host client to guest port `port`, accepted by the test guest. Returns
/// the host stream and the host port.
pub fn established_host_conn(
    g: &mut TestGuest,
    port: u32,
) -> (std::os::unix::net::UnixStream, u32) {
    let mut host = host_connect(g, port);
    let req = g.recv_for(port, T).expect("REQUEST");
    assert_eq!(req.op(), Some(Op::Request));
    let hp = req.hdr.src_port;
    let resp = g.hdr(Op::Response, port, hp);
    g.send(&resp, &[]);
    assert_eq!(read_line(&mut host).unwrap(), format!("OK {hp}\n"));
    (host, hp)
}

#[test]
fn test_vsock_host_connect_ok_then_data_both_ways() {
    let mut g = TestGuest::new();
    let mut host = host_connect(&g, 1024);
    let req = g.recv(T).expect("REQUEST");
    assert_eq!(req.op(), Some(Op::Request));
    assert_eq!(req.hdr.dst_port, 1024);
    assert!(req.hdr.src_port >= 1 << 30, "ephemeral host port");
    assert_eq!(req.hdr.type_, TYPE_STREAM);
    assert_eq!(req.hdr.buf_alloc, VsockLimits::default().buf_alloc);
    let hp = req.hdr.src_port;
    g.send(&g.hdr(Op::Response, 1024, hp), &[]);
    assert_eq!(read_line(&mut host).unwrap(), format!("OK {hp}\n"));

    host.write_all(b"ping").unwrap();
    let p = g.recv_for(1024, T).expect("data");
    assert_eq!((p.op(), p.data.as_slice()), (Some(Op::Rw), &b"ping"[..]));
    assert_eq!(p.hdr.src_port, hp);
    g.send(&g.hdr(Op::Rw, 1024, hp), b"pong");
    let mut b = [0u8; 4];
    host.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"pong");
}

#[test]
fn test_vsock_host_connect_guest_rst_closes_client() {
    let mut g = TestGuest::new();
    let mut host = host_connect(&g, 1024);
    let req = g.recv(T).expect("REQUEST");
    g.send(&g.hdr(Op::Rst, 1024, req.hdr.src_port), &[]);
    assert!(sees_eof(&mut host));
}

#[test]
fn test_vsock_host_connect_guest_silent_times_out() {
    let mut g = TestGuest::with_limits(VsockLimits {
        connect_timeout: Duration::from_millis(200),
        ..Default::default()
    });
    let mut host = host_connect(&g, 1024);
    let req = g.recv(T).expect("REQUEST");
    assert!(sees_eof(&mut host));
    // The guest is told the attempt is over.
    let rst = g.recv(T).expect("RST");
    assert_eq!(rst.op(), Some(Op::Rst));
    assert_eq!(rst.hdr.src_port, req.hdr.src_port);
    // A late RESPONSE gets an RST, not a connection.
    g.send(&g.hdr(Op::Response, 1024, req.hdr.src_port), &[]);
    assert_eq!(g.recv(T).expect("RST").op(), Some(Op::Rst));
}

#[test]
fn test_vsock_host_bad_or_missing_connect_line_closes_client() {
    let mut g = TestGuest::with_limits(VsockLimits {
        connect_timeout: Duration::from_millis(200),
        ..Default::default()
    });
    for line in [
        &b"HELLO\n"[..],
        b"CONNECT x\n",
        b"CONNECT 99999999999\n",
        &[b'7'; 100],
    ] {
        let mut s = std::os::unix::net::UnixStream::connect(&g.uds).unwrap();
        s.set_read_timeout(Some(T)).unwrap();
        s.write_all(line).unwrap();
        assert!(sees_eof(&mut s), "{line:?}");
    }
    // Silent client: closed after the timeout.
    let mut s = std::os::unix::net::UnixStream::connect(&g.uds).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    assert!(sees_eof(&mut s));
    assert!(
        g.drain(Duration::from_millis(100)).is_empty(),
        "guest saw nothing"
    );
}

#[test]
fn test_vsock_guest_connects_to_host_listener() {
    let mut g = TestGuest::new();
    let l = listen(&g, 5000);
    g.send(&g.hdr(Op::Request, 40000, 5000), &[]);
    let resp = g.recv(T).expect("RESPONSE");
    assert_eq!(resp.op(), Some(Op::Response));
    assert_eq!((resp.hdr.src_port, resp.hdr.dst_port), (5000, 40000));
    let mut host = accept(&l);
    g.send(&g.hdr(Op::Rw, 40000, 5000), b"hello host");
    let mut b = [0u8; 10];
    host.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hello host");
    host.write_all(b"hello guest").unwrap();
    let p = g.recv_for(40000, T).unwrap();
    assert_eq!(p.data, b"hello guest");
}

#[test]
fn test_vsock_guest_connect_to_unknown_port_gets_rst() {
    let mut g = TestGuest::new();
    g.send(&g.hdr(Op::Request, 40001, 5001), &[]);
    let rst = g.recv(T).expect("RST");
    assert_eq!(rst.op(), Some(Op::Rst));
    assert_eq!((rst.hdr.src_port, rst.hdr.dst_port), (5001, 40001));
}

#[test]
fn test_vsock_host_half_close_then_guest_close() {
    let mut g = TestGuest::new();
    let (mut host, hp) = established_host_conn(&mut g, 1024);
    host.write_all(b"req").unwrap();
    host.shutdown(Shutdown::Write).unwrap();
    assert_eq!(g.recv_for(1024, T).unwrap().data, b"req");
    let sd = g.recv_for(1024, T).expect("SHUTDOWN");
    assert_eq!((sd.op(), sd.hdr.flags), (Some(Op::Shutdown), SHUTDOWN_SEND));
    // The host can still read the answer.
    g.send(&g.hdr(Op::Rw, 1024, hp), b"answer");
    let mut b = [0u8; 6];
    host.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"answer");
    // Guest closes: RST completes it, the host sees EOF.
    let mut sd = g.hdr(Op::Shutdown, 1024, hp);
    sd.flags = SHUTDOWN_BOTH;
    g.send(&sd, &[]);
    assert_eq!(g.recv_for(1024, T).unwrap().op(), Some(Op::Rst));
    assert!(sees_eof(&mut host));
}

#[test]
fn test_vsock_host_close_gives_guest_shutdown_then_rst() {
    let mut g = TestGuest::new();
    let l = listen(&g, 5000);
    g.send(&g.hdr(Op::Request, 40000, 5000), &[]);
    assert_eq!(g.recv(T).unwrap().op(), Some(Op::Response));
    let mut host = accept(&l);
    host.write_all(b"last words").unwrap();
    drop(host);
    assert_eq!(g.recv_for(40000, T).unwrap().data, b"last words");
    let sd = g.recv_for(40000, T).expect("SHUTDOWN");
    assert_eq!((sd.op(), sd.hdr.flags), (Some(Op::Shutdown), SHUTDOWN_SEND));
    assert_eq!(g.recv_for(40000, T).expect("RST").op(), Some(Op::Rst));
    // Gone: data for it is answered with RST.
    g.send(&g.hdr(Op::Rw, 40000, 5000), b"late");
    assert_eq!(g.recv_for(40000, T).unwrap().op(), Some(Op::Rst));
}

#[test]
fn test_vsock_guest_shutdown_send_half_closes_host_stream() {
    let mut g = TestGuest::new();
    let (mut host, hp) = established_host_conn(&mut g, 1024);
    g.send(&g.hdr(Op::Rw, 1024, hp), b"all of it");
    let mut sd = g.hdr(Op::Shutdown, 1024, hp);
    sd.flags = SHUTDOWN_SEND;
    g.send(&sd, &[]);
    let mut got = Vec::new();
    host.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"all of it");
    // The other direction still works.
    host.write_all(b"reply").unwrap();
    assert_eq!(g.recv_for(1024, T).unwrap().data, b"reply");
}
