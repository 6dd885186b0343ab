//! The CFI flash driven as EDK2's NorFlash driver drives it.
use super::*;

const BANK: usize = 4 * SECTOR_SIZE;

/// EDK2's NorFlash writes each command to both devices.
fn cmd(f: &mut CfiFlash, offset: u64, c: u8) {
    let v = u32::from(c) | u32::from(c) << 16;
    f.write(0, offset, &v.to_le_bytes());
}

fn read32(f: &mut CfiFlash, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    f.read(0, offset, &mut b);
    u32::from_le_bytes(b)
}

#[test]
fn test_flash_erased_reads_ones_and_costs_nothing() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    assert_eq!(read32(&mut f, 0), u32::MAX);
    assert_eq!(read32(&mut f, BANK as u64 - 4), u32::MAX);
    assert_eq!(f.allocated_blocks(), 0);
    assert_eq!(f.len(), BANK);
    assert_eq!(CfiFlash::erased(0).err(), Some(FlashError::BadBankSize(0)));
    assert!(CfiFlash::erased(SECTOR_SIZE + 1).is_err());
}

#[test]
fn test_flash_word_program_clears_bits_and_reports_ready() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    cmd(&mut f, 0x100, CMD_PROGRAM);
    f.write(0, 0x100, &0x1234_5678u32.to_le_bytes());
    // After a program the device answers with its status.
    assert_eq!(read32(&mut f, 0x100), 0x0080_0080);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, 0x100), 0x1234_5678);
    // Programming only clears bits: 0x..78 & 0x..0f.
    cmd(&mut f, 0x100, CMD_PROGRAM);
    f.write(0, 0x100, &[0x0f]);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, 0x100), 0x1234_5608);
    assert_eq!(f.allocated_blocks(), 1);
}

#[test]
fn test_flash_block_erase_needs_confirm_and_erases_one_block() {
    let mut f = CfiFlash::with_image(BANK, &vec![0u8; 2 * SECTOR_SIZE]).unwrap();
    assert_eq!(f.allocated_blocks(), 2);
    cmd(&mut f, SECTOR_SIZE as u64 + 8, CMD_BLOCK_ERASE);
    cmd(&mut f, SECTOR_SIZE as u64 + 8, CMD_CONFIRM);
    assert_eq!(read32(&mut f, 0) & 0x0080_0080, 0x0080_0080);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, 0), 0);
    assert_eq!(read32(&mut f, SECTOR_SIZE as u64), u32::MAX);
    assert_eq!(f.allocated_blocks(), 1);
    // Read array instead of the confirm cancels; anything else is an error.
    cmd(&mut f, 0, CMD_BLOCK_ERASE);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, 0), 0);
    cmd(&mut f, 0, CMD_BLOCK_ERASE);
    cmd(&mut f, 0, 0x33);
    assert_eq!(read32(&mut f, 0), 0);
    cmd(&mut f, 0, CMD_READ_STATUS);
    assert_ne!(read32(&mut f, 0) & u32::from(STATUS_ERASE_ERROR), 0);
    cmd(&mut f, 0, CMD_CLEAR_STATUS);
    cmd(&mut f, 0, CMD_READ_STATUS);
    assert_eq!(read32(&mut f, 0), 0);
}

#[test]
fn test_flash_cfi_query_answers_qry_from_both_devices() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    cmd(&mut f, 0, CMD_QUERY);
    let q: Vec<u32> = (0x10..0x13).map(|i| read32(&mut f, i * 4)).collect();
    assert_eq!(
        q,
        [u32::from(b'Q'), u32::from(b'R'), u32::from(b'Y')]
            .map(|c| c | c << 16)
            .to_vec()
    );
    // Device size: half the bank per device; one region of 4 blocks.
    assert_eq!(read32(&mut f, 0x27 * 4) & 0xff, (BANK / 2).trailing_zeros());
    assert_eq!(read32(&mut f, 0x2d * 4) & 0xff, 3);
    assert_eq!(read32(&mut f, 0x1000 * 4), 0, "past the table");
    cmd(&mut f, 0, CMD_READ_ID);
    assert_eq!(read32(&mut f, 0), 0x0089_0089);
    assert_eq!(read32(&mut f, 4), 0x0018_0018);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, 0), u32::MAX);
}

/// EDK2's `NorFlashWriteBuffer`: setup, count (words - 1), the words, confirm.
#[test]
fn test_flash_buffered_program_as_edk2_does_it() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    let at = 0x2000u64;
    cmd(&mut f, at, CMD_BUFFERED_PROGRAM);
    assert_eq!(read32(&mut f, at) & 0x0080_0080, 0x0080_0080);
    cmd(&mut f, at, 31);
    for i in 0..32u32 {
        f.write(0, at + u64::from(i) * 4, &i.to_le_bytes());
    }
    cmd(&mut f, at, CMD_CONFIRM);
    assert_eq!(read32(&mut f, at), 0x0080_0080, "ready, no error");
    cmd(&mut f, 0, CMD_READ_ARRAY);
    for i in 0..32u32 {
        assert_eq!(read32(&mut f, at + u64::from(i) * 4), i);
    }
    assert_eq!(read32(&mut f, at + 128), u32::MAX);
}

#[test]
fn test_flash_buffered_program_bounds_count_and_buffer() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    cmd(&mut f, 0, CMD_BUFFERED_PROGRAM);
    // 0x401 words of 4 bytes: more than the 4 KiB buffer.
    f.write(0, 0, &0x0400_0400u32.to_le_bytes());
    cmd(&mut f, 0, CMD_READ_STATUS);
    assert_ne!(read32(&mut f, 0) & u32::from(STATUS_PROGRAM_ERROR), 0);
    // Data outside the buffer of the setup address is refused.
    cmd(&mut f, 0, CMD_CLEAR_STATUS);
    cmd(&mut f, 0, CMD_BUFFERED_PROGRAM);
    cmd(&mut f, 0, 0);
    f.write(0, SECTOR_SIZE as u64, &0u32.to_le_bytes());
    cmd(&mut f, 0, CMD_CONFIRM);
    assert_ne!(read32(&mut f, 0) & u32::from(STATUS_PROGRAM_ERROR), 0);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(read32(&mut f, SECTOR_SIZE as u64), u32::MAX);
    assert_eq!(f.allocated_blocks(), 0);
}

#[test]
fn test_flash_read_only_and_out_of_bank_writes_report_errors() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    cmd(&mut f, BANK as u64, CMD_PROGRAM);
    f.write(0, BANK as u64 - 2, &0u32.to_le_bytes());
    cmd(&mut f, 0, CMD_READ_STATUS);
    assert_ne!(read32(&mut f, 0) & u32::from(STATUS_PROGRAM_ERROR), 0);
    f.set_read_only(true);
    cmd(&mut f, 0, CMD_CLEAR_STATUS);
    cmd(&mut f, 0, CMD_PROGRAM);
    f.write(0, 0, &0u32.to_le_bytes());
    assert_ne!(read32(&mut f, 0) & u32::from(STATUS_PROGRAM_ERROR), 0);
    assert_eq!(f.allocated_blocks(), 0);
}

#[test]
fn test_flash_template_copy_and_size_checks() {
    let mut image = vec![0xffu8; 3 * SECTOR_SIZE];
    image[SECTOR_SIZE + 5] = 0x42;
    let mut f = CfiFlash::with_image(BANK, &image).unwrap();
    assert_eq!(
        f.allocated_blocks(),
        1,
        "erased blocks of the template cost nothing"
    );
    let mut b = [0u8; 1];
    f.read(0, SECTOR_SIZE as u64 + 5, &mut b);
    assert_eq!(b, [0x42]);
    assert_eq!(
        CfiFlash::with_image(BANK, &vec![0u8; BANK + 1]).err(),
        Some(FlashError::ImageTooLarge {
            image: BANK + 1,
            bank: BANK
        })
    );
}

/// Records what the mirror is told.
#[derive(Clone, Default)]
struct Mirror(std::sync::Arc<std::sync::Mutex<(Vec<u8>, Vec<bool>)>>);

impl FlashMirror for Mirror {
    fn update(&mut self, offset: usize, data: &[u8]) {
        let mut g = self.0.lock().unwrap();
        if g.0.len() < offset + data.len() {
            g.0.resize(offset + data.len(), 0);
        }
        g.0[offset..offset + data.len()].copy_from_slice(data);
    }
    fn array_mode(&mut self, on: bool) {
        self.0.lock().unwrap().1.push(on);
    }
}

#[test]
fn test_flash_mirror_follows_the_array_and_the_read_mode() {
    let mut f = CfiFlash::with_image(BANK, &[0x12, 0x34]).unwrap();
    let m = Mirror::default();
    f.set_mirror(Box::new(m.clone()));
    assert_eq!(m.0.lock().unwrap().0.len(), BANK);
    assert_eq!(&m.0.lock().unwrap().0[..3], &[0x12, 0x34, 0xff]);
    assert_eq!(m.0.lock().unwrap().1, [true]);
    // Program: leaves array mode, the mirror sees the new bytes; read array: back.
    cmd(&mut f, 8, CMD_PROGRAM);
    f.write(0, 8, &0x0f0fu16.to_le_bytes());
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(&m.0.lock().unwrap().0[8..10], &[0x0f, 0x0f]);
    assert_eq!(m.0.lock().unwrap().1, [true, false, true]);
    // Erase: the block reads as ones in the mirror.
    cmd(&mut f, 0, CMD_BLOCK_ERASE);
    cmd(&mut f, 0, CMD_CONFIRM);
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(&m.0.lock().unwrap().0[..2], &[0xff, 0xff]);
    assert_eq!(m.0.lock().unwrap().1, [true, false, true, false, true]);
    // A read-array command in read-array mode changes nothing.
    cmd(&mut f, 0, CMD_READ_ARRAY);
    assert_eq!(m.0.lock().unwrap().1.len(), 5);
}

#[test]
fn test_flash_arbitrary_accesses_never_panic() {
    let mut f = CfiFlash::erased(BANK).unwrap();
    let offsets = [0, 3, BANK as u64 - 1, BANK as u64, u64::MAX - 3, u64::MAX];
    let cmds = [
        0u8, 0x10, 0x20, 0x40, 0x50, 0x60, 0x70, 0x90, 0x98, 0xd0, 0xe8, 0xff, 0x01, 0x33,
    ];
    for &c1 in &cmds {
        for &c2 in &cmds {
            for &off in &offsets {
                for len in 0..=9usize {
                    let mut buf = vec![c2; len];
                    f.write(0, off, &[c1]);
                    f.write(0, off, &buf);
                    f.read(0, off, &mut buf);
                    f.write(0, off, &[c2, 0xff]);
                }
            }
        }
    }
}
