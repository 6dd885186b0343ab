//! `host-vmm boot`: set up the sandbox, build the VM, run it, tear it down.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use host_vmm::agent::{log_socket_path, AgentClient, ConnectOptions, LogSink, LogSinkOptions};
use host_vmm::api::{ApiServer, VmmApi};
use host_vmm::builder::{build_vm, BootOptions};
use host_vmm::config::{self, Overrides};
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use host_vmm::vmm::{stop_signals, GuestExit};

/// What `boot` needs from the command line.
pub struct BootRequest {
    pub id: Option<String>,
    pub config: Option<PathBuf>,
    pub console: Option<PathBuf>,
    pub overrides: Overrides,
    /// Echo the agent's log to stderr.
    pub verbose: bool,
}

/// How long after boot the VMM keeps trying to set the guest's clock.
const CLOCK_DEADLINE: Duration = Duration::from_secs(60);

pub fn boot(req: BootRequest) -> anyhow::Result<GuestExit> {
    let cfg = config::load_with(req.config.as_deref(), &req.overrides)
        .context("cannot load the configuration")?;
    let id = req
        .id
        .unwrap_or_else(|| format!("hv-{}", std::process::id()));
    // Removed when it goes out of scope, whatever the outcome.
    let runtime = RuntimeDir::create(&runtime_root(), &id)
        .context("cannot set up the sandbox's runtime directory")?;
    tracing::info!(id, dir = %runtime.path().display(), "sandbox runtime directory");
    let vsock = runtime.vsock_socket();
    let _log_sink = LogSink::start(
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
    };
    let vmm = build_vm(&cfg, &opts).context("cannot build the VM")?;
    // Declared after `runtime`, so dropped (socket closed) before the directory goes.
    let _api = ApiServer::start(
        &runtime.api_socket(),
        Arc::new(VmmApi::new(vmm.memory_hotplug(), cfg.default_memory << 20)),
    )
    .context("cannot start the control socket")?;
    stop_signals::spawn_stop_waiter(vmm.exit_signal().clone())
        .context("cannot start the stop-signal thread")?;
    spawn_clock_setter(vsock)?;
    vmm.run().context("cannot run the VM")
}

/// The guest has no RTC: once its agent answers, give it the host's time
/// (Kata does the same). Best effort: a guest that is gone by then is fine.
fn spawn_clock_setter(vsock: PathBuf) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("guest-clock".into())
        .spawn(move || {
            let opts = ConnectOptions {
                deadline: CLOCK_DEADLINE,
                ..Default::default()
            };
            let result = AgentClient::connect(&vsock, &opts)
                .and_then(|agent| agent.set_guest_date_time(SystemTime::now()));
            match result {
                Ok(()) => tracing::info!("guest clock set"),
                Err(e) => tracing::info!("guest clock not set: {e}"),
            }
        })
        .context("cannot start the guest clock thread")?;
    Ok(())
}
