//! The sandbox (pod): its shared namespaces, its cgroup, and the registry of its containers.
//! The RPC handlers hold one `Arc<Sandbox>` (CreateSandbox makes it) and call the methods
//! below, one per container or process RPC.
//!
//! The RPCs and what they call (the spec, process and resources travel as OCI JSON):
//!
//! | RPC | call |
//! |---|---|
//! | CreateSandbox | `Sandbox::create(SandboxConfig { hostname, share_pid, ..SandboxConfig::new(id) }, reaper)` |
//! | DestroySandbox | `sandbox.destroy(timeout)` |
//! | CreateContainer | `create_container(CreateRequest { id, exec_id, spec: Spec::from_json(json)?, rootfs })` |
//! | StartContainer | `start_container(id)` |
//! | RemoveContainer | `remove_container(id, timeout)` (0 seconds: the 30 s default) |
//! | UpdateContainer | `update_container(id, &Resources::from_json(json)?)` |
//! | StatsContainer | `stats_container(id)`: cpu, memory, pids, `oom_kills`, io sums |
//! | ListContainers | `container_ids()`, then each container's status, init pid, live exec ids |
//! | ExecProcess | `exec_process(id, exec_id, &spec::Process::from_json(json)?)` |
//! | WaitProcess | `wait_process(id, exec_id)`: blocks; exit code or 128 + signal |
//! | SignalProcess | `signal_process(id, exec_id, signal)` (empty `exec_id`: every process) |
//! | ReadStdout / ReadStderr | `with_io(id, exec_id, \|io\| io.read_stdout(len))`: blocks; empty at EOF |
//! | WriteStdin / CloseStdin | `with_io(.., \|io\| io.write_stdin(data))`, `io.close_stdin()` |
//! | TtyWinResize | `with_io(.., \|io\| io.resize(row, column))` |
//!
//! The handlers are in `crate::rpc`; the agent holds at most one sandbox (`rpc::slot`). The
//! rootfs of a CreateContainer is `RootfsSource::Dir(container::DEFAULT_IMAGE.into())` when
//! the request names none, a directory, or a virtio-blk disk found by its serial
//! (`rpc::block`). Errors map to codes by variant (`rpc::error`, the one place): `Spec` (and
//! [`ContainerError::is_invalid_request`]) InvalidArgument; `NotFound`, `ProcessNotFound`
//! NotFound; `Exists`, `ProcessExists`, `SandboxExists` AlreadyExists; `State`,
//! `ProcessExited`, `NoSandbox` FailedPrecondition; `Timeout` DeadlineExceeded; the rest
//! Internal. WaitProcess and the reads block: the server grows its handler threads for them.
//!
//! Locking: the registry's lock is held only to look up, reserve or drop an id, never across
//! a slow step. A create reserves its id, builds the container without the lock, then fills
//! the slot. Everything else looks the container up (an `Arc`) and works on it under that
//! container's own locks (see `container`), so a slow or blocked call on one container (a
//! wait, a read of its stdout) never holds up another container or the registry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::container::cgroup::{CgroupStats, CgroupTree};
use crate::container::namespaces::{self, NsFd, NsKind, PodNamespaces};
use crate::container::spec::{self, Resources};
use crate::container::stdio::ProcessIo;
use crate::container::{rootfs, Container, ContainerError, CreateRequest, Process, SandboxContext};
use crate::reaper::Reaper;

/// What the sandbox cgroup's `memory.max` leaves to the agent and the guest kernel: every
/// container together may use the guest's MemTotal less this, so a container that runs
/// away is OOM-killed inside the sandbox cgroup instead of starving the agent.
pub const MEMORY_RESERVE: u64 = 64 << 20;

/// The sandbox cgroup's `memory.max` for a guest whose MemTotal is `total` bytes: the total
/// less [`MEMORY_RESERVE`], and never less than half the total (tiny guests). Pure.
pub fn sandbox_memory_limit(total: u64) -> u64 {
    total.saturating_sub(MEMORY_RESERVE).max(total / 2)
}

/// Tasks (threads and processes) the sandbox cgroup's `pids.max` leaves to the agent and the
/// guest kernel: containers together may run the guest's task budget (the smaller of
/// `kernel.pid_max` and `kernel.threads-max`) less this. The agent's ttrpc server alone may
/// run up to `server::MAX_SERVER_THREADS` (450) threads, and ttrpc panics (powering the guest
/// off) when the kernel refuses one: a container's fork bomb must not be able to cause that.
pub const AGENT_TASK_RESERVE: u64 = 1024;

/// The sandbox cgroup's `pids.max` for a guest whose task budget is `budget` (the smaller of
/// `pid_max` and `threads-max`): the budget less [`AGENT_TASK_RESERVE`], and never less than
/// half of it (tiny guests). Pure.
pub fn sandbox_pids_limit(budget: u64) -> u64 {
    budget.saturating_sub(AGENT_TASK_RESERVE).max(budget / 2)
}

/// How a sandbox is set up.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    pub id: String,
    /// The hostname of containers whose spec sets none.
    pub hostname: String,
    /// One pid namespace for every container of the pod (else one each).
    pub share_pid: bool,
    /// The cgroup2 mount (`/sys/fs/cgroup`).
    pub cgroup_root: PathBuf,
    /// The sandbox's run directory (`/run/sandbox`): `containers/<id>` for each container's
    /// rootfs, `shared/` for what may be bind-mounted into containers.
    pub run_dir: PathBuf,
}

impl SandboxConfig {
    /// The guest's defaults for sandbox `id`.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_string(),
            hostname: id.to_string(),
            share_pid: false,
            cgroup_root: PathBuf::from(crate::cgroup_root::CGROUP_ROOT),
            run_dir: PathBuf::from("/run/sandbox"),
        }
    }

    /// Where bind mount sources must lie.
    pub fn shared_dir(&self) -> PathBuf {
        self.run_dir.join("shared")
    }
}

enum Slot {
    /// Being created: the id is taken, the container not there yet.
    Creating,
    Ready(Arc<Container>),
}

/// The shared pid namespace: held by its pid 1 (the pause helper) and an fd.
struct SharedPid {
    ns: NsFd,
    pause: Arc<Process>,
    stopping: Arc<AtomicBool>,
}

/// A running sandbox.
pub struct Sandbox {
    config: SandboxConfig,
    reaper: Reaper,
    cgroups: CgroupTree,
    pod: PodNamespaces,
    shared_pid: Option<SharedPid>,
    containers: Mutex<HashMap<String, Slot>>,
}

impl Sandbox {
    /// CreateSandbox: the sandbox cgroup, the shared network (loopback up) and ipc
    /// namespaces, and with `share_pid` the shared pid namespace and its pause process.
    pub fn create(config: SandboxConfig, reaper: Reaper) -> Result<Arc<Self>, ContainerError> {
        spec::validate_id(&config.id, "sandbox_id")?;
        let cgroups = CgroupTree::new(&config.cgroup_root);
        for failure in cgroups.create_sandbox()? {
            tracing::warn!("sandbox cgroup: {failure}");
        }
        limit_tasks(&cgroups);
        rootfs::ensure_park()?;
        for dir in [config.run_dir.join("containers"), config.shared_dir()] {
            std::fs::create_dir_all(&dir)
                .map_err(ContainerError::io(format!("create {}", dir.display())))?;
        }
        let pod = namespaces::create_pod_namespaces().map_err(ContainerError::io(
            "create the sandbox's net and ipc namespaces",
        ))?;
        let shared_pid = if config.share_pid {
            Some(start_pause(&reaper)?)
        } else {
            None
        };
        tracing::info!(
            "sandbox {} created (shared pid namespace: {})",
            config.id,
            config.share_pid
        );
        Ok(Arc::new(Self {
            config,
            reaper,
            cgroups,
            pod,
            shared_pid,
            containers: Mutex::new(HashMap::new()),
        }))
    }

    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Sets the sandbox cgroup's `memory.max` from the guest's MemTotal (see
    /// [`sandbox_memory_limit`]); called at CreateSandbox and after every hot-add. There is
    /// no sandbox-wide limit of the user's to keep: container limits are per container.
    /// Failures are logged: the containers' own limits still hold.
    pub fn follow_memory_total(&self) {
        let Some(kib) = crate::memory::mem_total_kib() else {
            tracing::warn!("sandbox memory: cannot read MemTotal");
            return;
        };
        let limit = sandbox_memory_limit(kib.saturating_mul(1024));
        match self.cgroups.set_sandbox_memory_max(limit) {
            Ok(()) => tracing::info!(
                "sandbox memory: memory.max {} MiB (MemTotal {} MiB)",
                limit >> 20,
                kib >> 10
            ),
            Err(e) => tracing::warn!("sandbox memory: {}", crate::error_chain::error_chain(&e)),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    fn registry(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        self.containers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The container `id`.
    pub fn container(&self, id: &str) -> Result<Arc<Container>, ContainerError> {
        match self.registry().get(id) {
            Some(Slot::Ready(c)) => Ok(Arc::clone(c)),
            _ => Err(ContainerError::NotFound(id.to_string())),
        }
    }

    /// The ids of the containers, sorted.
    pub fn container_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .registry()
            .iter()
            .filter(|(_, slot)| matches!(slot, Slot::Ready(_)))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// CreateContainer: set up, process waiting for StartContainer.
    pub fn create_container(&self, request: CreateRequest) -> Result<(), ContainerError> {
        spec::validate_id(&request.id, "container_id")?;
        let id = request.id.clone();
        {
            let mut registry = self.registry();
            if registry.contains_key(&id) {
                return Err(ContainerError::Exists(id));
            }
            registry.insert(id.clone(), Slot::Creating);
        }
        let shared_dir = self.config.shared_dir();
        let ctx = SandboxContext {
            reaper: &self.reaper,
            cgroups: &self.cgroups,
            run_dir: &self.config.run_dir,
            shared_dir: &shared_dir,
            pod: &self.pod,
            shared_pid: self.shared_pid.as_ref().map(|p| &p.ns),
            default_hostname: &self.config.hostname,
        };
        let result = crate::container::create::create(&ctx, request);
        let mut registry = self.registry();
        match result {
            Ok(container) => {
                tracing::info!(
                    "container {id} created (init pid {})",
                    container.init().pid()
                );
                registry.insert(id, Slot::Ready(container));
                Ok(())
            }
            Err(e) => {
                registry.remove(&id);
                Err(e)
            }
        }
    }

    /// StartContainer.
    pub fn start_container(&self, id: &str) -> Result<(), ContainerError> {
        self.container(id)?.start()
    }

    /// ExecProcess: `process` (an OCI `process` object) as `exec_id` in running container
    /// `id`.
    pub fn exec_process(
        &self,
        id: &str,
        exec_id: &str,
        process: &spec::Process,
    ) -> Result<(), ContainerError> {
        self.container(id)?.exec(exec_id, process)
    }

    /// WaitProcess: blocks until the process ends; its exit code (128 + signal if killed).
    pub fn wait_process(&self, id: &str, exec_id: &str) -> Result<i32, ContainerError> {
        self.container(id)?.wait(exec_id)
    }

    /// SignalProcess; an empty `exec_id` signals every process of the container.
    pub fn signal_process(
        &self,
        id: &str,
        exec_id: &str,
        signal: i32,
    ) -> Result<(), ContainerError> {
        self.container(id)?.signal(exec_id, signal)
    }

    /// The process, for the stdio calls: `process(..)?.io().read_stdout(len)` and so on.
    pub fn process(&self, id: &str, exec_id: &str) -> Result<Arc<Process>, ContainerError> {
        self.container(id)?.process(exec_id)
    }

    /// The stdio of a process (ReadStdout, ReadStderr, WriteStdin, CloseStdin, TtyWinResize).
    pub fn with_io<T>(
        &self,
        id: &str,
        exec_id: &str,
        f: impl FnOnce(&ProcessIo) -> std::io::Result<T>,
    ) -> Result<T, ContainerError> {
        let process = self.process(id, exec_id)?;
        f(process.io()).map_err(ContainerError::io(format!("stdio of {exec_id} in {id}")))
    }

    /// UpdateContainer.
    pub fn update_container(&self, id: &str, resources: &Resources) -> Result<(), ContainerError> {
        self.container(id)?.update(resources)
    }

    /// StatsContainer.
    pub fn stats_container(&self, id: &str) -> Result<CgroupStats, ContainerError> {
        self.container(id)?.stats()
    }

    /// RemoveContainer: kill, wait up to `timeout` (`None`: forever), clean up, forget.
    pub fn remove_container(
        &self,
        id: &str,
        timeout: Option<Duration>,
    ) -> Result<(), ContainerError> {
        let container = self.container(id)?;
        container.remove(timeout)?;
        let mut registry = self.registry();
        if let Some(Slot::Ready(c)) = registry.get(id) {
            if Arc::ptr_eq(c, &container) {
                registry.remove(id);
            }
        }
        tracing::info!("container {id} removed");
        Ok(())
    }

    /// DestroySandbox: removes every container, stops the pause process, removes the
    /// sandbox cgroup. Returns the first error after trying everything.
    pub fn destroy(&self, timeout: Option<Duration>) -> Result<(), ContainerError> {
        let mut first_error = None;
        for id in self.container_ids() {
            if let Err(e) = self.remove_container(&id, timeout) {
                tracing::warn!("destroy sandbox: remove {id}: {e}");
                first_error.get_or_insert(e);
            }
        }
        if let Some(shared) = &self.shared_pid {
            shared.stopping.store(true, Ordering::SeqCst);
            let _ = shared.pause.signal(libc::SIGKILL);
            shared.pause.wait_timeout(Duration::from_secs(10));
        }
        if let Err(e) = self.cgroups.remove_sandbox() {
            first_error.get_or_insert(e.into());
        }
        match first_error {
            None => {
                tracing::info!("sandbox {} destroyed", self.config.id);
                Ok(())
            }
            Some(e) => Err(e),
        }
    }
}

/// Starts the pause helper as pid 1 of a new pid namespace and opens that namespace.
/// Sets the sandbox cgroup's `pids.max` from the guest's task budget (see
/// [`sandbox_pids_limit`]). Failures are logged: containers' own limits still hold.
fn limit_tasks(cgroups: &CgroupTree) {
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let Some(budget) = [
        read("/proc/sys/kernel/pid_max"),
        read("/proc/sys/kernel/threads-max"),
    ]
    .into_iter()
    .flatten()
    .min() else {
        tracing::warn!("sandbox tasks: cannot read kernel.pid_max nor kernel.threads-max");
        return;
    };
    let limit = sandbox_pids_limit(budget);
    match cgroups.set_sandbox_pids_max(limit) {
        Ok(()) => tracing::info!("sandbox tasks: pids.max {limit} (guest budget {budget})"),
        Err(e) => tracing::warn!("sandbox tasks: {}", crate::error_chain::error_chain(&e)),
    }
}

fn start_pause(reaper: &Reaper) -> Result<SharedPid, ContainerError> {
    let stopping = Arc::new(AtomicBool::new(false));
    let pause = crate::container::create::spawn_pause(reaper, Arc::clone(&stopping))?;
    let ns = namespaces::open_ns(pause.pid(), NsKind::Pid)
        .map_err(ContainerError::io("open the shared pid namespace"));
    match ns {
        Ok(ns) => Ok(SharedPid {
            ns,
            pause,
            stopping,
        }),
        Err(e) => {
            stopping.store(true, Ordering::SeqCst);
            let _ = pause.signal(libc::SIGKILL);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sandbox_memory_limit_leaves_the_reserve() {
        const MIB: u64 = 1 << 20;
        assert_eq!(sandbox_memory_limit(512 * MIB), 448 * MIB);
        assert_eq!(sandbox_memory_limit(1536 * MIB), 1472 * MIB);
        // Tiny guests keep half.
        assert_eq!(sandbox_memory_limit(96 * MIB), 48 * MIB);
        assert_eq!(sandbox_memory_limit(0), 0);
    }

    #[test]
    fn test_sandbox_pids_limit_leaves_the_agent_its_tasks() {
        // A 512 MiB guest: threads-max 4096.
        assert_eq!(sandbox_pids_limit(4096), 4096 - AGENT_TASK_RESERVE);
        assert_eq!(sandbox_pids_limit(32768), 32768 - AGENT_TASK_RESERVE);
        // Tiny guests keep half.
        assert_eq!(sandbox_pids_limit(1024), 512);
        assert_eq!(sandbox_pids_limit(0), 0);
    }
}
