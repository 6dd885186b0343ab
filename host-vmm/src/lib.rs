//! host-vmm: a KVM VMM that boots a guest kernel with guest-agent as `/init`.
//!
//! Code map: `builder` assembles a VM from the configuration; `vmm` runs it;
//! `arch/<arch>` holds the architecture-specific layout and boot setup; `acpi`
//! writes the firmware tables; `devices` holds the device bus and devices.

pub mod acpi;
pub mod arch;
pub mod config;
