//! The agent <-> helper channel: a Unix stream socket pair, messages as a little-endian u32
//! length followed by that many bytes of JSON.
//!
//! The exchange: the agent sends a [`ToHelper::Plan`]; the helper sets up and answers
//! [`FromHelper::Ready`] or [`FromHelper::Failed`]. For a container's init the agent later
//! sends [`ToHelper::Start`]. The helper then execs the process; its end of the socket is
//! close-on-exec, so a successful exec reads as end-of-file on the agent's end, and a failed
//! one as a `Failed` message.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::caps::CapPlan;
use super::seccomp::CompiledFilter;
use super::spec::{LinuxDevice, Mount};

/// Largest message accepted (a plan is a few KiB).
const MAX_MESSAGE: u32 = 4 << 20;

/// Agent to helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToHelper {
    Plan(Box<Plan>),
    Start,
}

/// Helper to agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromHelper {
    Ready,
    Failed(String),
}

/// What the helper is to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub role: Role,
    pub process: Option<ProcessPlan>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Role {
    /// A container's first process: set up the root, wait for Start, exec.
    Init(Box<InitPlan>),
    /// A process joining a running container (namespaces joined by the agent): exec.
    Exec,
    /// The pid 1 of the sandbox's shared pid namespace: reap orphans until killed.
    Pause,
}

/// The container's filesystem and identity (the helper is in its new mount, uts and pid
/// namespaces and its cgroup when it reads this).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitPlan {
    /// The prepared rootfs (overlay) in the agent's mount namespace.
    pub rootfs: PathBuf,
    pub readonly: bool,
    pub mounts: Vec<Mount>,
    pub hostname: String,
    pub masked_paths: Vec<String>,
    pub readonly_paths: Vec<String>,
    /// `linux.devices`: nodes to make in `/dev` besides the standard ones.
    pub devices: Vec<LinuxDevice>,
    pub domainname: Option<String>,
    pub new_cgroup_namespace: bool,
    /// The process has a terminal (fd 0): bind it onto `/dev/console`.
    pub console: bool,
}

/// The process to exec, resolved from the spec.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub caps: CapPlan,
    /// `(RLIMIT_* name, soft, hard)`.
    pub rlimits: Vec<(String, u64, u64)>,
    pub no_new_privileges: bool,
    pub terminal: bool,
    /// The container's seccomp filters (none: unconfined), installed in order.
    pub seccomp: Vec<CompiledFilter>,
}

/// Sends one message.
pub fn send<T: Serialize>(mut stream: &UnixStream, message: &T) -> io::Result<()> {
    let body = serde_json::to_vec(message).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|&l| l <= MAX_MESSAGE)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "message too large"))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_le_bytes());
    frame.extend_from_slice(&body);
    stream.write_all(&frame)
}

/// Receives one message; `None` on end-of-file before a message starts.
pub fn recv<T: DeserializeOwned>(mut stream: &UnixStream) -> io::Result<Option<T>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < len.len() {
        match stream.read(&mut len[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_le_bytes(len);
    if len > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message of {len} bytes is too large"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    stream.read_exact(&mut body)?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_channel_round_trip_and_eof() {
        let (a, b) = UnixStream::pair().unwrap();
        send(&a, &FromHelper::Failed("mount /proc: EPERM".into())).unwrap();
        send(&a, &FromHelper::Ready).unwrap();
        drop(a);
        assert_eq!(
            recv::<FromHelper>(&b).unwrap(),
            Some(FromHelper::Failed("mount /proc: EPERM".into()))
        );
        assert_eq!(recv::<FromHelper>(&b).unwrap(), Some(FromHelper::Ready));
        assert_eq!(recv::<FromHelper>(&b).unwrap(), None);
    }

    #[test]
    fn test_channel_plan_survives_json() {
        let (a, b) = UnixStream::pair().unwrap();
        let plan = Plan {
            role: Role::Pause,
            process: None,
        };
        send(&a, &ToHelper::Plan(Box::new(plan))).unwrap();
        match recv::<ToHelper>(&b).unwrap() {
            Some(ToHelper::Plan(p)) => assert!(matches!(p.role, Role::Pause)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_channel_rejects_huge_length() {
        let (mut a, b) = UnixStream::pair().unwrap();
        a.write_all(&u32::MAX.to_le_bytes()).unwrap();
        assert!(recv::<FromHelper>(&b).is_err());
    }
}
