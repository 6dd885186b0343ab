//! The host end of the agent's log forwarding: the guest connects to host vsock port 1025,
//! which the hybrid vsock device hands to the Unix listener at `<uds>_1025`
//! ([`log_socket_path`]). Lines are appended to a file (`<runtime dir>/agent.log`) and, with
//! `echo`, copied to stderr.
//!
//! The port serves exactly one connection, the first: the agent dials it right after its
//! mounts, before it serves anything and so before any container exists. Once that one is
//! accepted, the sink closes its listener and removes the socket file, so every later guest
//! connection to port 1025 (a container's, from any CID) is refused by the vsock device and
//! no forged line can reach `agent.log`. The agent never redials (`guest-agent`'s
//! `log_forward`): after that connection ends, its lines stay on the guest console.
//!
//! Everything read is guest-controlled: lines are cut at [`MAX_LINE`] bytes, control
//! characters are escaped (no terminal escapes reach stderr), and the file stops growing at
//! `max_file_bytes` (one note line says so). One thread (`agent-log`) serves the connection.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::devices::virtio::vsock::unix::port_socket_path;
use crate::seccomp::ThreadKind;
use crate::threads::join_within;

/// Longest line kept; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 8 << 10;
/// How long dropping the sink waits for its thread.
pub const LOG_SINK_JOIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(2);
/// Default cap on the log file's size.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 64 << 20;

/// Where the guest's log connections land for the hybrid vsock socket `uds`.
pub fn log_socket_path(uds: &Path) -> PathBuf {
    port_socket_path(uds, protocol::LOG_VSOCK_PORT)
}

#[derive(Debug, Clone)]
pub struct LogSinkOptions {
    /// Copy every line to stderr too.
    pub echo: bool,
    /// Stop appending once the file is this large.
    pub max_file_bytes: u64,
}

impl Default for LogSinkOptions {
    fn default() -> Self {
        Self {
            echo: false,
            max_file_bytes: DEFAULT_MAX_FILE_BYTES,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogSinkError {
    #[error("cannot listen on {}", path.display())]
    Listen {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot open {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the agent log thread")]
    Thread(#[source] io::Error),
}

/// A running log sink. Dropping it stops the thread and removes the listening socket.
pub struct LogSink {
    stop: UnixStream,
    thread: Option<JoinHandle<()>>,
    listen: PathBuf,
}

impl LogSink {
    /// Listens on `listen` (replacing a stale socket file) and writes lines to `file`, which
    /// must not exist yet: a file or symlink in its place is refused (`AlreadyExists`).
    pub fn start(listen: &Path, file: &Path, opts: LogSinkOptions) -> Result<Self, LogSinkError> {
        let listen_err = |source| LogSinkError::Listen {
            path: listen.to_path_buf(),
            source,
        };
        match std::fs::remove_file(listen) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(listen_err(e)),
            _ => {}
        }
        // 0600 before it listens.
        let listener = crate::os::socket::bind_private(listen).map_err(listen_err)?;
        // A new file, never through a symlink (O_EXCL | O_NOFOLLOW, 0600).
        let out =
            crate::os::file::create_new_private(file).map_err(|source| LogSinkError::Open {
                path: file.to_path_buf(),
                source,
            })?;
        let written = out.metadata().map(|m| m.len()).unwrap_or(0);
        let (stop, stop_rx) = UnixStream::pair().map_err(LogSinkError::Thread)?;
        let mut writer = LineWriter {
            out,
            written,
            opts,
            full: false,
        };
        let path = listen.to_path_buf();
        let thread = crate::seccomp::thread("agent-log", ThreadKind::Log, move || {
            serve(listener, &path, &stop_rx, &mut writer)
        })
        .map_err(LogSinkError::Thread)?;
        Ok(Self {
            stop,
            thread: Some(thread),
            listen: listen.to_path_buf(),
        })
    }
}

impl Drop for LogSink {
    fn drop(&mut self) {
        // Closing our end wakes the thread's poll.
        let _ = self.stop.shutdown(std::net::Shutdown::Both);
        if let Some(t) = self.thread.take() {
            // With `echo`, a stalled stderr reader can hold the thread in a write.
            join_within(t, "agent-log", LOG_SINK_JOIN_DEADLINE);
        }
        let _ = std::fs::remove_file(&self.listen);
    }
}

/// Waits until `fd` is readable; false when `stop` fired (or poll failed).
fn wait_readable(fd: RawFd, stop: &UnixStream) -> bool {
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    loop {
        // SAFETY: `fds` is a valid array of two pollfd for the duration of the call, and
        // the length passed matches it.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if fds[1].revents != 0 {
            return false;
        }
        if fds[0].revents != 0 {
            return true;
        }
    }
}

/// Accepts the first connection, closes the port to every later one, then copies that
/// connection's lines until it ends or `stop` fires.
fn serve(listener: UnixListener, path: &Path, stop: &UnixStream, writer: &mut LineWriter) {
    let conn = loop {
        if !wait_readable(listener.as_raw_fd(), stop) {
            return;
        }
        match listener.accept() {
            Ok((conn, _)) => break conn,
            // The peer gave up before we took it: still waiting for the first.
            Err(e) if e.raw_os_error() == Some(libc::ECONNABORTED) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::warn!("agent log: accept failed: {e}; agent log forwarding is off");
                break_port(listener, path);
                return;
            }
        }
    };
    break_port(listener, path);
    tracing::debug!("agent log: serving the agent's connection; the port is closed to others");
    read_lines(conn, stop, writer);
}

/// Closes the port: the listener (connections waiting in its backlog are reset) and its
/// socket file (later connects find nothing).
fn break_port(listener: UnixListener, path: &Path) {
    drop(listener);
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != io::ErrorKind::NotFound {
            tracing::warn!("agent log: cannot remove {}: {e}", path.display());
        }
    }
}

/// Copies lines from `conn` until EOF (true) or stop (false).
fn read_lines(mut conn: UnixStream, stop: &UnixStream, writer: &mut LineWriter) -> bool {
    let mut splitter = LineSplitter::default();
    let mut buf = [0u8; 4096];
    loop {
        if !wait_readable(conn.as_raw_fd(), stop) {
            return false;
        }
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => {
                if let Some(rest) = splitter.finish() {
                    writer.line(&rest);
                }
                return true;
            }
            Ok(n) => splitter.push(&buf[..n], |line| writer.line(line)),
        }
    }
}

/// Splits a byte stream into lines of at most [`MAX_LINE`] bytes (the
/// rest of a longer line is dropped up to its newline).
pub struct LineSplitter {
    line: Vec<u8>,
    /// The current line passed `max`: skip to its newline.
    skipping: bool,
    max: usize,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::with_max_line(MAX_LINE)
    }
}

impl LineSplitter {
    /// Lines of at most `max` bytes (the sink uses [`MAX_LINE`]; the fuzz
    /// harness a small one, to reach the cut cheaply). `max` is at least 1.
    pub fn with_max_line(max: usize) -> Self {
        Self {
            line: Vec::new(),
            skipping: false,
            max: max.max(1),
        }
    }

    /// Feed `bytes`; `emit` gets each complete line, without its newline.
    pub fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8])) {
        while !bytes.is_empty() {
            let (chunk, newline) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], true),
                None => (bytes, false),
            };
            bytes = &bytes[chunk.len() + usize::from(newline)..];
            if !self.skipping {
                let room = self.max - self.line.len();
                self.line.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if chunk.len() > room {
                    emit(&self.line);
                    self.line.clear();
                    self.skipping = true;
                }
            }
            if newline {
                if !self.skipping {
                    emit(&self.line);
                }
                self.line.clear();
                self.skipping = false;
            }
        }
    }

    /// The unterminated last line, if any (at end of stream).
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        let rest = std::mem::take(&mut self.line);
        (!rest.is_empty() && !self.skipping).then_some(rest)
    }
}

/// `bytes` as one printable line: invalid UTF-8 and control characters (but tab) escaped.
pub fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for ch in String::from_utf8_lossy(bytes).chars() {
        if ch.is_control() && ch != '\t' {
            out.extend(ch.escape_unicode());
        } else {
            out.push(ch);
        }
    }
    out
}

struct LineWriter {
    out: File,
    written: u64,
    opts: LogSinkOptions,
    full: bool,
}

impl LineWriter {
    fn line(&mut self, raw: &[u8]) {
        let text = sanitize(raw);
        if self.opts.echo {
            let _ = writeln!(io::stderr().lock(), "{text}");
        }
        if self.full {
            return;
        }
        let mut bytes = text.into_bytes();
        bytes.push(b'\n');
        let len = bytes.len() as u64;
        if self.written + len > self.opts.max_file_bytes {
            self.full = true;
            tracing::warn!(
                limit = self.opts.max_file_bytes,
                "agent log: size limit reached; further lines are not kept"
            );
            let _ = self
                .out
                .write_all(b"host-vmm: agent log size limit reached; further lines dropped\n");
            return;
        }
        match self.out.write_all(&bytes) {
            Ok(()) => self.written += len,
            Err(e) => tracing::warn!("agent log: write failed: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::default();
        let mut out = Vec::new();
        for c in chunks {
            s.push(c, |l| out.push(l.to_vec()));
        }
        out.extend(s.finish());
        out
    }

    #[test]
    fn test_splitter_joins_chunks_and_cuts_long_lines() {
        assert_eq!(
            split(&[b"ab", b"c\nd", b"e\n"]),
            vec![b"abc".to_vec(), b"de".to_vec()]
        );
        assert_eq!(split(&[b"tail"]), vec![b"tail".to_vec()]);
        assert_eq!(split(&[b"\n\n"]), vec![Vec::<u8>::new(), Vec::new()]);
        let long = vec![b'x'; MAX_LINE * 2 + 5];
        let got = split(&[&long, b"\nnext\n"]);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].len(), MAX_LINE);
        assert_eq!(got[1], b"next");
    }

    #[test]
    fn test_sanitize_escapes_controls_and_bad_utf8() {
        assert_eq!(sanitize(b"ok\tline"), "ok\tline");
        assert_eq!(sanitize(b"\x1b[31mred"), "\\u{1b}[31mred");
        assert_eq!(sanitize(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(sanitize(b"cr\r"), "cr\\u{d}");
    }

    fn wait_for(path: &Path, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            if text.contains(want) || Instant::now() > deadline {
                return text;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("hv-logsink-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn test_sink_keeps_the_first_connection_only_and_cleans_up() {
        let dir = temp_dir("first");
        let uds = dir.join("vsock.sock");
        let listen = log_socket_path(&uds);
        assert_eq!(listen, dir.join("vsock.sock_1025"));
        let file = dir.join("agent.log");
        let sink = LogSink::start(&listen, &file, LogSinkOptions::default()).unwrap();

        let mut agent = UnixStream::connect(&listen).unwrap();
        agent
            .write_all(b"guest-agent: info one\nguest-agent: info t")
            .unwrap();
        agent.write_all(b"wo \x1b[2J\n").unwrap();
        wait_for(&file, "two");
        // Taken: the port is closed to everyone else (issue 10, finding 1).
        assert!(!listen.exists(), "socket still there");
        assert!(UnixStream::connect(&listen).is_err());
        agent.write_all(b"three\nno newline at end").unwrap();
        drop(agent);
        let text = wait_for(&file, "no newline at end");
        assert_eq!(
            text,
            "guest-agent: info one\nguest-agent: info two \\u{1b}[2J\n\
             three\nno newline at end\n"
        );
        drop(sink);
        assert!(!listen.exists(), "socket removed on drop");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_a_second_connection_never_reaches_the_file() {
        let dir = temp_dir("forged");
        let listen = dir.join("log.sock");
        let file = dir.join("agent.log");
        let sink = LogSink::start(&listen, &file, LogSinkOptions::default()).unwrap();
        // Both connect before the sink may have accepted either: the first is the agent's.
        let mut agent = UnixStream::connect(&listen).unwrap();
        let forger = UnixStream::connect(&listen);
        agent.write_all(b"AGENT line\n").unwrap();
        if let Ok(mut forger) = forger {
            // Reset by the closed listener, or written into a socket nobody reads.
            let _ = forger.write_all(b"AGENT_READY forged\nguest-agent: info forged\n");
        }
        drop(agent);
        let text = wait_for(&file, "AGENT line");
        std::thread::sleep(Duration::from_millis(100));
        let text = std::fs::read_to_string(&file).unwrap_or(text);
        assert_eq!(text, "AGENT line\n");
        assert!(!listen.exists());
        drop(sink);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_sink_stops_growing_at_the_size_limit() {
        let dir = temp_dir("limit");
        let listen = dir.join("log.sock");
        let file = dir.join("agent.log");
        let opts = LogSinkOptions {
            echo: false,
            max_file_bytes: 100,
        };
        let sink = LogSink::start(&listen, &file, opts).unwrap();
        let mut c = UnixStream::connect(&listen).unwrap();
        for i in 0..100 {
            writeln!(c, "line {i:04} padding padding").unwrap();
        }
        drop(c);
        let text = wait_for(&file, "size limit reached");
        assert!(text.contains("size limit reached"), "{text}");
        assert!(text.len() < 200, "{} bytes", text.len());
        drop(sink);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_sink_drop_with_an_open_connection_returns() {
        let dir = temp_dir("drop");
        let listen = dir.join("log.sock");
        let sink =
            LogSink::start(&listen, &dir.join("agent.log"), LogSinkOptions::default()).unwrap();
        let c = UnixStream::connect(&listen).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(sink); // joins the thread: must not hang on the idle connection
        drop(c);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Finding 5: a symlink planted as agent.log is not followed (the sink refuses to start
    /// and the link's target is untouched); the socket and the file are the owner's only.
    #[test]
    fn test_sink_refuses_a_planted_agent_log_and_is_private() {
        use std::os::unix::fs::MetadataExt;
        let dir = temp_dir("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let file = dir.join("agent.log");
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        let listen = dir.join("log.sock");
        let err = LogSink::start(&listen, &file, LogSinkOptions::default())
            .err()
            .expect("a symlink as agent.log must be refused");
        assert!(
            matches!(&err, LogSinkError::Open { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        std::fs::remove_file(&file).unwrap();
        let _ = std::fs::remove_file(&listen);
        let sink = LogSink::start(&listen, &file, LogSinkOptions::default()).unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&listen), 0o600);
        assert_eq!(mode(&file) & 0o077, 0);
        drop(sink);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
