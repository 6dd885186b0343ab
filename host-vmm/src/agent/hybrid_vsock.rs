//! The host end of a hybrid vsock connection: dial the device's Unix socket, write
//! `CONNECT <port>\n`, read `OK <hostport>\n`. After that the stream is the connection to the
//! guest's port.
//!
//! The reply comes from the VMM but is read as if it were hostile: at most [`MAX_OK_LINE`]
//! bytes, one at a time (nothing past the newline is consumed), within a deadline, and parsed
//! strictly.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The longest `OK <port>\n` line accepted (`OK 4294967295\n` is 14 bytes).
pub const MAX_OK_LINE: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    #[error("cannot connect to {}", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot send the CONNECT line")]
    Write(#[source] io::Error),
    #[error("cannot read the OK line")]
    Read(#[source] io::Error),
    #[error("closed before the OK line (after {0} bytes): the guest is not listening yet")]
    Closed(usize),
    #[error("no OK line within {0:?}")]
    Timeout(Duration),
    #[error("reply longer than {MAX_OK_LINE} bytes without a newline")]
    TooLong,
    #[error("malformed reply {0:?} (want \"OK <port>\\n\")")]
    Malformed(String),
}

impl HandshakeError {
    /// Can a later attempt succeed (the VMM or the guest is still starting)? A broken reply
    /// cannot get better by asking again.
    pub fn is_transient(&self) -> bool {
        match self {
            HandshakeError::Connect { source, .. } => matches!(
                source.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::WouldBlock
            ),
            HandshakeError::Write(_)
            | HandshakeError::Read(_)
            | HandshakeError::Closed(_)
            | HandshakeError::Timeout(_) => true,
            HandshakeError::TooLong | HandshakeError::Malformed(_) => false,
        }
    }
}

/// The host port in an `OK <port>\n` line (newline included), or `None`: exactly `OK`, one
/// space, 1 to 10 decimal digits without a leading zero (`0` alone is fine), a value that
/// fits in u32, and `\n`.
pub fn parse_ok_line(line: &[u8]) -> Option<u32> {
    let digits = line.strip_prefix(b"OK ")?.strip_suffix(b"\n")?;
    let well_formed = !digits.is_empty()
        && digits.len() <= 10
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || digits.len() == 1);
    if !well_formed {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// Connects to guest port `port` through the hybrid vsock socket `uds`, all within `timeout`.
/// Returns the stream (blocking, no timeouts left set) and the host-side port from `OK`.
pub fn connect(
    uds: &Path,
    port: u32,
    timeout: Duration,
) -> Result<(UnixStream, u32), HandshakeError> {
    let deadline = Instant::now() + timeout;
    let mut stream = UnixStream::connect(uds).map_err(|source| HandshakeError::Connect {
        path: uds.to_path_buf(),
        source,
    })?;
    stream
        .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
        .map_err(HandshakeError::Write)?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .map_err(HandshakeError::Write)?;
    let line = read_line(&mut stream, deadline, timeout)?;
    let host_port = parse_ok_line(&line)
        .ok_or_else(|| HandshakeError::Malformed(String::from_utf8_lossy(&line).into_owned()))?;
    stream
        .set_read_timeout(None)
        .and_then(|()| stream.set_write_timeout(None))
        .map_err(HandshakeError::Read)?;
    Ok((stream, host_port))
}

/// Reads up to and including the first `\n`, one byte at a time, before `deadline`.
fn read_line(
    stream: &mut UnixStream,
    deadline: Instant,
    timeout: Duration,
) -> Result<Vec<u8>, HandshakeError> {
    let mut line = Vec::with_capacity(MAX_OK_LINE);
    let mut byte = [0u8; 1];
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HandshakeError::Timeout(timeout));
        }
        stream
            .set_read_timeout(Some(remaining))
            .map_err(HandshakeError::Read)?;
        match stream.read(&mut byte) {
            Ok(0) => return Err(HandshakeError::Closed(line.len())),
            Ok(_) => {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    return Ok(line);
                }
                if line.len() >= MAX_OK_LINE {
                    return Err(HandshakeError::TooLong);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(HandshakeError::Timeout(timeout))
            }
            Err(e) => return Err(HandshakeError::Read(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_ok_line_accepts_exact_form() {
        assert_eq!(parse_ok_line(b"OK 1024\n"), Some(1024));
        assert_eq!(parse_ok_line(b"OK 0\n"), Some(0));
        assert_eq!(parse_ok_line(b"OK 4294967295\n"), Some(u32::MAX));
    }

    #[test]
    fn test_parse_ok_line_refuses_everything_else() {
        for line in [
            &b"OK 4294967296\n"[..],
            b"OK 1024",
            b"OK 1024\r\n",
            b"OK  1024\n",
            b"OK 1024 \n",
            b"OK +1024\n",
            b"OK -1\n",
            b"OK 01024\n",
            b"OK \n",
            b"OK\n",
            b"ok 1024\n",
            b"KO 1024\n",
            b"OK 1O24\n",
            b"OK 12345678901\n",
            b"\n",
            b"",
        ] {
            assert_eq!(
                parse_ok_line(line),
                None,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn test_transient_errors() {
        let gone = HandshakeError::Connect {
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::NotFound),
        };
        assert!(gone.is_transient());
        assert!(HandshakeError::Closed(0).is_transient());
        assert!(HandshakeError::Timeout(Duration::from_secs(1)).is_transient());
        assert!(!HandshakeError::TooLong.is_transient());
        assert!(!HandshakeError::Malformed("OK\n".into()).is_transient());
        let denied = HandshakeError::Connect {
            path: "/x".into(),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert!(!denied.is_transient());
    }
}
