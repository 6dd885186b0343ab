//! Installing compiled filters (in the setup helper): `seccomp(SECCOMP_SET_MODE_FILTER)`
//! directly, not seccompiler's `apply_filter`, which would also set `no_new_privs` whatever
//! the spec's `process.noNewPrivileges` says. Without `no_new_privs` the kernel asks for
//! `CAP_SYS_ADMIN`, so the helper then installs before it drops capabilities (as runc does).

use std::io;

use super::compile::{CompiledFilter, SockFilter};

/// `struct sock_fprog`.
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const SockFilter,
}

/// Installs `filters` in order on the calling thread.
pub fn install(filters: &[CompiledFilter]) -> io::Result<()> {
    for filter in filters {
        let len = libc::c_ushort::try_from(filter.program.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?;
        let prog = SockFprog {
            len,
            filter: filter.program.as_ptr(),
        };
        // SAFETY: `prog` points at `len` instructions of `filter.program`, alive for the call;
        // the kernel copies them.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::c_ulong::from(filter.flags),
                &prog as *const SockFprog,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{compile, plan};
    use super::*;
    use crate::container::spec::default_seccomp;

    /// Runs `f` in a forked child and returns its exit code.
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes system calls (no allocation after the filters were
        // built by the parent) and leaves with _exit.
        match unsafe { libc::fork() } {
            0 => {
                let code = f();
                // SAFETY: ends the child without running the test harness's exit handlers.
                unsafe { libc::_exit(code) }
            }
            pid if pid > 0 => {
                let mut status = 0;
                // SAFETY: waits for our own child.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                libc::WEXITSTATUS(status)
            }
            _ => panic!("fork: {}", io::Error::last_os_error()),
        }
    }

    /// Docker's default profile, really installed: `unshare` fails with EPERM from seccomp
    /// (the test runs as root with every capability, so the capability check would pass),
    /// `clone3` with ENOSYS, while `getpid` and `uname` work.
    #[test]
    fn test_docker_default_blocks_unshare_in_a_child() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: installing a filter without no_new_privs needs root");
            return;
        }
        let filters =
            compile(&plan(&default_seccomp(&protocol::oci_defaults::DEFAULT_CAPS)).unwrap())
                .unwrap();
        let code = in_child(|| {
            match install(&filters) {
                Ok(()) => {}
                // qemu-user (the aarch64 unit test run) does not emulate seccomp.
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => return 20,
                Err(_) => return 10,
            }
            // SAFETY: plain system calls with integer arguments.
            unsafe {
                if libc::getpid() <= 0 {
                    return 11;
                }
                if libc::unshare(libc::CLONE_NEWUTS) != -1
                    || *libc::__errno_location() != libc::EPERM
                {
                    return 12;
                }
                if libc::syscall(libc::SYS_clone3, 0usize, 0usize) != -1
                    || *libc::__errno_location() != libc::ENOSYS
                {
                    return 13;
                }
            }
            0
        });
        if code == 20 {
            eprintln!("skipped: seccomp() is ENOSYS here (qemu-user)");
            return;
        }
        assert_eq!(code, 0);
        // Without the filter the same unshare works (so EPERM above was seccomp's).
        let code = in_child(|| {
            // SAFETY: a system call with an integer argument.
            (unsafe { libc::unshare(libc::CLONE_NEWUTS) } != 0) as i32
        });
        assert_eq!(code, 0);
    }
}
