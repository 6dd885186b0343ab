//! SIGINT, SIGTERM and SIGHUP stop the VM cleanly instead of killing the
//! process: the VMM then tears everything down (vCPU threads, sockets, the
//! runtime directory) as after a guest power-off.
//!
//! [`block_stop_signals`] must run before any thread starts, so every thread
//! inherits the blocked mask and only the waiter thread receives them.

use std::io;
use std::sync::Arc;

use crate::exit::{ExitSignal, GuestExit};

/// The signals that stop the VM.
pub const STOP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

fn stop_set() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in STOP_SIGNALS {
            libc::sigaddset(&mut set, s);
        }
    }
    set
}

/// Block the stop signals in the calling thread (and the threads it starts).
pub fn block_stop_signals() -> io::Result<()> {
    let set = stop_set();
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Start a thread that waits for a stop signal and asks the VM to stop.
/// It lives until the process exits.
pub fn spawn_stop_waiter(exit: Arc<ExitSignal>) -> io::Result<()> {
    crate::seccomp::thread(
        "stop-signals",
        crate::seccomp::ThreadKind::Signals,
        move || {
            loop {
                let set = stop_set();
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` is initialised and `sig` is a valid out pointer.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc == 0 {
                    tracing::info!(signal = sig, "stop signal received: stopping the VM");
                    exit.request(GuestExit::Stopped { signal: sig });
                }
            }
        },
    )
    .map(|_| ())
}
