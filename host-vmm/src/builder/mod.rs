//! The one place a VM is assembled from the configuration: [`build_vm`],
//! one arch-neutral sequence over the board of the host's architecture
//! ([`board::Board`]: `x86_64/`, `aarch64/`). Read top to bottom: memory,
//! KVM VM, board setup, vCPUs and interrupt controller, legacy devices,
//! virtio devices, hot-plug slots, memory and disk hot-plug, boot, CPU
//! hot-plug.

use std::path::PathBuf;

pub use crate::devices::virtio::block::DiskConfig;

/// The aarch64 board: its pure parts (DSDT, fw_cfg items) build everywhere.
pub mod aarch64;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod board;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod devices;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod error;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod hotplug;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod virtio;
#[cfg(target_arch = "x86_64")]
mod x86_64;

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub use build::build_vm;
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
pub use error::BuildError;

/// Boot options that are not part of the configuration file.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Where the guest console goes; stdout when `None`.
    pub console: Option<PathBuf>,
    /// The hybrid vsock socket (`<runtime dir>/vsock.sock`): with it, the VM
    /// gets a virtio-vsock device (guest CID 3) served on this Unix socket.
    pub vsock_socket: Option<PathBuf>,
    /// virtio-blk disks, in order (the guest's vda, vdb, ... when nothing
    /// else claims those names; find them by serial), each in the next
    /// virtio-mmio slot after vsock.
    pub disks: Vec<DiskConfig>,
}

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod build;
