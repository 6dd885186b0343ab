//! Small shared helpers the build steps use to put devices on a bus.

use std::sync::{Arc, Mutex};

use vmm_sys_util::eventfd::EventFd;

use super::error::BuildError;
use super::BootOptions;
use crate::devices::legacy::ConsoleOutput;
use crate::devices::{Bus, BusDevice, SharedDevice};

/// Put `dev` on `bus` at `base..base + len`.
pub fn add_device(
    bus: &mut Bus,
    device: &'static str,
    dev: impl BusDevice + 'static,
    base: u64,
    len: u64,
) -> Result<(), BuildError> {
    let shared: SharedDevice = Arc::new(Mutex::new(dev));
    bus.insert(shared, base, len)
        .map_err(|source| BuildError::Bus { device, source })
}

/// A non-blocking eventfd for `device`'s interrupt (an irqfd).
pub fn irq_eventfd(device: &'static str) -> Result<EventFd, BuildError> {
    EventFd::new(libc::EFD_NONBLOCK | libc::EFD_CLOEXEC)
        .map_err(|source| BuildError::EventFd { device, source })
}

/// The console output `opts` names (stdout without one).
pub fn open_console(opts: &BootOptions) -> Result<ConsoleOutput, BuildError> {
    ConsoleOutput::open(opts.console.as_deref()).map_err(console_error(opts))
}

/// The error of a console that cannot be set up.
pub fn console_error(opts: &BootOptions) -> impl Fn(std::io::Error) -> BuildError + '_ {
    |source| BuildError::Console {
        path: opts.console.clone().unwrap_or_default(),
        source,
    }
}
