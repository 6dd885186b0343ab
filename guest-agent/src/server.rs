//! The agent's ttrpc server: every service of [`crate::rpc`] on vsock port
//! [`AGENT_VSOCK_PORT`] (any CID), started as soon as the mounts are done.
//!
//! [`serve_on`] takes any address ttrpc understands, so tests on a host without vsock run the
//! same server on a Unix socket (`unix:///path`). The server is ttrpc's synchronous one: a
//! listener thread plus a small pool of handler threads per connection, no async runtime.

use std::thread;

use protocol::ttrpc;

use crate::reaper::Reaper;
use crate::rpc::{self, Agent};

/// The vsock port the host dials to reach the agent.
pub const AGENT_VSOCK_PORT: u32 = protocol::AGENT_VSOCK_PORT;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("bind the agent server to {addr}")]
    Bind {
        addr: String,
        #[source]
        source: ttrpc::Error,
    },
    #[error("start the agent server on {addr}")]
    Start {
        addr: String,
        #[source]
        source: ttrpc::Error,
    },
}

/// Handler threads a connection starts with.
pub const HANDLER_THREADS: usize = 4;
/// Idle handler threads kept ready: fewer, and the connection starts more.
pub const MIN_IDLE_HANDLERS: usize = 2;
/// Idle handler threads kept at most (after a burst of blocking calls ends).
pub const MAX_IDLE_HANDLERS: usize = 64;

/// The ttrpc address of the agent's vsock listener: `vsock://-1:<port>` (any CID).
pub fn vsock_addr(port: u32) -> String {
    format!("vsock://-1:{port}")
}

/// Binds `addr` (`vsock://-1:PORT` or `unix:///path`), registers every service backed by
/// `agent`, and starts serving on background threads. Dropping the handle does not stop them;
/// `stop_listen()` stops accepting. (ttrpc 0.10's `shutdown()` can hang joining its connection
/// reaper when a connection closes at the same moment: tests use `stop_listen()`.)
pub fn serve_on(addr: &str, agent: Agent) -> Result<ttrpc::Server, ServerError> {
    let mut server = ttrpc::Server::new()
        .bind(addr)
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .register_service(rpc::services(agent))
        .set_thread_count_default(HANDLER_THREADS)
        .set_thread_count_min(MIN_IDLE_HANDLERS)
        .set_thread_count_max(MAX_IDLE_HANDLERS);
    server.start().map_err(|source| ServerError::Start {
        addr: addr.to_string(),
        source,
    })?;
    Ok(server)
}

/// Serves forever on vsock. Children started by handlers must be spawned through `reaper`.
/// Without a server (no vsock in the guest) the agent logs why and keeps reaping: the host
/// sees the failure on the console and in its connect timeout.
pub fn serve(reaper: Reaper) -> ! {
    let addr = vsock_addr(AGENT_VSOCK_PORT);
    let _server = match serve_on(&addr, Agent::new(Some(reaper))) {
        Ok(server) => {
            tracing::info!("serving ttrpc on vsock port {AGENT_VSOCK_PORT}");
            Some(server)
        }
        Err(e) => {
            tracing::error!("{}", crate::error_chain::error_chain(&e));
            None
        }
    };
    loop {
        thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vsock_addr_any_cid() {
        assert_eq!(vsock_addr(1024), "vsock://-1:1024");
    }

    #[test]
    fn test_serve_on_bad_address_is_an_error_naming_it() {
        let Err(e) = serve_on("tcp-nope://x", Agent::new(None)) else {
            panic!("bound a bogus address");
        };
        assert!(e.to_string().contains("tcp-nope://x"), "{e}");
    }
}
