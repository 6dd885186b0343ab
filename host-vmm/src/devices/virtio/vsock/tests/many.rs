//! Many connections at once, in both directions.

use std::collections::HashMap;
use std::io::{Read, Write};

use super::conn::GuestConn;
use super::handshake::established_host_conn;
use super::util::{accept, listen, T};
use super::{pattern, TestGuest};
use crate::devices::virtio::vsock::packet::Op;

const CONNS: u32 = 64;
const BYTES: usize = 48 * 1024;

#[test]
fn test_vsock_64_concurrent_connections_both_directions() {
    let mut g = TestGuest::new();
    let mut conns: HashMap<u32, GuestConn> = HashMap::new();
    let mut hosts = Vec::new();
    // Half host-initiated (guest ports 2000..), half guest-initiated
    // (guest ports 30000.. to host ports 6000..).
    for i in 0..CONNS / 2 {
        let port = 2000 + i;
        let (s, hp) = established_host_conn(&mut g, port);
        let mut c = GuestConn::new(port, hp, 256 * 1024);
        c.peer_buf_alloc = 256 * 1024;
        conns.insert(port, c);
        hosts.push((port, s));
    }
    for i in 0..CONNS / 2 {
        let (port, hport) = (30000 + i, 6000 + i);
        let l = listen(&g, hport);
        let mut c = GuestConn::new(port, hport, 256 * 1024);
        let h = c.hdr(&g, Op::Request);
        g.send(&h, &[]);
        let resp = g.recv_for(port, T).expect("RESPONSE");
        assert_eq!(resp.op(), Some(Op::Response));
        c.note(&resp);
        conns.insert(port, c);
        hosts.push((port, accept(&l)));
    }
    assert_eq!(conns.len(), CONNS as usize);
    // Every host stream writes its pattern and reads the guest's, at once.
    let threads: Vec<_> = hosts
        .into_iter()
        .map(|(port, mut s)| {
            std::thread::spawn(move || {
                s.write_all(&pattern(u64::from(port), 0, BYTES)).unwrap();
                let mut got = vec![0u8; BYTES];
                s.read_exact(&mut got).unwrap();
                assert!(got == pattern(u64::from(port) + 1, 0, BYTES), "port {port}");
            })
        })
        .collect();
    // The guest sends on every connection, interleaved...
    for chunk in 0..BYTES / 4096 {
        for (&port, c) in conns.iter_mut() {
            let data = pattern(u64::from(port) + 1, (chunk * 4096) as u64, 4096);
            let mut h = c.hdr(&g, Op::Rw);
            h.len = 4096;
            assert!(c.credit() >= 4096);
            g.send(&h, &data);
            c.tx_cnt += 4096;
        }
    }
    // ...and receives every stream, checking each byte.
    let mut got: HashMap<u32, Vec<u8>> = HashMap::new();
    while got.values().map(Vec::len).sum::<usize>() < BYTES * CONNS as usize {
        let p = g.recv(T).expect("more data");
        let port = p.hdr.dst_port;
        let c = conns.get_mut(&port).expect("known connection");
        c.note(&p);
        if p.op() == Some(Op::Rw) {
            let buf = got.entry(port).or_default();
            buf.extend_from_slice(&p.data);
            assert!(buf.len() <= BYTES);
            c.consumed(&mut g, p.data.len());
        }
    }
    for (port, data) in &got {
        assert!(*data == pattern(u64::from(*port), 0, BYTES), "port {port}");
    }
    for t in threads {
        t.join().unwrap();
    }
}

#[test]
fn test_vsock_connection_limit_refuses_extra() {
    use crate::devices::virtio::vsock::VsockLimits;
    let mut g = TestGuest::with_limits(VsockLimits {
        max_connections: 4,
        ..Default::default()
    });
    let l = listen(&g, 5000);
    for i in 0..4 {
        g.send(&g.hdr(Op::Request, 100 + i, 5000), &[]);
        assert_eq!(g.recv_for(100 + i, T).unwrap().op(), Some(Op::Response));
    }
    g.send(&g.hdr(Op::Request, 200, 5000), &[]);
    assert_eq!(g.recv_for(200, T).unwrap().op(), Some(Op::Rst));
    // One closes: room again.
    g.send(&g.hdr(Op::Rst, 100, 5000), &[]);
    g.send(&g.hdr(Op::Request, 201, 5000), &[]);
    assert_eq!(g.recv_for(201, T).unwrap().op(), Some(Op::Response));
    drop(l);
}
