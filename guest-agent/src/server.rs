//! The agent's service loop. The ttrpc server on vsock port [`AGENT_VSOCK_PORT`] will live
//! here; for now pid 1 just keeps reaping.

use std::time::Duration;

use crate::init::reaper::Reaper;

/// The vsock port the host will dial to reach the agent.
pub const AGENT_VSOCK_PORT: u32 = 1024;

/// Serves forever. Children started by handlers must be spawned through `reaper`.
pub fn serve(reaper: Reaper) -> ! {
    let _reaper = reaper;
    tracing::debug!("no server yet (ttrpc on vsock port {AGENT_VSOCK_PORT} comes later); idling");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
