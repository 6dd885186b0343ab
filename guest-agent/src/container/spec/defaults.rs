//! The spec of a container started without a bundle (`host-vmm run -- CMD`):
//! what `runc spec` writes, with Docker's default capabilities and seccomp profile.

use std::collections::BTreeMap;

use super::{
    Capabilities, Linux, Mount, Namespace, Process, Rlimit, Root, Seccomp, SeccompArg,
    SeccompSyscall, Spec, User,
};
pub use protocol::oci_defaults::DEFAULT_PATH;
use protocol::oci_defaults::{DEFAULT_CAPS, DEFAULT_MOUNTS, MASKED_PATHS, READONLY_PATHS};

/// Docker's default seccomp profile for a process with capabilities `caps`, on this
/// architecture (`protocol::seccomp_profile`).
pub fn default_seccomp(caps: &[&str]) -> Seccomp {
    use protocol::seccomp_profile as docker;
    let arch = std::env::consts::ARCH;
    Seccomp {
        default_action: docker::DEFAULT_ACTION.into(),
        default_errno_ret: Some(docker::DEFAULT_ERRNO),
        architectures: docker::oci_arch(arch).into_iter().map(Into::into).collect(),
        syscalls: docker::profile(caps, arch)
            .into_iter()
            .map(|rule| SeccompSyscall {
                names: rule.names.iter().map(|n| n.to_string()).collect(),
                action: rule.action.into(),
                errno_ret: rule.errno_ret,
                args: rule
                    .args
                    .iter()
                    .map(|a| SeccompArg {
                        index: a.index,
                        value: a.value,
                        value_two: Some(a.value_two),
                        op: a.op.into(),
                    })
                    .collect(),
            })
            .collect(),
        ..Default::default()
    }
}

/// A complete spec running `args` as root in `/`, with hostname `hostname`, the standard
/// mounts (proc, /dev tmpfs, devpts, shm, mqueue, read-only sysfs), Docker's default
/// capabilities and seccomp profile, `RLIMIT_NOFILE` 1024 and `noNewPrivileges`.
pub fn default_spec(args: Vec<String>, hostname: &str) -> Spec {
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    let mount = |destination: &str, kind: &str, options: &[&str]| Mount {
        destination: destination.into(),
        kind: Some(kind.into()),
        source: Some(kind.into()),
        options: options.iter().map(|o| o.to_string()).collect(),
        ..Default::default()
    };
    Spec {
        oci_version: "1.0.2".into(),
        process: Some(Process {
            terminal: false,
            user: User::default(),
            args,
            env: vec![format!("PATH={DEFAULT_PATH}"), "TERM=xterm".into()],
            cwd: "/".into(),
            capabilities: Some(Capabilities {
                bounding: caps.clone(),
                effective: caps.clone(),
                inheritable: Vec::new(),
                permitted: caps,
                ambient: Vec::new(),
            }),
            rlimits: vec![Rlimit {
                kind: "RLIMIT_NOFILE".into(),
                hard: 1024,
                soft: 1024,
            }],
            no_new_privileges: true,
            ..Default::default()
        }),
        root: Some(Root {
            path: "rootfs".into(),
            readonly: false,
        }),
        hostname: Some(hostname.into()),
        mounts: DEFAULT_MOUNTS
            .iter()
            .map(|&(destination, kind, options)| mount(destination, kind, options))
            .collect(),
        linux: Some(Linux {
            namespaces: ["pid", "network", "ipc", "uts", "mount"]
                .iter()
                .map(|kind| Namespace {
                    kind: kind.to_string(),
                    path: None,
                })
                .collect(),
            resources: None,
            masked_paths: MASKED_PATHS.iter().map(|p| p.to_string()).collect(),
            readonly_paths: READONLY_PATHS.iter().map(|p| p.to_string()).collect(),
            seccomp: Some(default_seccomp(&DEFAULT_CAPS)),
            ..Default::default()
        }),
        annotations: BTreeMap::new(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_default_spec_round_trips_through_json() {
        let spec = default_spec(vec!["echo".into(), "hi".into()], "box");
        let text = serde_json::to_string(&spec).unwrap();
        assert!(text.contains("\"noNewPrivileges\":true"));
        assert!(text.contains("\"maskedPaths\""));
        assert_eq!(Spec::from_json(&text).unwrap(), spec);
    }

    #[test]
    fn test_default_spec_has_docker_caps_and_standard_mounts() {
        let spec = default_spec(vec!["sh".into()], "box");
        let caps = spec.process.unwrap().capabilities.unwrap();
        assert_eq!(caps.bounding.len(), 14);
        assert!(caps.bounding.contains(&"CAP_NET_BIND_SERVICE".to_string()));
        let dests: Vec<_> = spec.mounts.iter().map(|m| m.destination.as_str()).collect();
        assert_eq!(
            dests,
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/dev/shm",
                "/dev/mqueue",
                "/sys"
            ]
        );
    }
}
