//! A virtio device's worker thread: started on DRIVER_OK with a kill eventfd it watches,
//! stopped (signalled and joined) when the handle is dropped, on reset or with the device.

use std::thread::JoinHandle;

use vmm_sys_util::eventfd::EventFd;

use super::ActivateError;
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
            if thread.join().is_err() {
                tracing::error!("{}: worker thread panicked", self.name);
            }
        }
    }
}
