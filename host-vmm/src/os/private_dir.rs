//! Directories that must be the caller's alone: the runtime root and each sandbox's
//! directory. Created 0700 whatever the umask; an existing one is used only if it is a real
//! directory (not a symlink) owned by the caller with no group or world access.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The mode a private directory has.
pub const PRIVATE_DIR_MODE: u32 = 0o700;

/// Why a directory cannot be used as a private one.
#[derive(Debug, thiserror::Error)]
pub enum PrivateDirError {
    #[error("{}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: is a symlink; required: a directory owned by uid {want_uid} with mode 0700", path.display())]
    Symlink { path: PathBuf, want_uid: u32 },
    #[error("{}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    #[error(
        "{} is owned by uid {uid} with mode {mode:04o}; required: owned by uid {want_uid} (the \
         caller) with no group or world access (mode 0700): remove it, or `chown {want_uid} \
         {path}` and `chmod 700 {path}` if it is yours",
        path.display(),
        path = path.display()
    )]
    NotPrivate {
        path: PathBuf,
        uid: u32,
        mode: u32,
        want_uid: u32,
    },
}

impl PrivateDirError {
    /// The directory does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PrivateDirError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// The caller's effective uid.
pub fn euid() -> u32 {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() }
}

fn open_dir(path: &Path) -> Result<File, PrivateDirError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|source| match source.raw_os_error() {
            // O_NOFOLLOW | O_DIRECTORY on a symlink gives ELOOP or ENOTDIR: look closer.
            Some(libc::ELOOP | libc::ENOTDIR) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => PrivateDirError::Symlink {
                    path: path.to_path_buf(),
                    want_uid: euid(),
                },
                _ => PrivateDirError::NotADirectory {
                    path: path.to_path_buf(),
                },
            },
            _ => PrivateDirError::Io {
                path: path.to_path_buf(),
                op: "cannot open the directory",
                source,
            },
        })
}

/// The owner and mode rule, on an open directory.
fn check_open(dir: &File, path: &Path) -> Result<(), PrivateDirError> {
    let meta = dir.metadata().map_err(|source| PrivateDirError::Io {
        path: path.to_path_buf(),
        op: "cannot stat the directory",
        source,
    })?;
    let mode = meta.mode() & 0o7777;
    let want_uid = euid();
    if meta.uid() != want_uid || mode & 0o077 != 0 {
        return Err(PrivateDirError::NotPrivate {
            path: path.to_path_buf(),
            uid: meta.uid(),
            mode,
            want_uid,
        });
    }
    Ok(())
}

/// Checks that `path` is a private directory of the caller.
pub fn check_private_dir(path: &Path) -> Result<(), PrivateDirError> {
    check_open(&open_dir(path)?, path)
}

/// Creates `path` (its parent must exist) with mode 0700, or checks an existing one.
/// Returns whether this call created it.
pub fn ensure_private_dir(path: &Path) -> Result<bool, PrivateDirError> {
    let created = match DirBuilder::new().mode(PRIVATE_DIR_MODE).create(path) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(source) => {
            return Err(PrivateDirError::Io {
                path: path.to_path_buf(),
                op: "cannot create the directory",
                source,
            })
        }
    };
    let dir = open_dir(path)?;
    if created {
        // The umask may have taken the owner's bits too: set the mode exactly.
        dir.set_permissions(std::fs::Permissions::from_mode(PRIVATE_DIR_MODE))
            .map_err(|source| PrivateDirError::Io {
                path: path.to_path_buf(),
                op: "cannot set mode 0700",
                source,
            })?;
    }
    check_open(&dir, path)?;
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().mode() & 0o7777
    }

    /// The umask is process-wide: each case runs in a forked child (not a re-exec of the
    /// test binary, which qemu-user cannot do).
    #[test]
    fn test_private_dir_created_0700_under_umask_0_and_0777() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        for (umask, name) in [(0o000, "a"), (0o777, "b"), (0o022, "c")] {
            let path = tmp.as_path().join(name);
            // SAFETY: the child sets its umask, creates the directory (glibc's malloc is
            // fork-safe) and calls _exit: it never returns into the harness.
            let pid = unsafe { libc::fork() };
            assert!(pid >= 0);
            if pid == 0 {
                // SAFETY: umask takes a plain integer.
                unsafe { libc::umask(umask) };
                let ok = ensure_private_dir(&path).is_ok_and(|created| created);
                // SAFETY: ends the forked child without running the parent's destructors.
                unsafe { libc::_exit(i32::from(!ok)) };
            }
            let mut status = 0;
            // SAFETY: waiting for our own child with a valid status pointer.
            assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
            assert_eq!(status, 0, "umask {umask:o}");
            assert_eq!(mode(&path), 0o700, "umask {umask:o}");
        }
    }

    #[test]
    fn test_existing_dir_with_group_or_world_access_refused() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join("open");
        std::fs::create_dir(&path).unwrap();
        for bad in [0o777, 0o750, 0o701, 0o1777] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let err = ensure_private_dir(&path).unwrap_err();
            let text = err.to_string();
            assert!(
                text.contains(&format!("with mode {bad:04o}"))
                    && text.contains(&format!("owned by uid {}", euid()))
                    && text.contains("mode 0700")
                    && text.contains(&path.display().to_string()),
                "{text}"
            );
            // Not "fixed" behind the caller's back.
            assert_eq!(mode(&path), bad);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(!ensure_private_dir(&path).unwrap());
        check_private_dir(&path).unwrap();
    }

    #[test]
    fn test_dir_of_another_owner_refused() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join("theirs");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).unwrap();
        let other = euid().wrapping_add(4242);
        if std::os::unix::fs::chown(&path, Some(other), None).is_err() {
            // Not root: cannot give it away; the mode tests cover the rest.
            return;
        }
        let err = check_private_dir(&path).unwrap_err();
        assert!(
            matches!(err, PrivateDirError::NotPrivate { uid, .. } if uid == other),
            "{err}"
        );
        assert!(err.to_string().contains(&format!("owned by uid {other}")));
    }

    #[test]
    fn test_symlink_and_file_refused() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let real = tmp.as_path().join("real");
        ensure_private_dir(&real).unwrap();
        let link = tmp.as_path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(matches!(
            ensure_private_dir(&link),
            Err(PrivateDirError::Symlink { .. })
        ));
        let file = tmp.as_path().join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(matches!(
            check_private_dir(&file),
            Err(PrivateDirError::NotADirectory { .. })
        ));
        assert!(check_private_dir(&tmp.as_path().join("none"))
            .unwrap_err()
            .is_not_found());
    }
}
