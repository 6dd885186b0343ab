//! A running VM: one thread per vCPU, and how the guest ended.

pub mod stop_signals;
#[cfg(all(test, target_arch = "x86_64"))]
mod tests;

use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use vmm_sys_util::signal::Killable;

pub use crate::exit::{ExitSignal, GuestExit};

use crate::devices::Bus;
use crate::hotplug::cpu::CpuHotplug;
use crate::hotplug::disk::DiskHotplug;
use crate::hotplug::memory::{HotplugError, HotplugResult, MemoryHotplug};
use crate::kvm::{Vcpu, VcpuRunContext, Vm};
use crate::memory::layout::PlanError;
use crate::memory::GuestMemoryMmap;
use crate::threads::{join_within, Joined};

/// How long stopping the guest waits for each kicked vCPU thread.
pub const VCPU_JOIN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(5);
use crate::seccomp::{self, ThreadKind};

/// Why the VM could not be run.
#[derive(Debug, thiserror::Error)]
pub enum VmmError {
    #[error("cannot register the vCPU kick signal")]
    Signal(#[source] vmm_sys_util::errno::Error),
    #[error("cannot start the thread of vCPU {index}")]
    Spawn {
        index: u32,
        #[source]
        source: std::io::Error,
    },
}

/// A built VM, ready to run. Field order is drop order: vCPUs and the VM
/// go before the guest memory they map.
pub struct Vmm {
    vcpus: Vec<Vcpu>,
    pio: Arc<Bus>,
    mmio: Arc<Bus>,
    exit: Arc<ExitSignal>,
    vm: Arc<Vm>,
    /// Holds the VM and the hot-plugged RAM (it drops the VM first).
    hotplug: Option<Arc<MemoryHotplug>>,
    /// Free virtio-mmio slots for disks added while the VM runs.
    disk_hotplug: Option<Arc<DiskHotplug>>,
    /// vCPUs added and removed while the VM runs.
    cpu_hotplug: Option<Arc<CpuHotplug>>,
    memory: GuestMemoryMmap,
}

impl Vmm {
    pub fn new(
        vm: impl Into<Arc<Vm>>,
        memory: GuestMemoryMmap,
        vcpus: Vec<Vcpu>,
        pio: Bus,
        mmio: Bus,
        exit: Arc<ExitSignal>,
    ) -> Self {
        Vmm {
            vcpus,
            pio: Arc::new(pio),
            mmio: Arc::new(mmio),
            exit,
            vm: vm.into(),
            hotplug: None,
            disk_hotplug: None,
            cpu_hotplug: None,
            memory,
        }
    }

    /// What every vCPU thread shares (buses, exit signal): for hot-added vCPUs.
    pub fn run_context(&self) -> VcpuRunContext {
        VcpuRunContext {
            pio: self.pio.clone(),
            mmio: self.mmio.clone(),
            exit: self.exit.clone(),
        }
    }

    /// Attach vCPU hot-plug (`None`: no GED, or `default_maxvcpus` = `default_vcpus`).
    pub fn with_cpu_hotplug(mut self, cpus: Option<Arc<CpuHotplug>>) -> Self {
        self.cpu_hotplug = cpus;
        self
    }

    /// The vCPU hot-plug handle, for the control API.
    pub fn cpu_hotplug(&self) -> Option<Arc<CpuHotplug>> {
        self.cpu_hotplug.clone()
    }

    /// Attach the disk hot-plug slots (`None`: no GED or no free slot).
    pub fn with_disk_hotplug(mut self, disks: Option<Arc<DiskHotplug>>) -> Self {
        self.disk_hotplug = disks;
        self
    }

    /// The disk hot-plug handle, for the control API (see
    /// [`DiskHotplug::add`]).
    pub fn disk_hotplug(&self) -> Option<Arc<DiskHotplug>> {
        self.disk_hotplug.clone()
    }

    /// Attach the memory hot-plug side (`None`: `memory_slots` = 0).
    pub fn with_memory_hotplug(mut self, hotplug: Option<Arc<MemoryHotplug>>) -> Self {
        self.hotplug = hotplug;
        self
    }

    /// The memory hot-plug handle, to hand to another thread (the control
    /// API) before [`Vmm::run`]: its `hotplug_memory` works while the vCPUs
    /// run. `None` when `memory_slots` = 0.
    pub fn memory_hotplug(&self) -> Option<Arc<MemoryHotplug>> {
        self.hotplug.clone()
    }

    /// Hot-add `size_bytes` of RAM as one DIMM (see
    /// [`MemoryHotplug::hotplug_memory`]). For calls while the VM runs, take
    /// [`Vmm::memory_hotplug`] first: `run` consumes the `Vmm`.
    pub fn hotplug_memory(&self, size_bytes: u64) -> Result<HotplugResult, HotplugError> {
        match &self.hotplug {
            Some(h) => h.hotplug_memory(size_bytes),
            None => Err(HotplugError::Plan(PlanError::Disabled)),
        }
    }

    pub fn memory(&self) -> &GuestMemoryMmap {
        &self.memory
    }

    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The signal devices and vCPUs report the guest's end to.
    pub fn exit_signal(&self) -> &Arc<ExitSignal> {
        &self.exit
    }

    /// Run the vCPUs until the guest ends; stop every vCPU thread and
    /// return how it ended.
    ///
    /// Confinement (when [`crate::seccomp::enable`] has run): each vCPU thread
    /// installs its filter first (`seccomp::thread` returns once it has), then
    /// waits at the start gate; the calling thread
    /// installs the [`ThreadKind::Vmm`] filter once every vCPU thread exists (a
    /// filter is inherited by the threads started after it), then opens the gate:
    /// nothing runs guest code before every filter is in.
    pub fn run(mut self) -> Result<GuestExit, VmmError> {
        let signal = crate::kvm::vcpu::kick_signal().map_err(VmmError::Signal)?;
        let ctx = self.run_context();
        let mut threads: Vec<(u32, JoinHandle<()>)> = Vec::new();
        let mut spawn_error = None;
        let mut gate = Vec::new();
        for vcpu in self.vcpus.drain(..) {
            let index = vcpu.index;
            let ctx = ctx.clone();
            let (open, wait) = mpsc::channel::<()>();
            gate.push(open);
            match seccomp::thread(format!("vcpu{index}"), ThreadKind::Vcpu, move || {
                // Opened (or dropped, on an error) by the VMM thread.
                let _ = wait.recv();
                vcpu.run(&ctx)
            }) {
                Ok(h) => threads.push((index, h)),
                Err(source) => {
                    spawn_error = Some(VmmError::Spawn { index, source });
                    self.exit.request(GuestExit::Error {
                        vcpu: index,
                        reason: "vCPU thread could not start".into(),
                        regs: String::new(),
                    });
                    break;
                }
            }
        }
        seccomp::confine(ThreadKind::Vmm);
        drop(gate);
        tracing::info!(vcpus = threads.len(), "guest running");
        let outcome = self.exit.wait();
        tracing::debug!(%outcome, "stopping vCPUs");
        for (index, h) in &threads {
            if let Err(e) = h.kill(signal) {
                tracing::debug!(vcpu = index, "kick failed (thread already gone?): {e}");
            }
        }
        let _wait = crate::waits::enter("vCPU threads to stop");
        if let Some(cpus) = &self.cpu_hotplug {
            // Kicks and joins the hot-added vCPU threads; refuses later changes.
            cpus.stop_all();
        }
        for (index, h) in threads {
            // A kicked vCPU leaves KVM_RUN at once and no device handler
            // blocks (the console is queued, worker joins have deadlines),
            // so this deadline is a backstop, not a wait anyone expects.
            let name = format!("vcpu{index}");
            if join_within(h, &name, VCPU_JOIN_DEADLINE) == Joined::Panicked {
                tracing::error!(vcpu = index, "vCPU thread panicked");
            }
        }
        match spawn_error {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }
}
