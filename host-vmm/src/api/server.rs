//! The control socket's server: a thread accepting one request per connection.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::protocol::{Request, Response, MAX_LINE};
use crate::seccomp::{self, ThreadKind};

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

/// A client has this long to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The running server. Dropping it stops the thread and removes the socket.
pub struct ApiServer {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ApiServer {
    pub fn start(path: &Path, handler: Arc<dyn ApiHandler>) -> Result<Self, ApiServerError> {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).map_err(|source| ApiServerError::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = seccomp::thread("api", ThreadKind::Api, move || {
            accept_loop(listener, handler, stop2)
        })
        .map_err(ApiServerError::Spawn)?;
        Ok(ApiServer {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept call so the thread sees the flag.
        let _ = UnixStream::connect(&self.path);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
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

/// Read one request line (bounded), answer one line.
fn serve_one(stream: UnixStream, handler: &dyn ApiHandler) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let mut line = String::new();
    let mut reader = BufReader::new((&stream).take(MAX_LINE as u64 + 1));
    reader.read_line(&mut line)?;
    let response = if line.len() > MAX_LINE {
        Response::Error {
            message: format!("request longer than {MAX_LINE} bytes"),
        }
    } else {
        match serde_json::from_str::<Request>(line.trim()) {
            Ok(req) => {
                tracing::info!(?req, "API request");
                handler.handle(req)
            }
            Err(e) => Response::Error {
                message: format!("malformed request: {e}"),
            },
        }
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
}
