//! `host-vmm run`: one container in a fresh sandbox VM, attached like `docker run`.
//!
//! Everything the command line says is checked before anything starts (namespace modes,
//! the spec, the bundle, memory against the configuration), so a refused option leaves no
//! VM and no runtime directory. Then: boot the VM on a thread, connect to the agent,
//! `CreateSandbox`, grow the VM's RAM if `--memory` asks for more than it booted with
//! (hot-add, then `OnlineCPUMem`), `CreateContainer`, `StartContainer`, stream its stdio
//! until it exits, `RemoveContainer`, `DestroySandbox`, stop the VM, remove the runtime
//! directory, and exit with the container's status.
//!
//! `run --id ID` without a command starts the sandbox only (`CreateSandbox`) and keeps it
//! running, like `boot`, for `create`/`start`/`exec`/... to target.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use host_vmm::agent::{AgentClient, AgentDead, ConnectOptions, RootfsSource};
use host_vmm::builder::DiskConfig;
use host_vmm::errors::error_chain;
use host_vmm::image;
use host_vmm::oci::spec::{apply_process, apply_resources, check_args, set_hostname};
use host_vmm::oci::{
    default_spec, read_bundle, NamespaceModes, PidMode, ProcessOptions, ResourceOptions,
};
use host_vmm::sandbox::{runtime_root, validate_id, RuntimeDir};
use host_vmm::seccomp::{self, ThreadKind};
use host_vmm::vmm::{ExitSignal, GuestExit};

use super::sandbox_vm::{RunningVm, SandboxVm, VmRequest};
use super::session::{attach_and_wait, Attach};
use super::signals::{self, Route};
use super::stdio::Target;

/// Exit status when the sandbox or the container could not be started (as `docker run`).
pub const EXIT_NOT_STARTED: u8 = 125;
/// How long `run` waits for the agent of the VM it booted.
const AGENT_DEADLINE: Duration = Duration::from_secs(120);
/// Seconds `RemoveContainer` may wait for the container's processes to die.
const REMOVE_TIMEOUT_SECS: u32 = 10;

/// Where the container's root filesystem comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootfsChoice {
    /// The guest's default image (busybox).
    Default,
    /// `--rootfs DIR`.
    Dir(PathBuf),
    /// `--bundle DIR`: `DIR/config.json` and its `root.path`.
    Bundle(PathBuf),
}

/// The namespace flags as given.
#[derive(Debug, Clone, Default)]
pub struct NamespaceFlags {
    pub net: Option<String>,
    pub ipc: Option<String>,
    pub pid: Option<String>,
    pub uts: Option<String>,
}

impl NamespaceFlags {
    pub fn check(&self) -> anyhow::Result<NamespaceModes> {
        Ok(NamespaceModes::from_flags(
            self.net.as_deref(),
            self.ipc.as_deref(),
            self.pid.as_deref(),
            self.uts.as_deref(),
        )?)
    }
}

/// What `run` needs from the command line.
pub struct RunRequest {
    pub vm: VmRequest,
    pub rootfs: RootfsChoice,
    pub process: ProcessOptions,
    pub resources: ResourceOptions,
    pub namespaces: NamespaceFlags,
    /// `-i`: copy the host's stdin to the container.
    pub interactive: bool,
}

/// A checked plan: what will be sent.
struct Plan {
    id: String,
    share_pid: bool,
    /// `None`: no container, keep the sandbox running.
    spec_json: Option<String>,
    rootfs_dir: Option<PathBuf>,
}

fn plan(req: &RunRequest) -> anyhow::Result<Plan> {
    let modes = req.namespaces.check()?;
    let id = req.vm.sandbox_id();
    validate_id(&id).context("--id")?;
    let keep_running =
        req.process.args.is_empty() && !matches!(req.rootfs, RootfsChoice::Bundle(_));
    if keep_running {
        if req.vm.id.is_none() {
            bail!("nothing to run: give a command after `--`, or --id ID to start a sandbox that keeps running");
        }
        return Ok(Plan {
            id,
            share_pid: modes.pid == PidMode::Pod,
            spec_json: None,
            rootfs_dir: None,
        });
    }
    let (spec, rootfs_dir) =
        container_spec(&req.rootfs, &req.process, &req.resources, hostname(&id))?;
    Ok(Plan {
        id,
        share_pid: modes.pid == PidMode::Pod,
        spec_json: Some(spec.to_string()),
        rootfs_dir,
    })
}

/// A container's spec and the directory its rootfs image is made from (`None`: the
/// default image), for `run` and `create`: a bundle's, or the default spec with the
/// command-line process and resources. The hostname is `hostname` unless the spec has one.
pub fn container_spec(
    rootfs: &RootfsChoice,
    process: &ProcessOptions,
    resources: &ResourceOptions,
    hostname: &str,
) -> anyhow::Result<(serde_json::Value, Option<PathBuf>)> {
    let (mut spec, rootfs_dir) = match rootfs {
        RootfsChoice::Bundle(dir) => {
            let b = read_bundle(dir, process, resources)
                .with_context(|| format!("bundle {}", dir.display()))?;
            (b.spec, Some(b.rootfs))
        }
        other => {
            let mut spec = default_spec(hostname);
            apply_process(&mut spec, process)?;
            apply_resources(&mut spec, resources)?;
            check_args(&spec)?;
            match other {
                RootfsChoice::Dir(dir) if !dir.is_dir() => {
                    bail!("--rootfs {}: not a directory", dir.display())
                }
                RootfsChoice::Dir(dir) => (spec, Some(dir.clone())),
                _ => (spec, None),
            }
        }
    };
    if spec.get("hostname").is_none() {
        set_hostname(&mut spec, hostname)?;
    }
    Ok((spec, rootfs_dir))
}

/// The container's hostname: its id (a checked id is at most the kernel's 64 bytes).
pub fn hostname(id: &str) -> &str {
    const _: () = assert!(
        host_vmm::sandbox::MAX_ID_LEN <= 64,
        "ids must fit __NEW_UTS_LEN"
    );
    id
}

/// The RAM to hot-add so a sandbox that booted with `boot_mib` has at least `limit_mib`:
/// the difference rounded up to the memory block size; 0 when it has enough.
pub fn hotplug_bytes(limit_mib: u64, boot_mib: u64, block_bytes: u64) -> u64 {
    let need = limit_mib.saturating_sub(boot_mib).saturating_mul(1 << 20);
    if need == 0 || block_bytes == 0 {
        return need;
    }
    need.div_ceil(block_bytes).saturating_mul(block_bytes)
}

/// Runs the container; returns the exit status (see `--help`).
pub fn run(req: RunRequest) -> anyhow::Result<u8> {
    // A stop signal while setting up is acted on once there is something to stop.
    signals::route(Route::Hold);
    let plan = plan(&req)?;
    let cfg = req.vm.load_config()?;
    if let Some(mib) = req.resources.memory_mib {
        if mib > cfg.default_memory && cfg.memory_slots == 0 {
            bail!(
                "--memory {mib} MiB is more than the sandbox's default_memory ({} MiB) and memory \
                 hotplug is off (memory_slots = 0 in the configuration)",
                cfg.default_memory
            );
        }
        if mib > cfg.default_maxmemory {
            bail!(
                "--memory {mib} MiB is more than default_maxmemory ({} MiB)",
                cfg.default_maxmemory
            );
        }
    }
    let mut vm_req = req.vm;
    let rootfs = match &plan.rootfs_dir {
        None => RootfsSource::Default,
        Some(dir) => {
            vm_req
                .disks
                .push(rootfs_image_disk(dir, RUN_ROOTFS_SERIAL)?);
            block_rootfs(RUN_ROOTFS_SERIAL)
        }
    };

    if let Some(sig) = signals::take_pending() {
        return Ok(signal_status(sig));
    }
    let vm = match SandboxVm::start(vm_req, cfg).and_then(SandboxVm::spawn) {
        Ok(vm) => vm,
        Err(e) => return Ok(not_started(e)),
    };
    // The VM runs on threads of its own, each under its own filter: from here on this
    // thread only talks to the agent, pumps stdio and hot-adds memory (`-m`).
    if let Err(e) = seccomp::install(ThreadKind::Cli) {
        return Ok(ended_or_not_started(vm, e.into()));
    }
    // From now on a stop signal stops the VM (and a session forwards it first).
    signals::route(Route::Vm(vm.exit_signal().clone()));
    let vsock = vm.vsock().to_path_buf();
    let exit = vm.exit_signal().clone();
    let connect = move || -> anyhow::Result<AgentClient> {
        connect_while_running(&vsock, &exit).context("cannot reach the sandbox's agent")
    };
    let control = match connect().and_then(|agent| {
        agent
            .create_sandbox(&plan.id, hostname(&plan.id), plan.share_pid)
            .context("CreateSandbox")?;
        Ok(agent)
    }) {
        Ok(a) => a,
        Err(e) => return Ok(ended_or_not_started(vm, e)),
    };
    let Some(spec_json) = &plan.spec_json else {
        return keep_running(vm);
    };
    if let Err(e) = grow_memory(&vm, &control, req.resources.memory_mib)
        .and_then(|()| grow_cpus(&plan.id, &control, req.resources.cpus))
        .and_then(|()| create_and_start(&control, &plan.id, spec_json, &rootfs))
    {
        let stopped = stop_signal(&vm);
        teardown(&control, &plan.id, vm);
        return Ok(match stopped {
            Some(sig) => signal_status(sig),
            None => not_started(e),
        });
    }
    let attach = Attach {
        target: Target {
            container: plan.id.clone(),
            exec: plan.id.clone(),
        },
        tty: req.process.terminal,
        interactive: req.interactive,
        init: true,
    };
    let result = attach_and_wait(&connect, &control, &attach, Some(vm.exit_signal().clone()));
    match &result {
        // No RPC to a dead agent: each would only wait for its timeout.
        Err(e) if e.downcast_ref::<AgentDead>().is_some() => stop_vm(vm),
        _ => teardown(&control, &plan.id, vm),
    }
    let exit = result?;
    if exit.oom_killed {
        let limit = req
            .resources
            .memory_mib
            .map_or_else(|| "none".to_string(), |m| format!("{m} MiB"));
        eprintln!(
            "host-vmm: container {} was OOM-killed (memory limit {limit})",
            plan.id
        );
    }
    Ok(exit.code)
}

/// Connects to the agent of `exit`'s VM, retrying until [`AGENT_DEADLINE`], but giving up
/// as soon as the VM has ended.
fn connect_while_running(vsock: &Path, exit: &ExitSignal) -> anyhow::Result<AgentClient> {
    let started = Instant::now();
    let opts = ConnectOptions {
        deadline: Duration::from_secs(2),
        ..Default::default()
    };
    loop {
        match AgentClient::connect(vsock, &opts) {
            Ok(agent) => return Ok(agent),
            Err(e) if exit.is_requested() => return Err(e).context("the VM has stopped"),
            Err(e) if started.elapsed() >= AGENT_DEADLINE => return Err(e.into()),
            // Refused outright (not a timeout): wait a little before the next try.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The stop signal that ended the VM, if one did.
fn stop_signal(vm: &RunningVm) -> Option<i32> {
    if !vm.has_ended() {
        return None;
    }
    match vm.exit_signal().wait() {
        GuestExit::Stopped { signal } => Some(signal),
        _ => None,
    }
}

/// 128 + signal, as a shell reports a process a signal ended.
fn signal_status(sig: i32) -> u8 {
    u8::try_from(128 + sig).unwrap_or(1)
}

/// The status of a `run` whose setup failed: 128+signal if a stop signal ended the VM,
/// else [`EXIT_NOT_STARTED`]. Stops the VM.
fn ended_or_not_started(vm: RunningVm, e: anyhow::Error) -> u8 {
    let code = match stop_signal(&vm) {
        Some(sig) => signal_status(sig),
        None => not_started(e),
    };
    match vm.stop() {
        Ok(outcome) => tracing::debug!(%outcome, "sandbox VM stopped"),
        Err(e) => tracing::warn!("sandbox VM: {e:#}"),
    }
    code
}

fn not_started(e: anyhow::Error) -> u8 {
    eprintln!(
        "host-vmm: error: the container could not be started: {}",
        error_chain(e.as_ref())
    );
    EXIT_NOT_STARTED
}

/// `--cpus` above the boot vCPUs: hot-add whole vCPUs through the control socket (its
/// thread may create vCPUs; this one may not) and wait until the guest has them online.
fn grow_cpus(id: &str, agent: &AgentClient, cpus: Option<f64>) -> anyhow::Result<()> {
    let Some(cpus) = cpus else {
        return Ok(());
    };
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    super::cpus::grow_for_quota(&dir, agent, id, cpus)
}

/// `--memory` above the boot RAM: hot-add the difference (whole memory blocks) and wait
/// until the guest has it online.
fn grow_memory(vm: &RunningVm, agent: &AgentClient, limit_mib: Option<u64>) -> anyhow::Result<()> {
    let Some(limit) = limit_mib else {
        return Ok(());
    };
    let boot_mib = vm.config().default_memory;
    if limit <= boot_mib {
        return Ok(());
    }
    let Some(hotplug) = vm.hotplug() else {
        bail!("--memory {limit} MiB: the VM has no memory hotplug slots");
    };
    let bytes = hotplug_bytes(limit, boot_mib, hotplug.status().block_bytes);
    let added = hotplug
        .hotplug_memory(bytes)
        .with_context(|| format!("--memory {limit} MiB: cannot hot-add {} MiB", bytes >> 20))?;
    agent
        .online_cpu_mem(added.total_bytes)
        .context("OnlineCPUMem")?;
    tracing::info!(
        added_mib = added.size >> 20,
        total_mib = added.total_bytes >> 20,
        "memory hot-added for --memory {limit} MiB (booted with {boot_mib} MiB)"
    );
    Ok(())
}

fn create_and_start(
    agent: &AgentClient,
    id: &str,
    spec_json: &str,
    rootfs: &RootfsSource,
) -> anyhow::Result<()> {
    agent
        .create_container(id, id, spec_json, rootfs)
        .context("CreateContainer")?;
    agent.start_container(id).context("StartContainer")?;
    Ok(())
}

/// The serial of `run`'s rootfs disk: the only disk of its sandbox (a boot disk; disks
/// hot-added later get fresh `disk-N` serials from the VMM, which refuses this one).
pub const RUN_ROOTFS_SERIAL: &str = "rootfs";

/// The container's rootfs directory as a read-only erofs disk (built once, then cached by
/// content) with `serial` (empty: the VMM picks one at hot-add).
pub fn rootfs_image_disk(dir: &Path, serial: &str) -> anyhow::Result<DiskConfig> {
    let cache = image::default_cache_dir().context("rootfs image cache")?;
    let path = image::rootfs_image(dir, &cache)
        .with_context(|| format!("cannot build the rootfs image of {}", dir.display()))?;
    tracing::info!(dir = %dir.display(), image = %path.display(), "container rootfs image");
    Ok(DiskConfig {
        path,
        read_only: true,
        serial: serial.to_string(),
    })
}

/// How the agent finds a rootfs disk: by its exact serial, erofs.
pub fn block_rootfs(serial: &str) -> RootfsSource {
    RootfsSource::Block {
        serial: serial.to_string(),
        fstype: "erofs".into(),
    }
}

/// Removes the container and the sandbox (best effort: the VM goes anyway), then stops the
/// VM and waits until it and its runtime directory are gone.
fn teardown(agent: &AgentClient, id: &str, vm: RunningVm) {
    if !vm.has_ended() {
        if let Err(e) = agent.remove_container(id, REMOVE_TIMEOUT_SECS) {
            tracing::debug!("RemoveContainer: {e}");
        }
        if let Err(e) = agent.destroy_sandbox() {
            tracing::debug!("DestroySandbox: {e}");
        }
    }
    stop_vm(vm);
}

/// Stops the VM and waits until it and its runtime directory are gone.
fn stop_vm(vm: RunningVm) {
    let _wait = host_vmm::waits::enter("the sandbox VM to stop (vCPUs, devices, runtime dir)");
    match vm.stop() {
        Ok(outcome) => tracing::debug!(%outcome, "sandbox VM stopped"),
        Err(e) => tracing::warn!("sandbox VM: {e:#}"),
    }
}

/// `run --id ID` without a command: serve until a stop signal or the guest's end.
fn keep_running(vm: RunningVm) -> anyhow::Result<u8> {
    // Signals already stop the VM (Route::Vm).
    tracing::info!(id = vm.id(), "sandbox ready; stop it with SIGTERM");
    let outcome = vm.wait()?;
    tracing::info!(%outcome, "sandbox stopped");
    Ok(u8::try_from(outcome.exit_code()).unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hotplug_bytes_rounds_to_blocks() {
        let block = 128 << 20;
        assert_eq!(hotplug_bytes(64, 512, block), 0);
        assert_eq!(hotplug_bytes(512, 512, block), 0);
        assert_eq!(hotplug_bytes(513, 512, block), 128 << 20);
        assert_eq!(hotplug_bytes(1024, 512, block), 512 << 20);
        assert_eq!(hotplug_bytes(1100, 512, block), 640 << 20);
        assert_eq!(hotplug_bytes(600, 512, 0), 88 << 20);
    }

    #[test]
    fn test_hostname_is_the_id() {
        assert_eq!(hostname("abc"), "abc");
        let longest = "a".repeat(host_vmm::sandbox::MAX_ID_LEN);
        assert_eq!(hostname(&longest), longest);
    }
}
