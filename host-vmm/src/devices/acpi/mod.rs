//! Devices the guest's ACPI interpreter drives through the DSDT's AML:
//!
//! - [`ged`]: the Generic Event Device (ACPI0013): one interrupt line and an
//!   event register that tells `_EVT` what happened.
//! - [`memory_hotplug`]: the memory hot-plug controller whose registers the
//!   PNP0C80 memory devices' `_STA`/`_CRS` and the scan method read.
//! - [`cpu_hotplug`]: the CPU hot-plug controller whose registers the ACPI0007 CPU
//!   devices' `_STA`/`_EJ0` and the CPU scan method read and write.
//!
//! Their AML is in `crate::acpi::memory_hotplug` and `crate::acpi::cpu_hotplug`.

pub mod cpu_hotplug;
pub mod ged;
pub mod memory_hotplug;
