//! Typed calls for the sandbox, container, process and stdio RPCs of the agent.
//!
//! Calls that return quickly use the client's RPC timeout. Calls that block until something
//! happens in the guest (`WaitProcess`, `ReadStdout`, `ReadStderr`, `WriteStdin` against a
//! full pipe) have none: they end when the process does, or when the connection breaks.
//! Every reply is checked: exit statuses are mapped into 0..=255, a read never returns more
//! than it asked for, and the guest's strings are bounded single lines.

use protocol::agent::{
    CloseStdinRequest, CreateContainerRequest, CreateSandboxRequest, DestroySandboxRequest,
    ExecProcessRequest, ListContainersRequest, OfflineCpusRequest, OnlineCPUMemRequest,
    ReadStreamRequest, ReleaseDiskRequest, RemoveContainerRequest, Rootfs, SignalProcessRequest,
    StartContainerRequest, StatsContainerRequest, TtyWinResizeRequest, WaitProcessRequest,
    WriteStreamRequest,
};
use protocol::protobuf::MessageField;
use protocol::ttrpc::context;

use super::client::{AgentClient, ClientError};
use super::validate;

/// Most bytes one stdout/stderr read asks for (the agent's own bound is 1 MiB).
pub const READ_CHUNK: u32 = 256 << 10;
/// Most containers a list reply may hold.
const MAX_CONTAINERS: usize = 1024;

/// No timeout: for calls that wait for the guest's processes.
fn blocking() -> context::Context {
    context::with_timeout(0)
}

/// Where a container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsSource {
    /// The guest's default image (busybox).
    Default,
    /// A virtio-blk disk found by its serial, with its filesystem type.
    Block { serial: String, fstype: String },
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessExit {
    /// Its exit code, or 128 + signal; always 0..=255.
    pub code: u8,
    /// The container's cgroup saw an OOM kill while it ran.
    pub oom_killed: bool,
}

/// A container as `ListContainers` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerInfo {
    pub id: String,
    pub status: String,
    pub init_pid: u32,
    pub exec_ids: Vec<String>,
}

/// `StatsContainer`, as the agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContainerStats {
    pub cpu_usage_usec: u64,
    pub memory_usage_bytes: u64,
    pub memory_limit_bytes: u64,
    pub pids_current: u64,
    pub pids_limit: u64,
    pub oom_kills: u64,
    pub io_read_bytes: u64,
    pub io_write_bytes: u64,
}

/// An exit status as a process exit code: 0..=255 kept; anything else is not a status.
pub fn exit_code(status: i32) -> Result<u8, String> {
    u8::try_from(status).map_err(|_| format!("exit status {status} is not 0..=255"))
}

fn invalid(rpc: &'static str) -> impl Fn(String) -> ClientError {
    move |reason| ClientError::InvalidReply { rpc, reason }
}

impl AgentClient {
    /// `CreateSandbox`: the pod's hostname, its id, and whether its containers share one
    /// pid namespace.
    pub fn create_sandbox(
        &self,
        sandbox_id: &str,
        hostname: &str,
        share_pid: bool,
    ) -> Result<(), ClientError> {
        let mut req = CreateSandboxRequest::new();
        req.sandbox_id = sandbox_id.to_string();
        req.hostname = hostname.to_string();
        req.share_pid = share_pid;
        self.call("CreateSandbox", |a, ctx| a.create_sandbox(ctx, &req))?;
        Ok(())
    }

    /// `DestroySandbox`: every container is killed and removed.
    pub fn destroy_sandbox(&self) -> Result<(), ClientError> {
        let req = DestroySandboxRequest::new();
        self.call("DestroySandbox", |a, ctx| a.destroy_sandbox(ctx, &req))?;
        Ok(())
    }

    /// `CreateContainer` with `spec_json` (an OCI spec); its init process is `exec_id`.
    pub fn create_container(
        &self,
        container_id: &str,
        exec_id: &str,
        spec_json: &str,
        rootfs: &RootfsSource,
    ) -> Result<(), ClientError> {
        let mut req = CreateContainerRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.oci_spec_json = spec_json.to_string();
        if let RootfsSource::Block { serial, fstype } = rootfs {
            let mut r = Rootfs::new();
            r.block_serial = serial.clone();
            r.fstype = fstype.clone();
            req.rootfs = MessageField::some(r);
        }
        self.call("CreateContainer", |a, ctx| a.create_container(ctx, &req))?;
        Ok(())
    }

    /// `StartContainer`: its init process starts.
    pub fn start_container(&self, container_id: &str) -> Result<(), ClientError> {
        let mut req = StartContainerRequest::new();
        req.container_id = container_id.to_string();
        self.call("StartContainer", |a, ctx| a.start_container(ctx, &req))?;
        Ok(())
    }

    /// `RemoveContainer`, waiting at most `timeout_secs` for its processes to die.
    pub fn remove_container(
        &self,
        container_id: &str,
        timeout_secs: u32,
    ) -> Result<(), ClientError> {
        let mut req = RemoveContainerRequest::new();
        req.container_id = container_id.to_string();
        req.timeout = timeout_secs;
        self.call_for("RemoveContainer", container_id, |a, ctx| {
            a.remove_container(ctx, &req)
        })?;
        Ok(())
    }

    /// `ExecProcess`: a new process `exec_id` in the container, `process_json` its OCI
    /// `process` object.
    pub fn exec_process(
        &self,
        container_id: &str,
        exec_id: &str,
        process_json: &str,
    ) -> Result<(), ClientError> {
        let mut req = ExecProcessRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.process_json = process_json.to_string();
        self.call("ExecProcess", |a, ctx| a.exec_process(ctx, &req))?;
        Ok(())
    }

    /// `WaitProcess`: blocks until the process ends.
    pub fn wait_process(
        &self,
        container_id: &str,
        exec_id: &str,
    ) -> Result<ProcessExit, ClientError> {
        let mut req = WaitProcessRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        let target = format!("{container_id}/{exec_id}");
        let r = self.call_for("WaitProcess", &target, |a, _| {
            a.wait_process(blocking(), &req)
        })?;
        Ok(ProcessExit {
            code: exit_code(r.status).map_err(invalid("WaitProcess"))?,
            oom_killed: r.oom_killed,
        })
    }

    /// `SignalProcess`: `signal` to `exec_id`, or to every process of the container when
    /// `exec_id` is empty.
    pub fn signal_process(
        &self,
        container_id: &str,
        exec_id: &str,
        signal: u32,
    ) -> Result<(), ClientError> {
        let mut req = SignalProcessRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.signal = signal;
        self.call("SignalProcess", |a, ctx| a.signal_process(ctx, &req))?;
        Ok(())
    }

    /// `WriteStdin`: all of `data` (blocks while the process does not read).
    pub fn write_stdin(
        &self,
        container_id: &str,
        exec_id: &str,
        data: &[u8],
    ) -> Result<(), ClientError> {
        let mut req = WriteStreamRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.data = data.to_vec();
        let target = format!("{container_id}/{exec_id} ({} bytes)", data.len());
        let r = self.call_for("WriteStdin", &target, |a, _| {
            a.write_stdin(blocking(), &req)
        })?;
        if r.len as usize != data.len() {
            return Err(ClientError::InvalidReply {
                rpc: "WriteStdin",
                reason: format!("wrote {} of {} bytes", r.len, data.len()),
            });
        }
        Ok(())
    }

    /// `CloseStdin`: the process reads end-of-file.
    pub fn close_stdin(&self, container_id: &str, exec_id: &str) -> Result<(), ClientError> {
        let mut req = CloseStdinRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        self.call("CloseStdin", |a, ctx| a.close_stdin(ctx, &req))?;
        Ok(())
    }

    /// `ReadStdout`: blocks until some output; empty at end-of-file.
    pub fn read_stdout(&self, container_id: &str, exec_id: &str) -> Result<Vec<u8>, ClientError> {
        self.read_stream("ReadStdout", container_id, exec_id)
    }

    /// `ReadStderr`: like [`Self::read_stdout`].
    pub fn read_stderr(&self, container_id: &str, exec_id: &str) -> Result<Vec<u8>, ClientError> {
        self.read_stream("ReadStderr", container_id, exec_id)
    }

    fn read_stream(
        &self,
        rpc: &'static str,
        container_id: &str,
        exec_id: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut req = ReadStreamRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.len = READ_CHUNK;
        let target = format!("{container_id}/{exec_id}");
        let r = self.call_for(rpc, &target, |a, _| {
            if rpc == "ReadStdout" {
                a.read_stdout(blocking(), &req)
            } else {
                a.read_stderr(blocking(), &req)
            }
        })?;
        if r.data.len() > READ_CHUNK as usize {
            return Err(ClientError::InvalidReply {
                rpc,
                reason: format!(
                    "{} bytes, more than the {READ_CHUNK} asked for",
                    r.data.len()
                ),
            });
        }
        Ok(r.data)
    }

    /// `TtyWinResize`.
    pub fn tty_win_resize(
        &self,
        container_id: &str,
        exec_id: &str,
        rows: u16,
        columns: u16,
    ) -> Result<(), ClientError> {
        let mut req = TtyWinResizeRequest::new();
        req.container_id = container_id.to_string();
        req.exec_id = exec_id.to_string();
        req.row = u32::from(rows);
        req.column = u32::from(columns);
        self.call("TtyWinResize", |a, ctx| a.tty_win_resize(ctx, &req))?;
        Ok(())
    }

    /// `OnlineCPUMem { wait: true }`: returns once hot-added memory (and CPUs) are online;
    /// `memory_bytes`, the RAM plugged in total, makes the agent also wait for blocks the
    /// kernel has not created yet (0: only what is present).
    pub fn online_cpu_mem(&self, memory_bytes: u64) -> Result<(), ClientError> {
        let mut req = OnlineCPUMemRequest::new();
        req.wait = true;
        req.memory_bytes = memory_bytes;
        self.call("OnlineCPUMem", |a, ctx| a.online_cpu_mem(ctx, &req))?;
        Ok(())
    }

    /// `OnlineCPUMem { wait: true, cpu_only: true, nb_cpus }`: returns once `nb_cpus`
    /// CPUs are online (the agent onlines the hot-added ones).
    pub fn online_cpus(&self, nb_cpus: u32) -> Result<(), ClientError> {
        let mut req = OnlineCPUMemRequest::new();
        req.wait = true;
        req.cpu_only = true;
        req.nb_cpus = nb_cpus;
        self.call("OnlineCPUMem", |a, ctx| a.online_cpu_mem(ctx, &req))?;
        Ok(())
    }

    /// `OfflineCpus { keep }`: the guest takes every CPU from `keep` up out of its
    /// cpusets and offlines it (before the VMM removes those vCPUs).
    pub fn offline_cpus(&self, keep: u32) -> Result<(), ClientError> {
        let mut req = OfflineCpusRequest::new();
        req.keep = keep;
        self.call("OfflineCpus", |a, ctx| a.offline_cpus(ctx, &req))?;
        Ok(())
    }

    /// `ReleaseDisk`: the guest lets go of the disk with `serial` (refused while a
    /// container uses it or it is mounted).
    pub fn release_disk(&self, serial: &str) -> Result<(), ClientError> {
        let mut req = ReleaseDiskRequest::new();
        req.serial = serial.to_string();
        self.call("ReleaseDisk", |a, ctx| a.release_disk(ctx, &req))?;
        Ok(())
    }

    /// `StatsContainer`.
    pub fn stats_container(&self, container_id: &str) -> Result<ContainerStats, ClientError> {
        let mut req = StatsContainerRequest::new();
        req.container_id = container_id.to_string();
        let r = self.call("StatsContainer", |a, ctx| a.stats_container(ctx, &req))?;
        Ok(ContainerStats {
            cpu_usage_usec: r.cpu_usage_usec,
            memory_usage_bytes: r.memory_usage_bytes,
            memory_limit_bytes: r.memory_limit_bytes,
            pids_current: r.pids_current,
            pids_limit: r.pids_limit,
            oom_kills: r.oom_kills,
            io_read_bytes: r.io_read_bytes,
            io_write_bytes: r.io_write_bytes,
        })
    }

    /// `ListContainers`: every container and its live processes.
    pub fn list_containers(&self) -> Result<Vec<ContainerInfo>, ClientError> {
        let req = ListContainersRequest::new();
        let r = self.call("ListContainers", |a, ctx| a.list_containers(ctx, &req))?;
        let bad = invalid("ListContainers");
        if r.containers.len() > MAX_CONTAINERS {
            return Err(bad(format!("{} containers", r.containers.len())));
        }
        r.containers
            .iter()
            .map(|c| container_info(c).map_err(&bad))
            .collect()
    }
}

/// A `ContainerInfo` from the agent, checked: ids follow the same rule as ours
/// ([`protocol::id`]), the status is printable text, at most [`MAX_CONTAINERS`] exec ids.
/// Pure.
pub fn container_info(c: &protocol::agent::ContainerInfo) -> Result<ContainerInfo, String> {
    let id = |value: &String, field| {
        protocol::id::validate_id(value, field)
            .map(|()| value.clone())
            .map_err(|e| e.to_string())
    };
    Ok(ContainerInfo {
        id: id(&c.container_id, "container_id")?,
        status: validate::text("status", &c.status)?,
        init_pid: c.init_pid,
        exec_ids: c
            .exec_ids
            .iter()
            .take(MAX_CONTAINERS)
            .map(|e| id(e, "exec_id"))
            .collect::<Result<_, _>>()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exit_code_range() {
        assert_eq!(exit_code(0), Ok(0));
        assert_eq!(exit_code(137), Ok(137));
        assert_eq!(exit_code(255), Ok(255));
        assert!(exit_code(-1).is_err());
        assert!(exit_code(256).is_err());
    }

    #[test]
    fn test_container_info_ids_follow_the_id_rule() {
        let info = |id: &str, exec: &str| {
            let mut c = protocol::agent::ContainerInfo::new();
            c.container_id = id.into();
            c.status = "running".into();
            c.exec_ids = vec!["web".into(), exec.into()];
            container_info(&c)
        };
        let ok = info("web", "exec-1").unwrap();
        assert_eq!((ok.id.as_str(), ok.exec_ids.len()), ("web", 2));
        // A guest that answers with escapes or paths is refused, naming the field.
        let e = info("\u{1b}[2J", "e1").unwrap_err();
        assert!(e.starts_with("container_id: "), "{e}");
        let e = info("web", "../x").unwrap_err();
        assert!(e.starts_with("exec_id: "), "{e}");
        assert!(info("", "e1").is_err());
    }
}
