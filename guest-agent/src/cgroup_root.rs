//! Enables the cgroup v2 controllers the agent uses for containers in the root cgroup's
//! `cgroup.subtree_control`. Controllers the kernel lacks are reported, not fatal; each
//! controller is enabled with its own write so one failure does not hide the others.

use std::fs;
use std::io;
use std::path::Path;

/// The cgroup2 mount point.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Controllers the agent wants, in the order it enables them.
pub const WANTED: [&str; 5] = ["cpuset", "cpu", "io", "memory", "pids"];

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("enable controller {controller} in {path}")]
    Enable {
        controller: String,
        path: String,
        #[source]
        source: io::Error,
    },
}

/// Which wanted controllers to enable, and which the kernel does not offer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ControllerPlan {
    pub enable: Vec<&'static str>,
    pub already: Vec<&'static str>,
    pub missing: Vec<&'static str>,
}

/// Plans from the contents of `cgroup.controllers` and `cgroup.subtree_control`. Pure.
pub fn plan(available: &str, enabled: &str, wanted: &[&'static str]) -> ControllerPlan {
    let has = |list: &str, name: &str| list.split_whitespace().any(|c| c == name);
    let mut plan = ControllerPlan::default();
    for &name in wanted {
        if has(enabled, name) {
            plan.already.push(name);
        } else if has(available, name) {
            plan.enable.push(name);
        } else {
            plan.missing.push(name);
        }
    }
    plan
}

/// Reads the plan for the cgroup2 hierarchy mounted at `root`.
pub fn read_plan(root: &Path) -> Result<ControllerPlan, CgroupError> {
    let read = |name: &str| {
        let path = root.join(name);
        fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    Ok(plan(
        &read("cgroup.controllers")?,
        &read("cgroup.subtree_control")?,
        &WANTED,
    ))
}

/// Enables the planned controllers. Returns the plan and one error per controller that failed.
pub fn enable(root: &Path) -> Result<(ControllerPlan, Vec<CgroupError>), CgroupError> {
    let plan = read_plan(root)?;
    let path = root.join("cgroup.subtree_control");
    let failures = plan
        .enable
        .iter()
        .filter_map(|name| {
            fs::write(&path, format!("+{name}"))
                .err()
                .map(|source| CgroupError::Enable {
                    controller: name.to_string(),
                    path: path.display().to_string(),
                    source,
                })
        })
        .collect();
    Ok((plan, failures))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_plan_all_available() {
        let p = plan("cpuset cpu io memory pids\n", "\n", &WANTED);
        assert_eq!(p.enable, WANTED.to_vec());
        assert!(p.missing.is_empty() && p.already.is_empty());
    }

    #[test]
    fn test_plan_reports_missing_and_already_enabled() {
        let p = plan("cpu memory pids rdma\n", "memory\n", &WANTED);
        assert_eq!(p.enable, vec!["cpu", "pids"]);
        assert_eq!(p.already, vec!["memory"]);
        assert_eq!(p.missing, vec!["cpuset", "io"]);
    }

    #[test]
    fn test_plan_matches_whole_names_only() {
        let p = plan("cpuset\n", "", &["cpu"]);
        assert_eq!(p.missing, vec!["cpu"]);
    }

    #[test]
    fn test_enable_writes_each_controller() {
        let dir = std::env::temp_dir().join(format!("ga-cgroup-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), "cpu memory\n").unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        let (p, failures) = enable(&dir).unwrap();
        assert_eq!(p.enable, vec!["cpu", "memory"]);
        assert!(failures.is_empty());
        // A plain file keeps only the last write; the real file accumulates.
        assert_eq!(
            fs::read_to_string(dir.join("cgroup.subtree_control")).unwrap(),
            "+memory"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_read_plan_missing_hierarchy_is_an_error() {
        let err = read_plan(Path::new("/nonexistent/cgroup")).unwrap_err();
        assert!(err.to_string().contains("cgroup.controllers"));
    }
}
