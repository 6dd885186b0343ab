//! Building OCI JSON: the default spec of `run -- CMD`, the `process` object of an exec, and
//! the command-line options applied to any spec.
//!
//! The shape is guest-agent's (`container::spec`): camelCase OCI field names, the default
//! spec of `runc spec` with Docker's 14 default capabilities, `RLIMIT_NOFILE` 1024,
//! `noNewPrivileges`, the standard mounts (proc, /dev tmpfs, devpts, shm, mqueue,
//! read-only sysfs) and Docker's default seccomp profile (`protocol::seccomp_profile`).

use serde_json::{json, Value};

use super::{Problem, SpecError};
pub use protocol::oci_defaults::{DEFAULT_CAPS, DEFAULT_PATH};
use protocol::oci_defaults::{DEFAULT_MOUNTS, MASKED_PATHS, READONLY_PATHS};

/// The CFS period `--cpus` uses (Docker's): 100 ms.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest CFS quota the kernel takes: 1 ms.
const CPU_QUOTA_MIN_US: u64 = 1_000;
/// The largest `--cpus` (a sanity bound: far above any sandbox's vCPUs).
const CPUS_MAX: f64 = 1024.0;
/// Longest hostname the kernel takes.
const MAX_HOSTNAME: usize = 64;

/// The process options of `run`, `create` and `exec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessOptions {
    /// The command; empty: keep the spec's (a bundle's) args.
    pub args: Vec<String>,
    /// `-e KEY=VALUE`, in order; a later one for the same key wins.
    pub env: Vec<String>,
    /// `-w DIR`: absolute.
    pub cwd: Option<String>,
    /// `-t`: a terminal.
    pub terminal: bool,
}

/// The resource options of `run` and `create`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResourceOptions {
    /// `-m/--memory MiB`: the container's memory limit.
    pub memory_mib: Option<u64>,
    /// `--cpus N`: CPU time per period, in CPUs (fractions allowed).
    pub cpus: Option<f64>,
    /// `--pids-limit N`: most processes.
    pub pids_limit: Option<u64>,
}

fn strings(list: &[&str]) -> Vec<Value> {
    list.iter().map(|s| json!(s)).collect()
}

fn mount(destination: &str, kind: &str, options: &[&str]) -> Value {
    json!({
        "destination": destination,
        "type": kind,
        "source": kind,
        "options": strings(options),
    })
}

/// Docker's default seccomp profile for the default capabilities, as OCI `linux.seccomp`, for
/// this machine's architecture (the guest's).
pub fn default_seccomp() -> Value {
    use protocol::seccomp_profile as docker;
    let arch = std::env::consts::ARCH;
    let syscalls: Vec<Value> = docker::profile(&DEFAULT_CAPS, arch)
        .into_iter()
        .map(|rule| {
            let mut entry = json!({ "names": rule.names, "action": rule.action });
            if let Some(errno) = rule.errno_ret {
                entry["errnoRet"] = json!(errno);
            }
            if !rule.args.is_empty() {
                let args: Vec<Value> = rule
                    .args
                    .iter()
                    .map(|a| {
                        json!({ "index": a.index, "value": a.value, "valueTwo": a.value_two,
                                "op": a.op })
                    })
                    .collect();
                entry["args"] = json!(args);
            }
            entry
        })
        .collect();
    json!({
        "defaultAction": docker::DEFAULT_ACTION,
        "defaultErrnoRet": docker::DEFAULT_ERRNO,
        "architectures": docker::oci_arch(arch).into_iter().collect::<Vec<_>>(),
        "syscalls": syscalls,
    })
}

/// The spec of a container run without a bundle: `args` as root in `/` with hostname
/// `hostname`, the default environment, capabilities, mounts and namespaces.
pub fn default_spec(hostname: &str) -> Value {
    let caps = strings(&DEFAULT_CAPS);
    let namespaces: Vec<Value> = ["pid", "network", "ipc", "uts", "mount"]
        .iter()
        .map(|k| json!({ "type": k }))
        .collect();
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": [],
            "env": [format!("PATH={DEFAULT_PATH}"), "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": caps.clone(),
                "effective": caps.clone(),
                "inheritable": [],
                "permitted": caps,
                "ambient": [],
            },
            "rlimits": [{ "type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024 }],
            "noNewPrivileges": true,
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": hostname,
        "mounts": DEFAULT_MOUNTS
            .iter()
            .map(|&(destination, kind, options)| mount(destination, kind, options))
            .collect::<Vec<_>>(),
        "linux": {
            "namespaces": namespaces,
            "maskedPaths": strings(&MASKED_PATHS),
            "readonlyPaths": strings(&READONLY_PATHS),
            "seccomp": default_seccomp(),
        },
    })
}

/// The `process` object of an exec (`ExecProcessRequest.process_json`): the default
/// process with `opts` applied. `opts.args` must not be empty.
pub fn process_json(opts: &ProcessOptions) -> Result<Value, SpecError> {
    let mut spec = default_spec("x");
    apply_process(&mut spec, opts)?;
    check_args(&spec)?;
    Ok(spec["process"].take())
}

/// Checks `-e` values: `KEY=VALUE` with a non-empty key without `=`, no NUL.
fn check_env(env: &[String]) -> Vec<Problem> {
    env.iter()
        .filter_map(|var| {
            let ok =
                matches!(var.split_once('='), Some((k, _)) if !k.is_empty()) && !var.contains('\0');
            (!ok).then(|| {
                Problem::new(
                    "-e",
                    format!("{var:?} is not KEY=VALUE (a non-empty KEY without '=')"),
                )
            })
        })
        .collect()
}

/// Applies `-e`, `-w`, `-t` and the command to `spec.process` (created if missing).
pub fn apply_process(spec: &mut Value, opts: &ProcessOptions) -> Result<(), SpecError> {
    let mut problems = check_env(&opts.env);
    if let Some(cwd) = &opts.cwd {
        if !cwd.starts_with('/') || cwd.contains('\0') {
            problems.push(Problem::new(
                "-w",
                format!("{cwd:?} is not an absolute path"),
            ));
        }
    }
    if opts.args.first().is_some_and(String::is_empty) || opts.args.iter().any(|a| a.contains('\0'))
    {
        problems.push(Problem::new(
            "command",
            "an empty program name or a NUL byte",
        ));
    }
    if !problems.is_empty() {
        return Err(SpecError(problems));
    }
    let Some(root) = spec.as_object_mut() else {
        return Err(SpecError::one("config.json", "not a JSON object"));
    };
    let process = root.entry("process").or_insert_with(|| json!({}));
    let Some(process) = process.as_object_mut() else {
        return Err(SpecError::one("process", "not a JSON object"));
    };
    if !opts.args.is_empty() {
        process.insert("args".into(), json!(opts.args));
    }
    if let Some(cwd) = &opts.cwd {
        process.insert("cwd".into(), json!(cwd));
    }
    if opts.terminal {
        process.insert("terminal".into(), json!(true));
    }
    if !opts.env.is_empty() {
        let env = process.entry("env").or_insert_with(|| json!([]));
        let Some(env) = env.as_array_mut() else {
            return Err(SpecError::one("process.env", "not a list"));
        };
        for var in &opts.env {
            let key = var.split_once('=').map_or(var.as_str(), |(k, _)| k);
            env.retain(|old| {
                old.as_str()
                    .and_then(|s| s.split_once('='))
                    .is_none_or(|(k, _)| k != key)
            });
            env.push(json!(var));
        }
    }
    Ok(())
}

/// A spec must end up with something to run.
pub fn check_args(spec: &Value) -> Result<(), SpecError> {
    match spec.pointer("/process/args").and_then(Value::as_array) {
        Some(a) if !a.is_empty() => Ok(()),
        _ => Err(SpecError::one(
            "command",
            "nothing to run: give a command after `--` (or process.args in the bundle)",
        )),
    }
}

/// Applies `-m`, `--cpus` and `--pids-limit` to `spec.linux.resources`.
pub fn apply_resources(spec: &mut Value, opts: &ResourceOptions) -> Result<(), SpecError> {
    let mut problems = Vec::new();
    let memory = match opts.memory_mib {
        Some(0) => {
            problems.push(Problem::new("--memory", "must be at least 1 MiB"));
            None
        }
        Some(mib) => match mib.checked_mul(1 << 20).and_then(|b| i64::try_from(b).ok()) {
            Some(bytes) => Some(bytes),
            None => {
                problems.push(Problem::new("--memory", format!("{mib} MiB is too large")));
                None
            }
        },
        None => None,
    };
    let quota = match opts.cpus {
        Some(c) if !c.is_finite() || c <= 0.0 || c > CPUS_MAX => {
            problems.push(Problem::new(
                "--cpus",
                format!("{c} is not a CPU count above 0 and at most {CPUS_MAX}"),
            ));
            None
        }
        // In range, so the product is a small positive number.
        Some(c) => Some(((c * CPU_PERIOD_US as f64).round() as u64).max(CPU_QUOTA_MIN_US)),
        None => None,
    };
    if opts.pids_limit == Some(0) {
        problems.push(Problem::new("--pids-limit", "must be at least 1"));
    }
    if !problems.is_empty() {
        return Err(SpecError(problems));
    }
    if memory.is_none() && quota.is_none() && opts.pids_limit.is_none() {
        return Ok(());
    }
    let resources = object_at(spec, &["linux", "resources"])?;
    if let Some(bytes) = memory {
        // No swap in the guest; memory+swap equal to the limit says so.
        resources.insert("memory".into(), json!({ "limit": bytes, "swap": bytes }));
    }
    if let Some(quota) = quota {
        let cpu = resources.entry("cpu").or_insert_with(|| json!({}));
        let Some(cpu) = cpu.as_object_mut() else {
            return Err(SpecError::one("linux.resources.cpu", "not a JSON object"));
        };
        cpu.insert("quota".into(), json!(quota));
        cpu.insert("period".into(), json!(CPU_PERIOD_US));
    }
    if let Some(limit) = opts.pids_limit {
        resources.insert("pids".into(), json!({ "limit": limit }));
    }
    Ok(())
}

/// Sets the spec's hostname, checked.
pub fn set_hostname(spec: &mut Value, hostname: &str) -> Result<(), SpecError> {
    if hostname.len() > MAX_HOSTNAME || hostname.contains('\0') {
        return Err(SpecError::one(
            "hostname",
            format!("{hostname:?} is longer than {MAX_HOSTNAME} bytes or holds a NUL"),
        ));
    }
    if let Some(root) = spec.as_object_mut() {
        root.insert("hostname".into(), json!(hostname));
    }
    Ok(())
}

/// The object at `path` in `spec`, created (with its parents) if missing.
fn object_at<'a>(
    spec: &'a mut Value,
    path: &[&str],
) -> Result<&'a mut serde_json::Map<String, Value>, SpecError> {
    let mut here = spec;
    let mut field = String::new();
    for key in path {
        field = if field.is_empty() {
            (*key).to_string()
        } else {
            format!("{field}.{key}")
        };
        let Some(map) = here.as_object_mut() else {
            return Err(SpecError::one(field, "not a JSON object"));
        };
        here = map.entry(*key).or_insert_with(|| json!({}));
    }
    let field = path.join(".");
    here.as_object_mut()
        .ok_or_else(|| SpecError::one(field, "not a JSON object"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(args: &[&str]) -> ProcessOptions {
        ProcessOptions {
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn test_default_spec_shape() {
        let spec = default_spec("box");
        assert_eq!(spec["hostname"], "box");
        assert_eq!(spec["process"]["noNewPrivileges"], true);
        assert_eq!(
            spec["process"]["capabilities"]["bounding"]
                .as_array()
                .unwrap()
                .len(),
            14
        );
        assert_eq!(spec["process"]["env"][0], format!("PATH={DEFAULT_PATH}"));
        let dests: Vec<_> = spec["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["destination"].as_str().unwrap())
            .collect();
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
        assert!(super::super::check_spec_namespaces(&spec).is_empty());
        // Nothing to run until a command is applied.
        assert!(check_args(&spec).is_err());
    }

    #[test]
    fn test_default_spec_has_dockers_seccomp_profile() {
        let seccomp = &default_spec("box")["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(seccomp["defaultErrnoRet"], 1);
        let rules = seccomp["syscalls"].as_array().unwrap();
        let named = |name: &str| {
            rules
                .iter()
                .filter(|r| r["names"].as_array().unwrap().iter().any(|n| n == name))
                .collect::<Vec<_>>()
        };
        assert!(!named("read").is_empty());
        // Not for the default capabilities: no namespaces, mounts or kernel log.
        for name in ["unshare", "mount", "setns", "syslog"] {
            assert!(named(name).is_empty(), "{name}");
        }
        let clone = named("clone");
        assert_eq!(clone[0]["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert_eq!(named("clone3")[0]["errnoRet"], 38);
    }

    #[test]
    fn test_apply_process_args_env_cwd_tty() {
        let mut spec = default_spec("box");
        let o = ProcessOptions {
            args: vec!["sh".into(), "-c".into(), "echo $A".into()],
            env: vec![
                "A=1".into(),
                "TERM=dumb".into(),
                "B=x=y".into(),
                "A=2".into(),
            ],
            cwd: Some("/tmp".into()),
            terminal: true,
        };
        apply_process(&mut spec, &o).unwrap();
        let p = &spec["process"];
        assert_eq!(p["args"], json!(["sh", "-c", "echo $A"]));
        assert_eq!(
            p["env"],
            json!([format!("PATH={DEFAULT_PATH}"), "TERM=dumb", "B=x=y", "A=2"])
        );
        assert_eq!(p["cwd"], "/tmp");
        assert_eq!(p["terminal"], true);
        check_args(&spec).unwrap();
    }

    #[test]
    fn test_apply_process_refuses_bad_env_and_cwd_all_at_once() {
        let mut spec = default_spec("box");
        let o = ProcessOptions {
            args: vec!["true".into()],
            env: vec!["=v".into(), "NOEQUALS".into(), "OK=1".into()],
            cwd: Some("relative".into()),
            terminal: false,
        };
        let e = apply_process(&mut spec, &o).unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["-e", "-e", "-w"], "{e}");
        assert!(
            e.to_string().contains("\"NOEQUALS\" is not KEY=VALUE"),
            "{e}"
        );
        assert!(apply_process(&mut spec, &opts(&[""])).is_err());
    }

    #[test]
    fn test_process_json_for_exec() {
        let p = process_json(&opts(&["ls", "/"])).unwrap();
        assert_eq!(p["args"], json!(["ls", "/"]));
        assert_eq!(p["cwd"], "/");
        assert!(p.get("hostname").is_none());
        assert!(process_json(&opts(&[])).is_err());
    }

    #[test]
    fn test_apply_resources_memory_cpus_pids() {
        let mut spec = default_spec("box");
        apply_resources(
            &mut spec,
            &ResourceOptions {
                memory_mib: Some(64),
                cpus: Some(1.5),
                pids_limit: Some(32),
            },
        )
        .unwrap();
        let r = &spec["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 64 << 20);
        assert_eq!(r["memory"]["swap"], 64 << 20);
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["pids"]["limit"], 32);
        // A tiny fraction still gets the kernel's minimum quota.
        apply_resources(
            &mut spec,
            &ResourceOptions {
                cpus: Some(0.001),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec["linux"]["resources"]["cpu"]["quota"], 1_000);
        // No options: no resources object.
        let mut plain = default_spec("box");
        apply_resources(&mut plain, &ResourceOptions::default()).unwrap();
        assert!(plain["linux"].get("resources").is_none());
    }

    #[test]
    fn test_apply_resources_refusals() {
        let mut spec = default_spec("box");
        let e = apply_resources(
            &mut spec,
            &ResourceOptions {
                memory_mib: Some(0),
                cpus: Some(f64::NAN),
                pids_limit: Some(0),
            },
        )
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["--memory", "--cpus", "--pids-limit"]);
        assert!(apply_resources(
            &mut spec,
            &ResourceOptions {
                memory_mib: Some(u64::MAX),
                ..Default::default()
            }
        )
        .is_err());
        assert!(apply_resources(
            &mut spec,
            &ResourceOptions {
                cpus: Some(-1.0),
                ..Default::default()
            }
        )
        .is_err());
        let mut bad = json!({ "linux": { "resources": 3 } });
        assert!(apply_resources(
            &mut bad,
            &ResourceOptions {
                pids_limit: Some(1),
                ..Default::default()
            }
        )
        .is_err());
    }

    #[test]
    fn test_set_hostname() {
        let mut spec = default_spec("a");
        set_hostname(&mut spec, "web").unwrap();
        assert_eq!(spec["hostname"], "web");
        assert!(set_hostname(&mut spec, &"x".repeat(65)).is_err());
    }
}
