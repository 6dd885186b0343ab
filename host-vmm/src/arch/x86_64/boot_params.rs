//! The structures the kernel reads at entry: the Linux zero page
//! (`boot_params`) for the bzImage 64-bit entry, or `hvm_start_info` with its
//! module list and memory map for PVH.

use linux_loader::loader::bootparam::{
    boot_e820_entry, boot_params, setup_header, E820_MAX_ENTRIES_ZEROPAGE,
};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use vm_memory::{Bytes, GuestAddress};

use super::e820::E820Entry;
use super::layout::{PVH_INFO_START, PVH_MEMMAP_START, PVH_MODLIST_START, ZERO_PAGE_START};
use super::loader::LoadedInitrd;
use crate::memory::GuestMemoryMmap;

/// `type_of_loader` for a boot loader without an assigned id.
const LOADER_TYPE_UNDEFINED: u8 = 0xff;
const BOOT_FLAG_MAGIC: u16 = 0xaa55;
const HDRS_MAGIC: u32 = 0x5372_6448;
/// `hvm_start_info.magic`.
const XEN_HVM_START_MAGIC: u32 = 0x336e_c578;
/// `hvm_start_info` version 1 has the memory map fields.
const XEN_HVM_START_VERSION: u32 = 1;
/// Room for the PVH memory map at [`PVH_MEMMAP_START`] (up to the stack page).
const PVH_MEMMAP_MAX_ENTRIES: usize = 0x1000 / std::mem::size_of::<hvm_memmap_table_entry>();

/// Why the boot structures could not be written.
#[derive(Debug, thiserror::Error)]
pub enum BootParamsError {
    #[error("the e820 map has {0} entries, more than the boot structures hold")]
    TooManyE820Entries(usize),
    #[error("an address does not fit the 32-bit boot protocol field {field}: {addr:#x}")]
    AddressTooHigh { field: &'static str, addr: u64 },
    #[error("cannot write {what} to guest memory")]
    Write {
        what: &'static str,
        source: vm_memory::GuestMemoryError,
    },
}

fn u32_field(field: &'static str, addr: u64) -> Result<u32, BootParamsError> {
    u32::try_from(addr).map_err(|_| BootParamsError::AddressTooHigh { field, addr })
}

/// The zero page for the bzImage 64-bit entry.
pub fn linux_boot_params(
    hdr: &setup_header,
    cmdline_addr: u64,
    initrd: Option<LoadedInitrd>,
    e820: &[E820Entry],
    rsdp_addr: u64,
) -> Result<boot_params, BootParamsError> {
    if e820.len() > E820_MAX_ENTRIES_ZEROPAGE {
        return Err(BootParamsError::TooManyE820Entries(e820.len()));
    }
    let mut params = boot_params {
        hdr: *hdr,
        ..Default::default()
    };
    params.hdr.type_of_loader = LOADER_TYPE_UNDEFINED;
    params.hdr.boot_flag = BOOT_FLAG_MAGIC;
    params.hdr.header = HDRS_MAGIC;
    params.hdr.cmd_line_ptr = u32_field("cmd_line_ptr", cmdline_addr)?;
    if let Some(rd) = initrd {
        params.hdr.ramdisk_image = u32_field("ramdisk_image", rd.addr)?;
        params.hdr.ramdisk_size = u32_field("ramdisk_size", rd.size)?;
    }
    params.acpi_rsdp_addr = rsdp_addr;
    for (slot, e) in params.e820_table.iter_mut().zip(e820) {
        *slot = boot_e820_entry {
            addr: e.addr,
            size: e.size,
            r#type: e.kind as u32,
        };
    }
    // Checked above against E820_MAX_ENTRIES_ZEROPAGE (128).
    params.e820_entries = e820.len() as u8;
    Ok(params)
}

/// Write the zero page to [`ZERO_PAGE_START`].
pub fn write_linux_boot_params(
    mem: &GuestMemoryMmap,
    params: &boot_params,
) -> Result<(), BootParamsError> {
    mem.write_obj(*params, GuestAddress(ZERO_PAGE_START))
        .map_err(|source| BootParamsError::Write {
            what: "the zero page",
            source,
        })
}

/// PVH: `hvm_start_info`, the initrd module and the memory map.
pub struct PvhBootInfo {
    pub start_info: hvm_start_info,
    pub module: Option<hvm_modlist_entry>,
    pub memmap: Vec<hvm_memmap_table_entry>,
}

/// Build the PVH boot structures (placed at the `PVH_*` layout addresses).
pub fn pvh_boot_info(
    cmdline_addr: u64,
    initrd: Option<LoadedInitrd>,
    e820: &[E820Entry],
    rsdp_addr: u64,
) -> Result<PvhBootInfo, BootParamsError> {
    if e820.len() > PVH_MEMMAP_MAX_ENTRIES {
        return Err(BootParamsError::TooManyE820Entries(e820.len()));
    }
    let memmap: Vec<_> = e820
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind as u32,
            reserved: 0,
        })
        .collect();
    let module = initrd.map(|rd| hvm_modlist_entry {
        paddr: rd.addr,
        size: rd.size,
        ..Default::default()
    });
    let start_info = hvm_start_info {
        magic: XEN_HVM_START_MAGIC,
        version: XEN_HVM_START_VERSION,
        nr_modules: u32::from(module.is_some()),
        modlist_paddr: if module.is_some() {
            PVH_MODLIST_START
        } else {
            0
        },
        cmdline_paddr: cmdline_addr,
        rsdp_paddr: rsdp_addr,
        memmap_paddr: PVH_MEMMAP_START,
        // Bounded by PVH_MEMMAP_MAX_ENTRIES above.
        memmap_entries: memmap.len() as u32,
        ..Default::default()
    };
    Ok(PvhBootInfo {
        start_info,
        module,
        memmap,
    })
}

/// Write the PVH structures to guest memory.
pub fn write_pvh_boot_info(
    mem: &GuestMemoryMmap,
    info: &PvhBootInfo,
) -> Result<(), BootParamsError> {
    let err = |what| move |source| BootParamsError::Write { what, source };
    mem.write_obj(info.start_info, GuestAddress(PVH_INFO_START))
        .map_err(err("hvm_start_info"))?;
    if let Some(m) = info.module {
        mem.write_obj(m, GuestAddress(PVH_MODLIST_START))
            .map_err(err("the PVH module list"))?;
    }
    let entry_size = std::mem::size_of::<hvm_memmap_table_entry>() as u64;
    for (i, e) in info.memmap.iter().enumerate() {
        mem.write_obj(*e, GuestAddress(PVH_MEMMAP_START + i as u64 * entry_size))
            .map_err(err("the PVH memory map"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::e820::e820_map;
    use super::super::layout::{ACPI_RSDP_ADDR, CMDLINE_START};
    use super::*;

    fn hdr() -> setup_header {
        setup_header {
            version: 0x020f,
            code32_start: 0x10_0000,
            cmdline_size: 2047,
            ..Default::default()
        }
    }

    #[test]
    fn test_linux_boot_params_fields() {
        let e820 = e820_map(6 << 30).unwrap();
        let rd = LoadedInitrd {
            addr: 0x7ff0_0000,
            size: 0x1234,
        };
        let p = linux_boot_params(&hdr(), CMDLINE_START, Some(rd), &e820, ACPI_RSDP_ADDR).unwrap();
        let h = p.hdr;
        assert_eq!({ h.type_of_loader }, 0xff);
        assert_eq!({ h.boot_flag }, 0xaa55);
        assert_eq!({ h.header }, 0x5372_6448);
        assert_eq!({ h.cmd_line_ptr }, CMDLINE_START as u32);
        assert_eq!({ h.ramdisk_image }, 0x7ff0_0000);
        assert_eq!({ h.ramdisk_size }, 0x1234);
        assert_eq!({ h.code32_start }, 0x10_0000);
        assert_eq!({ p.acpi_rsdp_addr }, ACPI_RSDP_ADDR);
        assert_eq!(p.e820_entries as usize, e820.len());
        let last = p.e820_table[e820.len() - 1];
        assert_eq!(
            ({ last.addr }, { last.size }, { last.r#type }),
            (4 << 30, 3 << 30, 1)
        );
        let reserved = p.e820_table[1];
        assert_eq!({ reserved.r#type }, 2);
    }

    #[test]
    fn test_linux_boot_params_without_initrd() {
        let e820 = e820_map(64 << 20).unwrap();
        let p = linux_boot_params(&hdr(), CMDLINE_START, None, &e820, ACPI_RSDP_ADDR).unwrap();
        assert_eq!(({ p.hdr.ramdisk_image }, { p.hdr.ramdisk_size }), (0, 0));
    }

    #[test]
    fn test_linux_boot_params_rejects_bad_inputs() {
        let many = vec![e820_map(64 << 20).unwrap()[0]; 129];
        assert!(matches!(
            linux_boot_params(&hdr(), CMDLINE_START, None, &many, 0),
            Err(BootParamsError::TooManyE820Entries(129))
        ));
        let rd = LoadedInitrd {
            addr: 1 << 32,
            size: 1,
        };
        let e = linux_boot_params(&hdr(), CMDLINE_START, Some(rd), &many[..1], 0).unwrap_err();
        assert!(e.to_string().contains("ramdisk_image"), "{e}");
    }

    #[test]
    fn test_pvh_boot_info() {
        let e820 = e820_map(6 << 30).unwrap();
        let rd = LoadedInitrd {
            addr: 0x1000_0000,
            size: 42,
        };
        let info = pvh_boot_info(CMDLINE_START, Some(rd), &e820, ACPI_RSDP_ADDR).unwrap();
        let s = info.start_info;
        assert_eq!(s.magic, 0x336e_c578);
        assert_eq!(s.version, 1);
        assert_eq!(s.nr_modules, 1);
        assert_eq!(s.modlist_paddr, PVH_MODLIST_START);
        assert_eq!(s.cmdline_paddr, CMDLINE_START);
        assert_eq!(s.rsdp_paddr, ACPI_RSDP_ADDR);
        assert_eq!(s.memmap_paddr, PVH_MEMMAP_START);
        assert_eq!(s.memmap_entries as usize, e820.len());
        assert_eq!(info.module.unwrap().paddr, 0x1000_0000);
        assert_eq!(info.memmap[3].addr, 4 << 30);
        // The structures do not overlap each other.
        assert!(PVH_INFO_START + std::mem::size_of::<hvm_start_info>() as u64 <= PVH_MODLIST_START);
        let no_rd = pvh_boot_info(CMDLINE_START, None, &e820, 0).unwrap();
        assert_eq!(
            (no_rd.start_info.nr_modules, no_rd.start_info.modlist_paddr),
            (0, 0)
        );
    }
}
