//! OCI runtime specs on the host side: what `host-vmm run` and `create` send as
//! `CreateContainerRequest.oci_spec_json`, and the policy every spec passes first.
//!
//! - [`namespaces`]: the `--net/--ipc/--pid/--uts` modes, and the same rule on a bundle's
//!   `linux.namespaces`: a container runs inside a VM, so it can never join a namespace of
//!   the host. `host` modes, namespace `path`s and missing entries (OCI's way of saying
//!   "share the host's") are refused by name, all problems at once.
//! - [`spec`]: the spec of a container without a bundle (what `runc spec` writes, with
//!   Docker's default capabilities and mounts, the shape guest-agent's
//!   `container::spec::default_spec` has), the `process` object of an exec, and the
//!   `-e/-w/-t/-m/--cpus` options applied to a spec.
//! - [`bundle`]: a bundle's `config.json` with the CLI's options applied, and its rootfs
//!   directory.
//!
//! Everything here is pure (no I/O but [`bundle::read_bundle`]) and builds on every arch.

pub mod bundle;
pub mod namespaces;
pub mod spec;

pub use bundle::{read_bundle, Bundle};
pub use namespaces::{check_spec_namespaces, NamespaceModes, PidMode};
pub use spec::{default_spec, process_json, ProcessOptions, ResourceOptions};

use std::fmt;

/// One problem with a spec or an option, naming the field or flag: `<field>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub problem: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Why a spec could not be built: every problem found, one per line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", join(.0))]
pub struct SpecError(pub Vec<Problem>);

impl SpecError {
    pub fn one(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self(vec![Problem::new(field, problem)])
    }
}

fn join(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// The JSON built here goes through guest-agent's own parser and checks (guest-agent is
/// already a dev-dependency, for the agent channel tests; the library does not use it).
#[cfg(test)]
mod guest_compat {
    use guest_agent::container::spec::{Process, Spec};

    use super::*;

    #[test]
    fn test_guest_parses_and_accepts_built_specs() {
        let mut spec = default_spec("box");
        spec::apply_process(
            &mut spec,
            &ProcessOptions {
                args: vec!["sh".into(), "-c".into(), "true".into()],
                env: vec!["A=1".into()],
                cwd: Some("/tmp".into()),
                terminal: true,
            },
        )
        .unwrap();
        spec::apply_resources(
            &mut spec,
            &ResourceOptions {
                memory_mib: Some(64),
                cpus: Some(0.5),
                pids_limit: Some(10),
            },
        )
        .unwrap();
        let text = spec.to_string();
        let parsed = Spec::from_json(&text).unwrap();
        parsed.validate().unwrap();
        // Every field we send is one the guest reads (nothing silently dropped): the
        // guest's re-serialisation holds the same keys.
        let back = serde_json::to_value(&parsed).unwrap();
        for key in [
            "process",
            "root",
            "hostname",
            "mounts",
            "linux",
            "ociVersion",
        ] {
            assert!(back.get(key).is_some(), "{key}");
        }
        let p = parsed.process.unwrap();
        assert!(p.terminal && p.no_new_privileges);
        assert_eq!(p.capabilities.unwrap().bounding.len(), 14);
        let r = parsed.linux.unwrap().resources.unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(64 << 20));
        assert_eq!(r.cpu.unwrap().quota, Some(50_000));
        assert_eq!(r.pids.unwrap().limit, Some(10));
        // Same default spec as the guest's, field for field.
        let mut ours = default_spec("h");
        ours["process"]["args"] = serde_json::json!(["sh"]);
        let guest = guest_agent::container::spec::default_spec(vec!["sh".into()], "h");
        assert_eq!(Spec::from_json(&ours.to_string()).unwrap(), guest);
    }

    #[test]
    fn test_guest_parses_exec_process() {
        let p = process_json(&ProcessOptions {
            args: vec!["ls".into()],
            ..Default::default()
        })
        .unwrap();
        let parsed = Process::from_json(&p.to_string()).unwrap();
        guest_agent::container::spec::validate_process(&parsed, "process").unwrap();
        assert_eq!(parsed.args, ["ls"]);
    }
}
