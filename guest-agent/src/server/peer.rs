//! Who may call the agent: the policy (pure) and how a connection's peer is read.
//!
//! Only the host may: a vsock peer must have the host's CID ([`HOST_CID`] = 2). Inside the
//! guest, vsock loopback is off in the kernel, so no guest process can reach the agent's
//! listener at all; this check is the second wall, should that ever change (a loopback
//! connection has CID 1 or the guest's own CID). Unix-socket peers are allowed: the agent
//! only listens on a Unix socket in tests, where the socket's path guards it.

use std::os::fd::RawFd;

use nix::sys::socket::{self, AddressFamily, SockaddrLike, SockaddrStorage};

/// `VMADDR_CID_HOST`: the host, from the guest's side.
pub const HOST_CID: u32 = 2;

/// The other end of an accepted connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Vsock {
        cid: u32,
        port: u32,
    },
    Unix,
    /// Any other address family (its `AF_*` number).
    Other {
        family: i32,
    },
}

/// Why a peer is refused (the log line says it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("vsock peer CID {cid} (port {port}) is not the host (CID {HOST_CID})")]
    NotTheHost { cid: u32, port: u32 },
    #[error("peer of address family {family} is not served")]
    Family { family: i32 },
    #[error("cannot read the peer's address: {0}")]
    Unknown(nix::Error),
    #[error("{live} connections are open, the most the agent serves")]
    Full { live: usize },
}

/// The policy: the host's vsock CID and Unix peers pass, nothing else. Pure.
pub fn check(peer: Peer) -> Result<(), Refusal> {
    match peer {
        Peer::Vsock { cid: HOST_CID, .. } | Peer::Unix => Ok(()),
        Peer::Vsock { cid, port } => Err(Refusal::NotTheHost { cid, port }),
        Peer::Other { family } => Err(Refusal::Family { family }),
    }
}

/// The peer of the connected socket `fd` (`getpeername`).
pub fn peer_of(fd: RawFd) -> Result<Peer, Refusal> {
    let addr: SockaddrStorage = socket::getpeername(fd).map_err(Refusal::Unknown)?;
    Ok(match addr.family() {
        Some(AddressFamily::Vsock) => match addr.as_vsock_addr() {
            Some(v) => Peer::Vsock {
                cid: v.cid(),
                port: v.port(),
            },
            None => Peer::Other {
                family: libc::AF_VSOCK,
            },
        },
        Some(AddressFamily::Unix) => Peer::Unix,
        Some(family) => Peer::Other {
            family: family as i32,
        },
        None => Peer::Other { family: -1 },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;

    #[test]
    fn test_only_the_host_cid_and_unix_pass() {
        assert_eq!(check(Peer::Vsock { cid: 2, port: 1234 }), Ok(()));
        assert_eq!(check(Peer::Unix), Ok(()));
        // Loopback (CID 1), the guest's own CID, any other VM, the "any" CID.
        for cid in [0, 1, 3, 4, 1000, u32::MAX] {
            assert_eq!(
                check(Peer::Vsock { cid, port: 99 }),
                Err(Refusal::NotTheHost { cid, port: 99 }),
                "{cid}"
            );
        }
        assert_eq!(
            check(Peer::Other {
                family: libc::AF_INET
            }),
            Err(Refusal::Family {
                family: libc::AF_INET
            })
        );
    }

    #[test]
    fn test_refusals_say_why() {
        let text = check(Peer::Vsock { cid: 3, port: 5 })
            .unwrap_err()
            .to_string();
        assert_eq!(text, "vsock peer CID 3 (port 5) is not the host (CID 2)");
    }

    #[test]
    fn test_peer_of_a_unix_socket_and_of_a_non_socket() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_of(a.as_raw_fd()), Ok(Peer::Unix));
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert!(matches!(
            peer_of(file.as_raw_fd()),
            Err(Refusal::Unknown(nix::Error::ENOTSOCK))
        ));
    }
}
