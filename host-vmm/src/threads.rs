//! Joining threads without waiting forever.
//!
//! A teardown path must not hang on a thread that is stuck on something
//! the guest or the user controls (a console reader that stopped reading,
//! a disk on a stalled filesystem). [`join_within`] waits up to a deadline,
//! then leaves the thread behind (logged): it holds only its own
//! resources, and process exit ends it.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often [`join_within`] looks whether the thread finished.
const POLL: Duration = Duration::from_millis(5);

/// How a [`join_within`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// The thread returned.
    Finished,
    /// The thread panicked.
    Panicked,
    /// The deadline passed: the thread was left running (detached).
    Abandoned,
}

/// Join `handle` if it finishes within `deadline`; otherwise detach it and
/// log a warning naming `what`.
pub fn join_within(handle: JoinHandle<()>, what: &str, deadline: Duration) -> Joined {
    let end = Instant::now() + deadline;
    while !handle.is_finished() {
        if Instant::now() >= end {
            tracing::warn!(
                thread = what,
                deadline_ms = deadline.as_millis() as u64,
                "thread did not stop in time: left behind"
            );
            return Joined::Abandoned;
        }
        std::thread::sleep(POLL);
    }
    match handle.join() {
        Ok(()) => Joined::Finished,
        Err(_) => {
            tracing::error!(thread = what, "thread panicked");
            Joined::Panicked
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_join_within_finished_panicked_and_abandoned() {
        let t = std::thread::spawn(|| {});
        assert_eq!(
            join_within(t, "quick", Duration::from_secs(5)),
            Joined::Finished
        );
        let t = std::thread::spawn(|| panic!("expected in this test"));
        assert_eq!(
            join_within(t, "panics", Duration::from_secs(5)),
            Joined::Panicked
        );
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            let _ = rx.recv();
        });
        let start = Instant::now();
        assert_eq!(
            join_within(t, "stuck", Duration::from_millis(100)),
            Joined::Abandoned
        );
        let waited = start.elapsed();
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        drop(tx);
    }
}
