//! Rate-limited logging of refused connections: whoever is refused must not be able to flood
//! the console (every console byte is a VM exit). At most [`BURST`] lines per [`WINDOW`]; the
//! rest are counted, and the next line logged says how many were not. Pure: the caller
//! passes the time.

use std::time::{Duration, Instant};

/// Lines logged per window, at most.
pub const BURST: u32 = 5;
/// The window.
pub const WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct RefusalLog {
    window_start: Option<Instant>,
    logged: u32,
    /// Refusals not logged since the last line.
    suppressed: u64,
}

impl RefusalLog {
    /// Notes a refusal at `now`: `Some(suppressed)` when it is to be logged (with how many
    /// were not logged before it), `None` when it is only counted.
    pub fn note(&mut self, now: Instant) -> Option<u64> {
        let fresh = self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW);
        if fresh {
            self.window_start = Some(now);
            self.logged = 0;
        }
        if self.logged >= BURST {
            self.suppressed += 1;
            return None;
        }
        self.logged += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_a_burst_then_counted_then_reported_in_the_next_window() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        for _ in 0..BURST {
            assert_eq!(log.note(t0), Some(0));
        }
        // A flood within the window: nothing more is logged.
        for i in 0..10_000u64 {
            assert_eq!(log.note(t0 + Duration::from_millis(i % 1000)), None);
        }
        // The next window's first line carries the count.
        assert_eq!(log.note(t0 + WINDOW), Some(10_000));
        assert_eq!(log.note(t0 + WINDOW), Some(0));
    }

    #[test]
    fn test_lines_per_window_are_bounded_whatever_the_rate() {
        let t0 = Instant::now();
        let mut log = RefusalLog::default();
        // One refusal per millisecond for ten windows.
        let total_ms = u64::try_from(WINDOW.as_millis()).unwrap() * 10;
        let logged = (0..total_ms)
            .filter(|ms| log.note(t0 + Duration::from_millis(*ms)).is_some())
            .count();
        assert_eq!(logged, 10 * BURST as usize);
    }
}
