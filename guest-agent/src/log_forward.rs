//! The agent's log lines also go to the host, over vsock to host CID 2 port
//! [`LOG_VSOCK_PORT`] (the hybrid vsock device hands that to `<uds>_1025` on the host, where
//! host-vmm appends the lines to `<runtime dir>/agent.log`).
//!
//! One connection, made once: [`start_vsock`] dials the host right after the mounts, on pid
//! 1's own thread, before the agent serves anything and so before any container exists. The
//! host accepts exactly one connection on that port, the first, and then closes it to
//! everyone (host-vmm's `agent::log_sink`): so a container cannot write forged lines into
//! `agent.log`, and the agent never redials either (a later dial would be refused). If the
//! first dial fails, or the connection breaks, lines go to the console only.
//!
//! The console stays the primary output: [`forward`] only offers a copy. It never blocks and
//! never grows memory: a copy goes into a bounded queue ([`QUEUE_LINES`] lines of at most
//! [`MAX_LINE_BYTES`]); when the queue is full the line is dropped and counted. One thread
//! (`log-forward`) writes queued lines; after drops it first writes a line saying how many
//! were lost.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, OnceLock};
use std::thread;

use nix::sys::socket::{self, AddressFamily, SockFlag, SockType, VsockAddr};

/// The host's vsock port for agent log lines.
pub const LOG_VSOCK_PORT: u32 = protocol::LOG_VSOCK_PORT;
/// The host's vsock CID.
pub const HOST_CID: u32 = 2;
/// Lines waiting for the host, at most.
pub const QUEUE_LINES: usize = 256;
/// Longer lines are cut here (at a character boundary).
pub const MAX_LINE_BYTES: usize = 4096;

/// Handle to a running forwarding thread. Dropping every handle ends the thread once the
/// queue is written.
pub struct Forwarder {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl Forwarder {
    /// Starts the `log-forward` thread with a queue of `capacity` lines, writing to `out`
    /// (an open connection to the host) until a write fails.
    pub fn start(capacity: usize, out: Box<dyn Write + Send>) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(capacity);
        let dropped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&dropped);
        thread::Builder::new()
            .name("log-forward".into())
            .spawn(move || run(rx, out, &counter))?;
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

    /// Lines dropped so far (queue full, or the connection gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

static FORWARDER: OnceLock<Forwarder> = OnceLock::new();

/// Dials the host's log port once and starts forwarding the process's log lines there (once
/// per process). An error means no forwarding: the host does not listen (or refused us).
pub fn start_vsock() -> io::Result<()> {
    if FORWARDER.get().is_some() {
        return Ok(());
    }
    let out = connect_vsock(HOST_CID, LOG_VSOCK_PORT)?;
    let forwarder = Forwarder::start(QUEUE_LINES, Box::new(out))?;
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

/// The thread: write lines until the queue's senders are gone or a write fails. Never
/// redials (see the module doc).
fn run(rx: Receiver<String>, mut out: Box<dyn Write + Send>, dropped: &AtomicU64) {
    let mut reported = 0;
    for line in rx {
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
        if write_line(out.as_mut(), &line).is_err() {
            break;
        }
    }
    // Dropping `rx` here makes every later `send` count as dropped.
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read};
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    #[test]
    fn test_truncate_at_char_boundary() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }

    #[test]
    fn test_lines_arrive_in_order() {
        let (ours, host) = UnixStream::pair().unwrap();
        let f = Forwarder::start(QUEUE_LINES, Box::new(ours)).unwrap();
        for line in ["one", "two", "three"] {
            f.send(line);
        }
        drop(f);
        let lines: Vec<String> = BufReader::new(host).lines().map_while(Result::ok).collect();
        assert_eq!(lines, ["one", "two", "three"]);
    }

    #[test]
    fn test_a_slow_host_never_blocks_and_drops_are_counted_and_reported() {
        let (ours, host) = UnixStream::pair().unwrap();
        let f = Forwarder::start(8, Box::new(ours)).unwrap();
        let started = Instant::now();
        // The host reads nothing for now: the socket buffer, then the queue, fill up.
        for i in 0..10_000 {
            f.send(&format!("line {i} {}", "x".repeat(100)));
        }
        assert!(started.elapsed() < Duration::from_secs(2), "send blocked");
        let dropped = f.dropped();
        assert!(dropped > 0, "nothing dropped");
        drop(f);
        let got: Vec<String> = BufReader::new(host).lines().map_while(Result::ok).collect();
        let notes: Vec<&String> = got.iter().filter(|l| l.contains("dropped")).collect();
        let lines = got.len() - notes.len();
        assert_eq!(
            lines as u64 + dropped,
            10_000,
            "{} lines, {dropped} dropped",
            got.len()
        );
        // Each note says how many were lost since the previous one: together, at most all.
        let reported: u64 = notes
            .iter()
            .map(|n| {
                n.strip_prefix("guest-agent: warn log forwarding dropped ")
                    .and_then(|rest| rest.strip_suffix(" lines (queue full)"))
                    .and_then(|count| count.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("odd note {n:?}"))
            })
            .sum();
        assert!(
            reported > 0 && reported <= dropped,
            "{reported} of {dropped}"
        );
        // The oldest line is kept (a note on drops may come before it).
        let first = got.iter().find(|l| !l.contains("dropped")).unwrap();
        assert!(first.starts_with("line 0 "), "{first:?}");
    }

    #[test]
    fn test_a_broken_connection_is_not_redialed_and_later_lines_are_dropped() {
        let (ours, host) = UnixStream::pair().unwrap();
        let f = Forwarder::start(4, Box::new(ours)).unwrap();
        drop(host);
        // Writes now fail: the thread ends, and every later line counts as dropped.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut sent = 0u64;
        while f.dropped() < 100 {
            assert!(Instant::now() < deadline, "the thread kept going");
            f.send("after the host left");
            sent += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(sent >= 100);
    }

    #[test]
    fn test_long_lines_are_cut() {
        let (ours, mut host) = UnixStream::pair().unwrap();
        let f = Forwarder::start(4, Box::new(ours)).unwrap();
        f.send(&"y".repeat(MAX_LINE_BYTES * 3));
        drop(f);
        let mut text = String::new();
        host.read_to_string(&mut text).unwrap();
        assert_eq!(text.len(), MAX_LINE_BYTES + 1);
    }
}
