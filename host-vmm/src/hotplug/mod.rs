//! Hot-plug into a running VM: the orchestration above the devices and KVM.
//!
//! - [`memory`]: hot-adding a DIMM: mmap, KVM slot, guest memory map, ACPI notification.
//! - [`disk`]: hot-adding and removing virtio-blk disks in the free virtio-mmio slots.

pub mod disk;
pub mod memory;
