//! A container process's stdio on the host's terminal or pipes: output pumps
//! (`ReadStdout`/`ReadStderr` until end-of-file), the stdin pump (`WriteStdin`, then
//! `CloseStdin` at end-of-file), raw mode and the window size for `-t`.
//!
//! Each pump has its own agent connection, so a blocked read never holds up another call.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use host_vmm::agent::AgentClient;

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Stderr,
}

/// Host stdin is read in chunks of this size.
const STDIN_CHUNK: usize = 64 << 10;

/// The process a pump serves.
#[derive(Debug, Clone)]
pub struct Target {
    pub container: String,
    pub exec: String,
}

/// Copies the process's `which` stream to the host's stdout or stderr until end-of-file;
/// returns the bytes copied, and says so on `done` (whatever the outcome). A host stream
/// that closed (EPIPE) stops the copying, not the draining, so the process never blocks on
/// a full pipe.
pub fn spawn_output_pump(
    agent: AgentClient,
    target: Target,
    which: Output,
    done: Sender<()>,
) -> anyhow::Result<JoinHandle<anyhow::Result<u64>>> {
    let name = match which {
        Output::Stdout => "stdout-pump",
        Output::Stderr => "stderr-pump",
    };
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let result = pump(&agent, &target, which, name);
            let _ = done.send(());
            result
        })
        .context("cannot start an output thread")
}

fn pump(agent: &AgentClient, target: &Target, which: Output, name: &str) -> anyhow::Result<u64> {
    // Locked per chunk, never across a read: the log also writes to stderr.
    let write = |data: &[u8]| match which {
        Output::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(data).and_then(|()| out.flush())
        }
        Output::Stderr => {
            let mut err = io::stderr().lock();
            err.write_all(data).and_then(|()| err.flush())
        }
    };
    let mut copied = 0u64;
    let mut host_open = true;
    loop {
        let data = match which {
            Output::Stdout => agent.read_stdout(&target.container, &target.exec),
            Output::Stderr => agent.read_stderr(&target.container, &target.exec),
        }
        .with_context(|| format!("{name}: container {}", target.container))?;
        if data.is_empty() {
            return Ok(copied);
        }
        copied += data.len() as u64;
        if host_open {
            let wait = host_vmm::waits::enter(format!("{name}: host write ({} bytes)", data.len()));
            let written = write(&data);
            drop(wait);
            if let Err(e) = written {
                if e.kind() != io::ErrorKind::BrokenPipe {
                    tracing::warn!("{name}: cannot write to the host: {e}");
                }
                host_open = false;
            }
        }
    }
}

/// Copies the host's stdin to the process until end-of-file, then closes its stdin.
pub fn spawn_stdin_pump(agent: AgentClient, target: Target) -> anyhow::Result<()> {
    std::thread::Builder::new()
        .name("stdin-pump".into())
        .spawn(move || {
            let mut stdin = io::stdin().lock();
            let mut buf = vec![0u8; STDIN_CHUNK];
            loop {
                let wait = host_vmm::waits::enter("host stdin (read)");
                let read = stdin.read(&mut buf);
                drop(wait);
                let n = match read {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!("stdin: cannot read the host's stdin: {e}");
                        break;
                    }
                };
                if let Err(e) = agent.write_stdin(&target.container, &target.exec, &buf[..n]) {
                    // The process closed its stdin or ended: nothing more to send.
                    tracing::debug!("stdin: {e}");
                    return;
                }
            }
            if let Err(e) = agent.close_stdin(&target.container, &target.exec) {
                tracing::debug!("stdin: close: {e}");
            }
        })
        .context("cannot start the stdin thread")?;
    Ok(())
}

/// Waits until every pump has finished, at most `bound` (a process that left a child
/// holding its output open would otherwise keep host-vmm forever); returns the bytes each
/// copied, `None` for a pump still running or failed (logged).
pub fn drain(pumps: Vec<JoinHandle<anyhow::Result<u64>>>, bound: Duration) -> Vec<Option<u64>> {
    let deadline = Instant::now() + bound;
    let _wait = host_vmm::waits::enter(format!("output pumps to finish (at most {bound:?})"));
    while pumps.iter().any(|p| !p.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    pumps
        .into_iter()
        .map(|p| {
            if !p.is_finished() {
                tracing::warn!("output still open {bound:?} after the process ended: not waiting");
                return None;
            }
            match p.join() {
                Ok(Ok(n)) => Some(n),
                Ok(Err(e)) => {
                    tracing::warn!("{e:#}");
                    None
                }
                Err(_) => None,
            }
        })
        .collect()
}

/// The host terminal's window size (rows, columns), if stdin or stdout is a terminal.
pub fn window_size() -> Option<(u16, u16)> {
    for fd in [io::stdin().as_raw_fd(), io::stdout().as_raw_fd()] {
        // SAFETY: an all-zero winsize is valid plain data.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ writes one winsize into `ws`, which lives across the call.
        let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) };
        if rc == 0 && ws.ws_row > 0 && ws.ws_col > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// The host terminal in raw mode; restored when dropped (on every exit path of `run`).
pub struct RawTerminal {
    fd: i32,
    saved: libc::termios,
}

impl RawTerminal {
    /// Puts stdin's terminal in raw mode; `None` when stdin is not a terminal.
    pub fn enable() -> anyhow::Result<Option<Self>> {
        let fd = io::stdin().as_raw_fd();
        // SAFETY: isatty only inspects the fd.
        if unsafe { libc::isatty(fd) } != 1 {
            return Ok(None);
        }
        // SAFETY: an all-zero termios is valid plain data; tcgetattr fills it.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid out pointer for the duration of the call.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(io::Error::last_os_error()).context("cannot read the terminal's mode");
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is an initialised termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(io::Error::last_os_error()).context("cannot put the terminal in raw mode");
        }
        Ok(Some(Self { fd, saved }))
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: `saved` is the termios read from this fd at enable().
        if unsafe { libc::tcsetattr(self.fd, libc::TCSANOW, &self.saved) } != 0 {
            tracing::warn!(
                "cannot restore the terminal: {}",
                io::Error::last_os_error()
            );
        }
    }
}
