//! Host-side helpers for the device tests.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use super::TestGuest;
use crate::devices::virtio::vsock::unix::port_socket_path;

pub const T: Duration = Duration::from_secs(10);

/// A host client that has sent `CONNECT <port>`.
pub fn host_connect(g: &TestGuest, port: u32) -> UnixStream {
    let mut s = UnixStream::connect(&g.uds).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    writeln!(s, "CONNECT {port}").unwrap();
    s
}

/// Read one `\n`-terminated line (byte by byte, so nothing after it).
pub fn read_line(s: &mut UnixStream) -> std::io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if s.read(&mut b)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        line.push(b[0]);
        if b[0] == b'\n' {
            return Ok(String::from_utf8_lossy(&line).into_owned());
        }
    }
}

/// Whether the host stream reaches end of file (the device closed it)
/// within the read timeout.
pub fn sees_eof(s: &mut UnixStream) -> bool {
    let mut b = [0u8; 64];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// A host listener for guest connections to `port`.
pub fn listen(g: &TestGuest, port: u32) -> UnixListener {
    UnixListener::bind(port_socket_path(&g.uds, port)).unwrap()
}

/// Accept with a timeout.
pub fn accept(l: &UnixListener) -> UnixStream {
    l.set_nonblocking(true).unwrap();
    let deadline = std::time::Instant::now() + T;
    loop {
        match l.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(T)).unwrap();
                return s;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(std::time::Instant::now() < deadline, "no connection");
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}
