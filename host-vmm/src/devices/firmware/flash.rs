//! CFI flash (Intel command set, "pflash_cfi01"): the UEFI variable store at
//! flash1.
//!
//! The bank is what QEMU's `virt` board builds, so EDK2's NorFlash driver
//! (ArmVirtPkg `VirtNorFlashDxe`) finds the behaviour it was written for:
//! two x16 devices side by side on a 32-bit bus (bank width 4, device width
//! 2), little-endian, 256 KiB erase blocks. A command is the low byte of the
//! written value (EDK2 writes it to both devices: `0x00ff00ff`); status and
//! query answers are replicated into both 16-bit halves of a 32-bit read.
//!
//! Commands (facts from QEMU's `hw/block/pflash_cfi01.c`):
//! `0xff` read array, `0x70` read status, `0x50` clear status, `0x90` read
//! identifier, `0x98` CFI query, `0x10`/`0x40` program one word, `0x20` +
//! `0xd0` block erase, `0xe8` + count + data + `0xd0` buffered program,
//! `0x60` + `0xd0`/`0x01` block (un)lock (accepted, nothing is ever locked).
//! Status bit 7 is "ready", bit 5 an erase error, bit 4 a program error.
//!
//! Storage is kept per erase block and allocated only when the guest writes
//! into it (an erased block reads as 0xff), so a 64 MiB bank costs the host
//! what the guest has written, at most the bank. The guest is untrusted:
//! every offset is checked against the bank, a buffered program stays
//! inside one write buffer, and any access width works.

use crate::devices::BusDevice;

/// Bytes of one erase block.
pub const SECTOR_SIZE: usize = 256 * 1024;
/// Bytes of the bus (two x16 devices).
const BANK_WIDTH: u64 = 4;
/// Bytes of a buffered program's buffer for the whole bank: 2^11 per device,
/// two devices (QEMU's `writeblock_size`).
pub const WRITE_BUFFER_SIZE: u64 = 2 * 2048;
/// Manufacturer and device id QEMU's virt board gives its flash (Intel).
const MANUFACTURER_ID: u32 = 0x89;
const DEVICE_ID: u32 = 0x18;

/// Status register bits.
pub const STATUS_READY: u8 = 0x80;
pub const STATUS_ERASE_ERROR: u8 = 0x20;
pub const STATUS_PROGRAM_ERROR: u8 = 0x10;

pub const CMD_READ_ARRAY: u8 = 0xff;
pub const CMD_READ_STATUS: u8 = 0x70;
pub const CMD_CLEAR_STATUS: u8 = 0x50;
pub const CMD_READ_ID: u8 = 0x90;
pub const CMD_QUERY: u8 = 0x98;
pub const CMD_PROGRAM: u8 = 0x40;
pub const CMD_PROGRAM_ALT: u8 = 0x10;
pub const CMD_BLOCK_ERASE: u8 = 0x20;
pub const CMD_BUFFERED_PROGRAM: u8 = 0xe8;
pub const CMD_LOCK: u8 = 0x60;
pub const CMD_CONFIRM: u8 = 0xd0;

/// A copy of the array the guest reads directly while the bank is in
/// read-array mode, as QEMU's "ROMD" mode does: the VMM maps it as a
/// read-only memory slot then, and unmaps it in the other modes so that
/// status and query reads reach the device. EDK2 copies the variable store
/// with load-pair instructions, which KVM cannot hand to userspace as MMIO,
/// so array reads must not exit.
pub trait FlashMirror: Send {
    /// The bytes from `offset` are now `data` (after a program or an erase).
    fn update(&mut self, offset: usize, data: &[u8]);
    /// The bank entered (`true`) or left (`false`) read-array mode.
    fn array_mode(&mut self, on: bool);
}

/// Why a flash image cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlashError {
    #[error("the flash image is {image} bytes, more than the {bank}-byte bank")]
    ImageTooLarge { image: usize, bank: usize },
    #[error(
        "the flash bank size {0} is not a positive multiple of the {SECTOR_SIZE}-byte erase block"
    )]
    BadBankSize(usize),
}

/// What the next write means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reads return the array.
    ReadArray,
    /// Reads return the status register.
    Status,
    /// Reads return the identifier codes.
    Id,
    /// Reads return the CFI table.
    Query,
    /// The next write is the data of a one-word program.
    Program,
    /// The next write confirms a block erase of the block holding `at`.
    Erase { at: u64 },
    /// The next write confirms (or not) a block (un)lock.
    Lock,
    /// The next write is the word count of a buffered program at `at`.
    BufferCount { at: u64 },
    /// `left` more data writes of the buffered program in the buffer at `buffer`.
    BufferData { buffer: u64, left: u32 },
    /// The next write confirms the buffered program.
    BufferConfirm,
}

/// A CFI flash bank of `len` bytes.
pub struct CfiFlash {
    /// One entry per erase block; `None` is an erased block (all 0xff).
    sectors: Vec<Option<Box<[u8]>>>,
    state: State,
    status: u8,
    cfi: [u8; 0x40],
    read_only: bool,
    mirror: Option<Box<dyn FlashMirror>>,
}

impl CfiFlash {
    /// An erased bank of `len` bytes (a fresh variable store: EDK2 formats it).
    pub fn erased(len: usize) -> Result<CfiFlash, FlashError> {
        if len == 0 || len % SECTOR_SIZE != 0 {
            return Err(FlashError::BadBankSize(len));
        }
        let blocks = len / SECTOR_SIZE;
        Ok(CfiFlash {
            sectors: (0..blocks).map(|_| None).collect(),
            state: State::ReadArray,
            status: 0,
            cfi: cfi_table(len),
            read_only: false,
            mirror: None,
        })
    }

    /// A bank of `len` bytes holding `image` from offset 0 (a copy of a
    /// variable store template); the rest erased.
    pub fn with_image(len: usize, image: &[u8]) -> Result<CfiFlash, FlashError> {
        let mut f = CfiFlash::erased(len)?;
        if image.len() > len {
            return Err(FlashError::ImageTooLarge {
                image: image.len(),
                bank: len,
            });
        }
        for (i, chunk) in image.chunks(SECTOR_SIZE).enumerate() {
            if chunk.iter().all(|&b| b == 0xff) {
                continue;
            }
            let mut block = vec![0xffu8; SECTOR_SIZE].into_boxed_slice();
            block[..chunk.len()].copy_from_slice(chunk);
            f.sectors[i] = Some(block);
        }
        Ok(f)
    }

    /// Keep `mirror` in step: it gets the whole array now, every change,
    /// and every switch into or out of read-array mode.
    pub fn set_mirror(&mut self, mut mirror: Box<dyn FlashMirror>) {
        let mut block = vec![0xffu8; SECTOR_SIZE];
        for (i, s) in self.sectors.iter().enumerate() {
            match s {
                Some(data) => mirror.update(i * SECTOR_SIZE, data),
                None => {
                    block.fill(0xff);
                    mirror.update(i * SECTOR_SIZE, &block);
                }
            }
        }
        mirror.array_mode(self.state == State::ReadArray);
        self.mirror = Some(mirror);
    }

    /// Refuse every program and erase (status reports the error).
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Bytes in the bank.
    pub fn len(&self) -> usize {
        self.sectors.len() * SECTOR_SIZE
    }

    pub fn is_empty(&self) -> bool {
        self.sectors.is_empty()
    }

    /// Erase blocks that hold host memory (written by the guest or the template).
    pub fn allocated_blocks(&self) -> usize {
        self.sectors.iter().filter(|s| s.is_some()).count()
    }

    /// The byte at `offset` of the array (0xff past the end).
    pub fn byte(&self, offset: u64) -> u8 {
        let Ok(off) = usize::try_from(offset) else {
            return 0xff;
        };
        match self.sectors.get(off / SECTOR_SIZE) {
            Some(Some(block)) => block[off % SECTOR_SIZE],
            _ => 0xff,
        }
    }

    /// Program `data` at `offset`: flash programming only clears bits.
    /// Returns false if any byte lies outside the bank.
    fn program(&mut self, offset: u64, data: &[u8]) -> bool {
        let len = self.len() as u64;
        let Some(end) = offset.checked_add(data.len() as u64) else {
            return false;
        };
        if end > len {
            return false;
        }
        let mut now = Vec::with_capacity(data.len());
        for (i, &b) in data.iter().enumerate() {
            // Below `len`, which is a usize: no truncation.
            let off = (offset + i as u64) as usize;
            let block = self.sectors[off / SECTOR_SIZE]
                .get_or_insert_with(|| vec![0xffu8; SECTOR_SIZE].into_boxed_slice());
            block[off % SECTOR_SIZE] &= b;
            now.push(block[off % SECTOR_SIZE]);
        }
        if let Some(m) = self.mirror.as_mut() {
            m.update(offset as usize, &now);
        }
        true
    }

    fn erase(&mut self, offset: u64) -> bool {
        match usize::try_from(offset)
            .ok()
            .and_then(|o| self.sectors.get_mut(o / SECTOR_SIZE))
        {
            Some(s) => {
                *s = None;
                if let Some(m) = self.mirror.as_mut() {
                    let start = (offset as usize) / SECTOR_SIZE * SECTOR_SIZE;
                    m.update(start, &vec![0xffu8; SECTOR_SIZE]);
                }
                true
            }
            None => false,
        }
    }

    /// The status register as both devices answer it, for a read of `len` bytes.
    fn replicated(value: u8, len: usize) -> u64 {
        replicate(u64::from(value), len)
    }

    /// The answer of each device for an id or query read at `offset`.
    fn per_device(&self, offset: u64, len: usize) -> u64 {
        let index = offset / BANK_WIDTH;
        let value = match self.state {
            State::Id => match index {
                0 => MANUFACTURER_ID,
                1 => DEVICE_ID,
                _ => 0, // block lock status: unlocked
            },
            _ => usize::try_from(index)
                .ok()
                .and_then(|i| self.cfi.get(i))
                .map_or(0, |&b| u32::from(b)),
        };
        replicate(u64::from(value), len)
    }

    fn reset(&mut self) {
        self.state = State::ReadArray;
    }

    /// A write in read-array (or a read mode) state: a new command.
    fn command(&mut self, offset: u64, cmd: u8) {
        self.state = match cmd {
            CMD_READ_ARRAY | 0x00 | 0xf0 => State::ReadArray,
            CMD_READ_STATUS => State::Status,
            CMD_CLEAR_STATUS => {
                self.status = 0;
                State::ReadArray
            }
            CMD_READ_ID => State::Id,
            CMD_QUERY => State::Query,
            CMD_PROGRAM | CMD_PROGRAM_ALT => State::Program,
            CMD_BLOCK_ERASE => State::Erase { at: offset },
            CMD_LOCK => State::Lock,
            CMD_BUFFERED_PROGRAM => {
                self.status |= STATUS_READY;
                State::BufferCount { at: offset }
            }
            other => {
                tracing::debug!(offset, cmd = other, "flash: unknown command");
                State::ReadArray
            }
        };
    }
}

impl CfiFlash {
    /// A guest write, and the mirror told when it changed the read mode.
    fn write_and_track(&mut self, offset: u64, data: &[u8]) {
        let was_array = self.state == State::ReadArray;
        self.write_value(offset, data);
        let is_array = self.state == State::ReadArray;
        if was_array != is_array {
            if let Some(m) = self.mirror.as_mut() {
                m.array_mode(is_array);
            }
        }
    }

    fn write_value(&mut self, offset: u64, data: &[u8]) {
        let cmd = data.first().copied().unwrap_or(0);
        match self.state {
            State::ReadArray | State::Status | State::Id | State::Query => {
                self.command(offset, cmd)
            }
            State::Program => {
                if self.read_only || !self.program(offset, data) {
                    self.status |= STATUS_PROGRAM_ERROR;
                }
                self.status |= STATUS_READY;
                self.state = State::Status;
            }
            State::Erase { at } => {
                if cmd == CMD_CONFIRM {
                    if self.read_only || !self.erase(at) {
                        self.status |= STATUS_ERASE_ERROR;
                    }
                    self.status |= STATUS_READY;
                    self.state = State::Status;
                } else if cmd == CMD_READ_ARRAY {
                    self.reset();
                } else {
                    self.status |= STATUS_ERASE_ERROR | STATUS_PROGRAM_ERROR;
                    self.reset();
                }
            }
            State::Lock => {
                self.status |= STATUS_READY;
                self.state = if cmd == CMD_CONFIRM || cmd == 0x01 {
                    State::Status
                } else {
                    State::ReadArray
                };
            }
            State::BufferCount { at } => {
                // The count of one device (16 bits): words minus one.
                let count = u32::from(u16::from_le_bytes([cmd, data.get(1).copied().unwrap_or(0)]));
                let words = u64::from(count) + 1;
                if words * BANK_WIDTH > WRITE_BUFFER_SIZE {
                    self.status |= STATUS_PROGRAM_ERROR | STATUS_ERASE_ERROR | STATUS_READY;
                    self.reset();
                    return;
                }
                self.state = State::BufferData {
                    buffer: at & !(WRITE_BUFFER_SIZE - 1),
                    left: count + 1,
                };
            }
            State::BufferData { buffer, left } => {
                let inside = offset & !(WRITE_BUFFER_SIZE - 1) == buffer;
                if !inside || self.read_only || !self.program(offset, data) {
                    self.status |= STATUS_PROGRAM_ERROR;
                }
                self.status |= STATUS_READY;
                self.state = match left {
                    0 | 1 => State::BufferConfirm,
                    n => State::BufferData {
                        buffer,
                        left: n - 1,
                    },
                };
            }
            State::BufferConfirm => {
                if cmd != CMD_CONFIRM {
                    self.status |= STATUS_PROGRAM_ERROR;
                }
                self.status |= STATUS_READY;
                self.state = State::Status;
            }
        }
    }
}

/// `v` (one device's 16-bit answer) in every 16-bit lane a read of `len`
/// bytes covers from the second device on (QEMU answers a 2-byte read with
/// one device's value).
fn replicate(v: u64, len: usize) -> u64 {
    match len {
        0..=3 => v,
        4..=7 => v | v << 16,
        _ => v | v << 16 | v << 32 | v << 48,
    }
}

/// The CFI query table of one x16 device of a bank of `bank_len` bytes
/// (two devices), as QEMU fills it.
fn cfi_table(bank_len: usize) -> [u8; 0x40] {
    let mut t = [0u8; 0x40];
    let device_len = bank_len / 2;
    let blocks_per_device = bank_len / SECTOR_SIZE;
    let sector_per_device = SECTOR_SIZE / 2;
    t[0x10..0x13].copy_from_slice(b"QRY");
    t[0x13] = 0x01; // Intel command set
    t[0x15] = 0x31; // primary extended table at 0x31
    t[0x1b] = 0x45; // Vcc min
    t[0x1c] = 0x55; // Vcc max
    t[0x1f] = 0x07; // typical word program timeout
    t[0x20] = 0x07; // typical buffer write timeout
    t[0x21] = 0x0a; // typical block erase timeout
    t[0x23] = 0x04;
    t[0x24] = 0x04;
    t[0x25] = 0x04;
    t[0x27] = device_len.trailing_zeros() as u8; // device size, 2^n bytes
    t[0x28] = 0x02; // x8/x16 interface
    t[0x2a] = 11; // write buffer: 2^11 bytes per device
    t[0x2c] = 0x01; // one erase block region
    let blocks = blocks_per_device.saturating_sub(1);
    t[0x2d] = blocks as u8;
    t[0x2e] = (blocks >> 8) as u8;
    t[0x2f] = (sector_per_device >> 8) as u8;
    t[0x30] = (sector_per_device >> 16) as u8;
    t[0x31..0x34].copy_from_slice(b"PRI");
    t[0x34] = b'1';
    t[0x35] = b'0';
    t[0x3f] = 0x01;
    t
}

impl BusDevice for CfiFlash {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        let len = data.len().min(8);
        let value = match self.state {
            State::ReadArray => {
                for (i, b) in data.iter_mut().enumerate() {
                    *b = offset.checked_add(i as u64).map_or(0xff, |o| self.byte(o));
                }
                return;
            }
            State::Id | State::Query => self.per_device(offset, len),
            _ => Self::replicated(self.status, len),
        };
        let bytes = value.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = bytes.get(i).copied().unwrap_or(0);
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if data.is_empty() || data.len() > 8 {
            return;
        }
        self.write_and_track(offset, data);
    }
}

#[cfg(test)]
mod tests;
