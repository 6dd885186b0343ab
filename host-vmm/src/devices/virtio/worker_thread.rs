//! A virtio device's worker thread: started on DRIVER_OK with a kill eventfd it watches,
//! stopped (signalled and joined) when the handle is dropped, on reset or with the device.
//!
//! The join has a deadline, [`WORKER_JOIN_DEADLINE`]: the drop runs on a vCPU
//! thread when the guest resets the device, and a worker can be stuck in a
//! `pread` on a disk whose filesystem stalled. After the deadline the worker
//! is left behind (logged); it owns its queues and holds guest memory by
//! reference count, so nothing it touches goes away under it.

use std::thread::JoinHandle;
use std::time::Duration;

use vmm_sys_util::eventfd::EventFd;

use super::ActivateError;
use crate::threads::{join_within, Joined};

/// How long stopping a worker waits for its thread.
pub const WORKER_JOIN_DEADLINE: Duration = Duration::from_secs(5);
use crate::seccomp::{self, ThreadKind};

/// A running worker thread; dropping it stops the thread and waits for it.
pub struct WorkerThread {
    name: String,
    kill: EventFd,
    thread: Option<JoinHandle<()>>,
}

/// A kill eventfd for a worker: (the handle's end, the worker's end).
pub fn kill_pair() -> Result<(EventFd, EventFd), ActivateError> {
    let kill =
        EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC).map_err(ActivateError::EventFd)?;
    let worker_end = kill.try_clone().map_err(ActivateError::EventFd)?;
    Ok((kill, worker_end))
}

impl WorkerThread {
    /// Runs `work` on a thread named `name` under `kind`'s seccomp filter; `kill` (from
    /// [`kill_pair`]) is written to stop it. Started by the thread factory: the caller is
    /// usually a vCPU thread (the guest's DRIVER_OK), which may not start threads.
    pub fn spawn(
        name: String,
        kind: ThreadKind,
        kill: EventFd,
        work: impl FnOnce() + Send + 'static,
    ) -> Result<Self, ActivateError> {
        let thread = seccomp::spawn(name.clone(), kind, work).map_err(ActivateError::Thread)?;
        Ok(Self {
            name,
            kill,
            thread: Some(thread),
        })
    }
}

impl Drop for WorkerThread {
    fn drop(&mut self) {
        if let Err(e) = self.kill.write(1) {
            tracing::error!(error = %e, "{}: cannot signal the worker to stop", self.name);
        }
        if let Some(thread) = self.thread.take() {
            if join_within(thread, &self.name, WORKER_JOIN_DEADLINE) == Joined::Panicked {
                tracing::error!("{}: worker thread panicked", self.name);
            }
        }
    }
}
