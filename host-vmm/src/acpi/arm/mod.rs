//! ACPI for the aarch64 board (pure, tested on every architecture).
//!
//! On aarch64 the UEFI ROM, not the VMM, puts the tables in guest memory:
//! the VMM hands them over through fw_cfg as two blobs, `etc/acpi/rsdp`
//! and `etc/acpi/tables`, plus the commands that link them
//! (`etc/table-loader`). So [`create_tables`] builds *relocatable* tables:
//! each pointer holds the offset of its target inside the tables blob, and
//! [`FirmwareTables::pointers`] and [`FirmwareTables::checksums`] say what
//! the firmware must patch once it has placed the blobs. [`FirmwareTables::link`]
//! does that patching the way the firmware does, for tests and checks.
//!
//! Tables: RSDP -> XSDT -> { FADT -> DSDT, MADT, GTDT, SPCR }. The DSDT is
//! assembled by the board (its devices' AML lives with the devices: the
//! PL011, virtio-mmio, the shared memory hot-plug and GED AML) and passed in.

pub mod tables;

#[cfg(test)]
mod tests;

use super::dsdt::DsdtBuilder;
use super::root;
use super::sdt::{byte_sum, CHECKSUM_OFFSET, HEADER_LEN};
use super::AcpiError;
pub use crate::arch::aarch64::layout::GicVersion;
use crate::arch::aarch64::layout::{self as board, Board};

/// The architected timers' interrupts (GSIV = GIC INTID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerGsiv {
    pub secure_el1: u32,
    pub nonsecure_el1: u32,
    pub virtual_el1: u32,
    pub el2: u32,
}

/// What the aarch64 tables describe.
#[derive(Debug, Clone, Copy)]
pub struct ArmPlatform {
    /// vCPUs present at boot (GICC enabled).
    pub num_vcpus: u32,
    /// vCPUs that can ever exist (one GICC each).
    pub max_vcpus: u32,
    pub gic: GicVersion,
    pub gicd_base: u64,
    pub gicr_base: u64,
    pub gicr_size: u64,
    /// GICv2 CPU interface (only with [`GicVersion::V2`]).
    pub gicc_base: u64,
    /// MPIDR affinity of vCPU `index`.
    pub mpidr: fn(u32) -> u64,
    pub timer_gsiv: TimerGsiv,
    pub uart_base: u64,
    pub uart_gsiv: u32,
}

impl ArmPlatform {
    /// The platform of `board` with `num_vcpus` present and `gic`.
    pub fn from_board(board: &Board, num_vcpus: u32, gic: GicVersion) -> Self {
        ArmPlatform {
            num_vcpus,
            max_vcpus: board.max_vcpus,
            gic,
            gicd_base: board::GICD_BASE,
            gicr_base: board::GICR_BASE,
            gicr_size: board.gicr_size(),
            gicc_base: board::GICC_BASE,
            mpidr: board::mpidr,
            timer_gsiv: TimerGsiv {
                secure_el1: board::ppi_intid(board::TIMER_PPI_SECURE),
                nonsecure_el1: board::ppi_intid(board::TIMER_PPI_NONSECURE),
                virtual_el1: board::ppi_intid(board::TIMER_PPI_VIRTUAL),
                el2: board::ppi_intid(board::TIMER_PPI_HYP),
            },
            uart_base: board::UART_BASE,
            uart_gsiv: board::spi_intid(board::UART_SPI),
        }
    }
}

/// One of the two blobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blob {
    Rsdp,
    Tables,
}

/// A pointer the firmware patches: the little-endian integer of `size`
/// bytes at `offset` in `blob` holds an offset into the tables blob; the
/// tables blob's guest address is added to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointer {
    pub blob: Blob,
    pub offset: u32,
    pub size: u8,
}

/// A checksum the firmware recomputes after patching: the byte at
/// `offset` makes `[start, start + len)` of `blob` sum to 0. The firmware
/// sums the range as it is, that byte included (EDK2's
/// `CalculateCheckSum8`), so the blobs hold 0 there, as QEMU's do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checksum {
    pub blob: Blob,
    pub offset: u32,
    pub start: u32,
    pub len: u32,
}

/// Relocatable tables and how to link them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareTables {
    pub rsdp: Vec<u8>,
    pub tables: Vec<u8>,
    /// In the order the firmware applies them.
    pub pointers: Vec<Pointer>,
    /// Applied after every pointer.
    pub checksums: Vec<Checksum>,
    /// (signature, offset in `tables`) of each table, XSDT last.
    pub layout: Vec<([u8; 4], u32)>,
}

/// Every table starts 8-byte aligned in the tables blob.
const TABLE_ALIGN: usize = 8;
/// Offset of the extended checksum in the RSDP.
const RSDP_EXT_CHECKSUM_OFFSET: u32 = 32;
/// Offset of the legacy checksum in the RSDP.
const RSDP_CHECKSUM_OFFSET: u32 = 8;

/// Build the relocatable tables of `platform` with `dsdt`.
pub fn create_tables(
    platform: &ArmPlatform,
    dsdt: DsdtBuilder,
) -> Result<FirmwareTables, AcpiError> {
    if platform.num_vcpus == 0 {
        return Err(AcpiError::NoVcpus);
    }
    if platform.num_vcpus > platform.max_vcpus {
        return Err(AcpiError::NumVcpusAboveMax {
            num_vcpus: platform.num_vcpus,
            max_vcpus: platform.max_vcpus,
        });
    }
    let mut blob = Vec::new();
    let mut layout = Vec::new();
    let mut pointers = Vec::new();
    let mut place = |blob: &mut Vec<u8>, table: Vec<u8>| -> Result<u32, AcpiError> {
        let at = blob.len().div_ceil(TABLE_ALIGN) * TABLE_ALIGN;
        blob.resize(at, 0);
        blob.extend_from_slice(&table);
        let at = u32::try_from(at).map_err(|_| AcpiError::TableTooLarge {
            signature: String::from_utf8_lossy(&table[0..4]).into_owned(),
            len: blob.len(),
        })?;
        let mut sig = [0u8; 4];
        sig.copy_from_slice(&table[0..4]);
        layout.push((sig, at));
        Ok(at)
    };
    let dsdt_at = place(&mut blob, dsdt.build()?)?;
    let fadt_at = place(&mut blob, tables::fadt(u64::from(dsdt_at))?)?;
    pointers.push(Pointer {
        blob: Blob::Tables,
        offset: fadt_at + super::fadt::X_DSDT as u32,
        size: 8,
    });
    let others = [
        tables::madt(platform)?,
        tables::gtdt(platform)?,
        tables::spcr(platform)?,
    ];
    let mut listed = vec![fadt_at];
    for t in others {
        listed.push(place(&mut blob, t)?);
    }
    let entries: Vec<u64> = listed.iter().map(|&o| u64::from(o)).collect();
    let xsdt_at = place(&mut blob, root::xsdt(&entries)?)?;
    for i in 0..listed.len() {
        pointers.push(Pointer {
            blob: Blob::Tables,
            offset: xsdt_at + (HEADER_LEN + 8 * i) as u32,
            size: 8,
        });
    }
    let rsdp = root::rsdp(u64::from(xsdt_at)).to_vec();
    pointers.push(Pointer {
        blob: Blob::Rsdp,
        offset: root::RSDP_XSDT_OFFSET as u32,
        size: 8,
    });
    let mut checksums: Vec<Checksum> = Vec::new();
    for (i, &(_, at)) in layout.iter().enumerate() {
        let end = layout.get(i + 1).map_or(blob.len(), |&(_, n)| n as usize);
        // The table's own length, not the padding after it.
        let len = table_len(&blob[at as usize..end]);
        checksums.push(Checksum {
            blob: Blob::Tables,
            offset: at + CHECKSUM_OFFSET as u32,
            start: at,
            len,
        });
    }
    checksums.push(Checksum {
        blob: Blob::Rsdp,
        offset: RSDP_CHECKSUM_OFFSET,
        start: 0,
        len: root::RSDP_V1_LEN as u32,
    });
    checksums.push(Checksum {
        blob: Blob::Rsdp,
        offset: RSDP_EXT_CHECKSUM_OFFSET,
        start: 0,
        len: root::RSDP_LEN as u32,
    });
    // The firmware computes each checksum over its range as it finds it:
    // the checksum bytes must be 0 until then.
    let mut rsdp = rsdp;
    for c in &checksums {
        let b = match c.blob {
            Blob::Rsdp => &mut rsdp,
            Blob::Tables => &mut blob,
        };
        b[c.offset as usize] = 0;
    }
    Ok(FirmwareTables {
        rsdp,
        tables: blob,
        pointers,
        checksums,
        layout,
    })
}

/// The Length field of the table at the start of `bytes`.
fn table_len(bytes: &[u8]) -> u32 {
    let mut l = [0u8; 4];
    l.copy_from_slice(&bytes[4..8]);
    u32::from_le_bytes(l)
}

impl FirmwareTables {
    /// The blobs as the firmware leaves them once it placed the tables blob
    /// at `tables_addr`: every pointer patched, every checksum computed as
    /// EDK2 does (over the range as it is, the checksum byte included).
    pub fn link(&self, tables_addr: u64) -> (Vec<u8>, Vec<u8>) {
        let mut rsdp = self.rsdp.clone();
        let mut tables = self.tables.clone();
        for p in &self.pointers {
            let b = match p.blob {
                Blob::Rsdp => &mut rsdp,
                Blob::Tables => &mut tables,
            };
            let at = p.offset as usize;
            let n = usize::from(p.size);
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(&b[at..at + n]);
            let patched = u64::from_le_bytes(v).wrapping_add(tables_addr);
            b[at..at + n].copy_from_slice(&patched.to_le_bytes()[..n]);
        }
        for c in &self.checksums {
            let b = match c.blob {
                Blob::Rsdp => &mut rsdp,
                Blob::Tables => &mut tables,
            };
            let range = &b[c.start as usize..(c.start + c.len) as usize];
            b[c.offset as usize] = 0u8.wrapping_sub(byte_sum(range));
        }
        (rsdp, tables)
    }
}
