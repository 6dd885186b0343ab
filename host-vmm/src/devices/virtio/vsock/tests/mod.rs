//! Device tests: a test guest drives the vsock device through its MMIO
//! registers and virtqueues in guest memory while the device thread runs;
//! host clients and listeners are real Unix sockets.

mod conn;
mod data;
mod guest;
mod handshake;
mod hotplug;
mod lifecycle;
mod malformed;
mod many;
mod util;

pub(crate) use guest::{pattern, Fnv, Pkt, TestGuest};
