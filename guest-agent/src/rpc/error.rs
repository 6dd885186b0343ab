//! The one mapping from handler errors to ttrpc status codes. Handlers return [`RpcError`];
//! the host sees a status code it can act on and a one-line message, never a debug dump.
//! Engine errors ([`ContainerError`]) become [`RpcError`]s here too, by variant (the table
//! in [`crate::sandbox`]).

use std::io;

use protocol::ttrpc::{self, Code};

use crate::container::spec::SpecError;
use crate::container::ContainerError;
use crate::error_chain::error_chain;

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The RPC exists in the protocol but the agent does not do it yet.
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
    /// The request itself is wrong; retrying it unchanged cannot help.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Something the request names does not exist (the message says what).
    #[error("{0}")]
    NotFound(String),
    /// What the request would create exists already.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request does not fit the current state (no sandbox yet, container not running...).
    #[error("{0}")]
    FailedPrecondition(String),
    /// A wait the request asked for ran out of time.
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A system call or file access failed; the code follows the errno.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: io::Error,
    },
    /// The agent broke its own expectations (bad data from the kernel, ...).
    #[error("internal: {0}")]
    Internal(String),
}

impl RpcError {
    /// An [`RpcError::Io`] for `op`.
    pub fn io(op: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let op = op.into();
        move |source| RpcError::Io { op, source }
    }

    /// The ttrpc status code the host sees.
    pub fn code(&self) -> Code {
        match self {
            RpcError::Unimplemented(_) => Code::UNIMPLEMENTED,
            RpcError::InvalidArgument(_) => Code::INVALID_ARGUMENT,
            RpcError::NotFound(_) => Code::NOT_FOUND,
            RpcError::AlreadyExists(_) => Code::ALREADY_EXISTS,
            RpcError::FailedPrecondition(_) => Code::FAILED_PRECONDITION,
            RpcError::DeadlineExceeded(_) => Code::DEADLINE_EXCEEDED,
            RpcError::Io { source, .. } => io_code(source),
            RpcError::Internal(_) => Code::INTERNAL,
        }
    }
}

fn io_code(e: &io::Error) -> Code {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Code::NOT_FOUND,
        Some(libc::EPERM | libc::EACCES) => Code::PERMISSION_DENIED,
        Some(libc::EINVAL) => Code::INVALID_ARGUMENT,
        Some(libc::EEXIST) => Code::ALREADY_EXISTS,
        Some(libc::ENOSPC | libc::ENOMEM) => Code::RESOURCE_EXHAUSTED,
        Some(libc::EAGAIN | libc::EBUSY) => Code::UNAVAILABLE,
        _ => Code::INTERNAL,
    }
}

impl From<ContainerError> for RpcError {
    /// By variant: a bad request is INVALID_ARGUMENT, a missing container or process
    /// NOT_FOUND, a duplicate ALREADY_EXISTS, a wrong state FAILED_PRECONDITION, a timeout
    /// DEADLINE_EXCEEDED, the rest (the guest failing) INTERNAL. The message is the whole
    /// error chain.
    fn from(e: ContainerError) -> Self {
        let message = error_chain(&e);
        match e {
            _ if e.is_invalid_request() => RpcError::InvalidArgument(message),
            ContainerError::NotFound(_) | ContainerError::ProcessNotFound { .. } => {
                RpcError::NotFound(message)
            }
            ContainerError::Exists(_)
            | ContainerError::ProcessExists { .. }
            | ContainerError::SandboxExists(_) => RpcError::AlreadyExists(message),
            ContainerError::State { .. }
            | ContainerError::ProcessExited { .. }
            | ContainerError::NoSandbox => RpcError::FailedPrecondition(message),
            ContainerError::Timeout { .. } => RpcError::DeadlineExceeded(message),
            ContainerError::Spec(_)
            | ContainerError::Cgroup(_)
            | ContainerError::Rootfs(_)
            | ContainerError::Devices { .. }
            | ContainerError::Spawn(_)
            | ContainerError::Setup { .. }
            | ContainerError::Leftover { .. }
            | ContainerError::Io { .. } => RpcError::Internal(message),
        }
    }
}

impl From<SpecError> for RpcError {
    /// A spec, process or resources object that does not parse or validate.
    fn from(e: SpecError) -> Self {
        ContainerError::from(e).into()
    }
}

impl From<RpcError> for ttrpc::Error {
    fn from(e: RpcError) -> Self {
        ttrpc::Error::RpcStatus(ttrpc::get_status(e.code(), e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(e: RpcError) -> (Code, String) {
        match ttrpc::Error::from(e) {
            ttrpc::Error::RpcStatus(s) => (s.code(), s.message),
            other => panic!("not a status: {other:?}"),
        }
    }

    #[test]
    fn test_unimplemented_maps_to_unimplemented_with_name() {
        assert_eq!(
            status(RpcError::Unimplemented("CreateContainer")),
            (
                Code::UNIMPLEMENTED,
                "not implemented yet: CreateContainer".to_string()
            )
        );
    }

    #[test]
    fn test_io_errors_follow_errno() {
        let io = |errno| RpcError::io("clock_settime")(io::Error::from_raw_os_error(errno));
        assert_eq!(io(libc::EPERM).code(), Code::PERMISSION_DENIED);
        assert_eq!(io(libc::ENOENT).code(), Code::NOT_FOUND);
        assert_eq!(io(libc::EINVAL).code(), Code::INVALID_ARGUMENT);
        assert_eq!(io(libc::EIO).code(), Code::INTERNAL);
        let (_, msg) = status(io(libc::EPERM));
        assert!(msg.starts_with("clock_settime: "), "{msg}");
    }

    #[test]
    fn test_every_container_error_variant_maps_by_kind() {
        use crate::container::cgroup::CgroupError;
        use crate::container::rootfs::RootfsError;
        use crate::container::SpawnError;
        use std::time::Duration;

        let spec = || SpecError::new("process.args", "must not be empty");
        let id = || "c1".to_string();
        let exec_id = || "e1".to_string();
        let cases: Vec<(ContainerError, Code)> = vec![
            (ContainerError::Spec(spec()), Code::INVALID_ARGUMENT),
            (
                ContainerError::Cgroup(CgroupError::Spec(spec())),
                Code::INVALID_ARGUMENT,
            ),
            (
                ContainerError::Rootfs(RootfsError::NoImage("/images/nope".into())),
                Code::INVALID_ARGUMENT,
            ),
            (
                ContainerError::Rootfs(RootfsError::FsType("xfs".into())),
                Code::INVALID_ARGUMENT,
            ),
            (
                ContainerError::Rootfs(RootfsError::BadPath("/a:b".into())),
                Code::INVALID_ARGUMENT,
            ),
            (ContainerError::NotFound(id()), Code::NOT_FOUND),
            (
                ContainerError::ProcessNotFound {
                    id: id(),
                    exec_id: exec_id(),
                },
                Code::NOT_FOUND,
            ),
            (ContainerError::Exists(id()), Code::ALREADY_EXISTS),
            (
                ContainerError::ProcessExists {
                    id: id(),
                    exec_id: exec_id(),
                },
                Code::ALREADY_EXISTS,
            ),
            (ContainerError::SandboxExists(id()), Code::ALREADY_EXISTS),
            (
                ContainerError::State {
                    id: id(),
                    state: "running",
                    action: "start",
                    needed: "created",
                },
                Code::FAILED_PRECONDITION,
            ),
            (
                ContainerError::ProcessExited {
                    id: id(),
                    exec_id: exec_id(),
                },
                Code::FAILED_PRECONDITION,
            ),
            (ContainerError::NoSandbox, Code::FAILED_PRECONDITION),
            (
                ContainerError::Timeout {
                    what: "container c1".into(),
                    timeout: Duration::from_secs(3),
                },
                Code::DEADLINE_EXCEEDED,
            ),
            (
                ContainerError::Cgroup(CgroupError::Exists {
                    path: "/sys/fs/cgroup/sandbox/c1".into(),
                }),
                Code::INTERNAL,
            ),
            (
                ContainerError::Rootfs(RootfsError::Unmount {
                    path: "/run/sandbox/containers/c1".into(),
                    source: nix::Error::EBUSY,
                }),
                Code::INTERNAL,
            ),
            (ContainerError::Spawn(SpawnError::Panicked), Code::INTERNAL),
            (
                ContainerError::Setup {
                    id: id(),
                    detail: "mounts[3] /data: ENOENT".into(),
                },
                Code::INTERNAL,
            ),
            (
                ContainerError::io("stdio of e1 in c1")(io::Error::from_raw_os_error(libc::EPIPE)),
                Code::INTERNAL,
            ),
        ];
        for (e, code) in cases {
            let text = e.to_string();
            let (got, msg) = status(RpcError::from(e));
            assert_eq!(got, code, "{msg}");
            // The message is the whole chain, the error itself first.
            assert!(msg.contains(&text), "{msg} / {text}");
        }
        // Causes are kept.
        let (_, msg) = status(RpcError::from(ContainerError::io("stdio of e1 in c1")(
            io::Error::from_raw_os_error(libc::EPIPE),
        )));
        assert!(msg.contains("stdio of e1 in c1: "), "{msg}");
        assert!(msg.contains("roken pipe"), "{msg}");
        let (_, msg) = status(RpcError::from(ContainerError::NoSandbox));
        assert_eq!(msg, "no sandbox: CreateSandbox first");
    }

    #[test]
    fn test_other_kinds() {
        assert_eq!(
            RpcError::InvalidArgument("x".into()).code(),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(RpcError::NotFound("c1".into()).code(), Code::NOT_FOUND);
        assert_eq!(RpcError::Internal("x".into()).code(), Code::INTERNAL);
        assert_eq!(
            RpcError::AlreadyExists("x".into()).code(),
            Code::ALREADY_EXISTS
        );
        assert_eq!(
            RpcError::FailedPrecondition("x".into()).code(),
            Code::FAILED_PRECONDITION
        );
        assert_eq!(
            RpcError::DeadlineExceeded("x".into()).code(),
            Code::DEADLINE_EXCEEDED
        );
    }
}
