//! The OCI runtime spec (`config.json`) as the engine reads it.
//!
//! Every field of the OCI runtime spec 1.2 is declared, and unknown fields are refused
//! (`deny_unknown_fields`): a field is never silently dropped. Each declared field is one of:
//! - **honoured**: the engine applies it;
//! - **refused when set** ([`Unsupported`]): the engine cannot apply it, so a value other than
//!   an empty one (null, "", [], {}, or an object of empty values) is an error naming the
//!   field (e.g. `hooks`, `process.apparmorProfile`, `linux.sysctl`);
//! - **accepted, meaningless in the VM**, each with its reason at the field.
//!
//! [`Spec::validate`] checks the values of the honoured fields and names the offending field
//! in its error, e.g. `process.user.uid: ...` or `linux.namespaces[2]: ...`. The table of
//! fields is in ARCHITECTURE.md ("What the agent does with a spec").
//!
//! Namespaces: the engine, not the spec, decides them (see `container::namespaces`). Each
//! container gets new mount and uts namespaces, joins the sandbox's network and ipc
//! namespaces, and a pid namespace of its own unless the sandbox shares one. A namespace entry
//! with a `path` is refused: any path in a spec was written on the host, and a container in a
//! VM cannot share a namespace of the host (nor may it join the agent's). `user` and `time`
//! namespaces are refused as not supported.

mod defaults;
mod unsupported;
mod validate;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use defaults::{default_seccomp, default_spec, DEFAULT_PATH};
pub use unsupported::Unsupported;
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
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Spec {
    /// Accepted: the engine reads every version's fields the same way.
    #[serde(default)]
    pub oci_version: String,
    #[serde(default)]
    pub process: Option<Process>,
    #[serde(default)]
    pub root: Option<Root>,
    #[serde(default)]
    pub hostname: Option<String>,
    /// Honoured: `setdomainname` in the container's uts namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    #[serde(default)]
    pub mounts: Vec<Mount>,
    /// Refused when set: hooks run programs on the host, at points of the host runtime's
    /// lifecycle; the agent in the VM can neither run them there nor see those points.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub hooks: Unsupported,
    #[serde(default)]
    pub linux: Option<Linux>,
    /// Refused when set: other platforms' sections.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub solaris: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub windows: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub vm: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub zos: Unsupported,
    /// Accepted: free-form metadata for runtimes and tools; none changes what the engine does.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `process`: what runs in the container (also the body of an exec request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Process {
    #[serde(default)]
    pub terminal: bool,
    /// Accepted: the window size reaches the guest through the agent's ResizeTTY call, which
    /// the host sends when it attaches a terminal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_size: Option<serde_json::Value>,
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
    /// Honoured: written to `/proc/self/oom_score_adj` before the exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i32>,
    /// Refused when set: the guest kernel has no AppArmor or SELinux.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub apparmor_profile: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub selinux_label: Unsupported,
    /// Refused when set: not implemented (I/O priority, scheduling policy, CPU affinity at
    /// exec), and Windows' command line.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub io_priority: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub scheduler: Unsupported,
    #[serde(
        default,
        rename = "execCPUAffinity",
        skip_serializing_if = "Unsupported::is_none"
    )]
    pub exec_cpu_affinity: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub command_line: Unsupported,
}

/// `process.user`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub umask: Option<u32>,
    /// Refused when set: Windows only.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub username: Unsupported,
}

/// `process.capabilities`: lists of `CAP_*` names. An absent object means the default set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub hard: u64,
    pub soft: u64,
}

/// `root`. The engine gets the rootfs source from the caller (an image directory or a block
/// device); `path` is accepted as informational (it names a host directory), `readonly` is
/// honoured.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Root {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub readonly: bool,
}

/// `mounts[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Mount {
    pub destination: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
    /// Refused when set: id-mapped mounts need user namespaces, which are not supported.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub uid_mappings: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub gid_mappings: Unsupported,
}

/// `linux`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Linux {
    #[serde(default)]
    pub namespaces: Vec<Namespace>,
    #[serde(default)]
    pub resources: Option<Resources>,
    /// Honoured: nodes created in the container's `/dev` and allowed in its device program.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<LinuxDevice>,
    /// Honoured: compiled into seccomp filters installed right before the exec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seccomp: Option<Seccomp>,
    #[serde(default)]
    pub masked_paths: Vec<String>,
    #[serde(default)]
    pub readonly_paths: Vec<String>,
    /// Accepted: the agent places every container at `sandbox/<id>` of the guest's cgroup
    /// tree; a path chosen on the host means nothing inside the VM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroups_path: Option<String>,
    /// Accepted when empty, `private` or `rprivate` (what the engine does: every mount of a
    /// container is private); other values are refused by validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_propagation: Option<String>,
    /// Refused when set: user namespaces are not supported.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub uid_mappings: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub gid_mappings: Unsupported,
    /// Refused when set: time namespaces are not supported.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub time_offsets: Unsupported,
    /// Refused when set: not implemented yet (written under the container's /proc/sys).
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub sysctl: Unsupported,
    /// Refused when set: the guest kernel has no SELinux.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub mount_label: Unsupported,
    /// Refused when set: no Intel RDT in the VM; personality, memory policy and network
    /// devices are not implemented.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub intel_rdt: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub personality: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub memory_policy: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub net_devices: Unsupported,
}

/// `linux.devices[]`: a node to create in the container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LinuxDevice {
    pub path: String,
    /// `c`, `u` (character), `b` (block) or `p` (FIFO).
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub major: i64,
    #[serde(default)]
    pub minor: i64,
    /// Permission bits (default 0666).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// `linux.resources.devices[]`: a device cgroup rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceCgroupRule {
    pub allow: bool,
    /// `a` (all, the default), `b` or `c`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Absent or -1: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minor: Option<i64>,
    /// Some of `rwm` (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
}

/// `linux.seccomp`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Seccomp {
    pub default_action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    #[serde(default)]
    pub architectures: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Refused when set: user notification needs a listener on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
    #[serde(default)]
    pub syscalls: Vec<SeccompSyscall>,
}

/// `linux.seccomp.syscalls[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompSyscall {
    pub names: Vec<String>,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<SeccompArg>,
}

/// `linux.seccomp.syscalls[].args[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeccompArg {
    pub index: u32,
    pub value: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_two: Option<u64>,
    pub op: String,
}

/// `linux.namespaces[]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub path: Option<String>,
}

/// `linux.resources` (also the body of an update request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Resources {
    /// Honoured: the container's device program (create only; an update cannot change it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceCgroupRule>,
    #[serde(default)]
    pub memory: Option<MemoryResources>,
    #[serde(default)]
    pub cpu: Option<CpuResources>,
    #[serde(default)]
    pub pids: Option<PidsResources>,
    /// Refused when set: not implemented (io, hugetlb, rdma controllers; raw cgroup v2 files).
    #[serde(
        default,
        rename = "blockIO",
        skip_serializing_if = "Unsupported::is_none"
    )]
    pub block_io: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub hugepage_limits: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub rdma: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub unified: Unsupported,
    /// Refused when set: network classes and priorities are cgroup v1 only.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub network: Unsupported,
}

/// `linux.resources.memory`: bytes; -1 means unlimited. `swap` is memory+swap, as in OCI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MemoryResources {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub swap: Option<i64>,
    /// Refused when set: `reservation` (memory.low), `swappiness` and `disableOOMKiller`
    /// have no cgroup v2 file the engine writes; `kernel` and `kernelTCP` are cgroup v1 only;
    /// `checkBeforeUpdate` is not implemented.
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub reservation: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub kernel: Unsupported,
    #[serde(
        default,
        rename = "kernelTCP",
        skip_serializing_if = "Unsupported::is_none"
    )]
    pub kernel_tcp: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub swappiness: Unsupported,
    #[serde(
        default,
        rename = "disableOOMKiller",
        skip_serializing_if = "Unsupported::is_none"
    )]
    pub disable_oom_killer: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub check_before_update: Unsupported,
    /// Accepted: cgroup v2 is always hierarchical.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_hierarchy: Option<bool>,
}

/// `linux.resources.cpu`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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
    /// Refused when set: not implemented (burst, real-time, idle).
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub burst: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub realtime_runtime: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub realtime_period: Unsupported,
    #[serde(default, skip_serializing_if = "Unsupported::is_none")]
    pub idle: Unsupported,
}

/// `linux.resources.pids`: 0 or less means unlimited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

    /// `runc spec` of runc 1.1.5 (Debian bookworm), verbatim.
    const RUNC_1_1_5_SPEC: &str = include_str!("testdata/runc-1.1.5-spec.json");

    #[test]
    fn test_real_runc_spec_passes() {
        let spec = Spec::from_json(RUNC_1_1_5_SPEC).unwrap();
        spec.validate().unwrap();
        let res = spec.resources();
        assert_eq!(res.devices.len(), 1);
        assert!(!res.devices[0].allow);
    }

    /// What containerd's CRI plugin and Docker also send: cgroupsPath, oomScoreAdj,
    /// consoleSize, empty hooks, the device deny-all and a seccomp profile.
    #[test]
    fn test_containerd_style_fields_pass() {
        let text = r#"{
            "ociVersion": "1.1.0",
            "process": {"args": ["sh"], "cwd": "/", "consoleSize": {"height": 25, "width": 80},
                        "user": {"uid": 0, "gid": 0, "additionalGids": [0, 10]},
                        "oomScoreAdj": 1000, "apparmorProfile": ""},
            "root": {"path": "/run/containerd/io.containerd.runtime.v2.task/k8s.io/x/rootfs"},
            "hooks": {"createRuntime": [], "poststop": []},
            "linux": {
                "cgroupsPath": "kubepods-besteffort.slice:cri-containerd:abc",
                "resources": {"devices": [{"allow": false, "access": "rwm"},
                                          {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"}],
                              "memory": {"limit": 104857600, "useHierarchy": true},
                              "cpu": {"shares": 2}},
                "seccomp": {"defaultAction": "SCMP_ACT_ERRNO", "architectures": [],
                            "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]},
                "rootfsPropagation": "rprivate"
            },
            "annotations": {"io.kubernetes.cri.sandbox-id": "abc"}
        }"#;
        let spec = Spec::from_json(text).unwrap();
        spec.validate().unwrap();
        assert_eq!(spec.process.as_ref().unwrap().oom_score_adj, Some(1000));
    }

    #[test]
    fn test_unknown_fields_are_refused_by_name() {
        for (text, name) in [
            (r#"{"frobnicate": 1}"#, "frobnicate"),
            (r#"{"linux": {"frobnicate": 1}}"#, "frobnicate"),
            (
                r#"{"process": {"args": ["sh"], "capabilites": {}}}"#,
                "capabilites",
            ),
            (
                r#"{"linux": {"resources": {"memory": {"limt": 5}}}}"#,
                "limt",
            ),
            (
                r#"{"mounts": [{"destination": "/x", "typ": "tmpfs"}]}"#,
                "typ",
            ),
        ] {
            let err = Spec::from_json(text).unwrap_err();
            assert!(
                err.problem.contains(&format!("unknown field `{name}`")),
                "{text}: {err}"
            );
        }
    }

    #[test]
    fn test_unsupported_fields_are_refused_by_name() {
        let base = |linux: &str, process: &str, top: &str| {
            format!(
                r#"{{"process": {{"args": ["sh"]{process}}}, "linux": {{"namespaces": []{linux}}}{top}}}"#
            )
        };
        for (text, field) in [
            (
                base(
                    "",
                    "",
                    r#", "hooks": {"prestart": [{"path": "/bin/true"}]}"#,
                ),
                "hooks",
            ),
            (
                base("", r#", "apparmorProfile": "docker-default""#, ""),
                "process.apparmorProfile",
            ),
            (
                base("", r#", "selinuxLabel": "system_u:r:c""#, ""),
                "process.selinuxLabel",
            ),
            (
                base(r#", "sysctl": {"net.ipv4.ip_forward": "1"}"#, "", ""),
                "linux.sysctl",
            ),
            (
                base(
                    r#", "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]"#,
                    "",
                    "",
                ),
                "linux.uidMappings",
            ),
            (
                base(r#", "resources": {"blockIO": {"weight": 10}}"#, "", ""),
                "linux.resources.blockIO",
            ),
            (
                base(r#", "resources": {"memory": {"swappiness": 10}}"#, "", ""),
                "linux.resources.memory.swappiness",
            ),
            (
                base(r#", "rootfsPropagation": "shared""#, "", ""),
                "linux.rootfsPropagation",
            ),
            (
                base(
                    r#", "devices": [{"path": "/tmp/x", "type": "c", "major": 1, "minor": 3}]"#,
                    "",
                    "",
                ),
                "linux.devices[0].path",
            ),
            (
                base(
                    r#", "devices": [{"path": "/dev/x", "type": "c", "major": 1, "minor": 3}, {"path": "/dev/x", "type": "c", "major": 1, "minor": 5}]"#,
                    "",
                    "",
                ),
                "linux.devices[1].path",
            ),
            (
                base(
                    r#", "resources": {"devices": [{"allow": true, "type": "q"}]}"#,
                    "",
                    "",
                ),
                "linux.resources.devices[0].type",
            ),
            (
                base(
                    r#", "seccomp": {"defaultAction": "SCMP_ACT_NOTIFY"}"#,
                    "",
                    "",
                ),
                "linux.seccomp.defaultAction",
            ),
            (
                base("", r#", "oomScoreAdj": 1001"#, ""),
                "process.oomScoreAdj",
            ),
            (
                base(
                    "",
                    "",
                    r#", "mounts": [{"destination": "/d", "type": "tmpfs", "options": ["dev"]}]"#,
                ),
                "mounts[0].options",
            ),
            (
                base("", "", r#", "windows": {"layerFolders": ["c:/x"]}"#),
                "windows",
            ),
        ] {
            let spec = Spec::from_json(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let err = spec.validate().unwrap_err();
            assert_eq!(err.field, field, "{text}: {err}");
        }
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
