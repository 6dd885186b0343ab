//! A running VM: vCPU threads and how the guest ended.

pub mod exit;

pub use exit::{ExitSignal, GuestExit};
