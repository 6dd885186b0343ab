//! The agent log sink (and a console writer): wait (poll), accept the agent's
//! connection, read lines, append them to the log file (and stderr).

use libc::*;

use super::super::rules::List;
use super::sys;

pub fn list() -> List {
    let mut l = super::base::list();
    l.allow(&[SYS_accept4, SYS_read, SYS_recvfrom])
        .allow(sys::POLL)
        .allow(sys::STAT);
    l
}
