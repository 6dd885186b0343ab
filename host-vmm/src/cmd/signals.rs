//! Where host signals go, for every command but `boot` (which has its own stop-signal
//! thread). `main` blocks SIGINT, SIGTERM, SIGHUP and SIGWINCH in every thread; one thread
//! takes them with `sigwait` and hands each to the current [`Route`]:
//!
//! - [`Route::Exit`] (the default): nothing to clean up, so exit at once with 128+signal
//!   (a `wait` or `ps` that hangs can always be interrupted).
//! - [`Route::Hold`]: setting things up (`run` before its VM runs): remember the signal and
//!   act on it at the next route.
//! - [`Route::Vm`]: stop the sandbox VM, as `boot` does; `run` then tears down.
//! - [`Route::Session`]: an attached process: the session forwards it to the container.
//!
//! SIGWINCH only matters to a session; the others drop it.
//!
//! SIGQUIT, whatever the route, prints what every thread is waiting for
//! ([`host_vmm::waits`]) to stderr and carries on: `kill -QUIT <pid>` on a `host-vmm` that
//! seems stuck says where. `boot` starts only that part ([`start_quit_dump`]).

use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use host_vmm::seccomp::{self, ThreadKind};
use host_vmm::vmm::{stop_signals::STOP_SIGNALS, ExitSignal, GuestExit};

/// Where a signal goes now.
pub enum Route {
    Exit,
    Hold,
    Vm(Arc<ExitSignal>),
    Session(Sender<i32>),
}

struct Router {
    route: Route,
    /// A stop signal that came while holding.
    pending: Option<i32>,
}

fn router() -> &'static Mutex<Router> {
    static ROUTER: OnceLock<Mutex<Router>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        Mutex::new(Router {
            route: Route::Exit,
            pending: None,
        })
    })
}

fn sigset(signals: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t we own; the signal numbers are valid.
    unsafe {
        libc::sigemptyset(&mut set);
        for s in signals {
            libc::sigaddset(&mut set, *s);
        }
    }
    set
}

fn handled() -> Vec<libc::c_int> {
    let mut s = STOP_SIGNALS.to_vec();
    s.push(libc::SIGWINCH);
    s.push(libc::SIGQUIT);
    s
}

/// Blocks SIGWINCH and SIGQUIT in the calling thread and the threads it starts (`main`
/// blocks the stop signals the same way), so only the router thread takes them.
pub fn block_winch() -> std::io::Result<()> {
    let set = sigset(&[libc::SIGWINCH, libc::SIGQUIT]);
    // SAFETY: `set` is initialised; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Starts the router thread (it lives until the process exits).
pub fn start() -> std::io::Result<()> {
    seccomp::thread("signals", ThreadKind::Signals, || {
        loop {
            let set = sigset(&handled());
            let mut sig: libc::c_int = 0;
            // SAFETY: `set` is initialised and `sig` is a valid out pointer.
            if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
                deliver(sig);
            }
        }
    })
    .map(|_| ())
}

/// For `boot`, which has its own stop-signal thread: a thread that only answers SIGQUIT.
pub fn start_quit_dump() -> std::io::Result<()> {
    seccomp::thread("sigquit", ThreadKind::Signals, || loop {
        let set = sigset(&[libc::SIGQUIT]);
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is initialised and `sig` is a valid out pointer.
        if unsafe { libc::sigwait(&set, &mut sig) } == 0 {
            print_waits();
        }
    })
    .map(|_| ())
}

/// How often the debug wait report looks, and how old a wait must be to be reported.
const WAIT_REPORT_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// With debug logging: every [`WAIT_REPORT_EVERY`], if some thread has been waiting that
/// long, logs (debug) what every thread waits for.
pub fn start_wait_report() -> std::io::Result<()> {
    seccomp::thread("wait-report", ThreadKind::Signals, || loop {
        std::thread::sleep(WAIT_REPORT_EVERY);
        let now = std::time::Instant::now();
        let waits = host_vmm::waits::global().snapshot();
        if waits
            .iter()
            .any(|w| now.saturating_duration_since(w.since) >= WAIT_REPORT_EVERY)
        {
            tracing::debug!(
                "what each thread is waiting for:\n{}",
                host_vmm::waits::render(&waits, now)
            );
        }
    })
    .map(|_| ())
}

/// What every thread waits for, on stderr (one write, so it is not interleaved).
fn print_waits() {
    let text = format!(
        "host-vmm (pid {}): what each thread is waiting for:\n{}",
        std::process::id(),
        host_vmm::waits::dump()
    );
    let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), text.as_bytes());
}

fn deliver(sig: i32) {
    if sig == libc::SIGQUIT {
        print_waits();
        return;
    }
    let mut r = router().lock().unwrap_or_else(PoisonError::into_inner);
    if sig == libc::SIGWINCH {
        if let Route::Session(tx) = &r.route {
            let _ = tx.send(sig);
        }
        return;
    }
    tracing::info!(signal = sig, "signal received");
    match &r.route {
        Route::Exit => std::process::exit(128 + sig),
        Route::Hold => r.pending = Some(sig),
        Route::Vm(exit) => exit.request(GuestExit::Stopped { signal: sig }),
        Route::Session(tx) => {
            if tx.send(sig).is_err() {
                r.pending = Some(sig);
            }
        }
    }
}

/// Sends signals to `route` from now on; a signal held meanwhile is delivered to it.
pub fn route(route: Route) {
    let mut r = router().lock().unwrap_or_else(PoisonError::into_inner);
    r.route = route;
    if let Some(sig) = r.pending.take() {
        match &r.route {
            Route::Exit => std::process::exit(128 + sig),
            Route::Hold => r.pending = Some(sig),
            Route::Vm(exit) => exit.request(GuestExit::Stopped { signal: sig }),
            Route::Session(tx) => {
                let _ = tx.send(sig);
            }
        }
    }
}

/// The stop signal that arrived while holding, if any (cleared).
pub fn take_pending() -> Option<i32> {
    router()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pending
        .take()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The router is process-wide: one test walks every route (no real signal is raised;
    /// `Route::Exit` is not taken, it would end the test process).
    #[test]
    fn test_routes_hold_vm_session() {
        route(Route::Hold);
        // SIGQUIT only prints the waits: nothing held, nothing stopped.
        deliver(libc::SIGQUIT);
        assert_eq!(take_pending(), None);
        deliver(libc::SIGTERM);
        assert_eq!(take_pending(), Some(libc::SIGTERM));
        assert_eq!(take_pending(), None);

        // Held, then handed to the VM when it appears.
        deliver(libc::SIGINT);
        let exit = ExitSignal::new();
        route(Route::Vm(exit.clone()));
        assert_eq!(
            exit.wait(),
            GuestExit::Stopped {
                signal: libc::SIGINT
            }
        );
        // SIGWINCH means nothing to a VM.
        let other = ExitSignal::new();
        route(Route::Vm(other.clone()));
        deliver(libc::SIGWINCH);
        assert!(!other.is_requested());

        // A session gets stop signals and SIGWINCH.
        let (tx, rx) = std::sync::mpsc::channel();
        route(Route::Session(tx));
        deliver(libc::SIGWINCH);
        deliver(libc::SIGHUP);
        assert_eq!(
            rx.try_iter().collect::<Vec<_>>(),
            [libc::SIGWINCH, libc::SIGHUP]
        );
        // A session that went away: the signal is kept for the next route.
        drop(rx);
        deliver(libc::SIGTERM);
        route(Route::Hold);
        assert_eq!(take_pending(), Some(libc::SIGTERM));
    }
}
