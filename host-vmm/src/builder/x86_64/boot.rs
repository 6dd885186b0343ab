//! Booting the x86 board: the kernel and initrd, the ACPI tables, the
//! command line and the zero page (or PVH start info), then the vCPUs (the
//! boot vCPU starts at the kernel entry, the others wait for SIPI).

use vm_memory::{Bytes, GuestAddress};

use super::acpi::write_acpi_tables;
use super::error::BoardError;
use crate::arch::x86_64::boot_params;
use crate::arch::x86_64::cmdline::{build_cmdline, cmdline_bytes};
use crate::arch::x86_64::cpuid::VcpuTopology;
use crate::arch::x86_64::e820;
use crate::arch::x86_64::layout::*;
use crate::arch::x86_64::loader::{self, BootProtocol, LoadedKernel};
use crate::arch::x86_64::regs::{write_boot_tables, EntryMode};
use crate::arch::x86_64::vcpu::{configure_vcpu, BootEntry};
use crate::builder::board::BootDevices;
use crate::builder::error::BuildError;
use crate::config::HypervisorConfig;
use crate::kvm::{Vcpu, Vm};
use crate::memory::GuestMemoryMmap;

/// Loads and describes everything the kernel needs; returns how the boot
/// vCPU enters it.
pub(super) fn write_boot(
    mem: &GuestMemoryMmap,
    cfg: &HypervisorConfig,
    devices: &BootDevices,
    mem_bytes: u64,
) -> Result<BootEntry, BoardError> {
    let low_end = e820::low_ram_end(mem_bytes);
    // Kernel and initrd.
    let kernel = loader::load_kernel(mem, &cfg.kernel, low_end, cfg.default_memory)?;
    let initrd = cfg
        .initrd
        .as_deref()
        .map(|p| loader::load_initrd(mem, p, &kernel, low_end, cfg.default_memory))
        .transpose()?;

    // ACPI tables (the VMM is the firmware).
    let rsdp_addr = write_acpi_tables(mem, cfg, devices)?;

    // Boot parameters: command line, zero page or PVH start info, GDT
    // and page tables.
    let max_cmdline = match kernel.protocol {
        BootProtocol::Linux64(hdr) if hdr.cmdline_size > 0 => hdr.cmdline_size as usize,
        _ => CMDLINE_MAX_SIZE - 1,
    }
    .min(CMDLINE_MAX_SIZE - 1);
    let line = build_cmdline(&cfg.kernel_params, max_cmdline)?;
    tracing::debug!(cmdline = %line, "kernel command line");
    mem.write_slice(&cmdline_bytes(&line), GuestAddress(CMDLINE_START))
        .map_err(BoardError::CmdlineWrite)?;
    let e820 = e820::e820_map(mem_bytes)?;
    let mode = write_boot_params(mem, &kernel, initrd, &e820, rsdp_addr)?;
    write_boot_tables(mem, mode)?;
    Ok(BootEntry {
        mode,
        entry: kernel.entry.0,
    })
}

/// The boot vCPUs: 0 at the kernel entry, the others waiting for SIPI.
pub(super) fn create_vcpus(
    vm: &Vm,
    cfg: &HypervisorConfig,
    supported: &kvm_bindings::CpuId,
    entry: BootEntry,
) -> Result<Vec<Vcpu>, BuildError> {
    let mut vcpus = Vec::new();
    for index in 0..cfg.default_vcpus {
        let fd = vm.create_vcpu(index)?;
        let topo = VcpuTopology {
            index,
            max_vcpus: cfg.default_maxvcpus.max(cfg.default_vcpus),
        };
        let boot = (index == 0).then_some(entry);
        configure_vcpu(&fd, supported, topo, boot).map_err(BoardError::VcpuSetup)?;
        vcpus.push(Vcpu { index, fd });
    }
    Ok(vcpus)
}

/// Write the zero page (bzImage) or the PVH start info; return how the
/// boot vCPU enters the kernel.
fn write_boot_params(
    mem: &GuestMemoryMmap,
    kernel: &LoadedKernel,
    initrd: Option<loader::LoadedInitrd>,
    e820: &[e820::E820Entry],
    rsdp_addr: u64,
) -> Result<EntryMode, BoardError> {
    match kernel.protocol {
        BootProtocol::Linux64(hdr) => {
            let params =
                boot_params::linux_boot_params(&hdr, CMDLINE_START, initrd, e820, rsdp_addr)?;
            boot_params::write_linux_boot_params(mem, &params)?;
            Ok(EntryMode::Long64)
        }
        BootProtocol::Pvh => {
            let info = boot_params::pvh_boot_info(CMDLINE_START, initrd, e820, rsdp_addr)?;
            boot_params::write_pvh_boot_info(mem, &info)?;
            Ok(EntryMode::Pvh32)
        }
    }
}
