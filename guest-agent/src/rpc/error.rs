//! The one mapping from handler errors to ttrpc status codes. Handlers return [`RpcError`];
//! the host sees a status code it can act on and a one-line message, never a debug dump.

use std::io;

use protocol::ttrpc::{self, Code};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The RPC exists in the protocol but the agent does not do it yet.
    #[error("not implemented yet: {0}")]
    Unimplemented(&'static str),
    /// The request itself is wrong; retrying it unchanged cannot help.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Something the request names does not exist.
    #[error("not found: {0}")]
    NotFound(String),
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
    fn test_other_kinds() {
        assert_eq!(
            RpcError::InvalidArgument("x".into()).code(),
            Code::INVALID_ARGUMENT
        );
        assert_eq!(RpcError::NotFound("c1".into()).code(), Code::NOT_FOUND);
        assert_eq!(RpcError::Internal("x".into()).code(), Code::INTERNAL);
    }
}
