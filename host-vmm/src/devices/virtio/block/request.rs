//! One virtio-blk request, parsed from a descriptor chain and checked
//! before any I/O (virtio 1.2, 5.2.6). Pure: [`Request::parse`] sees only
//! the header bytes and the chain's buffer sizes.
//!
//! Layout of a request chain: device-readable `struct virtio_blk_req`
//! header (type, reserved, sector: 16 bytes), then for OUT the data;
//! device-writable data for IN (or the 20-byte id for GET_ID), and the
//! status byte last.

use virtio_bindings::virtio_blk as b;

/// Bytes per sector: the unit of `sector` and of the capacity.
pub const SECTOR_SIZE: u64 = 512;
/// Size of the request header (`type`, `reserved`, `sector`).
pub const HEADER_SIZE: usize = 16;
/// Length of the GET_ID answer (zero padded, not NUL terminated).
pub const ID_BYTES: usize = b::VIRTIO_BLK_ID_BYTES as usize;

/// Request status (the byte the device writes last).
pub const STATUS_OK: u8 = b::VIRTIO_BLK_S_OK as u8;
pub const STATUS_IOERR: u8 = b::VIRTIO_BLK_S_IOERR as u8;
pub const STATUS_UNSUPP: u8 = b::VIRTIO_BLK_S_UNSUPP as u8;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// VIRTIO_BLK_T_IN: read `len` bytes at `sector` into the writable buffers.
    Read,
    /// VIRTIO_BLK_T_OUT: write `len` bytes from the readable buffers (after
    /// the header) at `sector`.
    Write,
    /// VIRTIO_BLK_T_FLUSH: make earlier writes durable.
    Flush,
    /// VIRTIO_BLK_T_GET_ID: the serial into a `len`-byte buffer.
    GetId,
}

/// A checked request: every offset and length is within the chain's
/// buffers and (for reads and writes) within the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    /// First sector (reads and writes; 0 otherwise).
    pub sector: u64,
    /// Data bytes (reads and writes: a multiple of [`SECTOR_SIZE`]; GET_ID:
    /// the id buffer's size).
    pub len: usize,
    /// Offset of the status byte in the chain's writable buffers.
    pub status_offset: usize,
}

/// What the disk looks like to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskGeometry {
    /// Size in sectors.
    pub capacity: u64,
    pub read_only: bool,
}

/// Why a request is refused. All but [`RequestError::NoStatus`] are
/// answered with a status byte ([`RequestError::status`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("request has no device-writable byte for its status")]
    NoStatus,
    #[error("request header is {len} bytes, {HEADER_SIZE} are needed")]
    ShortHeader { len: usize },
    #[error("request type {type_} is not supported")]
    Unsupported { type_: u32 },
    #[error("{what} request has {len} unexpected data bytes")]
    UnexpectedData { what: &'static str, len: usize },
    #[error("data length {len} is not a multiple of {SECTOR_SIZE}")]
    Unaligned { len: usize },
    #[error("sectors {sector} + {sectors} are past the end of the disk ({capacity} sectors)")]
    OutOfRange {
        sector: u64,
        sectors: u64,
        capacity: u64,
    },
    #[error("write to a read-only disk")]
    ReadOnly,
}

impl RequestError {
    /// The status byte the guest gets, `None` if it cannot be told.
    pub fn status(&self) -> Option<u8> {
        match self {
            Self::NoStatus => None,
            Self::Unsupported { .. } => Some(STATUS_UNSUPP),
            _ => Some(STATUS_IOERR),
        }
    }
}

/// The header fields we use: (type, sector). `reserved` is ignored.
pub fn decode_header(raw: &[u8; HEADER_SIZE]) -> (u32, u64) {
    let mut t = [0u8; 4];
    t.copy_from_slice(&raw[0..4]);
    let mut s = [0u8; 8];
    s.copy_from_slice(&raw[8..16]);
    (u32::from_le_bytes(t), u64::from_le_bytes(s))
}

impl Request {
    /// Check a request whose chain has `readable` device-readable and
    /// `writable` device-writable bytes and whose header (the first 16
    /// readable bytes, when there are that many) is `header`.
    pub fn parse(
        header: Option<&[u8; HEADER_SIZE]>,
        readable: usize,
        writable: usize,
        disk: DiskGeometry,
    ) -> Result<Self, RequestError> {
        // The status byte is the last writable byte: without one the guest
        // cannot be told anything.
        let status_offset = writable.checked_sub(1).ok_or(RequestError::NoStatus)?;
        let header = match header {
            Some(h) if readable >= HEADER_SIZE => h,
            _ => return Err(RequestError::ShortHeader { len: readable }),
        };
        let (type_, sector) = decode_header(header);
        // Bytes besides the header and the status byte.
        let extra_readable = readable - HEADER_SIZE;
        let extra_writable = status_offset;
        let no_data = |what: &'static str, len: usize| {
            if len == 0 {
                Ok(())
            } else {
                Err(RequestError::UnexpectedData { what, len })
            }
        };
        let (kind, len) = match type_ {
            b::VIRTIO_BLK_T_IN => {
                no_data("read (readable)", extra_readable)?;
                (Kind::Read, extra_writable)
            }
            b::VIRTIO_BLK_T_OUT => {
                no_data("write (writable)", extra_writable)?;
                if disk.read_only {
                    return Err(RequestError::ReadOnly);
                }
                (Kind::Write, extra_readable)
            }
            b::VIRTIO_BLK_T_FLUSH => {
                no_data("flush", extra_readable + extra_writable)?;
                return Ok(Self {
                    kind: Kind::Flush,
                    sector: 0,
                    len: 0,
                    status_offset,
                });
            }
            b::VIRTIO_BLK_T_GET_ID => {
                no_data("get-id (readable)", extra_readable)?;
                return Ok(Self {
                    kind: Kind::GetId,
                    sector: 0,
                    len: extra_writable,
                    status_offset,
                });
            }
            type_ => return Err(RequestError::Unsupported { type_ }),
        };
        check_range(sector, len, disk.capacity)?;
        Ok(Self {
            kind,
            sector,
            len,
            status_offset,
        })
    }

    /// Byte offset on the disk of the first sector (in range: checked).
    pub fn offset(&self) -> u64 {
        self.sector * SECTOR_SIZE
    }
}

/// `len` bytes at `sector` must be whole sectors within `capacity`.
fn check_range(sector: u64, len: usize, capacity: u64) -> Result<(), RequestError> {
    if len as u64 % SECTOR_SIZE != 0 {
        return Err(RequestError::Unaligned { len });
    }
    let sectors = len as u64 / SECTOR_SIZE;
    match sector.checked_add(sectors) {
        Some(end) if end <= capacity => Ok(()),
        _ => Err(RequestError::OutOfRange {
            sector,
            sectors,
            capacity,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISK: DiskGeometry = DiskGeometry {
        capacity: 100,
        read_only: false,
    };
    const RO: DiskGeometry = DiskGeometry {
        capacity: 100,
        read_only: true,
    };

    fn hdr(type_: u32, sector: u64) -> [u8; HEADER_SIZE] {
        let mut h = [0u8; HEADER_SIZE];
        h[0..4].copy_from_slice(&type_.to_le_bytes());
        h[4..8].copy_from_slice(&0xdead_beefu32.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        h
    }

    fn parse(
        t: u32,
        sector: u64,
        r: usize,
        w: usize,
        d: DiskGeometry,
    ) -> Result<Request, RequestError> {
        Request::parse(Some(&hdr(t, sector)), r, w, d)
    }

    #[test]
    fn test_request_parse_read_write_flush_get_id() {
        let r = parse(b::VIRTIO_BLK_T_IN, 3, 16, 1025, DISK).unwrap();
        assert_eq!(
            r,
            Request {
                kind: Kind::Read,
                sector: 3,
                len: 1024,
                status_offset: 1024
            }
        );
        assert_eq!(r.offset(), 1536);
        let w = parse(b::VIRTIO_BLK_T_OUT, 99, 16 + 512, 1, DISK).unwrap();
        assert_eq!(
            (w.kind, w.sector, w.len, w.status_offset),
            (Kind::Write, 99, 512, 0)
        );
        let f = parse(b::VIRTIO_BLK_T_FLUSH, 12345, 16, 1, RO).unwrap();
        assert_eq!((f.kind, f.len), (Kind::Flush, 0));
        let g = parse(b::VIRTIO_BLK_T_GET_ID, 0, 16, 21, RO).unwrap();
        assert_eq!((g.kind, g.len, g.status_offset), (Kind::GetId, 20, 20));
        // A zero-length read is allowed (the kernel never sends one, but it is harmless).
        assert_eq!(parse(b::VIRTIO_BLK_T_IN, 100, 16, 1, DISK).unwrap().len, 0);
    }

    #[test]
    fn test_request_parse_refusals_and_their_status() {
        let cases: Vec<(Result<Request, RequestError>, RequestError, Option<u8>)> = vec![
            (
                parse(b::VIRTIO_BLK_T_IN, 0, 16, 0, DISK),
                RequestError::NoStatus,
                None,
            ),
            (
                Request::parse(None, 8, 513, DISK),
                RequestError::ShortHeader { len: 8 },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_IN, 0, 15, 513, DISK),
                RequestError::ShortHeader { len: 15 },
                Some(STATUS_IOERR),
            ),
            (
                parse(7, 0, 16, 1, DISK),
                RequestError::Unsupported { type_: 7 },
                Some(STATUS_UNSUPP),
            ),
            (
                parse(b::VIRTIO_BLK_T_DISCARD, 0, 32, 1, DISK),
                RequestError::Unsupported {
                    type_: b::VIRTIO_BLK_T_DISCARD,
                },
                Some(STATUS_UNSUPP),
            ),
            (
                parse(b::VIRTIO_BLK_T_IN, 0, 16, 100, DISK),
                RequestError::Unaligned { len: 99 },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_IN, 100, 16, 513, DISK),
                RequestError::OutOfRange {
                    sector: 100,
                    sectors: 1,
                    capacity: 100,
                },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_IN, u64::MAX, 16, 513, DISK),
                RequestError::OutOfRange {
                    sector: u64::MAX,
                    sectors: 1,
                    capacity: 100,
                },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_OUT, 0, 16 + 512, 1, RO),
                RequestError::ReadOnly,
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_OUT, 0, 16 + 512, 2, DISK),
                RequestError::UnexpectedData {
                    what: "write (writable)",
                    len: 1,
                },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_IN, 0, 16 + 512, 513, DISK),
                RequestError::UnexpectedData {
                    what: "read (readable)",
                    len: 512,
                },
                Some(STATUS_IOERR),
            ),
            (
                parse(b::VIRTIO_BLK_T_FLUSH, 0, 16, 2, DISK),
                RequestError::UnexpectedData {
                    what: "flush",
                    len: 1,
                },
                Some(STATUS_IOERR),
            ),
        ];
        for (got, want, status) in cases {
            assert_eq!(got, Err(want.clone()), "{want}");
            assert_eq!(want.status(), status, "{want}");
        }
    }

    #[test]
    fn test_request_range_end_of_disk_and_huge_lengths() {
        // The last sector is readable; one past it is not.
        assert!(parse(b::VIRTIO_BLK_T_IN, 99, 16, 513, DISK).is_ok());
        assert!(check_range(0, 100 * 512, 100).is_ok());
        assert!(check_range(1, 100 * 512, 100).is_err());
        // sector + sectors wraps around u64: refused, not wrapped.
        assert!(check_range(u64::MAX - 1, 1024, u64::MAX).is_err());
        assert!(check_range(u64::MAX - 2, 1024, u64::MAX).is_ok());
        assert!(check_range(0, 0, 0).is_ok());
    }
}
