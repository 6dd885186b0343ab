//! ExecProcess: a new process in a running container. The helper is born in the container's
//! namespaces (joined by the spawner thread from the fds opened at create: ipc, uts, net,
//! pid, cgroup if any, mount last) and put in its cgroup before it reads its plan.

use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use nix::sched::CloneFlags;

use super::channel::{Plan, Role};
use super::create::{
    await_exec, exchange_plan, kill_helper, process_plan, set_oom_score_adj, HELPER_TIMEOUT,
};
use super::error::ContainerError;
use super::namespaces::NsFd;
use super::process::Process;
use super::spawn::{spawn_helper, HelperSpawn};
use super::spec;
use super::stdio::ProcessIo;
use super::{lock, Container, Status};

impl Container {
    /// Starts `process` in the container as `exec_id` (ExecProcess). The container must be
    /// running.
    pub fn exec(&self, exec_id: &str, process: &spec::Process) -> Result<(), ContainerError> {
        let process_spec = process;
        spec::validate_id(exec_id, "exec_id")?;
        spec::validate_process(process, "process")?;
        let plan = process_plan(process, self.seccomp.clone())?;
        let lifecycle = lock(&self.lifecycle);
        let state = self.status_locked(&lifecycle);
        if state != Status::Running {
            return Err(self.wrong_state(state, "exec", "running"));
        }
        if exec_id == self.init.exec_id() || lock(&self.execs).contains_key(exec_id) {
            return Err(ContainerError::ProcessExists {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
            });
        }

        let id = &self.id;
        let (io, child_io) = if plan.terminal {
            ProcessIo::terminal()
        } else {
            ProcessIo::pipes()
        }
        .map_err(ContainerError::io(format!(
            "container {id}: create stdio for {exec_id}"
        )))?;
        let (ours, theirs) = UnixStream::pair().map_err(ContainerError::io(format!(
            "container {id}: create the channel"
        )))?;
        ours.set_read_timeout(Some(HELPER_TIMEOUT))
            .map_err(ContainerError::io("set the channel timeout"))?;
        let join: Vec<&NsFd> = self.namespaces.all.iter().collect();
        let spawned = spawn_helper(
            &self.reaper,
            &HelperSpawn {
                join: &join,
                new_namespaces: CloneFlags::empty(),
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
        let process = Process::new(exec_id, spawned, io, None);
        let result = (|| {
            self.cgroup.add_process(process.pid())?;
            set_oom_score_adj(
                process.pid(),
                process_spec.oom_score_adj.or(self.oom_score_adj),
            )?;
            let plan = Plan {
                role: Role::Exec,
                process: Some(plan),
            };
            exchange_plan(id, &ours, plan, &process)?;
            await_exec(id, &ours)
        })();
        if let Err(e) = result {
            kill_helper(&process);
            return Err(e);
        }
        lock(&self.execs).insert(exec_id.to_string(), Arc::clone(&process));
        drop(lifecycle);
        tracing::debug!(
            "container {id}: exec {exec_id} started as pid {} (cgroup namespace: {})",
            process.pid(),
            self.cgroup_namespace
        );
        Ok(())
    }
}
