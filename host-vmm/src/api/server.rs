//! The control socket's server: a thread accepting one request per connection.

use std::io::{self, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::protocol::{Request, Response, MAX_LINE};
use crate::seccomp::{self, ThreadKind};
use crate::threads::join_within;

/// Answers requests; implemented by the running VMM.
pub trait ApiHandler: Send + Sync + 'static {
    fn handle(&self, request: Request) -> Response;
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("cannot listen on {}", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the API thread")]
    Spawn(#[source] io::Error),
}

/// A client has this long to send its whole request (not per read: a
/// client trickling one byte at a time gets no longer).
pub const READ_DEADLINE: Duration = Duration::from_secs(5);
/// A client has this long to take the answer.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long dropping the server waits for the API thread to finish the
/// request it is serving. Requests are served one at a time; each is
/// bounded by [`READ_DEADLINE`], the handler and [`WRITE_TIMEOUT`].
pub const API_JOIN_DEADLINE: Duration = Duration::from_secs(15);

/// The running server. Dropping it stops the thread and removes the socket.
pub struct ApiServer {
    path: PathBuf,
    /// The listening socket, to wake the accept call even if the socket file is gone.
    wake: Option<UnixListener>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    pub fn start(path: &Path, handler: Arc<dyn ApiHandler>) -> Result<Self, ApiServerError> {
        let _ = std::fs::remove_file(path);
        // 0600 before it listens: `disk-add` opens host paths as the VMM's user.
        let listener =
            crate::os::socket::bind_private(path).map_err(|source| ApiServerError::Bind {
                path: path.to_path_buf(),
                source,
            })?;
        let wake = listener.try_clone().ok();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = seccomp::thread("api", ThreadKind::Api, move || {
            accept_loop(listener, handler, stop2)
        })
        .map_err(ApiServerError::Spawn)?;
        Ok(ApiServer {
            path: path.to_path_buf(),
            wake,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call so the thread sees the flag: shut the listener down (works
        // even when someone removed the socket file), and connect, as a fallback.
        if let Some(l) = &self.wake {
            // SAFETY: shutdown on a descriptor `l` owns; no pointers.
            unsafe { libc::shutdown(std::os::fd::AsRawFd::as_raw_fd(l), libc::SHUT_RDWR) };
        }
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            join_within(t, "api", API_JOIN_DEADLINE);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn accept_loop(listener: UnixListener, handler: Arc<dyn ApiHandler>, stop: Arc<AtomicBool>) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        match conn {
            Ok(stream) => {
                if let Err(e) = serve_one(stream, handler.as_ref()) {
                    tracing::warn!("API connection: {e}");
                }
            }
            Err(e) => tracing::warn!("API accept: {e}"),
        }
    }
}

/// Read one request line: at most `MAX_LINE + 1` bytes (so an overlong
/// line is seen as such), all of it within [`READ_DEADLINE`]. End of file
/// ends the line too.
pub fn read_request(stream: &UnixStream) -> io::Result<Vec<u8>> {
    let end = Instant::now() + READ_DEADLINE;
    let mut line = Vec::new();
    let mut buf = [0u8; 512];
    while line.len() <= MAX_LINE && !line.contains(&b'\n') {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no complete request within {READ_DEADLINE:?}"),
            ));
        }
        stream.set_read_timeout(Some(left))?;
        let want = buf.len().min(MAX_LINE + 1 - line.len());
        match (&*stream).read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => line.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    if let Some(nl) = line.iter().position(|&b| b == b'\n') {
        line.truncate(nl + 1);
    }
    Ok(line)
}

/// The request in one line as [`read_request`] returns it, or the error
/// message for the client.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    if line.len() > MAX_LINE {
        return Err(format!("request longer than {MAX_LINE} bytes"));
    }
    serde_json::from_slice::<Request>(line.trim_ascii())
        .map_err(|e| format!("malformed request: {e}"))
}

/// Read one request line (bounded in size and time), answer one line.
fn serve_one(stream: UnixStream, handler: &dyn ApiHandler) -> io::Result<()> {
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let line = read_request(&stream)?;
    let response = match parse_request(&line) {
        Ok(req) => {
            tracing::info!(?req, "API request");
            handler.handle(req)
        }
        Err(message) => Response::Error { message },
    };
    let mut out = serde_json::to_string(&response).map_err(io::Error::other)?;
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::client::request;
    use crate::api::protocol::MemoryStatus;
    use std::io::{BufRead, BufReader};

    struct Fixed;
    impl ApiHandler for Fixed {
        fn handle(&self, request: Request) -> Response {
            match request {
                Request::MemoryInfo => Response::Memory(MemoryStatus {
                    boot_bytes: 1,
                    hotplugged_bytes: 0,
                    total_bytes: 1,
                    max_bytes: 2,
                    slots_total: 3,
                    slots_used: 0,
                    block_bytes: 4,
                }),
                other => Response::Error {
                    message: format!("refused {other:?}"),
                },
            }
        }
    }

    fn sock(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("host-vmm-api-{name}-{}.sock", std::process::id()))
    }

    #[test]
    fn test_api_server_answers_and_cleans_up() {
        let path = sock("answers");
        let server = ApiServer::start(&path, Arc::new(Fixed)).unwrap();
        match request(&path, &Request::MemoryInfo).unwrap() {
            Response::Memory(m) => assert_eq!(m.slots_total, 3),
            other => panic!("{other:?}"),
        }
        let r = request(&path, &Request::MemoryAdd { bytes: 5 }).unwrap();
        assert!(matches!(r, Response::Error { message } if message.contains("MemoryAdd")));
        drop(server);
        assert!(!path.exists(), "socket left behind");
    }

    /// Teardown does not hang when the socket file was removed under the server (the
    /// wake-up connect has nowhere to go).
    #[test]
    fn test_api_server_drop_returns_without_its_socket_file() {
        let path = sock("unlinked");
        let server = ApiServer::start(&path, Arc::new(Fixed)).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            drop(server);
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("ApiServer::drop hung with its socket file gone");
    }

    #[test]
    fn test_api_server_refuses_garbage_and_long_lines() {
        let path = sock("garbage");
        let _server = ApiServer::start(&path, Arc::new(Fixed)).unwrap();
        for input in [
            "not json\n".to_string(),
            format!("{}\n", "x".repeat(MAX_LINE * 2)),
        ] {
            let mut s = UnixStream::connect(&path).unwrap();
            let _ = s.write_all(input.as_bytes());
            let mut answer = String::new();
            BufReader::new(&s).read_line(&mut answer).unwrap();
            let r: Response = serde_json::from_str(&answer).unwrap();
            assert!(matches!(r, Response::Error { .. }), "{answer}");
        }
    }

    /// A client that sends one byte every second never finishes a line:
    /// it is cut off at READ_DEADLINE in all, and the next client is
    /// served.
    #[test]
    fn test_api_server_read_deadline_is_for_the_whole_request() {
        let path = sock("trickle");
        let _server = ApiServer::start(&path, Arc::new(Fixed)).unwrap();
        let mut slow = UnixStream::connect(&path).unwrap();
        let start = Instant::now();
        let cut = loop {
            if slow.write_all(b" ").is_err() || start.elapsed() > READ_DEADLINE * 3 {
                break start.elapsed();
            }
            let mut b = [0u8; 1];
            slow.set_read_timeout(Some(Duration::from_millis(900)))
                .unwrap();
            if matches!(slow.read(&mut b), Ok(0)) {
                break start.elapsed();
            }
        };
        assert!(
            cut < READ_DEADLINE * 2,
            "trickling client served for {cut:?}"
        );
        match request(&path, &Request::MemoryInfo).unwrap() {
            Response::Memory(m) => assert_eq!(m.slots_total, 3),
            other => panic!("{other:?}"),
        }
    }
}
