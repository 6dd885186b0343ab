//! The eBPF program (`BPF_PROG_TYPE_CGROUP_DEVICE`) for a rule list. Pure.
//!
//! The kernel calls it on every open and mknod of a device node by a process of the cgroup,
//! with `struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; }` in R1
//! (`access_type` = access bits << 16 | device type), and allows the access when it returns 1.
//! The layout follows runc's `devicefilter` (written anew here):
//!
//! ```text
//! prologue:  R2 = type  (ctx[0] & 0xffff)      R3 = access (ctx[0] >> 16)
//!            R4 = major (ctx[4])               R5 = minor  (ctx[8])
//! per rule, last rule first (the first block that matches returns):
//!            if R2 != type   goto next          (omitted for type a)
//!            allow: if (R3 & access) != R3 goto next   deny: if (R3 & access) == 0 goto next
//!                                               (omitted for rwm)
//!            if R4 != major  goto next          (omitted for *)
//!            if R5 != minor  goto next          (omitted for *)
//!            R0 = allow; exit
//! epilogue:  R0 = 0; exit                       (nothing matched: deny)
//! ```

use super::rules::{DeviceRule, ACC_ALL};

/// One `struct bpf_insn` (8 bytes, as the kernel reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    pub code: u8,
    /// dst_reg (low nibble) | src_reg << 4.
    pub regs: u8,
    pub off: i16,
    pub imm: i32,
}

// Opcodes (linux/bpf_common.h, linux/bpf.h).
pub const LDX_MEM_W: u8 = 0x61; // BPF_LDX | BPF_MEM | BPF_W
pub const ALU32_AND_K: u8 = 0x54; // BPF_ALU | BPF_AND | BPF_K
pub const ALU32_RSH_K: u8 = 0x74; // BPF_ALU | BPF_RSH | BPF_K
pub const ALU32_MOV_K: u8 = 0xb4; // BPF_ALU | BPF_MOV | BPF_K
pub const ALU32_MOV_X: u8 = 0xbc; // BPF_ALU | BPF_MOV | BPF_X
pub const JMP_JEQ_K: u8 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
pub const JMP_JNE_K: u8 = 0x55; // BPF_JMP | BPF_JNE | BPF_K
pub const JMP_JNE_X: u8 = 0x5d; // BPF_JMP | BPF_JNE | BPF_X
pub const JMP_EXIT: u8 = 0x95; // BPF_JMP | BPF_EXIT

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: dst | (src << 4),
        off,
        imm,
    }
}

/// A jump to the end of the current rule's block, patched once the block is complete.
const TO_NEXT: i16 = i16::MIN;

/// The program for `rules` (see the module doc). The numbers fit: majors are at most 12
/// bits and minors 20 (checked when the rules were parsed), so an `imm` holds them.
pub fn build(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut prog = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU32_AND_K, R2, 0, 0, 0xffff),
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU32_RSH_K, R3, 0, 0, 16),
        insn(LDX_MEM_W, R4, R1, 4, 0),
        insn(LDX_MEM_W, R5, R1, 8, 0),
    ];
    for rule in rules.iter().rev() {
        let mut block = Vec::new();
        if let Some(kind) = rule.kind.kernel() {
            block.push(insn(JMP_JNE_K, R2, 0, TO_NEXT, kind as i32));
        }
        if rule.access & ACC_ALL != ACC_ALL {
            block.push(insn(ALU32_MOV_X, R1, R3, 0, 0));
            block.push(insn(ALU32_AND_K, R1, 0, 0, rule.access as i32));
            if rule.allow {
                block.push(insn(JMP_JNE_X, R1, R3, TO_NEXT, 0));
            } else {
                block.push(insn(JMP_JEQ_K, R1, 0, TO_NEXT, 0));
            }
        }
        if let Some(major) = rule.major {
            block.push(insn(JMP_JNE_K, R4, 0, TO_NEXT, major as i32));
        }
        if let Some(minor) = rule.minor {
            block.push(insn(JMP_JNE_K, R5, 0, TO_NEXT, minor as i32));
        }
        block.push(insn(ALU32_MOV_K, R0, 0, 0, i32::from(rule.allow)));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == TO_NEXT {
                // Jumps are relative to the next instruction; a block is a few instructions.
                ins.off = (len - i - 1) as i16;
            }
        }
        prog.extend(block);
    }
    prog.push(insn(ALU32_MOV_K, R0, 0, 0, 0));
    prog.push(insn(JMP_EXIT, 0, 0, 0, 0));
    prog
}

/// A tiny interpreter for exactly the opcodes [`build`] emits, so tests run device accesses
/// through the real instructions. Test-only.
#[cfg(test)]
pub mod interp {
    use super::*;

    /// Runs `prog` on an access (`ACC_*` bits) to a device of `kind` (1 block, 2 char).
    pub fn run(prog: &[Insn], kind: u32, access: u32, major: u32, minor: u32) -> u64 {
        let ctx = [(access << 16) | kind, major, minor];
        let mut r = [0u64; 11];
        let mut ctx_reg = [false; 11];
        ctx_reg[1] = true;
        let mut pc = 0usize;
        for _ in 0..10_000 {
            let i = prog[pc];
            let (dst, src) = ((i.regs & 0xf) as usize, (i.regs >> 4) as usize);
            pc += 1;
            let jump = |pc: &mut usize, taken: bool| {
                if taken {
                    *pc = (*pc as i64 + i64::from(i.off)) as usize;
                }
            };
            match i.code {
                LDX_MEM_W => {
                    assert!(ctx_reg[src], "load from a non-context register");
                    assert!(i.off % 4 == 0 && (0..12).contains(&i.off), "ctx offset");
                    r[dst] = u64::from(ctx[(i.off / 4) as usize]);
                    ctx_reg[dst] = false;
                }
                ALU32_AND_K => r[dst] = u64::from(r[dst] as u32 & i.imm as u32),
                ALU32_RSH_K => r[dst] = u64::from((r[dst] as u32) >> i.imm),
                ALU32_MOV_K => r[dst] = u64::from(i.imm as u32),
                ALU32_MOV_X => {
                    r[dst] = u64::from(r[src] as u32);
                    ctx_reg[dst] = false;
                }
                JMP_JEQ_K => jump(&mut pc, r[dst] == i.imm as i64 as u64),
                JMP_JNE_K => jump(&mut pc, r[dst] != i.imm as i64 as u64),
                JMP_JNE_X => jump(&mut pc, r[dst] != r[src]),
                JMP_EXIT => return r[0],
                other => panic!("opcode {other:#x} not emitted by build()"),
            }
            assert!(pc < prog.len(), "fell off the program");
        }
        panic!("no exit within 10000 steps")
    }
}

#[cfg(test)]
mod tests {
    use super::interp::run;
    use super::*;
    use crate::container::devices::rules::*;

    const BLOCK: u32 = 1;
    const CHAR: u32 = 2;

    fn default_program() -> Vec<Insn> {
        build(&container_rules(&[], &[]).unwrap())
    }

    #[test]
    fn test_default_program_allows_standard_nodes() {
        let prog = default_program();
        for (name, major, minor) in DEFAULT_NODES {
            for access in [ACC_READ, ACC_WRITE, ACC_READ | ACC_WRITE, ACC_MKNOD] {
                assert_eq!(run(&prog, CHAR, access, major, minor), 1, "{name} {access}");
            }
        }
        assert_eq!(run(&prog, CHAR, ACC_READ | ACC_WRITE, 5, 2), 1, "ptmx");
        assert_eq!(run(&prog, CHAR, ACC_READ | ACC_WRITE, 136, 7), 1, "pts/7");
    }

    #[test]
    fn test_default_program_refuses_disks_and_other_devices() {
        let prog = default_program();
        // virtio-blk (254:*), /dev/mem (1:1), /dev/kmsg (1:11), /dev/console (5:1), a
        // block device with a char device's numbers.
        for (kind, major, minor) in [
            (BLOCK, 254, 0),
            (BLOCK, 254, 16),
            (CHAR, 1, 1),
            (CHAR, 1, 11),
            (CHAR, 5, 1),
            (BLOCK, 1, 3),
        ] {
            for access in [ACC_READ, ACC_WRITE, ACC_READ | ACC_WRITE] {
                assert_eq!(
                    run(&prog, kind, access, major, minor),
                    0,
                    "{kind} {major}:{minor}"
                );
            }
            // Making the node is allowed, as runc does; opening it is not.
            assert_eq!(run(&prog, kind, ACC_MKNOD, major, minor), 1);
        }
    }

    #[test]
    fn test_later_rules_win_and_partial_matches() {
        let block_254 = |allow, access| DeviceRule {
            allow,
            kind: DevType::Block,
            major: Some(254),
            minor: None,
            access,
        };
        // Read-only access to every virtio disk.
        let prog = build(&[block_254(true, ACC_READ)]);
        assert_eq!(run(&prog, BLOCK, ACC_READ, 254, 3), 1);
        assert_eq!(run(&prog, BLOCK, ACC_READ | ACC_WRITE, 254, 3), 0);
        assert_eq!(run(&prog, CHAR, ACC_READ, 254, 3), 0);
        // Allow rw, then deny w: a rw open is refused, a read still works.
        let prog = build(&[
            block_254(true, ACC_READ | ACC_WRITE),
            block_254(false, ACC_WRITE),
        ]);
        assert_eq!(run(&prog, BLOCK, ACC_READ | ACC_WRITE, 254, 0), 0);
        assert_eq!(run(&prog, BLOCK, ACC_READ, 254, 0), 1);
        // Deny everything, then allow everything: allowed (Docker's --privileged).
        let all = |allow| DeviceRule {
            allow,
            kind: DevType::All,
            major: None,
            minor: None,
            access: ACC_ALL,
        };
        let prog = build(&[all(false), all(true)]);
        assert_eq!(run(&prog, BLOCK, ACC_READ, 8, 0), 1);
        let prog = build(&[all(true), all(false)]);
        assert_eq!(run(&prog, CHAR, ACC_READ, 1, 3), 0);
        // Nothing at all: deny.
        assert_eq!(run(&build(&[]), CHAR, ACC_READ, 1, 3), 0);
    }

    #[test]
    fn test_program_shape() {
        let prog = default_program();
        assert_eq!(*prog.last().unwrap(), insn(JMP_EXIT, 0, 0, 0, 0));
        for (i, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == 0x05 && ins.code != JMP_EXIT {
                let target = i as i64 + 1 + i64::from(ins.off);
                assert!(ins.off > 0 && (target as usize) < prog.len(), "jump at {i}");
            }
        }
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
