//! host-vmm: a KVM VMM that boots a guest kernel with guest-agent as `/init`.
//!
//! Code map: `builder` assembles a VM from the configuration; `vmm` runs it;
//! `arch/<arch>` holds the architecture-specific layout and boot setup; `acpi`
//! writes the firmware tables; `devices` holds the device bus and devices;
//! `kvm` wraps the VM and vCPU file descriptors; `memory` maps guest RAM;
//! `hotplug` adds memory and disks to a running VM.
//!
//! Layers, low to high (a module imports only from below; `tests/lint/module-arrows.py`
//! checks there is no circle): `units`, `os`, `exit`, `memory`, `arch`, `acpi`, `devices`,
//! `kvm`, `hotplug`, `vmm`, `api`, `builder`, then the commands.

pub mod acpi;
pub mod agent;
pub mod api;
pub mod arch;
pub mod builder;
pub mod config;
pub mod devices;
pub mod errors;
pub mod exit;
#[cfg(any(test, fuzzing))]
#[doc(hidden)]
pub mod fuzzing;
pub mod hotplug;
pub mod image;
pub mod kvm;
pub mod memory;
pub mod oci;
pub mod os;
pub mod sandbox;
pub mod seccomp;
pub mod threads;
pub mod units;
pub mod vmm;
pub mod waits;
