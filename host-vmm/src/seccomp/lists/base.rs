//! What every thread needs: memory (never executable), futexes, its own exit, signal
//! returns, logging to stderr, closing what it owns, clocks, and the calls of the SIGSYS
//! handler and of `abort` (raise: tgkill with SIGSYS or SIGABRT only).

use libc::*;

use super::super::rules::{Arg, List};
use super::sys;

pub fn list() -> List {
    let mut l = List::new();
    l.allow(&[
        SYS_brk,
        SYS_munmap,
        SYS_madvise,
        SYS_mremap,
        SYS_futex,
        SYS_sched_yield,
        SYS_exit,
        SYS_exit_group,
        SYS_rt_sigreturn,
        SYS_rt_sigprocmask,
        SYS_sigaltstack,
        SYS_write,
        SYS_writev,
        SYS_close,
        SYS_clock_gettime,
        SYS_gettid,
        SYS_getpid,
        SYS_getrandom,
    ])
    .allow(sys::SLEEP);
    // Never executable memory: no JIT, no loading code after start.
    for nr in [SYS_mmap, SYS_mprotect] {
        l.allow_if(nr, vec![Arg::NoBits(2, PROT_EXEC as u64)]);
    }
    l.allow_values(SYS_tgkill, 2, &[SIGSYS as u64, SIGABRT as u64]);
    // Rust's OwnedFd checks the fd before closing it (debug builds).
    l.allow_values(SYS_fcntl, 1, &[F_GETFD as u64]);
    l
}

/// Starting threads (glibc's pthread_create and the new thread's own start, which
/// runs under its creator's filter): `clone` with exactly the flags of a thread (no
/// fork, no new namespaces), clone3 (made to fail with ENOSYS by a second filter, so
/// glibc falls back to `clone`, whose flags a filter can see), and the new thread's
/// set-up calls, including installing its own filter.
pub fn thread_start() -> List {
    let mut l = List::new();
    let thread_flags = CLONE_VM
        | CLONE_FS
        | CLONE_FILES
        | CLONE_SIGHAND
        | CLONE_THREAD
        | CLONE_SYSVSEM
        | CLONE_SETTLS
        | CLONE_PARENT_SETTID
        | CLONE_CHILD_CLEARTID;
    l.allow_values(SYS_clone, 0, &[thread_flags as u64])
        .allow(&[
            SYS_clone3,
            SYS_rseq,
            SYS_set_robust_list,
            SYS_sched_getaffinity,
        ])
        .allow_values(
            SYS_prctl,
            0,
            &[PR_SET_NAME as u64, PR_SET_NO_NEW_PRIVS as u64],
        )
        // A new thread's first malloc may size the arenas from
        // /sys/devices/system/cpu/online (glibc's get_nprocs): read-only opens.
        .allow(&[SYS_read])
        // The new thread adds its own filter (a filter can only narrow what is allowed).
        .allow_if(
            SYS_seccomp,
            vec![Arg::Eq(0, SECCOMP_SET_MODE_FILTER as u64), Arg::Eq(1, 0)],
        );
    let writes = (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND) as u64;
    #[cfg(target_arch = "x86_64")]
    l.allow_if(SYS_open, vec![Arg::NoBits(1, writes)]);
    l.allow_if(SYS_openat, vec![Arg::NoBits(2, writes)]);
    l
}

/// clone3 fails with ENOSYS (stacked on the kind's own filter; see [`thread_start`]).
pub fn clone3_enosys() -> List {
    let mut l = List::new();
    l.allow(&[SYS_clone3]);
    l
}
