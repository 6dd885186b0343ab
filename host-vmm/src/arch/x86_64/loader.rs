//! Loading the guest kernel (bzImage, or an ELF vmlinux with a PVH entry,
//! chosen by the file's contents) and the initrd into guest RAM.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use linux_loader::loader::bootparam::{setup_header, XLF_KERNEL_64};
use linux_loader::loader::elf::Error as ElfError;
use linux_loader::loader::{BzImage, Elf, KernelLoader, PvhBootCapability};
use vm_memory::{Bytes, GuestAddress};

use super::layout::HIMEM_START;
use crate::memory::GuestMemoryMmap;

/// "HdrS", the bzImage setup header magic at file offset 0x202.
const BZIMAGE_MAGIC: u32 = 0x5372_6448;
const BZIMAGE_MAGIC_OFFSET: u64 = 0x202;
const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// Oldest boot protocol we accept: 2.12 has `xloadflags` (64-bit entry).
const MIN_BOOT_PROTOCOL: u16 = 0x020c;
/// The 64-bit entry point is 0x200 bytes into the protected-mode kernel.
const BZIMAGE_64BIT_ENTRY_OFFSET: u64 = 0x200;
/// initrd_addr_max of kernels that do not state it (boot protocol < 2.03).
const DEFAULT_INITRD_ADDR_MAX: u64 = 0x37ff_ffff;
const PAGE_SIZE: u64 = 4096;

/// How the vCPU enters the kernel.
#[derive(Debug, Clone, Copy)]
pub enum BootProtocol {
    /// bzImage 64-bit entry: long mode, zero page in RSI.
    Linux64(setup_header),
    /// PVH: 32-bit protected mode, `hvm_start_info` in EBX.
    Pvh,
}

/// The loaded kernel.
#[derive(Debug, Clone, Copy)]
pub struct LoadedKernel {
    pub entry: GuestAddress,
    pub protocol: BootProtocol,
    /// First address above everything the kernel uses while it boots
    /// (decompression buffer included).
    pub end: u64,
}

/// The loaded initrd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedInitrd {
    pub addr: u64,
    pub size: u64,
}

/// Why the kernel or initrd could not be loaded. Each names the file, or
/// `default_memory` when RAM is too small.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("kernel {}: cannot open", path.display())]
    OpenKernel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kernel {}: not a bzImage or an ELF vmlinux", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("kernel {}: cannot load the bzImage", path.display())]
    BzImage {
        path: PathBuf,
        source: linux_loader::loader::Error,
    },
    #[error("kernel {}: cannot load the ELF vmlinux", path.display())]
    Elf {
        path: PathBuf,
        source: linux_loader::loader::Error,
    },
    #[error("default_memory: {mem_mib} MiB cannot hold the segments of ELF kernel {}", path.display())]
    ElfTooBig { path: PathBuf, mem_mib: u64 },
    #[error("kernel {}: the ELF vmlinux has no PVH entry point (XEN_ELFNOTE_PHYS32_ENTRY)", path.display())]
    NoPvhEntry { path: PathBuf },
    #[error("kernel {}: bzImage boot protocol {version:#06x} has no 64-bit entry (need >= 2.12 with XLF_KERNEL_64)", path.display())]
    No64BitEntry { path: PathBuf, version: u16 },
    #[error("default_memory: {mem_mib} MiB is too small for kernel {}: it needs RAM up to {needed:#x}, low RAM ends at {low_end:#x}", path.display())]
    KernelTooBig {
        path: PathBuf,
        mem_mib: u64,
        needed: u64,
        low_end: u64,
    },
    #[error("initrd {}: cannot open", path.display())]
    OpenInitrd {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("default_memory: {mem_mib} MiB is too small for initrd {} ({size} bytes) above the kernel (which ends at {kernel_end:#x})", path.display())]
    InitrdTooBig {
        path: PathBuf,
        mem_mib: u64,
        size: u64,
        kernel_end: u64,
    },
    #[error("initrd {}: cannot read it into guest memory", path.display())]
    ReadInitrd {
        path: PathBuf,
        source: vm_memory::GuestMemoryError,
    },
}

/// Kernel file formats we recognise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFormat {
    BzImage,
    Elf,
}

/// Recognise the kernel by its magic numbers.
pub fn detect_format<R: Read + Seek>(f: &mut R) -> Option<KernelFormat> {
    let mut magic = [0u8; 4];
    f.seek(SeekFrom::Start(0)).ok()?;
    if f.read_exact(&mut magic).is_ok() && magic == ELF_MAGIC {
        return Some(KernelFormat::Elf);
    }
    f.seek(SeekFrom::Start(BZIMAGE_MAGIC_OFFSET)).ok()?;
    if f.read_exact(&mut magic).is_ok() && u32::from_le_bytes(magic) == BZIMAGE_MAGIC {
        return Some(KernelFormat::BzImage);
    }
    None
}

/// Load the kernel at `path` into `mem`, whose RAM below the MMIO gap ends
/// at `low_end`. `mem_mib` is the configured size, for error messages.
pub fn load_kernel(
    mem: &GuestMemoryMmap,
    path: &Path,
    low_end: u64,
    mem_mib: u64,
) -> Result<LoadedKernel, LoadError> {
    let mut f = File::open(path).map_err(|source| LoadError::OpenKernel {
        path: path.to_path_buf(),
        source,
    })?;
    let too_big = |needed| LoadError::KernelTooBig {
        path: path.to_path_buf(),
        mem_mib,
        needed,
        low_end,
    };
    match detect_format(&mut f) {
        Some(KernelFormat::BzImage) => {
            let file_len = f.metadata().map(|m| m.len()).unwrap_or(0);
            if HIMEM_START.saturating_add(file_len) > low_end {
                return Err(too_big(HIMEM_START.saturating_add(file_len)));
            }
            let r = BzImage::load(mem, None, &mut f, Some(GuestAddress(HIMEM_START))).map_err(
                |source| LoadError::BzImage {
                    path: path.to_path_buf(),
                    source,
                },
            )?;
            let hdr = r.setup_header.ok_or_else(|| LoadError::UnknownFormat {
                path: path.to_path_buf(),
            })?;
            let (version, xloadflags) = (hdr.version, hdr.xloadflags);
            if version < MIN_BOOT_PROTOCOL || xloadflags & XLF_KERNEL_64 == 0 {
                return Err(LoadError::No64BitEntry {
                    path: path.to_path_buf(),
                    version,
                });
            }
            let end = bzimage_end(&hdr, r.kernel_load.0);
            if end > low_end {
                return Err(too_big(end));
            }
            tracing::debug!(
                load = format_args!("{:#x}", r.kernel_load.0),
                end = format_args!("{end:#x}"),
                "loaded bzImage (boot protocol {version:#06x})"
            );
            Ok(LoadedKernel {
                entry: GuestAddress(r.kernel_load.0 + BZIMAGE_64BIT_ENTRY_OFFSET),
                protocol: BootProtocol::Linux64(hdr),
                end,
            })
        }
        Some(KernelFormat::Elf) => {
            let r = Elf::load(mem, None, &mut f, Some(GuestAddress(HIMEM_START))).map_err(
                |source| match source {
                    linux_loader::loader::Error::Elf(ElfError::ReadKernelImage) => {
                        LoadError::ElfTooBig {
                            path: path.to_path_buf(),
                            mem_mib,
                        }
                    }
                    source => LoadError::Elf {
                        path: path.to_path_buf(),
                        source,
                    },
                },
            )?;
            let PvhBootCapability::PvhEntryPresent(entry) = r.pvh_boot_cap else {
                return Err(LoadError::NoPvhEntry {
                    path: path.to_path_buf(),
                });
            };
            if r.kernel_end > low_end {
                return Err(too_big(r.kernel_end));
            }
            tracing::debug!(
                entry = format_args!("{:#x}", entry.0),
                end = format_args!("{:#x}", r.kernel_end),
                "loaded PVH vmlinux"
            );
            Ok(LoadedKernel {
                entry,
                protocol: BootProtocol::Pvh,
                end: r.kernel_end,
            })
        }
        None => Err(LoadError::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Where a bzImage's boot ends: it decompresses to the larger of its load
/// address and its preferred address, and needs `init_size` bytes there.
pub fn bzimage_end(hdr: &setup_header, load: u64) -> u64 {
    let (pref, init_size) = (hdr.pref_address, hdr.init_size);
    load.max(pref).saturating_add(u64::from(init_size))
}

/// Highest address (exclusive) the initrd may end at.
pub fn initrd_limit(kernel: &LoadedKernel, low_end: u64) -> u64 {
    match kernel.protocol {
        BootProtocol::Linux64(hdr) => {
            let max = match hdr.initrd_addr_max {
                0 => DEFAULT_INITRD_ADDR_MAX,
                m => u64::from(m),
            };
            low_end.min(max.saturating_add(1))
        }
        BootProtocol::Pvh => low_end,
    }
}

/// The page-aligned address to put `size` bytes of initrd: as high as
/// `limit` allows, but not below `kernel_end`.
pub fn place_initrd(size: u64, kernel_end: u64, limit: u64) -> Option<u64> {
    let addr = limit.checked_sub(size)? / PAGE_SIZE * PAGE_SIZE;
    let floor = kernel_end.checked_next_multiple_of(PAGE_SIZE)?;
    (addr >= floor).then_some(addr)
}

/// Load the initrd at `path` at the top of low RAM.
pub fn load_initrd(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel: &LoadedKernel,
    low_end: u64,
    mem_mib: u64,
) -> Result<LoadedInitrd, LoadError> {
    let open_err = |source| LoadError::OpenInitrd {
        path: path.to_path_buf(),
        source,
    };
    let mut f = File::open(path).map_err(open_err)?;
    let size = f.metadata().map_err(open_err)?.len();
    let limit = initrd_limit(kernel, low_end);
    let addr = place_initrd(size, kernel.end, limit).ok_or_else(|| LoadError::InitrdTooBig {
        path: path.to_path_buf(),
        mem_mib,
        size,
        kernel_end: kernel.end,
    })?;
    let len = usize::try_from(size).map_err(|_| LoadError::InitrdTooBig {
        path: path.to_path_buf(),
        mem_mib,
        size,
        kernel_end: kernel.end,
    })?;
    mem.read_exact_volatile_from(GuestAddress(addr), &mut f, len)
        .map_err(|source| LoadError::ReadInitrd {
            path: path.to_path_buf(),
            source,
        })?;
    tracing::debug!(addr = format_args!("{addr:#x}"), size, "loaded initrd");
    Ok(LoadedInitrd { addr, size })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn test_detect_format() {
        let mut elf = Cursor::new(b"\x7fELF\x02\x01".to_vec());
        assert_eq!(detect_format(&mut elf), Some(KernelFormat::Elf));
        let mut bz = vec![0u8; 0x300];
        bz[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(
            detect_format(&mut Cursor::new(bz)),
            Some(KernelFormat::BzImage)
        );
        assert_eq!(detect_format(&mut Cursor::new(vec![0u8; 10])), None);
        assert_eq!(detect_format(&mut Cursor::new(vec![0xffu8; 4096])), None);
    }

    const MIB: u64 = 1 << 20;

    fn mem(mib: u64) -> GuestMemoryMmap {
        crate::memory::create_guest_memory(&[(GuestAddress(0), mib * MIB)], mib).unwrap()
    }

    fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("host-vmm-loader-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn test_load_kernel_garbage_missing_and_too_big_name_the_problem() {
        let m = mem(64);
        let garbage = temp_file("garbage", &[0x5a; 8192]);
        let e = load_kernel(&m, &garbage, 64 * MIB, 64).unwrap_err();
        assert!(matches!(e, LoadError::UnknownFormat { .. }), "{e}");
        assert!(e.to_string().contains(&*garbage.to_string_lossy()), "{e}");
        std::fs::remove_file(&garbage).unwrap();

        let missing = Path::new("/nonexistent/bzImage");
        let e = load_kernel(&m, missing, 64 * MIB, 64).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("kernel /nonexistent/bzImage: cannot open"),
            "{e}"
        );

        // A kernel that needs 128 MiB to decompress, in 64 MiB.
        let big = temp_file(
            "big",
            &crate::arch::x86_64::test_utils::stub_bzimage_with(&[], 128 << 20),
        );
        let e = load_kernel(&m, &big, 64 * MIB, 64).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("default_memory: 64 MiB is too small for kernel"),
            "{e}"
        );
        std::fs::remove_file(&big).unwrap();

        // A truncated bzImage header.
        let mut trunc = crate::arch::x86_64::test_utils::stub_bzimage(&[]);
        trunc.truncate(0x210);
        let trunc_path = temp_file("trunc", &trunc);
        let e = load_kernel(&m, &trunc_path, 64 * MIB, 64).unwrap_err();
        assert!(e.to_string().contains("cannot load the bzImage"), "{e}");
        std::fs::remove_file(&trunc_path).unwrap();
    }

    #[test]
    fn test_load_kernel_and_initrd() {
        let m = mem(64);
        let k = temp_file(
            "ok",
            &crate::arch::x86_64::test_utils::stub_bzimage(&[0x90]),
        );
        let kernel = load_kernel(&m, &k, 64 * MIB, 64).unwrap();
        std::fs::remove_file(&k).unwrap();
        assert_eq!(kernel.entry, GuestAddress(HIMEM_START + 0x200));
        assert!(matches!(kernel.protocol, BootProtocol::Linux64(_)));
        let rd = temp_file("rd", &[7u8; 5000]);
        let loaded = load_initrd(&m, &rd, &kernel, 64 * MIB, 64).unwrap();
        assert_eq!(
            loaded,
            LoadedInitrd {
                addr: 64 * MIB - 0x2000,
                size: 5000
            }
        );
        let mut back = [0u8; 5000];
        m.read_slice(&mut back, GuestAddress(loaded.addr)).unwrap();
        assert!(back.iter().all(|b| *b == 7));
        // Too big to fit above the kernel.
        let e = load_initrd(&m, &rd, &kernel, 2 * MIB + 4096, 64).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("default_memory: 64 MiB is too small for initrd"),
            "{e}"
        );
        std::fs::remove_file(&rd).unwrap();
        let e = load_initrd(&m, Path::new("/nonexistent/rd"), &kernel, 64 * MIB, 64).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("initrd /nonexistent/rd: cannot open"),
            "{e}"
        );
    }

    #[test]
    fn test_place_initrd() {
        // Top of the limit, page aligned.
        assert_eq!(
            place_initrd(0x1800, 0x200_0000, 0x800_0000),
            Some(0x7ff_e000)
        );
        // Exactly fits above the kernel.
        assert_eq!(place_initrd(0x1000, 0x1000, 0x2000), Some(0x1000));
        // Does not fit: would overlap the kernel, or larger than the limit.
        assert_eq!(place_initrd(0x2000, 0x1000, 0x2000), None);
        assert_eq!(place_initrd(u64::MAX, 0, 0x2000), None);
    }

    #[test]
    fn test_bzimage_end_uses_pref_address_and_init_size() {
        let hdr = setup_header {
            pref_address: 0x100_0000,
            init_size: 0x80_0000,
            ..Default::default()
        };
        assert_eq!(bzimage_end(&hdr, 0x10_0000), 0x180_0000);
        assert_eq!(bzimage_end(&hdr, 0x200_0000), 0x280_0000);
    }

    #[test]
    fn test_initrd_limit_respects_initrd_addr_max() {
        let hdr = setup_header {
            initrd_addr_max: 0x7fff_ffff,
            ..Default::default()
        };
        let k = LoadedKernel {
            entry: GuestAddress(0),
            protocol: BootProtocol::Linux64(hdr),
            end: 0,
        };
        assert_eq!(initrd_limit(&k, 0xc000_0000), 0x8000_0000);
        assert_eq!(initrd_limit(&k, 0x1000_0000), 0x1000_0000);
        let pvh = LoadedKernel {
            protocol: BootProtocol::Pvh,
            ..k
        };
        assert_eq!(initrd_limit(&pvh, 0xc000_0000), 0xc000_0000);
    }
}
