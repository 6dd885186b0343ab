//! The host's ttrpc client of the guest agent, over hybrid vsock.
//!
//! [`AgentClient::connect`] retries the hybrid vsock handshake with backoff while the VMM and
//! the guest come up, until a total deadline; then it fails naming the socket and carrying the
//! last failure as its source. The typed calls check every reply ([`super::validate`]).

use std::os::fd::IntoRawFd;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::agent::{GuestDetailsRequest, SetGuestDateTimeRequest};
use protocol::agent_ttrpc::AgentServiceClient;
use protocol::health::{health_check_response::ServingStatus, CheckRequest};
use protocol::health_ttrpc::HealthClient;
use protocol::ttrpc::{self, context, Code};

use super::hybrid_vsock::{self, HandshakeError};
use super::validate::{self, GuestDetails};

/// How to reach the agent.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The guest port the agent listens on.
    pub port: u32,
    /// Give up connecting after this long in total.
    pub deadline: Duration,
    /// One handshake attempt waits at most this long for `OK`.
    pub attempt_timeout: Duration,
    /// Each RPC waits at most this long for its reply.
    pub rpc_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            port: protocol::AGENT_VSOCK_PORT,
            deadline: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(5),
            rpc_timeout: Duration::from_secs(30),
        }
    }
}

const FIRST_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "agent not reachable through {} after {waited:?} ({attempts} attempts)",
        path.display()
    )]
    Unreachable {
        path: PathBuf,
        waited: Duration,
        attempts: u32,
        #[source]
        last: HandshakeError,
    },
    #[error("agent handshake through {} refused", path.display())]
    Handshake {
        path: PathBuf,
        #[source]
        source: HandshakeError,
    },
    #[error("cannot start the ttrpc client")]
    Client(#[source] ttrpc::Error),
    #[error("agent {rpc}: {code:?}: {message}")]
    Status {
        rpc: &'static str,
        code: Code,
        message: String,
    },
    #[error("agent {rpc}: transport failed")]
    Transport {
        rpc: &'static str,
        #[source]
        source: ttrpc::Error,
    },
    #[error("agent {rpc}: invalid reply: {reason}")]
    InvalidReply { rpc: &'static str, reason: String },
    #[error("cannot read the host clock")]
    Clock(#[source] std::time::SystemTimeError),
}

impl ClientError {
    /// The ttrpc status code when the agent answered with an error status.
    pub fn status_code(&self) -> Option<Code> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    fn from_ttrpc(rpc: &'static str, e: ttrpc::Error) -> Self {
        match e {
            ttrpc::Error::RpcStatus(s) => ClientError::Status {
                rpc,
                code: s.code(),
                // The message is the guest's: keep it one bounded line.
                message: validate::one_line(&s.message, validate::MAX_TEXT),
            },
            source => ClientError::Transport { rpc, source },
        }
    }
}

/// The agent's version answer, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentVersion {
    pub agent_version: String,
    pub protocol_version: String,
}

/// A connection to the agent.
pub struct AgentClient {
    health: HealthClient,
    agent: AgentServiceClient,
    rpc_timeout: Duration,
    socket: PathBuf,
    attempts: u32,
}

impl AgentClient {
    /// Connects through the hybrid vsock socket `uds`, retrying transient failures with
    /// backoff until `opts.deadline`.
    pub fn connect(uds: &Path, opts: &ConnectOptions) -> Result<Self, ClientError> {
        let started = Instant::now();
        let deadline = started + opts.deadline;
        let mut backoff = FIRST_BACKOFF;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            let timeout = opts.attempt_timeout.min(remaining);
            let wait = crate::waits::enter(format!(
                "agent connect (port {}) via {}",
                opts.port,
                uds.display()
            ));
            let attempt = hybrid_vsock::connect(uds, opts.port, timeout);
            drop(wait);
            let last = match attempt {
                Ok((stream, host_port)) => {
                    tracing::debug!(
                        socket = %uds.display(),
                        host_port,
                        attempts,
                        "agent: hybrid vsock connected"
                    );
                    let client =
                        ttrpc::Client::new(stream.into_raw_fd()).map_err(ClientError::Client)?;
                    return Ok(Self {
                        health: HealthClient::new(client.clone()),
                        agent: AgentServiceClient::new(client),
                        rpc_timeout: opts.rpc_timeout,
                        socket: uds.to_path_buf(),
                        attempts,
                    });
                }
                Err(e) if !e.is_transient() => {
                    return Err(ClientError::Handshake {
                        path: uds.to_path_buf(),
                        source: e,
                    })
                }
                Err(e) => e,
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(ClientError::Unreachable {
                    path: uds.to_path_buf(),
                    waited: started.elapsed(),
                    attempts,
                    last,
                });
            }
            tracing::trace!(socket = %uds.display(), error = %last, "agent: not yet reachable");
            thread::sleep(backoff.min(remaining));
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// The same connection with another per-RPC timeout (for the calls that have one).
    pub fn with_rpc_timeout(mut self, timeout: Duration) -> Self {
        self.rpc_timeout = timeout;
        self
    }

    /// The hybrid vsock socket this client dialed.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// How many handshake attempts the connection took.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    fn ctx(&self) -> context::Context {
        context::with_timeout(i64::try_from(self.rpc_timeout.as_nanos()).unwrap_or(i64::MAX))
    }

    /// Calls any `AgentService` RPC with this client's timeout, mapping its error. The typed
    /// calls below are built on it; new RPCs can use it until they get a typed call.
    pub fn call<T>(
        &self,
        rpc: &'static str,
        f: impl FnOnce(&AgentServiceClient, context::Context) -> ttrpc::Result<T>,
    ) -> Result<T, ClientError> {
        self.call_for(rpc, "", f)
    }

    /// [`Self::call`], recording `<rpc> <target>` as the calling thread's wait
    /// ([`crate::waits`]) while the call is in flight.
    pub fn call_for<T>(
        &self,
        rpc: &'static str,
        target: &str,
        f: impl FnOnce(&AgentServiceClient, context::Context) -> ttrpc::Result<T>,
    ) -> Result<T, ClientError> {
        let _wait = crate::waits::enter(if target.is_empty() {
            format!("agent {rpc}")
        } else {
            format!("agent {rpc} {target}")
        });
        f(&self.agent, self.ctx()).map_err(|e| ClientError::from_ttrpc(rpc, e))
    }

    /// `Health.Check`: the agent serves.
    pub fn check(&self) -> Result<(), ClientError> {
        let _wait = crate::waits::enter("agent Health.Check");
        let r = self
            .health
            .check(self.ctx(), &CheckRequest::new())
            .map_err(|e| ClientError::from_ttrpc("Check", e))?;
        match r.status.enum_value() {
            Ok(ServingStatus::SERVING) => Ok(()),
            other => Err(ClientError::InvalidReply {
                rpc: "Check",
                reason: format!("status {other:?}, not SERVING"),
            }),
        }
    }

    /// `Health.Version`.
    pub fn version(&self) -> Result<AgentVersion, ClientError> {
        let r = self
            .health
            .version(self.ctx(), &CheckRequest::new())
            .map_err(|e| ClientError::from_ttrpc("Version", e))?;
        let invalid = |reason| ClientError::InvalidReply {
            rpc: "Version",
            reason,
        };
        Ok(AgentVersion {
            agent_version: validate::text("agent_version", &r.agent_version).map_err(invalid)?,
            protocol_version: validate::text("grpc_version", &r.grpc_version).map_err(invalid)?,
        })
    }

    /// `GetGuestDetails`, asking for everything.
    pub fn guest_details(&self) -> Result<GuestDetails, ClientError> {
        let mut req = GuestDetailsRequest::new();
        req.mem_block_size = true;
        req.mem_hotplug_probe = true;
        let r = self.call("GetGuestDetails", |a, ctx| a.get_guest_details(ctx, &req))?;
        validate::guest_details(&r).map_err(|reason| ClientError::InvalidReply {
            rpc: "GetGuestDetails",
            reason,
        })
    }

    /// `SetGuestDateTime` to `time` (microsecond precision).
    pub fn set_guest_date_time(&self, time: SystemTime) -> Result<(), ClientError> {
        let since = time
            .duration_since(UNIX_EPOCH)
            .map_err(ClientError::Clock)?;
        let mut req = SetGuestDateTimeRequest::new();
        req.sec = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
        req.usec = i64::from(since.subsec_micros());
        self.call("SetGuestDateTime", |a, ctx| {
            a.set_guest_date_time(ctx, &req)
        })?;
        Ok(())
    }
}
