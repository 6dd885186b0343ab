//! Run one subject (host-vmm or the floor) to its first vCPU entry: spawn it
//! with the first-entry hook on, wait until it stops itself, keep its
//! /proc/PID/smaps, kill it, and read its entry line.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use host_vmm::kvm::first_entry;

/// A subject that has not stopped by then is killed and the run fails.
const TIMEOUT: Duration = Duration::from_secs(60);

/// One run, all times in microseconds from just before the spawn.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Spawn to the moment right before the first KVM_RUN (the entry line's clock).
    pub entry_wall_us: f64,
    /// CPU time (user + system, all threads) the subject used up to then (its own getrusage).
    pub entry_cpu_us: f64,
    /// Spawn to the parent seeing the subject stopped after its first entry returned.
    pub stop_wall_us: f64,
    /// CPU time of the subject until it stopped (wait4's rusage of the stopped child).
    pub stop_cpu_us: f64,
    /// /proc/PID/smaps at the stop.
    pub smaps: String,
}

fn tv_us(tv: libc::timeval) -> f64 {
    (tv.tv_sec as f64) * 1e6 + tv.tv_usec as f64
}

/// wait4 on `pid`; returns (status, rusage).
fn wait4(pid: libc::pid_t, options: libc::c_int) -> Result<(libc::c_int, libc::rusage), String> {
    let mut status = 0;
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    loop {
        // SAFETY: status and usage point to locals we own; pid is our child.
        let r = unsafe { libc::wait4(pid, &mut status, options, usage.as_mut_ptr()) };
        if r == pid {
            // SAFETY: zero-initialised and filled by wait4: a valid rusage.
            return Ok((status, unsafe { usage.assume_init() }));
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4({pid}): {err}"));
        }
    }
}

fn kill(pid: libc::pid_t, signal: libc::c_int) {
    // SAFETY: pid is our child, not yet reaped (so it cannot be reused).
    unsafe { libc::kill(pid, signal) };
}

/// Parse `... first vCPU entry monotonic_ns=N user_us=U sys_us=S` from the
/// subject's stderr: (monotonic_ns, user_us + sys_us).
pub fn parse_entry_line(stderr: &str) -> Option<(i128, f64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" first vCPU entry monotonic_ns="))?;
    let field = |key: &str| -> Option<i128> {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.parse().ok())
    };
    let ns = field("monotonic_ns=")?;
    let cpu = field("user_us=")? + field("sys_us=")?;
    Some((ns, cpu as f64))
}

/// Run `cmd` once to its first entry (see the module documentation).
pub fn run_once(mut cmd: Command) -> Result<Sample, String> {
    cmd.env(first_entry::ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let t0 = first_entry::monotonic_ns();
    let mut child = cmd.spawn().map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let pid = libc::pid_t::try_from(child.id()).map_err(|_| "pid out of range")?;
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(TIMEOUT) == Err(mpsc::RecvTimeoutError::Timeout) {
            kill(pid, libc::SIGKILL);
        }
    });
    let stopped = wait4(pid, libc::WUNTRACED);
    let t_stop = first_entry::monotonic_ns();
    let _ = done_tx.send(());
    let _ = watchdog.join();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"));
    kill(pid, libc::SIGKILL);
    let reaped = wait4(pid, 0);
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    let (status, usage) = stopped?;
    reaped?;
    if !libc::WIFSTOPPED(status) {
        return Err(format!(
            "{cmd:?} did not stop at its first vCPU entry (wait status {status:#x}); its stderr:\n{stderr}"
        ));
    }
    let smaps = smaps.map_err(|e| format!("read /proc/{pid}/smaps: {e}"))?;
    let (entry_ns, entry_cpu_us) = parse_entry_line(&stderr)
        .ok_or_else(|| format!("{cmd:?} printed no first-entry line; its stderr:\n{stderr}"))?;
    Ok(Sample {
        entry_wall_us: (entry_ns - t0) as f64 / 1e3,
        entry_cpu_us,
        stop_wall_us: (t_stop - t0) as f64 / 1e3,
        stop_cpu_us: tv_us(usage.ru_utime) + tv_us(usage.ru_stime),
        smaps,
    })
}
