//! The container engine: what the container and process RPCs call (through
//! [`crate::sandbox::Sandbox`], which holds the containers).
//!
//! Code map:
//! - `spec/`: the OCI spec subset, validation, the default spec for bundle-less containers.
//! - `cgroup/`: cgroup v2 files: resources, stats, kill, removal.
//! - `namespaces`: the pod's shared namespaces and a container's namespace fds.
//! - `rootfs`: the overlay root (agent side) and switching into it (helper side).
//! - `mounts`, `caps`, `user`: the spec's mounts, capabilities, user and rlimits.
//! - `devices`: the device allow-list (a cgroup v2 BPF device program); `seccomp`: the spec's
//!   seccomp profile, compiled for the helper to install.
//! - `spawn`, `channel`, `helper`: starting the agent binary again as the setup helper in
//!   the container's namespaces, and what it does before it execs the container process.
//! - `create`, `exec`: the two ways a process enters a container.
//! - `process`, `stdio`: a started process: exit status, signals, stdio streams.
//!
//! Locking: each container has its own locks; nothing here locks more than one container.
//! `lifecycle` is held across start, exec and remove of that container (the slow steps of
//! one container serialise); waits, signals, stdio, stats and updates take no container lock.

mod caps;
pub mod cgroup;
mod channel;
pub(crate) mod create;
mod dev_nodes;
pub mod devices;
mod error;
mod exec;
mod helper;
mod mounts;
pub mod namespaces;
pub mod process;
pub mod rootfs;
pub mod seccomp;
mod spawn;
pub mod spec;
pub mod stdio;
#[cfg(test)]
pub(crate) mod testutil;
mod user;

use std::collections::HashMap;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use caps::{CapSet, DEFAULT_CAPS};
pub use create::{CreateRequest, SandboxContext};
pub use error::ContainerError;
pub use process::{exit_code, Process};
pub use rootfs::RootfsSource;
pub use spawn::{SpawnError, HELPER_ARGV0};

use crate::reaper::Reaper;
use cgroup::{CgroupStats, ContainerCgroup};
use namespaces::ContainerNamespaces;
use rootfs::PreparedRootfs;
use spec::Resources;

/// The image built into the initramfs (busybox), for containers started without a bundle.
pub const DEFAULT_IMAGE: &str = "/images/busybox";

/// Runs the setup helper if this process is one (`argv[0]` is [`HELPER_ARGV0`]); returns
/// otherwise. [`crate::entry`] calls it first: a helper in a new pid namespace is pid 1 there
/// and must not be taken for the guest's init.
pub fn run_helper_if_asked() {
    if std::env::args_os().next().as_deref() == Some(std::ffi::OsStr::new(HELPER_ARGV0)) {
        helper::main();
    }
}

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Set up, its process not started yet.
    Created,
    Running,
    /// Its init process has exited.
    Stopped,
    /// Removed: only a handle someone still held.
    Removed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Removed => "removed",
        }
    }
}

enum Lifecycle {
    /// The helper waits on this channel for Start.
    Created(UnixStream),
    Running,
    Removed,
}

/// One container.
pub struct Container {
    id: String,
    init: Arc<Process>,
    cgroup: ContainerCgroup,
    namespaces: ContainerNamespaces,
    lifecycle: Mutex<Lifecycle>,
    execs: Mutex<HashMap<String, Arc<Process>>>,
    rootfs: Mutex<PreparedRootfs>,
    /// Where its image came from (the host's disk, found by serial, for a block device).
    rootfs_source: RootfsSource,
    reaper: Reaper,
    cgroup_namespace: bool,
    /// The container's seccomp filters, for its exec processes too (as runc does).
    seccomp: Vec<seccomp::CompiledFilter>,
    /// `process.oomScoreAdj` of the init, for exec processes that set none.
    oom_score_adj: Option<i32>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Container {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Where its image came from.
    pub fn rootfs_source(&self) -> &RootfsSource {
        &self.rootfs_source
    }

    /// The init process.
    pub fn init(&self) -> &Arc<Process> {
        &self.init
    }

    /// The container's cgroup directory.
    pub fn cgroup_path(&self) -> &std::path::Path {
        self.cgroup.path()
    }

    pub fn status(&self) -> Status {
        let lifecycle = lock(&self.lifecycle);
        self.status_locked(&lifecycle)
    }

    fn status_locked(&self, lifecycle: &Lifecycle) -> Status {
        match lifecycle {
            Lifecycle::Removed => Status::Removed,
            _ if self.init.exit_status().is_some() => Status::Stopped,
            Lifecycle::Created(_) => Status::Created,
            Lifecycle::Running => Status::Running,
        }
    }

    fn wrong_state(
        &self,
        state: Status,
        action: &'static str,
        needed: &'static str,
    ) -> ContainerError {
        ContainerError::State {
            id: self.id.clone(),
            state: state.as_str(),
            action,
            needed,
        }
    }

    /// Starts the init process (StartContainer).
    pub fn start(&self) -> Result<(), ContainerError> {
        let mut lifecycle = lock(&self.lifecycle);
        let state = self.status_locked(&lifecycle);
        if state != Status::Created {
            return Err(self.wrong_state(state, "start", "created"));
        }
        let Lifecycle::Created(channel) = std::mem::replace(&mut *lifecycle, Lifecycle::Running)
        else {
            return Err(self.wrong_state(state, "start", "created"));
        };
        channel::send(&channel, &channel::ToHelper::Start).map_err(ContainerError::io(format!(
            "container {}: send Start",
            self.id
        )))?;
        create::await_exec(&self.id, &channel)
    }

    /// The process `exec_id` (the init's or an exec's).
    pub fn process(&self, exec_id: &str) -> Result<Arc<Process>, ContainerError> {
        if self.init.exec_id() == exec_id {
            return Ok(Arc::clone(&self.init));
        }
        lock(&self.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::ProcessNotFound {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
            })
    }

    /// The exec ids of the processes still running, the init's first (ListContainers).
    pub fn live_exec_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        if self.init.exit_status().is_none() {
            ids.push(self.init.exec_id().to_string());
        }
        let mut execs: Vec<String> = lock(&self.execs)
            .values()
            .filter(|p| p.exit_status().is_none())
            .map(|p| p.exec_id().to_string())
            .collect();
        execs.sort();
        ids.extend(execs);
        ids
    }

    /// Waits for process `exec_id` and returns its exit code (128 + signal when killed). A
    /// finished exec process is forgotten afterwards (as in Kata); the init is kept.
    pub fn wait(&self, exec_id: &str) -> Result<i32, ContainerError> {
        let process = self.process(exec_id)?;
        let status = process.wait();
        if !Arc::ptr_eq(&process, &self.init) {
            lock(&self.execs).remove(exec_id);
        }
        Ok(exit_code(status))
    }

    /// Sends `signal` to process `exec_id`, or to every process of the container when
    /// `exec_id` is empty.
    pub fn signal(&self, exec_id: &str, signal: i32) -> Result<(), ContainerError> {
        if exec_id.is_empty() {
            return Ok(self.cgroup.signal_all(signal)?);
        }
        let process = self.process(exec_id)?;
        process.signal(signal).map_err(|e| {
            if e.raw_os_error() == Some(libc::ESRCH) {
                ContainerError::ProcessExited {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                }
            } else {
                ContainerError::io(format!("signal {signal} to {exec_id} in {}", self.id))(e)
            }
        })
    }

    /// Changes the resource limits live (UpdateContainer).
    pub fn update(&self, resources: &Resources) -> Result<(), ContainerError> {
        spec::validate_resources(resources, "linux.resources")?;
        if !resources.devices.is_empty() {
            return Err(spec::SpecError::new(
                "linux.resources.devices",
                "cannot change after create: the device program is fixed for the container's life",
            )
            .into());
        }
        Ok(self.cgroup.apply(resources, "linux.resources")?)
    }

    /// The cgroup's statistics (StatsContainer).
    pub fn stats(&self) -> Result<CgroupStats, ContainerError> {
        Ok(self.cgroup.stats()?)
    }

    /// Kills every process, waits for them (up to `timeout`; `None`: forever), removes the
    /// cgroup and unmounts the rootfs (RemoveContainer). Calling it again is harmless.
    pub fn remove(&self, timeout: Option<Duration>) -> Result<(), ContainerError> {
        let mut lifecycle = lock(&self.lifecycle);
        if matches!(*lifecycle, Lifecycle::Removed) {
            return Ok(());
        }
        if self.init.exit_status().is_none() {
            // cgroup.kill takes the whole container at once; the pidfd covers a helper that
            // is not in the cgroup yet.
            if let Err(e) = self.cgroup.signal_all(libc::SIGKILL) {
                tracing::warn!(
                    "container {}: {}",
                    self.id,
                    crate::error_chain::error_chain(&e)
                );
            }
            let _ = self.init.signal(libc::SIGKILL);
        }
        let waited = match timeout {
            None => Some(self.init.wait()),
            Some(t) => self.init.wait_timeout(t),
        };
        if waited.is_none() {
            return Err(ContainerError::Timeout {
                what: format!("container {}: its init process to die", self.id),
                timeout: timeout.unwrap_or_default(),
            });
        }
        let cgroup_timeout = timeout.unwrap_or(Duration::from_secs(30));
        self.cgroup.remove(cgroup_timeout)?;
        let base = {
            let mut rootfs = lock(&self.rootfs);
            rootfs.teardown()?;
            rootfs.base().to_path_buf()
        };
        lock(&self.execs).clear();
        *lifecycle = Lifecycle::Removed;
        self.check_nothing_left(&base)
    }

    /// After removal: the cgroup directory is gone and nothing is mounted at or under the
    /// container's directory (an error names what is left, so `delete` cannot pass over it).
    fn check_nothing_left(&self, base: &std::path::Path) -> Result<(), ContainerError> {
        let mut left = Vec::new();
        if self.cgroup.path().exists() {
            left.push(format!("cgroup {}", self.cgroup.path().display()));
        }
        match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => left.extend(
                rootfs::mounts_under(&text, base)
                    .into_iter()
                    .map(|m| format!("mount {m}")),
            ),
            Err(e) => left.push(format!("unknown mounts (read /proc/self/mountinfo: {e})")),
        }
        if left.is_empty() {
            return Ok(());
        }
        Err(ContainerError::Leftover {
            id: self.id.clone(),
            what: left.join(", "),
        })
    }
}
