//! The agent's log lines also go to the host, over vsock to host CID 2 port
//! [`LOG_VSOCK_PORT`] (the hybrid vsock device hands that to `<uds>_1025` on the host, where
//! host-vmm appends the lines to `<runtime dir>/agent.log`).
//!
//! The console stays the primary output: [`forward`] only offers a copy. It never blocks and
//! never grows memory: a copy goes into a bounded queue ([`QUEUE_LINES`] lines of at most
//! [`MAX_LINE_BYTES`]); when the queue is full the line is dropped and counted. One thread
//! (`log-forward`) dials the host, with backoff while nobody listens, and writes queued lines;
//! after drops it first writes a line saying how many were lost. Lines logged before the host
//! listens wait in the queue, so early boot lines arrive once it connects.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, VsockAddr};

/// The host's vsock port for agent log lines.
pub const LOG_VSOCK_PORT: u32 = protocol::LOG_VSOCK_PORT;
/// The host's vsock CID.
pub const HOST_CID: u32 = 2;
/// Lines waiting for the host, at most.
pub const QUEUE_LINES: usize = 256;
/// Longer lines are cut here (at a character boundary).
pub const MAX_LINE_BYTES: usize = 4096;

const MIN_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Opens a fresh connection to the host's log sink.
pub type Connect = dyn FnMut() -> io::Result<Box<dyn Write + Send>> + Send;

/// Handle to a running forwarding thread. Dropping every handle ends the thread once the
/// queue is written.
pub struct Forwarder {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl Forwarder {
    /// Starts the `log-forward` thread with a queue of `capacity` lines, dialing with `connect`.
    pub fn start(capacity: usize, connect: Box<Connect>) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        thread::Builder::new()
            .name("log-forward".into())
            .spawn(move || run(rx, connect, &counter))?;
        Ok(Self { tx, dropped })
    }

    /// Offers a copy of `line` (no newline) to the host. Never blocks.
    pub fn send(&self, line: &str) {
        match self.tx.try_send(truncate(line, MAX_LINE_BYTES).to_string()) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

/// Starts forwarding the process's log lines to the host over vsock (once per process).
pub fn start_vsock() -> io::Result<()> {
    if FORWARDER.get().is_some() {
        return Ok(());
    }
    let connect = || -> io::Result<Box<dyn Write + Send>> {
        Ok(Box::new(connect_vsock(HOST_CID, LOG_VSOCK_PORT)?))
    };
    let forwarder = Forwarder::start(QUEUE_LINES, Box::new(connect))?;
    // A racing second start loses; its thread ends when its handle drops here.
    let _ = FORWARDER.set(forwarder);
    Ok(())
}

/// Offers `line` to the process's forwarder, if one runs. Never blocks.
pub fn forward(line: &str) {
    if let Some(f) = FORWARDER.get() {
        f.send(line);
    }
}

/// A stream connection to `cid:port` over vsock.
pub fn connect_vsock(cid: u32, port: u32) -> io::Result<File> {
    let fd = socket::socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    socket::connect(fd.as_raw_fd(), &VsockAddr::new(cid, port))?;
    Ok(File::from(fd))
}

/// `line` cut to at most `max` bytes at a character boundary.
fn truncate(line: &str, max: usize) -> &str {
    if line.len() <= max {
        return line;
    }
    let mut end = max;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

fn write_line(out: &mut dyn Write, line: &str) -> io::Result<()> {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    out.write_all(&buf)
}

/// The thread: dial (with backoff), then write lines until the connection fails.
fn run(rx: Receiver<String>, mut connect: Box<Connect>, dropped: &AtomicU64) {
    let mut backoff = MIN_BACKOFF;
    // A line taken from the queue but not yet written.
    let mut pending: Option<String> = None;
    let mut reported = 0;
    let mut was_connected = false;
    loop {
        // Dial only with something to say.
        if pending.is_none() {
            match rx.recv() {
                Ok(line) => pending = Some(line),
                Err(_) => return,
            }
        }
        let mut out = match connect() {
            Ok(out) => out,
            Err(e) => {
                if was_connected {
                    tracing::debug!("log forwarding: host gone ({e}); retrying");
                    was_connected = false;
                }
                thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        was_connected = true;
        loop {
            let total = dropped.load(Ordering::Relaxed);
            if total > reported {
                let note = format!(
                    "guest-agent: warn log forwarding dropped {} lines (queue full)",
                    total - reported
                );
                if write_line(out.as_mut(), &note).is_err() {
                    break;
                }
                reported = total;
            }
            let line = match pending.take() {
                Some(line) => line,
                None => match rx.recv() {
                    Ok(line) => line,
                    Err(_) => return,
                },
            };
            if write_line(out.as_mut(), &line).is_err() {
                pending = Some(line);
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;
    use std::time::Instant;

    fn temp_sock(name: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!("ga-logfw-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    fn unix_connect(path: PathBuf) -> Box<Connect> {
        Box::new(move || -> io::Result<Box<dyn Write + Send>> {
            Ok(Box::new(UnixStream::connect(&path)?))
        })
    }

    #[test]
    fn test_truncate_at_char_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn test_lines_reach_a_late_listener_in_order() {
        let path = temp_sock("late");
        let f = Forwarder::start(QUEUE_LINES, unix_connect(path.clone())).unwrap();
        // Logged before anybody listens: they wait in the queue.
        f.send("one");
        f.send("two");
        thread::sleep(Duration::from_millis(120));
        let listener = UnixListener::bind(&path).unwrap();
        f.send("three");
        let (conn, _) = listener.accept().unwrap();
        let mut lines = BufReader::new(conn).lines();
        for want in ["one", "two", "three"] {
            assert_eq!(lines.next().unwrap().unwrap(), want);
        }
        assert_eq!(f.dropped(), 0);
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn test_nobody_listening_never_blocks_and_counts_drops() {
        let path = temp_sock("nobody");
        let f = Forwarder::start(8, unix_connect(path.clone())).unwrap();
        let started = Instant::now();
        for i in 0..10_000 {
            f.send(&format!("line {i} {}", "x".repeat(100)));
        }
        assert!(started.elapsed() < Duration::from_secs(2), "send blocked");
        // 8 queued, at most 1 held by the thread: the rest dropped.
        let kept = 10_000 - usize::try_from(f.dropped()).unwrap();
        assert!((8..=9).contains(&kept), "kept {kept}");

        // Once the host listens, it first gets a note on the drops, then the kept lines
        // (the oldest first).
        let listener = UnixListener::bind(&path).unwrap();
        let (conn, _) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let got: Vec<String> = BufReader::new(conn)
            .lines()
            .take(kept + 1)
            .map_while(Result::ok)
            .collect();
        assert_eq!(got.len(), kept + 1, "{got:?}");
        assert_eq!(
            got[0],
            format!(
                "guest-agent: warn log forwarding dropped {} lines (queue full)",
                f.dropped()
            )
        );
        assert!(got[1].starts_with("line 0 "), "{got:?}");
        assert!(got[2..].iter().all(|l| l.starts_with("line ")), "{got:?}");
        let _ = std::fs::remove_file(&path);
    }

    #[test]
    fn test_long_lines_are_cut() {
        let path = temp_sock("long");
        let listener = UnixListener::bind(&path).unwrap();
        let f = Forwarder::start(4, unix_connect(path.clone())).unwrap();
        f.send(&"y".repeat(MAX_LINE_BYTES * 3));
        let (conn, _) = listener.accept().unwrap();
        let line = BufReader::new(conn).lines().next().unwrap().unwrap();
        assert_eq!(line.len(), MAX_LINE_BYTES);
        let _ = std::fs::remove_file(&path);
    }
}
