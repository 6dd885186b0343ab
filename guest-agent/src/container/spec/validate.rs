//! Checks of the spec fields the engine uses. Pure; each error names its field.

use std::collections::HashSet;

use super::{Linux, LinuxDevice, Mount, Namespace, Process, Resources, Spec, SpecError};
use crate::container::caps::CapSet;
use crate::container::cgroup::resource_writes;
use crate::container::devices::rules as device_rules;
use crate::container::mounts::{parse_options, MountKind};
use crate::container::seccomp;
use crate::container::user::rlimit_resource;

/// Longest hostname the kernel takes (`__NEW_UTS_LEN`).
const MAX_HOSTNAME: usize = 64;
/// `NGROUPS_MAX`.
const MAX_GROUPS: usize = 65_536;

pub(super) fn validate_spec(spec: &Spec) -> Result<(), SpecError> {
    let process = spec
        .process
        .as_ref()
        .ok_or_else(|| SpecError::new("process", "missing: a container needs a process to run"))?;
    validate_process(process, "process")?;
    spec.hooks.refuse(
        "hooks",
        "hooks run programs on the host at the host runtime's steps; the agent in the VM \
         cannot run them",
    )?;
    for (field, section) in [
        ("solaris", &spec.solaris),
        ("windows", &spec.windows),
        ("vm", &spec.vm),
        ("zos", &spec.zos),
    ] {
        section.refuse(field, "containers here are Linux containers")?;
    }
    if let Some(hostname) = &spec.hostname {
        validate_hostname(hostname, "hostname")?;
    }
    if let Some(domainname) = &spec.domainname {
        validate_hostname(domainname, "domainname")?;
    }
    for (i, mount) in spec.mounts.iter().enumerate() {
        validate_mount(mount, &format!("mounts[{i}]"))?;
    }
    if let Some(linux) = &spec.linux {
        validate_linux(linux)?;
    }
    Ok(())
}

fn validate_linux(linux: &Linux) -> Result<(), SpecError> {
    validate_namespaces(&linux.namespaces)?;
    if let Some(resources) = &linux.resources {
        validate_resources(resources, "linux.resources")?;
    }
    for (i, path) in linux.masked_paths.iter().enumerate() {
        absolute(path, &format!("linux.maskedPaths[{i}]"))?;
    }
    for (i, path) in linux.readonly_paths.iter().enumerate() {
        absolute(path, &format!("linux.readonlyPaths[{i}]"))?;
    }
    let mut paths = HashSet::new();
    for (i, device) in linux.devices.iter().enumerate() {
        let field = format!("linux.devices[{i}]");
        validate_device(device, &field)?;
        if !paths.insert(device.path.trim_end_matches('/')) {
            return Err(SpecError::new(
                format!("{field}.path"),
                format!("{} given twice", device.path),
            ));
        }
    }
    if let Some(profile) = &linux.seccomp {
        seccomp::plan(profile)?;
    }
    match linux.rootfs_propagation.as_deref() {
        None | Some("" | "private" | "rprivate") => {}
        Some(other) => {
            return Err(SpecError::new(
                "linux.rootfsPropagation",
                format!(
                    "{other:?} is not supported: a container's mounts are always private \
                     (\"private\" or \"rprivate\")"
                ),
            ))
        }
    }
    let unsupported = [
        (
            "linux.uidMappings",
            &linux.uid_mappings,
            "user namespaces are not supported",
        ),
        (
            "linux.gidMappings",
            &linux.gid_mappings,
            "user namespaces are not supported",
        ),
        (
            "linux.timeOffsets",
            &linux.time_offsets,
            "time namespaces are not supported",
        ),
        ("linux.sysctl", &linux.sysctl, "sysctls are not implemented"),
        (
            "linux.mountLabel",
            &linux.mount_label,
            "the guest kernel has no SELinux",
        ),
        (
            "linux.intelRdt",
            &linux.intel_rdt,
            "there is no Intel RDT in the VM",
        ),
        ("linux.personality", &linux.personality, "not implemented"),
        (
            "linux.memoryPolicy",
            &linux.memory_policy,
            "not implemented",
        ),
        ("linux.netDevices", &linux.net_devices, "not implemented"),
    ];
    for (field, value, why) in unsupported {
        value.refuse(field, why)?;
    }
    Ok(())
}

/// A `linux.devices[]` node: an absolute path under `/dev` (nodes elsewhere could not be
/// opened: every other mount is `nodev`), a known type and exact numbers.
fn validate_device(device: &LinuxDevice, field: &str) -> Result<(), SpecError> {
    let path_field = format!("{field}.path");
    absolute(&device.path, &path_field)?;
    let inside_dev = device
        .path
        .strip_prefix("/dev/")
        .is_some_and(|rest| !rest.is_empty() && !rest.split('/').any(|c| c == ".." || c == "."));
    if !inside_dev {
        return Err(SpecError::new(
            path_field,
            format!(
                "{:?} must be a path under /dev/ without . or ..: everything else is mounted \
                 nodev",
                device.path
            ),
        ));
    }
    device_rules::node_rule(device, field)?;
    if let Some(mode) = device.file_mode {
        if mode & !0o7777 != 0 {
            return Err(SpecError::new(
                format!("{field}.fileMode"),
                format!("{mode:#o} holds more than permission bits (at most 0o7777)"),
            ));
        }
    }
    Ok(())
}

/// Checks a container, exec or sandbox id against the one rule of [`protocol::id`] (the
/// host checks the same), so it is safe as a file name, a cgroup name and a hostname.
pub fn validate_id(id: &str, field: &str) -> Result<(), SpecError> {
    protocol::id::validate_id(id, field).map_err(|e| SpecError::new(e.field, e.problem.to_string()))
}

/// Checks a `process` object; `field` is its name in errors (`process`).
pub fn validate_process(process: &Process, field: &str) -> Result<(), SpecError> {
    if process.args.is_empty() {
        return Err(SpecError::new(
            format!("{field}.args"),
            "empty: nothing to run",
        ));
    }
    for (i, arg) in process.args.iter().enumerate() {
        no_nul(arg, &format!("{field}.args[{i}]"))?;
    }
    if process.args[0].is_empty() {
        return Err(SpecError::new(
            format!("{field}.args[0]"),
            "empty program name",
        ));
    }
    for (i, var) in process.env.iter().enumerate() {
        let f = format!("{field}.env[{i}]");
        no_nul(var, &f)?;
        match var.split_once('=') {
            Some((key, _)) if !key.is_empty() => {}
            _ => return Err(SpecError::new(f, format!("{var:?} is not KEY=VALUE"))),
        }
    }
    // An empty cwd means "/" (exec requests often leave it out).
    if !process.cwd.is_empty() {
        absolute(&process.cwd, &format!("{field}.cwd"))?;
    }
    if process.user.additional_gids.len() > MAX_GROUPS {
        return Err(SpecError::new(
            format!("{field}.user.additionalGids"),
            format!("more than {MAX_GROUPS} groups"),
        ));
    }
    if let Some(caps) = &process.capabilities {
        for (name, list) in [
            ("bounding", &caps.bounding),
            ("effective", &caps.effective),
            ("inheritable", &caps.inheritable),
            ("permitted", &caps.permitted),
            ("ambient", &caps.ambient),
        ] {
            CapSet::from_names(list, &format!("{field}.capabilities.{name}"))?;
        }
    }
    let unsupported = [
        (
            "apparmorProfile",
            &process.apparmor_profile,
            "the guest kernel has no AppArmor",
        ),
        (
            "selinuxLabel",
            &process.selinux_label,
            "the guest kernel has no SELinux",
        ),
        ("ioPriority", &process.io_priority, "not implemented"),
        ("scheduler", &process.scheduler, "not implemented"),
        (
            "execCPUAffinity",
            &process.exec_cpu_affinity,
            "not implemented",
        ),
        ("commandLine", &process.command_line, "Windows only"),
        ("user.username", &process.user.username, "Windows only"),
    ];
    for (name, value, why) in unsupported {
        value.refuse(&format!("{field}.{name}"), why)?;
    }
    if let Some(adj) = process.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            return Err(SpecError::new(
                format!("{field}.oomScoreAdj"),
                format!("{adj} is not from -1000 to 1000"),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (i, limit) in process.rlimits.iter().enumerate() {
        let f = format!("{field}.rlimits[{i}]");
        if rlimit_resource(&limit.kind).is_none() {
            return Err(SpecError::new(
                format!("{f}.type"),
                format!("unknown resource {:?}", limit.kind),
            ));
        }
        if !seen.insert(limit.kind.as_str()) {
            return Err(SpecError::new(
                format!("{f}.type"),
                format!("{} given twice", limit.kind),
            ));
        }
        if limit.soft > limit.hard {
            return Err(SpecError::new(
                f,
                format!("soft {} is above hard {}", limit.soft, limit.hard),
            ));
        }
    }
    Ok(())
}

/// Checks `linux.resources` (also an update request); `field` is its name in errors.
pub fn validate_resources(resources: &Resources, field: &str) -> Result<(), SpecError> {
    let not_implemented = "not implemented";
    let mut unsupported = vec![
        ("blockIO", &resources.block_io, not_implemented),
        (
            "hugepageLimits",
            &resources.hugepage_limits,
            not_implemented,
        ),
        ("rdma", &resources.rdma, not_implemented),
        ("unified", &resources.unified, not_implemented),
        ("network", &resources.network, "cgroup v1 only"),
    ];
    if let Some(m) = &resources.memory {
        unsupported.extend([
            ("memory.reservation", &m.reservation, not_implemented),
            ("memory.kernel", &m.kernel, "cgroup v1 only"),
            ("memory.kernelTCP", &m.kernel_tcp, "cgroup v1 only"),
            ("memory.swappiness", &m.swappiness, "cgroup v1 only"),
            (
                "memory.disableOOMKiller",
                &m.disable_oom_killer,
                "cgroup v1 only",
            ),
            (
                "memory.checkBeforeUpdate",
                &m.check_before_update,
                not_implemented,
            ),
        ]);
        if m.use_hierarchy == Some(false) {
            return Err(SpecError::new(
                format!("{field}.memory.useHierarchy"),
                "false is not supported: cgroup v2 is always hierarchical",
            ));
        }
    }
    if let Some(c) = &resources.cpu {
        unsupported.extend([
            ("cpu.burst", &c.burst, not_implemented),
            ("cpu.realtimeRuntime", &c.realtime_runtime, not_implemented),
            ("cpu.realtimePeriod", &c.realtime_period, not_implemented),
            ("cpu.idle", &c.idle, not_implemented),
        ]);
    }
    for (name, value, why) in unsupported {
        value.refuse(&format!("{field}.{name}"), why)?;
    }
    for (i, rule) in resources.devices.iter().enumerate() {
        device_rules::cgroup_rule(rule, &format!("{field}.devices[{i}]"))?;
    }
    resource_writes(resources, field).map(|_| ())
}

fn validate_hostname(hostname: &str, field: &str) -> Result<(), SpecError> {
    no_nul(hostname, field)?;
    if hostname.len() > MAX_HOSTNAME {
        return Err(SpecError::new(
            field,
            format!("longer than {MAX_HOSTNAME} bytes"),
        ));
    }
    Ok(())
}

fn validate_mount(mount: &Mount, field: &str) -> Result<(), SpecError> {
    absolute(&mount.destination, &format!("{field}.destination"))?;
    if mount.destination.split('/').any(|c| c == "..") {
        return Err(SpecError::new(
            format!("{field}.destination"),
            format!("{:?} contains \"..\"", mount.destination),
        ));
    }
    let options = parse_options(&mount.options)
        .map_err(|problem| SpecError::new(format!("{field}.options"), problem))?;
    if mount.options.iter().any(|o| o == "dev") {
        return Err(SpecError::new(
            format!("{field}.options"),
            "\"dev\" is not allowed: every mount but the engine's own /dev nodes is nodev; \
             list device nodes in linux.devices",
        ));
    }
    mount.uid_mappings.refuse(
        &format!("{field}.uidMappings"),
        "user namespaces are not supported",
    )?;
    mount.gid_mappings.refuse(
        &format!("{field}.gidMappings"),
        "user namespaces are not supported",
    )?;
    let kind = MountKind::of(mount.kind.as_deref(), options.bind)
        .map_err(|problem| SpecError::new(format!("{field}.type"), problem))?;
    if kind == MountKind::Bind {
        let source = mount.source.as_deref().unwrap_or("");
        absolute(source, &format!("{field}.source"))?;
    }
    Ok(())
}

/// The namespace types the engine knows, with the kernel's short name for messages.
fn namespace_short_name(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "pid" => "pid",
        "network" => "net",
        "mount" => "mnt",
        "ipc" => "ipc",
        "uts" => "uts",
        "cgroup" => "cgroup",
        "user" => "user",
        "time" => "time",
        _ => return None,
    })
}

fn validate_namespaces(namespaces: &[Namespace]) -> Result<(), SpecError> {
    let mut seen = HashSet::new();
    for (i, ns) in namespaces.iter().enumerate() {
        let field = format!("linux.namespaces[{i}]");
        let short = namespace_short_name(&ns.kind).ok_or_else(|| {
            SpecError::new(
                format!("{field}.type"),
                format!("unknown namespace type {:?}", ns.kind),
            )
        })?;
        if let Some(path) = ns.path.as_deref().filter(|p| !p.is_empty()) {
            return Err(SpecError::new(
                field,
                format!(
                    "path {path} joins the host's {short} namespace; containers run in a VM \
                     and cannot share the host's namespace"
                ),
            ));
        }
        if matches!(short, "user" | "time") {
            return Err(SpecError::new(
                format!("{field}.type"),
                format!("{} namespaces are not supported", ns.kind),
            ));
        }
        if !seen.insert(ns.kind.as_str()) {
            return Err(SpecError::new(
                format!("{field}.type"),
                format!("{} given twice", ns.kind),
            ));
        }
    }
    Ok(())
}

fn absolute(path: &str, field: &str) -> Result<(), SpecError> {
    no_nul(path, field)?;
    if !path.starts_with('/') {
        return Err(SpecError::new(
            field,
            format!("{path:?} is not an absolute path"),
        ));
    }
    Ok(())
}

fn no_nul(text: &str, field: &str) -> Result<(), SpecError> {
    if text.contains('\0') {
        return Err(SpecError::new(field, "contains a NUL byte"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;

    fn spec_with(mutate: impl FnOnce(&mut Spec)) -> Spec {
        let mut spec = default_spec(vec!["sh".into()], "test");
        mutate(&mut spec);
        spec
    }

    fn error(spec: &Spec) -> String {
        spec.validate().unwrap_err().to_string()
    }

    fn linux(spec: &mut Spec) -> &mut Linux {
        spec.linux.get_or_insert_with(Linux::default)
    }

    #[test]
    fn test_validate_default_spec_is_valid() {
        spec_with(|_| {}).validate().unwrap();
    }

    #[test]
    fn test_validate_host_namespace_path_is_refused() {
        let spec = spec_with(|s| {
            linux(s).namespaces = vec![
                Namespace {
                    kind: "pid".into(),
                    path: None,
                },
                Namespace {
                    kind: "network".into(),
                    path: Some("/proc/1/ns/net".into()),
                },
            ]
        });
        assert_eq!(
            error(&spec),
            "linux.namespaces[1]: path /proc/1/ns/net joins the host's net namespace; \
             containers run in a VM and cannot share the host's namespace"
        );
    }

    #[test]
    fn test_validate_any_namespace_path_is_refused() {
        for (kind, path) in [
            ("ipc", "/proc/self/ns/ipc"),
            ("network", "/var/run/netns/cni-1234"),
            ("mount", "/proc/42/ns/mnt"),
        ] {
            let spec = spec_with(|s| {
                linux(s).namespaces = vec![Namespace {
                    kind: kind.into(),
                    path: Some(path.into()),
                }]
            });
            let msg = error(&spec);
            assert!(msg.starts_with(&format!(
                "linux.namespaces[0]: path {path} joins the host's"
            )));
        }
    }

    #[test]
    fn test_validate_empty_namespace_path_means_new() {
        let spec = spec_with(|s| {
            linux(s).namespaces = vec![Namespace {
                kind: "uts".into(),
                path: Some(String::new()),
            }]
        });
        spec.validate().unwrap();
    }

    #[test]
    fn test_validate_namespace_types() {
        let ns = |kind: &str| {
            spec_with(|s| {
                linux(s).namespaces = vec![Namespace {
                    kind: kind.into(),
                    path: None,
                }]
            })
        };
        assert_eq!(
            error(&ns("user")),
            "linux.namespaces[0].type: user namespaces are not supported"
        );
        assert_eq!(
            error(&ns("bogus")),
            "linux.namespaces[0].type: unknown namespace type \"bogus\""
        );
        let twice = spec_with(|s| {
            let pid = Namespace {
                kind: "pid".into(),
                path: None,
            };
            linux(s).namespaces = vec![pid.clone(), pid];
        });
        assert_eq!(error(&twice), "linux.namespaces[1].type: pid given twice");
    }

    #[test]
    fn test_validate_process_fields() {
        let missing = spec_with(|s| s.process = None);
        assert!(error(&missing).starts_with("process: missing"));
        let no_args = spec_with(|s| s.process.as_mut().unwrap().args.clear());
        assert_eq!(error(&no_args), "process.args: empty: nothing to run");
        let bad_env = spec_with(|s| s.process.as_mut().unwrap().env.push("NOEQUALS".into()));
        assert!(error(&bad_env).starts_with("process.env[2]: \"NOEQUALS\" is not KEY=VALUE"));
        let rel_cwd = spec_with(|s| s.process.as_mut().unwrap().cwd = "tmp".into());
        assert_eq!(
            error(&rel_cwd),
            "process.cwd: \"tmp\" is not an absolute path"
        );
        let nul = spec_with(|s| s.process.as_mut().unwrap().args.push("a\0b".into()));
        assert_eq!(error(&nul), "process.args[1]: contains a NUL byte");
    }

    #[test]
    fn test_validate_capability_names() {
        let spec = spec_with(|s| {
            let caps = s.process.as_mut().unwrap().capabilities.as_mut().unwrap();
            caps.effective.push("CAP_FLY".into());
        });
        let msg = error(&spec);
        assert!(msg.starts_with("process.capabilities.effective["), "{msg}");
        assert!(msg.contains("unknown capability \"CAP_FLY\""), "{msg}");
    }

    #[test]
    fn test_validate_rlimits() {
        let rl = |kind: &str, soft, hard| Rlimit {
            kind: kind.into(),
            soft,
            hard,
        };
        let bad_kind = spec_with(|s| {
            s.process.as_mut().unwrap().rlimits = vec![rl("RLIMIT_FUN", 1, 1)];
        });
        assert_eq!(
            error(&bad_kind),
            "process.rlimits[0].type: unknown resource \"RLIMIT_FUN\""
        );
        let inverted = spec_with(|s| {
            s.process.as_mut().unwrap().rlimits = vec![rl("RLIMIT_NOFILE", 10, 5)];
        });
        assert_eq!(
            error(&inverted),
            "process.rlimits[0]: soft 10 is above hard 5"
        );
    }

    #[test]
    fn test_validate_hostname_and_mounts() {
        let long = spec_with(|s| s.hostname = Some("h".repeat(65)));
        assert_eq!(error(&long), "hostname: longer than 64 bytes");
        let rel = spec_with(|s| s.mounts[0].destination = "proc".into());
        assert_eq!(
            error(&rel),
            "mounts[0].destination: \"proc\" is not an absolute path"
        );
        let dotdot = spec_with(|s| s.mounts[0].destination = "/a/../../etc".into());
        assert!(error(&dotdot).contains("contains \"..\""));
        let bad_type = spec_with(|s| s.mounts[0].kind = Some("nfs".into()));
        assert!(
            error(&bad_type).starts_with("mounts[0].type: "),
            "{}",
            error(&bad_type)
        );
        let bad_opt = spec_with(|s| s.mounts[0].options.push("frobnicate".into()));
        assert!(error(&bad_opt).starts_with("mounts[0].options: "));
        let rel_bind = spec_with(|s| {
            s.mounts.push(Mount {
                destination: "/data".into(),
                kind: Some("bind".into()),
                source: Some("data".into()),
                options: vec!["rbind".into()],
                ..Default::default()
            })
        });
        let n = rel_bind.mounts.len() - 1;
        assert_eq!(
            error(&rel_bind),
            format!("mounts[{n}].source: \"data\" is not an absolute path")
        );
    }

    #[test]
    fn test_validate_resources_names_field() {
        let spec = spec_with(|s| {
            linux(s).resources = Some(Resources {
                memory: Some(MemoryResources {
                    limit: Some(-5),
                    swap: None,
                    ..Default::default()
                }),
                ..Default::default()
            })
        });
        assert!(error(&spec).starts_with("linux.resources.memory.limit: "));
    }

    #[test]
    fn test_validate_id_rules() {
        for good in ["a", "web-1", "x.y_z", &"a".repeat(64)] {
            validate_id(good, "container_id").unwrap();
        }
        for bad in [
            "",
            ".hidden",
            "-x",
            "a/b",
            "a b",
            "..",
            "caf\u{e9}",
            &"a".repeat(65),
        ] {
            let err = validate_id(bad, "container_id").unwrap_err();
            assert_eq!(err.field, "container_id");
            assert!(err.to_string().contains("allowed: "), "{err}");
        }
    }
}
