//! The ELF facts that tell whether an executable is static: no program interpreter
//! (`PT_INTERP`) and no needed shared libraries (`DT_NEEDED`). ELF64 little-endian only.

pub const EM_X86_64: u16 = 62;
pub const EM_AARCH64: u16 = 183;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;

#[derive(Debug, PartialEq, Eq)]
pub struct ElfFacts {
    pub machine: u16,
    pub has_interp: bool,
    pub needed_count: usize,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Reads the facts, or says why the bytes are not a well-formed ELF64 LE executable.
pub fn facts(bin: &[u8]) -> Result<ElfFacts, String> {
    if bin.get(..4) != Some(b"\x7fELF") {
        return Err("no ELF magic".into());
    }
    if bin.get(4) != Some(&2) || bin.get(5) != Some(&1) {
        return Err("not ELF64 little-endian".into());
    }
    let trunc = || "truncated ELF".to_string();
    let machine = u16_at(bin, 18).ok_or_else(trunc)?;
    let phoff = u64_at(bin, 32).ok_or_else(trunc)? as usize;
    let phentsize = u16_at(bin, 54).ok_or_else(trunc)? as usize;
    let phnum = u16_at(bin, 56).ok_or_else(trunc)? as usize;
    let mut has_interp = false;
    let mut needed_count = 0;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32_at(bin, ph).ok_or_else(trunc)?;
        if p_type == PT_INTERP {
            has_interp = true;
        }
        if p_type == PT_DYNAMIC {
            let offset = u64_at(bin, ph + 8).ok_or_else(trunc)? as usize;
            let size = u64_at(bin, ph + 32).ok_or_else(trunc)? as usize;
            for entry in (offset..offset + size).step_by(16) {
                match u64_at(bin, entry).ok_or_else(trunc)? {
                    DT_NULL => break,
                    DT_NEEDED => needed_count += 1,
                    _ => {}
                }
            }
        }
    }
    Ok(ElfFacts {
        machine,
        has_interp,
        needed_count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64 header plus program headers of the given (type, offset, size).
    fn fake_elf(phdrs: &[(u32, u64, u64)], tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for &(t, off, size) in phdrs {
            let mut ph = vec![0u8; 56];
            ph[..4].copy_from_slice(&t.to_le_bytes());
            ph[8..16].copy_from_slice(&off.to_le_bytes());
            ph[32..40].copy_from_slice(&size.to_le_bytes());
            b.extend_from_slice(&ph);
        }
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn test_facts_static_pie_with_dynamic_but_no_needed() {
        let dyn_off = 64 + 56;
        let mut dynamic = Vec::new();
        for (tag, val) in [(0x6ffffffbu64, 0u64), (DT_NULL, 0)] {
            dynamic.extend_from_slice(&tag.to_le_bytes());
            dynamic.extend_from_slice(&val.to_le_bytes());
        }
        let bin = fake_elf(&[(PT_DYNAMIC, dyn_off, 32)], &dynamic);
        let f = facts(&bin).unwrap();
        assert_eq!(
            (f.machine, f.has_interp, f.needed_count),
            (EM_X86_64, false, 0)
        );
    }

    #[test]
    fn test_facts_dynamic_binary_has_interp_and_needed() {
        let dyn_off = 64 + 2 * 56;
        let mut dynamic = Vec::new();
        for (tag, val) in [(DT_NEEDED, 1u64), (DT_NEEDED, 9), (DT_NULL, 0)] {
            dynamic.extend_from_slice(&tag.to_le_bytes());
            dynamic.extend_from_slice(&val.to_le_bytes());
        }
        let bin = fake_elf(&[(PT_INTERP, 0, 0), (PT_DYNAMIC, dyn_off, 48)], &dynamic);
        let f = facts(&bin).unwrap();
        assert!(f.has_interp);
        assert_eq!(f.needed_count, 2);
    }

    #[test]
    fn test_facts_rejects_non_elf_and_truncation() {
        assert!(facts(b"#!/bin/sh\n").is_err());
        let mut bin = fake_elf(&[(PT_DYNAMIC, 4096, 16)], &[]);
        assert_eq!(facts(&bin).unwrap_err(), "truncated ELF");
        bin[4] = 1;
        assert!(facts(&bin).unwrap_err().contains("ELF64"));
    }
}
