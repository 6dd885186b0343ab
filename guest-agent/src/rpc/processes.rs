//! Processes in containers: exec, wait, signal. Every process is spawned through the agent's
//! one reaper (the sandbox holds it).

use protocol::agent::*;
use protocol::Empty;

use super::containers::required;
use super::ids;
use super::{Agent, RpcError};
use crate::container::spec::Process;

/// The highest signal number (`SIGRTMAX` on Linux).
pub const MAX_SIGNAL: u32 = 64;

pub fn exec_process(agent: &Agent, req: ExecProcessRequest) -> Result<Empty, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let sandbox = agent.sandbox()?;
    let process = Process::from_json(required(&req.process_json, "process_json")?)?;
    sandbox.exec_process(&req.container_id, &req.exec_id, &process)?;
    Ok(Empty::new())
}

/// Blocks until the process ends. `oom_killed`: the container's cgroup has seen an OOM kill
/// (`memory.events` oom_kill > 0) by the time the process ended.
pub fn wait_process(
    agent: &Agent,
    req: WaitProcessRequest,
) -> Result<WaitProcessResponse, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    #[cfg(feature = "test-crash-hook")]
    crate::crash_hook::on_wait_process();
    let container = agent.sandbox()?.container(&req.container_id)?;
    let status = container.wait(&req.exec_id)?;
    let mut r = WaitProcessResponse::new();
    r.status = status;
    r.oom_killed = match container.stats() {
        Ok(stats) => stats.oom_kills > 0,
        Err(e) => {
            // Removed meanwhile: the exit code is still the answer.
            tracing::debug!(
                "wait {} in {}: no oom count: {}",
                req.exec_id,
                req.container_id,
                crate::error_chain::error_chain(&e)
            );
            false
        }
    };
    Ok(r)
}

pub fn signal_process(agent: &Agent, req: SignalProcessRequest) -> Result<Empty, RpcError> {
    let id = ids::id(&req.container_id, "container_id")?;
    let exec_id = ids::exec_or_all(&req.exec_id)?;
    let sandbox = agent.sandbox()?;
    let signal = signal_number(req.signal)?;
    sandbox.signal_process(id, exec_id, signal)?;
    Ok(Empty::new())
}

/// A signal number the kernel knows (0 only checks the process exists).
pub fn signal_number(signal: u32) -> Result<i32, RpcError> {
    if signal > MAX_SIGNAL {
        return Err(RpcError::InvalidArgument(format!(
            "signal: {signal} is not a signal number (0 to {MAX_SIGNAL})"
        )));
    }
    Ok(signal as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_signal_number() {
        assert_eq!(signal_number(9).unwrap(), 9);
        assert_eq!(signal_number(0).unwrap(), 0);
        assert_eq!(signal_number(64).unwrap(), 64);
        assert!(matches!(
            signal_number(65),
            Err(RpcError::InvalidArgument(_))
        ));
        assert!(matches!(
            signal_number(u32::MAX),
            Err(RpcError::InvalidArgument(_))
        ));
    }
}
