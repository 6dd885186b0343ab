//! Why a VM could not be built: the shared steps' errors, and the board's
//! own ([`BoardError`]) wrapped as they are.

use std::path::PathBuf;

use super::board::{BoardError, BUS_NAME, SLOTS_OWNER};
use crate::devices::virtio::block::DiskError;
use crate::devices::virtio::mmio::MmioError;
use crate::devices::virtio::vsock::VsockError;
use crate::devices::BusError;
use crate::hotplug::memory::HotplugSetupError;
use crate::kvm::KvmError;
use crate::memory::MemoryError;

/// Why the VM could not be built. Each names the configuration field or
/// file at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Board(#[from] BoardError),
    #[error(transparent)]
    Memory(#[from] MemoryError),
    #[error(transparent)]
    Kvm(#[from] KvmError),
    #[error("console {}: cannot open for writing (a FIFO must already have a reader)", path.display())]
    Console {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the {device} interrupt eventfd")]
    EventFd {
        device: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot place the {device} on the {BUS_NAME} bus")]
    Bus {
        device: &'static str,
        #[source]
        source: BusError,
    },
    #[error("cannot create the vsock device on {}", path.display())]
    Vsock {
        path: PathBuf,
        #[source]
        source: VsockError,
    },
    #[error("cannot attach virtio-blk disk {index}")]
    Disk {
        index: usize,
        #[source]
        source: DiskError,
    },
    #[error("disks {first} and {second} both have serial {serial:?}: each disk needs its own")]
    DuplicateSerial {
        first: usize,
        second: usize,
        serial: String,
    },
    #[error("no virtio-mmio slot left for the {device} (the {SLOTS_OWNER} has {slots})")]
    VirtioSlots { device: &'static str, slots: usize },
    #[error("cannot create the virtio-mmio transport of the {device}")]
    VirtioMmio {
        device: &'static str,
        #[source]
        source: MmioError,
    },
    #[error("memory_slots: cannot set up memory hotplug")]
    MemoryHotplug(#[source] HotplugSetupError),
}
