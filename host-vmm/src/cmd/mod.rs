//! The subcommands of the `host-vmm` binary, one file each. They parse
//! nothing (main.rs does) and hold no VMM logic (the library does): they
//! connect the two and add context to errors.

pub mod agent;
pub mod boot;
pub mod memory;
