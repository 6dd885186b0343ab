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

/// Print the entry line, enter the guest once (kicked out with `kick`, the
/// vCPU kick signal, after [`KICK_AFTER`]), stop the process, and return
/// what to report as the VM's end when continued.
pub fn enter_once_and_stop(fd: &mut VcpuFd, kick: libc::c_int) -> String {
    eprintln!("{}", entry_line(monotonic_ns(), process_cpu_us()));
    // SAFETY: pthread_self has no preconditions.
    let this_thread = unsafe { libc::pthread_self() };
    let kicker = std::thread::spawn(move || {
        std::thread::sleep(KICK_AFTER);
        // SAFETY: the target is the calling vCPU thread, which joins this
        // thread before it can end, so the pthread_t is still valid; the
        // signal's handler is installed (`kick_signal`) before vCPUs run.
        unsafe { libc::pthread_kill(this_thread, kick) };
    });
    let first = match fd.run() {
        Ok(exit) => format!("{exit:?}"),
        Err(e) => format!("KVM_RUN: {e}"),
    };
    if kicker.join().is_err() {
        tracing::warn!("first-entry kicker thread panicked");
    }
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
