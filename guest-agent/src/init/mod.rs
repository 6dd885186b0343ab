//! What the agent does as pid 1, top to bottom in [`run_pid1`]:
//!
//! 1. Block every signal, before any thread exists, so all threads inherit the mask
//!    (children spawned with `std::process::Command` get an empty mask back).
//! 2. Open `/dev/console` (the node in the initramfs) and install the logger and a panic hook
//!    that logs and powers off.
//! 3. Mount the base filesystems ([`mounts`]), read the `agent.*` switches ([`crate::cmdline`]).
//! 4. Enable the cgroup2 controllers ([`cgroups`]); online hot-plugged memory now and on every
//!    kernel uevent ([`crate::uevent`]); start the one child reaper ([`reaper`]).
//! 5. Print the ready line ([`crate::ready`]).
//! 6. With `agent.poweroff=1` power off ([`shutdown`]); otherwise serve ([`crate::server`]).
//!
//! Log lines also go to the host over vsock from right after the mounts
//! ([`crate::log_forward`]).
//!
//! Any fatal error is logged to the console and powers the VM off.

pub mod mounts;
pub mod shutdown;

use std::fs;
use std::path::Path;

use nix::sys::signal::SigSet;

use crate::cgroup_root as cgroups;
use crate::cmdline::{self, LogLevel};
use crate::error_chain::error_chain;
use crate::{console, log_forward, logging, memory, ready, reaper, server, uevent};

/// Runs the guest's init. Never returns.
pub fn run_pid1() -> ! {
    let blocked = SigSet::all().thread_block();
    let started_ms = ready::boot_clock_ms().ok();
    let console_err = console::open(Path::new(console::CONSOLE_PATH)).err();
    logging::init(LogLevel::Info);
    std::panic::set_hook(Box::new(|info| {
        tracing::error!("panic: {info}");
        shutdown::power_off();
    }));
    if let Some(e) = console_err {
        tracing::warn!("open {}: {e}; logging to stderr", console::CONSOLE_PATH);
    }
    if let Err(e) = blocked {
        shutdown::fatal("block signals", &e);
    }

    let mounted = match mounts::mount_all(&mounts::BASE_MOUNTS) {
        Ok(report) => report,
        Err(e) => shutdown::fatal("mount", &error_chain(&e)),
    };
    // One dial, before anything serves (see log_forward): without a host listening (a VM
    // without host-vmm's log sink), the log stays on the console.
    if let Err(e) = log_forward::start_vsock() {
        tracing::info!("log forwarding to the host is off: {e}");
    }

    let options = match fs::read_to_string("/proc/cmdline") {
        Ok(text) => {
            let (options, warnings) = cmdline::parse(&text);
            logging::set_level(options.log_level);
            for w in warnings {
                tracing::warn!("{w}");
            }
            options
        }
        Err(e) => {
            tracing::warn!("read /proc/cmdline: {e}; using defaults");
            cmdline::Options::default()
        }
    };

    if let Some(ms) = started_ms {
        tracing::debug!("init started {ms} ms after the kernel");
    }
    log_mounts(&mounted);
    enable_cgroup_controllers();
    start_memory_onliner(options.mem_online);
    let reaper = match reaper::Reaper::start() {
        Ok(r) => r,
        Err(e) => shutdown::fatal("start reaper", &error_chain(&e)),
    };

    match ready::ReadyInfo::collect() {
        Ok(info) => console::write_line(&info.line()),
        Err(e) => shutdown::fatal("collect ready facts", &error_chain(&e)),
    }

    if options.poweroff {
        tracing::info!("agent.poweroff=1: powering off");
        shutdown::power_off();
    }
    server::serve(reaper)
}

/// Online offline memory blocks now and whenever the kernel adds one (memory hot-plug).
fn start_memory_onliner(kind: memory::OnlineType) {
    if let Err(e) = uevent::start_memory_onliner(memory::set_system(kind)) {
        tracing::error!("memory hotplug onliner: {}", error_chain(&e));
    }
}

fn log_mounts(report: &[(mounts::MountSpec, mounts::MountOutcome)]) {
    for (spec, outcome) in report {
        match outcome {
            mounts::MountOutcome::Mounted => {
                tracing::debug!("mounted {} on {}", spec.fstype, spec.target)
            }
            mounts::MountOutcome::AlreadyMounted(fstype) if fstype == spec.fstype => {
                tracing::debug!("{} already mounted ({fstype})", spec.target)
            }
            mounts::MountOutcome::AlreadyMounted(fstype) => tracing::warn!(
                "{} already mounted as {fstype}, not {}; keeping it",
                spec.target,
                spec.fstype
            ),
        }
    }
}

fn enable_cgroup_controllers() {
    match cgroups::enable(Path::new(cgroups::CGROUP_ROOT)) {
        Ok((plan, failures)) => {
            if !plan.missing.is_empty() {
                tracing::warn!(
                    "cgroup controllers not offered by the kernel: {}",
                    plan.missing.join(" ")
                );
            }
            for f in &failures {
                tracing::warn!("{}", error_chain(f));
            }
            tracing::debug!(
                "cgroup controllers enabled: {} (already: {})",
                plan.enable.join(" "),
                plan.already.join(" ")
            );
        }
        Err(e) => tracing::warn!("cgroup controllers: {}", error_chain(&e)),
    }
}
