//! The image cache: `<cache>/images/<key>.erofs`, built under a per-key
//! `flock` into a temporary name and renamed into place, so a reader
//! never sees a partial image and two builds of the same key do not race
//! (the second waits, then finds the image).

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use super::key::tree_key;
use super::mkfs::{mkfs_erofs, uuid_from_hash};
use super::ImageError;

/// A cached image and whether this call built it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    pub path: PathBuf,
    pub built: bool,
}

/// The image of `dir` in `cache_dir`, built if missing.
pub fn cached_image(dir: &Path, cache_dir: &Path) -> Result<CachedImage, ImageError> {
    let images = cache_dir.join("images");
    std::fs::create_dir_all(&images).map_err(|source| ImageError::Cache {
        path: images.clone(),
        source,
    })?;
    let key = tree_key(dir)?;
    let path = images.join(format!("{}.erofs", key.hash));
    if path.exists() {
        return Ok(CachedImage { path, built: false });
    }
    let lock_path = images.join(format!("{}.lock", key.hash));
    let _lock = lock_exclusive(&lock_path)?;
    // Someone else may have built it while we waited.
    if path.exists() {
        return Ok(CachedImage { path, built: false });
    }
    // Temporaries of this key are from builds that died: we hold the lock.
    remove_stale_temporaries(&images, &key.hash);
    let tmp = images.join(format!("{}.erofs.tmp.{}", key.hash, std::process::id()));
    let started = std::time::Instant::now();
    let result = mkfs_erofs(dir, &tmp, key.max_mtime, &uuid_from_hash(&key.hash)).and_then(|()| {
        // The tree must not have changed under mkfs: the image would
        // not be the key's.
        let after = tree_key(dir)?;
        if after.hash != key.hash {
            return Err(ImageError::Changed {
                dir: dir.to_path_buf(),
            });
        }
        finish(&tmp, &path)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result?;
    tracing::info!(
        dir = %dir.display(),
        image = %path.display(),
        entries = key.entries,
        ms = started.elapsed().as_millis() as u64,
        "rootfs image built"
    );
    Ok(CachedImage { path, built: true })
}

/// Make the temporary image read-only and durable, then rename it.
fn finish(tmp: &Path, path: &Path) -> Result<(), ImageError> {
    let cache_err = |source| ImageError::Cache {
        path: tmp.to_path_buf(),
        source,
    };
    let f = File::open(tmp).map_err(cache_err)?;
    f.sync_all().map_err(cache_err)?;
    std::fs::set_permissions(tmp, std::os::unix::fs::PermissionsExt::from_mode(0o444))
        .map_err(cache_err)?;
    std::fs::rename(tmp, path).map_err(|source| ImageError::Cache {
        path: path.to_path_buf(),
        source,
    })
}

fn remove_stale_temporaries(images: &Path, hash: &str) {
    let prefix = format!("{hash}.erofs.tmp.");
    let Ok(entries) = std::fs::read_dir(images) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(&prefix) {
            tracing::debug!(path = %e.path().display(), "removing a stale temporary image");
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// An exclusive `flock` on `path` (created if missing), held until the
/// returned file is dropped. Lock files stay: removing one could let two
/// builders lock different inodes of the same name.
fn lock_exclusive(path: &Path) -> Result<File, ImageError> {
    let lock_err = |source| ImageError::Lock {
        path: path.to_path_buf(),
        source,
    };
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(lock_err)?;
    loop {
        // SAFETY: flock on a file descriptor we own, with no pointers involved.
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        if rc == 0 {
            return Ok(f);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(lock_err(e));
        }
    }
}
