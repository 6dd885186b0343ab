//! What happens when a confined thread makes a call its filter forbids: the filter
//! traps (SECCOMP_RET_TRAP), this handler writes one line naming the thread kind and
//! the call's number, and the process then dies of SIGSYS (the handler is installed
//! with SA_RESETHAND, so the SIGSYS it raises takes the default action, a core dump,
//! once it returns). Everything here is async-signal-safe: no allocation, no lock,
//! only `write` and `raise`, both in every kind's allow-list.

use std::cell::Cell;
use std::io;

thread_local! {
    /// The kind of the calling thread's filter ("" before it has one).
    static KIND: Cell<&'static str> = const { Cell::new("") };
}

/// Records the calling thread's kind for the handler's message.
pub fn set_thread_kind(kind: &'static str) {
    KIND.with(|k| k.set(kind));
}

/// The start of `siginfo_t` for SIGSYS (`_sigsys` in the kernel's union), the same on
/// x86_64 and aarch64.
#[repr(C)]
struct SigsysInfo {
    signo: libc::c_int,
    errno: libc::c_int,
    code: libc::c_int,
    _pad: libc::c_int,
    call_addr: *mut libc::c_void,
    syscall: libc::c_int,
    arch: libc::c_uint,
}

/// A fixed buffer the handler formats its line into.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn push(&mut self, s: &[u8]) {
        for &b in s {
            if self.len < self.buf.len() {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
    }

    fn push_number(&mut self, n: i64) {
        if n < 0 {
            self.push(b"-");
        }
        let mut digits = [0u8; 20];
        let mut v = n.unsigned_abs();
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}

/// The line the handler writes (pure, for the tests).
fn message(kind: &str, syscall: i64) -> Line {
    let mut line = Line {
        buf: [0; 256],
        len: 0,
    };
    line.push(b"host-vmm: seccomp: a ");
    line.push(if kind.is_empty() {
        b"?"
    } else {
        kind.as_bytes()
    });
    line.push(b" thread made system call ");
    line.push_number(syscall);
    line.push(b", which its filter forbids: stopping (SIGSYS); --no-seccomp runs unconfined, for debugging only\n");
    line
}

extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    let syscall = if info.is_null() {
        -1
    } else {
        // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers; for a
        // seccomp trap its union holds `_sigsys`, whose layout SigsysInfo mirrors.
        i64::from(unsafe { (*info.cast::<SigsysInfo>()).syscall })
    };
    let kind = KIND.try_with(Cell::get).unwrap_or("");
    let line = message(kind, syscall);
    // SAFETY: writes `len` initialised bytes of a local buffer to stderr.
    let _ = unsafe { libc::write(2, line.buf.as_ptr().cast(), line.len) };
    // SAFETY: raise has no memory preconditions. SIGSYS is blocked while this handler
    // runs and SA_RESETHAND restored the default action, so the process dies of it
    // as soon as the handler returns.
    unsafe { libc::raise(libc::SIGSYS) };
}

/// Installs the handler for the whole process.
pub fn install_handler() -> io::Result<()> {
    // SAFETY: an all-zero sigaction is valid plain data; the fields are set below.
    let mut act: libc::sigaction = unsafe { std::mem::zeroed() };
    act.sa_sigaction = on_sigsys as *const () as usize;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_RESETHAND;
    // SAFETY: `act.sa_mask` is a valid sigset_t owned by `act`.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    // SAFETY: `act` is initialised; a null old-action pointer is allowed.
    if unsafe { libc::sigaction(libc::SIGSYS, &act, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_message_names_kind_and_number() {
        let l = message("vcpu", 41);
        let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
        assert!(s.starts_with("host-vmm: seccomp: a vcpu thread made system call 41, "));
        assert!(s.ends_with('\n'));
        let l = message("", -1);
        let s = std::str::from_utf8(&l.buf[..l.len]).unwrap();
        assert!(s.contains("a ? thread made system call -1,"), "{s}");
        let l = message(&"k".repeat(400), i64::MAX);
        assert_eq!(l.len, l.buf.len(), "cut at the buffer, never beyond");
    }

    #[test]
    fn test_sigsys_info_layout_matches_the_kernel() {
        assert_eq!(std::mem::offset_of!(SigsysInfo, call_addr), 16);
        assert_eq!(std::mem::offset_of!(SigsysInfo, syscall), 24);
        assert_eq!(std::mem::offset_of!(SigsysInfo, arch), 28);
    }
}
