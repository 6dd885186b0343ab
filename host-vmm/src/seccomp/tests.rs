//! The allow-lists as data: what each kind may and may not do. (That the kernel
//! enforces them is tested by `tests/seccomp_confinement.rs`, in processes of their own.)

use super::ioctls;
use super::lists::allowed_syscalls;
use super::rules::{Arg, List};
use super::{Options, ThreadKind};

const OPTS: Options = Options {
    first_entry_hook: false,
};

fn list(kind: ThreadKind) -> List {
    allowed_syscalls(kind, &OPTS)
}

fn ioctl(req: u64) -> [u64; 6] {
    [3, req, 0, 0, 0, 0]
}

#[test]
fn test_every_kind_compiles_for_this_architecture() {
    for kind in ThreadKind::ALL {
        let progs = super::lists::compile(kind, &OPTS).unwrap();
        assert!(
            !progs.is_empty() && progs.iter().all(|p| !p.is_empty()),
            "{kind:?}"
        );
        let hook = super::lists::compile(
            kind,
            &Options {
                first_entry_hook: true,
            },
        );
        assert!(hook.is_ok(), "{kind:?}");
    }
}

#[test]
fn test_no_kind_may_exec_fork_trace_or_mount() {
    let fork_flags = libc::SIGCHLD as u64;
    for kind in ThreadKind::ALL {
        let l = list(kind);
        for nr in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_setns,
            libc::SYS_unshare,
            libc::SYS_kexec_load,
            libc::SYS_init_module,
            libc::SYS_bpf,
            libc::SYS_process_vm_writev,
            libc::SYS_setuid,
            libc::SYS_fchmodat,
        ] {
            assert!(!l.allows(nr, [0; 6]), "{kind:?} allows {nr}");
        }
        assert!(
            !l.allows(libc::SYS_clone, [fork_flags, 0, 0, 0, 0, 0]),
            "{kind:?} may fork"
        );
        // Never executable memory.
        let rwx = (libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC) as u64;
        assert!(
            !l.allows(libc::SYS_mmap, [0, 4096, rwx, 0x22, 0, 0]),
            "{kind:?}"
        );
        assert!(
            !l.allows(libc::SYS_mprotect, [0, 4096, rwx, 0, 0, 0]),
            "{kind:?}"
        );
        let rw = (libc::PROT_READ | libc::PROT_WRITE) as u64;
        assert!(
            l.allows(libc::SYS_mmap, [0, 4096, rw, 0x22, 0, 0]),
            "{kind:?}"
        );
        // Any thread may die of the SIGSYS handler's raise, or abort.
        for sig in [libc::SIGSYS, libc::SIGABRT] {
            assert!(
                l.allows(libc::SYS_tgkill, [1, 1, sig as u64, 0, 0, 0]),
                "{kind:?}"
            );
        }
        assert!(!l.allows(libc::SYS_tgkill, [1, 1, libc::SIGKILL as u64, 0, 0, 0]));
    }
}

#[test]
fn test_vcpu_ioctls_are_only_run_and_register_reads() {
    let l = list(ThreadKind::Vcpu);
    for req in ioctls::vcpu() {
        assert!(l.allows(libc::SYS_ioctl, ioctl(req)));
    }
    // aarch64's vCPUs switch the variable store's read-array slot (see ioctls::vcpu).
    #[cfg(target_arch = "x86_64")]
    assert!(!l.allows(libc::SYS_ioctl, ioctl(ioctls::KVM_SET_USER_MEMORY_REGION)));
    for req in [
        ioctls::KVM_IRQFD,
        ioctls::KVM_IOEVENTFD,
        0xae01, // KVM_CREATE_VM
        0xae41, // KVM_CREATE_VCPU
        libc::TIOCSTI,
    ] {
        assert!(!l.allows(libc::SYS_ioctl, ioctl(req)), "{req:#x}");
    }
    for nr in [
        libc::SYS_openat,
        libc::SYS_socket,
        libc::SYS_connect,
        libc::SYS_clone,
        libc::SYS_clone3,
        libc::SYS_timer_create,
    ] {
        assert!(!l.allows(nr, [0; 6]), "vcpu allows {nr}");
    }
    let hook = allowed_syscalls(
        ThreadKind::Vcpu,
        &Options {
            first_entry_hook: true,
        },
    );
    assert!(hook.allows(libc::SYS_timer_create, [0; 6]));
    assert!(hook.allows(libc::SYS_tgkill, [1, 1, libc::SIGSTOP as u64, 0, 0, 0]));
}

#[test]
fn test_only_the_thread_starting_kinds_may_clone_and_only_threads() {
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    for kind in ThreadKind::ALL {
        let may = list(kind).allows(libc::SYS_clone, [thread, 0, 0, 0, 0, 0]);
        assert_eq!(
            may,
            matches!(kind, ThreadKind::Cli | ThreadKind::Factory),
            "{kind:?}"
        );
        let vfork = (libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD) as u64;
        assert!(!list(kind).allows(libc::SYS_clone, [vfork, 0, 0, 0, 0, 0]));
    }
}

/// A thread started by the factory runs under the factory's filter and its own: the
/// factory must allow everything its threads do.
#[test]
fn test_factory_allows_everything_its_threads_need() {
    let factory = list(ThreadKind::Factory);
    for kind in [
        ThreadKind::VirtioVsock,
        ThreadKind::VirtioBlock,
        ThreadKind::Vcpu,
    ] {
        for nr in list(kind).numbers() {
            assert!(
                factory.numbers().any(|n| n == nr),
                "factory lacks {nr} of {kind:?}"
            );
        }
    }
}

/// The API thread hot-adds vCPUs (create and set up, park with the kick signal); the
/// factory starts their threads, which run KVM_RUN.
#[test]
fn test_cpu_hotplug_calls_are_allowed_where_they_run() {
    let api = list(ThreadKind::Api);
    for req in ioctls::cpu_hotplug() {
        assert!(
            api.allows(libc::SYS_ioctl, ioctl(req)),
            "api lacks {req:#x}"
        );
    }
    let kick = libc::SIGRTMIN() as u64;
    assert!(api.allows(libc::SYS_tgkill, [1, 1, kick, 0, 0, 0]));
    assert!(!api.allows(libc::SYS_tgkill, [1, 1, libc::SIGKILL as u64, 0, 0, 0]));
    let factory = list(ThreadKind::Factory);
    for req in ioctls::vcpu() {
        assert!(
            factory.allows(libc::SYS_ioctl, ioctl(req)),
            "factory lacks {req:#x}"
        );
    }
    // vCPU threads themselves still only run and read registers.
    assert!(!list(ThreadKind::Vcpu).allows(libc::SYS_ioctl, ioctl(ioctls::KVM_CREATE_VCPU)));
}

#[test]
fn test_cli_opens_files_read_only() {
    let l = list(ThreadKind::Cli);
    let at = |flags: i32| [libc::AT_FDCWD as u64, 0, flags as u64, 0, 0, 0];
    assert!(l.allows(libc::SYS_openat, at(libc::O_RDONLY | libc::O_CLOEXEC)));
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_CREAT | libc::O_RDONLY] {
        assert!(!l.allows(libc::SYS_openat, at(flags)), "{flags:#x}");
    }
    assert!(l.allows(libc::SYS_socket, [libc::AF_UNIX as u64, 1, 0, 0, 0, 0]));
    assert!(!l.allows(libc::SYS_socket, [libc::AF_INET as u64, 1, 0, 0, 0, 0]));
    assert!(!l.allows(libc::SYS_socket, [libc::AF_NETLINK as u64, 3, 0, 0, 0, 0]));
}

#[test]
fn test_list_merge_keeps_unconditional_and_adds_alternatives() {
    let mut a = List::new();
    a.allow_values(libc::SYS_ioctl, 1, &[1]);
    let mut b = List::new();
    b.allow_values(libc::SYS_ioctl, 1, &[2]);
    b.allow(&[libc::SYS_read]);
    a.merge(&b);
    assert!(a.allows(libc::SYS_ioctl, ioctl(1)) && a.allows(libc::SYS_ioctl, ioctl(2)));
    assert!(!a.allows(libc::SYS_ioctl, ioctl(3)));
    let mut all = List::new();
    all.allow(&[libc::SYS_ioctl]);
    a.merge(&all);
    assert!(a.allows(libc::SYS_ioctl, ioctl(3)));
    // An alternative added to an unconditional call does not narrow it.
    a.allow_if(libc::SYS_ioctl, vec![Arg::Eq(1, 9)]);
    assert!(a.allows(libc::SYS_ioctl, ioctl(4)));
}

/// The kernel caps the instructions of all the filters a thread runs under at 32768
/// (MAX_INSNS_PER_PATH, counting 4 more per filter). A `cli` thread started by a `cli`
/// thread runs under both (each with the clone3 filter): even five levels fit.
#[test]
fn test_filters_fit_the_kernel_limit_when_stacked() {
    let mut sizes = Vec::new();
    for kind in ThreadKind::ALL {
        let progs = super::lists::compile(kind, &OPTS).unwrap();
        let insns: usize = progs.iter().map(|p| p.len() + 4).sum();
        sizes.push((kind.name(), insns));
    }
    let cli = sizes.iter().find(|(k, _)| *k == "cli").unwrap().1;
    let largest = sizes.iter().map(|(_, n)| *n).max().unwrap();
    assert!(5 * cli < 32768 && 5 * largest < 32768, "{sizes:?}");
    eprintln!("filter sizes (instructions): {sizes:?}");
}

/// A new thread's start (glibc's arena sizing reads /sys/devices/system/cpu/online)
/// runs under its creator's filter: every thread-starting kind allows read-only opens,
/// and only those.
#[test]
fn test_thread_starting_kinds_allow_the_new_threads_start() {
    let at = |flags: i32| [libc::AT_FDCWD as u64, 0, flags as u64, 0, 0, 0];
    for kind in [ThreadKind::Cli, ThreadKind::Factory] {
        let l = list(kind);
        assert!(l.allows(libc::SYS_openat, at(libc::O_RDONLY | libc::O_CLOEXEC)));
        assert!(!l.allows(libc::SYS_openat, at(libc::O_RDWR)), "{kind:?}");
        assert!(l.allows(libc::SYS_read, [0; 6]), "{kind:?}");
    }
}
