//! OCI `linux.seccomp` for containers: checked and mapped when the spec is validated
//! ([`plan`], pure), compiled with the `seccompiler` crate when the container is created
//! ([`compile`]), installed by the setup helper right before the exec ([`install`]).
//!
//! OCI gives each rule its own action; a seccompiler filter has one action for matches and
//! one for the rest. So a profile becomes a stack of filters, which the kernel runs all of,
//! taking the most severe answer (kill > trap > errno > trace > log > allow):
//! - the *default* filter: every syscall named by any rule (with its argument conditions)
//!   is allowed, anything else gets `defaultAction`;
//! - one filter per other action (`SCMP_ACT_ERRNO` with `errnoRet` 38 is an action of its
//!   own): the syscalls of the rules with that action get it, anything else is allowed.
//!
//! A syscall matching a rule thus gets that rule's action; where rules with different actions
//! match the same call, the most severe wins (OCI leaves that case open).
//!
//! Mapping: actions `SCMP_ACT_{ALLOW, ERRNO, KILL, KILL_THREAD, KILL_PROCESS, TRAP, TRACE,
//! LOG}`; operators `SCMP_CMP_{EQ, NE, LT, LE, GT, GE}` on the 64-bit argument, and
//! `SCMP_CMP_MASKED_EQ` (`(arg & value) == valueTwo`); several conditions on one argument
//! split into one rule each (as runc does, since libseccomp cannot AND them). Syscall names
//! unknown on this architecture are skipped with a debug log (as runc does). Only the native
//! architecture is compiled: a call through another ABI (e.g. 32-bit x86) kills the process.
//! Flags `SECCOMP_FILTER_FLAG_TSYNC` (the helper is single-threaded: meaningless),
//! `SECCOMP_FILTER_FLAG_LOG` and `SECCOMP_FILTER_FLAG_SPEC_ALLOW` are honoured; `listenerPath`,
//! `SCMP_ACT_NOTIFY` and any other flag are refused, naming the field.

mod compile;
mod install;

pub use compile::{compile, CompiledFilter};
pub use install::install;

use crate::container::spec::{Seccomp, SeccompSyscall, SpecError};

/// What a matching syscall gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Allow,
    Errno(u32),
    KillThread,
    KillProcess,
    Trap,
    Trace(u32),
    Log,
}

/// A comparison on one argument, as seccompiler knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// `(arg & mask) == value`.
    MaskedEq(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Condition {
    pub index: u8,
    pub op: Op,
    pub value: u64,
}

/// One rule: a syscall name, all of `conditions` (none: always), and the action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub name: String,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// A checked profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub default_action: Action,
    pub rules: Vec<Rule>,
    /// `SECCOMP_FILTER_FLAG_*` bits for `seccomp(SECCOMP_SET_MODE_FILTER)`.
    pub flags: u32,
}

/// `errnoRet` when a spec gives none: EPERM.
const DEFAULT_ERRNO: u32 = libc::EPERM as u32;

fn action(name: &str, errno: Option<u32>, field: &str) -> Result<Action, SpecError> {
    Ok(match name {
        "SCMP_ACT_ALLOW" => Action::Allow,
        "SCMP_ACT_ERRNO" => Action::Errno(errno.unwrap_or(DEFAULT_ERRNO)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
        "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
        "SCMP_ACT_TRAP" => Action::Trap,
        "SCMP_ACT_TRACE" => Action::Trace(errno.unwrap_or(DEFAULT_ERRNO)),
        "SCMP_ACT_LOG" => Action::Log,
        "SCMP_ACT_NOTIFY" => {
            return Err(SpecError::new(
                field,
                "SCMP_ACT_NOTIFY is not supported: user notification needs a listener outside \
                 the VM",
            ))
        }
        other => {
            return Err(SpecError::new(
                field,
                format!(
                    "unknown action {other:?} (SCMP_ACT_ALLOW, ERRNO, KILL, KILL_THREAD, \
                     KILL_PROCESS, TRAP, TRACE or LOG)"
                ),
            ))
        }
    })
}

fn flag(name: &str, field: &str) -> Result<u32, SpecError> {
    Ok(match name {
        // The helper that installs the filter is single-threaded: syncing threads is moot.
        "SECCOMP_FILTER_FLAG_TSYNC" => 0,
        "SECCOMP_FILTER_FLAG_LOG" => libc::SECCOMP_FILTER_FLAG_LOG as u32,
        "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW as u32,
        other => {
            return Err(SpecError::new(
                field,
                format!(
                    "{other:?} is not supported (SECCOMP_FILTER_FLAG_TSYNC, \
                     SECCOMP_FILTER_FLAG_LOG, SECCOMP_FILTER_FLAG_SPEC_ALLOW)"
                ),
            ))
        }
    })
}

fn condition(
    arg: &crate::container::spec::SeccompArg,
    field: &str,
) -> Result<Condition, SpecError> {
    if arg.index > 5 {
        return Err(SpecError::new(
            format!("{field}.index"),
            format!("{} is not a syscall argument (0 to 5)", arg.index),
        ));
    }
    let (op, value) = match arg.op.as_str() {
        "SCMP_CMP_EQ" => (Op::Eq, arg.value),
        "SCMP_CMP_NE" => (Op::Ne, arg.value),
        "SCMP_CMP_LT" => (Op::Lt, arg.value),
        "SCMP_CMP_LE" => (Op::Le, arg.value),
        "SCMP_CMP_GT" => (Op::Gt, arg.value),
        "SCMP_CMP_GE" => (Op::Ge, arg.value),
        "SCMP_CMP_MASKED_EQ" => (Op::MaskedEq(arg.value), arg.value_two.unwrap_or(0)),
        other => {
            return Err(SpecError::new(
                format!("{field}.op"),
                format!("unknown operator {other:?} (SCMP_CMP_EQ, NE, LT, LE, GT, GE, MASKED_EQ)"),
            ))
        }
    };
    Ok(Condition {
        index: arg.index as u8,
        op,
        value,
    })
}

/// The rules of one `syscalls[]` entry: each name with the conditions, split into one rule
/// per condition when an argument is compared more than once.
fn entry_rules(entry: &SeccompSyscall, field: &str) -> Result<Vec<Rule>, SpecError> {
    let action = action(&entry.action, entry.errno_ret, &format!("{field}.action"))?;
    if entry.names.is_empty() {
        return Err(SpecError::new(format!("{field}.names"), "empty"));
    }
    let conditions: Vec<Condition> = entry
        .args
        .iter()
        .enumerate()
        .map(|(i, a)| condition(a, &format!("{field}.args[{i}]")))
        .collect::<Result<_, _>>()?;
    let mut indexes: Vec<u8> = conditions.iter().map(|c| c.index).collect();
    indexes.sort_unstable();
    let repeated = indexes.windows(2).any(|w| w[0] == w[1]);
    let sets: Vec<Vec<Condition>> = if repeated {
        conditions.iter().map(|c| vec![*c]).collect()
    } else {
        vec![conditions]
    };
    let mut rules = Vec::new();
    for (i, name) in entry.names.iter().enumerate() {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(SpecError::new(
                format!("{field}.names[{i}]"),
                format!("{name:?} is not a syscall name"),
            ));
        }
        for set in &sets {
            rules.push(Rule {
                name: name.clone(),
                conditions: set.clone(),
                action,
            });
        }
    }
    Ok(rules)
}

/// Checks and maps a `linux.seccomp` object (see the module doc).
pub fn plan(seccomp: &Seccomp) -> Result<Profile, SpecError> {
    const FIELD: &str = "linux.seccomp";
    if seccomp
        .listener_path
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(SpecError::new(
            format!("{FIELD}.listenerPath"),
            "not supported: user notification needs a listener outside the VM",
        ));
    }
    if seccomp
        .listener_metadata
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err(SpecError::new(
            format!("{FIELD}.listenerMetadata"),
            "not supported: user notification needs a listener outside the VM",
        ));
    }
    let default_action = action(
        &seccomp.default_action,
        seccomp.default_errno_ret,
        &format!("{FIELD}.defaultAction"),
    )?;
    let mut flags = 0;
    for (i, name) in seccomp.flags.iter().enumerate() {
        flags |= flag(name, &format!("{FIELD}.flags[{i}]"))?;
    }
    let native = protocol::seccomp_profile::oci_arch(std::env::consts::ARCH);
    if !seccomp.architectures.is_empty()
        && !seccomp
            .architectures
            .iter()
            .any(|a| Some(a.as_str()) == native)
    {
        return Err(SpecError::new(
            format!("{FIELD}.architectures"),
            format!(
                "{:?} does not include this VM's architecture {}",
                seccomp.architectures,
                native.unwrap_or(std::env::consts::ARCH)
            ),
        ));
    }
    let mut rules = Vec::new();
    for (i, entry) in seccomp.syscalls.iter().enumerate() {
        rules.extend(entry_rules(entry, &format!("{FIELD}.syscalls[{i}]"))?);
    }
    Ok(Profile {
        default_action,
        rules,
        flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::SeccompArg;

    fn entry(names: &[&str], action: &str, args: Vec<SeccompArg>) -> SeccompSyscall {
        SeccompSyscall {
            names: names.iter().map(|n| n.to_string()).collect(),
            action: action.into(),
            errno_ret: None,
            args,
        }
    }

    fn arg(index: u32, value: u64, value_two: Option<u64>, op: &str) -> SeccompArg {
        SeccompArg {
            index,
            value,
            value_two,
            op: op.into(),
        }
    }

    fn profile(syscalls: Vec<SeccompSyscall>) -> Seccomp {
        Seccomp {
            default_action: "SCMP_ACT_ERRNO".into(),
            syscalls,
            ..Default::default()
        }
    }

    #[test]
    fn test_plan_maps_actions_and_operators() {
        let mut p = profile(vec![
            entry(&["read", "write"], "SCMP_ACT_ALLOW", vec![]),
            entry(
                &["clone"],
                "SCMP_ACT_ALLOW",
                vec![arg(0, 0x7E02_0000, None, "SCMP_CMP_MASKED_EQ")],
            ),
            entry(
                &["kill"],
                "SCMP_ACT_KILL",
                vec![arg(1, 9, None, "SCMP_CMP_EQ")],
            ),
        ]);
        p.syscalls[2].errno_ret = Some(5);
        p.default_errno_ret = Some(38);
        let plan = plan(&p).unwrap();
        assert_eq!(plan.default_action, Action::Errno(38));
        assert_eq!(plan.rules.len(), 4);
        assert_eq!(plan.rules[1].name, "write");
        assert_eq!(
            plan.rules[2].conditions,
            [Condition {
                index: 0,
                op: Op::MaskedEq(0x7E02_0000),
                value: 0
            }]
        );
        assert_eq!(plan.rules[3].action, Action::KillThread);
        for (oci, ours) in [
            ("SCMP_ACT_KILL_PROCESS", Action::KillProcess),
            ("SCMP_ACT_TRAP", Action::Trap),
            ("SCMP_ACT_LOG", Action::Log),
            ("SCMP_ACT_TRACE", Action::Trace(1)),
            ("SCMP_ACT_ERRNO", Action::Errno(1)),
        ] {
            assert_eq!(action(oci, None, "f").unwrap(), ours);
        }
        let masked = condition(&arg(2, 0xff, Some(0x10), "SCMP_CMP_MASKED_EQ"), "f").unwrap();
        assert_eq!((masked.op, masked.value), (Op::MaskedEq(0xff), 0x10));
    }

    #[test]
    fn test_plan_splits_repeated_argument_conditions() {
        let p = profile(vec![entry(
            &["personality"],
            "SCMP_ACT_ALLOW",
            vec![
                arg(0, 0, None, "SCMP_CMP_EQ"),
                arg(0, 8, None, "SCMP_CMP_EQ"),
            ],
        )]);
        let plan = plan(&p).unwrap();
        assert_eq!(plan.rules.len(), 2);
        assert!(plan.rules.iter().all(|r| r.conditions.len() == 1));
    }

    #[test]
    fn test_plan_refuses_what_it_cannot_do_by_field() {
        let mut p = profile(vec![entry(&["read"], "SCMP_ACT_NOTIFY", vec![])]);
        let e = plan(&p).unwrap_err();
        assert_eq!(e.field, "linux.seccomp.syscalls[0].action");
        assert!(e.problem.contains("SCMP_ACT_NOTIFY"));
        p.syscalls[0].action = "SCMP_ACT_ALLOW".into();
        p.listener_path = Some("/run/seccomp.sock".into());
        assert_eq!(plan(&p).unwrap_err().field, "linux.seccomp.listenerPath");
        p.listener_path = None;
        p.flags = vec!["SECCOMP_FILTER_FLAG_NEW_LISTENER".into()];
        assert_eq!(plan(&p).unwrap_err().field, "linux.seccomp.flags[0]");
        p.flags = vec![
            "SECCOMP_FILTER_FLAG_TSYNC".into(),
            "SECCOMP_FILTER_FLAG_LOG".into(),
        ];
        assert_eq!(
            plan(&p).unwrap().flags,
            libc::SECCOMP_FILTER_FLAG_LOG as u32
        );
        p.syscalls[0].args = vec![arg(6, 0, None, "SCMP_CMP_EQ")];
        assert_eq!(
            plan(&p).unwrap_err().field,
            "linux.seccomp.syscalls[0].args[0].index"
        );
        p.syscalls[0].args = vec![arg(0, 0, None, "SCMP_CMP_ALMOST")];
        assert_eq!(
            plan(&p).unwrap_err().field,
            "linux.seccomp.syscalls[0].args[0].op"
        );
        p.syscalls[0].args.clear();
        p.default_action = "SCMP_ACT_SHRUG".into();
        assert_eq!(plan(&p).unwrap_err().field, "linux.seccomp.defaultAction");
        p.default_action = "SCMP_ACT_ERRNO".into();
        p.architectures = vec!["SCMP_ARCH_S390X".into()];
        assert_eq!(plan(&p).unwrap_err().field, "linux.seccomp.architectures");
        p.architectures.push(
            protocol::seccomp_profile::oci_arch(std::env::consts::ARCH)
                .unwrap()
                .into(),
        );
        plan(&p).unwrap();
    }
}
