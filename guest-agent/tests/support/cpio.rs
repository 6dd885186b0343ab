//! A reader for cpio "newc" archives (the format the kernel unpacks as initramfs).
//!
//! Each entry: a 110-byte ASCII header (`070701` then 13 eight-digit hex fields), the NUL
//! terminated name padded so header + name is a multiple of 4, then the data padded to 4.
//! The archive ends with an entry named `TRAILER!!!`.

use std::fmt;

pub const S_IFMT: u32 = 0o170_000;
pub const S_IFREG: u32 = 0o100_000;
pub const S_IFDIR: u32 = 0o040_000;
pub const S_IFCHR: u32 = 0o020_000;

#[derive(Debug)]
pub struct Entry<'a> {
    pub name: String,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev_major: u32,
    pub rdev_minor: u32,
    pub data: &'a [u8],
}

impl Entry<'_> {
    pub fn file_type(&self) -> u32 {
        self.mode & S_IFMT
    }

    pub fn permissions(&self) -> u32 {
        self.mode & 0o7777
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct CpioError(pub String);

impl fmt::Display for CpioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

const HEADER_LEN: usize = 110;
const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

fn align4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn hex_field(header: &[u8], index: usize, at: usize) -> Result<u32, CpioError> {
    let start = 6 + index * 8;
    let text = std::str::from_utf8(&header[start..start + 8])
        .map_err(|_| CpioError(format!("non-ASCII header field at offset {at}")))?;
    u32::from_str_radix(text, 16)
        .map_err(|_| CpioError(format!("bad hex field {text:?} at offset {at}")))
}

/// Parses every entry up to the trailer.
pub fn parse(archive: &[u8]) -> Result<Vec<Entry<'_>>, CpioError> {
    let mut entries = Vec::new();
    let mut pos = 0;
    loop {
        let header = archive
            .get(pos..pos + HEADER_LEN)
            .ok_or_else(|| CpioError(format!("truncated header at offset {pos} (no trailer)")))?;
        if &header[..6] != MAGIC {
            return Err(CpioError(format!(
                "bad magic at offset {pos}: not cpio newc"
            )));
        }
        let field = |i| hex_field(header, i, pos);
        // Fields: ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
        // namesize check.
        let (mode, uid, gid) = (field(1)?, field(2)?, field(3)?);
        let file_size = field(6)? as usize;
        let (rdev_major, rdev_minor) = (field(9)?, field(10)?);
        let name_size = field(11)? as usize;
        let name_start = pos + HEADER_LEN;
        let name_bytes = archive
            .get(name_start..name_start + name_size)
            .ok_or_else(|| CpioError(format!("truncated name at offset {name_start}")))?;
        let name = match name_bytes.split_last() {
            Some((0, name)) => String::from_utf8_lossy(name).into_owned(),
            _ => {
                return Err(CpioError(format!(
                    "name at {name_start} not NUL-terminated"
                )))
            }
        };
        let data_start = align4(name_start + name_size);
        if name == TRAILER {
            return Ok(entries);
        }
        let data = archive
            .get(data_start..data_start + file_size)
            .ok_or_else(|| CpioError(format!("truncated data of {name}")))?;
        pos = align4(data_start + file_size);
        entries.push(Entry {
            name,
            mode,
            uid,
            gid,
            rdev_major,
            rdev_minor,
            data,
        });
    }
}

#[cfg(test)]
pub fn write_entry(out: &mut Vec<u8>, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        1,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(MAGIC);
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    out.resize(align4(out.len()), 0);
    out.extend_from_slice(data);
    out.resize(align4(out.len()), 0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_round_trip() {
        let mut archive = Vec::new();
        write_entry(&mut archive, "dev", S_IFDIR | 0o755, (0, 0), b"");
        write_entry(&mut archive, "dev/console", S_IFCHR | 0o600, (5, 1), b"");
        write_entry(&mut archive, "init", S_IFREG | 0o755, (0, 0), b"hello");
        write_entry(&mut archive, TRAILER, 0, (0, 0), b"");
        let entries = parse(&archive).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["dev", "dev/console", "init"]);
        assert_eq!(entries[1].file_type(), S_IFCHR);
        assert_eq!((entries[1].rdev_major, entries[1].rdev_minor), (5, 1));
        assert_eq!(entries[2].permissions(), 0o755);
        assert_eq!(entries[2].data, b"hello");
    }

    #[test]
    fn test_parse_rejects_missing_trailer_and_bad_magic() {
        let mut archive = Vec::new();
        write_entry(&mut archive, "init", S_IFREG | 0o755, (0, 0), b"x");
        assert!(parse(&archive).unwrap_err().0.contains("no trailer"));
        assert!(parse(b"070707garbage").unwrap_err().0.contains("truncated"));
        let mut bad = archive.clone();
        bad[..6].copy_from_slice(b"070707");
        assert!(parse(&bad).unwrap_err().0.contains("bad magic"));
    }
}
