//! Fuzz harnesses for the firmware devices (cargo-fuzz targets in
//! `host-vmm/fuzz/fuzz_targets/`, and the stable `fuzz_smoke` tests):
//! a hostile guest's register accesses on fw_cfg (selector, data, DMA with
//! descriptors it writes into its RAM) and on the CFI flash. Each takes
//! arbitrary bytes; a panic or a broken invariant (asserted here) is a bug.

use vm_memory::{Bytes, GuestAddress};

use super::fw_cfg::items::{KEY_FILE_FIRST, KEY_KERNEL_DATA};
use super::fw_cfg::{FwCfg, Items, DMA_ACCESS_LEN, REG_DMA, WINDOW_SIZE};
use super::CfiFlash;
use crate::devices::virtio::fuzzing::Input;
use crate::devices::BusDevice;
use crate::memory::{create_guest_memory, GuestMemoryAtomic};

/// The fuzz guest's RAM: 64 KiB at 1 GiB.
const RAM_BASE: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 0x1_0000;

/// What [`fw_cfg_registers`] did, for the seed checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FwCfgOutcome {
    /// DMA transfers that completed without the error bit.
    pub dma_ok: u32,
    /// DMA transfers that reported the error bit.
    pub dma_errors: u32,
    /// Bytes read through the data register.
    pub data_bytes: u32,
}

fn width(inp: &mut Input) -> usize {
    [1, 2, 4, 8, 0, 3][usize::from(inp.u8() % 6)]
}

fn offset(inp: &mut Input) -> u64 {
    match inp.u8() % 8 {
        0 => inp.u64(),
        _ => u64::from(inp.u8()) % (WINDOW_SIZE + 8),
    }
}

/// A guest address: mostly inside the fuzz RAM, sometimes anywhere.
fn address(inp: &mut Input) -> u64 {
    match inp.u8() % 4 {
        0 => inp.u64(),
        _ => RAM_BASE + u64::from(inp.u16()) % (RAM_SIZE + 64),
    }
}

/// See the module documentation. Invariants: the device never panics, a
/// DMA leaves the control word at 0 or the error bit (when the descriptor
/// is in RAM), and the read position stays within the selected item.
pub fn fw_cfg_registers(data: &[u8]) -> FwCfgOutcome {
    let mut inp = Input::new(data);
    let Ok(mem) = create_guest_memory(&[(GuestAddress(RAM_BASE), RAM_SIZE)], 1) else {
        return FwCfgOutcome::default();
    };
    let mut items = Items::new();
    let _ = items.set_kernel((0..=255u8).cycle().take(5000).collect());
    let _ = items.set_cmdline("console=ttyAMA0");
    let _ = items.add_file("etc/acpi/tables", vec![0xaa; 300]);
    let mut dev = FwCfg::new(items.finish(), GuestMemoryAtomic::new(mem.clone()));
    let mut out = FwCfgOutcome::default();
    let mut ops = 0;
    while !inp.is_empty() && ops < 1024 {
        ops += 1;
        match inp.u8() % 6 {
            // Select: mostly known keys.
            0 => {
                let key = match inp.u8() % 4 {
                    0 => inp.u16(),
                    1 => KEY_KERNEL_DATA,
                    2 => KEY_FILE_FIRST,
                    _ => u16::from(inp.u8() % 0x22),
                };
                dev.write(0, 8, &key.to_be_bytes());
            }
            1 => {
                let mut buf = vec![0u8; width(&mut inp)];
                dev.read(0, 0, &mut buf);
                out.data_bytes += buf.len() as u32;
            }
            // A descriptor written into RAM, then its address to the DMA register.
            2 | 3 => {
                let at = address(&mut inp);
                let mut desc = [0u8; DMA_ACCESS_LEN];
                desc[0..4].copy_from_slice(&inp.u32().to_be_bytes());
                desc[4..8].copy_from_slice(&(inp.u32() % 0x2_0000).to_be_bytes());
                desc[8..16].copy_from_slice(&address(&mut inp).to_be_bytes());
                let in_ram = mem.write_slice(&desc, GuestAddress(at)).is_ok();
                if inp.u8() % 2 == 0 {
                    dev.write(0, REG_DMA, &at.to_be_bytes());
                } else {
                    dev.write(0, REG_DMA, &((at >> 32) as u32).to_be_bytes());
                    dev.write(0, REG_DMA + 4, &(at as u32).to_be_bytes());
                }
                let mut ctl = [0u8; 4];
                if in_ram && mem.read_slice(&mut ctl, GuestAddress(at)).is_ok() {
                    match u32::from_be_bytes(ctl) {
                        0 => out.dma_ok += 1,
                        1 => out.dma_errors += 1,
                        // The transfer may overwrite its own descriptor.
                        _ => {}
                    }
                }
            }
            // Anything at any offset and width.
            _ => {
                let w = width(&mut inp);
                let off = offset(&mut inp);
                let v = inp.u64().to_le_bytes();
                dev.write(0, off, &v[..w.min(8)]);
                let mut buf = vec![0u8; width(&mut inp)];
                dev.read(0, offset(&mut inp), &mut buf);
            }
        }
        let (selector, position) = dev.position();
        assert!(
            position <= dev.item_len(selector),
            "position {position} past item {selector:#x}"
        );
    }
    out
}

/// The flash bank of the fuzz guest: four 256 KiB blocks.
const FLASH_LEN: usize = 4 * super::flash::SECTOR_SIZE;

/// See the module documentation: any command sequence at any offset and
/// width. Invariant: the bank never holds more blocks than it has.
pub fn flash_commands(data: &[u8]) -> usize {
    let mut inp = Input::new(data);
    let Ok(mut f) = CfiFlash::erased(FLASH_LEN) else {
        return 0;
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 2048 {
        ops += 1;
        let off = match inp.u8() % 8 {
            0 => inp.u64(),
            _ => u64::from(inp.u32()) % (FLASH_LEN as u64 + 16),
        };
        let w = width(&mut inp);
        if inp.u8() % 3 == 0 {
            let mut buf = vec![0u8; w];
            f.read(0, off, &mut buf);
        } else {
            // Mostly commands the flash knows.
            let cmds = [0xffu8, 0x70, 0x50, 0x90, 0x98, 0x40, 0x20, 0xd0, 0xe8, 0x60];
            let c = match inp.u8() % 4 {
                0 => inp.u8(),
                _ => cmds[usize::from(inp.u8()) % cmds.len()],
            };
            let v = (u64::from(c) | u64::from(c) << 16 | u64::from(inp.u16()) << 32).to_le_bytes();
            f.write(0, off, &v[..w.min(8)]);
        }
        assert!(f.allocated_blocks() <= FLASH_LEN / super::flash::SECTOR_SIZE);
    }
    f.allocated_blocks()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::fuzz_smoke::{corpus, smoke};

    #[test]
    fn test_fuzz_smoke_fw_cfg_registers() {
        let n = smoke(
            "fw_cfg_registers",
            |d| {
                fw_cfg_registers(d);
            },
            1024,
            500,
        );
        eprintln!("fw_cfg_registers: {n} random inputs");
    }

    #[test]
    fn test_fuzz_smoke_flash_commands() {
        let n = smoke(
            "flash_commands",
            |d| {
                flash_commands(d);
            },
            1024,
            500,
        );
        eprintln!("flash_commands: {n} random inputs");
    }

    /// The seeds reach the state they are named after.
    #[test]
    fn test_fuzz_fw_cfg_seeds_reach_their_paths() {
        let seed = |name: &str| {
            corpus("fw_cfg_registers")
                .into_iter()
                .find(|(p, _)| p.ends_with(name))
                .unwrap_or_else(|| panic!("seed fw_cfg_registers/{name}"))
                .1
        };
        let o = fw_cfg_registers(&seed("dma_read_kernel"));
        assert_eq!((o.dma_ok, o.dma_errors), (1, 0), "{o:?}");
        let o = fw_cfg_registers(&seed("data_read_signature"));
        assert_eq!(o.data_bytes, 4, "{o:?}");
        let o = fw_cfg_registers(&seed("dma_write_refused"));
        assert_eq!((o.dma_ok, o.dma_errors), (0, 1), "{o:?}");
    }
}
