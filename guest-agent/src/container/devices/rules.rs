//! Device rules: OCI's `linux.resources.devices` and `linux.devices` turned into one ordered
//! list, with runc's default allow-list appended. Pure.
//!
//! Semantics (runc's): everything is denied unless a rule allows it; the rules are read in
//! order and the last one that matches an access decides. An allow rule matches when it
//! grants every access asked for (`rw` open needs a rule with at least `rw`); a deny rule
//! matches when it takes away any of them.

use crate::container::spec::{DeviceCgroupRule, LinuxDevice, SpecError};

/// Largest major number (12 bits) and minor number (20 bits) of a Linux `dev_t`.
pub const MAX_MAJOR: i64 = 0xfff;
pub const MAX_MINOR: i64 = 0xf_ffff;

/// `BPF_DEVCG_ACC_*`: the access bits the kernel passes the program.
pub const ACC_MKNOD: u32 = 1;
pub const ACC_READ: u32 = 2;
pub const ACC_WRITE: u32 = 4;
pub const ACC_ALL: u32 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// `BPF_DEVCG_DEV_*`: the device type the kernel passes the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevType {
    /// `a`: any type.
    All,
    Block,
    Char,
}

impl DevType {
    /// The kernel's number (`BPF_DEVCG_DEV_BLOCK` 1, `BPF_DEVCG_DEV_CHAR` 2); `All` has none.
    pub fn kernel(self) -> Option<u32> {
        match self {
            Self::All => None,
            Self::Block => Some(1),
            Self::Char => Some(2),
        }
    }
}

/// One rule; `None` for a major or minor is the wildcard `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    pub kind: DevType,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// `ACC_*` bits.
    pub access: u32,
}

impl DeviceRule {
    const fn allow_char(major: u32, minor: Option<u32>, access: u32) -> Self {
        Self {
            allow: true,
            kind: DevType::Char,
            major: Some(major),
            minor,
            access,
        }
    }
}

/// The standard nodes every container's `/dev` gets: name, major, minor (all character
/// devices, mode 0666).
pub const DEFAULT_NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// runc's default allow-list: `mknod` of any node (so the image's own `/dev` entries and
/// `linux.devices` can be created, yet a node made this way opens only if a rule allows it),
/// the standard nodes, `/dev/ptmx` (5:2) and the pty slaves (136:*).
pub fn default_rules() -> Vec<DeviceRule> {
    let mut rules = vec![
        DeviceRule {
            allow: true,
            kind: DevType::Char,
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
        DeviceRule {
            allow: true,
            kind: DevType::Block,
            major: None,
            minor: None,
            access: ACC_MKNOD,
        },
    ];
    rules.extend(
        DEFAULT_NODES
            .iter()
            .map(|&(_, major, minor)| DeviceRule::allow_char(major, Some(minor), ACC_ALL)),
    );
    rules.push(DeviceRule::allow_char(5, Some(2), ACC_ALL));
    rules.push(DeviceRule::allow_char(136, None, ACC_ALL));
    rules
}

/// Parses an access string such as `rwm` (empty or absent: all three).
pub fn parse_access(access: Option<&str>, field: &str) -> Result<u32, SpecError> {
    let text = access.unwrap_or("");
    if text.is_empty() {
        return Ok(ACC_ALL);
    }
    let mut bits = 0;
    for c in text.chars() {
        bits |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => {
                return Err(SpecError::new(
                    field,
                    format!("{text:?} holds {c:?}: only r, w and m are allowed"),
                ))
            }
        };
    }
    Ok(bits)
}

/// A major or minor number: absent or -1 is the wildcard.
fn number(value: Option<i64>, max: i64, field: &str) -> Result<Option<u32>, SpecError> {
    match value {
        None | Some(-1) => Ok(None),
        Some(n) if (0..=max).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(SpecError::new(
            field,
            format!("{n} is not -1 (any) or a number from 0 to {max}"),
        )),
    }
}

/// One `linux.resources.devices[]` entry; `field` names it in errors.
pub fn cgroup_rule(rule: &DeviceCgroupRule, field: &str) -> Result<DeviceRule, SpecError> {
    let kind = match rule.kind.as_deref().unwrap_or("a") {
        "a" => DevType::All,
        "b" => DevType::Block,
        "c" => DevType::Char,
        other => {
            return Err(SpecError::new(
                format!("{field}.type"),
                format!("{other:?} is not a (all), b (block) or c (char)"),
            ))
        }
    };
    Ok(DeviceRule {
        allow: rule.allow,
        kind,
        major: number(rule.major, MAX_MAJOR, &format!("{field}.major"))?,
        minor: number(rule.minor, MAX_MINOR, &format!("{field}.minor"))?,
        access: parse_access(rule.access.as_deref(), &format!("{field}.access"))?,
    })
}

/// The allow rule a `linux.devices[]` node gets (`rwm`, as runc gives it); `None` for a FIFO,
/// which the device cgroup does not govern.
pub fn node_rule(device: &LinuxDevice, field: &str) -> Result<Option<DeviceRule>, SpecError> {
    let kind = match device.kind.as_str() {
        "c" | "u" => DevType::Char,
        "b" => DevType::Block,
        "p" => return Ok(None),
        other => {
            return Err(SpecError::new(
                format!("{field}.type"),
                format!("{other:?} is not c, u (char), b (block) or p (fifo)"),
            ))
        }
    };
    let exact = |value: i64, max: i64, name: &str| match number(Some(value), max, name)? {
        Some(n) => Ok(n),
        None => Err(SpecError::new(
            name,
            "a device node needs an exact number, not -1",
        )),
    };
    Ok(Some(DeviceRule {
        allow: true,
        kind,
        major: Some(exact(device.major, MAX_MAJOR, &format!("{field}.major"))?),
        minor: Some(exact(device.minor, MAX_MINOR, &format!("{field}.minor"))?),
        access: ACC_ALL,
    }))
}

/// The container's whole list, in the order the program applies it (last match wins): the
/// spec's `linux.resources.devices`, an allow rule per `linux.devices` node, then the
/// default allow-list (as runc orders them, so a spec cannot take `/dev/null` away).
pub fn container_rules(
    cgroup_rules: &[DeviceCgroupRule],
    nodes: &[LinuxDevice],
) -> Result<Vec<DeviceRule>, SpecError> {
    let mut rules = Vec::new();
    for (i, rule) in cgroup_rules.iter().enumerate() {
        rules.push(cgroup_rule(rule, &format!("linux.resources.devices[{i}]"))?);
    }
    for (i, node) in nodes.iter().enumerate() {
        if let Some(rule) = node_rule(node, &format!("linux.devices[{i}]"))? {
            rules.push(rule);
        }
    }
    rules.extend(default_rules());
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cg(allow: bool, kind: Option<&str>, major: Option<i64>, access: &str) -> DeviceCgroupRule {
        DeviceCgroupRule {
            allow,
            kind: kind.map(Into::into),
            major,
            minor: None,
            access: Some(access.into()),
        }
    }

    #[test]
    fn test_cgroup_rule_parses_and_names_fields() {
        let r = cgroup_rule(&cg(false, None, None, "rwm"), "x").unwrap();
        assert_eq!(
            r,
            DeviceRule {
                allow: false,
                kind: DevType::All,
                major: None,
                minor: None,
                access: ACC_ALL
            }
        );
        let r = cgroup_rule(&cg(true, Some("b"), Some(254), "r"), "x").unwrap();
        assert_eq!(
            (r.kind, r.major, r.access),
            (DevType::Block, Some(254), ACC_READ)
        );
        let e = cgroup_rule(&cg(true, Some("z"), None, "r"), "d[0]").unwrap_err();
        assert_eq!(e.field, "d[0].type");
        let e = cgroup_rule(&cg(true, None, Some(4096), "r"), "d[0]").unwrap_err();
        assert_eq!(
            e.to_string(),
            "d[0].major: 4096 is not -1 (any) or a number from 0 to 4095"
        );
        let e = cgroup_rule(&cg(true, None, None, "rx"), "d[1]").unwrap_err();
        assert_eq!(e.field, "d[1].access");
    }

    #[test]
    fn test_node_rule() {
        let dev = |kind: &str, major, minor| LinuxDevice {
            path: "/dev/x".into(),
            kind: kind.into(),
            major,
            minor,
            file_mode: None,
            uid: None,
            gid: None,
        };
        let r = node_rule(&dev("u", 10, 200), "n").unwrap().unwrap();
        assert_eq!(
            (r.kind, r.major, r.minor),
            (DevType::Char, Some(10), Some(200))
        );
        assert!(node_rule(&dev("p", 0, 0), "n").unwrap().is_none());
        assert_eq!(
            node_rule(&dev("c", -1, 0), "n").unwrap_err().field,
            "n.major"
        );
        assert_eq!(node_rule(&dev("x", 1, 0), "n").unwrap_err().field, "n.type");
    }

    #[test]
    fn test_container_rules_order() {
        let rules = container_rules(&[cg(false, None, None, "rwm")], &[]).unwrap();
        assert!(!rules[0].allow);
        assert_eq!(rules.len(), 1 + default_rules().len());
        assert_eq!(rules[1..], default_rules()[..]);
    }
}
