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
    use std::time::{Duration, Instant};

    const HELPER_ENV: &str = "HOST_VMM_PDEATHSIG_HELPER";

    /// Run as a separate process by the test below: spawns `sleep` with
    /// [`die_with_parent`], prints its pid and exits without waiting for it.
    #[test]
    fn helper_spawn_sleep_and_exit() {
        if std::env::var_os(HELPER_ENV).is_none() {
            return;
        }
        let child = die_with_parent(Command::new("sleep").arg("100"))
            .spawn()
            .unwrap();
        println!("SLEEP_PID={}", child.id());
        std::process::exit(0);
    }

    fn gone(pid: &str) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // A zombie is dead too (its new parent may not reap at once).
            Ok(stat) => stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')),
        }
    }

    /// A `kill -9`-like death of host-vmm (the helper process exits without waiting) takes
    /// the child with it.
    #[test]
    fn test_die_with_parent_child_killed_when_parent_exits() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "os::child::tests::helper_spawn_sleep_and_exit",
                "--nocapture",
            ])
            .env(HELPER_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let pid = stdout
            .lines()
            .find_map(|l| l.strip_prefix("SLEEP_PID="))
            .unwrap_or_else(|| panic!("no pid from the helper: {stdout}"))
            .to_string();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(&pid) {
            assert!(Instant::now() < deadline, "sleep {pid} outlived its parent");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
