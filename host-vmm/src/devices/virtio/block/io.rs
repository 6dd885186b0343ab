//! The disk behind a virtio-blk device: a host file read and written at
//! offsets (`pread`/`pwrite`), and the execution of checked [`Request`]s
//! between it and the guest buffers of a [`DescChain`].
//!
//! Data moves through a bounce buffer of [`BOUNCE_SIZE`] bytes per device,
//! so host memory does not grow with the guest's request size.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::request::{DiskGeometry, Kind, Request, ID_BYTES, SECTOR_SIZE};
use crate::devices::virtio::chain::{ChainError, DescChain};
use crate::memory::GuestMemoryMmap;

/// Bytes moved per `pread`/`pwrite`.
pub const BOUNCE_SIZE: usize = 128 * 1024;

/// Why a disk could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("disk {}: cannot open", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("disk {}: cannot read its size", path.display())]
    Size {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("disk {}: is {kind}; only a regular file or a block device is allowed", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("disk serial {serial:?}: {reason}")]
    Serial {
        serial: String,
        reason: &'static str,
    },
}

/// Why a checked request failed while being carried out (answered with
/// VIRTIO_BLK_S_IOERR).
#[derive(Debug, thiserror::Error)]
pub enum IoError {
    #[error("read of {len} bytes at offset {offset} failed")]
    Read {
        offset: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("write of {len} bytes at offset {offset} failed")]
    Write {
        offset: u64,
        len: usize,
        #[source]
        source: std::io::Error,
    },
    #[error("flush failed")]
    Flush(#[source] std::io::Error),
    #[error("guest buffer access failed")]
    Guest(#[source] ChainError),
}

/// The serial as GET_ID returns it: printable ASCII without spaces (it
/// becomes `/dev/disk/by-id/virtio-<serial>` in the guest), at most 20
/// bytes, zero padded.
pub fn serial_id(serial: &str) -> Result<[u8; ID_BYTES], DiskError> {
    let err = |reason| DiskError::Serial {
        serial: serial.to_string(),
        reason,
    };
    if serial.len() > ID_BYTES {
        return Err(err("longer than 20 bytes"));
    }
    if !serial.bytes().all(|c| c.is_ascii_graphic()) {
        return Err(err("only printable ASCII without spaces is allowed"));
    }
    let mut id = [0u8; ID_BYTES];
    id[..serial.len()].copy_from_slice(serial.as_bytes());
    Ok(id)
}

/// What a file type is, for an error: `None` for the kinds a disk may be.
fn file_kind(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() || t.is_block_device() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_dir() {
        Some("a directory")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

fn check_kind(path: &Path, t: std::fs::FileType) -> Result<(), DiskError> {
    match file_kind(t) {
        None => Ok(()),
        Some(kind) => Err(DiskError::NotAFile {
            path: path.to_path_buf(),
            kind,
        }),
    }
}

/// Make `file` blocking again (it was opened `O_NONBLOCK`).
fn clear_nonblock(file: &File) -> std::io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL on a descriptor we own takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with an int argument on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A host file serving as the guest's disk.
#[derive(Debug)]
pub struct Disk {
    file: File,
    path: PathBuf,
    geometry: DiskGeometry,
    id: [u8; ID_BYTES],
}

impl Disk {
    /// Open `path` (`O_RDONLY` when `read_only`). The capacity is its size
    /// in whole sectors; a partial last sector is not visible.
    ///
    /// The open never blocks: it is `O_NONBLOCK` (a FIFO with no writer,
    /// or a device that waits for a carrier, would otherwise hold the
    /// caller, the API thread, forever), then `fstat` accepts only a
    /// regular file or a block device and `O_NONBLOCK` is cleared.
    pub fn open(path: &Path, read_only: bool, serial: &str) -> Result<Self, DiskError> {
        let id = serial_id(serial)?;
        let file = OpenOptions::new()
            .read(true)
            .write(!read_only)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(path)
            .map_err(|source| DiskError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        let meta = file.metadata().map_err(|source| DiskError::Size {
            path: path.to_path_buf(),
            source,
        })?;
        check_kind(path, meta.file_type())?;
        clear_nonblock(&file).map_err(|source| DiskError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_file(file, path, read_only, id)
    }

    /// A disk on an open file (its size read now).
    pub fn from_file(
        file: File,
        path: &Path,
        read_only: bool,
        id: [u8; ID_BYTES],
    ) -> Result<Self, DiskError> {
        let size_err = |source| DiskError::Size {
            path: path.to_path_buf(),
            source,
        };
        let meta = file.metadata().map_err(size_err)?;
        let size = if meta.file_type().is_file() {
            meta.len()
        } else if std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
            let mut f = &file;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::End(0)).map_err(size_err)?
        } else {
            check_kind(path, meta.file_type())?;
            return Err(DiskError::NotAFile {
                path: path.to_path_buf(),
                kind: "not a regular file",
            });
        };
        if size % SECTOR_SIZE != 0 {
            tracing::warn!(path = %path.display(), size, "disk size is not a multiple of 512: the last partial sector is not visible");
        }
        Ok(Self {
            file,
            path: path.to_path_buf(),
            geometry: DiskGeometry {
                capacity: size / SECTOR_SIZE,
                read_only,
            },
            id,
        })
    }

    pub fn geometry(&self) -> DiskGeometry {
        self.geometry
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Carry out `req` between the disk and `chain`'s buffers in `mem`.
    /// Returns the bytes written into the writable buffers before the
    /// status byte.
    pub fn execute(
        &self,
        req: &Request,
        chain: &DescChain,
        mem: &GuestMemoryMmap,
        bounce: &mut [u8],
    ) -> Result<usize, IoError> {
        match req.kind {
            Kind::Read => {
                self.copy_chunks(req, bounce, |buf, file_off, chain_off| {
                    self.file
                        .read_exact_at(buf, file_off)
                        .map_err(|source| IoError::Read {
                            offset: file_off,
                            len: buf.len(),
                            source,
                        })?;
                    chain.write_at(mem, chain_off, buf).map_err(IoError::Guest)
                })?;
                Ok(req.len)
            }
            Kind::Write => {
                self.copy_chunks(req, bounce, |buf, file_off, chain_off| {
                    // The data follows the header in the readable buffers.
                    chain
                        .read_at(mem, super::request::HEADER_SIZE + chain_off, buf)
                        .map_err(IoError::Guest)?;
                    self.file
                        .write_all_at(buf, file_off)
                        .map_err(|source| IoError::Write {
                            offset: file_off,
                            len: buf.len(),
                            source,
                        })
                })?;
                Ok(0)
            }
            Kind::Flush => {
                if !self.geometry.read_only {
                    self.file.sync_data().map_err(IoError::Flush)?;
                }
                Ok(0)
            }
            Kind::GetId => {
                let n = req.len.min(ID_BYTES);
                chain
                    .write_at(mem, 0, &self.id[..n])
                    .map_err(IoError::Guest)?;
                Ok(n)
            }
        }
    }

    /// Call `f(chunk, disk offset, data offset)` over `req`'s data range in
    /// chunks of at most `bounce.len()` bytes.
    fn copy_chunks(
        &self,
        req: &Request,
        bounce: &mut [u8],
        mut f: impl FnMut(&mut [u8], u64, usize) -> Result<(), IoError>,
    ) -> Result<(), IoError> {
        let step = bounce.len().max(1);
        let mut done = 0;
        while done < req.len {
            let n = (req.len - done).min(step);
            // In range: `Request::parse` checked offset + len <= capacity.
            f(&mut bounce[..n], req.offset() + done as u64, done)?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_serial_id_pads_and_refuses_bad_serials() {
        let id = serial_id("rootfs-1").unwrap();
        assert_eq!(&id[..8], b"rootfs-1");
        assert!(id[8..].iter().all(|&b| b == 0));
        assert_eq!(serial_id("").unwrap(), [0u8; ID_BYTES]);
        assert!(serial_id("a".repeat(20).as_str()).is_ok());
        for bad in ["a".repeat(21).as_str(), "has space", "tab\t", "é"] {
            let e = serial_id(bad).unwrap_err();
            assert!(e.to_string().contains("disk serial"), "{e}");
        }
    }

    #[test]
    fn test_disk_open_sizes_and_errors() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let p = dir.as_path().join("d.img");
        std::fs::write(&p, vec![0u8; 512 * 3 + 100]).unwrap();
        let d = Disk::open(&p, true, "x").unwrap();
        assert_eq!(
            d.geometry(),
            DiskGeometry {
                capacity: 3,
                read_only: true
            }
        );
        let missing = dir.as_path().join("missing");
        let e = Disk::open(&missing, false, "x").unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = Disk::open(dir.as_path(), true, "x").unwrap_err();
        assert!(matches!(e, DiskError::NotAFile { .. }), "{e}");
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = Disk::open(Path::new("/dev/null"), true, "x").unwrap_err();
        assert!(
            e.to_string().contains("/dev/null: is a character device"),
            "{e}"
        );
    }

    /// Issue 10, finding 7: a FIFO nobody writes used to block `open()`
    /// (and so the API thread) forever. Now it is refused at once, read
    /// only or read-write.
    #[test]
    fn test_disk_open_refuses_a_fifo_without_blocking() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let fifo = dir.as_path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for read_only in [true, false] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = fifo.clone();
            std::thread::spawn(move || {
                let _ = tx.send(Disk::open(&p, read_only, "x").map(|_| ()));
            });
            let r = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .expect("Disk::open of a FIFO returned within 5 s");
            let e = r.unwrap_err();
            assert!(e.to_string().contains("fifo: is a FIFO"), "{e}");
        }
    }

    #[test]
    fn test_disk_open_leaves_the_file_blocking_and_cloexec() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let p = dir.as_path().join("d.img");
        std::fs::write(&p, vec![0u8; 4096]).unwrap();
        let d = Disk::open(&p, false, "x").unwrap();
        let fd = d.file.as_raw_fd();
        // SAFETY: fcntl F_GETFL/F_GETFD on an open descriptor.
        let (fl, fdfl) = unsafe {
            (
                libc::fcntl(fd, libc::F_GETFL),
                libc::fcntl(fd, libc::F_GETFD),
            )
        };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
        assert_ne!(fdfl & libc::FD_CLOEXEC, 0);
    }
}
