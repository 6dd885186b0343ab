//! The subset of the OCI runtime spec (`config.json`) the engine understands.
//!
//! Parsing is lenient about fields the engine does not know (they are ignored, as OCI asks of
//! runtimes for unknown extensions), strict about the values of the fields it does use:
//! [`Spec::validate`] checks them and names the offending field in its error, e.g.
//! `process.user.uid: ...` or `linux.namespaces[2]: ...`.
//!
//! Namespaces: the engine, not the spec, decides them (see `container::namespaces`). Each
//! container gets new mount and uts namespaces, joins the sandbox's network and ipc
//! namespaces, and a pid namespace of its own unless the sandbox shares one. A namespace entry
//! with a `path` is refused: any path in a spec was written on the host, and a container in a
//! VM cannot share a namespace of the host (nor may it join the agent's). `user` and `time`
//! namespaces are refused as not supported.

mod defaults;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use defaults::{default_spec, DEFAULT_PATH};
pub use validate::{validate_id, validate_process, validate_resources};

/// A spec problem, naming the field: displays as `<field>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SpecError {
    pub field: String,
    pub problem: String,
}

impl SpecError {
    pub fn new(field: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// The root of `config.json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(default)]
    pub oci_version: String,
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub root: Option<Root>,
    #[serde(default)]
    pub hostname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    #[serde(default)]
    pub linux: Option<Linux>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `process`: what runs in the container (also the body of an exec request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default)]
    pub cwd: String,
    #[serde(default)]
    pub capabilities: Option<Capabilities>,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    #[serde(default)]
    pub no_new_privileges: bool,
}

/// `process.user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
}

/// `process.capabilities`: lists of `CAP_*` names. An absent object means the default set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Capabilities {
    #[serde(default)]
    pub bounding: Vec<String>,
    #[serde(default)]
    pub effective: Vec<String>,
    #[serde(default)]
    pub inheritable: Vec<String>,
    #[serde(default)]
    pub permitted: Vec<String>,
    #[serde(default)]
    pub ambient: Vec<String>,
}

/// `process.rlimits[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

/// `root`. The engine gets the rootfs source from the caller (an image directory or a block
/// device); `path` is informational, `readonly` is honoured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Root {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

/// `mounts[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub resources: Option<Resources>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
}

/// `linux.namespaces[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<String>,
}

/// `linux.resources` (also the body of an update request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub memory: Option<MemoryResources>,
    #[serde(default)]
    pub cpu: Option<CpuResources>,
    #[serde(default)]
    pub pids: Option<PidsResources>,
}

/// `linux.resources.memory`: bytes; -1 means unlimited. `swap` is memory+swap, as in OCI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MemoryResources {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub swap: Option<i64>,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuResources {
    #[serde(default)]
    pub shares: Option<u64>,
    #[serde(default)]
    pub quota: Option<i64>,
    #[serde(default)]
    pub period: Option<u64>,
    #[serde(default)]
    pub cpus: Option<String>,
    #[serde(default)]
    pub mems: Option<String>,
}

/// `linux.resources.pids`: 0 or less means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PidsResources {
    #[serde(default)]
    pub limit: Option<i64>,
}

impl Spec {
    /// Parses `config.json` text. Syntax and type errors carry serde's line and column.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        serde_json::from_str(text).map_err(|e| SpecError::new("config.json", e.to_string()))
    }

    /// Checks every field the engine uses; the first problem wins.
    pub fn validate(&self) -> Result<(), SpecError> {
        validate::validate_spec(self)
    }

    /// `linux.resources`, or none.
    pub fn resources(&self) -> Resources {
        self.linux
            .as_ref()
            .and_then(|l| l.resources.clone())
            .unwrap_or_default()
    }
}

impl Process {
    /// Parses the `process` object of an exec request.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        serde_json::from_str(text).map_err(|e| SpecError::new("process", e.to_string()))
    }
}

impl Resources {
    /// Parses the `linux.resources` object of an update request.
    pub fn from_json(text: &str) -> Result<Self, SpecError> {
        serde_json::from_str(text).map_err(|e| SpecError::new("linux.resources", e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RUNC_SPEC: &str = r#"{
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": true},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}
        ],
        "linux": {
            "uidMappings": [],
            "resources": {"devices": [{"allow": false, "access": "rwm"}],
                          "memory": {"limit": 104857600, "swap": 209715200},
                          "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
                          "pids": {"limit": 64}},
            "namespaces": [{"type": "pid"}, {"type": "network"}, {"type": "ipc"},
                           {"type": "uts"}, {"type": "mount"}, {"type": "cgroup"}],
            "maskedPaths": ["/proc/kcore"],
            "readonlyPaths": ["/proc/sys"]
        },
        "annotations": {"io.kubernetes.cri.container-type": "container"}
    }"#;

    #[test]
    fn test_spec_parses_runc_style_config() {
        let spec = Spec::from_json(RUNC_SPEC).unwrap();
        let process = spec.process.as_ref().unwrap();
        assert!(process.terminal && process.no_new_privileges);
        assert_eq!(process.args, vec!["sh"]);
        assert_eq!(process.rlimits[0].kind, "RLIMIT_NOFILE");
        assert_eq!(spec.hostname.as_deref(), Some("runc"));
        assert!(spec.root.as_ref().unwrap().readonly);
        assert_eq!(spec.mounts[1].options.len(), 4);
        let res = spec.resources();
        assert_eq!(res.memory.unwrap().swap, Some(209_715_200));
        assert_eq!(res.cpu.unwrap().cpus.as_deref(), Some("0-1"));
        assert_eq!(res.pids.unwrap().limit, Some(64));
        assert_eq!(spec.linux.as_ref().unwrap().namespaces.len(), 6);
        assert_eq!(spec.annotations.len(), 1);
        spec.validate().unwrap();
    }

    #[test]
    fn test_spec_syntax_error_names_config_json() {
        let err = Spec::from_json("{\"process\": {\"args\": 3}}").unwrap_err();
        assert_eq!(err.field, "config.json");
        assert!(err.problem.contains("line 1"), "{err}");
    }

    #[test]
    fn test_spec_empty_object_parses() {
        assert_eq!(Spec::from_json("{}").unwrap(), Spec::default());
    }

    #[test]
    fn test_process_and_resources_parse_alone() {
        let p = Process::from_json(r#"{"args": ["ls"], "cwd": "/tmp"}"#).unwrap();
        assert_eq!(p.cwd, "/tmp");
        let r = Resources::from_json(r#"{"memory": {"limit": -1}}"#).unwrap();
        assert_eq!(r.memory.unwrap().limit, Some(-1));
        assert!(Resources::from_json("3").is_err());
    }
}
