//! OCI `linux.resources` to cgroup v2 interface files. Pure: [`resource_writes`] gives the
//! `(file, value)` pairs to write, or an error naming the spec field.
//!
//! Conversions follow runc's, so a spec means the same here as under runc on cgroup v2:
//! - `memory.limit` -> `memory.max` (-1: `max`; 0: unchanged).
//! - `memory.swap` is memory+swap in OCI; `memory.swap.max` is swap alone: swap - limit
//!   (-1: `max`; limit -1 with swap unset: `max`).
//! - `cpu.shares` -> `cpu.weight` = 1 + ((shares - 2) * 9999) / 262142 (0: unchanged).
//! - `cpu.quota`/`cpu.period` -> `cpu.max` = `<quota|max> [<period>]`.
//! - `cpu.cpus`/`cpu.mems` -> `cpuset.cpus`/`cpuset.mems`.
//! - `pids.limit` -> `pids.max` (0 or less: `max`).

use crate::container::spec::{Resources, SpecError};

/// One write to a cgroup interface file.
pub type Write = (&'static str, String);

/// Smallest and largest `cpu.shares` with a `cpu.weight` equivalent.
const SHARES_MIN: u64 = 2;
const SHARES_MAX: u64 = 262_144;
/// `cpu.max` period bounds (microseconds) the kernel takes, and the smallest quota.
const PERIOD_MIN: u64 = 1_000;
const PERIOD_MAX: u64 = 1_000_000;
const QUOTA_MIN: i64 = 1_000;

/// runc's shares -> weight: maps [2, 262144] onto [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    1 + ((shares - SHARES_MIN) * 9999) / (SHARES_MAX - SHARES_MIN)
}

/// The `memory.swap.max` value for OCI's memory+swap `swap` and `memory` limit, or `None`
/// to leave it unchanged.
pub fn swap_max(swap: i64, memory: i64) -> Result<Option<String>, String> {
    if memory == -1 && swap == 0 {
        return Ok(Some("max".into()));
    }
    match swap {
        -1 => return Ok(Some("max".into())),
        0 => return Ok(None),
        s if s < -1 => return Err(format!("must be -1 (unlimited) or a byte count, not {s}")),
        _ => {}
    }
    if memory <= 0 {
        return Err("a swap limit needs a memory limit (memory.limit)".into());
    }
    if swap < memory {
        return Err(format!(
            "memory+swap {swap} is below the memory limit {memory}"
        ));
    }
    Ok(Some((swap - memory).to_string()))
}

/// Checks a kernel CPU or node list such as `0-3,5`.
pub fn check_cpu_list(list: &str) -> Result<(), String> {
    let bad = || format!("{list:?} is not a CPU list like 0-3,5");
    if list.trim().is_empty() {
        return Err(bad());
    }
    for part in list.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let a: u32 = a.parse().map_err(|_| bad())?;
        let b: u32 = b.parse().map_err(|_| bad())?;
        if b < a {
            return Err(bad());
        }
    }
    Ok(())
}

/// The writes for `resources`; `field` is its name in errors (`linux.resources`).
pub fn resource_writes(resources: &Resources, field: &str) -> Result<Vec<Write>, SpecError> {
    let mut writes = Vec::new();
    if let Some(cpu) = &resources.cpu {
        let f = |name: &str| format!("{field}.cpu.{name}");
        if let Some(cpus) = &cpu.cpus {
            check_cpu_list(cpus).map_err(|p| SpecError::new(f("cpus"), p))?;
            writes.push(("cpuset.cpus", cpus.trim().to_string()));
        }
        if let Some(mems) = &cpu.mems {
            check_cpu_list(mems).map_err(|p| SpecError::new(f("mems"), p))?;
            writes.push(("cpuset.mems", mems.trim().to_string()));
        }
        match cpu.shares {
            None | Some(0) => {}
            Some(s) if (SHARES_MIN..=SHARES_MAX).contains(&s) => {
                writes.push(("cpu.weight", shares_to_weight(s).to_string()))
            }
            Some(s) => {
                return Err(SpecError::new(
                    f("shares"),
                    format!("must be {SHARES_MIN} to {SHARES_MAX}, not {s}"),
                ))
            }
        }
        let quota = cpu.quota.unwrap_or(0);
        let period = cpu.period.unwrap_or(0);
        if period != 0 && !(PERIOD_MIN..=PERIOD_MAX).contains(&period) {
            return Err(SpecError::new(
                f("period"),
                format!("must be {PERIOD_MIN} to {PERIOD_MAX} microseconds, not {period}"),
            ));
        }
        if quota != 0 && quota != -1 && quota < QUOTA_MIN {
            return Err(SpecError::new(
                f("quota"),
                format!("must be -1 (unlimited) or at least {QUOTA_MIN} microseconds, not {quota}"),
            ));
        }
        if quota != 0 || period != 0 {
            let mut value = if quota > 0 {
                quota.to_string()
            } else {
                "max".to_string()
            };
            if period != 0 {
                value.push_str(&format!(" {period}"));
            }
            writes.push(("cpu.max", value));
        }
    }
    if let Some(memory) = &resources.memory {
        let limit = memory.limit.unwrap_or(0);
        match limit {
            0 => {}
            -1 => writes.push(("memory.max", "max".into())),
            l if l > 0 => writes.push(("memory.max", l.to_string())),
            l => {
                return Err(SpecError::new(
                    format!("{field}.memory.limit"),
                    format!("must be -1 (unlimited) or a byte count, not {l}"),
                ))
            }
        }
        let swap = swap_max(memory.swap.unwrap_or(0), limit)
            .map_err(|p| SpecError::new(format!("{field}.memory.swap"), p))?;
        if let Some(value) = swap {
            writes.push(("memory.swap.max", value));
        }
    }
    if let Some(limit) = resources.pids.as_ref().and_then(|p| p.limit) {
        let value = if limit > 0 {
            limit.to_string()
        } else {
            "max".into()
        };
        writes.push(("pids.max", value));
    }
    Ok(writes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::{CpuResources, MemoryResources, PidsResources};

    fn writes(res: Resources) -> Vec<Write> {
        resource_writes(&res, "linux.resources").unwrap()
    }

    fn error(res: Resources) -> String {
        resource_writes(&res, "linux.resources")
            .unwrap_err()
            .to_string()
    }

    fn memory(limit: Option<i64>, swap: Option<i64>) -> Resources {
        Resources {
            memory: Some(MemoryResources {
                limit,
                swap,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn cpu(c: CpuResources) -> Resources {
        Resources {
            cpu: Some(c),
            ..Default::default()
        }
    }

    #[test]
    fn test_shares_to_weight_matches_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
    }

    #[test]
    fn test_memory_limit_and_swap() {
        assert_eq!(
            writes(memory(Some(100 << 20), Some(300 << 20))),
            vec![
                ("memory.max", (100u64 << 20).to_string()),
                ("memory.swap.max", (200u64 << 20).to_string())
            ]
        );
        assert_eq!(
            writes(memory(Some(-1), None)),
            vec![
                ("memory.max", "max".into()),
                ("memory.swap.max", "max".into())
            ]
        );
        assert_eq!(
            writes(memory(Some(1 << 20), Some(-1))),
            vec![
                ("memory.max", (1u64 << 20).to_string()),
                ("memory.swap.max", "max".into())
            ]
        );
        // Swap equal to the limit: no swap at all.
        assert_eq!(
            writes(memory(Some(4096), Some(4096)))[1],
            ("memory.swap.max", "0".into())
        );
        assert!(writes(memory(None, None)).is_empty());
    }

    #[test]
    fn test_memory_errors_name_field() {
        assert_eq!(
            error(memory(Some(-2), None)),
            "linux.resources.memory.limit: must be -1 (unlimited) or a byte count, not -2"
        );
        assert_eq!(
            error(memory(None, Some(100))),
            "linux.resources.memory.swap: a swap limit needs a memory limit (memory.limit)"
        );
        assert_eq!(
            error(memory(Some(200), Some(100))),
            "linux.resources.memory.swap: memory+swap 100 is below the memory limit 200"
        );
    }

    #[test]
    fn test_cpu_mapping() {
        let w = writes(cpu(CpuResources {
            shares: Some(1024),
            quota: Some(50_000),
            period: Some(100_000),
            cpus: Some("0-1".into()),
            mems: Some("0".into()),
            ..Default::default()
        }));
        assert_eq!(
            w,
            vec![
                ("cpuset.cpus", "0-1".into()),
                ("cpuset.mems", "0".into()),
                ("cpu.weight", "39".into()),
                ("cpu.max", "50000 100000".into()),
            ]
        );
        let unlimited = writes(cpu(CpuResources {
            quota: Some(-1),
            ..Default::default()
        }));
        assert_eq!(unlimited, vec![("cpu.max", "max".into())]);
        let period_only = writes(cpu(CpuResources {
            period: Some(20_000),
            ..Default::default()
        }));
        assert_eq!(period_only, vec![("cpu.max", "max 20000".into())]);
        assert!(writes(cpu(CpuResources::default())).is_empty());
    }

    #[test]
    fn test_cpu_errors_name_field() {
        let e = error(cpu(CpuResources {
            shares: Some(1),
            ..Default::default()
        }));
        assert_eq!(e, "linux.resources.cpu.shares: must be 2 to 262144, not 1");
        let e = error(cpu(CpuResources {
            cpus: Some("3-1".into()),
            ..Default::default()
        }));
        assert!(e.starts_with("linux.resources.cpu.cpus: "), "{e}");
        let e = error(cpu(CpuResources {
            period: Some(10),
            ..Default::default()
        }));
        assert!(e.starts_with("linux.resources.cpu.period: "), "{e}");
        let e = error(cpu(CpuResources {
            quota: Some(5),
            ..Default::default()
        }));
        assert!(e.starts_with("linux.resources.cpu.quota: "), "{e}");
    }

    #[test]
    fn test_pids_mapping() {
        let pids = |limit| Resources {
            pids: Some(PidsResources { limit: Some(limit) }),
            ..Default::default()
        };
        assert_eq!(writes(pids(64)), vec![("pids.max", "64".into())]);
        assert_eq!(writes(pids(0)), vec![("pids.max", "max".into())]);
        assert_eq!(writes(pids(-1)), vec![("pids.max", "max".into())]);
    }

    #[test]
    fn test_check_cpu_list() {
        for good in ["0", "0-3", "0-3,5,7-8", " 1 "] {
            check_cpu_list(good).unwrap();
        }
        for bad in ["", "a", "3-1", "0,,1", "-1", "0-"] {
            assert!(check_cpu_list(bad).is_err(), "{bad:?}");
        }
    }
}
