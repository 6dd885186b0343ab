//! Namespace policy. A container runs inside the sandbox VM: its network and IPC
//! namespaces are the sandbox's (shared by every container of the pod), its uts namespace
//! its own, its pid namespace its own or the pod's. Nothing can be shared with the host,
//! whose namespaces the guest cannot even see; asking for it is refused by name, never
//! silently ignored.

use serde_json::Value;

use super::{Problem, SpecError};

/// `--pid`: where the container's processes live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PidMode {
    /// Its own pid namespace (the default).
    #[default]
    Container,
    /// The sandbox's pid namespace, shared by every container (`CreateSandbox.share_pid`).
    Pod,
}

/// The namespace flags of `run`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NamespaceModes {
    pub pid: PidMode,
}

/// One namespace flag: its allowed values and why `host` cannot be.
struct Flag {
    name: &'static str,
    allowed: &'static [&'static str],
    host_why: &'static str,
}

const NET: Flag = Flag {
    name: "--net",
    allowed: &["pod"],
    host_why: "the container runs inside a VM, so it cannot join the host's network namespace",
};
const IPC: Flag = Flag {
    name: "--ipc",
    allowed: &["pod"],
    host_why: "the container runs inside a VM, so it cannot join the host's IPC namespace",
};
const PID: Flag = Flag {
    name: "--pid",
    allowed: &["container", "pod"],
    host_why: "the container runs inside a VM, so it cannot join the host's pid namespace",
};
const UTS: Flag = Flag {
    name: "--uts",
    allowed: &["container"],
    host_why: "the container runs inside a VM, so it cannot join the host's uts namespace",
};

impl Flag {
    /// `value`, if allowed (`None`: the default, the first allowed value).
    fn check<'a>(&self, value: Option<&'a str>) -> Result<&'a str, Problem> {
        let Some(value) = value else {
            return Ok(self.allowed[0]);
        };
        if self.allowed.contains(&value) {
            return Ok(value);
        }
        let allowed = self.allowed.join(", ");
        let problem = if value == "host" {
            format!("host is refused: {} (allowed: {allowed})", self.host_why)
        } else {
            format!("unknown mode {value:?} (allowed: {allowed})")
        };
        Err(Problem::new(self.name, problem))
    }
}

impl NamespaceModes {
    /// Checks the values of `--net`, `--ipc`, `--pid` and `--uts` (each `None` when not
    /// given); every refused flag is reported.
    pub fn from_flags(
        net: Option<&str>,
        ipc: Option<&str>,
        pid: Option<&str>,
        uts: Option<&str>,
    ) -> Result<Self, SpecError> {
        let mut problems = Vec::new();
        let mut modes = NamespaceModes::default();
        for (flag, value) in [(&NET, net), (&IPC, ipc), (&UTS, uts)] {
            if let Err(p) = flag.check(value) {
                problems.push(p);
            }
        }
        match PID.check(pid) {
            Ok("pod") => modes.pid = PidMode::Pod,
            Ok(_) => {}
            Err(p) => problems.push(p),
        }
        if problems.is_empty() {
            Ok(modes)
        } else {
            Err(SpecError(problems))
        }
    }
}

/// The OCI namespace types that must each have an entry: a missing one means "share the
/// host's" in OCI. (`mount` and `cgroup` may be missing: the engine always creates them.)
const REQUIRED: [(&str, &str); 4] = [
    ("network", "network"),
    ("ipc", "IPC"),
    ("pid", "pid"),
    ("uts", "uts"),
];

/// Every problem with a spec's `linux.namespaces`: an entry with a `path` (a namespace of
/// the host), a missing network/ipc/pid/uts entry (the host's), an unknown, unsupported
/// (`user`, `time`) or repeated type, or a malformed list.
pub fn check_spec_namespaces(spec: &Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    let entries = match spec.pointer("/linux/namespaces") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(a)) => a.as_slice(),
        Some(_) => {
            return vec![Problem::new("linux.namespaces", "not a list")];
        }
    };
    let mut seen: Vec<&str> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let Some(kind) = entry.get("type").and_then(Value::as_str) else {
            problems.push(Problem::new(
                format!("{field}.type"),
                "missing or not a string",
            ));
            continue;
        };
        match entry.get("path") {
            None | Some(Value::Null) => {}
            Some(Value::String(p)) if p.is_empty() => {}
            Some(path) => {
                let path = path
                    .as_str()
                    .map_or_else(|| path.to_string(), str::to_string);
                problems.push(Problem::new(
                    format!("{field}.path"),
                    format!(
                        "{path} is refused: the container runs inside a VM, so it cannot join \
                         a namespace of the host ({kind}); remove the path"
                    ),
                ));
            }
        }
        match kind {
            "network" | "ipc" | "pid" | "uts" | "mount" | "cgroup" => {}
            "user" | "time" => problems.push(Problem::new(
                format!("{field}.type"),
                format!("{kind} namespaces are not supported"),
            )),
            other => problems.push(Problem::new(
                format!("{field}.type"),
                format!(
                    "unknown namespace type {other:?} (known: network, ipc, pid, uts, mount, cgroup)"
                ),
            )),
        }
        if seen.contains(&kind) {
            problems.push(Problem::new(
                format!("{field}.type"),
                format!("{kind} given twice"),
            ));
        }
        seen.push(kind);
    }
    for (kind, name) in REQUIRED {
        if !seen.contains(&kind) {
            problems.push(Problem::new(
                "linux.namespaces",
                format!(
                    "no {kind} entry, which in OCI means sharing the host's {name} namespace: \
                     refused, the container runs inside a VM; add {{\"type\": \"{kind}\"}}"
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(net: Option<&str>, ipc: Option<&str>, pid: Option<&str>, uts: Option<&str>) -> String {
        NamespaceModes::from_flags(net, ipc, pid, uts)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn test_modes_default_and_pod() {
        let m = NamespaceModes::from_flags(None, None, None, None).unwrap();
        assert_eq!(m.pid, PidMode::Container);
        let m =
            NamespaceModes::from_flags(Some("pod"), Some("pod"), Some("pod"), Some("container"))
                .unwrap();
        assert_eq!(m.pid, PidMode::Pod);
        let m = NamespaceModes::from_flags(None, None, Some("container"), None).unwrap();
        assert_eq!(m.pid, PidMode::Container);
    }

    #[test]
    fn test_modes_host_refused_with_flag_reason_and_allowed() {
        let e = err(Some("host"), None, None, None);
        assert!(e.starts_with("--net: host is refused"), "{e}");
        assert!(
            e.contains(
                "the container runs inside a VM, so it cannot join the host's network namespace"
            ),
            "{e}"
        );
        assert!(e.contains("(allowed: pod)"), "{e}");
        let e = err(None, Some("host"), None, None);
        assert!(
            e.starts_with("--ipc: host is refused") && e.contains("IPC namespace"),
            "{e}"
        );
        let e = err(None, None, Some("host"), None);
        assert!(e.starts_with("--pid: host is refused"), "{e}");
        assert!(e.contains("(allowed: container, pod)"), "{e}");
        let e = err(None, None, None, Some("host"));
        assert!(e.starts_with("--uts: host is refused"), "{e}");
        assert!(e.contains("(allowed: container)"), "{e}");
    }

    #[test]
    fn test_modes_unknown_value_and_all_problems_at_once() {
        let e = err(Some("bridge"), None, None, None);
        assert_eq!(e, "--net: unknown mode \"bridge\" (allowed: pod)");
        let e = NamespaceModes::from_flags(Some("host"), Some("x"), Some("host"), Some("host"))
            .unwrap_err();
        let flags: Vec<_> = e.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(flags, ["--net", "--ipc", "--uts", "--pid"]);
        // `pod` is not a uts mode (the pod has no hostname of its own here).
        assert!(err(None, None, None, Some("pod")).contains("unknown mode"));
    }

    fn ns(kinds: &[&str]) -> Value {
        let list: Vec<Value> = kinds.iter().map(|k| json!({ "type": k })).collect();
        json!({ "linux": { "namespaces": list } })
    }

    #[test]
    fn test_spec_namespaces_complete_list_passes() {
        assert!(check_spec_namespaces(&ns(&["pid", "network", "ipc", "uts", "mount"])).is_empty());
        let mut spec = ns(&["pid", "network", "ipc", "uts", "cgroup"]);
        // An empty path is "no path".
        spec["linux"]["namespaces"][0]["path"] = json!("");
        assert!(check_spec_namespaces(&spec).is_empty());
    }

    #[test]
    fn test_spec_namespace_path_refused_by_index() {
        let mut spec = ns(&["pid", "network", "ipc", "uts", "mount"]);
        spec["linux"]["namespaces"][1]["path"] = json!("/proc/1/ns/net");
        let p = check_spec_namespaces(&spec);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].field, "linux.namespaces[1].path");
        assert!(
            p[0].problem.starts_with("/proc/1/ns/net is refused"),
            "{}",
            p[0]
        );
        assert!(p[0].problem.contains("inside a VM"), "{}", p[0]);
    }

    #[test]
    fn test_spec_missing_namespaces_refused_by_type() {
        let p = check_spec_namespaces(&ns(&["pid", "mount"]));
        let text: Vec<_> = p.iter().map(Problem::to_string).collect();
        assert_eq!(p.len(), 3, "{text:?}");
        assert!(text[0].contains("no network entry"), "{text:?}");
        assert!(text[1].contains("no ipc entry"), "{text:?}");
        assert!(text[2].contains("no uts entry"), "{text:?}");
        // No linux section at all: all four.
        assert_eq!(check_spec_namespaces(&json!({})).len(), 4);
        // A missing mount entry is fine: the engine always makes one.
        assert!(check_spec_namespaces(&ns(&["pid", "network", "ipc", "uts"])).is_empty());
    }

    #[test]
    fn test_spec_namespaces_unknown_unsupported_repeated_malformed() {
        let p = check_spec_namespaces(&ns(&[
            "pid", "network", "ipc", "uts", "user", "bogus", "pid",
        ]));
        let fields: Vec<_> = p.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "linux.namespaces[4].type",
                "linux.namespaces[5].type",
                "linux.namespaces[6].type"
            ]
        );
        assert!(p[0].problem.contains("not supported"));
        assert!(p[1].problem.contains("unknown namespace type"));
        assert!(p[2].problem.contains("given twice"));
        let p = check_spec_namespaces(&json!({"linux": {"namespaces": {"type": "pid"}}}));
        assert_eq!(p, [Problem::new("linux.namespaces", "not a list")]);
        let p = check_spec_namespaces(&json!({"linux": {"namespaces": [{"path": "/x"}]}}));
        assert_eq!(p[0].field, "linux.namespaces[0].type");
    }
}
