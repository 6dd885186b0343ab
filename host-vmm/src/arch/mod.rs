//! Architecture-specific code. Everything outside `arch/` is arch-neutral.
//!
//! `aarch64`'s pure parts (the board layout, the device tree) build and are
//! tested on every architecture; what talks to KVM's arm64 API is gated inside.

pub mod aarch64;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;
