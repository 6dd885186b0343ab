//! What a container gets when its spec says nothing, agreed by both ends: host-vmm writes
//! these into the specs it builds, and guest-agent falls back to them.

/// `PATH` of a container whose spec sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set, used when a process names none.
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Paths hidden from containers (runc's list).
pub const MASKED_PATHS: [&str; 9] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
];

/// Paths made read-only in containers (runc's list).
pub const READONLY_PATHS: [&str; 6] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
    "/proc/scsi",
];

/// A mount of the default spec: (destination, type = source, options).
pub type DefaultMount = (&'static str, &'static str, &'static [&'static str]);

/// The mounts of a container started without a bundle (what `runc spec` writes, without
/// the cgroup mount): proc, a tmpfs /dev with devpts, shm and mqueue, read-only sysfs.
pub const DEFAULT_MOUNTS: [DefaultMount; 6] = [
    ("/proc", "proc", &["nosuid", "noexec", "nodev"]),
    (
        "/dev",
        "tmpfs",
        &["nosuid", "strictatime", "mode=755", "size=65536k"],
    ),
    (
        "/dev/pts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
    ),
    (
        "/dev/shm",
        "tmpfs",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    ),
    ("/dev/mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
    ("/sys", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
];
