//! Children that do not outlive host-vmm.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Makes the child `cmd` spawns receive SIGKILL when host-vmm dies (`PR_SET_PDEATHSIG`), so a
/// `kill -9` of host-vmm leaves no `mkfs.erofs` behind. If host-vmm is already gone when the
/// child starts, the spawn fails instead.
///
/// The signal follows the *thread* that spawned the child: spawn from a thread that waits for
/// the child (as `Command::output` does), never from one that ends first.
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: getpid takes no arguments and cannot fail.
    let parent = unsafe { libc::getpid() };
    let hook = move || {
        // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number, no pointers; it and getppid
        // are async-signal-safe, which is all a child between fork and exec may call. Neither
        // the error paths nor the closure allocate.
        unsafe {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent died before the prctl: nobody would send the signal.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
        }
        Ok(())
    };
    // SAFETY: the hook only makes async-signal-safe calls (see above).
    unsafe { cmd.pre_exec(hook) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // A zombie is dead too (its new parent may not reap at once).
            Ok(stat) => stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')),
        }
    }

    /// A `kill -9`-like death of host-vmm takes the child with it: a forked process (the
    /// "host-vmm") spawns `sleep` with [`die_with_parent`], reports its pid and exits at once.
    /// (A fork, not a re-exec of the test binary: that works under qemu-user too.)
    #[test]
    fn test_die_with_parent_child_killed_when_parent_exits() {
        let (mut rx, mut tx) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: the child only spawns a process (fork/exec; glibc's malloc is fork-safe),
        // writes to a socket it owns and calls _exit: it never returns into the harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = match die_with_parent(Command::new("sleep").arg("100")).spawn() {
                Ok(child) => tx.write_all(&child.id().to_le_bytes()).map_or(2, |()| 0),
                Err(_) => 1,
            };
            // SAFETY: ends the forked child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        drop(tx);
        let mut status = 0;
        // SAFETY: waiting for our own child with a valid status pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(status, 0, "the forked parent could not spawn sleep");
        let mut buf = [0u8; 4];
        rx.read_exact(&mut buf).unwrap();
        let sleep_pid = u32::from_le_bytes(buf);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(sleep_pid) {
            assert!(
                Instant::now() < deadline,
                "sleep {sleep_pid} outlived its parent"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
