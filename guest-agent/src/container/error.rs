//! The engine's error type: what the RPC handlers map to status codes.

use std::io;
use std::time::Duration;

use super::cgroup::CgroupError;
use super::devices::BpfError;
use super::rootfs::RootfsError;
use super::spawn::SpawnError;
use super::spec::SpecError;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// The request (spec, id, resources) is invalid; the message names the field.
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("container {0} not found")]
    NotFound(String),
    #[error("process {exec_id} already exists in container {id}")]
    ProcessExists { id: String, exec_id: String },
    #[error("process {exec_id} not found in container {id}")]
    ProcessNotFound { id: String, exec_id: String },
    #[error("process {exec_id} of container {id} has already exited")]
    ProcessExited { id: String, exec_id: String },
    /// The operation does not fit the container's state (start twice, exec when stopped...).
    #[error("container {id} is {state}; {action} needs it {needed}")]
    State {
        id: String,
        state: &'static str,
        action: &'static str,
        needed: &'static str,
    },
    #[error("no sandbox: CreateSandbox first")]
    NoSandbox,
    #[error("a sandbox ({0}) already exists")]
    SandboxExists(String),
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    /// The device program could not be loaded or attached: the container is not created.
    #[error("container {id}: install its device cgroup program")]
    Devices {
        id: String,
        #[source]
        source: BpfError,
    },
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    /// The helper reported a setup step that failed (e.g. `mounts[3] /data: ...: ENOENT`).
    #[error("container {id}: {detail}")]
    Setup { id: String, detail: String },
    #[error("{op}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    /// RemoveContainer finished, yet something of the container is still there.
    #[error("container {id} removed, but left behind: {what}")]
    Leftover { id: String, what: String },
    #[error("{what} did not finish within {timeout:?}")]
    Timeout { what: String, timeout: Duration },
}

impl ContainerError {
    /// An [`ContainerError::Io`] for `op`.
    pub fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let op = op.into();
        move |source| Self::Io { op, source }
    }

    /// Whether the caller's request was at fault (as opposed to the guest failing): a bad
    /// spec or resources, or an image that cannot be used (missing directory, a path an
    /// overlay cannot carry, a filesystem other than erofs and ext4).
    pub fn is_invalid_request(&self) -> bool {
        matches!(
            self,
            Self::Spec(_)
                | Self::Cgroup(CgroupError::Spec(_))
                | Self::Rootfs(
                    RootfsError::NoImage(_) | RootfsError::BadPath(_) | RootfsError::FsType(_)
                )
        )
    }
}
