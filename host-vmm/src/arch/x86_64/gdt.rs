//! Flat GDT entries for the boot vCPU and their `kvm_segment` form.

use kvm_bindings::kvm_segment;

/// Long-mode code: present, DPL 0, code read/exec accessed, L=1, G=1.
pub const CODE64_FLAGS: u16 = 0xa09b;
/// 32-bit code (PVH entry): present, code read/exec accessed, D=1, G=1.
pub const CODE32_FLAGS: u16 = 0xc09b;
/// Data: present, read/write accessed, D/B=1, G=1.
pub const DATA_FLAGS: u16 = 0xc093;
/// 32/64-bit TSS, busy.
pub const TSS_FLAGS: u16 = 0x808b;

/// A GDT entry from its flags (access byte in the low 8 bits, then the
/// G/DB/L/AVL nibble in bits 12..15), base and 20-bit limit.
pub const fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    let (flags, base, limit) = (flags as u64, base as u64, limit as u64);
    ((base & 0xff00_0000) << (56 - 24))
        | ((flags & 0x0000_f0ff) << 40)
        | ((limit & 0x000f_0000) << (48 - 16))
        | ((base & 0x00ff_ffff) << 16)
        | (limit & 0x0000_ffff)
}

/// The boot GDT: null, code, data, TSS (selectors 0x0, 0x8, 0x10, 0x18).
pub fn boot_gdt(long_mode: bool) -> [u64; 4] {
    let code = if long_mode {
        CODE64_FLAGS
    } else {
        CODE32_FLAGS
    };
    [
        0,
        gdt_entry(code, 0, 0xfffff),
        gdt_entry(DATA_FLAGS, 0, 0xfffff),
        gdt_entry(TSS_FLAGS, 0, 0xfffff),
    ]
}

fn base(entry: u64) -> u64 {
    ((entry & 0xff00_0000_0000_0000) >> 32)
        | ((entry & 0x0000_00ff_0000_0000) >> 16)
        | ((entry & 0x0000_0000_ffff_0000) >> 16)
}

fn limit(entry: u64) -> u32 {
    let raw = (((entry & 0x000f_0000_0000_0000) >> 32) | (entry & 0xffff)) as u32;
    if bit(entry, 55) == 1 {
        (raw << 12) | 0xfff
    } else {
        raw
    }
}

fn bit(entry: u64, n: u32) -> u8 {
    ((entry >> n) & 1) as u8
}

/// The `kvm_segment` for GDT entry `index` holding `entry`.
pub fn kvm_segment_from_gdt(entry: u64, index: u8) -> kvm_segment {
    let present = bit(entry, 47);
    kvm_segment {
        base: base(entry),
        limit: limit(entry),
        selector: u16::from(index) * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present,
        dpl: ((entry >> 45) & 0x3) as u8,
        db: bit(entry, 54),
        s: bit(entry, 44),
        l: bit(entry, 53),
        g: bit(entry, 55),
        avl: bit(entry, 52),
        unusable: u8::from(present == 0),
        padding: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_gdt_entry_known_values() {
        // Values every x86 boot loader uses for flat segments.
        assert_eq!(gdt_entry(CODE64_FLAGS, 0, 0xfffff), 0x00af_9b00_0000_ffff);
        assert_eq!(gdt_entry(DATA_FLAGS, 0, 0xfffff), 0x00cf_9300_0000_ffff);
        assert_eq!(gdt_entry(CODE32_FLAGS, 0, 0xfffff), 0x00cf_9b00_0000_ffff);
    }

    #[test]
    fn test_kvm_segment_from_gdt() {
        let cs = kvm_segment_from_gdt(gdt_entry(CODE64_FLAGS, 0, 0xfffff), 1);
        assert_eq!(cs.selector, 0x8);
        assert_eq!((cs.l, cs.db, cs.g, cs.s, cs.present), (1, 0, 1, 1, 1));
        assert_eq!(cs.type_, 0xb);
        assert_eq!(cs.limit, 0xffff_ffff);
        assert_eq!(cs.unusable, 0);
        let weird = kvm_segment_from_gdt(gdt_entry(0x0093, 0x1234_5678, 0xabcde), 2);
        assert_eq!(weird.base, 0x1234_5678);
        assert_eq!(weird.limit, 0xabcde);
        assert_eq!(weird.g, 0);
        let null = kvm_segment_from_gdt(0, 0);
        assert_eq!(null.unusable, 1);
    }
}
