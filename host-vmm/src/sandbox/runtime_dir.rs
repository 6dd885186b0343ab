//! The per-sandbox runtime directory: private, claimed atomically, alive while its pid file
//! is locked, removed on drop.
//!
//! - The runtime root and every sandbox directory are 0700 and the caller's (created so
//!   whatever the umask; an existing one with another owner or group/world access is
//!   refused, naming its owner and mode).
//! - [`RuntimeDir::create`] prepares the directory under a hidden name with its pid file
//!   locked, then renames it to `<id>` with `RENAME_NOREPLACE`: of two starts with one id,
//!   exactly one rename succeeds; the other finds the winner's lock held and reports the id
//!   in use. A directory whose lock is free was left by a host-vmm that died (`kill -9`): it
//!   is reclaimed (renamed away under its lock, removed) and the start tries again.
//! - [`RuntimeDir::open`] (every command that looks a sandbox up) uses the same lock: a
//!   stale directory reads as not running.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::id::{validate_id, IdError};
use super::leftovers::{self, hidden_name, Kind};
use super::pid_file::{probe, released, same_file, PidLock, PidState, PID_FILE};
use crate::os::flock::LockKind;
use crate::os::private_dir::{check_private_dir, ensure_private_dir, PrivateDirError};

/// Environment variable overriding the runtime root.
pub const RUNTIME_ROOT_ENV: &str = "HOST_VMM_RUNTIME_DIR";
/// The runtime root when the environment does not name one.
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/host-vmm";
/// How many times a start tries to publish its directory (each failed try either finds the
/// id in use, which ends it, or reclaimed a stale directory).
const CLAIM_ATTEMPTS: u32 = 8;

/// Why the runtime directory could not be set up or found.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Private(#[from] PrivateDirError),
    #[error("sandbox {id} is already running (id in use: host-vmm pid {}, {})", show_pid(*pid), dir.display())]
    InUse {
        id: String,
        pid: Option<u32>,
        dir: PathBuf,
    },
    #[error("sandbox {id} is not running (no {})", dir.display())]
    NotRunning { id: String, dir: PathBuf },
    #[error(
        "sandbox {id} is not running: {} is left by host-vmm pid {}, which is gone (the next \
         start with --id {id} reclaims it)",
        dir.display(),
        show_pid(*pid)
    )]
    Stale {
        id: String,
        pid: Option<u32>,
        dir: PathBuf,
    },
    #[error("{} has no pid file: not a runtime directory of host-vmm; remove it", dir.display())]
    NotASandbox { dir: PathBuf },
    #[error("sandbox {id}: {} kept changing under other starts with the same id; try again", dir.display())]
    Contended { id: String, dir: PathBuf },
    #[error(
        "sandbox {id} (host-vmm pid {}) is still running after {} s",
        show_pid(*pid),
        waited.as_secs()
    )]
    StillRunning {
        id: String,
        pid: Option<u32>,
        waited: Duration,
    },
    #[error("{}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

fn show_pid(pid: Option<u32>) -> String {
    pid.map_or_else(|| "?".to_string(), |p| p.to_string())
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> RuntimeDirError {
    let path = path.to_path_buf();
    move |source| RuntimeDirError::Io { path, op, source }
}

/// `$HOST_VMM_RUNTIME_DIR`; else [`DEFAULT_RUNTIME_ROOT`] for root, and for any other
/// user `$XDG_RUNTIME_DIR/host-vmm` (the user's own runtime directory, as rootless
/// podman uses), or the default when that is not set.
pub fn runtime_root() -> PathBuf {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    runtime_root_from(
        std::env::var_os(RUNTIME_ROOT_ENV),
        euid,
        std::env::var_os("XDG_RUNTIME_DIR"),
    )
}

fn runtime_root_from(
    explicit: Option<std::ffi::OsString>,
    euid: u32,
    xdg_runtime_dir: Option<std::ffi::OsString>,
) -> PathBuf {
    let non_empty = |v: &std::ffi::OsString| !v.is_empty();
    if let Some(dir) = explicit.filter(non_empty) {
        return PathBuf::from(dir);
    }
    match xdg_runtime_dir.filter(non_empty) {
        Some(xdg) if euid != 0 => PathBuf::from(xdg).join("host-vmm"),
        _ => PathBuf::from(DEFAULT_RUNTIME_ROOT),
    }
}

/// `rename(from, to)` that fails with `EEXIST` instead of replacing `to`.
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (from_c, to_c) = (c(from)?, c(to)?);
    // SAFETY: both strings are valid NUL-terminated paths that outlive the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from_c.as_ptr(),
            libc::AT_FDCWD,
            to_c.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    Err(io::Error::last_os_error())
}

/// A hidden directory removed on drop unless published.
struct Staging(Option<PathBuf>);

impl Drop for Staging {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_dir_all(p);
        }
    }
}

/// A sandbox's runtime directory. Owned by the VMM process serving the sandbox
/// ([`RuntimeDir::create`]); [`RuntimeDir::open`] gives other commands its paths.
#[derive(Debug)]
pub struct RuntimeDir {
    id: String,
    root: PathBuf,
    dir: PathBuf,
    /// The owner's locked pid file: the directory is removed on drop.
    owner: Option<PidLock>,
    /// A reader's view: the live owner's pid and its pid file (to wait for its end).
    pid: Option<u32>,
    pid_file: Option<File>,
}

impl RuntimeDir {
    /// Claims `<root>/<id>/` for this process (see the module docs).
    pub fn create(root: &Path, id: &str) -> Result<Self, RuntimeDirError> {
        validate_id(id)?;
        if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            // 0755 even under umask 0: a world-writable parent would let others move the
            // root away.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(parent)
                .map_err(io_err(parent, "cannot create the runtime root's parent"))?;
        }
        ensure_private_dir(root)?;
        leftovers::sweep(root);
        let dir = root.join(id);
        let staging_path = root.join(hidden_name(id, Kind::New));
        // A dead process with this pid may have left one of this name.
        let _ = std::fs::remove_dir_all(&staging_path);
        ensure_private_dir(&staging_path)?;
        let mut staging = Staging(Some(staging_path.clone()));
        let pid_path = staging_path.join(PID_FILE);
        let owner = PidLock::create(&pid_path).map_err(io_err(&pid_path, "cannot create"))?;
        for _ in 0..CLAIM_ATTEMPTS {
            match rename_noreplace(&staging_path, &dir) {
                Ok(()) => {
                    staging.0 = None;
                    return Ok(RuntimeDir {
                        id: id.to_string(),
                        root: root.to_path_buf(),
                        dir,
                        owner: Some(owner),
                        pid: Some(std::process::id()),
                        pid_file: None,
                    });
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::EEXIST | libc::ENOTEMPTY)) => {
                    reclaim_if_stale(root, id, &dir)?;
                }
                Err(e) => return Err(io_err(&dir, "cannot publish the runtime directory")(e)),
            }
        }
        Err(RuntimeDirError::Contended {
            id: id.to_string(),
            dir,
        })
    }

    /// The runtime directory of a running sandbox, for commands that talk to it.
    pub fn open(root: &Path, id: &str) -> Result<Self, RuntimeDirError> {
        validate_id(id)?;
        let dir = root.join(id);
        let not_running = || RuntimeDirError::NotRunning {
            id: id.to_string(),
            dir: dir.clone(),
        };
        for path in [root, dir.as_path()] {
            match check_private_dir(path) {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Err(not_running()),
                Err(e) => return Err(e.into()),
            }
        }
        let pid_path = dir.join(PID_FILE);
        match probe(&pid_path, LockKind::Shared).map_err(io_err(&pid_path, "cannot read"))? {
            PidState::Live { pid, file } => Ok(RuntimeDir {
                id: id.to_string(),
                root: root.to_path_buf(),
                dir,
                owner: None,
                pid,
                pid_file: Some(file),
            }),
            PidState::Stale { pid, .. } => Err(RuntimeDirError::Stale {
                id: id.to_string(),
                pid,
                dir,
            }),
            PidState::Missing => Err(not_running()),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The pid of the host-vmm serving the sandbox (as its pid file says).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The hybrid vsock socket.
    pub fn vsock_socket(&self) -> PathBuf {
        self.dir.join("vsock.sock")
    }

    /// The VMM's control socket.
    pub fn api_socket(&self) -> PathBuf {
        self.dir.join("api.sock")
    }

    /// The agent's forwarded log.
    pub fn agent_log(&self) -> PathBuf {
        self.dir.join("agent.log")
    }

    /// For a reader: does the owner still hold the lock?
    pub fn is_live(&self) -> Result<bool, RuntimeDirError> {
        let Some(file) = &self.pid_file else {
            return Ok(self.owner.is_some());
        };
        released(file)
            .map(|free| !free)
            .map_err(io_err(&self.dir.join(PID_FILE), "cannot probe"))
    }

    /// For a reader: waits until the sandbox is gone (its owner released the lock and its
    /// directory is no longer at its path), polling every `poll`, at most `timeout`.
    pub fn wait_gone(&self, timeout: Duration, poll: Duration) -> Result<(), RuntimeDirError> {
        let Some(file) = &self.pid_file else {
            return Ok(());
        };
        let pid_path = self.dir.join(PID_FILE);
        let start = Instant::now();
        loop {
            let free = released(file).map_err(io_err(&pid_path, "cannot probe"))?;
            if free && !same_file(file, &pid_path) {
                return Ok(());
            }
            if start.elapsed() >= timeout {
                return Err(RuntimeDirError::StillRunning {
                    id: self.id.clone(),
                    pid: self.pid,
                    waited: timeout,
                });
            }
            std::thread::sleep(poll);
        }
    }
}

/// `<root>/<id>` exists: if its owner lives, the id is in use; if its lock is free, move it
/// away and remove it (under its lock, so no other start can be doing the same), and let
/// the caller try again.
fn reclaim_if_stale(root: &Path, id: &str, dir: &Path) -> Result<(), RuntimeDirError> {
    match check_private_dir(dir) {
        Ok(()) => {}
        // Gone meanwhile: try again.
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let pid_path = dir.join(PID_FILE);
    match probe(&pid_path, LockKind::Exclusive).map_err(io_err(&pid_path, "cannot read"))? {
        PidState::Live { pid, .. } => Err(RuntimeDirError::InUse {
            id: id.to_string(),
            pid,
            dir: dir.to_path_buf(),
        }),
        PidState::Missing if !dir.exists() => Ok(()),
        PidState::Missing => Err(RuntimeDirError::NotASandbox {
            dir: dir.to_path_buf(),
        }),
        PidState::Stale { pid, file } => {
            // Another start reclaimed it between our open and our lock: try again.
            if !same_file(&file, &pid_path) {
                return Ok(());
            }
            let trash = root.join(hidden_name(id, Kind::Stale));
            std::fs::rename(dir, &trash)
                .map_err(io_err(dir, "cannot move the stale runtime directory away"))?;
            if let Err(e) = std::fs::remove_dir_all(&trash) {
                tracing::warn!(dir = %trash.display(), "cannot remove a stale runtime directory: {e}");
            }
            drop(file);
            tracing::warn!(
                dir = %dir.display(),
                pid = show_pid(pid),
                "reclaimed the runtime directory of a host-vmm that is gone"
            );
            Ok(())
        }
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        // Out of `<id>` in one step, then removed; the lock goes last.
        let trash = self.root.join(hidden_name(&self.id, Kind::Gone));
        let removed =
            std::fs::rename(&self.dir, &trash).and_then(|()| std::fs::remove_dir_all(&trash));
        if let Err(e) = removed {
            tracing::warn!(dir = %self.dir.display(), "cannot remove the runtime directory: {e}");
        }
        drop(owner);
    }
}

#[cfg(test)]
mod tests;
