//! `flock(2)` on an open file: the lock belongs to the open file description, so it lasts
//! until every descriptor of it is closed (or the process dies) and is never inherited
//! across exec (host-vmm's descriptors are `O_CLOEXEC`).

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Shared (readers) or exclusive (the owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Shared,
    Exclusive,
}

fn op(kind: LockKind) -> libc::c_int {
    match kind {
        LockKind::Shared => libc::LOCK_SH,
        LockKind::Exclusive => libc::LOCK_EX,
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    loop {
        // SAFETY: flock on a descriptor `file` owns; no pointers involved.
        if unsafe { libc::flock(file.as_raw_fd(), operation) } == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Takes the lock, waiting for it.
pub fn lock(file: &File, kind: LockKind) -> io::Result<()> {
    flock(file, op(kind))
}

/// Takes the lock if no one else holds a conflicting one: `Ok(true)` when taken,
/// `Ok(false)` when someone holds it.
pub fn try_lock(file: &File, kind: LockKind) -> io::Result<bool> {
    match flock(file, op(kind) | libc::LOCK_NB) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

/// Releases a lock taken through `file`.
pub fn unlock(file: &File) -> io::Result<()> {
    flock(file, libc::LOCK_UN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_flock_exclusive_excludes_until_closed() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = dir.as_path().join("l");
        let owner = File::create(&path).unwrap();
        lock(&owner, LockKind::Exclusive).unwrap();
        // A second open file description is a second locker, even in this process.
        let other = File::open(&path).unwrap();
        assert!(!try_lock(&other, LockKind::Shared).unwrap());
        assert!(!try_lock(&other, LockKind::Exclusive).unwrap());
        drop(owner);
        assert!(try_lock(&other, LockKind::Shared).unwrap());
        // Shared locks coexist; an exclusive one is refused while any is held.
        let third = File::open(&path).unwrap();
        assert!(try_lock(&third, LockKind::Shared).unwrap());
        let fourth = File::open(&path).unwrap();
        assert!(!try_lock(&fourth, LockKind::Exclusive).unwrap());
        unlock(&other).unwrap();
        assert!(!try_lock(&fourth, LockKind::Exclusive).unwrap());
        unlock(&third).unwrap();
        assert!(try_lock(&fourth, LockKind::Exclusive).unwrap());
    }
}
