//! How a guest ended, and the one place every thread reports it to.
//!
//! Devices (power-off, reset) and vCPU threads (triple fault, KVM errors)
//! call [`ExitSignal::request`]; the first request wins and wakes the
//! thread waiting in [`ExitSignal::wait`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// How the guest ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestExit {
    /// The guest powered off (ACPI S5, or a KVM system event).
    PowerOff,
    /// The guest asked for a reset (i8042, ACPI reset register, a kernel
    /// panic with `panic=-1`). `source` says which.
    Reset { source: String },
    /// A vCPU triple-faulted (KVM_EXIT_SHUTDOWN). `regs` is its register dump.
    TripleFault { vcpu: u32, regs: String },
    /// KVM or the VMM failed to run a vCPU (internal error, failed entry,
    /// an exit the VMM does not handle). `regs` is the register dump, if any.
    Error {
        vcpu: u32,
        reason: String,
        regs: String,
    },
    /// The host stopped the VM: host-vmm received `signal` (SIGINT, SIGTERM, SIGHUP).
    Stopped { signal: i32 },
}

impl GuestExit {
    /// Process exit code for this outcome (documented in `host-vmm --help`).
    pub fn exit_code(&self) -> i32 {
        match self {
            GuestExit::PowerOff => 0,
            GuestExit::Reset { .. } => 2,
            GuestExit::TripleFault { .. } | GuestExit::Error { .. } => 3,
            GuestExit::Stopped { signal } => 128 + signal,
        }
    }
}

impl fmt::Display for GuestExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestExit::PowerOff => write!(f, "guest powered off"),
            GuestExit::Reset { source } => write!(f, "guest reset ({source})"),
            GuestExit::TripleFault { vcpu, regs } => {
                write!(f, "vCPU {vcpu} triple fault (KVM_EXIT_SHUTDOWN)\n{regs}")
            }
            GuestExit::Stopped { signal } => write!(f, "stopped by signal {signal}"),
            GuestExit::Error { vcpu, reason, regs } => {
                write!(f, "vCPU {vcpu}: {reason}")?;
                if !regs.is_empty() {
                    write!(f, "\n{regs}")?;
                }
                Ok(())
            }
        }
    }
}

/// Shared between devices, vCPU threads and the thread that runs the VM.
#[derive(Debug, Default)]
pub struct ExitSignal {
    requested: AtomicBool,
    outcome: Mutex<Option<GuestExit>>,
    cond: Condvar,
}

impl ExitSignal {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Record `exit` unless an earlier one was recorded; wake the waiter.
    pub fn request(&self, exit: GuestExit) {
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if outcome.is_none() {
            tracing::debug!(%exit, "VM exit requested");
            *outcome = Some(exit);
            self.requested.store(true, Ordering::SeqCst);
            self.cond.notify_all();
        }
    }

    /// True once any exit was requested: vCPU threads stop running.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    /// Block until an exit is requested and return it.
    pub fn wait(&self) -> GuestExit {
        let _wait = crate::waits::enter("the VM's end (ExitSignal)");
        let mut outcome = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(exit) = outcome.as_ref() {
                return exit.clone();
            }
            outcome = self
                .cond
                .wait(outcome)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_exit_signal_first_request_wins() {
        let s = ExitSignal::new();
        assert!(!s.is_requested());
        s.request(GuestExit::PowerOff);
        s.request(GuestExit::Reset {
            source: "i8042".into(),
        });
        assert!(s.is_requested());
        assert_eq!(s.wait(), GuestExit::PowerOff);
    }

    #[test]
    fn test_exit_signal_wakes_waiter_from_other_thread() {
        let s = ExitSignal::new();
        let s2 = Arc::clone(&s);
        let t = std::thread::spawn(move || s2.wait());
        s.request(GuestExit::Reset {
            source: "acpi".into(),
        });
        assert_eq!(t.join().unwrap().exit_code(), 2);
    }

    #[test]
    fn test_exit_codes() {
        assert_eq!(GuestExit::PowerOff.exit_code(), 0);
        let tf = GuestExit::TripleFault {
            vcpu: 0,
            regs: String::new(),
        };
        assert_eq!(tf.exit_code(), 3);
        assert!(tf.to_string().contains("triple fault"));
        assert_eq!(GuestExit::Stopped { signal: 15 }.exit_code(), 143);
    }
}
