//! `host-vmm stop ID [--timeout SECS]`: stop a running sandbox and wait until it is gone.
//!
//! The request goes over the sandbox's control socket (`Stop`): its host-vmm takes the same
//! path as on SIGTERM (the VM stops, its containers with it, the runtime directory is
//! removed). `stop` then waits until the pid file's lock is released and the directory is
//! gone. If the control socket does not answer, the host-vmm holding the lock gets SIGTERM.

use std::time::Duration;

use anyhow::{bail, Context};
use host_vmm::api::{self, Request, Response};
use host_vmm::sandbox::{runtime_root, RuntimeDir};

/// How long the control socket has to accept the request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `stop` looks whether the sandbox is gone.
const POLL: Duration = Duration::from_millis(50);

/// Stops sandbox `id`, waiting at most `timeout` for it to be gone.
pub fn stop(id: &str, timeout: Duration) -> anyhow::Result<()> {
    let root = runtime_root();
    let dir = RuntimeDir::open(&root, id)?;
    match api::request_with_timeout(&dir.api_socket(), &Request::Stop, REQUEST_TIMEOUT) {
        Ok(Response::Stopping { pid }) => tracing::info!(id, pid, "stopping"),
        Ok(Response::Error { message }) => bail!("sandbox {id}: stop refused: {message}"),
        Ok(other) => bail!("sandbox {id}: unexpected answer to stop: {other:?}"),
        Err(e) => {
            tracing::warn!(id, "control socket: {e}; sending SIGTERM instead");
            terminate(&dir)?;
        }
    }
    dir.wait_gone(timeout, POLL).with_context(|| {
        format!(
            "sandbox {id}: not gone after --timeout {}; `kill -9` its host-vmm and the next start \
             with --id {id} reclaims the directory",
            timeout.as_secs()
        )
    })
}

/// SIGTERM to the sandbox's host-vmm, if it still holds the lock.
fn terminate(dir: &RuntimeDir) -> anyhow::Result<()> {
    let id = dir.id();
    let pid = dir
        .pid()
        .and_then(|p| libc::pid_t::try_from(p).ok())
        .filter(|p| *p > 1)
        .with_context(|| format!("sandbox {id}: its pid file names no process"))?;
    // Only while the lock is held: then `pid` is the live owner, not a reused pid.
    if !dir.is_live().with_context(|| format!("sandbox {id}"))? {
        return Ok(());
    }
    // SAFETY: kill takes plain integers; `pid` is the live owner of the sandbox's lock.
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ESRCH) {
            return Err(e).with_context(|| format!("sandbox {id}: SIGTERM to pid {pid}"));
        }
    }
    Ok(())
}
