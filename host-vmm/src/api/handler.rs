//! The running VMM's answers to control requests.

use std::sync::Arc;
use std::time::Instant;

use std::time::Duration;

use super::cpu_needs::{CpuNeeds, MAX_CONTAINERS};
use super::protocol::{
    DiskEntry, DiskList, DiskRemoved, DiskStatus, MemoryStatus, Request, Response, SandboxStatus,
    VcpuStatus,
};
use super::server::ApiHandler;
use crate::devices::virtio::block::DiskConfig;
use crate::errors::error_chain;
use crate::hotplug::cpu::CpuHotplug;
use crate::hotplug::cpu_plan::CpuLimits;
use crate::hotplug::disk::DiskHotplug;
use crate::hotplug::memory::{HotplugError, HotplugStatus, MemoryHotplug};
use crate::sandbox::validate_id;
use crate::vmm::{ExitSignal, GuestExit};

/// How long a disk removal waits for the guest to let go of the device
/// (the agent has already unbound it when its container was removed, so
/// this is only reached by a guest that still uses the disk).
pub const RELEASE_DEADLINE: Duration = Duration::from_secs(10);

/// Serves the control socket for one VM.
pub struct VmmApi {
    /// `None` when the VM has no hot-plug slots (`memory_slots = 0`).
    hotplug: Option<Arc<MemoryHotplug>>,
    /// Boot RAM, for the status of a VM without hot-plug.
    boot_bytes: u64,
    /// `None` when the VM has no disk hot-plug slots.
    disks: Option<Arc<DiskHotplug>>,
    vcpus: u32,
    /// `None` when vCPUs cannot be hot-plugged.
    cpus: Option<Arc<CpuHotplug>>,
    /// What the containers need in vCPUs.
    cpu_needs: CpuNeeds,
    started: Instant,
    /// What `Stop` requests (`None`: refused).
    stop: Option<Arc<ExitSignal>>,
}

impl VmmApi {
    pub fn new(hotplug: Option<Arc<MemoryHotplug>>, boot_bytes: u64) -> Self {
        VmmApi {
            hotplug,
            boot_bytes,
            disks: None,
            vcpus: 0,
            cpus: None,
            cpu_needs: CpuNeeds::default(),
            started: Instant::now(),
            stop: None,
        }
    }

    /// Report `vcpus` in `Status`.
    pub fn with_vcpus(mut self, vcpus: u32) -> Self {
        self.vcpus = vcpus;
        self
    }

    /// Serve `cpu-set` with `cpus` (`None`: refused, naming why).
    pub fn with_cpu_hotplug(mut self, cpus: Option<Arc<CpuHotplug>>) -> Self {
        self.cpus = cpus;
        self
    }

    fn vcpu_status(&self) -> VcpuStatus {
        match &self.cpus {
            Some(c) => {
                let s = c.status();
                VcpuStatus {
                    boot: s.boot,
                    present: s.present,
                    max: s.max,
                }
            }
            None => VcpuStatus {
                boot: self.vcpus,
                present: self.vcpus,
                max: self.vcpus,
            },
        }
    }

    fn cpu_need(&self, container: &str, vcpus: u32) -> Response {
        if let Err(e) = validate_id(container) {
            return error(&format!("container: {e}"));
        }
        let now = self.vcpu_status();
        let limits = CpuLimits {
            boot: now.boot,
            max: now.max,
        };
        match self.cpu_needs.update(container, vcpus, limits) {
            Some(target) => Response::CpuTarget { target, now },
            None => error(&format!(
                "more than {MAX_CONTAINERS} containers recorded: {container}'s CPU need is not"
            )),
        }
    }

    fn set_cpus(&self, count: u32, floor: bool) -> Response {
        let Some(c) = &self.cpus else {
            return error(&format!(
                "vCPU hot-plug is unavailable: it needs default_maxvcpus above default_vcpus \
                 (default_vcpus = {}) and memory_slots > 0 (the GED)",
                self.vcpus
            ));
        };
        match c.set_vcpus(count) {
            Ok(_) => {
                if floor {
                    self.cpu_needs.set_floor(count);
                }
                Response::Vcpus(self.vcpu_status())
            }
            Err(e) => error(&error_chain(&e)),
        }
    }

    /// Serve `Stop` by requesting the stop SIGTERM would (`GuestExit::Stopped`) on `exit`.
    pub fn with_stop(mut self, exit: Arc<ExitSignal>) -> Self {
        self.stop = Some(exit);
        self
    }

    fn sandbox_status(&self) -> SandboxStatus {
        SandboxStatus {
            pid: std::process::id(),
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            vcpus: self.vcpu_status().present,
            memory: self.status(),
        }
    }

    fn stop(&self) -> Response {
        let Some(exit) = &self.stop else {
            return error("stop is unavailable on this control socket");
        };
        tracing::info!("stop requested over the control socket");
        exit.request(GuestExit::Stopped {
            signal: libc::SIGTERM,
        });
        Response::Stopping {
            pid: std::process::id(),
        }
    }

    /// Serve `disk-add` with `disks` (`None`: refused).
    pub fn with_disk_hotplug(mut self, disks: Option<Arc<DiskHotplug>>) -> Self {
        self.disks = disks;
        self
    }

    fn disks(&self) -> Result<&DiskHotplug, Response> {
        self.disks.as_deref().ok_or_else(|| {
            error("disk hot-plug is unavailable: it needs memory_slots > 0 (the GED) and a free virtio-mmio slot")
        })
    }

    fn add_disk(&self, cfg: DiskConfig, owner: Option<String>) -> Response {
        let d = match self.disks() {
            Ok(d) => d,
            Err(r) => return r,
        };
        if let Some(owner) = &owner {
            if let Err(e) = validate_id(owner) {
                return error(&format!("owner: {e}"));
            }
        }
        match d.add(&cfg, owner.as_deref()) {
            Ok(added) => {
                let (total, used) = d.usage();
                Response::Disk(DiskStatus {
                    slot: added.slot as u32,
                    serial: added.serial,
                    sectors: added.sectors,
                    slots_total: total as u32,
                    slots_used: used as u32,
                })
            }
            Err(e) => error(&error_chain(&e)),
        }
    }

    fn remove_disk(&self, serial: &str) -> Response {
        let d = match self.disks() {
            Ok(d) => d,
            Err(r) => return r,
        };
        match d.remove(serial, RELEASE_DEADLINE) {
            Ok(removed) => {
                let (total, used) = d.usage();
                Response::DiskRemoved(DiskRemoved {
                    slot: removed.slot as u32,
                    serial: removed.serial,
                    owner: removed.owner,
                    waited_ms: u64::try_from(removed.waited.as_millis()).unwrap_or(u64::MAX),
                    slots_total: total as u32,
                    slots_used: used as u32,
                })
            }
            Err(e) => error(&error_chain(&e)),
        }
    }

    fn list_disks(&self) -> Response {
        let Some(d) = &self.disks else {
            return Response::Disks(DiskList {
                slots_total: 0,
                slots_used: 0,
                disks: Vec::new(),
            });
        };
        let (total, used) = d.usage();
        Response::Disks(DiskList {
            slots_total: total as u32,
            slots_used: used as u32,
            disks: d
                .disks()
                .into_iter()
                .map(|h| DiskEntry {
                    slot: h.slot as u32,
                    serial: h.serial,
                    owner: h.owner,
                    removing: h.removing,
                })
                .collect(),
        })
    }

    fn status(&self) -> MemoryStatus {
        match &self.hotplug {
            Some(h) => from_hotplug(&h.status()),
            None => MemoryStatus {
                boot_bytes: self.boot_bytes,
                hotplugged_bytes: 0,
                total_bytes: self.boot_bytes,
                max_bytes: self.boot_bytes,
                slots_total: 0,
                slots_used: 0,
                block_bytes: 0,
            },
        }
    }

    fn grow(&self, f: impl FnOnce(&MemoryHotplug) -> Result<(), HotplugError>) -> Response {
        let Some(h) = &self.hotplug else {
            return error("memory hotplug is disabled: memory_slots = 0 in the configuration");
        };
        match f(h) {
            Ok(()) => Response::Memory(self.status()),
            Err(e) => error(&error_chain(&e)),
        }
    }
}

fn from_hotplug(s: &HotplugStatus) -> MemoryStatus {
    MemoryStatus {
        boot_bytes: s.boot_bytes,
        hotplugged_bytes: s.hotplugged_bytes,
        total_bytes: s.total_bytes,
        max_bytes: s.max_bytes,
        slots_total: s.slots_total,
        slots_used: s.slots_used,
        block_bytes: s.block_bytes,
    }
}

fn error(message: &str) -> Response {
    Response::Error {
        message: message.to_string(),
    }
}

impl ApiHandler for VmmApi {
    fn handle(&self, request: Request) -> Response {
        match request {
            Request::MemoryInfo => Response::Memory(self.status()),
            Request::Status => Response::Sandbox(self.sandbox_status()),
            Request::Stop => self.stop(),
            Request::MemoryAdd { bytes } => self.grow(|h| {
                h.hotplug_memory(bytes).map(|r| {
                    tracing::info!(
                        slot = r.slot,
                        base = format_args!("{:#x}", r.base),
                        size = r.size,
                        "memory hot-added"
                    );
                })
            }),
            Request::DiskAdd {
                path,
                read_only,
                serial,
                owner,
            } => self.add_disk(
                DiskConfig {
                    path,
                    read_only,
                    serial,
                },
                owner,
            ),
            Request::DiskRemove { serial } => self.remove_disk(&serial),
            Request::DiskList => self.list_disks(),
            Request::CpuInfo => Response::Vcpus(self.vcpu_status()),
            Request::CpuSet { count, floor } => self.set_cpus(count, floor),
            Request::CpuNeed { container, vcpus } => self.cpu_need(&container, vcpus),
            Request::MemorySet { total_bytes } => self.grow(|h| {
                h.grow_to(total_bytes).map(|r| {
                    if let Some(r) = r {
                        tracing::info!(slot = r.slot, size = r.size, "memory hot-added");
                    }
                })
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vmm_api_without_hotplug() {
        let api = VmmApi::new(None, 512 << 20);
        match api.handle(Request::MemoryInfo) {
            Response::Memory(m) => {
                assert_eq!((m.total_bytes, m.slots_total), (512 << 20, 0));
            }
            other => panic!("{other:?}"),
        }
        match api.handle(Request::MemoryAdd { bytes: 128 << 20 }) {
            Response::Error { message } => {
                assert!(message.contains("memory_slots = 0"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        match api.handle(Request::DiskRemove {
            serial: "disk-0".into(),
        }) {
            Response::Error { message } => {
                assert!(
                    message.contains("disk hot-plug is unavailable"),
                    "{message}"
                )
            }
            other => panic!("{other:?}"),
        }
        match api.handle(Request::DiskList) {
            Response::Disks(l) => assert_eq!((l.slots_total, l.disks.len()), (0, 0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn test_vmm_api_status_and_stop() {
        let api = VmmApi::new(None, 256 << 20).with_vcpus(2);
        match api.handle(Request::Status) {
            Response::Sandbox(s) => {
                assert_eq!((s.pid, s.vcpus), (std::process::id(), 2));
                assert_eq!(s.memory.total_bytes, 256 << 20);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(api.handle(Request::Stop), Response::Error { .. }));
        let exit = ExitSignal::new();
        let api = api.with_stop(exit.clone());
        assert!(!exit.is_requested());
        assert_eq!(
            api.handle(Request::Stop),
            Response::Stopping {
                pid: std::process::id()
            }
        );
        assert_eq!(
            exit.wait(),
            GuestExit::Stopped {
                signal: libc::SIGTERM
            }
        );
    }
}
