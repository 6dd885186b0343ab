//! The host side of hybrid vsock: Unix sockets.
//!
//! - The device listens on `uds_path`. A host client connects and writes
//!   `CONNECT <port>\n`; once the guest accepts, it reads `OK <hostport>\n`
//!   and the stream is the connection to guest port `<port>`.
//! - A guest connection to host port P goes to the listener at
//!   `<uds_path>_P`.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The longest `CONNECT <port>\n` line we read.
pub const MAX_CONNECT_LINE: usize = 32;

/// Why the vsock's Unix listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UnixError {
    #[error("vsock socket {}: path too long for a Unix socket", path.display())]
    PathTooLong { path: PathBuf },
    #[error("vsock socket {}: another process is listening there", path.display())]
    InUse { path: PathBuf },
    #[error("vsock socket {}: exists and is not a socket", path.display())]
    NotASocket { path: PathBuf },
    #[error("vsock socket {}: cannot bind", path.display())]
    Bind {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `sun_path` holds 108 bytes including the terminating NUL.
const SUN_PATH_MAX: usize = 107;

/// Bind a non-blocking listener at `path`, mode 0600. A stale socket file (no one
/// listening) is replaced; a live one or a non-socket file is an error.
pub fn bind_listener(path: &Path) -> Result<UnixListener, UnixError> {
    if path.as_os_str().len() > SUN_PATH_MAX {
        return Err(UnixError::PathTooLong { path: path.into() });
    }
    let bind_err = |source| UnixError::Bind {
        path: path.into(),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(UnixError::NotASocket { path: path.into() })
        }
        Ok(_) => match UnixStream::connect(path) {
            Ok(_) => return Err(UnixError::InUse { path: path.into() }),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                tracing::info!(path = %path.display(), "removing stale vsock socket");
                std::fs::remove_file(path).map_err(bind_err)?;
            }
            Err(e) => return Err(bind_err(e)),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_err(e)),
    }
    // 0600 before it listens.
    let listener = crate::os::socket::bind_private(path).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    Ok(listener)
}

/// `<uds_path>_<port>`: where guest connections to host port `port` go.
pub fn port_socket_path(uds_path: &Path, port: u32) -> PathBuf {
    let mut s = uds_path.as_os_str().to_owned();
    s.push(format!("_{port}"));
    PathBuf::from(s)
}

/// Connect to `path` without blocking: a listener whose backlog is full
/// fails with `WouldBlock` instead of stalling the device thread.
pub fn connect_nonblocking(path: &Path) -> io::Result<UnixStream> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > SUN_PATH_MAX || bytes.contains(&0) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_un is plain old data; all zeroes is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (dst, &src) in addr.sun_path.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    // SAFETY: `addr` is a valid sockaddr_un that outlives the call and
    // `len` does not exceed its size (path checked against SUN_PATH_MAX).
    let rc = unsafe {
        libc::connect(
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(UnixStream::from(fd))
}

/// The port in a `CONNECT <port>\n` line (`line` includes the newline),
/// or `None` if the line is malformed.
pub fn parse_connect_line(line: &[u8]) -> Option<u32> {
    let rest = line.strip_prefix(b"CONNECT ")?.strip_suffix(b"\n")?;
    let rest = rest.strip_suffix(b"\r").unwrap_or(rest);
    if rest.is_empty() || rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(rest).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_connect_line() {
        assert_eq!(parse_connect_line(b"CONNECT 1024\n"), Some(1024));
        assert_eq!(parse_connect_line(b"CONNECT 0\r\n"), Some(0));
        assert_eq!(parse_connect_line(b"CONNECT 4294967295\n"), Some(u32::MAX));
        for bad in [
            &b"CONNECT 4294967296\n"[..],
            b"CONNECT \n",
            b"CONNECT -1\n",
            b"CONNECT 12 \n",
            b"CONNECT 12",
            b"connect 12\n",
            b"CONNECT +12\n",
            b"CONNECT 00000000001\n",
            b"",
        ] {
            assert_eq!(parse_connect_line(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn test_port_socket_path() {
        assert_eq!(
            port_socket_path(Path::new("/run/x/vsock.sock"), 1025),
            PathBuf::from("/run/x/vsock.sock_1025")
        );
    }

    #[test]
    fn test_bind_listener_replaces_stale_refuses_live_and_files() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = dir.as_path().join("v.sock");
        let live = bind_listener(&path).unwrap();
        assert!(matches!(bind_listener(&path), Err(UnixError::InUse { .. })));
        drop(live); // leaves the file behind: stale
        assert!(path.exists());
        let _again = bind_listener(&path).unwrap();
        let file = dir.as_path().join("plain");
        std::fs::write(&file, b"x").unwrap();
        assert!(matches!(
            bind_listener(&file),
            Err(UnixError::NotASocket { .. })
        ));
        let long = dir.as_path().join("x".repeat(200));
        assert!(matches!(
            bind_listener(&long),
            Err(UnixError::PathTooLong { .. })
        ));
    }

    #[test]
    fn test_connect_nonblocking() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = dir.as_path().join("l");
        let err = connect_nonblocking(&path).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        let l = UnixListener::bind(&path).unwrap();
        let s = connect_nonblocking(&path).unwrap();
        let (peer, _) = l.accept().unwrap();
        use std::io::{Read, Write};
        (&s).write_all(b"hi").unwrap();
        let mut b = [0u8; 2];
        (&peer).read_exact(&mut b).unwrap();
        assert_eq!(&b, b"hi");
    }
}
