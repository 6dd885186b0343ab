//! vCPU hot-plug into a running VM, through ACPI.
//!
//! Add ([`CpuHotplug::set_vcpus`] above the present count): for each new CPU, create
//! its vCPU (CPUID, MSRs, LAPIC: the `VcpuMaker` the builder hands in) or take the
//! parked one back, start its thread (it confines itself as a `vcpu` thread; the thread
//! factory starts it), mark it ENABLED | INSERTING in the controller, then raise the
//! GED once. The guest's CSCN sends a Device Check to each new `Cxxx`; Linux adds the
//! CPU offline and the agent onlines it (SIPI from the guest starts the vCPU).
//!
//! Remove (below the present count), one CPU at a time, highest first: mark it
//! REMOVING and raise the GED; CSCN sends an Eject Request; Linux offlines the CPU
//! and calls `_EJ0`, which writes EJECT. The VMM waits for that (at most
//! [`EJECT_DEADLINE`]), then parks the vCPU: its thread leaves KVM_RUN (park flag and
//! kick) and is joined, and the vCPU fd is kept for the next add (KVM cannot destroy
//! a vCPU). A guest that does not eject in time refused the removal: the request is
//! withdrawn and the error names the CPU.
//!
//! Changes are serialised (one lock held for the whole change). After
//! [`CpuHotplug::stop_all`] (the VM ends) nothing is added any more.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvm_ioctls::VcpuFd;
use vmm_sys_util::signal::Killable;

use super::cpu_plan::{CountError, CpuChange, CpuLimits};
use crate::acpi::registers::GED_EVENT_CPU;
use crate::devices::acpi::cpu_hotplug::{CpuControllerError, CpuHotplugController};
use crate::devices::acpi::ged::GedNotifier;
use crate::exit::ExitSignal;
use crate::kvm::{Vcpu, VcpuRunContext};
use crate::seccomp::{self, ThreadKind};
use crate::threads::{join_within, Joined};

/// How long a removal waits for the guest to offline and eject the CPU.
pub const EJECT_DEADLINE: Duration = Duration::from_secs(10);
/// How long parking waits for the kicked vCPU thread.
pub const PARK_DEADLINE: Duration = Duration::from_secs(5);
/// How often the eject wait looks at the controller.
const EJECT_POLL: Duration = Duration::from_millis(2);

/// Creates and configures the vCPU with this index (arch-specific, from the builder).
pub type VcpuMaker = Box<dyn Fn(u32) -> Result<VcpuFd, String> + Send + Sync>;

/// Why a change failed. Refusals (`Count`, `Stopped`) change nothing; a failure
/// part-way leaves the CPUs handled before it changed (the status tells).
#[derive(Debug, thiserror::Error)]
pub enum CpuHotplugError {
    #[error(transparent)]
    Count(#[from] CountError),
    #[error("the VM is stopping")]
    Stopped,
    #[error("cannot create vCPU {cpu}: {reason}")]
    Create { cpu: u32, reason: String },
    #[error("cannot start the thread of vCPU {cpu}")]
    Thread {
        cpu: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("vCPU {cpu} did not stop in time when parked: it cannot be added again")]
    Lost { cpu: u32 },
    #[error("the CPU hot-plug controller refused CPU {cpu}")]
    Controller {
        cpu: u32,
        #[source]
        source: CpuControllerError,
    },
    #[error("cannot raise the GED interrupt")]
    Notify(#[source] std::io::Error),
    #[error(
        "the guest did not eject CPU {cpu} within {} ms: it refused to offline it \
         (the CPU stays; see the guest's kernel log)",
        waited.as_millis()
    )]
    GuestRefused { cpu: u32, waited: Duration },
}

/// The vCPUs of a VM, for status reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStatus {
    /// `default_vcpus`.
    pub boot: u32,
    /// Present now (boot + hot-added).
    pub present: u32,
    /// `default_maxvcpus`.
    pub max: u32,
}

/// A hot-plugged vCPU that runs on its thread.
struct Running {
    park: Arc<AtomicBool>,
    handle: JoinHandle<()>,
    /// Where the thread leaves the vCPU when it returns.
    back: Arc<Mutex<Option<Vcpu>>>,
}

#[derive(Default)]
enum Slot {
    /// Never created.
    #[default]
    Empty,
    Running(Running),
    /// Removed; its fd is kept for the next add.
    Parked(Vcpu),
    /// Its thread did not stop when parked (left behind): never reused.
    Lost,
}

struct State {
    /// CPU `limits.boot + i` is `slots[i]`.
    slots: Vec<Slot>,
    /// What a vCPU thread needs and how to make a vCPU; both taken by
    /// [`CpuHotplug::stop_all`] (on the VMM thread), so the buses, their devices and the
    /// VM are never dropped on the API thread, whose filter does not allow their teardown.
    run: Option<(VcpuRunContext, VcpuMaker)>,
}

/// The vCPU hot-plug side of a VM; share it (`Arc`) with the control API.
pub struct CpuHotplug {
    limits: CpuLimits,
    controller: Arc<Mutex<CpuHotplugController>>,
    ged: Arc<GedNotifier>,
    exit: Arc<ExitSignal>,
    kick: libc::c_int,
    /// [`EJECT_DEADLINE`], in milliseconds (shorter in tests).
    eject_deadline_ms: AtomicU64,
    state: Mutex<State>,
}

impl CpuHotplug {
    /// `controller` is on the MMIO bus; `ctx` is what every vCPU thread shares;
    /// `kick` the signal that kicks a vCPU thread out of KVM_RUN.
    pub fn new(
        limits: CpuLimits,
        controller: Arc<Mutex<CpuHotplugController>>,
        ged: Arc<GedNotifier>,
        ctx: VcpuRunContext,
        make: VcpuMaker,
        kick: libc::c_int,
    ) -> Self {
        let hot = limits.max.saturating_sub(limits.boot) as usize;
        let mut slots = Vec::with_capacity(hot);
        slots.resize_with(hot, Slot::default);
        CpuHotplug {
            limits,
            controller,
            ged,
            exit: ctx.exit.clone(),
            kick,
            eject_deadline_ms: AtomicU64::new(EJECT_DEADLINE.as_millis() as u64),
            state: Mutex::new(State {
                slots,
                run: Some((ctx, make)),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn controller(&self) -> MutexGuard<'_, CpuHotplugController> {
        self.controller
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How long a removal waits for the guest's eject (default [`EJECT_DEADLINE`]).
    pub fn set_eject_deadline(&self, deadline: Duration) {
        let ms = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        self.eject_deadline_ms.store(ms, Ordering::SeqCst);
    }

    pub fn limits(&self) -> CpuLimits {
        self.limits
    }

    pub fn status(&self) -> CpuStatus {
        CpuStatus {
            boot: self.limits.boot,
            present: present(&self.state(), self.limits.boot),
            max: self.limits.max,
        }
    }

    /// Brings the VM to `wanted` vCPUs (see the module documentation); returns the
    /// status after the change.
    pub fn set_vcpus(&self, wanted: u32) -> Result<CpuStatus, CpuHotplugError> {
        let mut state = self.state();
        if state.run.is_none() {
            return Err(CpuHotplugError::Stopped);
        }
        let now = present(&state, self.limits.boot);
        match self.limits.plan(now, wanted)? {
            CpuChange::None => {}
            CpuChange::Add(cpus) => {
                let mut added = 0;
                let mut result = Ok(());
                for cpu in cpus {
                    if let Err(e) = self.add(&mut state, cpu) {
                        result = Err(e);
                        break;
                    }
                    added += 1;
                }
                if added > 0 {
                    self.ged
                        .notify(GED_EVENT_CPU)
                        .map_err(CpuHotplugError::Notify)?;
                }
                result?;
            }
            CpuChange::Remove(cpus) => {
                for cpu in cpus {
                    self.remove(&mut state, cpu)?;
                }
            }
        }
        let present = present(&state, self.limits.boot);
        tracing::info!(vcpus = present, "vCPUs changed");
        Ok(CpuStatus {
            boot: self.limits.boot,
            present,
            max: self.limits.max,
        })
    }

    fn slot_index(&self, cpu: u32) -> usize {
        cpu.saturating_sub(self.limits.boot) as usize
    }

    /// Creates (or takes back) vCPU `cpu`, starts its thread, marks it inserting.
    fn add(&self, state: &mut State, cpu: u32) -> Result<(), CpuHotplugError> {
        let i = self.slot_index(cpu);
        let Some((ctx, make)) = &state.run else {
            return Err(CpuHotplugError::Stopped);
        };
        let ctx = ctx.clone();
        let slot = state
            .slots
            .get_mut(i)
            .ok_or(CpuHotplugError::Count(CountError::AboveMax {
                wanted: cpu + 1,
                max: self.limits.max,
            }))?;
        let vcpu = match std::mem::take(slot) {
            Slot::Parked(v) => v,
            Slot::Empty => Vcpu {
                index: cpu,
                fd: make(cpu).map_err(|reason| CpuHotplugError::Create { cpu, reason })?,
            },
            Slot::Lost => {
                *slot = Slot::Lost;
                return Err(CpuHotplugError::Lost { cpu });
            }
            running @ Slot::Running(_) => {
                *slot = running;
                return Ok(());
            }
        };
        let park = Arc::new(AtomicBool::new(false));
        let back = Arc::new(Mutex::new(Some(vcpu)));
        let (thread_park, thread_back) = (park.clone(), back.clone());
        let started = seccomp::spawn(format!("vcpu{cpu}"), ThreadKind::Vcpu, move || {
            let taken = thread_back
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(v) = taken {
                let v = v.run_until_parked(&ctx, &thread_park);
                *thread_back.lock().unwrap_or_else(PoisonError::into_inner) = Some(v);
            }
        });
        let handle = match started {
            Ok(h) => h,
            Err(source) => {
                // The closure never ran: the vCPU is still in `back`.
                if let Some(v) = back.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    *slot = Slot::Parked(v);
                }
                return Err(CpuHotplugError::Thread { cpu, source });
            }
        };
        *slot = Slot::Running(Running { park, handle, back });
        if let Err(source) = self.controller().insert(cpu) {
            // Not announced: park it again.
            self.park(state, cpu);
            return Err(CpuHotplugError::Controller { cpu, source });
        }
        tracing::info!(cpu, "vCPU hot-added");
        Ok(())
    }

    /// Asks the guest to eject `cpu`, waits for it, parks the vCPU.
    fn remove(&self, state: &mut State, cpu: u32) -> Result<(), CpuHotplugError> {
        self.controller()
            .request_removal(cpu)
            .map_err(|source| CpuHotplugError::Controller { cpu, source })?;
        if let Err(e) = self.ged.notify(GED_EVENT_CPU) {
            self.controller().cancel_removal(cpu);
            return Err(CpuHotplugError::Notify(e));
        }
        let started = Instant::now();
        let deadline = Duration::from_millis(self.eject_deadline_ms.load(Ordering::SeqCst));
        let _wait = crate::waits::enter("the guest to eject a vCPU");
        loop {
            if self.controller().take_ejected(cpu) {
                break;
            }
            if started.elapsed() >= deadline || self.exit.is_requested() {
                let mut c = self.controller();
                c.cancel_removal(cpu);
                // It may have come in between.
                if !c.take_ejected(cpu) {
                    return Err(CpuHotplugError::GuestRefused {
                        cpu,
                        waited: started.elapsed(),
                    });
                }
                break;
            }
            std::thread::sleep(EJECT_POLL);
        }
        tracing::info!(
            cpu,
            eject_ms = started.elapsed().as_millis() as u64,
            "the guest ejected the vCPU"
        );
        if self.park(state, cpu) {
            Ok(())
        } else {
            Err(CpuHotplugError::Lost { cpu })
        }
    }

    /// Stops `cpu`'s thread and keeps its vCPU; false when the thread was left behind.
    fn park(&self, state: &mut State, cpu: u32) -> bool {
        let i = self.slot_index(cpu);
        let Some(slot) = state.slots.get_mut(i) else {
            return true;
        };
        let Slot::Running(r) = std::mem::take(slot) else {
            return true;
        };
        r.park.store(true, Ordering::SeqCst);
        if let Err(e) = r.handle.kill(self.kick) {
            tracing::debug!(cpu, "kick failed (thread already gone?): {e}");
        }
        let name = format!("vcpu{cpu}");
        match join_within(r.handle, &name, PARK_DEADLINE) {
            Joined::Abandoned => {
                *slot = Slot::Lost;
                false
            }
            Joined::Panicked | Joined::Finished => {
                match r.back.lock().unwrap_or_else(PoisonError::into_inner).take() {
                    Some(v) => *slot = Slot::Parked(v),
                    None => *slot = Slot::Lost,
                }
                true
            }
        }
    }

    /// The VM ends: kick and join every hot-added vCPU thread; no more changes. Call it
    /// on the VMM thread: it drops the buses' and the VM's references here.
    pub fn stop_all(&self) {
        let mut state = self.state();
        let run = state.run.take();
        let running: Vec<u32> = state
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s, Slot::Running(_)))
            .map(|(i, _)| self.limits.boot + i as u32)
            .collect();
        for cpu in running {
            self.park(&mut state, cpu);
        }
        // The parked vCPUs (their kvm_run mappings) go here too.
        for slot in state.slots.iter_mut() {
            if matches!(slot, Slot::Parked(_)) {
                *slot = Slot::Lost;
            }
        }
        drop(run);
    }
}

fn present(state: &State, boot: u32) -> u32 {
    let hot = state
        .slots
        .iter()
        .filter(|s| matches!(s, Slot::Running(_)))
        .count();
    boot + u32::try_from(hot).unwrap_or(u32::MAX - boot)
}
