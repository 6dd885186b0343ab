//! The agent's switches on the kernel command line (`/proc/cmdline`).
//!
//! Keys the agent knows:
//! - `agent.poweroff=1|0` (also `true|false`; a bare `agent.poweroff` means 1): power the VM off
//!   right after the ready line. Used by boot checks.
//! - `agent.log=debug|info|warn`: the agent's log level (default `info`).
//! - `agent.mem_online=online|movable`: how hot-plugged memory blocks are onlined (default
//!   `movable`: ZONE_MOVABLE, which container memory and page cache use, keeps the blocks
//!   unpluggable and keeps the kernel's own (DMA) buffers in boot RAM; `online` lets the
//!   kernel use them for everything).
//!
//! Unknown `agent.*` keys and bad values are reported as [`Warning`]s, logged and ignored: a
//! typo on the command line must not stop the guest from booting. Other keys belong to the
//! kernel and are skipped silently. When a key repeats, the last one wins, as in the kernel.

use std::fmt;

use crate::memory::OnlineType;

/// Log levels selectable with `agent.log=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
}

impl LogLevel {
    fn parse(value: &str) -> Option<Self> {
        match value {
            "debug" => Some(Self::Debug),
            "info" => Some(Self::Info),
            "warn" => Some(Self::Warn),
            _ => None,
        }
    }
}

/// What the command line asks of the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub poweroff: bool,
    pub log_level: LogLevel,
    pub mem_online: OnlineType,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            poweroff: false,
            log_level: LogLevel::Info,
            mem_online: OnlineType::Movable,
        }
    }
}

/// A problem with an `agent.*` parameter; the parameter is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    UnknownKey(String),
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::UnknownKey(key) => write!(f, "unknown kernel parameter {key} ignored"),
            Warning::BadValue {
                key,
                value,
                expected,
            } => write!(
                f,
                "bad value {value:?} for {key} ignored (expected {expected})"
            ),
        }
    }
}

const PREFIX: &str = "agent.";

/// Parses the kernel command line. Pure: the caller reads `/proc/cmdline` and logs warnings.
pub fn parse(cmdline: &str) -> (Options, Vec<Warning>) {
    let mut options = Options::default();
    let mut warnings = Vec::new();
    for word in split_words(cmdline) {
        let (key, value) = match word.split_once('=') {
            Some((k, v)) => (k, Some(unquote(v))),
            None => (word.as_str(), None),
        };
        let key = unquote(key);
        if !key.starts_with(PREFIX) {
            continue;
        }
        let bad = |expected| Warning::BadValue {
            key: key.to_string(),
            value: value.unwrap_or("").to_string(),
            expected,
        };
        match key {
            "agent.poweroff" => match value {
                None | Some("1" | "true") => options.poweroff = true,
                Some("0" | "false") => options.poweroff = false,
                Some(_) => warnings.push(bad("1|0")),
            },
            "agent.log" => match value.and_then(LogLevel::parse) {
                Some(level) => options.log_level = level,
                None => warnings.push(bad("debug|info|warn")),
            },
            "agent.mem_online" => match value.and_then(OnlineType::parse) {
                Some(kind) => options.mem_online = kind,
                None => warnings.push(bad("online|movable")),
            },
            _ => warnings.push(Warning::UnknownKey(key.to_string())),
        }
    }
    (options, warnings)
}

/// Splits on ASCII whitespace outside double quotes, as the kernel does (`key="a b"`).
fn split_words(cmdline: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_ascii_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_empty_gives_defaults() {
        let (opts, warnings) = parse("");
        assert_eq!(opts, Options::default());
        assert!(warnings.is_empty());
    }

    #[test]
    fn test_parse_poweroff_and_log_among_kernel_params() {
        let (opts, warnings) =
            parse("console=ttyS0 quiet agent.poweroff=1 panic=-1 agent.log=debug\n");
        assert!(opts.poweroff);
        assert_eq!(opts.log_level, LogLevel::Debug);
        assert!(warnings.is_empty());
    }

    #[test]
    fn test_parse_retired_selftest_is_an_unknown_key() {
        let (opts, warnings) = parse("agent.selftest=containers");
        assert_eq!(opts, Options::default());
        assert_eq!(warnings, vec![Warning::UnknownKey("agent.selftest".into())]);
    }

    #[test]
    fn test_parse_poweroff_values() {
        assert!(parse("agent.poweroff").0.poweroff);
        assert!(parse("agent.poweroff=true").0.poweroff);
        assert!(!parse("agent.poweroff=0").0.poweroff);
        assert!(!parse("agent.poweroff=1 agent.poweroff=0").0.poweroff);
    }

    #[test]
    fn test_parse_bad_value_is_warned_and_ignored() {
        let (opts, warnings) = parse("agent.poweroff=maybe agent.log=loud");
        assert_eq!(opts, Options::default());
        assert_eq!(
            warnings,
            vec![
                Warning::BadValue {
                    key: "agent.poweroff".into(),
                    value: "maybe".into(),
                    expected: "1|0"
                },
                Warning::BadValue {
                    key: "agent.log".into(),
                    value: "loud".into(),
                    expected: "debug|info|warn"
                },
            ]
        );
        assert_eq!(
            warnings[1].to_string(),
            "bad value \"loud\" for agent.log ignored (expected debug|info|warn)"
        );
    }

    #[test]
    fn test_parse_mem_online() {
        assert_eq!(parse("").0.mem_online, OnlineType::Movable);
        assert_eq!(
            parse("agent.mem_online=movable").0.mem_online,
            OnlineType::Movable
        );
        assert_eq!(
            parse("agent.mem_online=movable agent.mem_online=online")
                .0
                .mem_online,
            OnlineType::Online
        );
        let (opts, warnings) = parse("agent.mem_online=kernel");
        assert_eq!(opts.mem_online, OnlineType::Movable);
        assert!(matches!(
            warnings.as_slice(),
            [Warning::BadValue {
                expected: "online|movable",
                ..
            }]
        ));
    }

    #[test]
    fn test_parse_bare_log_key_is_bad_value() {
        let (_, warnings) = parse("agent.log");
        assert!(matches!(warnings.as_slice(), [Warning::BadValue { .. }]));
    }

    #[test]
    fn test_parse_unknown_agent_key_is_warned() {
        let (opts, warnings) = parse("agent.frobnicate=3 agentx=1 foo.agent.log=debug");
        assert_eq!(opts, Options::default());
        assert_eq!(
            warnings,
            vec![Warning::UnknownKey("agent.frobnicate".into())]
        );
    }

    #[test]
    fn test_parse_quoted_values_and_spaces() {
        let (opts, warnings) = parse("dyndbg=\"file a.c +p\"   agent.log=\"warn\"\tagent.poweroff");
        assert_eq!(opts.log_level, LogLevel::Warn);
        assert!(opts.poweroff);
        assert!(warnings.is_empty());
    }
}
