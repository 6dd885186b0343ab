//! The VMM's control socket (`<runtime dir>/api.sock`): how `host-vmm memory`
//! and friends reach a running VM.
//!
//! One request per connection: the client writes one JSON line, the server
//! answers one JSON line and closes. See [`protocol`] for the messages.

pub mod client;
pub mod cpu_needs;
pub mod handler;
pub mod protocol;
pub mod server;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

pub use client::{
    cpu_need, cpu_request, memory_request, request, request_with_timeout, ApiClientError,
};
pub use handler::VmmApi;
pub use protocol::{
    DiskEntry, DiskList, DiskRemoved, DiskStatus, MemoryStatus, Request, Response, SandboxStatus,
    VcpuStatus,
};
pub use server::{ApiHandler, ApiServer, ApiServerError};
