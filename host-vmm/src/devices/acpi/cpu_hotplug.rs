//! The CPU hot-plug controller: a small MMIO register window through which the
//! DSDT's AML learns, CPU by CPU, which vCPUs are present, which were just added
//! and which the VMM wants removed, and through which the guest ejects a CPU.
//!
//! All registers are 32-bit little-endian at 4-byte aligned offsets:
//!
//! | Offset | Name   | Access | Meaning |
//! |--------|--------|--------|---------|
//! | 0x00   | SEL    | RW     | Selected CPU. A write of a CPU number below COUNT selects it; any other value is ignored (the selection stays). Reads back the selection. |
//! | 0x04   | STATUS | RW     | Bit 0 ENABLED (read-only): the CPU is present. Bit 1 INSERTING: set by the VMM on hot-add, cleared by the guest writing 1 (acknowledge). Bit 2 REMOVING: set by the VMM to ask for a removal, cleared by the guest writing 1. Bit 3 EJECT (write-only): the guest has offlined the CPU and ejects it; honoured only for a CPU whose removal the VMM asked for. Other bits read 0; writing 0 changes nothing. |
//! | 0x08   | COUNT  | R      | Number of possible CPUs (`default_maxvcpus`). |
//! | 0x0c   | -      | R      | Reserved, reads 0. |
//!
//! The guest is untrusted: reads of any width and offset return the bytes of the
//! register file (zeros past its end); writes are only honoured at a register's start
//! with 1, 2 or 4 bytes (zero-extended); everything else is ignored. Nothing a guest
//! writes can panic the VMM, make a CPU present, or eject a CPU the VMM did not offer
//! for removal: the controller only records state; vCPUs are created and parked by
//! `crate::hotplug::cpu`, which reads it.

use crate::devices::BusDevice;

pub use crate::acpi::registers::{
    CHP_MMIO_SIZE, CHP_REG_COUNT, CHP_REG_SELECT, CHP_REG_STATUS, CHP_STATUS_EJECT,
    CHP_STATUS_ENABLED, CHP_STATUS_INSERTING, CHP_STATUS_REMOVING,
};

/// Why the VMM could not change a CPU's state in the controller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuControllerError {
    #[error("CPU {cpu} does not exist (default_maxvcpus = {count})")]
    NoSuchCpu { cpu: u32, count: u32 },
    #[error("CPU {cpu} is already present")]
    AlreadyPresent { cpu: u32 },
    #[error("CPU {cpu} is not present")]
    NotPresent { cpu: u32 },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cpu {
    enabled: bool,
    inserting: bool,
    /// The REMOVING bit the guest sees (cleared by its acknowledgement).
    removing: bool,
    /// The VMM asked for this CPU's removal and waits for the eject.
    remove_requested: bool,
    /// The guest ejected it (`_EJ0`) since the last [`CpuHotplugController::take_ejected`].
    ejected: bool,
}

/// What the VMM sees of one CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuStatus {
    pub enabled: bool,
    pub inserting: bool,
    pub removing: bool,
    pub ejected: bool,
}

/// The controller's state; shared by the MMIO bus and the hot-plug code. Its size is
/// fixed at creation (`default_maxvcpus`), whatever the guest does.
#[derive(Debug)]
pub struct CpuHotplugController {
    cpus: Vec<Cpu>,
    selected: u32,
}

impl CpuHotplugController {
    /// `count` possible CPUs, of which `0..present` are there from boot.
    pub fn new(count: u32, present: u32) -> Self {
        let mut cpus = vec![Cpu::default(); count as usize];
        for c in cpus.iter_mut().take(present as usize) {
            c.enabled = true;
        }
        CpuHotplugController { cpus, selected: 0 }
    }

    /// Number of possible CPUs.
    pub fn count(&self) -> u32 {
        // The vector was built from a u32.
        u32::try_from(self.cpus.len()).unwrap_or(u32::MAX)
    }

    fn cpu_mut(&mut self, cpu: u32) -> Result<&mut Cpu, CpuControllerError> {
        let count = self.count();
        self.cpus
            .get_mut(cpu as usize)
            .ok_or(CpuControllerError::NoSuchCpu { cpu, count })
    }

    /// Record a hot-added CPU: enabled, inserting.
    pub fn insert(&mut self, cpu: u32) -> Result<(), CpuControllerError> {
        let c = self.cpu_mut(cpu)?;
        if c.enabled {
            return Err(CpuControllerError::AlreadyPresent { cpu });
        }
        *c = Cpu {
            enabled: true,
            inserting: true,
            ..Cpu::default()
        };
        Ok(())
    }

    /// Forget a CPU the guest was never told about (undo an [`insert`](Self::insert)).
    pub fn clear(&mut self, cpu: u32) {
        if let Some(c) = self.cpus.get_mut(cpu as usize) {
            *c = Cpu::default();
        }
    }

    /// Ask the guest to remove `cpu` (REMOVING set; an eject is now honoured).
    pub fn request_removal(&mut self, cpu: u32) -> Result<(), CpuControllerError> {
        let c = self.cpu_mut(cpu)?;
        if !c.enabled {
            return Err(CpuControllerError::NotPresent { cpu });
        }
        c.removing = true;
        c.remove_requested = true;
        c.ejected = false;
        Ok(())
    }

    /// Withdraw a removal request the guest did not act on (the CPU stays present).
    pub fn cancel_removal(&mut self, cpu: u32) {
        if let Some(c) = self.cpus.get_mut(cpu as usize) {
            c.removing = false;
            c.remove_requested = false;
        }
    }

    /// Whether the guest ejected `cpu` since the last call; clears the record.
    pub fn take_ejected(&mut self, cpu: u32) -> bool {
        match self.cpus.get_mut(cpu as usize) {
            Some(c) => std::mem::take(&mut c.ejected),
            None => false,
        }
    }

    pub fn status(&self, cpu: u32) -> Option<CpuStatus> {
        self.cpus.get(cpu as usize).map(|c| CpuStatus {
            enabled: c.enabled,
            inserting: c.inserting,
            removing: c.removing,
            ejected: c.ejected,
        })
    }

    /// Present CPUs.
    pub fn present(&self) -> u32 {
        u32::try_from(self.cpus.iter().filter(|c| c.enabled).count()).unwrap_or(u32::MAX)
    }

    /// The register file as the guest reads it.
    fn registers(&self) -> [u8; CHP_MMIO_SIZE as usize] {
        let c = self
            .cpus
            .get(self.selected as usize)
            .copied()
            .unwrap_or_default();
        let status = if c.enabled { CHP_STATUS_ENABLED } else { 0 }
            | if c.inserting { CHP_STATUS_INSERTING } else { 0 }
            | if c.removing { CHP_STATUS_REMOVING } else { 0 };
        let words: [u32; 4] = [self.selected, status, self.count(), 0];
        let mut out = [0u8; CHP_MMIO_SIZE as usize];
        for (chunk, w) in out.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    fn write_status(&mut self, value: u32) {
        let selected = self.selected;
        let Some(c) = self.cpus.get_mut(selected as usize) else {
            return;
        };
        if value & CHP_STATUS_INSERTING != 0 {
            c.inserting = false;
        }
        if value & CHP_STATUS_REMOVING != 0 {
            c.removing = false;
        }
        if value & CHP_STATUS_EJECT != 0 {
            if c.enabled && c.remove_requested {
                tracing::debug!(cpu = selected, "CPU hotplug: the guest ejected the CPU");
                *c = Cpu {
                    ejected: true,
                    ..Cpu::default()
                };
            } else {
                tracing::debug!(
                    cpu = selected,
                    "CPU hotplug: eject of a CPU not offered for removal ignored"
                );
            }
        }
    }

    fn write_register(&mut self, offset: u64, value: u32) {
        match offset {
            CHP_REG_SELECT => {
                if value < self.count() {
                    self.selected = value;
                } else {
                    tracing::debug!(value, "CPU hotplug: out-of-range CPU select ignored");
                }
            }
            CHP_REG_STATUS => self.write_status(value),
            _ => tracing::trace!(offset, "CPU hotplug: write to read-only register ignored"),
        }
    }
}

impl BusDevice for CpuHotplugController {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        let regs = self.registers();
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| regs.get(o))
                .copied()
                .unwrap_or(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if offset % 4 != 0 || !matches!(data.len(), 1 | 2 | 4) {
            tracing::trace!(offset, len = data.len(), "CPU hotplug: odd write ignored");
            return;
        }
        let mut word = [0u8; 4];
        word[..data.len()].copy_from_slice(data);
        self.write_register(offset, u32::from_le_bytes(word));
    }
}

#[cfg(test)]
mod tests;
