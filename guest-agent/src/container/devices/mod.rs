//! The device allow-list of a container: a cgroup v2 device program
//! (`BPF_PROG_TYPE_CGROUP_DEVICE`) attached to its cgroup before any of its processes runs.
//!
//! - `rules`: OCI `linux.resources.devices` and `linux.devices` plus runc's default allow-list,
//!   as one ordered list (pure).
//! - `program`: the eBPF instructions for that list (pure; a test interpreter runs accesses
//!   through them).
//! - `bpf`: `BPF_PROG_LOAD` and `BPF_PROG_ATTACH`.
//!
//! A load or attach failure fails the container's creation: there is no fallback without a
//! device allow-list.

mod bpf;
pub mod program;
pub mod rules;

use std::path::Path;

pub use bpf::BpfError;
pub use rules::{container_rules, DeviceRule, DEFAULT_NODES};

/// Builds the program for `rules`, loads it and attaches it to the cgroup directory `cgroup`.
pub fn install(rules: &[DeviceRule], cgroup: &Path) -> Result<(), BpfError> {
    let prog = program::build(rules);
    let fd = bpf::load(&prog)?;
    bpf::attach(&fd, cgroup)
}
