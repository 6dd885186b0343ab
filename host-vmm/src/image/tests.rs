//! Image building against the real `mkfs.erofs` (these tests fail, with
//! the reason, where erofs-utils is not installed).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use vmm_sys_util::tempdir::TempDir;

use super::*;

fn require_mkfs() {
    let ok = Command::new(mkfs::MKFS_EROFS).arg("--help").output();
    assert!(
        ok.is_ok(),
        "{} is not installed (Debian erofs-utils; .ci/install-deps installs it)",
        mkfs::MKFS_EROFS
    );
}

fn rootfs() -> TempDir {
    let d = TempDir::new().unwrap();
    let p = d.as_path();
    std::fs::create_dir_all(p.join("bin")).unwrap();
    std::fs::create_dir_all(p.join("etc")).unwrap();
    std::fs::write(p.join("bin/tool"), b"#!/bin/sh\necho hi\n").unwrap();
    std::os::unix::fs::symlink("tool", p.join("bin/alias")).unwrap();
    std::fs::write(p.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    std::os::unix::fs::chown(p.join("etc/passwd"), Some(1000), Some(1001)).unwrap();
    // An old mtime the image must keep.
    let old = std::fs::File::options()
        .write(true)
        .open(p.join("bin/tool"))
        .unwrap();
    old.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000))
        .unwrap();
    d
}

fn images(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("images"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".erofs")
        })
        .count()
}

#[test]
fn test_rootfs_image_cache_hit_does_not_rebuild() {
    require_mkfs();
    let src = rootfs();
    let cache = TempDir::new().unwrap();
    let first = cached_image(src.as_path(), cache.as_path()).unwrap();
    assert!(first.built);
    let mtime = std::fs::metadata(&first.path).unwrap().mtime_nsec();
    let again = cached_image(src.as_path(), cache.as_path()).unwrap();
    assert_eq!(
        again,
        CachedImage {
            path: first.path.clone(),
            built: false
        }
    );
    assert_eq!(std::fs::metadata(&again.path).unwrap().mtime_nsec(), mtime);
    assert_eq!(
        rootfs_image(src.as_path(), cache.as_path()).unwrap(),
        first.path
    );
    assert_eq!(images(cache.as_path()), 1);
    let mode = std::fs::metadata(&first.path).unwrap().mode();
    assert_eq!(mode & 0o777, 0o444);
}

#[test]
fn test_rootfs_image_changed_file_gives_new_image() {
    require_mkfs();
    let src = rootfs();
    let cache = TempDir::new().unwrap();
    let a = rootfs_image(src.as_path(), cache.as_path()).unwrap();
    std::fs::write(
        src.as_path().join("etc/passwd"),
        b"root:x:0:0::/root:/bin/ash\n",
    )
    .unwrap();
    let b = rootfs_image(src.as_path(), cache.as_path()).unwrap();
    assert_ne!(a, b);
    assert!(a.exists() && b.exists());
    assert_eq!(images(cache.as_path()), 2);
}

#[test]
fn test_rootfs_image_is_reproducible_and_keeps_owners_and_mtimes() {
    require_mkfs();
    let src = rootfs();
    let c1 = TempDir::new().unwrap();
    let c2 = TempDir::new().unwrap();
    let a = rootfs_image(src.as_path(), c1.as_path()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = rootfs_image(src.as_path(), c2.as_path()).unwrap();
    assert_eq!(
        std::fs::read(&a).unwrap(),
        std::fs::read(&b).unwrap(),
        "same bytes"
    );
    // Unpack it and compare.
    let out = TempDir::new().unwrap();
    let target = out.as_path().join("x");
    let st = Command::new("fsck.erofs")
        .arg(format!("--extract={}", target.display()))
        .arg(&a)
        .output()
        .expect("fsck.erofs (erofs-utils) to unpack the image");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let m = std::fs::metadata(target.join("etc/passwd")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1001));
    let m = std::fs::metadata(target.join("bin/tool")).unwrap();
    assert_eq!(m.mtime(), 1_600_000_000);
    assert_eq!(
        std::fs::read_link(target.join("bin/alias")).unwrap(),
        Path::new("tool")
    );
    assert_eq!(
        std::fs::read(target.join("bin/tool")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
}

#[test]
fn test_rootfs_image_concurrent_builds_of_one_key_build_once() {
    require_mkfs();
    let src = rootfs();
    let cache = TempDir::new().unwrap();
    let results: Vec<CachedImage> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4)
            .map(|_| s.spawn(|| cached_image(src.as_path(), cache.as_path()).unwrap()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.built).count(), 1, "{results:?}");
    assert!(results.windows(2).all(|w| w[0].path == w[1].path));
    assert_eq!(images(cache.as_path()), 1);
    let leftovers = std::fs::read_dir(cache.as_path().join("images"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp.")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn test_rootfs_image_missing_dir_is_a_clear_error() {
    let cache = TempDir::new().unwrap();
    let missing = cache.as_path().join("no-such-rootfs");
    let e = rootfs_image(&missing, cache.as_path()).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no-such-rootfs") && msg.contains("rootfs directory"),
        "{msg}"
    );
}

#[test]
fn test_mkfs_error_names_dir_and_stderr() {
    require_mkfs();
    let src = rootfs();
    let e = mkfs::mkfs_erofs(
        src.as_path(),
        Path::new("/nonexistent-dir/x.erofs"),
        0,
        "00000000-0000-0000-0000-000000000000",
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&src.as_path().display().to_string()), "{msg}");
    assert!(msg.contains("mkfs.erofs failed"), "{msg}");
}

#[test]
fn test_default_cache_dir_precedence() {
    use std::path::PathBuf;
    let p = |s: &str| Some(PathBuf::from(s));
    assert_eq!(
        cache_dir_from(p("/c"), p("/h")).unwrap(),
        PathBuf::from("/c")
    );
    assert_eq!(
        cache_dir_from(p(""), p("/h")).unwrap(),
        PathBuf::from("/h/.cache/host-vmm")
    );
    assert!(matches!(
        cache_dir_from(None, None),
        Err(ImageError::NoCacheDir)
    ));
}

/// Finding 6: a build killed half-way leaves its temporary; the next build (of any key)
/// removes it because its lock is free, and leaves alone one whose builder still holds it.
#[test]
fn test_interrupted_build_temporaries_removed_when_their_lock_is_free() {
    require_mkfs();
    let src = rootfs();
    let cache = TempDir::new().unwrap();
    let images_dir = cache.as_path().join("images");
    std::fs::create_dir_all(&images_dir).unwrap();
    let dead = images_dir.join("00ff.erofs.tmp.4242.0");
    std::fs::write(&dead, b"half an image").unwrap();
    let live = images_dir.join("00fe.erofs.tmp.4243.0");
    std::fs::write(&live, b"being built").unwrap();
    let holder = std::fs::File::open(&live).unwrap();
    crate::os::flock::lock(&holder, crate::os::flock::LockKind::Exclusive).unwrap();
    let built = cached_image(src.as_path(), cache.as_path()).unwrap();
    assert!(built.built);
    assert!(!dead.exists(), "the dead build's temporary is left");
    assert!(live.exists(), "a live build's temporary was removed");
    drop(holder);
    // A child another test forks meanwhile inherits the holder's descriptor (and so its
    // lock) until it execs or exits: give the lock a moment to be free everywhere.
    let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut removed = cache::remove_stale_temporaries(&images_dir);
    while removed == 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(100));
        removed = cache::remove_stale_temporaries(&images_dir);
    }
    assert_eq!(removed, 1);
    assert!(!live.exists());
}
