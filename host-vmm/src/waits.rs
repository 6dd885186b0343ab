//! What each thread is waiting for, so a `host-vmm` that seems stuck can say why.
//!
//! A thread about to block (an agent RPC, the VM's end, a join, a guest that runs) calls
//! [`enter`] with a short description and keeps the returned [`WaitGuard`] for as long as
//! it waits; dropping the guard removes the entry. `host-vmm` prints [`render`] on SIGQUIT
//! (`kill -QUIT <pid>`), and with debug logging (`-vv`) logs waits that last a second or
//! more.
//!
//! Bound: one entry per live guard, and a guard lives on the stack of the thread that
//! waits, so the registry never holds more entries than there are threads times their
//! nesting depth. Entries are small (two short strings and a time).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Waits at least this long are logged (debug) when they end.
pub const LOG_AFTER: Duration = Duration::from_secs(1);

/// One thread's current wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitInfo {
    /// The thread's name and kernel thread id (`stdout-pump [tid 1234]`), to match
    /// `/proc/PID/task/TID`.
    pub thread: String,
    /// What it waits for (`WaitProcess c1/c1`).
    pub what: String,
    pub since: Instant,
}

/// The registry (one per process: [`global`]; tests make their own).
#[derive(Debug, Default)]
pub struct WaitRegistry {
    entries: Mutex<BTreeMap<u64, WaitInfo>>,
    next: AtomicU64,
}

/// An entry in the registry while it lives.
#[must_use = "the wait is recorded only while the guard lives"]
pub struct WaitGuard<'a> {
    registry: &'a WaitRegistry,
    key: u64,
}

impl WaitRegistry {
    pub const fn new() -> Self {
        Self {
            entries: Mutex::new(BTreeMap::new()),
            next: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<u64, WaitInfo>> {
        // A poisoned map is still a consistent map of strings.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that the calling thread waits for `what` from now until the guard drops.
    pub fn enter(&self, what: impl Into<String>) -> WaitGuard<'_> {
        self.enter_as(current_thread(), what.into(), Instant::now())
    }

    /// [`Self::enter`] with the thread label and start time given (tests).
    pub fn enter_as(&self, thread: String, what: String, since: Instant) -> WaitGuard<'_> {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(thread, what, "wait: start");
        self.lock().insert(
            key,
            WaitInfo {
                thread,
                what,
                since,
            },
        );
        WaitGuard {
            registry: self,
            key,
        }
    }

    /// Every current wait, oldest first.
    pub fn snapshot(&self) -> Vec<WaitInfo> {
        let mut waits: Vec<WaitInfo> = self.lock().values().cloned().collect();
        waits.sort_by_key(|w| w.since);
        waits
    }

    /// One line per current wait, oldest first: `  <thread>: <what> since 12.3 s`.
    pub fn render(&self, now: Instant) -> String {
        render(&self.snapshot(), now)
    }
}

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let Some(info) = self.registry.lock().remove(&self.key) else {
            return;
        };
        let waited = info.since.elapsed();
        if waited >= LOG_AFTER {
            tracing::debug!(
                thread = info.thread,
                "waited {:.1} s for {}",
                waited.as_secs_f64(),
                info.what
            );
        }
    }
}

/// `waits` as text, one line each (see [`WaitRegistry::render`]); a line saying so when
/// there are none.
pub fn render(waits: &[WaitInfo], now: Instant) -> String {
    if waits.is_empty() {
        return "  (no thread is waiting)\n".to_string();
    }
    let mut out = String::new();
    for w in waits {
        let secs = now.saturating_duration_since(w.since).as_secs_f64();
        let _ = writeln!(out, "  {}: {} since {secs:.1} s", w.thread, w.what);
    }
    out
}

/// The process's registry.
pub fn global() -> &'static WaitRegistry {
    static GLOBAL: WaitRegistry = WaitRegistry::new();
    &GLOBAL
}

/// Records a wait of the calling thread in the process's registry.
pub fn enter(what: impl Into<String>) -> WaitGuard<'static> {
    global().enter(what)
}

/// The process's waits, rendered now.
pub fn dump() -> String {
    global().render(Instant::now())
}

/// `name [tid N]` of the calling thread.
fn current_thread() -> String {
    // SAFETY: gettid has no arguments and cannot fail.
    let tid = unsafe { libc::gettid() };
    let current = std::thread::current();
    format!("{} [tid {tid}]", current.name().unwrap_or("unnamed"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_guard_records_and_removes() {
        let reg = WaitRegistry::new();
        assert!(reg.snapshot().is_empty());
        {
            let _g = reg.enter("WaitProcess c1/c1");
            let waits = reg.snapshot();
            assert_eq!(waits.len(), 1);
            assert_eq!(waits[0].what, "WaitProcess c1/c1");
            assert!(waits[0].thread.contains("[tid "), "{}", waits[0].thread);
        }
        assert!(
            reg.snapshot().is_empty(),
            "the guard's drop removes the entry"
        );
    }

    #[test]
    fn test_nested_and_threads_oldest_first() {
        let reg = WaitRegistry::new();
        let t0 = Instant::now();
        let _outer = reg.enter_as("main".into(), "session".into(), t0);
        {
            let _inner = reg.enter_as(
                "main".into(),
                "RemoveContainer".into(),
                t0 + Duration::from_secs(2),
            );
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _g = reg.enter_as(
                        "stdout-pump".into(),
                        "ReadStdout c1/c1".into(),
                        t0 + Duration::from_secs(1),
                    );
                    let text = reg.render(t0 + Duration::from_millis(12_300));
                    assert_eq!(
                        text,
                        "  main: session since 12.3 s\n  stdout-pump: ReadStdout c1/c1 since \
                         11.3 s\n  main: RemoveContainer since 10.3 s\n"
                    );
                });
            });
        }
        let left: Vec<String> = reg.snapshot().into_iter().map(|w| w.what).collect();
        assert_eq!(left, ["session"]);
    }

    #[test]
    fn test_render_empty_and_future_start() {
        let now = Instant::now();
        assert_eq!(render(&[], now), "  (no thread is waiting)\n");
        let w = WaitInfo {
            thread: "vcpu0".into(),
            what: "guest".into(),
            since: now + Duration::from_secs(5),
        };
        assert_eq!(render(&[w], now), "  vcpu0: guest since 0.0 s\n");
    }

    #[test]
    fn test_many_threads_leave_nothing() {
        let reg = WaitRegistry::new();
        std::thread::scope(|s| {
            for i in 0..16 {
                let reg = &reg;
                s.spawn(move || {
                    for _ in 0..100 {
                        let _g = reg.enter(format!("rpc {i}"));
                    }
                });
            }
        });
        assert!(reg.snapshot().is_empty());
    }
}
