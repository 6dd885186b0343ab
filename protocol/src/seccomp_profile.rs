//! Docker's default seccomp profile, as data: the `linux.seccomp` of a container started
//! without a bundle (`host-vmm run -- CMD`, `create -- CMD`). host-vmm writes it into the
//! specs it builds; guest-agent's default spec holds the same (a test compares them).
//!
//! Written from Docker's documented profile (moby `profiles/seccomp/default.json`, the
//! 2024 lists): an allow-list with `SCMP_ACT_ERRNO`/`EPERM` for everything else, a few
//! argument-conditioned rules (`socket` without `AF_VSOCK`, `personality` with the five
//! harmless personas, `clone` without namespace flags), and groups that only apply to a
//! process holding a capability, or only on some architectures. [`profile`] resolves those
//! conditions for a capability set and an architecture, as Docker does when it builds a
//! container's spec. Kernel-version conditions (`minKernel 4.8` for `ptrace`) always hold
//! for the guest's 6.12 kernel.

/// `defaultAction` of the profile.
pub const DEFAULT_ACTION: &str = "SCMP_ACT_ERRNO";
/// `defaultErrnoRet`: EPERM.
pub const DEFAULT_ERRNO: u32 = 1;

/// `CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
/// CLONE_NEWPID | CLONE_NEWNET`: the namespace flags a `clone` without `CAP_SYS_ADMIN` must
/// not carry (its rule is `(flags & mask) == 0`).
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// One argument condition: OCI's `{index, value, valueTwo, op}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArgCondition {
    pub index: u32,
    pub value: u64,
    pub value_two: u64,
    /// `SCMP_CMP_*`.
    pub op: &'static str,
}

/// A rule of the resolved profile: OCI's `linux.seccomp.syscalls[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallRule {
    pub names: &'static [&'static str],
    /// `SCMP_ACT_*`.
    pub action: &'static str,
    pub errno_ret: Option<u32>,
    pub args: &'static [ArgCondition],
}

/// A group of the profile with its conditions.
struct Group {
    names: &'static [&'static str],
    action: &'static str,
    errno_ret: Option<u32>,
    args: &'static [ArgCondition],
    /// Applies only when the process has one of these capabilities (empty: always).
    caps: &'static [&'static str],
    /// Does not apply when the process has one of these capabilities.
    not_caps: &'static [&'static str],
    /// Applies only on these architectures (Rust's names; empty: all).
    arches: &'static [&'static str],
}

const ALLOW: &str = "SCMP_ACT_ALLOW";

const fn allow(names: &'static [&'static str]) -> Group {
    Group {
        names,
        action: ALLOW,
        errno_ret: None,
        args: &[],
        caps: &[],
        not_caps: &[],
        arches: &[],
    }
}

const fn allow_with_cap(names: &'static [&'static str], cap: &'static [&'static str]) -> Group {
    Group {
        caps: cap,
        ..allow(names)
    }
}

const fn arg_eq(index: u32, value: u64) -> ArgCondition {
    ArgCondition {
        index,
        value,
        value_two: 0,
        op: "SCMP_CMP_EQ",
    }
}

/// Syscalls every container may make.
#[rustfmt::skip]
const BASE: &[&str] = &[
    "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "capget", "capset",
    "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
    "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep",
    "clock_nanosleep_time64", "close", "close_range", "connect", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old",
    "epoll_pwait", "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
    "execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2", "fadvise64",
    "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat", "fchown",
    "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
    "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs",
    "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex", "futex_time64", "futex_waitv",
    "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32",
    "geteuid", "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer",
    "getpeername", "getpgid", "getpgrp", "getpid", "getppid", "getpriority", "getrandom",
    "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
    "getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area", "gettid",
    "gettimeofday", "getuid", "getuid32", "getxattr", "inotify_add_watch", "inotify_init",
    "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl", "io_destroy", "io_getevents",
    "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
    "io_submit", "io_uring_enter", "io_uring_register", "io_uring_setup", "ipc", "kill",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "lchown",
    "lchown32", "lgetxattr", "link", "linkat", "listen", "listxattr", "llistxattr", "_llseek",
    "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "madvise", "membarrier",
    "memfd_create", "memfd_secret", "mincore", "mkdir", "mkdirat", "mknod", "mknodat", "mlock",
    "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
    "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64",
    "mq_unlink", "mremap", "msgctl", "msgget", "msgrcv", "msgsnd", "msync", "munlock",
    "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect",
    "open", "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl",
    "pread64", "preadv", "preadv2", "prlimit64", "process_mrelease", "pselect6",
    "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg",
    "remap_file_pages", "removexattr", "rename", "renameat", "renameat2", "restart_syscall",
    "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
    "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
    "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
    "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
    "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send",
    "sendfile", "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
    "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups", "setgroups32", "setitimer",
    "setpgid", "setpriority", "setregid", "setregid32", "setresgid", "setresgid32",
    "setresuid", "setresuid32", "setreuid", "setreuid32", "setrlimit", "set_robust_list",
    "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
    "setxattr", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack", "signalfd",
    "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
    "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
    "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64",
    "timerfd_create", "timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
    "timerfd_settime64", "times", "tkill", "truncate", "truncate64", "ugetrlimit", "umask",
    "uname", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes", "vfork",
    "vmsplice", "wait4", "waitid", "waitpid", "write", "writev",
];

/// What `CAP_SYS_ADMIN` adds (namespaces, mounts, ...).
#[rustfmt::skip]
const SYS_ADMIN: &[&str] = &[
    "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
    "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree", "perf_event_open",
    "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
    "umount2", "unshare",
];

/// The profile, in Docker's order.
const GROUPS: &[Group] = &[
    allow(BASE),
    allow(&["process_vm_readv", "process_vm_writev", "ptrace"]),
    // AF_VSOCK (40) sockets are refused.
    Group {
        args: &[ArgCondition {
            index: 0,
            value: 40,
            value_two: 0,
            op: "SCMP_CMP_NE",
        }],
        ..allow(&["socket"])
    },
    // PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32, and the query 0xffffffff.
    Group {
        args: &[arg_eq(0, 0)],
        ..allow(&["personality"])
    },
    Group {
        args: &[arg_eq(0, 8)],
        ..allow(&["personality"])
    },
    Group {
        args: &[arg_eq(0, 0x20000)],
        ..allow(&["personality"])
    },
    Group {
        args: &[arg_eq(0, 0x20008)],
        ..allow(&["personality"])
    },
    Group {
        args: &[arg_eq(0, 0xffff_ffff)],
        ..allow(&["personality"])
    },
    Group {
        arches: &["aarch64"],
        ..allow(&[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ])
    },
    Group {
        arches: &["x86_64"],
        ..allow(&["arch_prctl"])
    },
    Group {
        arches: &["x86_64"],
        ..allow(&["modify_ldt"])
    },
    allow_with_cap(&["open_by_handle_at"], &["CAP_DAC_READ_SEARCH"]),
    allow_with_cap(SYS_ADMIN, &["CAP_SYS_ADMIN"]),
    // Without CAP_SYS_ADMIN: clone without namespace flags; clone3 (whose flags a filter
    // cannot read) answers ENOSYS so libc falls back to clone.
    Group {
        args: &[ArgCondition {
            index: 0,
            value: CLONE_NAMESPACE_FLAGS,
            value_two: 0,
            op: "SCMP_CMP_MASKED_EQ",
        }],
        not_caps: &["CAP_SYS_ADMIN"],
        ..allow(&["clone"])
    },
    Group {
        action: "SCMP_ACT_ERRNO",
        errno_ret: Some(38),
        not_caps: &["CAP_SYS_ADMIN"],
        ..allow(&["clone3"])
    },
    allow_with_cap(&["reboot"], &["CAP_SYS_BOOT"]),
    allow_with_cap(&["chroot"], &["CAP_SYS_CHROOT"]),
    allow_with_cap(
        &["delete_module", "init_module", "finit_module"],
        &["CAP_SYS_MODULE"],
    ),
    allow_with_cap(&["acct"], &["CAP_SYS_PACCT"]),
    allow_with_cap(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        &["CAP_SYS_PTRACE"],
    ),
    allow_with_cap(&["iopl", "ioperm"], &["CAP_SYS_RAWIO"]),
    allow_with_cap(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        &["CAP_SYS_TIME"],
    ),
    allow_with_cap(&["vhangup"], &["CAP_SYS_TTY_CONFIG"]),
    allow_with_cap(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        &["CAP_SYS_NICE"],
    ),
    allow_with_cap(&["syslog"], &["CAP_SYSLOG"]),
    allow_with_cap(&["bpf"], &["CAP_BPF"]),
    allow_with_cap(&["perf_event_open"], &["CAP_PERFMON"]),
];

/// The OCI architecture name of Rust's `arch` (`std::env::consts::ARCH`), if the profile
/// supports it.
pub fn oci_arch(arch: &str) -> Option<&'static str> {
    match arch {
        "x86_64" => Some("SCMP_ARCH_X86_64"),
        "aarch64" => Some("SCMP_ARCH_AARCH64"),
        _ => None,
    }
}

/// The profile's rules for a process with capabilities `caps` (the bounding set, as Docker
/// uses) on `arch` (Rust's name), in order.
pub fn profile(caps: &[&str], arch: &str) -> Vec<SyscallRule> {
    let has = |list: &[&str]| list.iter().any(|c| caps.contains(c));
    GROUPS
        .iter()
        .filter(|g| g.caps.is_empty() || has(g.caps))
        .filter(|g| !has(g.not_caps))
        .filter(|g| g.arches.is_empty() || g.arches.contains(&arch))
        .map(|g| SyscallRule {
            names: g.names,
            action: g.action,
            errno_ret: g.errno_ret,
            args: g.args,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oci_defaults::DEFAULT_CAPS;

    fn allowed(rules: &[SyscallRule], name: &str) -> bool {
        rules
            .iter()
            .any(|r| r.action == ALLOW && r.args.is_empty() && r.names.contains(&name))
    }

    #[test]
    fn test_default_caps_profile() {
        let rules = profile(&DEFAULT_CAPS, "x86_64");
        for name in ["read", "execve", "mknod", "chroot", "arch_prctl", "ptrace"] {
            assert!(allowed(&rules, name), "{name}");
        }
        for name in [
            "unshare",
            "mount",
            "setns",
            "reboot",
            "swapon",
            "bpf",
            "kexec_load",
            "clone3",
        ] {
            assert!(!allowed(&rules, name), "{name}");
        }
        // clone only without namespace flags; clone3 says ENOSYS.
        let clone: Vec<_> = rules.iter().filter(|r| r.names == ["clone"]).collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].args[0].op, "SCMP_CMP_MASKED_EQ");
        assert_eq!(clone[0].args[0].value, 0x7E02_0000);
        let clone3 = rules.iter().find(|r| r.names == ["clone3"]).unwrap();
        assert_eq!(
            (clone3.action, clone3.errno_ret),
            ("SCMP_ACT_ERRNO", Some(38))
        );
        assert_eq!(
            rules.iter().filter(|r| r.names == ["personality"]).count(),
            5
        );
        assert!(!rules.iter().any(|r| r.names.contains(&"set_tls")));
    }

    #[test]
    fn test_sys_admin_profile_allows_namespaces() {
        let rules = profile(&["CAP_SYS_ADMIN"], "aarch64");
        for name in ["unshare", "mount", "clone", "clone3", "set_tls"] {
            assert!(allowed(&rules, name), "{name}");
        }
        assert!(!rules.iter().any(|r| r.names.contains(&"arch_prctl")));
        assert!(!allowed(&rules, "chroot"));
    }

    #[test]
    fn test_oci_arch() {
        assert_eq!(oci_arch("x86_64"), Some("SCMP_ARCH_X86_64"));
        assert_eq!(oci_arch("aarch64"), Some("SCMP_ARCH_AARCH64"));
        assert_eq!(oci_arch("mips"), None);
    }
}
