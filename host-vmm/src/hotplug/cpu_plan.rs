//! The arithmetic of vCPU hot-plug, pure: which counts are allowed, which CPUs a
//! change adds or removes, and how many vCPUs containers' CPU limits need.

/// Why a vCPU count is refused. Each names the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CountError {
    #[error("{wanted} vCPUs: a VM needs at least 1")]
    BelowOne { wanted: u32 },
    #[error("{wanted} vCPUs is below default_vcpus = {boot} (boot vCPUs are never removed)")]
    BelowBoot { wanted: u32, boot: u32 },
    #[error("{wanted} vCPUs is above default_maxvcpus = {max}")]
    AboveMax { wanted: u32, max: u32 },
}

/// The vCPUs a VM can have: `boot` from the start, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuLimits {
    pub boot: u32,
    pub max: u32,
}

/// What a change from the present count to a wanted one does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuChange {
    /// Nothing to do.
    None,
    /// Add these CPUs (ascending).
    Add(std::ops::Range<u32>),
    /// Remove these CPUs, highest first.
    Remove(Vec<u32>),
}

impl CpuLimits {
    /// Checks `wanted` against the limits.
    pub fn check(&self, wanted: u32) -> Result<u32, CountError> {
        if wanted < 1 {
            return Err(CountError::BelowOne { wanted });
        }
        if wanted < self.boot {
            return Err(CountError::BelowBoot {
                wanted,
                boot: self.boot,
            });
        }
        if wanted > self.max {
            return Err(CountError::AboveMax {
                wanted,
                max: self.max,
            });
        }
        Ok(wanted)
    }

    /// The change from `present` (CPUs `0..present` are there) to `wanted`.
    pub fn plan(&self, present: u32, wanted: u32) -> Result<CpuChange, CountError> {
        let wanted = self.check(wanted)?;
        Ok(if wanted > present {
            CpuChange::Add(present..wanted)
        } else if wanted < present {
            CpuChange::Remove((wanted..present).rev().collect())
        } else {
            CpuChange::None
        })
    }
}

/// Whole vCPUs a CPU limit of `cpus` (a quota in CPUs, e.g. `--cpus 2.5`) needs: rounded
/// up, as Kata does. `None` for no limit (0, negative or not a number).
pub fn vcpus_for_quota(cpus: f64) -> Option<u32> {
    if !cpus.is_finite() || cpus <= 0.0 {
        return None;
    }
    let whole = cpus.ceil();
    if whole >= f64::from(u32::MAX) {
        return Some(u32::MAX);
    }
    // In 1..u32::MAX after the checks above.
    Some(whole as u32)
}

/// The vCPUs a sandbox should have for its containers' limits: the largest need, never
/// below `boot` (`default_vcpus`) nor above `max`.
pub fn vcpus_for_containers(needs: impl IntoIterator<Item = u32>, limits: CpuLimits) -> u32 {
    needs
        .into_iter()
        .fold(limits.boot, u32::max)
        .clamp(limits.boot.max(1), limits.max.max(limits.boot).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: CpuLimits = CpuLimits { boot: 1, max: 4 };

    #[test]
    fn test_cpu_plan_refusals_name_the_limit() {
        assert_eq!(
            L.check(5).unwrap_err().to_string(),
            "5 vCPUs is above default_maxvcpus = 4"
        );
        assert_eq!(
            L.check(0).unwrap_err().to_string(),
            "0 vCPUs: a VM needs at least 1"
        );
        let l = CpuLimits { boot: 2, max: 4 };
        assert_eq!(
            l.check(1).unwrap_err().to_string(),
            "1 vCPUs is below default_vcpus = 2 (boot vCPUs are never removed)"
        );
        assert_eq!(l.check(2), Ok(2));
        assert_eq!(l.check(4), Ok(4));
    }

    #[test]
    fn test_cpu_plan_grow_and_shrink() {
        assert_eq!(L.plan(1, 4), Ok(CpuChange::Add(1..4)));
        assert_eq!(L.plan(4, 1), Ok(CpuChange::Remove(vec![3, 2, 1])));
        assert_eq!(L.plan(3, 3), Ok(CpuChange::None));
        assert_eq!(L.plan(2, 3), Ok(CpuChange::Add(2..3)));
        assert!(L.plan(1, 5).is_err());
    }

    #[test]
    fn test_vcpus_for_quota_rounds_up() {
        assert_eq!(vcpus_for_quota(3.0), Some(3));
        assert_eq!(vcpus_for_quota(2.5), Some(3));
        assert_eq!(vcpus_for_quota(0.5), Some(1));
        assert_eq!(vcpus_for_quota(1.0000001), Some(2));
        assert_eq!(vcpus_for_quota(0.0), None);
        assert_eq!(vcpus_for_quota(-1.0), None);
        assert_eq!(vcpus_for_quota(f64::NAN), None);
        assert_eq!(vcpus_for_quota(f64::INFINITY), None);
        assert_eq!(vcpus_for_quota(1e30), Some(u32::MAX));
    }

    #[test]
    fn test_vcpus_for_containers_between_boot_and_max() {
        assert_eq!(vcpus_for_containers([], L), 1);
        assert_eq!(vcpus_for_containers([2, 3], L), 3);
        assert_eq!(vcpus_for_containers([9], L), 4);
        let l = CpuLimits { boot: 2, max: 4 };
        assert_eq!(vcpus_for_containers([1], l), 2);
        // A degenerate configuration does not panic.
        let odd = CpuLimits { boot: 3, max: 1 };
        assert_eq!(vcpus_for_containers([5], odd), 3);
        assert_eq!(vcpus_for_containers([], CpuLimits { boot: 0, max: 0 }), 1);
    }
}
