//! Benchmark hook: stop at the first vCPU entry (`tests/bench/`, `make bench`).
//!
//! With `HOST_VMM_STOP_AFTER_FIRST_ENTRY=1` in the environment, vCPU 0, right
//! before its first KVM_RUN, prints one line on stderr:
//!
//! ```text
//! host-vmm: first vCPU entry monotonic_ns=N user_us=U sys_us=S
//! ```
//!
//! (`CLOCK_MONOTONIC`, and the CPU time the whole process used so far, from
//! `getrusage(RUSAGE_SELF)`). It then lets the guest run for [`KICK_AFTER`],
//! kicks the vCPU out of KVM_RUN and stops the whole process with `SIGSTOP`,
//! so that the benchmark can read its memory (`/proc/PID/smaps`) at that
//! point. If continued, the VM ends with an error naming this hook. Nothing
//! but the benchmarks should set the variable.

use std::time::Duration;

use kvm_ioctls::VcpuFd;

/// The environment variable that turns the hook on (value `1`).
pub const ENV: &str = "HOST_VMM_STOP_AFTER_FIRST_ENTRY";

/// How long the guest runs in its first entry before the kick: long enough
/// to really enter (MMU loaded, guest code running), short against the
/// milliseconds the setup takes.
pub const KICK_AFTER: Duration = Duration::from_micros(100);

/// True when [`ENV`] is `1`.
pub fn enabled() -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == "1")
}

/// `(user, system)` CPU time of the whole process so far, in microseconds.
pub fn process_cpu_us() -> (i64, i64) {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `struct rusage` to the pointer, which points
    // to one we own; zeroed is a valid rusage should it fail.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let us = |tv: libc::timeval| tv.tv_sec * 1_000_000 + tv.tv_usec;
    (us(usage.ru_utime), us(usage.ru_stime))
}

/// `CLOCK_MONOTONIC` in nanoseconds (the clock the benchmark's own timestamps use).
pub fn monotonic_ns() -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes a timespec to a pointer to one we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

/// The line printed at the entry (see the module documentation).
pub fn entry_line(monotonic_ns: i128, cpu_us: (i64, i64)) -> String {
    format!(
        "host-vmm: first vCPU entry monotonic_ns={monotonic_ns} user_us={} sys_us={}",
        cpu_us.0, cpu_us.1
    )
}

/// A one-shot timer that sends `signal` to the calling thread after `after`
/// (a vCPU thread may not start a thread to do it: its seccomp filter allows the
/// timer calls only with this hook on). Deleted when dropped.
struct Kicker(libc::timer_t);

impl Kicker {
    fn arm(signal: libc::c_int, after: Duration) -> std::io::Result<Self> {
        // SAFETY: an all-zero sigevent is valid plain data; the fields are set below.
        let mut ev: libc::sigevent = unsafe { std::mem::zeroed() };
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = signal;
        // SAFETY: gettid has no preconditions.
        ev.sigev_notify_thread_id = unsafe { libc::gettid() };
        let mut timer: libc::timer_t = std::ptr::null_mut();
        // SAFETY: `ev` and `timer` are valid for the call; the kernel fills `timer`.
        if unsafe { libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut timer) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let kicker = Kicker(timer);
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(after.subsec_nanos()),
            },
        };
        // SAFETY: `timer` was created above; `spec` is valid; a null old value is allowed.
        if unsafe { libc::timer_settime(kicker.0, 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(kicker)
    }
}

impl Drop for Kicker {
    fn drop(&mut self) {
        // SAFETY: the timer was created by `arm` and is deleted once.
        unsafe { libc::timer_delete(self.0) };
    }
}

/// Print the entry line, enter the guest once (kicked out with `kick`, the
/// vCPU kick signal, after [`KICK_AFTER`]), stop the process, and return
/// what to report as the VM's end when continued.
pub fn enter_once_and_stop(fd: &mut VcpuFd, kick: libc::c_int) -> String {
    eprintln!("{}", entry_line(monotonic_ns(), process_cpu_us()));
    // The kick signal's handler is installed (`kick_signal`) before vCPUs run.
    let kicker = match Kicker::arm(kick, KICK_AFTER) {
        Ok(k) => k,
        Err(e) => return format!("cannot arm the first-entry kick timer: {e}"),
    };
    let first = match fd.run() {
        Ok(exit) => format!("{exit:?}"),
        Err(e) => format!("KVM_RUN: {e}"),
    };
    drop(kicker);
    fd.set_kvm_immediate_exit(0);
    eprintln!("host-vmm: first vCPU entry returned ({first}); stopping ({ENV})");
    // SAFETY: raising SIGSTOP stops the process until SIGCONT; no memory is involved.
    unsafe { libc::raise(libc::SIGSTOP) };
    format!("stopped after the first vCPU entry ({ENV}; first exit: {first})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_entry_line_format_is_what_the_bench_parses() {
        assert_eq!(
            entry_line(12_345_678_901, (250, 1_500)),
            "host-vmm: first vCPU entry monotonic_ns=12345678901 user_us=250 sys_us=1500"
        );
    }

    #[test]
    fn test_clock_and_cpu_time_move_forward() {
        let t = monotonic_ns();
        let (u, s) = process_cpu_us();
        assert!(t > 0 && u >= 0 && s >= 0);
        assert!(monotonic_ns() >= t);
    }
}
