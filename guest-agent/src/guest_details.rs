//! Facts about the guest the host asks for (`GetGuestDetails`): the memory block size (the
//! hotplug granularity), whether the kernel offers the memory `probe` file, and the kernel
//! release. Read from a memory sysfs directory given by the caller, so tests use a fake one.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Where the kernel describes memory blocks.
pub const MEMORY_SYSFS: &str = "/sys/devices/system/memory";

/// Longest `block_size_bytes` text we read (a u64 in hex is 16 digits).
const MAX_BLOCK_SIZE_TEXT: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum GuestDetailsError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: {text:?} is not a hexadecimal block size", path.display())]
    Parse { path: PathBuf, text: String },
}

/// Parses `block_size_bytes`: hexadecimal without `0x` (the kernel writes `8000000\n`), a
/// `0x` prefix tolerated. Zero is refused: no block is empty.
pub fn parse_block_size(text: &str) -> Option<u64> {
    let t = text.trim();
    let t = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(t, 16).ok().filter(|&v| v != 0)
}

/// The memory block size in bytes; `None` when the kernel has no memory hotplug sysfs.
pub fn read_block_size(memory_dir: &Path) -> Result<Option<u64>, GuestDetailsError> {
    let path = memory_dir.join("block_size_bytes");
    let text = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(GuestDetailsError::Read { path, source }),
    };
    let text = String::from_utf8_lossy(&text[..text.len().min(MAX_BLOCK_SIZE_TEXT)]).into_owned();
    match parse_block_size(&text) {
        Some(size) => Ok(Some(size)),
        None => Err(GuestDetailsError::Parse { path, text }),
    }
}

/// Does the kernel offer `<memory_dir>/probe` (memory hot-add by physical address)?
pub fn hotplug_probe_exists(memory_dir: &Path) -> bool {
    memory_dir.join("probe").exists()
}

/// The running kernel's release (`uname -r`).
pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_block_size_kernel_format() {
        assert_eq!(parse_block_size("8000000\n"), Some(128 << 20));
        assert_eq!(parse_block_size("0x8000000"), Some(128 << 20));
        assert_eq!(parse_block_size("ffffffffffffffff"), Some(u64::MAX));
    }

    #[test]
    fn test_parse_block_size_garbage_refused() {
        for t in [
            "",
            "\n",
            "0",
            "0x",
            "-1",
            "12 34",
            "1g",
            "10000000000000000",
            "８",
        ] {
            assert_eq!(parse_block_size(t), None, "{t:?}");
        }
    }

    #[test]
    fn test_read_block_size_missing_dir_is_none_and_bad_text_an_error() {
        let dir = std::env::temp_dir().join(format!("ga-details-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        assert!(matches!(read_block_size(&dir), Ok(None)));
        assert!(!hotplug_probe_exists(&dir));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("block_size_bytes"), "8000000\n").unwrap();
        assert_eq!(read_block_size(&dir).unwrap(), Some(128 << 20));
        fs::write(dir.join("block_size_bytes"), "nope").unwrap();
        assert!(matches!(
            read_block_size(&dir),
            Err(GuestDetailsError::Parse { .. })
        ));
        fs::write(dir.join("probe"), "").unwrap();
        assert!(hotplug_probe_exists(&dir));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_kernel_release_is_not_empty() {
        assert!(!kernel_release().is_empty());
    }
}
