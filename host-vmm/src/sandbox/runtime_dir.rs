//! The per-sandbox runtime directory: created exclusively, removed on drop.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::id::{validate_id, IdError};

/// Environment variable overriding the runtime root.
pub const RUNTIME_ROOT_ENV: &str = "HOST_VMM_RUNTIME_DIR";
/// The runtime root when the environment does not name one.
pub const DEFAULT_RUNTIME_ROOT: &str = "/run/host-vmm";

/// Why the runtime directory could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeDirError {
    #[error(transparent)]
    Id(#[from] IdError),
    #[error("sandbox {id} is already running (host-vmm pid {pid}, {dir})")]
    InUse { id: String, pid: u32, dir: PathBuf },
    #[error("sandbox {id} is not running (no {dir})")]
    NotRunning { id: String, dir: PathBuf },
    #[error("{}: {op}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
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

/// Is `pid` a live process?
fn alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

fn read_pid(dir: &Path) -> Option<u32> {
    fs::read_to_string(dir.join("pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// A sandbox's runtime directory. Owned by the VMM process serving the
/// sandbox; [`RuntimeDir::open`] gives other commands its paths.
#[derive(Debug)]
pub struct RuntimeDir {
    id: String,
    dir: PathBuf,
    /// Remove the directory on drop (only the owner does).
    owned: bool,
}

impl RuntimeDir {
    /// Create `<root>/<id>/` for this process. A directory left by a process
    /// that is gone is cleared first; one whose process lives is refused.
    pub fn create(root: &Path, id: &str) -> Result<Self, RuntimeDirError> {
        validate_id(id)?;
        fs::create_dir_all(root).map_err(io_err(root, "cannot create the runtime root"))?;
        let dir = root.join(id);
        if dir.exists() {
            match read_pid(&dir) {
                Some(pid) if alive(pid) && pid != std::process::id() => {
                    return Err(RuntimeDirError::InUse {
                        id: id.to_string(),
                        pid,
                        dir,
                    })
                }
                _ => {
                    tracing::warn!(dir = %dir.display(), "removing a stale runtime directory");
                    fs::remove_dir_all(&dir)
                        .map_err(io_err(&dir, "cannot remove the stale runtime directory"))?;
                }
            }
        }
        fs::create_dir(&dir).map_err(io_err(&dir, "cannot create the runtime directory"))?;
        let this = RuntimeDir {
            id: id.to_string(),
            dir,
            owned: true,
        };
        // Written aside and renamed, so a reader never sees an empty pid file.
        let pid_path = this.dir.join("pid");
        let tmp = this.dir.join("pid.tmp");
        let mut f = fs::File::create(&tmp).map_err(io_err(&tmp, "cannot write"))?;
        writeln!(f, "{}", std::process::id()).map_err(io_err(&tmp, "cannot write"))?;
        fs::rename(&tmp, &pid_path).map_err(io_err(&pid_path, "cannot write"))?;
        Ok(this)
    }

    /// The runtime directory of a running sandbox, for commands that talk to it.
    pub fn open(root: &Path, id: &str) -> Result<Self, RuntimeDirError> {
        validate_id(id)?;
        let dir = root.join(id);
        match read_pid(&dir) {
            Some(pid) if alive(pid) => Ok(RuntimeDir {
                id: id.to_string(),
                dir,
                owned: false,
            }),
            _ => Err(RuntimeDirError::NotRunning {
                id: id.to_string(),
                dir,
            }),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn path(&self) -> &Path {
        &self.dir
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
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        if self.owned {
            if let Err(e) = fs::remove_dir_all(&self.dir) {
                tracing::warn!(dir = %self.dir.display(), "cannot remove the runtime directory: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_runtime_root_explicit_then_root_then_xdg_for_users() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        let root = |e, uid, x| runtime_root_from(e, uid, x);
        assert_eq!(
            root(os("/x"), 1000, os("/run/user/1000")),
            PathBuf::from("/x")
        );
        assert_eq!(root(os("/x"), 0, None), PathBuf::from("/x"));
        assert_eq!(
            root(None, 0, os("/run/user/0")),
            PathBuf::from("/run/host-vmm")
        );
        assert_eq!(
            root(os(""), 1000, os("/run/user/1000")),
            PathBuf::from("/run/user/1000/host-vmm")
        );
        assert_eq!(root(None, 1000, None), PathBuf::from("/run/host-vmm"));
        assert_eq!(root(None, 1000, os("")), PathBuf::from("/run/host-vmm"));
    }

    fn temp_root(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("host-vmm-rt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        root
    }

    #[test]
    fn test_runtime_dir_created_with_pid_and_removed_on_drop() {
        let root = temp_root("create");
        let dir = RuntimeDir::create(&root, "sb1").unwrap();
        let path = dir.path().to_path_buf();
        assert_eq!(read_pid(&path), Some(std::process::id()));
        assert_eq!(dir.vsock_socket(), root.join("sb1/vsock.sock"));
        let opened = RuntimeDir::open(&root, "sb1").unwrap();
        drop(opened);
        assert!(path.exists(), "a non-owner must not remove the directory");
        drop(dir);
        assert!(!path.exists());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn test_runtime_dir_live_owner_refused() {
        let root = temp_root("inuse");
        fs::create_dir_all(root.join("sb")).unwrap();
        // pid 1 is always alive.
        fs::write(root.join("sb/pid"), "1\n").unwrap();
        let err = RuntimeDir::create(&root, "sb").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("sandbox sb is already running (host-vmm pid 1"),
            "{err}"
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn test_runtime_dir_stale_directory_replaced() {
        let root = temp_root("stale");
        fs::create_dir_all(root.join("sb")).unwrap();
        fs::write(root.join("sb/pid"), "4294967295\n").unwrap();
        fs::write(root.join("sb/vsock.sock"), "").unwrap();
        let dir = RuntimeDir::create(&root, "sb").unwrap();
        assert!(!dir.vsock_socket().exists());
        drop(dir);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn test_runtime_dir_open_missing_says_not_running() {
        let root = temp_root("missing");
        let err = RuntimeDir::open(&root, "nope").unwrap_err();
        assert!(
            err.to_string().starts_with("sandbox nope is not running"),
            "{err}"
        );
    }

    #[test]
    fn test_runtime_dir_bad_id_refused() {
        let root = temp_root("badid");
        assert!(matches!(
            RuntimeDir::create(&root, "../etc"),
            Err(RuntimeDirError::Id(_))
        ));
        assert!(!root.exists() || fs::read_dir(&root).unwrap().next().is_none());
    }
}
