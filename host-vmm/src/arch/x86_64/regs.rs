//! The boot vCPU's starting state: general registers, segment/control
//! registers, FPU, and the identity page tables for the 64-bit entry.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vm_memory::{Bytes, GuestAddress};

use super::gdt::{boot_gdt, kvm_segment_from_gdt};
use super::layout::{
    BOOT_GDT_START, BOOT_IDENTITY_MAP_GIB, BOOT_IDT_START, BOOT_STACK_POINTER, PDE_START,
    PDPTE_START, PML4_START, PVH_INFO_START, ZERO_PAGE_START,
};
use crate::memory::GuestMemoryMmap;

pub const CR0_PE: u64 = 1 << 0;
pub const CR0_ET: u64 = 1 << 4;
pub const CR0_PG: u64 = 1 << 31;
pub const CR4_PAE: u64 = 1 << 5;
pub const EFER_LME: u64 = 1 << 8;
pub const EFER_LMA: u64 = 1 << 10;
/// RFLAGS bit 1 is reserved and always set.
const RFLAGS_RESERVED: u64 = 1 << 1;
/// Present | writable.
const PTE_PRESENT_RW: u64 = 0x3;
/// Present | writable | 2 MiB page.
const PDE_2M_PAGE: u64 = 0x83;

/// Which entry the vCPU starts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryMode {
    /// bzImage 64-bit entry: long mode, paging on, RSI = zero page.
    Long64,
    /// PVH: 32-bit protected mode, paging off, EBX = hvm_start_info.
    Pvh32,
}

/// Why the boot state could not be written to guest memory.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the boot {what} to guest memory")]
pub struct RegsError {
    what: &'static str,
    source: vm_memory::GuestMemoryError,
}

/// General registers at the entry point.
pub fn boot_regs(mode: EntryMode, entry: u64) -> kvm_regs {
    let mut regs = kvm_regs {
        rflags: RFLAGS_RESERVED,
        rip: entry,
        ..Default::default()
    };
    match mode {
        EntryMode::Long64 => {
            regs.rsp = BOOT_STACK_POINTER;
            regs.rbp = BOOT_STACK_POINTER;
            regs.rsi = ZERO_PAGE_START;
        }
        EntryMode::Pvh32 => regs.rbx = PVH_INFO_START,
    }
    regs
}

/// x87 and SSE control words as after FNINIT / reset.
pub fn boot_fpu() -> kvm_fpu {
    kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    }
}

/// Segment and control registers for `mode`, on top of what KVM reported.
pub fn boot_sregs(mode: EntryMode, mut sregs: kvm_sregs) -> kvm_sregs {
    let gdt = boot_gdt(mode == EntryMode::Long64);
    let code = kvm_segment_from_gdt(gdt[1], 1);
    let data = kvm_segment_from_gdt(gdt[2], 2);
    let tss = kvm_segment_from_gdt(gdt[3], 3);
    sregs.gdt.base = BOOT_GDT_START;
    sregs.gdt.limit = (std::mem::size_of_val(&gdt) - 1) as u16;
    sregs.idt.base = BOOT_IDT_START;
    sregs.idt.limit = (std::mem::size_of::<u64>() - 1) as u16;
    sregs.cs = code;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.ss = data;
    sregs.tr = tss;
    match mode {
        EntryMode::Long64 => {
            sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
            sregs.cr3 = PML4_START;
            sregs.cr4 = CR4_PAE;
            sregs.efer = EFER_LME | EFER_LMA;
        }
        EntryMode::Pvh32 => {
            sregs.cr0 = CR0_PE | CR0_ET;
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
    }
    sregs
}

/// The identity map of the first [`BOOT_IDENTITY_MAP_GIB`] GiB with 2 MiB
/// pages, as (guest address, entry) pairs.
pub fn identity_page_tables() -> Vec<(u64, u64)> {
    let mut out = vec![(PML4_START, PDPTE_START | PTE_PRESENT_RW)];
    for gib in 0..BOOT_IDENTITY_MAP_GIB {
        let pd = PDE_START + gib * 0x1000;
        out.push((PDPTE_START + gib * 8, pd | PTE_PRESENT_RW));
        for i in 0..512u64 {
            let phys = ((gib << 9) + i) << 21;
            out.push((pd + i * 8, phys | PDE_2M_PAGE));
        }
    }
    out
}

/// Write the GDT, an empty IDT and (for long mode) the page tables.
pub fn write_boot_tables(mem: &GuestMemoryMmap, mode: EntryMode) -> Result<(), RegsError> {
    let err = |what| move |source| RegsError { what, source };
    for (i, entry) in boot_gdt(mode == EntryMode::Long64).iter().enumerate() {
        mem.write_obj(*entry, GuestAddress(BOOT_GDT_START + i as u64 * 8))
            .map_err(err("GDT"))?;
    }
    mem.write_obj(0u64, GuestAddress(BOOT_IDT_START))
        .map_err(err("IDT"))?;
    if mode == EntryMode::Long64 {
        for (addr, entry) in identity_page_tables() {
            mem.write_obj(entry, GuestAddress(addr))
                .map_err(err("page tables"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_boot_regs() {
        let r = boot_regs(EntryMode::Long64, 0x10_0200);
        assert_eq!(
            (r.rip, r.rsi, r.rsp, r.rflags),
            (0x10_0200, 0x7000, 0x8ff0, 2)
        );
        let p = boot_regs(EntryMode::Pvh32, 0x100_0000);
        assert_eq!((p.rip, p.rbx, p.rsi), (0x100_0000, PVH_INFO_START, 0));
    }

    #[test]
    fn test_boot_sregs_long_mode() {
        let s = boot_sregs(EntryMode::Long64, kvm_sregs::default());
        assert_eq!(s.cr3, PML4_START);
        assert_ne!(s.cr0 & CR0_PG, 0);
        assert_ne!(s.cr4 & CR4_PAE, 0);
        assert_eq!(s.efer, EFER_LME | EFER_LMA);
        assert_eq!((s.cs.selector, s.cs.l, s.ds.selector), (0x8, 1, 0x10));
        assert_eq!(s.gdt.limit, 31);
    }

    #[test]
    fn test_boot_sregs_pvh() {
        let s = boot_sregs(EntryMode::Pvh32, kvm_sregs::default());
        assert_eq!((s.cr0 & CR0_PG, s.efer, s.cr4), (0, 0, 0));
        assert_eq!((s.cs.l, s.cs.db), (0, 1));
    }

    #[test]
    fn test_identity_page_tables_cover_4g() {
        let t = identity_page_tables();
        assert_eq!(t.len(), 1 + 4 * 513);
        let last = t.last().unwrap();
        assert_eq!(last.1 & !0xfff, (4u64 << 30) - (2 << 20));
        assert!(t
            .iter()
            .all(|(a, _)| *a >= PML4_START && *a < PDE_START + 4 * 0x1000));
    }
}
