//! Files host-vmm creates in its own directories: never through a symlink, never inherited
//! by a child (`O_NOFOLLOW | O_CLOEXEC`; std adds `O_CLOEXEC` to every open).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Creates `path`, which must not exist yet (`O_CREAT | O_EXCL`: a symlink or any file in
/// its place is `AlreadyExists`), readable and writable by the owner only (0600).
pub fn create_new_private(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Opens an existing `path` for reading; a symlink is refused (`ELOOP`).
pub fn open_nofollow(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Is `path` (not followed) the very file `file` is open on? False when it is gone.
pub fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Is `e` the error `O_NOFOLLOW` gives for a symlink?
pub fn is_symlink_error(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn test_create_new_private_is_0600_whatever_the_umask() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = dir.as_path().join("f");
        let mut f = create_new_private(&path).unwrap();
        f.write_all(b"x").unwrap();
        // The umask can only take bits away from 0600; none is added.
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o600, 0, "{mode:o}");
        assert_eq!(
            create_new_private(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
    }

    #[test]
    fn test_symlinks_are_not_followed() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let target = dir.as_path().join("victim");
        std::fs::write(&target, b"keep").unwrap();
        let link = dir.as_path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert_eq!(
            create_new_private(&link).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        assert!(is_symlink_error(&open_nofollow(&link).unwrap_err()));
        let mut s = String::new();
        open_nofollow(&target)
            .unwrap()
            .read_to_string(&mut s)
            .unwrap();
        assert_eq!(s, "keep");
    }
}
