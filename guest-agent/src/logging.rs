//! The agent's `tracing` subscriber: one line per event on the console,
//! `guest-agent: <level> <message> [key=value ...]`.
//!
//! A minimal subscriber instead of `tracing-subscriber`'s formatter keeps the static binary
//! small (sizes are in rootfs/README.md). Spans are accepted and ignored: the agent logs events.
//! The level can change at run time ([`set_level`]): the agent logs before it has mounted
//! `/proc` and so before it can read `agent.log=` from the kernel command line.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};

use crate::cmdline::LogLevel;
use crate::console;

static MAX_LEVEL: AtomicU8 = AtomicU8::new(level_rank(&Level::INFO));

const fn level_rank(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 0,
        Level::WARN => 1,
        Level::INFO => 2,
        Level::DEBUG => 3,
        _ => 4,
    }
}

/// Installs the console subscriber as the global default (once per process; later calls are
/// no-ops) with the given level.
pub fn init(level: LogLevel) {
    set_level(level);
    let _ = tracing::subscriber::set_global_default(ConsoleSubscriber);
}

/// Changes the level of the installed subscriber.
pub fn set_level(level: LogLevel) {
    let level = match level {
        LogLevel::Debug => Level::DEBUG,
        LogLevel::Info => Level::INFO,
        LogLevel::Warn => Level::WARN,
    };
    MAX_LEVEL.store(level_rank(&level), Ordering::Relaxed);
}

/// Formats one event line. Pure, for tests.
pub fn format_line(level: &Level, message: &str, fields: &str) -> String {
    let level = match *level {
        Level::ERROR => "error",
        Level::WARN => "warn",
        Level::INFO => "info",
        Level::DEBUG => "debug",
        _ => "trace",
    };
    format!("guest-agent: {level} {message}{fields}")
}

struct ConsoleSubscriber;

impl Subscriber for ConsoleSubscriber {
    fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
        // The level is dynamic: decide per event in `enabled`.
        Interest::sometimes()
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_rank(metadata.level()) <= MAX_LEVEL.load(Ordering::Relaxed)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut visitor = LineVisitor::default();
        event.record(&mut visitor);
        let line = format_line(event.metadata().level(), &visitor.message, &visitor.fields);
        console::write_line(&line);
        crate::log_forward::forward(&line);
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_format_line_shape() {
        assert_eq!(
            format_line(&Level::WARN, "cgroup controller missing", " name=io"),
            "guest-agent: warn cgroup controller missing name=io"
        );
    }

    #[test]
    fn test_level_rank_orders_verbosity() {
        assert!(level_rank(&Level::ERROR) < level_rank(&Level::WARN));
        assert!(level_rank(&Level::INFO) < level_rank(&Level::DEBUG));
    }
}
