//! One vCPU thread: runs KVM_RUN, routes I/O exits to the buses and turns
//! every other way of stopping into a [`GuestExit`].
//!
//! Stopping: when the VM ends, the VMM sends [`kick_signal`] to every vCPU
//! thread. Its handler sets `immediate_exit` in that thread's `kvm_run`, so
//! KVM_RUN returns at once whether the thread is inside it or about to enter
//! it; the loop then sees the exit request and returns.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

use kvm_ioctls::{VcpuExit, VcpuFd};
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use super::first_entry;
use crate::devices::Bus;
use crate::exit::{ExitSignal, GuestExit};

/// KVM_SYSTEM_EVENT_* types.
const SYSTEM_EVENT_SHUTDOWN: u32 = kvm_bindings::KVM_SYSTEM_EVENT_SHUTDOWN;
const SYSTEM_EVENT_RESET: u32 = kvm_bindings::KVM_SYSTEM_EVENT_RESET;

thread_local! {
    /// This thread's `kvm_run.immediate_exit`, while it runs a vCPU.
    static IMMEDIATE_EXIT: Cell<*mut u8> = const { Cell::new(std::ptr::null_mut()) };
}

extern "C" fn handle_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // `try_with` cannot allocate or panic: the key has a const initialiser.
    let _ = IMMEDIATE_EXIT.try_with(|p| {
        let p = p.get();
        if !p.is_null() {
            // SAFETY: the pointer was set by this thread to the
            // immediate_exit byte of its own kvm_run mapping and is reset to
            // null before that mapping (the VcpuFd) is dropped; a volatile
            // byte store is async-signal-safe.
            unsafe { p.write_volatile(1) };
        }
    });
}

/// The signal that kicks vCPU threads out of KVM_RUN (registered once).
pub fn kick_signal() -> Result<libc::c_int, vmm_sys_util::errno::Error> {
    static REGISTER: Once = Once::new();
    let mut result = Ok(());
    REGISTER.call_once(|| result = register_signal_handler(SIGRTMIN(), handle_kick));
    result.map(|()| SIGRTMIN())
}

/// What a vCPU thread shares with the rest of the VM.
#[derive(Clone)]
pub struct VcpuRunContext {
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub exit: Arc<ExitSignal>,
}

/// How many exits of each kind a vCPU took (logged when it stops).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ExitCounts {
    pub io: u64,
    pub mmio: u64,
    pub interrupted: u64,
    pub other: u64,
}

/// A configured vCPU, ready to run on its own thread.
pub struct Vcpu {
    pub index: u32,
    pub fd: VcpuFd,
}

/// Clears this thread's immediate_exit pointer when the run loop ends, and
/// reports a vCPU thread that panics so the VMM does not wait forever.
struct RunGuard<'a> {
    index: u32,
    exit: &'a ExitSignal,
}

impl Drop for RunGuard<'_> {
    fn drop(&mut self) {
        let _ = IMMEDIATE_EXIT.try_with(|p| p.set(std::ptr::null_mut()));
        if std::thread::panicking() {
            self.exit.request(GuestExit::Error {
                vcpu: self.index,
                reason: "vCPU thread panicked".into(),
                regs: String::new(),
            });
        }
    }
}

impl Vcpu {
    /// Run until the guest or another thread ends the VM; report how it
    /// ended to `ctx.exit` (the first report wins).
    pub fn run(self, ctx: &VcpuRunContext) {
        let _ = self.run_until(ctx, None);
    }

    /// [`Vcpu::run`] for a hot-plugged vCPU: also returns, giving the vCPU back, once
    /// `park` is set and the thread kicked (KVM cannot destroy a vCPU: a removed one
    /// is kept and run again when the CPU is added back).
    pub fn run_until_parked(self, ctx: &VcpuRunContext, park: &AtomicBool) -> Vcpu {
        self.run_until(ctx, Some(park))
    }

    fn run_until(mut self, ctx: &VcpuRunContext, park: Option<&AtomicBool>) -> Vcpu {
        // A parked vCPU was kicked: its next KVM_RUN must not return at once.
        self.fd.set_kvm_immediate_exit(0);
        let immediate_exit = std::ptr::addr_of_mut!(self.fd.get_kvm_run().immediate_exit);
        IMMEDIATE_EXIT.with(|p| p.set(immediate_exit));
        let guard = RunGuard {
            index: self.index,
            exit: &ctx.exit,
        };
        let mut counts = ExitCounts::default();
        // Not a wait for something, but where the thread spends its life: listed in the dump.
        let _wait = crate::waits::enter("running the guest (KVM_RUN)");
        let outcome = if self.index == 0 && first_entry::enabled() {
            let reason = first_entry::enter_once_and_stop(&mut self.fd, SIGRTMIN());
            Some(self.error(reason))
        } else {
            self.run_loop(ctx, park, &mut counts)
        };
        drop(guard);
        tracing::debug!(vcpu = self.index, ?counts, "vCPU stopped");
        if let Some(exit) = outcome {
            ctx.exit.request(exit);
        }
        self
    }

    /// `None` when stopped because the VM is ending anyway.
    fn run_loop(
        &mut self,
        ctx: &VcpuRunContext,
        park: Option<&AtomicBool>,
        counts: &mut ExitCounts,
    ) -> Option<GuestExit> {
        let index = self.index;
        loop {
            // Both are set before the kick, so KVM_RUN's EINTR leads here.
            if ctx.exit.is_requested() || park.is_some_and(|p| p.load(Ordering::SeqCst)) {
                return None;
            }
            let exit = match self.fd.run() {
                Ok(exit) => exit,
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    // Re-arm: a stray signal must not make every later
                    // KVM_RUN return at once. A stop request is already
                    // visible to the check at the top of the loop, because
                    // it is recorded before the kick is sent.
                    self.fd.set_kvm_immediate_exit(0);
                    counts.interrupted += 1;
                    continue;
                }
                Err(e) => {
                    return Some(self.error(format!("KVM_RUN failed: {e}")));
                }
            };
            tracing::trace!(vcpu = index, ?exit, "vCPU exit");
            match &exit {
                VcpuExit::IoIn(..) | VcpuExit::IoOut(..) => counts.io += 1,
                VcpuExit::MmioRead(..) | VcpuExit::MmioWrite(..) => counts.mmio += 1,
                VcpuExit::Intr => counts.interrupted += 1,
                _ => counts.other += 1,
            }
            match exit {
                VcpuExit::IoIn(port, data) => {
                    if !ctx.pio.read(u64::from(port), data) {
                        data.fill(0xff);
                        tracing::trace!(
                            vcpu = index,
                            port = format_args!("{port:#x}"),
                            "read from unclaimed port"
                        );
                    }
                }
                VcpuExit::IoOut(port, data) => {
                    if !ctx.pio.write(u64::from(port), data) {
                        tracing::trace!(
                            vcpu = index,
                            port = format_args!("{port:#x}"),
                            "write to unclaimed port"
                        );
                    }
                }
                VcpuExit::MmioRead(addr, data) => {
                    if !ctx.mmio.read(addr, data) {
                        data.fill(0xff);
                        tracing::trace!(
                            vcpu = index,
                            addr = format_args!("{addr:#x}"),
                            "read from unclaimed MMIO"
                        );
                    }
                }
                VcpuExit::MmioWrite(addr, data) => {
                    if !ctx.mmio.write(addr, data) {
                        tracing::trace!(
                            vcpu = index,
                            addr = format_args!("{addr:#x}"),
                            "write to unclaimed MMIO"
                        );
                    }
                }
                VcpuExit::Intr => {}
                VcpuExit::Shutdown => {
                    return Some(GuestExit::TripleFault {
                        vcpu: index,
                        regs: self.registers(),
                    });
                }
                VcpuExit::SystemEvent(kind, data) => {
                    let data = data.to_vec();
                    return Some(match kind {
                        SYSTEM_EVENT_SHUTDOWN => GuestExit::PowerOff,
                        SYSTEM_EVENT_RESET => GuestExit::Reset {
                            source: "KVM system event".into(),
                        },
                        _ => self.error(format!("KVM system event {kind} {data:?}")),
                    });
                }
                VcpuExit::FailEntry(reason, cpu) => {
                    return Some(self.error(format!(
                        "KVM_EXIT_FAIL_ENTRY: hardware entry failure reason {reason:#x} on host CPU {cpu}"
                    )));
                }
                VcpuExit::InternalError => {
                    let suberror = self.internal_suberror();
                    return Some(self.error(format!(
                        "KVM_EXIT_INTERNAL_ERROR: suberror {suberror} (1 = emulation failure)"
                    )));
                }
                other => {
                    let what = format!("unexpected KVM exit {other:?}");
                    return Some(self.error(what));
                }
            }
        }
    }

    fn error(&self, reason: String) -> GuestExit {
        GuestExit::Error {
            vcpu: self.index,
            reason,
            regs: self.registers(),
        }
    }

    fn internal_suberror(&mut self) -> u32 {
        let run = self.fd.get_kvm_run();
        // SAFETY: called right after KVM_RUN returned KVM_EXIT_INTERNAL_ERROR,
        // for which `internal` is the union member KVM filled in; it is plain
        // integers, valid for any bit pattern.
        unsafe { run.__bindgen_anon_1.internal.suberror }
    }

    fn registers(&self) -> String {
        #[cfg(target_arch = "x86_64")]
        {
            crate::arch::x86_64::vcpu::dump_registers(&self.fd)
        }
        #[cfg(target_arch = "aarch64")]
        {
            crate::arch::aarch64::vcpu::dump_registers(&self.fd)
        }
    }
}
