//! Running `mkfs.erofs` (Debian erofs-utils) on a directory.

use std::path::Path;
use std::process::Command;

use super::ImageError;
use crate::os::child::die_with_parent;

/// The tool (looked up in PATH).
pub const MKFS_EROFS: &str = "mkfs.erofs";

/// Build an uncompressed erofs image of `dir` at `out`. The tool is killed if host-vmm dies
/// (`PR_SET_PDEATHSIG`), so a `kill -9` leaves no `mkfs.erofs` running.
///
/// Reproducible: the build time is `build_time` (through
/// `SOURCE_DATE_EPOCH`; erofs-utils clamps newer mtimes to it, so the
/// caller passes the tree's newest mtime and none is changed) and the
/// filesystem UUID is `uuid`. Owners, modes and mtimes are kept as in the
/// directory: a container expects its files' owners, and tools compare
/// mtimes (Python checks a `.pyc` against its source's mtime: a fixed
/// timestamp for all files would make every import recompile).
pub fn mkfs_erofs(dir: &Path, out: &Path, build_time: i64, uuid: &str) -> Result<(), ImageError> {
    let output = die_with_parent(&mut Command::new(MKFS_EROFS))
        .env("SOURCE_DATE_EPOCH", build_time.max(0).to_string())
        .arg("--quiet")
        .arg(format!("-U{uuid}"))
        .arg(out)
        .arg(dir)
        .output()
        .map_err(|source| ImageError::Tool {
            tool: MKFS_EROFS,
            source,
        })?;
    if !output.status.success() {
        return Err(ImageError::Mkfs {
            tool: MKFS_EROFS,
            dir: dir.to_path_buf(),
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// A UUID string from the first 16 bytes of a hex hash.
pub fn uuid_from_hash(hash: &str) -> String {
    let h: String = hash
        .chars()
        .chain(std::iter::repeat('0'))
        .take(32)
        .collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_uuid_from_hash_format() {
        assert_eq!(
            uuid_from_hash("00112233445566778899aabbccddeeff0011"),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
        assert_eq!(uuid_from_hash("ab"), "ab000000-0000-0000-0000-000000000000");
    }
}
