//! The agent's ttrpc server: every service of [`crate::rpc`] on vsock port
//! [`AGENT_VSOCK_PORT`], started as soon as the mounts are done.
//!
//! [`serve_on`] takes any address ttrpc understands, so tests on a host without vsock run the
//! same server on a Unix socket (`unix:///path`). The server is ttrpc's synchronous one: a
//! listener thread, and per connection a control thread, a reader, a writer and a fixed pool
//! of handler threads; no async runtime.
//!
//! Who may connect ([`admission`]): only the host (vsock peer CID 2, [`peer`]); a refused peer
//! is logged, rate-limited ([`refusal_log`]), and closed. At most [`MAX_CONNECTIONS`]
//! connections live at once ([`slots`]); more are refused the same way.
//!
//! # Thread bound
//!
//! With `thread_count_min` 0, ttrpc 0.10's sync server starts [`HANDLER_THREADS`] handler
//! threads per connection and never more (it only adds threads when the idle count falls
//! below the minimum, and a count cannot fall below 0); none exits early since the idle count
//! never passes the maximum ([`HANDLER_THREADS`] + 1). So a connection has at most
//! `3 + HANDLER_THREADS` threads, and the server at most
//! `2 + MAX_CONNECTIONS * (3 + HANDLER_THREADS)` = [`MAX_SERVER_THREADS`] (listener and
//! connection reaper included). A connection holds its slot until its last thread has ended
//! (see [`slots`]), so the bound also covers handlers still blocked after their peer hung up.
//! A connection whose [`HANDLER_THREADS`] handlers are all blocked (WaitProcess, ReadStdout,
//! ...) queues its further calls until one returns: the host opens one connection per
//! blocking stream (`host-vmm`'s stdio pumps and waiter), so it never has that many on one.
//! (`tests/server_threads.rs` counts the threads.)
//!
//! Why this matters: ttrpc spawns a connection's reader, writer and handler threads with
//! `thread::spawn`, which panics when the kernel refuses a thread, and a panic in pid 1 powers
//! the guest off. Those spawns can fail only when the guest is out of tasks or memory; the
//! agent's own share is bounded here, and containers cannot take the agent's: the sandbox
//! cgroup leaves it [`crate::sandbox::MEMORY_RESERVE`] bytes and
//! [`crate::sandbox::AGENT_TASK_RESERVE`] tasks. (ttrpc's other `unwrap()`s, on its
//! connection reaper's channel and joins, fail only after a panic or a server shutdown, which
//! the agent never does.)

pub mod admission;
pub mod peer;
pub mod refusal_log;
pub mod slots;

use std::thread;

use protocol::ttrpc;

use crate::reaper::Reaper;
use crate::rpc::{self, Agent};
use admission::Admission;
use slots::Slots;

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

/// Connections served at once, at most. The host opens one per CLI command plus one per
/// attached stream: a `run` or `exec` with `-i` uses five (control, stdout, stderr, stdin,
/// wait), so this serves a dozen attached sessions at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Handler threads per connection: a fixed pool (see the module doc).
pub const HANDLER_THREADS: usize = 4;
/// Threads of the ttrpc server, at most (see the module doc).
pub const MAX_SERVER_THREADS: usize = 2 + MAX_CONNECTIONS * (3 + HANDLER_THREADS);

// The sandbox cgroup leaves the agent room for every thread of its server, and as much again.
const _: () = assert!(2 * MAX_SERVER_THREADS as u64 <= crate::sandbox::AGENT_TASK_RESERVE);

/// A running server: ttrpc's, and its connection slots.
pub struct Serving {
    pub server: ttrpc::Server,
    pub slots: Slots,
}

/// The ttrpc address of the agent's vsock listener: `vsock://-1:<port>` (any local CID: the
/// peer is checked per connection).
pub fn vsock_addr(port: u32) -> String {
    format!("vsock://-1:{port}")
}

/// [`serve_with`] with [`MAX_CONNECTIONS`].
pub fn serve_on(addr: &str, agent: Agent) -> Result<ttrpc::Server, ServerError> {
    serve_with(addr, agent, MAX_CONNECTIONS).map(|s| s.server)
}

/// Binds `addr` (`vsock://-1:PORT` or `unix:///path`), registers every service backed by
/// `agent`, and starts serving on background threads with at most `max_connections` live
/// connections. Dropping the handle does not stop them; `stop_listen()` stops accepting.
/// (ttrpc 0.10's `shutdown()` can hang joining its connection reaper when a connection closes
/// at the same moment: tests use `stop_listen()`.)
pub fn serve_with(
    addr: &str,
    agent: Agent,
    max_connections: usize,
) -> Result<Serving, ServerError> {
    let slots = Slots::new(max_connections);
    let mut server = ttrpc::Server::new()
        .bind(addr)
        .map_err(|source| ServerError::Bind {
            addr: addr.to_string(),
            source,
        })?
        .register_service(rpc::services(agent))
        .set_thread_count_default(HANDLER_THREADS)
        .set_thread_count_min(0)
        .set_thread_count_max(HANDLER_THREADS + 1)
        .set_accept_hook(Admission::new(slots.clone()));
    server.start().map_err(|source| ServerError::Start {
        addr: addr.to_string(),
        source,
    })?;
    Ok(Serving { server, slots })
}

/// Serves forever on vsock. Children started by handlers must be spawned through `reaper`.
/// Without a server (no vsock in the guest) the agent logs why and keeps reaping: the host
/// sees the failure on the console and in its connect timeout.
pub fn serve(reaper: Reaper) -> ! {
    let addr = vsock_addr(AGENT_VSOCK_PORT);
    let _server = match serve_on(&addr, Agent::new(Some(reaper))) {
        Ok(server) => {
            tracing::info!(
                "serving ttrpc on vsock port {AGENT_VSOCK_PORT} (host only, at most \
                 {MAX_CONNECTIONS} connections)"
            );
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
mod tests;

#[cfg(test)]
mod unit {
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
