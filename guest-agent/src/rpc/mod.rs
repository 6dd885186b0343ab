//! The agent's ttrpc services: thin handlers grouped by concern.
//!
//! - [`health`]: `grpc.Health` (Check, Version).
//! - `grpc.AgentService`, routed below to: [`containers`] (sandbox and container lifecycle),
//!   [`processes`] (exec, wait, signal), [`stdio`], [`hotplug`], [`system`] (guest facts,
//!   clock, file copy).
//! - [`error`]: the one mapping from handler errors to ttrpc status codes.
//! - [`ids`]: every id in a request checked against the one rule (INVALID_ARGUMENT otherwise).
//! - [`slot`]: the agent's one sandbox; [`block`]: finding a virtio-blk disk by serial.
//!
//! A handler is `fn(&Agent, Request) -> Result<Response, RpcError>`: it parses the request,
//! makes one engine call ([`crate::sandbox::Sandbox`], see the table there) and builds the
//! response; the routing table turns its error into a ttrpc status and logs the outcome.
//! RPCs that are not done yet answer `UNIMPLEMENTED` ("not implemented yet: `name`"): a call
//! never crashes the agent.
//!
//! Some calls block (WaitProcess, ReadStdout, ReadStderr, OnlineCPUMem with `wait`): the
//! server ([`crate::server`]) grows its handler threads on demand, so they do not hold up
//! other calls.

pub mod block;
pub mod containers;
pub mod error;
pub mod health;
pub mod hotplug;
pub mod ids;
pub mod processes;
pub mod slot;
pub mod stdio;
pub mod system;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use protocol::agent_ttrpc::{create_agent_service, AgentService};
use protocol::health_ttrpc::create_health;
use protocol::ttrpc::{self, MethodHandler, TtrpcContext};

pub use error::RpcError;

use crate::guest_details::MEMORY_SYSFS;
use crate::memory::Onliner;
use crate::reaper::Reaper;
use crate::sandbox::Sandbox;
use slot::SandboxSlot;

/// Sets the realtime clock to a time since the Epoch.
pub type SetClock = dyn Fn(Duration) -> io::Result<()> + Send + Sync;

/// What the handlers share: the one sandbox, where the guest's facts are, how to
/// change its clock and online memory. The defaults are the real system; tests swap in fake
/// sysfs directories and a fake clock.
pub struct Agent {
    memory_sysfs: PathBuf,
    clock: Box<SetClock>,
    reaper: Option<Reaper>,
    sandbox: SandboxSlot<Sandbox>,
    /// `/sys/devices/system/cpu`.
    cpu_sysfs: PathBuf,
    /// The cgroup2 root (`/sys/fs/cgroup`), whose cpusets a CPU removal rewrites.
    cgroup_root: PathBuf,
    /// The memory onliner; `None`: the process-wide one ([`crate::memory::system`], set up
    /// by init with `agent.mem_online`).
    onliner: Option<Arc<Onliner>>,
}

impl Agent {
    /// The agent on the real system. Children must be spawned through `reaper`.
    pub fn new(reaper: Option<Reaper>) -> Self {
        Self {
            memory_sysfs: PathBuf::from(MEMORY_SYSFS),
            clock: Box::new(system::set_realtime),
            reaper,
            sandbox: SandboxSlot::new(),
            cpu_sysfs: PathBuf::from(hotplug::CPU_SYSFS),
            cgroup_root: PathBuf::from(crate::cgroup_root::CGROUP_ROOT),
            onliner: None,
        }
    }

    /// Reads CPU facts from `dir` instead of `/sys/devices/system/cpu`.
    pub fn with_cpu_sysfs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cpu_sysfs = dir.into();
        self
    }

    /// Rewrites cpusets below `dir` instead of `/sys/fs/cgroup` on a CPU removal.
    pub fn with_cgroup_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cgroup_root = dir.into();
        self
    }

    /// The CPU sysfs directory and the cgroup root.
    pub fn cpu_paths(&self) -> crate::cpus::CpuPaths {
        crate::cpus::CpuPaths {
            sysfs: self.cpu_sysfs.clone(),
            cgroup_root: self.cgroup_root.clone(),
        }
    }

    /// Onlines memory with `onliner` instead of the process-wide one.
    pub fn with_onliner(mut self, onliner: Arc<Onliner>) -> Self {
        self.onliner = Some(onliner);
        self
    }

    /// The sandbox, or FAILED_PRECONDITION when there is none.
    pub fn sandbox(&self) -> Result<Arc<Sandbox>, RpcError> {
        self.sandbox.get()
    }

    /// Reads memory facts from `dir` instead of `/sys/devices/system/memory`.
    pub fn with_memory_sysfs(mut self, dir: impl Into<PathBuf>) -> Self {
        self.memory_sysfs = dir.into();
        self
    }

    /// Sets the clock through `clock` instead of `clock_settime(CLOCK_REALTIME)`.
    pub fn with_clock(mut self, clock: Box<SetClock>) -> Self {
        self.clock = clock;
        self
    }

    /// The process's one child reaper, when it runs one.
    pub fn reaper(&self) -> Option<&Reaper> {
        self.reaper.as_ref()
    }
}

/// Every method of every service, for [`ttrpc::Server::register_service`].
pub fn services(agent: Agent) -> HashMap<String, Box<dyn MethodHandler + Send + Sync>> {
    let mut methods = create_health(Arc::new(health::HealthRpc));
    methods.extend(create_agent_service(Arc::new(agent)));
    #[cfg(feature = "test-crash-hook")]
    let methods = crate::crash_hook::gate(methods);
    methods
}

/// Turns a handler's result into the ttrpc result, logging the outcome.
fn finish<T>(rpc: &str, result: Result<T, RpcError>) -> ttrpc::Result<T> {
    match result {
        Ok(v) => {
            tracing::debug!("rpc {rpc}: ok");
            Ok(v)
        }
        Err(e @ RpcError::Unimplemented(_)) => {
            tracing::debug!("rpc {rpc}: {e}");
            Err(e.into())
        }
        Err(e) => {
            tracing::warn!("rpc {rpc}: {e}");
            Err(e.into())
        }
    }
}

/// `method: Request -> Response => handler;` rows become the `AgentService` impl.
macro_rules! routes {
    ($($method:ident: $req:ident -> $resp:ty => $handler:path;)*) => {
        impl AgentService for Agent {
            $(
                fn $method(
                    &self,
                    _: &TtrpcContext,
                    req: protocol::agent::$req,
                ) -> ttrpc::Result<$resp> {
                    finish(stringify!($method), $handler(self, req))
                }
            )*
        }
    };
}

use protocol::agent::{
    ReadStreamResponse, StatsContainerResponse, WaitProcessResponse, WriteStreamResponse,
};
use protocol::Empty;

routes! {
    create_sandbox: CreateSandboxRequest -> Empty => containers::create_sandbox;
    destroy_sandbox: DestroySandboxRequest -> Empty => containers::destroy_sandbox;
    create_container: CreateContainerRequest -> Empty => containers::create_container;
    start_container: StartContainerRequest -> Empty => containers::start_container;
    remove_container: RemoveContainerRequest -> Empty => containers::remove_container;
    update_container: UpdateContainerRequest -> Empty => containers::update_container;
    stats_container: StatsContainerRequest -> StatsContainerResponse
        => containers::stats_container;
    list_containers: ListContainersRequest -> protocol::agent::ListContainersResponse
        => containers::list_containers;
    exec_process: ExecProcessRequest -> Empty => processes::exec_process;
    wait_process: WaitProcessRequest -> WaitProcessResponse => processes::wait_process;
    signal_process: SignalProcessRequest -> Empty => processes::signal_process;
    write_stdin: WriteStreamRequest -> WriteStreamResponse => stdio::write_stdin;
    read_stdout: ReadStreamRequest -> ReadStreamResponse => stdio::read_stdout;
    read_stderr: ReadStreamRequest -> ReadStreamResponse => stdio::read_stderr;
    close_stdin: CloseStdinRequest -> Empty => stdio::close_stdin;
    tty_win_resize: TtyWinResizeRequest -> Empty => stdio::tty_win_resize;
    online_cpu_mem: OnlineCPUMemRequest -> Empty => hotplug::online_cpu_mem;
    release_disk: ReleaseDiskRequest -> Empty => containers::release_disk;
    offline_cpus: OfflineCpusRequest -> Empty => hotplug::offline_cpus;
    copy_file: CopyFileRequest -> Empty => system::copy_file;
    set_guest_date_time: SetGuestDateTimeRequest -> Empty => system::set_guest_date_time;
    get_guest_details: GuestDetailsRequest -> protocol::agent::GuestDetailsResponse
        => system::get_guest_details;
}
