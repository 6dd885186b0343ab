//! Creating a container: cgroup, rootfs, stdio, the helper in new namespaces, and the
//! exchange that leaves it set up and waiting for Start. Every step undoes the earlier ones
//! when a later one fails, so a failed create leaves no cgroup, mount or process behind.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sched::CloneFlags;

use super::caps::CapPlan;
use super::cgroup::{CgroupTree, ContainerCgroup};
use super::channel::{self, FromHelper, InitPlan, Plan, ProcessPlan, Role, ToHelper};
use super::devices;
use super::error::ContainerError;
use super::namespaces::{ContainerNamespaces, NsFd, PodNamespaces};
use super::process::Process;
use super::rootfs::{self, RootfsSource};
use super::seccomp::{self, CompiledFilter};
use super::spawn::{spawn_helper, HelperSpawn};
use super::spec::{self, Spec, SpecError};
use super::stdio::ProcessIo;
use super::{Container, Lifecycle};
use crate::reaper::Reaper;

/// How long the agent waits for a helper to report (setup under nested emulation is slow).
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(120);

/// How long cleanup after a failed step waits for the helper to die.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(10);

/// A CreateContainer request.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub id: String,
    /// The exec id of the container's init process (for the process calls).
    pub exec_id: String,
    pub spec: Spec,
    pub rootfs: RootfsSource,
}

/// What the sandbox lends a container create.
pub struct SandboxContext<'a> {
    pub reaper: &'a Reaper,
    pub cgroups: &'a CgroupTree,
    /// `<run>`; containers live in `<run>/containers/<id>`.
    pub run_dir: &'a Path,
    /// Bind mount sources must lie under this directory.
    pub shared_dir: &'a Path,
    pub pod: &'a PodNamespaces,
    /// The shared pid namespace, when the sandbox has one.
    pub shared_pid: Option<&'a NsFd>,
    /// The hostname of containers whose spec has none.
    pub default_hostname: &'a str,
}

/// The process plan for a (validated) `process` object, under the container's `seccomp`.
pub fn process_plan(
    p: &spec::Process,
    seccomp: Vec<CompiledFilter>,
) -> Result<ProcessPlan, SpecError> {
    Ok(ProcessPlan {
        args: p.args.clone(),
        env: p.env.clone(),
        cwd: p.cwd.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask,
        caps: CapPlan::from_spec(p.capabilities.as_ref())?,
        rlimits: p
            .rlimits
            .iter()
            .map(|r| (r.kind.clone(), r.soft, r.hard))
            .collect(),
        no_new_privileges: p.no_new_privileges,
        terminal: p.terminal,
        seccomp,
    })
}

/// The spec's seccomp filters, compiled (none: unconfined).
pub fn seccomp_filters(spec: &Spec) -> Result<Vec<CompiledFilter>, SpecError> {
    match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(profile) => seccomp::compile(&seccomp::plan(profile)?),
        None => Ok(Vec::new()),
    }
}

/// Sets a started helper's `oom_score_adj` (inherited across its exec) from the agent side,
/// where `/proc` is always there and the privilege to lower it is.
pub fn set_oom_score_adj(pid: i32, adj: Option<i32>) -> Result<(), ContainerError> {
    let Some(adj) = adj else {
        return Ok(());
    };
    std::fs::write(format!("/proc/{pid}/oom_score_adj"), adj.to_string()).map_err(
        ContainerError::io(format!("set oom_score_adj {adj} of pid {pid}")),
    )
}

/// Checks what only the engine can: bind sources lie under the sandbox's shared directory
/// (a spec's paths were written on the host; in the guest only what was shared may be bound),
/// also once symlinks are resolved. Rewrites each bind source to its resolved path, so the
/// helper binds exactly what was checked.
fn check_bind_sources(spec: &mut Spec, shared_dir: &Path) -> Result<(), SpecError> {
    let shared = std::fs::canonicalize(shared_dir).unwrap_or_else(|_| shared_dir.to_path_buf());
    for (i, m) in spec.mounts.iter_mut().enumerate() {
        let opts = super::mounts::parse_options(&m.options).unwrap_or_default();
        let kind = super::mounts::MountKind::of(m.kind.as_deref(), opts.bind);
        if kind != Ok(super::mounts::MountKind::Bind) {
            continue;
        }
        let field = format!("mounts[{i}].source");
        let source = PathBuf::from(m.source.as_deref().unwrap_or(""));
        let outside = |shown: &Path| {
            SpecError::new(
                field.clone(),
                format!(
                    "bind source {} is outside {}: the guest only bind-mounts what the sandbox \
                     shared there",
                    shown.display(),
                    shared_dir.display()
                ),
            )
        };
        let lexically_inside = source.starts_with(shared_dir)
            && !source
                .components()
                .any(|c| c == std::path::Component::ParentDir);
        if !lexically_inside {
            return Err(outside(&source));
        }
        let resolved = std::fs::canonicalize(&source)
            .map_err(|e| SpecError::new(field.clone(), format!("{}: {e}", source.display())))?;
        if !resolved.starts_with(&shared) {
            return Err(outside(&resolved));
        }
        m.source = Some(resolved.display().to_string());
    }
    Ok(())
}

/// Sends `plan` and waits for the helper's answer; EOF means it died.
pub fn exchange_plan(
    id: &str,
    ours: &UnixStream,
    plan: Plan,
    process: &Process,
) -> Result<(), ContainerError> {
    channel::send(ours, &ToHelper::Plan(Box::new(plan))).map_err(ContainerError::io(format!(
        "container {id}: send the plan to the helper"
    )))?;
    await_ready(id, ours, process)
}

fn await_ready(id: &str, ours: &UnixStream, process: &Process) -> Result<(), ContainerError> {
    match channel::recv::<FromHelper>(ours) {
        Ok(Some(FromHelper::Ready)) => Ok(()),
        Ok(Some(FromHelper::Failed(detail))) => Err(ContainerError::Setup {
            id: id.to_string(),
            detail,
        }),
        Ok(None) => Err(ContainerError::Setup {
            id: id.to_string(),
            detail: format!(
                "the setup helper (pid {}) exited without a report ({:?})",
                process.pid(),
                process.wait_timeout(CLEANUP_TIMEOUT)
            ),
        }),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Err(ContainerError::Timeout {
                what: format!("container {id}: setup"),
                timeout: HELPER_TIMEOUT,
            })
        }
        Err(e) => Err(ContainerError::io(format!(
            "container {id}: read the helper's report"
        ))(e)),
    }
}

/// Waits for the exec after Start (or right after Ready, for an exec process): end-of-file
/// means the process was exec'd.
pub fn await_exec(id: &str, ours: &UnixStream) -> Result<(), ContainerError> {
    match channel::recv::<FromHelper>(ours) {
        Ok(None) => Ok(()),
        Ok(Some(FromHelper::Failed(detail))) => Err(ContainerError::Setup {
            id: id.to_string(),
            detail,
        }),
        Ok(Some(FromHelper::Ready)) => Err(ContainerError::Setup {
            id: id.to_string(),
            detail: "the helper reported ready twice".into(),
        }),
        Err(e) => Err(ContainerError::io(format!(
            "container {id}: wait for the exec"
        ))(e)),
    }
}

/// Kills a helper that failed and waits (bounded) for the reaper to see it go.
pub fn kill_helper(process: &Process) {
    let _ = process.signal(libc::SIGKILL);
    if process.wait_timeout(CLEANUP_TIMEOUT).is_none() {
        tracing::warn!("helper pid {} did not die after SIGKILL", process.pid());
    }
}

/// Creates a container (see the module doc). The caller has reserved the id.
pub fn create(
    ctx: &SandboxContext<'_>,
    req: CreateRequest,
) -> Result<Arc<Container>, ContainerError> {
    spec::validate_id(&req.id, "container_id")?;
    spec::validate_id(&req.exec_id, "exec_id")?;
    req.spec.validate()?;
    let mut req = req;
    check_bind_sources(&mut req.spec, ctx.shared_dir)?;
    let process = req
        .spec
        .process
        .as_ref()
        .ok_or_else(|| SpecError::new("process", "missing"))?;
    let filters = seccomp_filters(&req.spec)?;
    let oom_score_adj = process.oom_score_adj;
    let process_plan = process_plan(process, filters.clone())?;
    let linux = req.spec.linux.clone().unwrap_or_default();
    let device_rules = devices::container_rules(&req.spec.resources().devices, &linux.devices)?;

    let cgroup = ctx.cgroups.create_container(&req.id)?;
    if let Err(e) = cgroup.apply(&req.spec.resources(), "linux.resources") {
        remove_cgroup(&cgroup);
        return Err(e.into());
    }
    // Before any process of the container runs: the helper is put in this cgroup.
    if let Err(source) = devices::install(&device_rules, cgroup.path()) {
        remove_cgroup(&cgroup);
        return Err(ContainerError::Devices {
            id: req.id.clone(),
            source,
        });
    }
    let base = ctx.run_dir.join("containers").join(&req.id);
    let mut prepared = match rootfs::prepare(&base, &req.rootfs) {
        Ok(p) => p,
        Err(e) => {
            remove_cgroup(&cgroup);
            return Err(e.into());
        }
    };
    match start_helper(ctx, &req, &cgroup, prepared.path(), process_plan) {
        Ok((init, channel, namespaces)) => Ok(Arc::new(Container {
            rootfs_source: req.rootfs.clone(),
            id: req.id,
            init,
            cgroup,
            namespaces,
            lifecycle: Mutex::new(Lifecycle::Created(channel)),
            execs: Mutex::new(Default::default()),
            rootfs: Mutex::new(prepared),
            reaper: ctx.reaper.clone(),
            cgroup_namespace: wants_cgroup_namespace(&req.spec),
            seccomp: filters,
            oom_score_adj,
        })),
        Err(e) => {
            remove_cgroup(&cgroup);
            if let Err(t) = prepared.teardown() {
                tracing::warn!("container {}: undo rootfs: {t}", req.id);
            }
            Err(e)
        }
    }
}

fn remove_cgroup(cgroup: &ContainerCgroup) {
    if let Err(e) = cgroup.remove(CLEANUP_TIMEOUT) {
        tracing::warn!("{}", crate::error_chain::error_chain(&e));
    }
}

fn wants_cgroup_namespace(spec: &Spec) -> bool {
    spec.linux
        .as_ref()
        .is_some_and(|l| l.namespaces.iter().any(|n| n.kind == "cgroup"))
}

type Started = (Arc<Process>, UnixStream, ContainerNamespaces);

fn start_helper(
    ctx: &SandboxContext<'_>,
    req: &CreateRequest,
    cgroup: &ContainerCgroup,
    rootfs_path: &Path,
    process_plan: ProcessPlan,
) -> Result<Started, ContainerError> {
    let terminal = process_plan.terminal;
    let (io, child_io) = if terminal {
        ProcessIo::terminal()
    } else {
        ProcessIo::pipes()
    }
    .map_err(ContainerError::io(format!(
        "container {}: create stdio",
        req.id
    )))?;
    let (ours, theirs) = UnixStream::pair().map_err(ContainerError::io(format!(
        "container {}: create the channel",
        req.id
    )))?;
    ours.set_read_timeout(Some(HELPER_TIMEOUT))
        .map_err(ContainerError::io("set the channel timeout"))?;

    let mut join: Vec<&NsFd> = vec![&ctx.pod.net, &ctx.pod.ipc];
    let mut new_namespaces = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWUTS;
    match ctx.shared_pid {
        Some(pid_ns) => join.push(pid_ns),
        None => new_namespaces |= CloneFlags::CLONE_NEWPID,
    }
    let spawned = spawn_helper(
        ctx.reaper,
        &HelperSpawn {
            join: &join,
            new_namespaces,
            stdio: [
                child_io.stdin.as_fd(),
                child_io.stdout.as_fd(),
                child_io.stderr.as_fd(),
            ],
            channel: theirs.as_fd(),
        },
    )?;
    // The helper has its copies: the agent's must go, or stdout never reaches end-of-file.
    drop(child_io);
    drop(theirs);

    // With a shared pid namespace the container's other processes outlive its init unless
    // killed: do it when the init exits (a private pid namespace does it by itself).
    let hook = ctx.shared_pid.map(|_| {
        let kill_path: PathBuf = cgroup.path().join("cgroup.kill");
        Box::new(move |_status| {
            let _ = std::fs::write(&kill_path, "1");
        }) as super::process::ExitHook
    });
    let init = Process::new(&req.exec_id, spawned, io, hook);

    let result = (|| {
        cgroup.add_process(init.pid())?;
        let adj = req.spec.process.as_ref().and_then(|p| p.oom_score_adj);
        set_oom_score_adj(init.pid(), adj)?;
        let hostname = req
            .spec
            .hostname
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| ctx.default_hostname.to_string());
        let linux = req.spec.linux.clone().unwrap_or_default();
        let plan = Plan {
            role: Role::Init(Box::new(InitPlan {
                rootfs: rootfs_path.to_path_buf(),
                readonly: req.spec.root.as_ref().is_some_and(|r| r.readonly),
                mounts: req.spec.mounts.clone(),
                hostname,
                masked_paths: linux.masked_paths,
                readonly_paths: linux.readonly_paths,
                devices: linux.devices,
                domainname: req.spec.domainname.clone(),
                new_cgroup_namespace: wants_cgroup_namespace(&req.spec),
                console: terminal,
            })),
            process: Some(process_plan),
        };
        exchange_plan(&req.id, &ours, plan, &init)?;
        ContainerNamespaces::open(init.pid(), wants_cgroup_namespace(&req.spec)).map_err(
            ContainerError::io(format!("container {}: open its namespaces", req.id)),
        )
    })();
    match result {
        Ok(namespaces) => Ok((init, ours, namespaces)),
        Err(e) => {
            kill_helper(&init);
            Err(e)
        }
    }
}

/// Starts the pause helper: pid 1 of a new pid namespace, shared by the sandbox's containers.
/// Its exit is logged as a warning unless `stopping` was set first.
pub fn spawn_pause(
    reaper: &Reaper,
    stopping: Arc<std::sync::atomic::AtomicBool>,
) -> Result<Arc<Process>, ContainerError> {
    let (io, child_io) =
        ProcessIo::null().map_err(ContainerError::io("open /dev/null for the pause process"))?;
    let (ours, theirs) =
        UnixStream::pair().map_err(ContainerError::io("create the pause channel"))?;
    ours.set_read_timeout(Some(HELPER_TIMEOUT))
        .map_err(ContainerError::io("set the channel timeout"))?;
    let spawned = spawn_helper(
        reaper,
        &HelperSpawn {
            join: &[],
            new_namespaces: CloneFlags::CLONE_NEWPID,
            stdio: [
                child_io.stdin.as_fd(),
                child_io.stdout.as_fd(),
                child_io.stderr.as_fd(),
            ],
            channel: theirs.as_fd(),
        },
    )?;
    drop(child_io);
    drop(theirs);
    let hook: super::process::ExitHook = Box::new(move |status| {
        if !stopping.load(std::sync::atomic::Ordering::SeqCst) {
            tracing::warn!(
                "the sandbox's pause process exited ({status:?}): the shared pid namespace is gone"
            );
        }
    });
    let process = Process::new("pause", spawned, io, Some(hook));
    let plan = Plan {
        role: Role::Pause,
        process: None,
    };
    if let Err(e) = exchange_plan("pause", &ours, plan, &process) {
        kill_helper(&process);
        return Err(e);
    }
    Ok(process)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::{default_spec, Mount};

    fn with_bind(source: &str, options: &[&str]) -> Spec {
        let mut spec = default_spec(vec!["true".into()], "x");
        spec.mounts.push(Mount {
            destination: "/data".into(),
            kind: Some("bind".into()),
            source: Some(source.into()),
            options: options.iter().map(|o| o.to_string()).collect(),
            ..Default::default()
        });
        spec
    }

    #[test]
    fn test_bind_sources_must_be_shared() {
        let dir = crate::container::testutil::TempDir::new("binds");
        let shared = dir.path().join("shared");
        std::fs::create_dir_all(shared.join("vol1")).unwrap();
        std::os::unix::fs::symlink("/etc", shared.join("escape")).unwrap();
        let n = default_spec(vec!["true".into()], "x").mounts.len();

        let mut ok = with_bind(&format!("{}/./vol1", shared.display()), &["rbind"]);
        check_bind_sources(&mut ok, &shared).unwrap();
        assert_eq!(
            ok.mounts[n].source,
            Some(shared.join("vol1").display().to_string())
        );

        let dotdot = format!("{}/../shared/vol1", shared.display());
        let sibling = format!("{}x", shared.display());
        let escape = format!("{}/escape", shared.display());
        for bad in ["/etc", &dotdot, &sibling, &escape] {
            let err = check_bind_sources(&mut with_bind(bad, &["bind"]), &shared).unwrap_err();
            assert_eq!(err.field, format!("mounts[{n}].source"), "{bad}");
            assert!(err.problem.contains("is outside"), "{err}");
        }
        let missing = format!("{}/nope", shared.display());
        let err = check_bind_sources(&mut with_bind(&missing, &["bind"]), &shared).unwrap_err();
        assert!(err.problem.contains("No such file"), "{err}");
        // A bind by option alone (type "none") counts too.
        let mut spec = with_bind("/etc", &["rbind"]);
        spec.mounts[n].kind = Some("none".into());
        assert!(check_bind_sources(&mut spec, &shared).is_err());
    }

    #[test]
    fn test_process_plan_from_default_spec() {
        let spec = default_spec(vec!["sh".into()], "x");
        let plan = process_plan(spec.process.as_ref().unwrap(), Vec::new()).unwrap();
        assert_eq!(plan.args, vec!["sh"]);
        assert_eq!(
            plan.caps.bounding,
            crate::container::CapSet::docker_default()
        );
        assert_eq!(plan.caps.ambient, crate::container::CapSet(0));
        assert_eq!(
            plan.rlimits,
            vec![("RLIMIT_NOFILE".to_string(), 1024, 1024)]
        );
        assert!(plan.no_new_privileges && !plan.terminal);
        assert_eq!((plan.uid, plan.gid), (0, 0));
    }

    #[test]
    fn test_cgroup_namespace_only_when_listed() {
        let mut spec = default_spec(vec!["sh".into()], "x");
        assert!(!wants_cgroup_namespace(&spec));
        if let Some(linux) = spec.linux.as_mut() {
            linux.namespaces.push(crate::container::spec::Namespace {
                kind: "cgroup".into(),
                path: None,
            });
        }
        assert!(wants_cgroup_namespace(&spec));
    }
}
