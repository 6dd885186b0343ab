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

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn test_a_unix_peer_takes_a_slot_that_its_data_gives_back() {
        let slots = Slots::new(1);
        let hook = Admission::new(slots.clone());
        let (a, _b) = UnixStream::pair().unwrap();
        let out = hook.on_accept(a.as_raw_fd()).unwrap();
        assert!(out.data.contains_key(SLOT_KEY));
        assert_eq!(slots.live(), 1);
        // Full: the next one is refused, saying so.
        let (c, _d) = UnixStream::pair().unwrap();
        let Err(HookError::Rejected(why)) = hook.on_accept(c.as_raw_fd()) else {
            panic!("a second connection passed a bound of 1");
        };
        assert!(why.contains("1 connections are open"), "{why}");
        // ttrpc drops the data with the connection: the slot is free again.
        drop(out);
        assert_eq!(slots.live(), 0);
        assert!(hook.on_accept(c.as_raw_fd()).is_ok());
    }

    #[test]
    fn test_a_peer_of_another_family_is_refused_without_a_slot() {
        let slots = Slots::new(4);
        let hook = Admission::new(slots.clone());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (conn, _) = listener.accept().unwrap();
        for _ in 0..100 {
            let Err(HookError::Rejected(why)) = hook.on_accept(conn.as_raw_fd()) else {
                panic!("a TCP peer was accepted");
            };
            assert!(why.contains("address family"), "{why}");
        }
        assert_eq!(slots.live(), 0);
    }
}
