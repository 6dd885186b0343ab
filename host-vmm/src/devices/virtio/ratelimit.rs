//! Rate limiting for log lines the guest can trigger: a misbehaving guest
//! must not be able to flood the host log.
//!
//! [`guest_warn!`](crate::guest_warn) keeps one [`RateLimit`] per call
//! site: at most [`BURST`] lines per [`WINDOW_SECS`]-second window, and the
//! first line of the next window says how many were suppressed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Lines allowed per window and call site.
pub const BURST: u64 = 10;
/// Window length.
pub const WINDOW_SECS: u64 = 5;

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// Per-call-site state: the current window and the lines seen in it.
pub struct RateLimit {
    /// Window index (seconds since `epoch()` / WINDOW_SECS) in the upper
    /// 40 bits, lines seen in that window in the lower 24 (saturating).
    state: AtomicU64,
    /// Lines suppressed in earlier windows, not yet reported.
    suppressed: AtomicU64,
}

const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;

impl RateLimit {
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Self {
            state: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` if a line may be logged now (`n` lines were suppressed
    /// since the last one), `None` if it must be dropped.
    pub fn check(&self) -> Option<u64> {
        self.check_at(epoch().elapsed().as_secs() / WINDOW_SECS)
    }

    fn check_at(&self, window: u64) -> Option<u64> {
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            let (w, n) = (cur >> COUNT_BITS, cur & COUNT_MASK);
            let next = if w == window {
                (window << COUNT_BITS) | (n + 1).min(COUNT_MASK)
            } else {
                (window << COUNT_BITS) | 1
            };
            match self
                .state
                .compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    let count = if w == window { n + 1 } else { 1 };
                    if count <= BURST {
                        return Some(self.suppressed.swap(0, Ordering::Relaxed));
                    }
                    self.suppressed.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
                Err(actual) => cur = actual,
            }
        }
    }
}

/// `tracing::warn!` for events the guest can cause, rate-limited per call
/// site.
#[macro_export]
macro_rules! guest_warn {
    ($($arg:tt)+) => {{
        static LIMIT: $crate::devices::virtio::ratelimit::RateLimit =
            $crate::devices::virtio::ratelimit::RateLimit::new();
        if let Some(suppressed) = LIMIT.check() {
            if suppressed > 0 {
                tracing::warn!(suppressed, $($arg)+);
            } else {
                tracing::warn!($($arg)+);
            }
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ratelimit_burst_then_suppress_then_report() {
        let rl = RateLimit::new();
        for _ in 0..BURST {
            assert_eq!(rl.check_at(7), Some(0));
        }
        assert_eq!(rl.check_at(7), None);
        assert_eq!(rl.check_at(7), None);
        // Next window: allowed again, reporting the two dropped lines once.
        assert_eq!(rl.check_at(8), Some(2));
        assert_eq!(rl.check_at(8), Some(0));
    }

    #[test]
    fn test_guest_warn_macro_compiles_with_fields() {
        for i in 0..100 {
            crate::guest_warn!(i, "guest did something odd");
        }
    }
}
