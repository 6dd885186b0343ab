//! The image cache: `<cache>/images/<key>.erofs`, built under a per-key
//! `flock` into a temporary name and renamed into place, so a reader
//! never sees a partial image and two builds of the same key do not race
//! (the second waits, then finds the image).
//!
//! Each temporary (`<key>.erofs.tmp.<pid>.<n>`) is itself `flock`ed by its
//! builder for the whole build, so the lock says whether its builder lives:
//! every build first removes the temporaries whose lock it can take (left by
//! a build that was killed, of any key).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::os::file::{create_new_private, open_nofollow, same_file};
use crate::os::flock::{lock, try_lock, LockKind};

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
    remove_stale_temporaries(&images);
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
    // Held (locked) until the build ends: the next build knows it is not stale.
    let (tmp, _tmp_lock) = create_locked_temporary(&images, &key.hash)?;
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

/// Marks a temporary image's name.
const TMP_MARK: &str = ".erofs.tmp.";

/// A new temporary file for the image of `hash`, created (`O_EXCL | O_NOFOLLOW`) and locked.
fn create_locked_temporary(images: &Path, hash: &str) -> Result<(PathBuf, File), ImageError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let tmp = images.join(format!("{hash}{TMP_MARK}{}.{n}", std::process::id()));
        let cache_err = |source| ImageError::Cache {
            path: tmp.clone(),
            source,
        };
        let f = match create_new_private(&tmp) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            other => other.map_err(cache_err)?,
        };
        lock(&f, LockKind::Exclusive).map_err(cache_err)?;
        // A sweep may have taken the lock between the create and ours, and removed it.
        if same_file(&f, &tmp) {
            return Ok((tmp, f));
        }
    }
}

/// Removes the temporaries in `images` whose builder is gone (their lock is free).
pub fn remove_stale_temporaries(images: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(images) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        if !e.file_name().to_string_lossy().contains(TMP_MARK) {
            continue;
        }
        let path = e.path();
        let Ok(f) = open_nofollow(&path) else {
            continue;
        };
        // Ours to remove only while we hold its lock and it is still the file we locked.
        if try_lock(&f, LockKind::Exclusive).unwrap_or(false)
            && same_file(&f, &path)
            && std::fs::remove_file(&path).is_ok()
        {
            tracing::info!(path = %path.display(), "removed the temporary of an interrupted image build");
            removed += 1;
        }
    }
    removed
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
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(lock_err)?;
    lock(&f, LockKind::Exclusive).map_err(lock_err)?;
    Ok(f)
}
