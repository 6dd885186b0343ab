//! The cache key of a directory tree: SHA-256 over every entry's
//! metadata, walked in a fixed (byte-sorted) order without following
//! symlinks.
//!
//! Per entry: the relative path, the type, the permission bits, uid and
//! gid, and by type: regular files their size, mtime and ctime (to the
//! nanosecond), inode and device number; symlinks their target; device
//! nodes their rdev. Directories their mtime.
//!
//! Not the file contents: hashing 54 MB of Python library costs about as
//! much as building its image (see the module doc of `image`), which
//! would make a cache hit no cheaper than a miss. Metadata is what `git`
//! and `make` trust too; the ctime makes it safe against tools that put
//! an old mtime back (ctime cannot be set from userspace), and the
//! inode and device against a file replaced by another of the same size
//! and times. The price: a copy of the same tree gets a different key
//! (a miss, never a wrong hit).

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::ImageError;

/// Bumped when the key's input or the image format options change, so
/// old cache entries are not reused.
pub const KEY_VERSION: &[u8] = b"host-vmm rootfs image v1: erofs, uncompressed";

/// What walking the tree found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeKey {
    /// Hex SHA-256.
    pub hash: String,
    /// The newest mtime (seconds, rounded up) in the tree: the image's
    /// build time, so mkfs clamps no file's mtime.
    pub max_mtime: i64,
    /// Entries hashed.
    pub entries: u64,
}

/// Hash the tree at `dir` (which must be a directory).
pub fn tree_key(dir: &Path) -> Result<TreeKey, ImageError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|source| ImageError::Dir {
        dir: dir.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(ImageError::NotADirectory {
            dir: dir.to_path_buf(),
        });
    }
    let mut w = Walk {
        hasher: Sha256::new(),
        max_mtime: 0,
        entries: 0,
        root: dir,
    };
    w.hasher.update(KEY_VERSION);
    w.entry(Path::new(""), dir, &meta)?;
    w.dir(Path::new(""), dir)?;
    let hash = w.hasher.finalize();
    Ok(TreeKey {
        hash: hash.iter().map(|b| format!("{b:02x}")).collect(),
        max_mtime: w.max_mtime,
        entries: w.entries,
    })
}

struct Walk<'a> {
    hasher: Sha256,
    max_mtime: i64,
    entries: u64,
    root: &'a Path,
}

impl Walk<'_> {
    fn io_err(&self, path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Walk {
            dir: self.root.to_path_buf(),
            path: path.to_path_buf(),
            source,
        }
    }

    fn dir(&mut self, rel: &Path, abs: &Path) -> Result<(), ImageError> {
        let mut names: Vec<_> = std::fs::read_dir(abs)
            .map_err(|e| self.io_err(abs, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.io_err(abs, e))?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            let rel: PathBuf = rel.join(&name);
            let abs = abs.join(&name);
            let meta = std::fs::symlink_metadata(&abs).map_err(|e| self.io_err(&abs, e))?;
            self.entry(&rel, &abs, &meta)?;
            if meta.is_dir() {
                self.dir(&rel, &abs)?;
            }
        }
        Ok(())
    }

    fn field(&mut self, bytes: &[u8]) {
        self.hasher.update((bytes.len() as u64).to_le_bytes());
        self.hasher.update(bytes);
    }

    fn num(&mut self, v: u64) {
        self.hasher.update(v.to_le_bytes());
    }

    fn entry(&mut self, rel: &Path, abs: &Path, m: &Metadata) -> Result<(), ImageError> {
        self.entries += 1;
        self.field(rel.as_os_str().as_bytes());
        let ft = m.file_type();
        let kind: u8 = if ft.is_dir() {
            b'd'
        } else if ft.is_file() {
            b'f'
        } else if ft.is_symlink() {
            b'l'
        } else if ft.is_block_device() {
            b'b'
        } else if ft.is_char_device() {
            b'c'
        } else if ft.is_fifo() {
            b'p'
        } else {
            b's'
        };
        self.hasher.update([kind]);
        self.num(u64::from(m.mode()));
        self.num(u64::from(m.uid()));
        self.num(u64::from(m.gid()));
        // Seconds rounded up, so a file's sub-second mtime is not clamped.
        let mtime_up = m.mtime().saturating_add(i64::from(m.mtime_nsec() > 0));
        self.max_mtime = self.max_mtime.max(mtime_up);
        self.num(m.mtime() as u64);
        self.num(m.mtime_nsec() as u64);
        match kind {
            b'f' => {
                self.num(m.size());
                self.num(m.ctime() as u64);
                self.num(m.ctime_nsec() as u64);
                self.num(m.ino());
                self.num(m.dev());
                self.num(m.nlink());
            }
            b'l' => {
                let target = std::fs::read_link(abs).map_err(|e| self.io_err(abs, e))?;
                self.field(target.as_os_str().as_bytes());
            }
            b'b' | b'c' => self.num(m.rdev()),
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> vmm_sys_util::tempdir::TempDir {
        let d = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let p = d.as_path();
        std::fs::create_dir(p.join("bin")).unwrap();
        std::fs::write(p.join("bin/sh"), b"#!fake").unwrap();
        std::os::unix::fs::symlink("sh", p.join("bin/ash")).unwrap();
        std::fs::write(p.join("etc"), b"x").unwrap();
        d
    }

    #[test]
    fn test_tree_key_same_tree_same_key() {
        let d = tree();
        let a = tree_key(d.as_path()).unwrap();
        let b = tree_key(d.as_path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.entries, 5);
        assert_eq!(a.hash.len(), 64);
    }

    #[test]
    fn test_tree_key_changes_with_content_mode_link_and_new_files() {
        let d = tree();
        let p = d.as_path();
        let mut seen = vec![tree_key(p).unwrap().hash];
        let mut check = |what: &str| {
            let k = tree_key(p).unwrap().hash;
            assert!(!seen.contains(&k), "{what}: key did not change");
            seen.push(k);
        };
        // Same size, new content: mtime/ctime move.
        std::fs::write(p.join("etc"), b"y").unwrap();
        check("content");
        std::fs::set_permissions(
            p.join("bin/sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        check("mode");
        std::fs::remove_file(p.join("bin/ash")).unwrap();
        std::os::unix::fs::symlink("other", p.join("bin/ash")).unwrap();
        check("symlink target");
        std::fs::create_dir(p.join("tmp")).unwrap();
        check("new directory");
    }

    #[test]
    fn test_tree_key_missing_or_not_a_directory_names_it() {
        let d = tree();
        let missing = d.as_path().join("nope");
        let e = tree_key(&missing).unwrap_err();
        assert!(matches!(e, ImageError::Dir { .. }));
        assert!(e.to_string().contains("nope"), "{e}");
        let e = tree_key(&d.as_path().join("etc")).unwrap_err();
        assert!(matches!(e, ImageError::NotADirectory { .. }), "{e}");
    }
}
