//! A sandbox's liveness: the `pid` file in its runtime directory, locked (`flock`, exclusive)
//! by the host-vmm serving the sandbox for its whole life. The kernel drops the lock when that
//! process dies, however it dies, so a lock that can be taken means the owner is gone: no
//! guess from `/proc/<pid>` (a pid is reused; a lock is not).

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

pub use crate::os::file::same_file;
use crate::os::file::{create_new_private, open_nofollow};
use crate::os::flock::{lock, try_lock, unlock, LockKind};

/// The pid file's name in a runtime directory.
pub const PID_FILE: &str = "pid";

/// How often, and how long apart, an exclusive probe retries a held lock: a reader's
/// shared probe holds it for a moment, a live owner for good.
const EXCLUSIVE_TRIES: u32 = 10;
const EXCLUSIVE_PAUSE: Duration = Duration::from_millis(10);

/// The owner's pid file: created (it must be new), locked, holding this process's pid.
/// The lock lasts as long as this value, or the process.
#[derive(Debug)]
pub struct PidLock {
    /// Held, not used: the lock lives as long as this descriptor.
    _file: File,
}

impl PidLock {
    pub fn create(path: &Path) -> io::Result<Self> {
        let mut file = create_new_private(path)?;
        // A new file in a directory no one else uses yet: the lock is free.
        lock(&file, LockKind::Exclusive)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Self { _file: file })
    }
}

/// What a pid file says about its sandbox.
#[derive(Debug)]
pub enum PidState {
    /// Its owner holds the lock. `file` is the pid file, unlocked by us.
    Live { pid: Option<u32>, file: File },
    /// Nobody holds the lock: the owner is gone. `file` holds the lock of the kind asked for
    /// until it is dropped.
    Stale { pid: Option<u32>, file: File },
    /// There is no pid file.
    Missing,
}

fn read_pid(file: &File) -> Option<u32> {
    let mut text = String::new();
    file.take(32).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// Probes the pid file at `path`. A shared probe (readers: `ps`, `list`, ...) releases the
/// lock before returning; an exclusive one (a start reclaiming the directory) keeps it in
/// [`PidState::Stale`]. A symlink in place of the pid file is an error (`ELOOP`).
pub fn probe(path: &Path, kind: LockKind) -> io::Result<PidState> {
    let file = match open_nofollow(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(PidState::Missing),
        Err(e) => return Err(e),
    };
    let tries = match kind {
        LockKind::Shared => 1,
        LockKind::Exclusive => EXCLUSIVE_TRIES,
    };
    for attempt in 1..=tries {
        if try_lock(&file, kind)? {
            let pid = read_pid(&file);
            if kind == LockKind::Shared {
                unlock(&file)?;
            }
            return Ok(PidState::Stale { pid, file });
        }
        if attempt < tries {
            std::thread::sleep(EXCLUSIVE_PAUSE);
        }
    }
    let pid = read_pid(&file);
    Ok(PidState::Live { pid, file })
}

/// Has the owner of the pid file `file` released its lock (exited)?
pub fn released(file: &File) -> io::Result<bool> {
    if try_lock(file, LockKind::Shared)? {
        unlock(file)?;
        return Ok(true);
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pid_lock_live_until_dropped() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join(PID_FILE);
        let owner = PidLock::create(&path).unwrap();
        let me = Some(std::process::id());
        match probe(&path, LockKind::Shared).unwrap() {
            PidState::Live { pid, file } => {
                assert_eq!(pid, me);
                assert!(same_file(&file, &path));
                assert!(!released(&file).unwrap());
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            probe(&path, LockKind::Exclusive).unwrap(),
            PidState::Live { .. }
        ));
        // A second owner of the same file is refused (it must be new).
        assert_eq!(
            PidLock::create(&path).unwrap_err().kind(),
            io::ErrorKind::AlreadyExists
        );
        drop(owner);
        match probe(&path, LockKind::Exclusive).unwrap() {
            PidState::Stale { pid, file } => {
                assert_eq!(pid, me);
                // Held by the prober now: another exclusive probe sees it taken.
                assert!(matches!(
                    probe(&path, LockKind::Exclusive).unwrap(),
                    PidState::Live { .. }
                ));
                drop(file);
            }
            other => panic!("{other:?}"),
        }
    }

    /// The finding: a pid file whose pid is alive (pid 1 always is) but whose lock is free
    /// is stale. `/proc/1` exists; the lock decides.
    #[test]
    fn test_alive_pid_with_free_lock_is_stale() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join(PID_FILE);
        std::fs::write(&path, "1\n").unwrap();
        assert!(Path::new("/proc/1").exists());
        for kind in [LockKind::Shared, LockKind::Exclusive] {
            match probe(&path, kind).unwrap() {
                PidState::Stale { pid, .. } => assert_eq!(pid, Some(1)),
                other => panic!("{kind:?}: {other:?}"),
            }
        }
        // A garbage pid file is still judged by its lock.
        std::fs::write(&path, "not a pid").unwrap();
        assert!(matches!(
            probe(&path, LockKind::Shared).unwrap(),
            PidState::Stale { pid: None, .. }
        ));
    }

    #[test]
    fn test_probe_missing_and_symlink() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = tmp.as_path().join(PID_FILE);
        assert!(matches!(
            probe(&path, LockKind::Shared).unwrap(),
            PidState::Missing
        ));
        std::os::unix::fs::symlink("/proc/self/stat", &path).unwrap();
        let err = probe(&path, LockKind::Shared).unwrap_err();
        assert!(crate::os::file::is_symlink_error(&err), "{err}");
    }
}
