//! host-vmm: a KVM VMM that boots a guest kernel with guest-agent as `/init`.
//!
//! Code map: `builder` assembles a VM from the configuration; `vmm` runs it;
//! `arch/<arch>` holds the architecture-specific layout and boot setup; `acpi`
//! writes the firmware tables; `devices` holds the device bus and devices;
//! `kvm` wraps the VM and vCPU file descriptors; `memory` maps guest RAM.

pub mod acpi;
pub mod agent;
pub mod api;
pub mod arch;
pub mod builder;
pub mod config;
pub mod devices;
pub mod errors;
pub mod image;
pub mod kvm;
pub mod memory;
pub mod oci;
pub mod sandbox;
pub mod units;
pub mod vmm;
pub mod waits;
