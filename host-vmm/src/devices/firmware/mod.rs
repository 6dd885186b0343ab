//! What the UEFI ROM of the aarch64 board talks to: the CFI flash of its
//! variable store ([`flash`]) and fw_cfg ([`fw_cfg`]), which hands it the
//! kernel, initrd, command line and ACPI tables. Pure register logic over
//! guest memory: built and tested on every architecture.

pub mod flash;
#[doc(hidden)]
pub mod fuzzing;
pub mod fw_cfg;

pub use flash::{CfiFlash, FlashMirror};
pub use fw_cfg::FwCfg;
