//! Attaching to a started process (`run`, `exec`): stream its stdio, forward host signals,
//! wait for its end.
//!
//! Signals: the first SIGINT/SIGTERM/SIGHUP is forwarded to the process (`run`: to every
//! process of the container; SIGHUP as SIGTERM); a second one, or [`KILL_AFTER`] without an exit, sends SIGKILL; a
//! third gives up waiting (the caller then tears the sandbox down). SIGWINCH resizes the
//! container's terminal.
//!
//! Deadlines: the process may run for ever, so nothing here bounds it; but an agent that
//! stops answering must not keep the session for ever. A heartbeat thread
//! ([`host_vmm::agent::liveness`]) checks the agent on its own connection; when it declares
//! the agent dead the session ends with [`AgentDead`] (the caller then skips the RPCs of
//! its teardown). A VM that ends ends the session too (`vm_exit`).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use host_vmm::agent::liveness::{self, AgentDead, Heartbeat};
use host_vmm::agent::{AgentClient, ClientError, ProcessExit};
use host_vmm::vmm::{ExitSignal, GuestExit};

use super::signals::{self, Route};
use super::stdio::{self, Output, RawTerminal, Target};

/// After a forwarded stop signal, SIGKILL follows if the container has not exited.
pub const KILL_AFTER: Duration = Duration::from_secs(10);
/// How long output may stay open after the process ended.
const DRAIN_BOUND: Duration = Duration::from_secs(10);

/// How to attach.
pub struct Attach {
    pub target: Target,
    /// The process has a terminal (`-t`): no separate stderr; raw host terminal.
    pub tty: bool,
    /// Copy the host's stdin (`-i`); otherwise the process's stdin is closed at once
    /// (with a terminal, left open: closing it would send ^D).
    pub interactive: bool,
    /// The target is the container's init (`run`, `start --attach`): host signals go to
    /// every process of the container. Otherwise (`exec`) they go to this process only,
    /// and since the agent forgets an exec process once waited for, its output is read to
    /// the end before `WaitProcess` (so a child that keeps the output open keeps `exec`
    /// waiting, as with `docker exec`).
    pub init: bool,
}

enum Event {
    Exited(Result<ProcessExit, ClientError>),
    Signal(i32),
    VmEnded(GuestExit),
    AgentDead(AgentDead),
}

/// While attached, host signals come to the session (through `signals`); after, they stop
/// the VM (`vm_exit`) or are held (no VM: the caller is about to finish anyway).
struct Routed(Option<Arc<ExitSignal>>);

impl Drop for Routed {
    fn drop(&mut self) {
        match self.0.take() {
            Some(exit) => signals::route(Route::Vm(exit)),
            None => signals::route(Route::Hold),
        }
    }
}

/// Streams the process `attach.target` (already started) and waits for it. `connect` opens
/// a new agent connection (one per pump and one for the wait); `control` sends signals and
/// resizes. With `vm_exit`, a VM that ends first is an error.
pub fn attach_and_wait(
    connect: &(dyn Fn() -> anyhow::Result<AgentClient> + Sync),
    control: &AgentClient,
    attach: &Attach,
    vm_exit: Option<Arc<ExitSignal>>,
) -> anyhow::Result<ProcessExit> {
    let target = &attach.target;
    let _raw = if attach.tty {
        RawTerminal::enable()?
    } else {
        None
    };
    let resize = || {
        if let Some((rows, cols)) = stdio::window_size() {
            if let Err(e) = control.tty_win_resize(&target.container, &target.exec, rows, cols) {
                tracing::debug!("terminal resize: {e}");
            }
        }
    };
    if attach.tty {
        resize();
    }
    let (done_tx, done_rx) = mpsc::channel();
    let mut pumps = vec![stdio::spawn_output_pump(
        connect()?,
        target.clone(),
        Output::Stdout,
        done_tx.clone(),
    )?];
    if !attach.tty {
        pumps.push(stdio::spawn_output_pump(
            connect()?,
            target.clone(),
            Output::Stderr,
            done_tx,
        )?);
    }
    let outputs = pumps.len();
    if attach.interactive {
        stdio::spawn_stdin_pump(connect()?, target.clone())?;
    } else if !attach.tty {
        control
            .close_stdin(&target.container, &target.exec)
            .context("cannot close the process's stdin")?;
    }

    let (tx, rx) = mpsc::channel();
    let waiter = connect()?;
    let wait_tx = tx.clone();
    let wait_target = target.clone();
    let wait_after_output = !attach.init;
    std::thread::Builder::new()
        .name("wait".into())
        .spawn(move || {
            if wait_after_output {
                // The agent forgets an exec process once waited for: read all its output
                // first. (A pump that failed also counts as done.)
                for _ in 0..outputs {
                    if done_rx.recv().is_err() {
                        break;
                    }
                }
            }
            let r = waiter.wait_process(&wait_target.container, &wait_target.exec);
            let _ = wait_tx.send(Event::Exited(r));
        })
        .context("cannot start the wait thread")?;
    let vm_exit_for_route = vm_exit.clone();
    let vm_ended = vm_exit.clone();
    if let Some(exit) = vm_exit {
        let vm_tx = tx.clone();
        std::thread::Builder::new()
            .name("vm-watch".into())
            .spawn(move || {
                let _ = vm_tx.send(Event::VmEnded(exit.wait()));
            })
            .context("cannot start the VM watch thread")?;
    }
    // The heartbeat: its own connection, opened now (a later failure counts as silence).
    let heartbeat_agent = std::sync::Mutex::new(Some(connect()?));
    let (_stop_heartbeat, heartbeat_stop) = mpsc::channel::<()>();
    let hb_tx = tx.clone();
    std::thread::Builder::new()
        .name("heartbeat".into())
        .spawn(move || {
            let connect = || {
                heartbeat_agent
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .take()
                    .ok_or_else(|| "the heartbeat connection broke".to_string())
            };
            if let Some(dead) = liveness::watch(&connect, Heartbeat::default(), &heartbeat_stop) {
                let _ = hb_tx.send(Event::AgentDead(dead));
            }
        })
        .context("cannot start the heartbeat thread")?;
    let (sig_tx, sig_rx) = mpsc::channel::<i32>();
    let fwd_tx = tx.clone();
    std::thread::Builder::new()
        .name("session-signals".into())
        .spawn(move || {
            for sig in sig_rx {
                if fwd_tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        })
        .context("cannot start the session signal thread")?;
    let _routed = Routed(vm_exit_for_route);
    signals::route(Route::Session(sig_tx));
    drop(tx);

    let mut stops = 0;
    let mut kill_at: Option<Instant> = None;
    let session_wait = host_vmm::waits::enter(format!(
        "attached to {}/{}: the process's exit, a signal, the VM's end or the agent's silence",
        target.container, target.exec
    ));
    let exit = loop {
        let event = match kill_at {
            Some(at) => match rx.recv_timeout(at.saturating_duration_since(Instant::now())) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!("container {} did not stop: SIGKILL", target.container);
                    signal(control, attach, libc::SIGKILL);
                    kill_at = None;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => bail!("lost the wait thread"),
            },
            None => rx.recv().context("lost the wait thread")?,
        };
        match event {
            Event::Exited(Err(e)) if vm_ended.as_ref().is_some_and(|x| x.is_requested()) => {
                // The connection broke because the VM ended: say that, not the symptom.
                let outcome = vm_ended.as_ref().map(|x| x.wait());
                tracing::debug!("WaitProcess: {e}");
                bail!(
                    "the sandbox VM ended before the process did: {}",
                    outcome.map_or_else(String::new, |o| o.to_string())
                )
            }
            Event::Exited(r) => {
                break r.with_context(|| format!("waiting for container {}", target.container))?
            }
            Event::VmEnded(outcome) => {
                bail!("the sandbox VM ended before the process did: {outcome}")
            }
            Event::AgentDead(dead) => {
                tracing::debug!("{dead}");
                return Err(anyhow::Error::new(dead));
            }
            Event::Signal(libc::SIGWINCH) => {
                if attach.tty {
                    resize();
                }
            }
            Event::Signal(sig) => {
                stops += 1;
                match stops {
                    1 => {
                        let fwd = if sig == libc::SIGHUP {
                            libc::SIGTERM
                        } else {
                            sig
                        };
                        tracing::info!(signal = sig, "forwarding to the container");
                        signal(control, attach, fwd);
                        kill_at = Some(Instant::now() + KILL_AFTER);
                    }
                    2 => {
                        signal(control, attach, libc::SIGKILL);
                        kill_at = None;
                    }
                    _ => bail!("stopped by signal {sig} before the container exited"),
                }
            }
        }
    };
    drop(session_wait);
    stdio::drain(pumps, DRAIN_BOUND);
    Ok(exit)
}

fn signal(control: &AgentClient, attach: &Attach, sig: i32) {
    let sig = u32::try_from(sig).unwrap_or(15);
    let target = &attach.target;
    let exec = if attach.init {
        ""
    } else {
        target.exec.as_str()
    };
    if let Err(e) = control.signal_process(&target.container, exec, sig) {
        tracing::warn!("cannot signal container {}: {e}", target.container);
    }
}
