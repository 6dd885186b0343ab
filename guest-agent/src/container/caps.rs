//! Linux capabilities: names, sets as bit masks, and applying them to the current process
//! with `prctl` and `capset` (no crate: a few system calls).
//!
//! The order the helper applies them in (as runc does), in [`apply`]: drop what is not in the
//! bounding set (needs `CAP_SETPCAP`, so before changing user), then, after the user change,
//! set effective, permitted and inheritable with `capset`, then raise the ambient ones.

pub use protocol::oci_defaults::DEFAULT_CAPS;
use serde::{Deserialize, Serialize};

use super::spec::SpecError;

/// Capability names by number (`linux/capability.h`, up to `CAP_LAST_CAP` of Linux 6.12).
pub const CAP_NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// A set of capabilities: bit `n` is capability number `n`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The number of a `CAP_*` name (the `CAP_` prefix may be left out, any case).
    pub fn number(name: &str) -> Option<u32> {
        let upper = name.to_ascii_uppercase();
        let full = if upper.starts_with("CAP_") {
            upper
        } else {
            format!("CAP_{upper}")
        };
        CAP_NAMES
            .iter()
            .position(|n| *n == full)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The set of the named capabilities; `field` names the list in errors (`field[i]`).
    pub fn from_names<S: AsRef<str>>(names: &[S], field: &str) -> Result<Self, SpecError> {
        let mut set = CapSet(0);
        for (i, name) in names.iter().enumerate() {
            let name = name.as_ref();
            let n = Self::number(name).ok_or_else(|| {
                SpecError::new(
                    format!("{field}[{i}]"),
                    format!("unknown capability {name:?}"),
                )
            })?;
            set.0 |= 1 << n;
        }
        Ok(set)
    }

    /// Docker's default set.
    pub fn docker_default() -> Self {
        // The names are constants from CAP_NAMES: from_names cannot fail on them.
        Self::from_names(&DEFAULT_CAPS, "default").unwrap_or_default()
    }

    pub fn contains(self, cap: u32) -> bool {
        cap < 64 && self.0 & (1 << cap) != 0
    }

    /// The capability numbers in the set, ascending.
    pub fn iter(self) -> impl Iterator<Item = u32> {
        (0..64).filter(move |&c| self.contains(c))
    }

    /// The low and high 32-bit words `capset` takes.
    pub fn words(self) -> [u32; 2] {
        // Truncation intended: the two halves of the mask.
        [self.0 as u32, (self.0 >> 32) as u32]
    }
}

/// The five sets of one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapPlan {
    pub bounding: CapSet,
    pub effective: CapSet,
    pub permitted: CapSet,
    pub inheritable: CapSet,
    pub ambient: CapSet,
}

impl CapPlan {
    /// The plan for a `process.capabilities` (already validated), or Docker's defaults in
    /// bounding, effective and permitted when it is absent.
    pub fn from_spec(caps: Option<&super::spec::Capabilities>) -> Result<Self, SpecError> {
        let Some(caps) = caps else {
            let d = CapSet::docker_default();
            return Ok(Self {
                bounding: d,
                effective: d,
                permitted: d,
                inheritable: CapSet(0),
                ambient: CapSet(0),
            });
        };
        let set = |list: &[String], name: &str| {
            CapSet::from_names(list, &format!("process.capabilities.{name}"))
        };
        Ok(Self {
            bounding: set(&caps.bounding, "bounding")?,
            effective: set(&caps.effective, "effective")?,
            permitted: set(&caps.permitted, "permitted")?,
            inheritable: set(&caps.inheritable, "inheritable")?,
            ambient: set(&caps.ambient, "ambient")?,
        })
    }
}

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The highest capability number the running kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Drops every capability not in `bounding` from the bounding set. Needs `CAP_SETPCAP`.
pub fn drop_bounding(bounding: CapSet) -> std::io::Result<()> {
    for cap in 0..=last_cap() {
        if bounding.contains(cap) {
            continue;
        }
        // SAFETY: PR_CAPBSET_DROP takes a capability number and touches no memory.
        let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            // EINVAL: a number this kernel does not know; nothing to drop.
            if err.raw_os_error() != Some(libc::EINVAL) {
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Sets the effective, permitted and inheritable sets of the calling thread, then raises the
/// ambient ones (which must be in permitted and inheritable).
pub fn set_process_caps(plan: &CapPlan) -> std::io::Result<()> {
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let (e, p, i) = (
        plan.effective.words(),
        plan.permitted.words(),
        plan.inheritable.words(),
    );
    let data = [0, 1].map(|w| CapData {
        effective: e[w],
        permitted: p[w],
        inheritable: i[w],
    });
    // SAFETY: capset reads one header and two data structs, which live on this stack frame
    // and have the kernel's layout (repr(C), version 3).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: PR_CAP_AMBIENT_CLEAR_ALL takes no pointers.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
    }
    for cap in plan.ambient.iter() {
        // SAFETY: PR_CAP_AMBIENT_RAISE takes a capability number and touches no memory.
        let rc = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                libc::c_ulong::from(cap),
                0,
                0,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cap_numbers_match_the_kernel_header() {
        assert_eq!(CapSet::number("CAP_CHOWN"), Some(0));
        assert_eq!(CapSet::number("CAP_NET_BIND_SERVICE"), Some(10));
        assert_eq!(CapSet::number("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(CapSet::number("CAP_MKNOD"), Some(27));
        assert_eq!(CapSet::number("CAP_AUDIT_WRITE"), Some(29));
        assert_eq!(CapSet::number("CAP_SETFCAP"), Some(31));
        assert_eq!(CapSet::number("CAP_CHECKPOINT_RESTORE"), Some(40));
        assert_eq!(CapSet::number("sys_chroot"), Some(18));
        assert_eq!(CapSet::number("CAP_NOPE"), None);
    }

    #[test]
    fn test_docker_default_bits() {
        // CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
        // NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE 29, SETFCAP 31.
        let want: u64 = [0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31]
            .iter()
            .map(|b| 1u64 << b)
            .sum();
        assert_eq!(CapSet::docker_default().0, want);
        assert_eq!(CapSet::docker_default().0, 0xa804_25fb);
        assert!(!CapSet::docker_default().contains(21));
    }

    #[test]
    fn test_words_split_high_caps() {
        let set = CapSet::from_names(&["CAP_BPF", "CAP_CHOWN"], "x").unwrap();
        assert_eq!(set.words(), [1, 1 << (39 - 32)]);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 39]);
    }

    #[test]
    fn test_from_names_reports_index() {
        let err = CapSet::from_names(&["CAP_KILL", "CAP_WHAT"], "p.caps.bounding").unwrap_err();
        assert_eq!(
            err.to_string(),
            "p.caps.bounding[1]: unknown capability \"CAP_WHAT\""
        );
    }

    #[test]
    fn test_plan_defaults_without_capabilities_object() {
        let plan = CapPlan::from_spec(None).unwrap();
        assert_eq!(plan.bounding, CapSet::docker_default());
        assert_eq!(plan.effective, plan.permitted);
        assert_eq!(plan.ambient, CapSet(0));
    }
}
