//! A process the engine started (a container's init or an exec): its pid and pidfd, its stdio,
//! and its exit status as the reaper reports it.
//!
//! A small watcher thread per process receives the status from the reaper's channel and
//! publishes it to any number of waiters (and runs an optional exit hook). Signals go through
//! the pidfd, so a signal can never hit another process that reused the pid.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::reaper::ExitStatus;

use super::spawn::{pidfd_signal, Spawned};
use super::stdio::ProcessIo;

/// What runs when the process has exited.
pub type ExitHook = Box<dyn FnOnce(ExitStatus) + Send>;

/// The exit code a waiter sees: the code, or 128 + the signal number.
pub fn exit_code(status: ExitStatus) -> i32 {
    match status {
        ExitStatus::Exited(code) => code,
        ExitStatus::Signaled(signal) => 128 + signal,
    }
}

#[derive(Default)]
struct ExitCell {
    status: Mutex<Option<ExitStatus>>,
    changed: Condvar,
}

impl ExitCell {
    fn lock(&self) -> MutexGuard<'_, Option<ExitStatus>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A started process.
pub struct Process {
    exec_id: String,
    pid: i32,
    pidfd: OwnedFd,
    io: ProcessIo,
    exit: Arc<ExitCell>,
}

impl std::fmt::Debug for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Process")
            .field("exec_id", &self.exec_id)
            .field("pid", &self.pid)
            .field("exit", &self.exit_status())
            .finish()
    }
}

impl Process {
    /// Wraps a spawned process and starts its watcher thread.
    pub fn new(
        exec_id: &str,
        spawned: Spawned,
        io: ProcessIo,
        on_exit: Option<ExitHook>,
    ) -> Arc<Self> {
        let exit = Arc::new(ExitCell::default());
        let process = Arc::new(Self {
            exec_id: exec_id.to_string(),
            pid: spawned.pid.as_raw(),
            pidfd: spawned.pidfd,
            io,
            exit: Arc::clone(&exit),
        });
        watch(spawned.pid.as_raw(), spawned.exit, exit, on_exit);
        process
    }

    pub fn exec_id(&self) -> &str {
        &self.exec_id
    }

    /// The pid in the agent's pid namespace.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    pub fn io(&self) -> &ProcessIo {
        &self.io
    }

    /// The exit status, if the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        *self.exit.lock()
    }

    /// Blocks until the process has exited.
    pub fn wait(&self) -> ExitStatus {
        let mut status = self.exit.lock();
        loop {
            if let Some(s) = *status {
                return s;
            }
            status = self
                .exit
                .changed
                .wait(status)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Waits up to `timeout` for the exit.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut status = self.exit.lock();
        loop {
            if let Some(s) = *status {
                return Some(s);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            status = self
                .exit
                .changed
                .wait_timeout(status, left)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Sends `signal`. A process that already exited is `ESRCH`.
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        if self.exit_status().is_some() {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        pidfd_signal(self.pidfd.as_fd(), signal)
    }
}

fn watch(pid: i32, rx: Receiver<ExitStatus>, cell: Arc<ExitCell>, on_exit: Option<ExitHook>) {
    let body = move || {
        // The reaper always sends; a closed channel would mean it is gone, which cannot
        // happen in a running agent. Report it as killed rather than hang waiters.
        let status = rx.recv().unwrap_or(ExitStatus::Signaled(libc::SIGKILL));
        tracing::debug!("process {pid} exited: {status:?}");
        *cell.lock() = Some(status);
        cell.changed.notify_all();
        if let Some(hook) = on_exit {
            hook(status);
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name(format!("exit-{pid}"))
        .spawn(body)
    {
        // Without a watcher, waiters would hang: say so loudly. (Thread creation only fails
        // when the guest is out of memory or threads.)
        tracing::error!("start the exit watcher of pid {pid}: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exit_code_convention() {
        assert_eq!(exit_code(ExitStatus::Exited(0)), 0);
        assert_eq!(exit_code(ExitStatus::Exited(3)), 3);
        assert_eq!(exit_code(ExitStatus::Signaled(9)), 137);
        assert_eq!(exit_code(ExitStatus::Signaled(15)), 143);
    }
}
