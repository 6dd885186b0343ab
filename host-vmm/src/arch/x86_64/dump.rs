//! A vCPU's registers as text, for the log when a guest dies.

use kvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};

fn seg(name: &str, s: &kvm_segment) -> String {
    format!(
        "{name}={:#06x} base={:#x} limit={:#x} type={:#x} l={} db={}",
        s.selector, s.base, s.limit, s.type_, s.l, s.db
    )
}

/// Multi-line register dump.
pub fn format_regs(regs: &kvm_regs, sregs: &kvm_sregs) -> String {
    let r = regs;
    let s = sregs;
    [
        format!(
            "rip={:#018x} rsp={:#018x} rbp={:#018x} rflags={:#x}",
            r.rip, r.rsp, r.rbp, r.rflags
        ),
        format!(
            "rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}",
            r.rax, r.rbx, r.rcx, r.rdx
        ),
        format!(
            "rsi={:#018x} rdi={:#018x} r8={:#018x} r9={:#018x}",
            r.rsi, r.rdi, r.r8, r.r9
        ),
        format!(
            "r10={:#018x} r11={:#018x} r12={:#018x} r13={:#018x}",
            r.r10, r.r11, r.r12, r.r13
        ),
        format!("r14={:#018x} r15={:#018x}", r.r14, r.r15),
        format!(
            "cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} cr8={:#x} efer={:#x} apic_base={:#x}",
            s.cr0, s.cr2, s.cr3, s.cr4, s.cr8, s.efer, s.apic_base
        ),
        seg("cs", &s.cs),
        seg("ss", &s.ss),
        format!(
            "gdt base={:#x} limit={:#x} idt base={:#x} limit={:#x}",
            s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_format_regs_names_key_registers() {
        let regs = kvm_regs {
            rip: 0xffff_ffff_8100_0000,
            rsp: 0x8ff0,
            ..Default::default()
        };
        let sregs = kvm_sregs {
            cr0: 0x8000_0011,
            cr3: 0x9000,
            cr4: 0x20,
            efer: 0x500,
            ..Default::default()
        };
        let d = format_regs(&regs, &sregs);
        for want in [
            "rip=0xffffffff81000000",
            "rsp=0x0000000000008ff0",
            "cr0=0x80000011",
            "cr3=0x9000",
            "cr4=0x20",
            "efer=0x500",
            "cs=0x0000",
        ] {
            assert!(d.contains(want), "{want} missing in:\n{d}");
        }
        assert_eq!(d.lines().count(), 9);
    }
}
