//! The allow-lists, one file per thread kind, on top of `base.rs` (what every thread
//! needs); `sys.rs` maps the calls that differ between x86_64 and aarch64.

mod api;
mod base;
mod cli;
mod devices;
mod log;
mod signals;
mod sys;
mod vcpu;
mod vmm;

use seccompiler::{BpfProgram, SeccompAction};

use super::rules::List;
use super::{Options, ThreadKind};

/// Everything `kind`'s filter allows.
pub fn allowed_syscalls(kind: ThreadKind, opts: &Options) -> List {
    match kind {
        ThreadKind::Vcpu => vcpu::list(opts.first_entry_hook),
        ThreadKind::Vmm => vmm::list(),
        ThreadKind::Api => api::list(),
        ThreadKind::VirtioVsock => devices::vsock(),
        ThreadKind::VirtioBlock => devices::block(),
        ThreadKind::Log => log::list(),
        ThreadKind::Signals => signals::list(),
        ThreadKind::Cli => cli::list(),
        ThreadKind::Factory => {
            // Its threads start under its filter and then add their own: it must allow
            // what each of them needs.
            let mut l = base::list();
            l.merge(&base::thread_start())
                .merge(&devices::vsock())
                .merge(&devices::block())
                // Hot-added vCPU threads (asked for by the API thread).
                .merge(&vcpu::list(false));
            l
        }
    }
}

/// Does `kind` start threads (and so get the clone3 → ENOSYS filter too)?
fn starts_threads(kind: ThreadKind) -> bool {
    matches!(kind, ThreadKind::Cli | ThreadKind::Factory)
}

/// The programs to install for `kind`, in order (the last is the kind's allow-list).
pub fn compile(kind: ThreadKind, opts: &Options) -> Result<Vec<BpfProgram>, String> {
    let mut progs = Vec::new();
    // First: once the kind's own filter is in, installing another needs `seccomp`,
    // which it does not allow.
    if starts_threads(kind) {
        progs.push(base::clone3_enosys().compile_with(
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
        )?);
    }
    progs.push(allowed_syscalls(kind, opts).compile()?);
    Ok(progs)
}
