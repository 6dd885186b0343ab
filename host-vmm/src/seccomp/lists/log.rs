//! The agent log sink (and the console writer): wait (poll), accept the agent's
//! connection, read lines, append them to the log file (and stderr); once it has the
//! agent's connection it removes the port's socket file (unlink).

use libc::*;

use super::super::rules::List;
use super::sys;

pub fn list() -> List {
    let mut l = super::base::list();
    l.allow(&[SYS_accept4, SYS_read, SYS_recvfrom])
        .allow(sys::POLL)
        .allow(sys::STAT)
        .allow(sys::UNLINK);
    l
}
