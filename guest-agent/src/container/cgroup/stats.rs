//! Parsing cgroup v2 statistics files. Pure.

use serde::Serialize;

/// What `stats()` reports for one cgroup. Counters a kernel lacks read as 0 / `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CgroupStats {
    /// `cpu.stat`.
    pub cpu_usage_usec: u64,
    pub cpu_user_usec: u64,
    pub cpu_system_usec: u64,
    pub cpu_nr_throttled: u64,
    pub cpu_throttled_usec: u64,
    /// `memory.current`, `memory.max` (`None`: no limit), `memory.swap.current`.
    pub memory_current: u64,
    pub memory_max: Option<u64>,
    pub memory_swap_current: u64,
    /// `pids.current`, `pids.max` (`None`: no limit).
    pub pids_current: u64,
    pub pids_max: Option<u64>,
    /// `memory.events` oom_kill: processes the OOM killer took for this cgroup's limits.
    pub oom_kills: u64,
    /// `io.stat`, one entry per device.
    pub io: Vec<IoStat>,
}

impl CgroupStats {
    /// Bytes read, summed over devices.
    pub fn io_read_bytes(&self) -> u64 {
        self.io
            .iter()
            .fold(0, |sum, s| sum.saturating_add(s.rbytes))
    }

    /// Bytes written, summed over devices.
    pub fn io_write_bytes(&self) -> u64 {
        self.io
            .iter()
            .fold(0, |sum, s| sum.saturating_add(s.wbytes))
    }
}

/// One `io.stat` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct IoStat {
    pub major: u32,
    pub minor: u32,
    pub rbytes: u64,
    pub wbytes: u64,
    pub rios: u64,
    pub wios: u64,
}

/// The value of `key` in a flat keyed file such as `cpu.stat` (`usage_usec 1234` lines).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        (words.next() == Some(key))
            .then(|| words.next()?.parse().ok())
            .flatten()
    })
}

/// A single-value file: a number, or `None` for `max` or garbage.
pub fn limit_value(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// `io.stat`: `8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0` per line; unknown keys
/// are skipped, malformed lines dropped.
pub fn parse_io_stat(text: &str) -> Vec<IoStat> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let (major, minor) = words.next()?.split_once(':')?;
            let mut stat = IoStat {
                major: major.parse().ok()?,
                minor: minor.parse().ok()?,
                ..Default::default()
            };
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    continue;
                };
                let Ok(value) = value.parse() else { continue };
                match key {
                    "rbytes" => stat.rbytes = value,
                    "wbytes" => stat.wbytes = value,
                    "rios" => stat.rios = value,
                    "wios" => stat.wios = value,
                    _ => {}
                }
            }
            Some(stat)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_keyed_value_reads_cpu_stat() {
        let text = "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n";
        assert_eq!(keyed_value(text, "usage_usec"), Some(1500));
        assert_eq!(keyed_value(text, "system_usec"), Some(500));
        assert_eq!(keyed_value(text, "usage"), None);
        assert_eq!(keyed_value("usage_usec x\n", "usage_usec"), None);
    }

    #[test]
    fn test_memory_events_oom_kill() {
        let text = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(text, "oom_kill"), Some(2));
        assert_eq!(keyed_value(text, "oom"), Some(3));
    }

    #[test]
    fn test_io_sums() {
        let stats = CgroupStats {
            io: parse_io_stat("254:0 rbytes=10 wbytes=1\n254:16 rbytes=5 wbytes=u64\n"),
            ..Default::default()
        };
        assert_eq!((stats.io_read_bytes(), stats.io_write_bytes()), (15, 1));
        let stats = CgroupStats {
            io: parse_io_stat(&format!("1:0 rbytes={}\n1:1 rbytes=1\n", u64::MAX)),
            ..Default::default()
        };
        assert_eq!(stats.io_read_bytes(), u64::MAX);
    }

    #[test]
    fn test_limit_value() {
        assert_eq!(limit_value("max\n"), None);
        assert_eq!(limit_value("104857600\n"), Some(104_857_600));
    }

    #[test]
    fn test_parse_io_stat() {
        let text = "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
                    bad line\n7:1 rbytes=5 extra\n";
        assert_eq!(
            parse_io_stat(text),
            vec![
                IoStat {
                    major: 254,
                    minor: 0,
                    rbytes: 4096,
                    wbytes: 8192,
                    rios: 1,
                    wios: 2
                },
                IoStat {
                    major: 7,
                    minor: 1,
                    rbytes: 5,
                    ..Default::default()
                }
            ]
        );
    }
}
