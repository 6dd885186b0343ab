//! `etc/table-loader`: the commands that tell the firmware how to place the
//! ACPI blobs it reads from fw_cfg and link them (pure).
//!
//! Facts (QEMU `hw/acpi/bios-linker-loader.c`; EDK2
//! `OvmfPkg/AcpiPlatformDxe/QemuFwCfgAcpi.c` is the reader): each command
//! is 128 bytes, a little-endian u32 command then its arguments, zero
//! padded; file names are 56 bytes, NUL padded.
//! - ALLOCATE (1): file, u32 alignment, u8 zone (1 high memory, 2 the
//!   F-segment): read the file into memory.
//! - ADD_POINTER (2): destination file, source file, u32 offset, u8 size:
//!   the little-endian integer of `size` bytes at `offset` in the
//!   destination holds an offset into the source; add the source's address.
//! - ADD_CHECKSUM (3): file, u32 result offset, u32 start, u32 length: set
//!   the byte at the result offset so that the range sums to 0.
//!
//! EDK2 then installs every ACPI table some pointer points at (except the
//! RSDP, RSDT and XSDT, which it makes itself).

use super::items::FILE_NAME_LEN;
use crate::acpi::arm::{Blob, FirmwareTables};

/// Bytes of one command.
pub const COMMAND_LEN: usize = 128;

pub const COMMAND_ALLOCATE: u32 = 1;
pub const COMMAND_ADD_POINTER: u32 = 2;
pub const COMMAND_ADD_CHECKSUM: u32 = 3;

/// The fw_cfg files QEMU's firmware expects the ACPI tables in.
pub const LOADER_FILE: &str = "etc/table-loader";
pub const TABLES_FILE: &str = "etc/acpi/tables";
pub const RSDP_FILE: &str = "etc/acpi/rsdp";

/// Where ALLOCATE puts a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zone {
    /// Anywhere (in practice below 4 GiB).
    High = 1,
    /// The x86 F-segment (0xe0000..0xfffff): where a BIOS looks for the RSDP.
    FSeg = 2,
}

/// One loader command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Allocate {
        file: &'static str,
        align: u32,
        zone: Zone,
    },
    AddPointer {
        dest: &'static str,
        src: &'static str,
        offset: u32,
        size: u8,
    },
    AddChecksum {
        file: &'static str,
        offset: u32,
        start: u32,
        length: u32,
    },
}

fn push_name(out: &mut Vec<u8>, name: &str) {
    let mut n = [0u8; FILE_NAME_LEN];
    let len = name.len().min(FILE_NAME_LEN - 1);
    n[..len].copy_from_slice(&name.as_bytes()[..len]);
    out.extend_from_slice(&n);
}

/// The bytes of `commands`, [`COMMAND_LEN`] each.
pub fn encode(commands: &[Command]) -> Vec<u8> {
    let mut out = Vec::with_capacity(commands.len() * COMMAND_LEN);
    for c in commands {
        let start = out.len();
        match c {
            Command::Allocate { file, align, zone } => {
                out.extend_from_slice(&COMMAND_ALLOCATE.to_le_bytes());
                push_name(&mut out, file);
                out.extend_from_slice(&align.to_le_bytes());
                out.push(*zone as u8);
            }
            Command::AddPointer {
                dest,
                src,
                offset,
                size,
            } => {
                out.extend_from_slice(&COMMAND_ADD_POINTER.to_le_bytes());
                push_name(&mut out, dest);
                push_name(&mut out, src);
                out.extend_from_slice(&offset.to_le_bytes());
                out.push(*size);
            }
            Command::AddChecksum {
                file,
                offset,
                start: s,
                length,
            } => {
                out.extend_from_slice(&COMMAND_ADD_CHECKSUM.to_le_bytes());
                push_name(&mut out, file);
                out.extend_from_slice(&offset.to_le_bytes());
                out.extend_from_slice(&s.to_le_bytes());
                out.extend_from_slice(&length.to_le_bytes());
            }
        }
        out.resize(start + COMMAND_LEN, 0);
    }
    out
}

/// Alignment of the tables blob (QEMU's: 64).
pub const TABLES_ALIGN: u32 = 64;
/// Alignment of the RSDP.
pub const RSDP_ALIGN: u32 = 16;

fn file_of(blob: Blob) -> &'static str {
    match blob {
        Blob::Rsdp => RSDP_FILE,
        Blob::Tables => TABLES_FILE,
    }
}

/// The loader commands for `tables` (in [`TABLES_FILE`] and [`RSDP_FILE`]):
/// allocate both, patch every pointer, then every checksum.
pub fn acpi_commands(tables: &FirmwareTables) -> Vec<Command> {
    let mut c = vec![
        Command::Allocate {
            file: TABLES_FILE,
            align: TABLES_ALIGN,
            zone: Zone::High,
        },
        Command::Allocate {
            file: RSDP_FILE,
            align: RSDP_ALIGN,
            zone: Zone::FSeg,
        },
    ];
    c.extend(tables.pointers.iter().map(|p| Command::AddPointer {
        dest: file_of(p.blob),
        src: TABLES_FILE,
        offset: p.offset,
        size: p.size,
    }));
    c.extend(tables.checksums.iter().map(|k| Command::AddChecksum {
        file: file_of(k.blob),
        offset: k.offset,
        start: k.start,
        length: k.len,
    }));
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], o: usize) -> u32 {
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    }

    #[test]
    fn test_loader_allocate_layout() {
        let b = encode(&[Command::Allocate {
            file: RSDP_FILE,
            align: 16,
            zone: Zone::FSeg,
        }]);
        assert_eq!(b.len(), COMMAND_LEN);
        assert_eq!(u32_at(&b, 0), COMMAND_ALLOCATE);
        assert_eq!(&b[4..4 + RSDP_FILE.len()], RSDP_FILE.as_bytes());
        assert!(b[4 + RSDP_FILE.len()..60].iter().all(|&c| c == 0));
        assert_eq!(u32_at(&b, 60), 16);
        assert_eq!(b[64], 2);
        assert!(b[65..].iter().all(|&c| c == 0));
    }

    #[test]
    fn test_loader_add_pointer_and_checksum_layout() {
        let b = encode(&[
            Command::AddPointer {
                dest: RSDP_FILE,
                src: TABLES_FILE,
                offset: 24,
                size: 8,
            },
            Command::AddChecksum {
                file: TABLES_FILE,
                offset: 9,
                start: 0x40,
                length: 0x24,
            },
        ]);
        assert_eq!(b.len(), 2 * COMMAND_LEN);
        assert_eq!(u32_at(&b, 0), COMMAND_ADD_POINTER);
        assert_eq!(&b[4..4 + 13], RSDP_FILE.as_bytes());
        assert_eq!(&b[60..60 + 15], TABLES_FILE.as_bytes());
        assert_eq!(u32_at(&b, 116), 24);
        assert_eq!(b[120], 8);
        let c = &b[COMMAND_LEN..];
        assert_eq!(u32_at(c, 0), COMMAND_ADD_CHECKSUM);
        assert_eq!(&c[4..4 + 15], TABLES_FILE.as_bytes());
        assert_eq!(u32_at(c, 60), 9);
        assert_eq!(u32_at(c, 64), 0x40);
        assert_eq!(u32_at(c, 68), 0x24);
    }
}
