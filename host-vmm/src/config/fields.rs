//! The known fields of `[hypervisor.host-vmm]`, their defaults and documentation.

/// Every key the `[hypervisor.host-vmm]` table accepts, in display order.
pub const KNOWN_KEYS: &[&str] = &[
    "kernel",
    "initrd",
    "image",
    "firmware",
    "kernel_params",
    "default_vcpus",
    "default_maxvcpus",
    "default_root_ports",
    "default_bridges",
    "default_memory",
    "memory_slots",
    "default_maxmemory",
];

/// Default guest kernel when no configuration file names one (install location).
pub const DEFAULT_KERNEL: &str = "/usr/share/host-vmm/bzImage";
/// Default guest initramfs when no configuration file names one (install location).
pub const DEFAULT_INITRD: &str = "/usr/share/host-vmm/initramfs.cpio";
/// The UEFI ROM an aarch64 VM boots when `firmware` is not set: Debian's
/// (package qemu-efi-aarch64), as Kata's QEMU configuration names it.
pub const DEFAULT_FIRMWARE_AARCH64: &str = "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd";
pub const DEFAULT_VCPUS: u32 = 1;
/// 0 means "the host's CPU count, capped at KVM's maximum".
pub const DEFAULT_MAXVCPUS: u32 = 0;
pub const DEFAULT_ROOT_PORTS: u32 = 0;
pub const DEFAULT_BRIDGES: u32 = 1;
/// Boot RAM in MiB.
pub const DEFAULT_MEMORY_MIB: u64 = 1024;
pub const DEFAULT_MEMORY_SLOTS: u32 = 10;
/// 0 means "the host's RAM".
pub const DEFAULT_MAXMEMORY_MIB: u64 = 0;

/// Limits that validation enforces (documented in `configuration.toml`).
pub const MAX_BRIDGES: u32 = 5;
pub const MAX_ROOT_PORTS: u32 = 16;
pub const MAX_MEMORY_SLOTS: u32 = 256;
/// The smallest boot RAM our guest kernel and agent are sized for.
pub const MIN_MEMORY_MIB: u64 = 64;
/// Room left for the VMM's own kernel parameters on the 2048-byte x86 command line.
pub const MAX_KERNEL_PARAMS_LEN: usize = 1024;
