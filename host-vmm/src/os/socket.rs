//! Unix listeners that are 0600 from the moment they accept connections.
//!
//! `UnixListener::bind` binds and listens in one call, with the file's mode from the umask.
//! Here the socket is bound, its file set to 0600, and only then does it listen: no client
//! can connect while the mode is wider (and the private 0700 directory around it already
//! keeps others out).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// `sun_path` holds 108 bytes including the terminating NUL.
pub const SUN_PATH_MAX: usize = 107;
/// The listen backlog (std's).
const BACKLOG: libc::c_int = 128;
/// The mode of every socket host-vmm listens on.
pub const SOCKET_MODE: u32 = 0o600;

/// A blocking listener at `path` (which must not exist), mode 0600, `SOCK_CLOEXEC`.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() > SUN_PATH_MAX || bytes.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is not a usable Unix socket path (at most {SUN_PATH_MAX} bytes)",
                path.display()
            ),
        ));
    }
    // SAFETY: socket() takes no pointers; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
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
    // SAFETY: `addr` is a valid sockaddr_un that outlives the call; `len` does not exceed
    // its size (the path length was checked against SUN_PATH_MAX).
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&addr as *const libc::sockaddr_un).cast(),
            len as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let listen = || -> io::Result<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(SOCKET_MODE))?;
        // SAFETY: listen on a bound socket we own; no pointers.
        if unsafe { libc::listen(fd.as_raw_fd(), BACKLOG) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    if let Err(e) = listen() {
        let _ = std::fs::remove_file(path);
        return Err(e);
    }
    Ok(UnixListener::from(fd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, MetadataExt};

    #[test]
    fn test_bind_private_is_0600_and_serves() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join("s.sock");
        // SAFETY: umask takes a plain integer. Restored below; other tests in this process
        // do not depend on the umask (their own modes are set explicitly).
        let old = unsafe { libc::umask(0) };
        let listener = bind_private(&path);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        let listener = listener.unwrap();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.mode() & 0o7777, 0o600);
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        listener.accept().unwrap();
        // An existing file is not replaced.
        assert_eq!(
            bind_private(&path).unwrap_err().kind(),
            io::ErrorKind::AddrInUse
        );
        assert_eq!(
            bind_private(&tmp.as_path().join("x".repeat(200)))
                .unwrap_err()
                .kind(),
            io::ErrorKind::InvalidInput
        );
    }
}
