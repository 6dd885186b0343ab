//! The signal threads: sigwait, then hand the signal over (a futex) or exit.

use libc::*;

use super::super::rules::List;

pub fn list() -> List {
    let mut l = super::base::list();
    l.allow(&[SYS_rt_sigtimedwait]);
    l
}
