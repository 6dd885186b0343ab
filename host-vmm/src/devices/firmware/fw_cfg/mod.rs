//! fw_cfg on MMIO with DMA: how the UEFI ROM gets the kernel, initrd,
//! command line and the VMM's ACPI tables (QEMU's firmware configuration
//! interface, as on its `virt` board).
//!
//! Registers (facts from QEMU `docs/specs/fw_cfg.rst`, MMIO flavour):
//! - data at +0 (1..8 bytes): the selected item's bytes in stream order;
//!   past the end it reads 0; writes are ignored;
//! - selector at +8 (2 bytes, big-endian): selects an item and rewinds it;
//! - DMA address at +0x10 (8 bytes, big-endian): writing all 8 bytes, or
//!   the low 4 at +0x14 after the high 4 at +0x10, starts a transfer
//!   described by a `FWCfgDmaAccess` at that guest address: big-endian u32
//!   control (bit 0 error, 1 read, 2 skip, 3 select with the key in bits
//!   16..31, 4 write), u32 length, u64 address. When done the control word
//!   is written back: 0, or the error bit. Reading the register gives the
//!   signature "QEMU CFG".
//!
//! The guest is untrusted: the descriptor and every byte moved must lie in
//! guest RAM (otherwise the transfer stops with the error bit), lengths are
//! the guest's u32 but bounded by its RAM, no write is accepted (no item is
//! writable), and nothing the guest does makes the device grow.

pub mod items;
pub mod loader;

use vm_memory::{Bytes, GuestAddress, GuestAddressSpace};

use crate::devices::BusDevice;
use crate::memory::GuestMemoryAtomic;
pub use items::{ItemError, Items, Table};

/// Register offsets.
pub const REG_DATA: u64 = 0x00;
pub const REG_SELECTOR: u64 = 0x08;
pub const REG_DMA: u64 = 0x10;
/// Bytes of the register window.
pub const WINDOW_SIZE: u64 = 0x18;

/// "QEMU CFG", what a read of the DMA register returns (big-endian).
pub const DMA_SIGNATURE: u64 = 0x5145_4d55_2043_4647;

pub const DMA_CTL_ERROR: u32 = 1 << 0;
pub const DMA_CTL_READ: u32 = 1 << 1;
pub const DMA_CTL_SKIP: u32 = 1 << 2;
pub const DMA_CTL_SELECT: u32 = 1 << 3;
pub const DMA_CTL_WRITE: u32 = 1 << 4;
/// Bytes of a `FWCfgDmaAccess`.
pub const DMA_ACCESS_LEN: usize = 16;
/// Zeroes written per step when a read runs past the item's end.
const ZERO_CHUNK: usize = 64 * 1024;

/// The device: an item table and the guest's read position.
pub struct FwCfg {
    table: Table,
    mem: GuestMemoryAtomic,
    selector: u16,
    /// Read position in the selected item; at most its length.
    offset: usize,
    /// The high half of the DMA address, until the low half arrives.
    dma_high: u32,
}

impl FwCfg {
    pub fn new(table: Table, mem: GuestMemoryAtomic) -> Self {
        FwCfg {
            table,
            mem,
            selector: 0,
            offset: 0,
            dma_high: 0,
        }
    }

    /// The selector and the read position in its item (fuzz invariants).
    pub fn position(&self) -> (u16, usize) {
        (self.selector, self.offset)
    }

    /// Bytes of the item `selector` selects.
    pub fn item_len(&self, selector: u16) -> usize {
        self.table.get(selector).len()
    }

    fn select(&mut self, selector: u16) {
        self.selector = selector;
        self.offset = 0;
    }

    /// The selected item's bytes from the read position, advancing it.
    fn read_data(&mut self, out: &mut [u8]) {
        let item = self.table.get(self.selector);
        let start = self.offset.min(item.len());
        let n = out.len().min(item.len() - start);
        out[..n].copy_from_slice(&item[start..start + n]);
        out[n..].fill(0);
        self.offset = start + n;
    }

    /// Run the transfer described at guest address `addr`.
    fn dma(&mut self, addr: u64) {
        let mem = self.mem.memory();
        let mut desc = [0u8; DMA_ACCESS_LEN];
        if mem.read_slice(&mut desc, GuestAddress(addr)).is_err() {
            tracing::debug!(addr, "fw_cfg: DMA descriptor outside guest RAM");
            return;
        }
        let control = u32::from_be_bytes([desc[0], desc[1], desc[2], desc[3]]);
        let length = u32::from_be_bytes([desc[4], desc[5], desc[6], desc[7]]);
        let mut target = [0u8; 8];
        target.copy_from_slice(&desc[8..16]);
        let target = u64::from_be_bytes(target);
        if control & DMA_CTL_SELECT != 0 {
            self.select((control >> 16) as u16);
        }
        let ok = if control & DMA_CTL_READ != 0 {
            self.dma_read(&mem, target, length)
        } else if control & DMA_CTL_WRITE != 0 {
            false // no item is writable
        } else if control & DMA_CTL_SKIP != 0 {
            let len = self.table.get(self.selector).len();
            self.offset = self.offset.saturating_add(length as usize).min(len);
            true
        } else {
            true
        };
        let result: u32 = if ok { 0 } else { DMA_CTL_ERROR };
        // The guest polls this word; if it moved out of RAM there is no one to tell.
        let _ = mem.write_slice(&result.to_be_bytes(), GuestAddress(addr));
    }

    /// Copy `length` bytes of the item to guest `target`, zeroes past its end.
    fn dma_read(&mut self, mem: &crate::memory::GuestMemoryMmap, target: u64, length: u32) -> bool {
        let item = self.table.get(self.selector);
        let start = self.offset.min(item.len());
        let want = length as usize;
        let n = want.min(item.len() - start);
        if n > 0
            && mem
                .write_slice(&item[start..start + n], GuestAddress(target))
                .is_err()
        {
            return false;
        }
        self.offset = start + n;
        // The rest is zeroes (QEMU's behaviour), within guest RAM.
        let zeroes = [0u8; ZERO_CHUNK];
        let mut done = n;
        while done < want {
            let step = (want - done).min(ZERO_CHUNK);
            let Some(at) = target.checked_add(done as u64) else {
                return false;
            };
            if mem.write_slice(&zeroes[..step], GuestAddress(at)).is_err() {
                return false;
            }
            done += step;
        }
        true
    }
}

impl BusDevice for FwCfg {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        match offset {
            REG_DATA..=7 if offset as usize + data.len() <= 8 => self.read_data(data),
            REG_DMA if data.len() == 8 => data.copy_from_slice(&DMA_SIGNATURE.to_be_bytes()),
            REG_DMA if data.len() == 4 => {
                data.copy_from_slice(&DMA_SIGNATURE.to_be_bytes()[..4]);
            }
            0x14 if data.len() == 4 => data.copy_from_slice(&DMA_SIGNATURE.to_be_bytes()[4..]),
            _ => data.fill(0),
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        match (offset, data.len()) {
            (REG_SELECTOR, 2) => self.select(u16::from_be_bytes([data[0], data[1]])),
            (REG_DMA, 8) => {
                let mut b = [0u8; 8];
                b.copy_from_slice(data);
                self.dma(u64::from_be_bytes(b));
            }
            (REG_DMA, 4) => {
                self.dma_high = u32::from_be_bytes([data[0], data[1], data[2], data[3]])
            }
            (0x14, 4) => {
                let low = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let addr = u64::from(self.dma_high) << 32 | u64::from(low);
                self.dma_high = 0;
                self.dma(addr);
            }
            _ => tracing::trace!(offset, len = data.len(), "fw_cfg: ignored write"),
        }
    }
}

#[cfg(test)]
mod tests;
