use vm_memory::{Bytes, GuestAddress};

use super::items::*;
use super::*;
use crate::memory::{create_guest_memory, GuestMemoryMmap};

const RAM: u64 = 0x4000_0000;
const RAM_SIZE: u64 = 1 << 20;

fn device() -> (FwCfg, GuestMemoryMmap) {
    let mem = create_guest_memory(&[(GuestAddress(RAM), RAM_SIZE)], 1).unwrap();
    let mut i = Items::new();
    i.set_kernel((0..=255u8).cycle().take(3000).collect())
        .unwrap();
    i.set_cmdline("console=ttyAMA0").unwrap();
    i.add_file("etc/acpi/tables", vec![0xaa; 100]).unwrap();
    let dev = FwCfg::new(i.finish(), GuestMemoryAtomic::new(mem.clone()));
    (dev, mem)
}

fn select(d: &mut FwCfg, key: u16) {
    d.write(0, REG_SELECTOR, &key.to_be_bytes());
}

fn descriptor(mem: &GuestMemoryMmap, at: u64, control: u32, len: u32, target: u64) {
    let mut b = Vec::new();
    b.extend_from_slice(&control.to_be_bytes());
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&target.to_be_bytes());
    mem.write_slice(&b, GuestAddress(at)).unwrap();
}

fn control(mem: &GuestMemoryMmap, at: u64) -> u32 {
    let mut b = [0u8; 4];
    mem.read_slice(&mut b, GuestAddress(at)).unwrap();
    u32::from_be_bytes(b)
}

#[test]
fn test_fw_cfg_signature_and_features_through_the_data_register() {
    let (mut d, _) = device();
    select(&mut d, KEY_SIGNATURE);
    let mut b = [0u8; 4];
    d.read(0, REG_DATA, &mut b);
    assert_eq!(&b, b"QEMU");
    // Past the end: zeroes.
    d.read(0, REG_DATA, &mut b);
    assert_eq!(b, [0; 4]);
    select(&mut d, KEY_ID);
    let mut one = [0u8; 1];
    d.read(0, REG_DATA, &mut one);
    assert_eq!(one[0] as u32, FEATURE_TRADITIONAL | FEATURE_DMA);
    let mut sig = [0u8; 8];
    d.read(0, REG_DMA, &mut sig);
    assert_eq!(&sig, b"QEMU CFG");
}

#[test]
fn test_fw_cfg_data_reads_stream_in_order_and_selector_rewinds() {
    let (mut d, _) = device();
    select(&mut d, KEY_CMDLINE_DATA);
    let mut b = [0u8; 8];
    d.read(0, REG_DATA, &mut b);
    assert_eq!(&b, b"console=");
    d.read(0, REG_DATA, &mut b);
    assert_eq!(&b, b"ttyAMA0\0");
    select(&mut d, KEY_CMDLINE_DATA);
    d.read(0, REG_DATA, &mut b[..2]);
    assert_eq!(&b[..2], b"co");
}

#[test]
fn test_fw_cfg_dma_select_and_read_the_kernel() {
    let (mut d, mem) = device();
    let desc = RAM + 0x100;
    let target = RAM + 0x1000;
    let ctl = DMA_CTL_SELECT | DMA_CTL_READ | u32::from(KEY_KERNEL_DATA) << 16;
    descriptor(&mem, desc, ctl, 3000, target);
    d.write(0, REG_DMA, &desc.to_be_bytes());
    assert_eq!(control(&mem, desc), 0, "done, no error");
    let mut got = vec![0u8; 3000];
    mem.read_slice(&mut got, GuestAddress(target)).unwrap();
    let want: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    assert_eq!(got, want);
}

#[test]
fn test_fw_cfg_dma_split_address_skip_and_zero_fill() {
    let (mut d, mem) = device();
    select(&mut d, KEY_FILE_FIRST);
    let desc = RAM + 0x200;
    descriptor(&mem, desc, DMA_CTL_SKIP, 90, 0);
    d.write(0, REG_DMA, &((desc >> 32) as u32).to_be_bytes());
    d.write(0, 0x14, &(desc as u32).to_be_bytes());
    assert_eq!(control(&mem, desc), 0);
    // 10 bytes left of the file, then zeroes.
    let target = RAM + 0x3000;
    mem.write_slice(&[0x55; 32], GuestAddress(target)).unwrap();
    descriptor(&mem, desc, DMA_CTL_READ, 32, target);
    d.write(0, REG_DMA, &desc.to_be_bytes());
    assert_eq!(control(&mem, desc), 0);
    let mut got = [0u8; 32];
    mem.read_slice(&mut got, GuestAddress(target)).unwrap();
    assert_eq!(&got[..10], &[0xaa; 10]);
    assert_eq!(&got[10..], &[0; 22]);
}

#[test]
fn test_fw_cfg_dma_outside_ram_or_write_sets_error() {
    let (mut d, mem) = device();
    let desc = RAM + 0x100;
    // Target past the end of RAM.
    let ctl = DMA_CTL_SELECT | DMA_CTL_READ | u32::from(KEY_KERNEL_DATA) << 16;
    descriptor(&mem, desc, ctl, 3000, RAM + RAM_SIZE - 10);
    d.write(0, REG_DMA, &desc.to_be_bytes());
    assert_eq!(control(&mem, desc), DMA_CTL_ERROR);
    // Zero fill running out of RAM.
    descriptor(&mem, desc, DMA_CTL_READ, u32::MAX, RAM + 0x8000);
    d.write(0, REG_DMA, &desc.to_be_bytes());
    assert_eq!(control(&mem, desc), DMA_CTL_ERROR);
    // Writes are refused.
    descriptor(&mem, desc, DMA_CTL_WRITE, 4, RAM);
    d.write(0, REG_DMA, &desc.to_be_bytes());
    assert_eq!(control(&mem, desc), DMA_CTL_ERROR);
    // A descriptor outside RAM is ignored (nowhere to report).
    d.write(0, REG_DMA, &0u64.to_be_bytes());
    d.write(0, REG_DMA, &u64::MAX.to_be_bytes());
    d.write(0, REG_DMA, &(RAM + RAM_SIZE - 8).to_be_bytes());
}

#[test]
fn test_fw_cfg_arbitrary_register_accesses_never_panic() {
    let (mut d, _) = device();
    for off in (0..0x20u64).chain([u64::MAX, u64::MAX - 7]) {
        for len in 0..=9 {
            let mut buf = vec![0xffu8; len];
            d.read(0, off, &mut buf);
            d.write(0, off, &buf);
        }
    }
}
