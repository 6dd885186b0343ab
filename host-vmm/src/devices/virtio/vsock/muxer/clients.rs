//! Host clients of the device's Unix socket: accepted, read up to their
//! `CONNECT <port>\n` line (one byte at a time, so nothing after it is
//! consumed before the guest accepts), then turned into host-initiated
//! connections.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::Instant;

use vmm_sys_util::epoll::ControlOperation;

use super::{ctl, Muxer, Target, ACCEPT_BATCH, FIRST_LOCAL_PORT};
use crate::devices::virtio::vsock::connection::Connection;
use crate::devices::virtio::vsock::unix::{parse_connect_line, MAX_CONNECT_LINE};

/// A host client that has not finished its `CONNECT <port>\n` line.
#[derive(Debug)]
pub(super) struct PendingClient {
    pub(super) stream: UnixStream,
    line: Vec<u8>,
    pub(super) deadline: Instant,
}

impl Muxer {
    pub(super) fn accept_clients(&mut self) {
        for _ in 0..ACCEPT_BATCH {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "vsock: accept on the host socket failed");
                    return;
                }
            };
            if self.pending.len() >= self.limits.max_pending_clients
                || self.conns.len() >= self.limits.max_connections
            {
                tracing::warn!(
                    pending = self.pending.len(),
                    connections = self.conns.len(),
                    "vsock: too many host connections: client refused"
                );
                continue;
            }
            if let Err(e) = stream.set_nonblocking(true) {
                tracing::warn!(error = %e, "vsock: cannot make a host client non-blocking");
                continue;
            }
            let token = self.alloc_token(Target::Pending);
            let fd = stream.as_raw_fd();
            if let Err(e) = ctl(
                &self.epoll,
                ControlOperation::Add,
                fd,
                libc::EPOLLIN as u32,
                token,
            ) {
                tracing::warn!(error = %e, "vsock: cannot watch a host client");
                self.targets.remove(&token);
                continue;
            }
            let deadline = Instant::now() + self.limits.connect_timeout;
            self.pending.insert(
                token,
                PendingClient {
                    stream,
                    line: Vec::new(),
                    deadline,
                },
            );
        }
    }

    pub(super) fn drop_pending(&mut self, token: u64) {
        if let Some(p) = self.pending.remove(&token) {
            let _ = ctl(
                &self.epoll,
                ControlOperation::Delete,
                p.stream.as_raw_fd(),
                0,
                token,
            );
        }
        self.targets.remove(&token);
    }

    /// Read the `CONNECT` line one byte at a time, so nothing after the
    /// newline is consumed before the guest accepts.
    pub(super) fn pending_readable(&mut self, token: u64) {
        let Some(p) = self.pending.get_mut(&token) else {
            return;
        };
        let mut byte = [0u8; 1];
        let done = loop {
            match (&p.stream).read(&mut byte) {
                Ok(0) => break None,
                Ok(_) => {
                    p.line.push(byte[0]);
                    if byte[0] == b'\n' {
                        break Some(parse_connect_line(&p.line));
                    }
                    if p.line.len() >= MAX_CONNECT_LINE {
                        break Some(None);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break None,
            }
        };
        match done {
            Some(Some(port)) => self.host_connect(token, port),
            Some(None) => {
                tracing::warn!(line = ?String::from_utf8_lossy(&p.line), "vsock: bad CONNECT line from a host client");
                self.drop_pending(token);
            }
            None => self.drop_pending(token),
        }
    }

    /// A free host port for a connection to guest port `peer_port`.
    fn alloc_local_port(&mut self, peer_port: u32) -> Option<u32> {
        for _ in 0..=self.limits.max_connections {
            let p = self.next_local_port;
            self.next_local_port = p.checked_add(1).unwrap_or(FIRST_LOCAL_PORT);
            if !self.conns.contains_key(&(p, peer_port)) {
                return Some(p);
            }
        }
        None
    }

    /// A host client asked for guest port `peer_port`: send the REQUEST.
    fn host_connect(&mut self, token: u64, peer_port: u32) {
        if self.conns.len() >= self.limits.max_connections {
            tracing::warn!(
                peer_port,
                "vsock: too many connections: host client refused"
            );
            self.drop_pending(token);
            return;
        }
        let Some(local_port) = self.alloc_local_port(peer_port) else {
            self.drop_pending(token);
            return;
        };
        let Some(p) = self.pending.remove(&token) else {
            return;
        };
        let key = (local_port, peer_port);
        let deadline = Instant::now() + self.limits.connect_timeout;
        let mut conn = Connection::host_initiated(
            self.guest_cid,
            local_port,
            peer_port,
            p.stream,
            self.limits.buf_alloc,
            deadline,
        );
        conn.interest = Some(libc::EPOLLIN as u32);
        self.targets.insert(token, Target::Conn(key));
        self.conn_tokens.insert(key, token);
        self.conns.insert(key, conn);
        tracing::debug!(local_port, peer_port, "vsock: host connects to the guest");
        self.sync(key);
    }
}
