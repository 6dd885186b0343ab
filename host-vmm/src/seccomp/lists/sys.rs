//! System calls that differ between x86_64 and aarch64: aarch64 has only the `*at`,
//! `p*` and `*2` forms; glibc on x86_64 still uses some of the old ones (`poll`,
//! `epoll_wait`, `unlink`, `rmdir`).

use libc::*;

#[cfg(target_arch = "x86_64")]
mod arch {
    use libc::*;
    pub const POLL: &[i64] = &[SYS_poll, SYS_ppoll];
    pub const EPOLL_WAIT: &[i64] = &[SYS_epoll_wait, SYS_epoll_pwait];
    pub const OPEN: &[i64] = &[SYS_open, SYS_openat];
    pub const STAT: &[i64] = &[SYS_stat, SYS_fstat, SYS_lstat, SYS_newfstatat, SYS_statx];
    pub const UNLINK: &[i64] = &[SYS_unlink, SYS_rmdir, SYS_unlinkat];
    pub const RENAME: &[i64] = &[SYS_rename, SYS_renameat, SYS_renameat2];
}

#[cfg(target_arch = "aarch64")]
mod arch {
    use libc::*;
    pub const POLL: &[i64] = &[SYS_ppoll];
    pub const EPOLL_WAIT: &[i64] = &[SYS_epoll_pwait];
    pub const OPEN: &[i64] = &[SYS_openat];
    pub const STAT: &[i64] = &[SYS_fstat, SYS_newfstatat, SYS_statx];
    pub const UNLINK: &[i64] = &[SYS_unlinkat];
    pub const RENAME: &[i64] = &[SYS_renameat, SYS_renameat2];
}

pub use arch::*;

/// `sleep`: glibc uses clock_nanosleep; a call a signal interrupted restarts.
pub const SLEEP: &[i64] = &[SYS_clock_nanosleep, SYS_nanosleep, SYS_restart_syscall];
