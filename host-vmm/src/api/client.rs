//! The control socket's client: one request, one answer.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::protocol::{MemoryStatus, Request, Response, VcpuStatus, MAX_LINE};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiClientError {
    #[error("cannot reach the VMM at {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no answer from the VMM at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("malformed answer from the VMM: {0}")]
    Malformed(String),
    /// The VMM refused the request; its message says why.
    #[error("{0}")]
    Refused(String),
    #[error("the VMM answered {what} to a {asked} request")]
    Unexpected { asked: &'static str, what: String },
}

/// How long a request may take (a hot-add included).
const TIMEOUT: Duration = Duration::from_secs(60);

/// Send `req` to the server at `path` and return its answer.
pub fn request(path: &Path, req: &Request) -> Result<Response, ApiClientError> {
    request_with_timeout(path, req, TIMEOUT)
}

/// [`request`], waiting at most `timeout` for the answer.
pub fn request_with_timeout(
    path: &Path,
    req: &Request,
    timeout: Duration,
) -> Result<Response, ApiClientError> {
    let stream = UnixStream::connect(path).map_err(|source| ApiClientError::Connect {
        path: path.to_path_buf(),
        source,
    })?;
    let io_err = |source| ApiClientError::Io {
        path: path.to_path_buf(),
        source,
    };
    stream.set_read_timeout(Some(timeout)).map_err(io_err)?;
    stream.set_write_timeout(Some(timeout)).map_err(io_err)?;
    let mut line =
        serde_json::to_string(req).map_err(|e| ApiClientError::Malformed(e.to_string()))?;
    line.push('\n');
    (&stream).write_all(line.as_bytes()).map_err(io_err)?;
    let mut answer = String::new();
    BufReader::new((&stream).take(MAX_LINE as u64 * 4))
        .read_line(&mut answer)
        .map_err(io_err)?;
    serde_json::from_str(answer.trim())
        .map_err(|e| ApiClientError::Malformed(format!("{e}: {answer:?}")))
}

/// Send a memory request (`MemoryInfo`, `MemoryAdd`, `MemorySet`) and return the memory it
/// reports; a refusal is [`ApiClientError::Refused`] with the VMM's message.
pub fn memory_request(path: &Path, req: &Request) -> Result<MemoryStatus, ApiClientError> {
    match request(path, req)? {
        Response::Memory(m) => Ok(m),
        Response::Error { message } => Err(ApiClientError::Refused(message)),
        other => Err(ApiClientError::Unexpected {
            asked: "memory",
            what: format!("{other:?}"),
        }),
    }
}

/// Send a vCPU request (`CpuInfo`, `CpuSet`) and return the vCPUs it reports; a refusal
/// is [`ApiClientError::Refused`] with the VMM's message.
pub fn cpu_request(path: &Path, req: &Request) -> Result<VcpuStatus, ApiClientError> {
    match request(path, req)? {
        Response::Vcpus(v) => Ok(v),
        Response::Error { message } => Err(ApiClientError::Refused(message)),
        other => Err(ApiClientError::Unexpected {
            asked: "cpu",
            what: format!("{other:?}"),
        }),
    }
}

/// Report that `container` needs `vcpus` whole vCPUs (0: it is gone); returns the vCPUs
/// the sandbox should have for all its containers, and its vCPUs now.
pub fn cpu_need(
    path: &Path,
    container: &str,
    vcpus: u32,
) -> Result<(u32, VcpuStatus), ApiClientError> {
    let req = Request::CpuNeed {
        container: container.to_string(),
        vcpus,
    };
    match request(path, &req)? {
        Response::CpuTarget { target, now } => Ok((target, now)),
        Response::Error { message } => Err(ApiClientError::Refused(message)),
        other => Err(ApiClientError::Unexpected {
            asked: "cpu-need",
            what: format!("{other:?}"),
        }),
    }
}
