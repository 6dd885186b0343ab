//! A fake hybrid vsock front for tests: what the vsock device does for a host client, with a
//! Unix socket standing in for the guest's vsock port. It reads `CONNECT <port>\n`, connects
//! to the "guest" socket (closing the client when nobody listens there, as the device does on
//! RST), answers with the configured reply and splices both ways.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

/// What the front answers once the "guest" accepted.
#[derive(Clone)]
pub enum Reply {
    /// `OK 1024\n`, then splice.
    Ok,
    /// These bytes, then hold the connection until the client leaves.
    Raw(Vec<u8>),
    /// Nothing: hold the connection until the client leaves.
    Silent,
}

pub struct Front {
    uds: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Front {
    pub fn start(uds: &Path, guest: &Path, reply: Reply) -> Self {
        let listener = UnixListener::bind(uds).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let guest = guest.to_path_buf();
        let thread = thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let guest = guest.clone();
                let reply = reply.clone();
                thread::spawn(move || serve(conn, &guest, reply));
            }
        });
        Self {
            uds: uds.to_path_buf(),
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Front {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = UnixStream::connect(&self.uds); // wake the accept
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.uds);
    }
}

fn read_connect_line(conn: &mut UnixStream) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    while line.len() < 32 {
        if conn.read(&mut byte)? == 0 {
            break;
        }
        line.push(byte[0]);
        if byte[0] == b'\n' {
            break;
        }
    }
    Ok(line)
}

fn hold_until_closed(mut conn: UnixStream) {
    let mut sink = [0u8; 64];
    while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

fn serve(mut conn: UnixStream, guest: &Path, reply: Reply) {
    match read_connect_line(&mut conn) {
        Ok(line) if line == b"CONNECT 1024\n" => {}
        _ => return,
    }
    // Nobody listening in the "guest": the device gets RST and closes the client.
    let Ok(upstream) = UnixStream::connect(guest) else {
        return;
    };
    match reply {
        Reply::Ok => {
            if conn.write_all(b"OK 1024\n").is_err() {
                return;
            }
            splice(conn, upstream);
        }
        Reply::Raw(bytes) => {
            let _ = conn.write_all(&bytes);
            hold_until_closed(conn);
        }
        Reply::Silent => hold_until_closed(conn),
    }
}

fn splice(client: UnixStream, upstream: UnixStream) {
    let (Ok(mut c2), Ok(mut u2)) = (client.try_clone(), upstream.try_clone()) else {
        return;
    };
    let (mut c1, mut u1) = (client, upstream);
    let up = thread::spawn(move || {
        let _ = io::copy(&mut c1, &mut u1);
        let _ = u1.shutdown(std::net::Shutdown::Write);
    });
    let _ = io::copy(&mut u2, &mut c2);
    let _ = c2.shutdown(std::net::Shutdown::Write);
    let _ = up.join();
}
