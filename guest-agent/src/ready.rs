//! The ready line: the one machine-readable line the agent prints to `/dev/console` as soon as
//! its mounts are done. The host (and the boot tests) wait for it.
//!
//! Format (keys and their order are stable; one space between fields; a newline ends it):
//!
//! ```text
//! AGENT_READY version=<crate version> since_kernel_ms=<u64> cpus=<u32> mem_total_kib=<u64>
//! ```
//!
//! - `version`: the guest-agent crate version, e.g. `0.1.0` (no spaces).
//! - `since_kernel_ms`: milliseconds since the kernel started (`CLOCK_BOOTTIME`).
//! - `cpus`: online CPUs, counted from `/sys/devices/system/cpu/online`.
//! - `mem_total_kib`: `MemTotal` from `/proc/meminfo`, in KiB.
//!
//! A regex that matches it:
//! `^AGENT_READY version=(\S+) since_kernel_ms=(\d+) cpus=(\d+) mem_total_kib=(\d+)$`

use std::fs;
use std::io;

use nix::time::{clock_gettime, ClockId};

const CPU_ONLINE_PATH: &str = "/sys/devices/system/cpu/online";
const MEMINFO_PATH: &str = "/proc/meminfo";

#[derive(Debug, thiserror::Error)]
pub enum ReadyError {
    #[error("read {path}")]
    Read {
        path: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("bad CPU list {0:?}")]
    CpuList(String),
    #[error("no MemTotal line in /proc/meminfo")]
    NoMemTotal,
    #[error("bad MemTotal line {0:?}")]
    MemTotal(String),
    #[error("read CLOCK_BOOTTIME")]
    Clock(#[source] nix::Error),
}

/// The facts the ready line carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyInfo {
    pub version: &'static str,
    pub since_kernel_ms: u64,
    pub cpus: u32,
    pub mem_total_kib: u64,
}

impl ReadyInfo {
    /// Reads the facts from `/proc`, `/sys` and the boot clock (which must be mounted).
    pub fn collect() -> Result<Self, ReadyError> {
        let read = |path: &'static str| {
            fs::read_to_string(path).map_err(|source| ReadyError::Read { path, source })
        };
        Ok(Self {
            version: crate::VERSION,
            since_kernel_ms: boot_clock_ms()?,
            cpus: count_cpu_list(&read(CPU_ONLINE_PATH)?)?,
            mem_total_kib: mem_total_kib(&read(MEMINFO_PATH)?)?,
        })
    }

    /// The ready line, without its newline.
    pub fn line(&self) -> String {
        format!(
            "AGENT_READY version={} since_kernel_ms={} cpus={} mem_total_kib={}",
            self.version, self.since_kernel_ms, self.cpus, self.mem_total_kib
        )
    }
}

/// Milliseconds since the kernel started (`CLOCK_BOOTTIME`).
pub fn boot_clock_ms() -> Result<u64, ReadyError> {
    let since_boot = clock_gettime(ClockId::CLOCK_BOOTTIME).map_err(ReadyError::Clock)?;
    Ok(u64::try_from(since_boot.tv_sec()).unwrap_or(0) * 1000
        + u64::try_from(since_boot.tv_nsec()).unwrap_or(0) / 1_000_000)
}

/// Counts the CPUs in a kernel CPU list such as `0-3,5,7-8` (trailing newline allowed).
pub fn count_cpu_list(list: &str) -> Result<u32, ReadyError> {
    let bad = || ReadyError::CpuList(list.to_string());
    let list = list.trim();
    if list.is_empty() {
        return Err(bad());
    }
    let mut count: u32 = 0;
    for part in list.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let first: u32 = first.parse().map_err(|_| bad())?;
        let last: u32 = last.parse().map_err(|_| bad())?;
        if last < first {
            return Err(bad());
        }
        count = count.checked_add(last - first + 1).ok_or_else(bad)?;
    }
    Ok(count)
}

/// Finds `MemTotal:   123456 kB` in `/proc/meminfo` text and returns the KiB value.
pub fn mem_total_kib(meminfo: &str) -> Result<u64, ReadyError> {
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .ok_or(ReadyError::NoMemTotal)?;
    let mut words = line.split_whitespace().skip(1);
    match (
        words.next().map(str::parse::<u64>),
        words.next(),
        words.next(),
    ) {
        (Some(Ok(kib)), Some("kB"), None) => Ok(kib),
        _ => Err(ReadyError::MemTotal(line.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_ready_line_exact_format() {
        let info = ReadyInfo {
            version: "0.1.0",
            since_kernel_ms: 1834,
            cpus: 2,
            mem_total_kib: 492_048,
        };
        assert_eq!(
            info.line(),
            "AGENT_READY version=0.1.0 since_kernel_ms=1834 cpus=2 mem_total_kib=492048"
        );
    }

    #[test]
    fn test_count_cpu_list_forms() {
        assert_eq!(count_cpu_list("0\n").unwrap(), 1);
        assert_eq!(count_cpu_list("0-3").unwrap(), 4);
        assert_eq!(count_cpu_list("0-3,5,7-8\n").unwrap(), 7);
    }

    #[test]
    fn test_count_cpu_list_rejects_garbage() {
        for bad in ["", "\n", "a", "3-1", "0-", "0,,1", "-1"] {
            assert!(count_cpu_list(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn test_mem_total_kib_parses_meminfo() {
        let text = "MemTotal:         492048 kB\nMemFree:          470000 kB\n";
        assert_eq!(mem_total_kib(text).unwrap(), 492_048);
    }

    #[test]
    fn test_mem_total_kib_missing_or_bad() {
        assert!(matches!(
            mem_total_kib("MemFree: 1 kB\n"),
            Err(ReadyError::NoMemTotal)
        ));
        assert!(matches!(
            mem_total_kib("MemTotal: x kB\n"),
            Err(ReadyError::MemTotal(_))
        ));
        assert!(matches!(
            mem_total_kib("MemTotal: 12 MB\n"),
            Err(ReadyError::MemTotal(_))
        ));
    }

    #[test]
    fn test_collect_on_this_machine_formats_a_matching_line() {
        let info = ReadyInfo::collect().unwrap();
        assert!(info.cpus >= 1);
        assert!(info.mem_total_kib > 0);
        assert!(info.line().starts_with("AGENT_READY version="));
    }
}
