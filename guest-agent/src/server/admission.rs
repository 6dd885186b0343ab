//! The accept hook of the agent's ttrpc server: every accepted connection passes the peer
//! policy ([`super::peer`]) and takes a connection slot ([`super::slots`]), or is refused
//! (ttrpc closes it at once) and logged, rate-limited ([`super::refusal_log`]).

use std::os::fd::RawFd;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use protocol::ttrpc::{AcceptHook, ConnectionData, HookError, HookOutput};

use super::peer::{self, Refusal};
use super::refusal_log::RefusalLog;
use super::slots::{Slot, Slots};

/// The key of the connection's slot in its ttrpc connection data.
pub const SLOT_KEY: &str = "guest-agent.connection-slot";

#[derive(Debug)]
pub struct Admission {
    slots: Slots,
    log: Mutex<RefusalLog>,
}

impl Admission {
    pub fn new(slots: Slots) -> Self {
        Self {
            slots,
            log: Mutex::new(RefusalLog::default()),
        }
    }

    fn admit(&self, fd: RawFd) -> Result<Slot, Refusal> {
        peer::check(peer::peer_of(fd)?)?;
        self.slots.take().map_err(|live| Refusal::Full { live })
    }

    fn log_refusal(&self, refusal: &Refusal) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        match log.note(Instant::now()) {
            Some(0) => tracing::warn!("agent connection refused: {refusal}"),
            Some(n) => tracing::warn!(
                "agent connection refused: {refusal} ({n} more refused and not logged before)"
            ),
            None => {}
        }
    }
}

impl AcceptHook for Admission {
    fn on_accept(&self, fd: RawFd) -> Result<HookOutput, HookError> {
        match self.admit(fd) {
            Ok(slot) => {
                let mut data = ConnectionData::new();
                data.insert(SLOT_KEY.to_string(), Box::new(slot));
                Ok(HookOutput {
                    data,
                    payload_transform: None,
                })
            }
            Err(refusal) => {
                self.log_refusal(&refusal);
                Err(HookError::Rejected(refusal.to_string()))
            }
        }
    }
}
