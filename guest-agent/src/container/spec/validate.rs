//! Checks of the spec fields the engine uses. Pure; each error names its field.

use std::collections::HashSet;

use super::{Mount, Namespace, Process, Resources, Spec, SpecError};
use crate::container::caps::CapSet;
use crate::container::cgroup::resource_writes;
use crate::container::mounts::{parse_options, MountKind};
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
    if let Some(hostname) = &spec.hostname {
        validate_hostname(hostname, "hostname")?;
    }
    for (i, mount) in spec.mounts.iter().enumerate() {
        validate_mount(mount, &format!("mounts[{i}]"))?;
    }
    if let Some(linux) = &spec.linux {
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
