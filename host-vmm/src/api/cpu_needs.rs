//! What the sandbox's containers need in vCPUs (their `--cpus` rounded up), as `create`,
//! `update`, `run` and `delete` report it: the VMM keeps the record so that `delete` knows
//! what the remaining containers need. Bounded: at most [`MAX_CONTAINERS`] entries.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use crate::hotplug::cpu_plan::{vcpus_for_containers, CpuLimits};

/// Most containers recorded (far more than a sandbox runs).
pub const MAX_CONTAINERS: usize = 4096;

/// Container id -> whole vCPUs its CPU limit needs.
#[derive(Debug, Default)]
pub struct CpuNeeds {
    needs: Mutex<Needs>,
}

#[derive(Debug, Default)]
struct Needs {
    containers: BTreeMap<String, u32>,
    /// The last count asked for by hand (`cpus --set`).
    floor: u32,
}

impl CpuNeeds {
    /// Records `container`'s need (0: forgets it) and returns the vCPUs the sandbox
    /// should have for all of them, within `limits`. `None`: the record is full.
    pub fn update(&self, container: &str, vcpus: u32, limits: CpuLimits) -> Option<u32> {
        let mut n = self.needs.lock().unwrap_or_else(PoisonError::into_inner);
        let needs = &mut n.containers;
        if vcpus == 0 {
            needs.remove(container);
        } else if needs.len() < MAX_CONTAINERS || needs.contains_key(container) {
            needs.insert(container.to_string(), vcpus);
        } else {
            return None;
        }
        let floor = n.floor;
        Some(vcpus_for_containers(
            n.containers.values().copied().chain([floor]),
            limits,
        ))
    }

    /// `cpus --set N`: the sandbox keeps at least N vCPUs when containers go.
    pub fn set_floor(&self, vcpus: u32) {
        self.needs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .floor = vcpus;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: CpuLimits = CpuLimits { boot: 1, max: 4 };

    #[test]
    fn test_cpu_needs_target_follows_the_largest_and_shrinks_back() {
        let n = CpuNeeds::default();
        assert_eq!(n.update("a", 2, L), Some(2));
        assert_eq!(n.update("b", 3, L), Some(3));
        assert_eq!(n.update("b", 0, L), Some(2));
        assert_eq!(n.update("a", 0, L), Some(1));
        assert_eq!(n.update("never", 0, L), Some(1));
        assert_eq!(n.update("big", 99, L), Some(4));
        // By hand: 3; a container's going no longer shrinks below it.
        n.set_floor(3);
        assert_eq!(n.update("big", 0, L), Some(3));
        assert_eq!(n.update("a", 2, L), Some(3));
    }

    #[test]
    fn test_cpu_needs_is_bounded() {
        let n = CpuNeeds::default();
        for i in 0..MAX_CONTAINERS {
            assert!(n.update(&format!("c{i}"), 1, L).is_some());
        }
        assert_eq!(n.update("one-more", 2, L), None);
        // Known ones still update, and forgetting makes room.
        assert_eq!(n.update("c0", 2, L), Some(2));
        assert_eq!(n.update("c1", 0, L), Some(2));
        assert_eq!(n.update("one-more", 3, L), Some(3));
    }
}
