//! guest-agent: the statically linked `/init` of the guest VM.
//!
//! Code map:
//! - `init/`: what pid 1 does, top to bottom: mounts, cgroup controllers, start the reaper, serve,
//!   power off. It sits on top: nothing below imports it.
//! - `reaper`, `error_chain`, `cgroup_root`: low-level helpers (the one child reaper, one-line
//!   error chains, the cgroup2 root and its controllers) that everything above may use.
//! - `cmdline`: the `agent.*` switches on the kernel command line.
//! - `ready`: the machine-readable `AGENT_READY` line the host waits for.
//! - `console`, `logging`: output to `/dev/console` (the kernel console, ttyS0).
//! - `server`: the ttrpc server on vsock port 1024; `rpc/`: its handlers by concern.
//! - `guest_details`: memory block size, hotplug probe, kernel release.
//! - `memory`, `uevent`: onlining hot-plugged memory blocks (at start and on each kernel uevent).
//! - `log_forward`: log lines also go to the host over vsock port 1025 (bounded, non-blocking).
//! - `sandbox`, `container/`: the container engine (sandbox registry, OCI spec, namespaces,
//!   rootfs, cgroups, processes); `container::helper` runs when the agent is re-executed as
//!   `ga-container-helper` to set up a container process.
//! - `check`: a side-effect-free dry run for when the agent is not pid 1.
//! - `crash_hook` (test builds only, feature `test-crash-hook`): the agent dies on purpose.

pub mod cgroup_root;
pub mod check;
pub mod cmdline;
pub mod console;
pub mod container;
pub mod cpus;
#[cfg(feature = "test-crash-hook")]
pub mod crash_hook;
pub mod error_chain;
pub mod guest_details;
pub mod init;
pub mod log_forward;
pub mod logging;
pub mod memory;
pub mod ready;
pub mod reaper;
pub mod rpc;
pub mod sandbox;
pub mod server;
pub mod uevent;

use std::process::ExitCode;

/// The crate version, as printed in the ready line.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "usage: guest-agent [--check | --version | --help]
  Runs as the guest's /init (pid 1): mounts /proc, /sys, /dev, /dev/pts, /dev/shm, /run and
  /sys/fs/cgroup, prints the AGENT_READY line to /dev/console, then reaps children.
  --check    dry run as a normal process: show what pid 1 would do, change nothing";

/// Entry point of the binary. As pid 1 it never returns (see [`init::run_pid1`]); as any other
/// process it only supports the dry run, so it cannot mount or power off anything by accident.
pub fn entry(args: Vec<String>) -> ExitCode {
    // First: a container setup helper may be pid 1 of a new pid namespace (never returns).
    container::run_helper_if_asked();
    if nix::unistd::getpid().as_raw() == 1 {
        // The kernel may pass stray command-line words as arguments: pid 1 ignores them.
        init::run_pid1();
    }
    match args.first().map(String::as_str) {
        Some("--check") if args.len() == 1 => check::run(),
        Some("--version") if args.len() == 1 => {
            println!("guest-agent {VERSION}");
            ExitCode::SUCCESS
        }
        Some("--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!(
                "guest-agent: error: not pid 1 (pid {}): this is the guest's /init and must \
                 not mount or power off anything here; use --check for a dry run",
                nix::unistd::getpid()
            );
            ExitCode::from(2)
        }
        Some(_) => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
