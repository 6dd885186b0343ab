//! A checked [`Profile`] into BPF programs, with seccompiler (its JSON front end: it owns
//! the syscall name tables for x86_64 and aarch64).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{Action, Condition, Op, Profile};
use crate::container::spec::SpecError;

/// One classic BPF instruction (`struct sock_filter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[repr(C)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

/// One filter to install, with its `SECCOMP_FILTER_FLAG_*` flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompiledFilter {
    pub flags: u32,
    pub program: Vec<SockFilter>,
}

fn target() -> Result<seccompiler::TargetArch, SpecError> {
    seccompiler::TargetArch::try_from(std::env::consts::ARCH).map_err(|e| {
        SpecError::new(
            "linux.seccomp",
            format!("no seccomp compiler for this architecture: {e}"),
        )
    })
}

fn action_json(action: Action) -> Value {
    match action {
        Action::Allow => json!("allow"),
        Action::Errno(n) => json!({ "errno": n }),
        Action::KillThread => json!("kill_thread"),
        Action::KillProcess => json!("kill_process"),
        Action::Trap => json!("trap"),
        Action::Trace(n) => json!({ "trace": n }),
        Action::Log => json!("log"),
    }
}

fn condition_json(c: &Condition) -> Value {
    let op = match c.op {
        Op::Eq => json!("eq"),
        Op::Ne => json!("ne"),
        Op::Lt => json!("lt"),
        Op::Le => json!("le"),
        Op::Gt => json!("gt"),
        Op::Ge => json!("ge"),
        Op::MaskedEq(mask) => json!({ "masked_eq": mask }),
    };
    // libseccomp compares the whole 64-bit argument; so do we.
    json!({ "index": c.index, "type": "qword", "op": op, "val": c.value })
}

/// Whether seccompiler knows syscall `name` on this architecture (cached: the agent compiles
/// the same names for every container).
fn known(name: &str, arch: seccompiler::TargetArch) -> bool {
    static CACHE: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&k) = cache.get(name) {
        return k;
    }
    let probe = json!({ "p": {
        "default_action": "allow", "filter_action": "trap", "filter": [{ "syscall": name }]
    }});
    let k = seccompiler::compile_from_json(probe.to_string().as_bytes(), arch).is_ok();
    cache.insert(name.to_string(), k);
    k
}

/// Syscall name -> its rules' condition sets; `None`: matched unconditionally.
type Matches = BTreeMap<String, Option<Vec<Vec<Condition>>>>;

fn add(matches: &mut Matches, name: &str, conditions: &[Condition]) {
    let entry = matches
        .entry(name.to_string())
        .or_insert_with(|| Some(Vec::new()));
    match entry {
        // Already unconditional: conditions add nothing.
        None => {}
        Some(_) if conditions.is_empty() => *entry = None,
        Some(sets) => sets.push(conditions.to_vec()),
    }
}

fn filter_json(matches: &Matches, mismatch: Action, on_match: Action) -> Value {
    let mut rules = Vec::new();
    for (name, sets) in matches {
        match sets {
            None => rules.push(json!({ "syscall": name })),
            Some(sets) => {
                for set in sets {
                    let args: Vec<Value> = set.iter().map(condition_json).collect();
                    rules.push(json!({ "syscall": name, "args": args }));
                }
            }
        }
    }
    json!({ "f": {
        "default_action": action_json(mismatch),
        "filter_action": action_json(on_match),
        "filter": rules,
    }})
}

fn compile_one(
    filter: &Value,
    arch: seccompiler::TargetArch,
) -> Result<Vec<SockFilter>, SpecError> {
    let mut map = seccompiler::compile_from_json(filter.to_string().as_bytes(), arch)
        .map_err(|e| SpecError::new("linux.seccomp", format!("compile: {e}")))?;
    let program = map
        .remove("f")
        .ok_or_else(|| SpecError::new("linux.seccomp", "compile: no filter produced"))?;
    Ok(program
        .into_iter()
        .map(|i| SockFilter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// The filters for `profile`, in installation order (see the module doc of `seccomp`).
/// Empty when the profile denies nothing.
pub fn compile(profile: &Profile) -> Result<Vec<CompiledFilter>, SpecError> {
    let arch = target()?;
    let mut named = Matches::new();
    let mut by_action: BTreeMap<Action, Matches> = BTreeMap::new();
    for rule in &profile.rules {
        if !known(&rule.name, arch) {
            tracing::debug!(
                "seccomp: syscall {} is unknown on {}: skipped",
                rule.name,
                std::env::consts::ARCH
            );
            continue;
        }
        add(&mut named, &rule.name, &rule.conditions);
        if rule.action != Action::Allow {
            add(
                by_action.entry(rule.action).or_default(),
                &rule.name,
                &rule.conditions,
            );
        }
    }
    let mut filters = Vec::new();
    if profile.default_action != Action::Allow {
        filters.push(filter_json(&named, profile.default_action, Action::Allow));
    }
    for (action, matches) in &by_action {
        filters.push(filter_json(matches, Action::Allow, *action));
    }
    filters
        .iter()
        .map(|f| {
            Ok(CompiledFilter {
                flags: profile.flags,
                program: compile_one(f, arch)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::plan;
    use super::*;
    use crate::container::spec::default_seccomp;

    #[test]
    fn test_compile_docker_default() {
        let profile = plan(&default_seccomp(&protocol::oci_defaults::DEFAULT_CAPS)).unwrap();
        let filters = compile(&profile).unwrap();
        // The default filter (ERRNO/EPERM for what is not allowed) and clone3's ENOSYS.
        assert_eq!(filters.len(), 2);
        assert!(
            filters[0].program.len() > 300,
            "{}",
            filters[0].program.len()
        );
        assert!(filters.iter().all(|f| f.program.len() < 4096));
        assert!(!known("chown32", seccompiler::TargetArch::x86_64));
        assert!(known("openat", seccompiler::TargetArch::x86_64));
    }

    #[test]
    fn test_compile_allow_default_with_no_rules_is_empty() {
        let profile = Profile {
            default_action: Action::Allow,
            rules: Vec::new(),
            flags: 0,
        };
        assert!(compile(&profile).unwrap().is_empty());
    }

    #[test]
    fn test_add_unconditional_wins() {
        let c = Condition {
            index: 0,
            op: Op::Eq,
            value: 1,
        };
        let mut m = Matches::new();
        add(&mut m, "x", &[c]);
        assert_eq!(m["x"], Some(vec![vec![c]]));
        add(&mut m, "x", &[]);
        assert_eq!(m["x"], None);
        add(&mut m, "x", &[c]);
        assert_eq!(m["x"], None);
    }
}
