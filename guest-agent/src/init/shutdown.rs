//! Powering the VM off.
//!
//! pid 1 must never exit or panic: either kills the kernel ("Attempted to kill init!"), and a
//! panicked kernel may hang instead of ending the VM, so the host would only see a timeout.
//! So every end of the agent, the clean one (`agent.poweroff=1`) and the fatal ones (a mount
//! fails, a panic), goes through [`power_off`]: sync, then `reboot(RB_POWER_OFF)`, which the
//! VMM sees as the VM ending. A fatal error is logged to the console first, so the host can
//! tell why.

use std::fmt::Display;
use std::time::Duration;

use nix::sys::reboot::{reboot, RebootMode};

/// Logs a fatal error and powers off. Only for pid 1.
pub fn fatal(what: &str, err: &dyn Display) -> ! {
    tracing::error!("fatal: {what}: {err}; powering off");
    power_off()
}

/// Syncs filesystems and powers the VM off. Never returns: if the power-off request fails it
/// falls back to a reboot (which a VMM also sees as the VM ending), then waits forever.
pub fn power_off() -> ! {
    if nix::unistd::getpid().as_raw() != 1 {
        // Defensive: only pid 1 may switch the machine off.
        tracing::error!("power off requested but not pid 1; exiting instead");
        std::process::exit(1);
    }
    nix::unistd::sync();
    // reboot() only ever returns an error.
    let Err(err) = reboot(RebootMode::RB_POWER_OFF);
    tracing::error!("reboot(RB_POWER_OFF) failed: {err}; trying RB_AUTOBOOT");
    let Err(err) = reboot(RebootMode::RB_AUTOBOOT);
    tracing::error!("reboot(RB_AUTOBOOT) failed: {err}; halting here");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
