//! x86_64: memory layout, boot params, e820, registers, CPUID.

pub mod layout;
