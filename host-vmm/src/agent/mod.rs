//! The host's side of the agent channel.
//!
//! - [`hybrid_vsock`]: `CONNECT <port>\n` / `OK <port>\n` on the vsock device's Unix socket.
//! - [`client`]: [`AgentClient`]: ttrpc over that stream, bounded retry while the guest
//!   boots, typed calls (`check`, `version`, `guest_details`, `set_guest_date_time`).
//! - [`containers`]: typed sandbox, container, process and stdio calls (the blocking ones
//!   without a timeout).
//! - [`liveness`]: is the agent still answering (a heartbeat while blocking calls wait).
//! - [`validate`]: checks on the agent's (untrusted) replies.
//! - [`log_sink`]: [`LogSink`]: the agent's log lines from vsock port 1025 into a file.
//!
//! The agent listens on guest port [`protocol::AGENT_VSOCK_PORT`] (1024) and forwards its log
//! to host port [`protocol::LOG_VSOCK_PORT`] (1025).

pub mod client;
pub mod containers;
pub mod hybrid_vsock;
pub mod liveness;
pub mod log_sink;
pub mod validate;

#[cfg(test)]
mod tests;

pub use client::{AgentClient, AgentVersion, ClientError, ConnectOptions};
pub use containers::{ContainerInfo, ContainerStats, ProcessExit, RootfsSource};
pub use liveness::{AgentDead, Heartbeat};
pub use log_sink::{log_socket_path, LogSink, LogSinkError, LogSinkOptions};
pub use validate::GuestDetails;
