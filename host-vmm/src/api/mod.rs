//! The VMM's control socket (`<runtime dir>/api.sock`): how `host-vmm memory`
//! and friends reach a running VM.
//!
//! One request per connection: the client writes one JSON line, the server
//! answers one JSON line and closes. See [`protocol`] for the messages.

pub mod client;
pub mod handler;
pub mod protocol;
pub mod server;

pub use client::{memory_request, request, ApiClientError};
pub use handler::VmmApi;
pub use protocol::{DiskEntry, DiskList, DiskRemoved, DiskStatus, MemoryStatus, Request, Response};
pub use server::{ApiHandler, ApiServer, ApiServerError};
