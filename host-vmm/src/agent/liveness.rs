//! Is the agent still answering? The calls that wait for the guest's processes
//! (`WaitProcess`, `ReadStdout`, ...) have no timeout of their own: a container may run
//! for ever. An agent that stops answering must not keep the host waiting for ever too, so
//! while such a call is in flight a watcher asks `Health.Check` every [`Heartbeat::every`]
//! on a connection of its own, and declares the agent dead once no check has succeeded for
//! [`Heartbeat::limit`]: the caller then gives up its waits and reports the sandbox dead.
//!
//! [`Liveness`] is the pure rule (unit-tested); [`watch`] runs it against a real agent.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use super::client::{AgentClient, ClientError};

/// How often to check and how long silence may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    /// Time between checks.
    pub every: Duration,
    /// Each check's own timeout.
    pub timeout: Duration,
    /// No successful check for this long: the agent is dead.
    pub limit: Duration,
}

impl Default for Heartbeat {
    /// Generous for a guest under nested emulation and heavy I/O (a check normally takes a
    /// few ms there): 30 s of silence.
    fn default() -> Self {
        Self {
            every: Duration::from_secs(5),
            timeout: Duration::from_secs(10),
            limit: Duration::from_secs(30),
        }
    }
}

/// The agent was declared dead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the sandbox's agent stopped answering: no reply to Health.Check for {:.0} s (last error: {last_error})",
    silent.as_secs_f64()
)]
pub struct AgentDead {
    pub silent: Duration,
    pub last_error: String,
}

/// The rule: alive while some check succeeded within `limit`.
#[derive(Debug, Clone)]
pub struct Liveness {
    limit: Duration,
    last_ok: Instant,
    last_error: String,
}

impl Liveness {
    /// Starts counting at `now` (as if a check had just succeeded).
    pub fn new(limit: Duration, now: Instant) -> Self {
        Self {
            limit,
            last_ok: now,
            last_error: String::new(),
        }
    }

    /// A check that ended at `now`: `Err(AgentDead)` once the agent has been silent for the
    /// limit.
    pub fn record(&mut self, result: Result<(), String>, now: Instant) -> Result<(), AgentDead> {
        match result {
            Ok(()) => {
                self.last_ok = now;
                Ok(())
            }
            Err(e) => {
                self.last_error = e;
                let silent = now.saturating_duration_since(self.last_ok);
                if silent >= self.limit {
                    Err(AgentDead {
                        silent,
                        last_error: self.last_error.clone(),
                    })
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Checks the agent every `hb.every` until `stop` says so (a message or a closed channel:
/// `None`) or the agent is dead (`Some`). `connect` opens a connection; a failed one is
/// opened again at the next check, so a restart of the connection is not a death, but
/// silence is.
pub fn watch(
    connect: &dyn Fn() -> Result<AgentClient, String>,
    hb: Heartbeat,
    stop: &Receiver<()>,
) -> Option<AgentDead> {
    let mut live = Liveness::new(hb.limit, Instant::now());
    let mut agent: Option<AgentClient> = None;
    loop {
        match stop.recv_timeout(hb.every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
        }
        // A check that timed out keeps its connection: a late reply is dropped by the
        // client, and the next check may well be answered (a busy guest is not a dead one).
        if agent.is_none() {
            match connect() {
                Ok(a) => agent = Some(a.with_rpc_timeout(hb.timeout)),
                Err(e) => {
                    if let Err(dead) =
                        live.record(Err(format!("cannot connect: {e}")), Instant::now())
                    {
                        return Some(dead);
                    }
                    continue;
                }
            }
        }
        let result = match &agent {
            Some(a) => a.check().map_err(|e: ClientError| e.to_string()),
            None => continue,
        };
        if let Err(e) = &result {
            tracing::debug!("agent heartbeat: {e}");
        }
        if let Err(dead) = live.record(result, Instant::now()) {
            return Some(dead);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_liveness_dies_only_after_the_limit_of_silence() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut l = Liveness::new(s(30), t0);
        assert_eq!(l.record(Err("timeout".into()), t0 + s(10)), Ok(()));
        assert_eq!(l.record(Err("timeout".into()), t0 + s(20)), Ok(()));
        // A success restarts the count.
        assert_eq!(l.record(Ok(()), t0 + s(25)), Ok(()));
        assert_eq!(l.record(Err("reset".into()), t0 + s(50)), Ok(()));
        let dead = l.record(Err("closed".into()), t0 + s(55)).unwrap_err();
        assert_eq!(dead.silent, s(30));
        assert_eq!(dead.last_error, "closed");
        let msg = dead.to_string();
        assert!(msg.contains("for 30 s") && msg.contains("closed"), "{msg}");
    }

    #[test]
    fn test_watch_declares_an_unreachable_agent_dead_and_stops_on_request() {
        let hb = Heartbeat {
            every: Duration::from_millis(10),
            timeout: Duration::from_millis(10),
            limit: Duration::from_millis(50),
        };
        let (_keep, stop) = std::sync::mpsc::channel();
        let started = Instant::now();
        let dead = watch(&|| Err("no socket".to_string()), hb, &stop).expect("dead");
        assert!(started.elapsed() >= hb.limit);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(dead.last_error, "cannot connect: no socket");

        let (tx, stop) = std::sync::mpsc::channel();
        drop(tx);
        assert_eq!(watch(&|| Err("x".to_string()), hb, &stop), None);
    }

    /// The regression test for an agent that stops answering: the hybrid vsock handshake
    /// succeeds (the VMM is alive) but nothing ever replies. Before the heartbeat, a
    /// `WaitProcess` on such an agent waited for ever; now the watcher declares it dead.
    #[test]
    fn test_watch_declares_a_silent_agent_dead() {
        use std::io::{BufRead, BufReader, Write};
        use std::os::unix::net::UnixListener;

        let dir = std::env::temp_dir().join(format!("hv-liveness-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let uds = dir.join("vsock.sock");
        let listener = UnixListener::bind(&uds).unwrap();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut line = String::new();
                let _ = BufReader::new(&stream).read_line(&mut line);
                let _ = stream.write_all(b"OK 1073741824\n");
                // Read nothing more, answer nothing: a hung agent.
                held.push(stream);
            }
        });
        let hb = Heartbeat {
            every: Duration::from_millis(20),
            timeout: Duration::from_millis(100),
            limit: Duration::from_millis(300),
        };
        let opts = super::super::ConnectOptions {
            deadline: Duration::from_secs(2),
            ..Default::default()
        };
        let connect = || AgentClient::connect(&uds, &opts).map_err(|e| e.to_string());
        let (_keep, stop) = std::sync::mpsc::channel();
        let started = Instant::now();
        let dead = watch(&connect, hb, &stop).expect("a silent agent is dead");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(dead.last_error.contains("Check"), "{}", dead.last_error);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
