//! Starting a sandbox VM, shared by `boot` and `run`: runtime directory, agent log sink,
//! the VM itself, its control socket and the guest setup (clock, memory block size). [`SandboxVm::run`] runs it
//! on the calling thread (`boot`); [`SandboxVm::spawn`] on a thread of its own (`run`), with
//! a handle that stops it and waits for it.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use host_vmm::agent::{log_socket_path, AgentClient, ConnectOptions, LogSink, LogSinkOptions};
use host_vmm::api::{ApiServer, VmmApi};
use host_vmm::builder::{build_vm, BootOptions, DiskConfig};
use host_vmm::config::{self, HypervisorConfig, Overrides};
use host_vmm::hotplug::memory::MemoryHotplug;
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use host_vmm::seccomp::{self, ThreadKind};
use host_vmm::vmm::{ExitSignal, GuestExit, Vmm};

/// How long after boot the VMM keeps trying to reach the agent (clock, block size).
const CLOCK_DEADLINE: Duration = Duration::from_secs(60);

/// What a sandbox VM needs from the command line.
pub struct VmRequest {
    pub id: Option<String>,
    pub config: Option<PathBuf>,
    pub console: Option<PathBuf>,
    pub overrides: Overrides,
    /// Echo the agent's log to stderr.
    pub verbose: bool,
    /// virtio-blk disks (container images).
    pub disks: Vec<DiskConfig>,
}

impl VmRequest {
    /// The configuration with the overrides applied (checked, before anything starts).
    pub fn load_config(&self) -> anyhow::Result<HypervisorConfig> {
        config::load_with(self.config.as_deref(), &self.overrides)
            .context("cannot load the configuration")
    }

    /// The sandbox id: `--id`, or `hv-<pid>`.
    pub fn sandbox_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| format!("hv-{}", std::process::id()))
    }
}

/// A built sandbox VM that has not run yet. Dropping it removes everything it set up.
pub struct SandboxVm {
    vmm: Vmm,
    // Dropped in this order: the control socket, the log sink, then the directory.
    _api: ApiServer,
    _log_sink: LogSink,
    runtime: RuntimeDir,
    cfg: HypervisorConfig,
}

impl SandboxVm {
    /// Sets up the sandbox `req` describes with the configuration `cfg` and builds its VM.
    pub fn start(req: VmRequest, cfg: HypervisorConfig) -> anyhow::Result<Self> {
        let id = req.sandbox_id();
        // Removed when it goes out of scope, whatever the outcome.
        let runtime = RuntimeDir::create(&runtime_root(), &id)
            .context("cannot set up the sandbox's runtime directory")?;
        tracing::info!(id, dir = %runtime.path().display(), "sandbox runtime directory");
        let vsock = runtime.vsock_socket();
        let log_sink = LogSink::start(
            &log_socket_path(&vsock),
            &runtime.agent_log(),
            LogSinkOptions {
                echo: req.verbose,
                ..Default::default()
            },
        )
        .context("cannot start the agent log sink")?;
        let opts = BootOptions {
            console: req.console,
            vsock_socket: Some(vsock.clone()),
            disks: req.disks,
        };
        let vmm = build_vm(&cfg, &opts).context("cannot build the VM")?;
        let api = ApiServer::start(
            &runtime.api_socket(),
            Arc::new(
                VmmApi::new(vmm.memory_hotplug(), cfg.default_memory << 20)
                    .with_disk_hotplug(vmm.disk_hotplug())
                    .with_cpu_hotplug(vmm.cpu_hotplug())
                    .with_vcpus(cfg.default_vcpus)
                    .with_stop(vmm.exit_signal().clone()),
            ),
        )
        .context("cannot start the control socket")?;
        spawn_guest_setup(vsock, vmm.memory_hotplug())?;
        Ok(Self {
            vmm,
            _api: api,
            _log_sink: log_sink,
            runtime,
            cfg,
        })
    }

    /// The signal that stops the VM.
    pub fn exit_signal(&self) -> Arc<ExitSignal> {
        self.vmm.exit_signal().clone()
    }

    /// Runs the VM on this thread until it ends, then tears the sandbox down.
    pub fn run(self) -> anyhow::Result<GuestExit> {
        let Self {
            vmm,
            _api,
            _log_sink,
            runtime,
            cfg: _,
        } = self;
        let outcome = vmm.run().context("cannot run the VM");
        drop(_api);
        drop(_log_sink);
        drop(runtime);
        outcome
    }

    /// Runs the VM on a thread of its own.
    pub fn spawn(self) -> anyhow::Result<RunningVm> {
        let exit = self.exit_signal();
        let hotplug = self.vmm.memory_hotplug();
        let vsock = self.runtime.vsock_socket();
        let id = self.runtime.id().to_string();
        let cfg = self.cfg.clone();
        let thread = std::thread::Builder::new()
            .name("vm".into())
            .spawn(move || self.run())
            .context("cannot start the VM thread")?;
        Ok(RunningVm {
            exit,
            hotplug,
            vsock,
            id,
            cfg,
            thread: Some(thread),
        })
    }
}

/// A sandbox VM running on its own thread. Dropping it stops the VM and waits until the VM
/// thread has torn everything down (vCPUs, sockets, the runtime directory).
pub struct RunningVm {
    exit: Arc<ExitSignal>,
    hotplug: Option<Arc<MemoryHotplug>>,
    vsock: PathBuf,
    id: String,
    cfg: HypervisorConfig,
    thread: Option<JoinHandle<anyhow::Result<GuestExit>>>,
}

impl RunningVm {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The hybrid vsock socket the agent is reached through.
    pub fn vsock(&self) -> &std::path::Path {
        &self.vsock
    }

    pub fn config(&self) -> &HypervisorConfig {
        &self.cfg
    }

    /// The VM's memory hotplug, if it has slots.
    pub fn hotplug(&self) -> Option<&Arc<MemoryHotplug>> {
        self.hotplug.as_ref()
    }

    pub fn exit_signal(&self) -> &Arc<ExitSignal> {
        &self.exit
    }

    /// Has the VM ended (or been asked to)?
    pub fn has_ended(&self) -> bool {
        self.exit.is_requested()
    }

    /// Stops the VM (as a SIGTERM to `boot` would) and waits for its thread: returns how the
    /// VM ended (the first exit wins: a guest that had already stopped keeps its outcome).
    pub fn stop(mut self) -> anyhow::Result<GuestExit> {
        self.stop_and_join()
    }

    /// Waits until the VM ends by itself (or a stop signal ends it).
    pub fn wait(mut self) -> anyhow::Result<GuestExit> {
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the VM thread panicked"))?,
            None => anyhow::bail!("the VM was already stopped"),
        }
    }

    fn stop_and_join(&mut self) -> anyhow::Result<GuestExit> {
        self.exit.request(GuestExit::Stopped {
            signal: libc::SIGTERM,
        });
        match self.thread.take() {
            Some(t) => t
                .join()
                .map_err(|_| anyhow::anyhow!("the VM thread panicked"))?,
            None => anyhow::bail!("the VM was already stopped"),
        }
    }
}

impl Drop for RunningVm {
    fn drop(&mut self) {
        if self.thread.is_some() {
            if let Err(e) = self.stop_and_join() {
                tracing::warn!("stopping the VM: {e:#}");
            }
        }
    }
}

/// Once the agent answers: give the guest the host's time (it has no RTC; Kata does the
/// same), and take the guest's memory block size for hot-adds (GetGuestDetails) instead of
/// assuming it. Best effort: a guest that is gone by then is fine.
fn spawn_guest_setup(vsock: PathBuf, hotplug: Option<Arc<MemoryHotplug>>) -> anyhow::Result<()> {
    // An agent client, like the command line's threads.
    seccomp::thread("guest-setup", ThreadKind::Cli, move || {
        let opts = ConnectOptions {
            deadline: CLOCK_DEADLINE,
            ..Default::default()
        };
        let agent = match AgentClient::connect(&vsock, &opts) {
            Ok(agent) => agent,
            Err(e) => return tracing::info!("guest clock not set: {e}"),
        };
        match agent.set_guest_date_time(SystemTime::now()) {
            Ok(()) => tracing::info!("guest clock set"),
            Err(e) => tracing::info!("guest clock not set: {e}"),
        }
        let Some(hotplug) = hotplug else { return };
        match agent.guest_details().map(|d| d.mem_block_size) {
            Ok(Some(block)) => match hotplug.use_guest_block_size(block) {
                Ok(used) => tracing::debug!(
                    guest_mib = block >> 20,
                    used_mib = used >> 20,
                    "memory block size"
                ),
                Err(e) => tracing::warn!("memory hotplug: {e}; hot-adds may not go online"),
            },
            Ok(None) => tracing::warn!(
                "memory hotplug: the guest reports no memory block size (no memory hotplug \
                     in its kernel?)"
            ),
            Err(e) => tracing::info!("guest details not read: {e}"),
        }
    })
    .context("cannot start the guest setup thread")?;
    Ok(())
}
