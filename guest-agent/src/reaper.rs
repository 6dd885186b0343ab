//! The one child reaper of the process.
//!
//! pid 1 inherits every orphan, and a `waitpid(-1)` loop would race with any other wait for a
//! specific child (`std::process::Child::wait` would get `ECHILD` when the loop took the
//! status first). So the process has exactly one reaper ([`Reaper::start`] refuses a second),
//! and every child, container processes included, is waited for through it:
//!
//! - Spawn with [`Reaper::spawn`]: it runs the spawn closure under the reaper's lock and
//!   registers the new pid before the reaper can see its exit, then hands back a channel that
//!   receives the [`ExitStatus`]. Never call `Child::wait`/`try_wait` on such a child.
//! - Exits of unregistered children (orphans re-parented to pid 1) are reaped and logged.
//!
//! The reaper thread needs no signals: it blocks in `waitid(P_ALL, WEXITED | WNOWAIT)` until
//! some child is a zombie, then takes the lock and reaps every zombie with
//! `waitpid(-1, WNOHANG)`. With no children at all (`ECHILD`) it sleeps until the next spawn.
//! So it works with all signals blocked, as pid 1 runs.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;

use nix::errno::Errno;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

static STARTED: AtomicBool = AtomicBool::new(false);

#[derive(Debug, thiserror::Error)]
pub enum ReaperError {
    #[error("a reaper is already running in this process")]
    AlreadyRunning,
    #[error("start the reaper thread")]
    Thread(#[source] std::io::Error),
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal number.
    Signaled(i32),
}

/// Something that was just spawned and has a pid.
pub trait ChildPid {
    fn child_pid(&self) -> Pid;
}

impl ChildPid for Pid {
    fn child_pid(&self) -> Pid {
        *self
    }
}

impl ChildPid for std::process::Child {
    fn child_pid(&self) -> Pid {
        // Pids fit in i32 (pid_max is at most 2^22).
        Pid::from_raw(i32::try_from(self.id()).unwrap_or(i32::MAX))
    }
}

#[derive(Default)]
struct State {
    watchers: HashMap<Pid, Sender<ExitStatus>>,
    /// Bumped by every spawn, to wake a reaper that found no children.
    spawns: u64,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    spawned: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked; the map is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the reaper thread. Clones share it.
#[derive(Clone)]
pub struct Reaper {
    shared: Arc<Shared>,
}

impl Reaper {
    /// Starts the reaper thread. Only one per process.
    pub fn start() -> Result<Self, ReaperError> {
        if STARTED.swap(true, Ordering::SeqCst) {
            return Err(ReaperError::AlreadyRunning);
        }
        let shared = Arc::new(Shared::default());
        let thread_shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("reaper".into())
            .spawn(move || reap_forever(&thread_shared))
            .map_err(|e| {
                STARTED.store(false, Ordering::SeqCst);
                ReaperError::Thread(e)
            })?;
        Ok(Self { shared })
    }

    /// Runs `spawn` (which creates exactly one child) under the reaper's lock and registers the
    /// child, so its exit status always reaches the returned channel.
    pub fn spawn<T: ChildPid, E>(
        &self,
        spawn: impl FnOnce() -> Result<T, E>,
    ) -> Result<(T, Receiver<ExitStatus>), E> {
        let mut state = self.shared.lock();
        let child = spawn()?;
        let (tx, rx) = mpsc::channel();
        state.watchers.insert(child.child_pid(), tx);
        state.spawns = state.spawns.wrapping_add(1);
        drop(state);
        self.shared.spawned.notify_all();
        Ok((child, rx))
    }
}

fn reap_forever(shared: &Shared) -> ! {
    loop {
        let spawns_before = shared.lock().spawns;
        match waitid(Id::All, WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(_) => reap_zombies(shared),
            Err(Errno::ECHILD) => {
                // No children: none can appear but through a spawn (orphans are descendants).
                let mut state = shared.lock();
                while state.spawns == spawns_before {
                    state = shared
                        .spawned
                        .wait(state)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
            Err(Errno::EINTR) => {}
            Err(e) => {
                tracing::error!("reaper: waitid failed: {e}");
                thread::sleep(std::time::Duration::from_millis(100));
            }
        }
    }
}

/// Reaps every zombie child without blocking and delivers or logs each status.
fn reap_zombies(shared: &Shared) {
    let mut state = shared.lock();
    loop {
        let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Exited(code)),
            Ok(WaitStatus::Signaled(pid, signal, _core)) => {
                (pid, ExitStatus::Signaled(signal as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                tracing::error!("reaper: waitpid failed: {e}");
                return;
            }
        };
        match state.watchers.remove(&pid) {
            // The receiver may be gone: nobody waits any more, which is fine.
            Some(tx) => {
                let _ = tx.send(status);
            }
            None => tracing::debug!("reaped orphan pid {pid}: {status:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::Duration;

    // One test owns the process-wide reaper: no other test in this binary spawns children.
    #[test]
    fn test_reaper_delivers_exit_statuses_and_is_unique() {
        let reaper = Reaper::start().unwrap();
        assert!(matches!(Reaper::start(), Err(ReaperError::AlreadyRunning)));

        let timeout = Duration::from_secs(10);
        let run = |script: &str| {
            let (_child, rx) = reaper
                .spawn(|| Command::new("/bin/sh").args(["-c", script]).spawn())
                .unwrap();
            rx.recv_timeout(timeout).unwrap()
        };
        // The first spawn wakes a reaper that found no children.
        assert_eq!(run("exit 0"), ExitStatus::Exited(0));
        assert_eq!(run("exit 3"), ExitStatus::Exited(3));
        assert_eq!(run("kill -9 $$"), ExitStatus::Signaled(9));

        // Several at once, exiting in another order than spawned.
        let children: Vec<_> = [0.3, 0.1, 0.2]
            .iter()
            .enumerate()
            .map(|(i, delay)| {
                let script = format!("sleep {delay}; exit {}", 10 + i);
                reaper
                    .spawn(|| Command::new("/bin/sh").args(["-c", &script]).spawn())
                    .unwrap()
                    .1
            })
            .collect();
        for (i, rx) in children.iter().enumerate() {
            let code = 10 + i32::try_from(i).unwrap();
            assert_eq!(rx.recv_timeout(timeout).unwrap(), ExitStatus::Exited(code));
        }

        // A failed spawn registers nothing and returns the error. (Under qemu-user, which
        // emulates vfork with fork, the exec error shows up as exit code 127 instead.)
        match reaper.spawn(|| Command::new("/nonexistent/binary").spawn()) {
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
            Ok((_child, rx)) => {
                assert_eq!(rx.recv_timeout(timeout).unwrap(), ExitStatus::Exited(127))
            }
        }
    }
}
