//! seccomp filters, one per kind of host-vmm thread (Firecracker's model).
//!
//! Every thread that runs while a guest exists is started with [`thread`] (or, from a
//! thread that may not start threads, [`spawn`]), which makes the new thread call
//! [`confine`] with its [`ThreadKind`] as its first act, and returns once it has; from
//! then on the kernel refuses any system call
//! outside that kind's allow-list (`lists/`, one file per kind). A refused call
//! traps: the SIGSYS handler (`sigsys.rs`) prints the thread kind and the call's
//! number on stderr and the process dies of SIGSYS (exit status 159 in a shell).
//!
//! Filters stack and a new thread inherits its creator's: a thread started by a
//! confined thread lives under both filters. So:
//! - the threads of a VM are started before their creator confines itself (the
//!   vCPU threads by [`crate::vmm::Vmm::run`], which then confines itself as
//!   [`ThreadKind::Vmm`] and only then lets the vCPUs enter the guest);
//! - a thread that must be started later (a virtio worker, on the guest's
//!   DRIVER_OK, from a vCPU thread) is started by the thread factory
//!   ([`spawn`]), whose own filter is the union of the kinds it starts;
//! - a thread that starts threads of its own kind ([`ThreadKind::Cli`]: ttrpc's
//!   client threads, the stdio pumps) has the thread-creation calls in its list.
//!
//! Nothing is filtered until [`enable`] has run (the binary calls it in `main`
//! unless `--no-seccomp` is given); library users and unit tests run unconfined.

mod factory;
mod ioctls;
mod lists;
mod rules;
mod sigsys;

use std::sync::OnceLock;

use seccompiler::BpfProgram;

pub use factory::{spawn, thread};
pub use lists::allowed_syscalls;
pub use rules::List;

/// The kinds of threads, each with its own allow-list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadKind {
    /// A vCPU: KVM_RUN and the device exits it handles (console writes, irqfd and
    /// eventfd writes, a virtio device's activation).
    Vcpu,
    /// The thread that runs the VM and tears it down: `boot`'s main thread, `run`'s
    /// `vm` thread.
    Vmm,
    /// The control socket (`api.sock`): memory and disk hot-add.
    Api,
    /// virtio-vsock's event loop (hybrid vsock: Unix sockets on the host side).
    VirtioVsock,
    /// A virtio-blk worker (pread/pwrite/fdatasync on the disk file).
    VirtioBlock,
    /// The agent log sink and the guest console writer: accept, read, append to a file.
    Log,
    /// The signal threads (`stop-signals`, `signals`): sigwait and hand over.
    Signals,
    /// The command-line side of `run`/`exec`/...: the agent client (ttrpc), the stdio
    /// pumps, the terminal, `run -m`'s memory hot-add, `guest-setup`.
    Cli,
    /// Starts threads for confined threads (see [`spawn`]).
    Factory,
}

impl ThreadKind {
    /// Every kind, in the order of `ARCHITECTURE.md`'s table.
    pub const ALL: [ThreadKind; 9] = [
        ThreadKind::Vcpu,
        ThreadKind::Vmm,
        ThreadKind::Api,
        ThreadKind::VirtioVsock,
        ThreadKind::VirtioBlock,
        ThreadKind::Log,
        ThreadKind::Signals,
        ThreadKind::Cli,
        ThreadKind::Factory,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ThreadKind::Vcpu => "vcpu",
            ThreadKind::Vmm => "vmm",
            ThreadKind::Api => "api",
            ThreadKind::VirtioVsock => "virtio-vsock",
            ThreadKind::VirtioBlock => "virtio-blk",
            ThreadKind::Log => "log",
            ThreadKind::Signals => "signals",
            ThreadKind::Cli => "cli",
            ThreadKind::Factory => "factory",
        }
    }
}

/// What [`enable`] is told.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The benchmarks' first-entry hook is on (`HOST_VMM_STOP_AFTER_FIRST_ENTRY`):
    /// vCPU threads may also arm a timer, read their CPU time and stop the process.
    pub first_entry_hook: bool,
}

/// Why the filters could not be set up or installed.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("this kernel has no seccomp filters (CONFIG_SECCOMP_FILTER); run with --no-seccomp to run unconfined")]
    Unsupported(#[source] std::io::Error),
    #[error("cannot compile the seccomp filter of {kind} threads: {message}")]
    Compile { kind: &'static str, message: String },
    #[error("cannot set no_new_privs")]
    NoNewPrivs(#[source] std::io::Error),
    #[error("cannot install the SIGSYS handler")]
    Handler(#[source] std::io::Error),
    #[error("cannot start the thread factory")]
    Factory(#[source] std::io::Error),
    #[error("cannot install the seccomp filter of a {kind} thread: {message}")]
    Install { kind: &'static str, message: String },
}

/// The compiled filters, one entry per kind; set once by [`enable`].
struct Filters {
    /// (kind, its programs in the order they are installed).
    programs: Vec<(ThreadKind, Vec<BpfProgram>)>,
}

static FILTERS: OnceLock<Filters> = OnceLock::new();

/// Sets `no_new_privs` for the process (inherited by every thread and child; seccomp
/// needs it, and no exec'd program gains privileges through a set-uid bit or file
/// capabilities).
pub fn set_no_new_privs() -> Result<(), SeccompError> {
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers and touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(SeccompError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// glibc's malloc sizes its arena limit, the first time a thread needs a new arena past
/// the eighth, from the number of CPUs, which it may read from
/// `/sys/devices/system/cpu/online` (an `openat`) on whatever thread gets there first: a
/// confined log thread died of it (SIGSYS, syscall 257, in soak 85 with 8 MiB of stdout).
/// A fixed limit, set before any thread starts, means malloc never asks. It also bounds
/// the arenas, and so the memory a burst of threads can leave reserved.
pub const MALLOC_ARENA_MAX: i32 = 8;

/// Sets [`MALLOC_ARENA_MAX`] (glibc only; musl's malloc has no arenas).
pub fn bound_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: mallopt takes two integers; M_ARENA_MAX only sets a limit in malloc's
        // parameters, before any other thread exists.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENA_MAX) };
        if ok != 1 {
            tracing::warn!("mallopt(M_ARENA_MAX) refused; malloc sizes its arenas itself");
        }
    }
}

/// Turns confinement on for this process: checks the kernel, compiles every kind's
/// filter, installs the SIGSYS handler and starts the thread factory. Call it once,
/// before any thread that [`confine`]s itself starts. A second call does nothing.
pub fn enable(opts: Options) -> Result<(), SeccompError> {
    if FILTERS.get().is_some() {
        return Ok(());
    }
    // SAFETY: PR_GET_SECCOMP takes no pointer; it fails with EINVAL without seccomp.
    if unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) } < 0 {
        return Err(SeccompError::Unsupported(std::io::Error::last_os_error()));
    }
    let mut programs = Vec::new();
    for kind in ThreadKind::ALL {
        let progs = lists::compile(kind, &opts).map_err(|message| SeccompError::Compile {
            kind: kind.name(),
            message,
        })?;
        programs.push((kind, progs));
    }
    set_no_new_privs()?;
    sigsys::install_handler().map_err(SeccompError::Handler)?;
    if FILTERS.set(Filters { programs }).is_err() {
        return Ok(());
    }
    factory::start().map_err(SeccompError::Factory)?;
    Ok(())
}

/// True once [`enable`] has run: threads are confined.
pub fn enabled() -> bool {
    FILTERS.get().is_some()
}

/// Installs `kind`'s filter on the calling thread (nothing when confinement is off).
pub fn install(kind: ThreadKind) -> Result<(), SeccompError> {
    let Some(filters) = FILTERS.get() else {
        return Ok(());
    };
    let Some((_, progs)) = filters.programs.iter().find(|(k, _)| *k == kind) else {
        return Err(SeccompError::Install {
            kind: kind.name(),
            message: "no filter compiled for this kind".into(),
        });
    };
    sigsys::set_thread_kind(kind.name());
    for prog in progs {
        seccompiler::apply_filter(prog).map_err(|e| SeccompError::Install {
            kind: kind.name(),
            message: e.to_string(),
        })?;
    }
    tracing::trace!(kind = kind.name(), "seccomp filter installed");
    Ok(())
}

/// The one call at the top of a thread: [`install`], and if that fails, stop the
/// process (a thread must never run unconfined when confinement is on; [`enable`]
/// already checked the kernel, so this does not happen in practice).
pub fn confine(kind: ThreadKind) {
    if let Err(e) = install(kind) {
        eprintln!("host-vmm: {e}; stopping");
        std::process::abort();
    }
}

#[cfg(test)]
mod tests;
