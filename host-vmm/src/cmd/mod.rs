//! The subcommands of the `host-vmm` binary, one file each. They parse
//! nothing (main.rs does) and hold no VMM logic (the library does): they
//! connect the two and add context to errors.
//!
//! Shared pieces: [`sandbox_vm`] starts a sandbox VM (`boot`, `run`); [`session`] attaches
//! to a container process and waits for it (`run`, `exec`, `start --attach`), with the
//! stdio pumps of [`stdio`]; [`signals`] routes host signals for every command but `boot`.

pub mod agent;
pub mod boot;
pub mod container_args;
pub mod containers;
pub mod cpus;
pub mod disk;
pub mod list;
pub mod memory;
pub mod run;
pub mod sandbox_vm;
pub mod session;
pub mod signals;
pub mod stdio;
pub mod stop;
pub mod update;
