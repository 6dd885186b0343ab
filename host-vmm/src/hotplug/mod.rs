//! Hot-plug into a running VM: the orchestration above the devices and KVM.
//!
//! - [`memory`]: hot-adding a DIMM: mmap, KVM slot, guest memory map, ACPI notification.
//! - [`disk`]: hot-adding and removing virtio-blk disks in the free virtio-mmio slots.
//! - [`cpu`]: adding and removing vCPUs through the CPU hot-plug controller and the GED;
//!   [`cpu_plan`]: its arithmetic (limits, which CPUs, vCPUs for CPU quotas).

pub mod cpu;
pub mod cpu_plan;
pub mod disk;
pub mod memory;
