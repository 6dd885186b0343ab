//! `host-vmm create|start|exec|kill|wait|delete|ps|stats`: containers in a running sandbox
//! (`run --id ID` without a command), through its agent (`<runtime dir>/vsock.sock`).
//!
//! A container `create`d and `start`ed without `--attach` is not streamed: its stdout and
//! stderr are pipes in the guest holding 64 KiB each (the agent reads nothing ahead), after
//! which its writes block; its stdin is closed at start (a terminal gets
//! ^D). `start --attach`, `exec` and `run`
//! stream.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use host_vmm::agent::{AgentClient, ConnectOptions, RootfsSource};
use host_vmm::oci::{process_json, ProcessOptions, ResourceOptions};
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use host_vmm::seccomp::{self, ThreadKind};

use super::run::{
    block_rootfs, container_spec, hostname, rootfs_image_disk, RootfsChoice, EXIT_NOT_STARTED,
};
use super::session::{attach_and_wait, Attach};
use super::stdio::Target;

fn connect(sandbox: &str) -> anyhow::Result<AgentClient> {
    let dir = RuntimeDir::open(&runtime_root(), sandbox)?;
    AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .with_context(|| format!("sandbox {sandbox}: cannot reach the agent"))
}

/// What `create` needs.
pub struct CreateRequest {
    pub sandbox: String,
    pub container: String,
    pub rootfs: RootfsChoice,
    pub process: ProcessOptions,
    pub resources: ResourceOptions,
}

/// `CreateContainer` (its init's exec id is the container id): the default spec and image,
/// or with `--rootfs`/`--bundle` the tree as a read-only erofs disk hot-added to the
/// sandbox first (virtio-blk hot-add; it needs the sandbox's GED, i.e. `memory_slots` > 0).
pub fn create(req: CreateRequest) -> anyhow::Result<()> {
    let (spec, rootfs_dir) = container_spec(
        &req.rootfs,
        &req.process,
        &req.resources,
        hostname(&req.container),
    )?;
    // The image first (it runs mkfs.erofs), then confine this thread before it talks to
    // the sandbox (its agent client threads inherit the filter).
    let disk = match rootfs_dir {
        None => None,
        Some(dir) => Some(rootfs_image_disk(&dir, "")?),
    };
    seccomp::install(ThreadKind::Cli)?;
    let agent = connect(&req.sandbox)?;
    if let Some(mib) = req.resources.memory_mib {
        let dir = RuntimeDir::open(&runtime_root(), &req.sandbox)?;
        super::update::grow_for_limit(&req.sandbox, &dir, &agent, mib)?;
    }
    if let Some(cpus) = req.resources.cpus {
        let dir = RuntimeDir::open(&runtime_root(), &req.sandbox)?;
        super::cpus::grow_for_quota(&dir, &agent, &req.container, cpus)
            .with_context(|| format!("sandbox {}: create {}", req.sandbox, req.container))?;
    }
    let (rootfs, disk_serial) = match disk {
        None => (RootfsSource::Default, None),
        Some(disk) => {
            // The VMM gives the disk a serial no other disk of the sandbox has.
            let added =
                super::disk::add(&req.sandbox, disk, Some(&req.container)).with_context(|| {
                    format!("create {}: cannot hot-add its rootfs disk", req.container)
                })?;
            tracing::info!(
                "rootfs disk of {} hot-added: {}",
                req.container,
                added.to_string().replace('\n', " ")
            );
            let serial = added.0.serial;
            (block_rootfs(&serial), Some(serial))
        }
    };
    let created = agent
        .create_container(&req.container, &req.container, &spec.to_string(), &rootfs)
        .with_context(|| format!("sandbox {}: create {}", req.sandbox, req.container));
    if created.is_err() {
        // The agent let go of the disk when the create failed: take it back out (only
        // this one: a container of that id may exist already, with its own disk).
        if let Some(serial) = disk_serial {
            if let Err(e) = super::disk::remove_serial(&req.sandbox, &serial) {
                tracing::warn!("create {}: disk {serial}: {e:#}", req.container);
            }
        }
    }
    created
}

/// `StartContainer`; with `attach`, stream it and return its exit code.
pub fn start(
    sandbox: &str,
    container: &str,
    attach: bool,
    interactive: bool,
) -> anyhow::Result<u8> {
    let agent = connect(sandbox)?;
    agent
        .start_container(container)
        .with_context(|| format!("sandbox {sandbox}: start {container}"))?;
    if !attach {
        // Nobody will write to it: it reads end-of-file (a terminal gets ^D).
        if let Err(e) = agent.close_stdin(container, container) {
            tracing::debug!("close stdin of {container}: {e}");
        }
        return Ok(0);
    }
    // A terminal container attached this way gets its output on stdout (no stderr stream:
    // reading it would fail at once, which the pump treats as end-of-file).
    let a = Attach {
        target: Target {
            container: container.to_string(),
            exec: container.to_string(),
        },
        tty: false,
        interactive,
        init: true,
    };
    let exit = attach_and_wait(&|| connect(sandbox), &agent, &a, None)?;
    Ok(exit.code)
}

/// A fresh exec id: `exec-<pid>-<nanoseconds>`.
fn exec_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("exec-{}-{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// `ExecProcess` of `process` in the container, streamed; returns its exit code.
pub fn exec(
    sandbox: &str,
    container: &str,
    process: ProcessOptions,
    interactive: bool,
) -> anyhow::Result<u8> {
    let body = process_json(&process)?;
    let agent = connect(sandbox)?;
    let exec = exec_id();
    if let Err(e) = agent.exec_process(container, &exec, &body.to_string()) {
        // As `docker exec`: 125 when the process could not be started.
        eprintln!("host-vmm: error: sandbox {sandbox}: exec in {container}: {e}");
        return Ok(EXIT_NOT_STARTED);
    }
    let a = Attach {
        target: Target {
            container: container.to_string(),
            exec,
        },
        tty: process.terminal,
        interactive,
        init: false,
    };
    let exit = attach_and_wait(&|| connect(sandbox), &agent, &a, None)?;
    Ok(exit.code)
}

/// A signal by name (`TERM`, `SIGTERM`, case-insensitive) or number (1..=64).
pub fn parse_signal(text: &str) -> anyhow::Result<u32> {
    if let Ok(n) = text.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        bail!("signal {n} is not 1 to 64");
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "QUIT" => libc::SIGQUIT,
        "KILL" => libc::SIGKILL,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        "PIPE" => libc::SIGPIPE,
        "ALRM" => libc::SIGALRM,
        "TERM" => libc::SIGTERM,
        "CONT" => libc::SIGCONT,
        "STOP" => libc::SIGSTOP,
        "TSTP" => libc::SIGTSTP,
        "WINCH" => libc::SIGWINCH,
        _ => bail!(
            "unknown signal {text:?} (a number, or HUP INT QUIT KILL USR1 USR2 PIPE ALRM TERM \
             CONT STOP TSTP WINCH)"
        ),
    };
    Ok(n as u32)
}

/// `SignalProcess` to every process of the container.
pub fn kill(sandbox: &str, container: &str, signal: &str) -> anyhow::Result<()> {
    let sig = parse_signal(signal)?;
    connect(sandbox)?
        .signal_process(container, "", sig)
        .with_context(|| format!("sandbox {sandbox}: kill {container}"))
}

/// `WaitProcess` for the container's init.
pub fn wait(sandbox: &str, container: &str) -> anyhow::Result<u8> {
    let exit = connect(sandbox)?
        .wait_process(container, container)
        .with_context(|| format!("sandbox {sandbox}: wait {container}"))?;
    if exit.oom_killed {
        eprintln!("host-vmm: container {container} was OOM-killed");
    }
    Ok(exit.code)
}

/// `RemoveContainer` (the agent unmounts its rootfs and lets go of its disk), then the
/// removal of the disks hot-added for it (the slot is freed, the image file closed).
/// A `delete` that failed after the container was gone (its disk still attached) can be
/// repeated: the disks go once the agent no longer lists the container.
pub fn delete(sandbox: &str, container: &str) -> anyhow::Result<()> {
    let agent = connect(sandbox)?;
    let removed = agent
        .remove_container(container, 10)
        .with_context(|| format!("sandbox {sandbox}: delete {container}"));
    let gone = removed.is_ok()
        || agent
            .list_containers()
            .is_ok_and(|list| !list.iter().any(|c| c.id == container));
    if gone {
        super::disk::remove_owned_by(sandbox, container)
            .with_context(|| format!("sandbox {sandbox}: delete {container}"))?;
        // The container is gone whatever happens here: a failed shrink is reported, and
        // the next delete tries again.
        let shrunk = RuntimeDir::open(&runtime_root(), sandbox)
            .map_err(anyhow::Error::from)
            .and_then(|dir| super::cpus::shrink_after(&dir, &agent, container));
        if let Err(e) = shrunk {
            eprintln!("host-vmm: warning: sandbox {sandbox}: after delete {container}: {e:#}");
        }
    }
    removed
}

/// `ListContainers` as a table.
pub fn ps(sandbox: &str) -> anyhow::Result<String> {
    let list = connect(sandbox)?
        .list_containers()
        .with_context(|| format!("sandbox {sandbox}: list containers"))?;
    let mut out = format!(
        "{:<24} {:<8} {:>8}  PROCESSES\n",
        "CONTAINER", "STATUS", "PID"
    );
    for c in list {
        out.push_str(&format!(
            "{:<24} {:<8} {:>8}  {}\n",
            c.id,
            c.status,
            c.init_pid,
            c.exec_ids.len()
        ));
    }
    Ok(out)
}

/// `StatsContainer`, one `key=value` per line.
pub fn stats(sandbox: &str, container: &str) -> anyhow::Result<String> {
    let s = connect(sandbox)?
        .stats_container(container)
        .with_context(|| format!("sandbox {sandbox}: stats {container}"))?;
    Ok(format!(
        "cpu_usage_usec={}\nmemory_usage_bytes={}\nmemory_limit_bytes={}\npids_current={}\npids_limit={}\noom_kills={}\nio_read_bytes={}\nio_write_bytes={}\n",
        s.cpu_usage_usec,
        s.memory_usage_bytes,
        s.memory_limit_bytes,
        s.pids_current,
        s.pids_limit,
        s.oom_kills,
        s.io_read_bytes,
        s.io_write_bytes
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_signal() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("sigkill").unwrap(), 9);
        assert_eq!(parse_signal("SIGINT").unwrap(), 2);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
        assert!(parse_signal("BOGUS").is_err());
    }

    #[test]
    fn test_exec_ids_are_valid_and_fresh() {
        let a = exec_id();
        assert!(a.starts_with("exec-"), "{a}");
        protocol::id::validate_id(&a, "exec id").unwrap();
    }
}
