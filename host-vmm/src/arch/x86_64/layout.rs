//! x86_64 guest physical memory layout and fixed I/O ports.
//!
//! ```text
//! 0x0000_0000  real-mode IVT / BIOS data area (RAM, unused)
//! 0x0000_0500  GDT                     0x0000_0520  IDT (empty)
//! 0x0000_6000  PVH hvm_start_info      0x0000_6040  PVH module list
//! 0x0000_7000  zero page (boot_params) or the PVH memory map
//! 0x0000_8ff0  boot stack top
//! 0x0000_9000  PML4  0xa000 PDPT  0xb000..0xf000 four PDs (identity map of 4 GiB)
//! 0x0002_0000  kernel command line (up to CMDLINE_MAX_SIZE)
//! 0x0009_fc00  EBDA start: end of low RAM in the e820 map
//! 0x000e_0000  ACPI RSDP               0x000e_1000  ACPI tables (reserved in e820)
//! 0x0010_0000  kernel (HIMEM_START) .. then initrd at the top of low RAM
//! 0xc000_0000  32-bit MMIO gap (3 GiB .. 4 GiB): IOAPIC, LAPIC, TSS, devices
//! 0xd000_0000  virtio-mmio windows     0xd100_0000  GED, memory hot-plug controller
//! 0x1_0000_0000  RAM above the gap, if the guest has more than 3 GiB
//! then         hot-pluggable RAM (DIMM slots) from the first memory block
//!              boundary above 4 GiB and the boot RAM (memory::layout)
//! ```

/// Start of the real-mode area that is usable RAM in the e820 map.
pub const LOW_RAM_START: u64 = 0x0;
/// Start of the extended BIOS data area: low RAM in the e820 map ends here.
pub const EBDA_START: u64 = 0x0009_fc00;
/// First address above the legacy 1 MiB area; the kernel is loaded here.
pub const HIMEM_START: u64 = 0x0010_0000;

/// Global descriptor table used for the first vCPU entry.
pub const BOOT_GDT_START: u64 = 0x500;
/// Number of GDT entries (null, code, data, TSS).
pub const BOOT_GDT_MAX: usize = 4;
/// Empty interrupt descriptor table (the kernel sets its own).
pub const BOOT_IDT_START: u64 = 0x520;

/// PVH `hvm_start_info` structure.
pub const PVH_INFO_START: u64 = 0x6000;
/// PVH module list (the initrd), right after `hvm_start_info`.
pub const PVH_MODLIST_START: u64 = 0x6040;
/// PVH memory map (the zero page is not used with PVH).
pub const PVH_MEMMAP_START: u64 = 0x7000;
/// Linux zero page (`struct boot_params`).
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer of the boot vCPU.
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;

/// Page map level 4 of the boot identity map.
pub const PML4_START: u64 = 0x9000;
/// Page directory pointer table of the boot identity map.
pub const PDPTE_START: u64 = 0xa000;
/// First of [`BOOT_IDENTITY_MAP_GIB`] page directories (2 MiB pages).
pub const PDE_START: u64 = 0xb000;
/// GiB identity-mapped for the 64-bit boot entry (one PD page each).
pub const BOOT_IDENTITY_MAP_GIB: u64 = 4;

/// Kernel command line.
pub const CMDLINE_START: u64 = 0x0002_0000;
/// Largest command line we write (including the NUL).
pub const CMDLINE_MAX_SIZE: usize = 0x1_0000;

/// Guest physical address of the ACPI RSDP (16-byte aligned, in the BIOS
/// area 0xE0000..0xFFFFF where Linux would also scan for it).
pub const ACPI_RSDP_ADDR: u64 = 0x000e_0000;
/// Guest physical address of the first ACPI table after the RSDP.
pub const ACPI_TABLES_ADDR: u64 = 0x000e_1000;
/// Room for the ACPI tables: up to the 1 MiB line.
pub const ACPI_TABLES_MAX_SIZE: u64 = HIMEM_START - ACPI_TABLES_ADDR;

/// Start of the 32-bit MMIO gap: RAM beyond this goes above 4 GiB.
pub const MMIO_GAP_START: u64 = 0xc000_0000;
/// End of the 32-bit MMIO gap (4 GiB), where high RAM starts.
pub const MMIO_GAP_END: u64 = 0x1_0000_0000;
/// Size of the 32-bit MMIO gap.
pub const MMIO_GAP_SIZE: u64 = MMIO_GAP_END - MMIO_GAP_START;
/// Start of the part of the gap free for device MMIO (below the IOAPIC).
pub const MMIO_DEVICES_START: u64 = MMIO_GAP_START;
/// I/O APIC base.
pub const IOAPIC_START: u64 = 0xfec0_0000;
/// Local APIC base.
pub const APIC_START: u64 = 0xfee0_0000;
/// KVM_SET_TSS_ADDR: three pages inside the gap, never RAM.
pub const KVM_TSS_ADDRESS: u64 = 0xfffb_d000;
/// KVM_SET_IDENTITY_MAP_ADDR: one page just below the TSS.
pub const KVM_IDENTITY_MAP_ADDRESS: u64 = 0xfffb_c000;

/// 8250 UART COM1 I/O base and IRQ.
pub const SERIAL_PORT_BASE: u16 = 0x3f8;
/// Number of COM1 registers.
pub const SERIAL_PORT_SIZE: u16 = 0x8;
/// COM1 interrupt line.
pub const SERIAL_IRQ: u32 = 4;
/// virtio-mmio devices: 4 KiB windows from here, one per device.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
/// virtio-mmio windows reserved (and GSIs, from [`VIRTIO_MMIO_GSI_BASE`]).
pub const VIRTIO_MMIO_SLOTS: u32 = 8;
/// GSI of the first virtio-mmio device; the n-th gets `VIRTIO_MMIO_GSI_BASE + n`
/// (5..=12). Edge-triggered (an irqfd pulse).
pub const VIRTIO_MMIO_GSI_BASE: u32 = 5;

/// Generic Event Device (ACPI0013) event register (4 bytes, own 4 KiB page).
pub const GED_MMIO_BASE: u64 = 0xd100_0000;
/// Memory hot-plug controller registers (0x20 bytes, own 4 KiB page).
pub const MEMORY_HOTPLUG_MMIO_BASE: u64 = 0xd100_1000;
/// Present bitmap of the hot-pluggable virtio-mmio slots (4 bytes, own 4 KiB page).
pub const VIRTIO_HOTPLUG_MMIO_BASE: u64 = 0xd100_2000;
/// CPU hot-plug controller registers (0x10 bytes, own 4 KiB page).
pub const CPU_HOTPLUG_MMIO_BASE: u64 = 0xd100_3000;
/// GED interrupt: the first GSI after the virtio-mmio ones (edge-triggered,
/// an irqfd pulse).
pub const GED_GSI: u32 = 13;
/// RAM can be hot-plugged from here up (never into the 32-bit MMIO gap).
pub const HOTPLUG_MIN_START: u64 = MMIO_GAP_END;

const _: () = {
    assert!(GED_GSI >= VIRTIO_MMIO_GSI_BASE + VIRTIO_MMIO_SLOTS && GED_GSI != SERIAL_IRQ);
    assert!(GED_GSI < 24, "the IOAPIC has 24 pins");
    assert!(GED_MMIO_BASE >= VIRTIO_MMIO_BASE + VIRTIO_MMIO_SLOTS as u64 * 0x1000);
    assert!(MEMORY_HOTPLUG_MMIO_BASE + 0x1000 <= IOAPIC_START);
    assert!(VIRTIO_HOTPLUG_MMIO_BASE >= MEMORY_HOTPLUG_MMIO_BASE + 0x1000);
    assert!(VIRTIO_HOTPLUG_MMIO_BASE + 0x1000 <= IOAPIC_START);
    assert!(CPU_HOTPLUG_MMIO_BASE >= VIRTIO_HOTPLUG_MMIO_BASE + 0x1000);
    assert!(CPU_HOTPLUG_MMIO_BASE + 0x1000 <= IOAPIC_START);
};

/// i8042 data port (0x60) through command/status port (0x64).
pub const I8042_PORT_BASE: u16 = 0x60;
/// i8042 register window: 0x60..=0x64.
pub const I8042_PORT_SIZE: u16 = 0x5;

/// Hardware-reduced ACPI sleep control register (8-bit, FADT
/// SLEEP_CONTROL_REG). SLP_EN (bit 5) with SLP_TYP (bits 2..4) == 5 is S5.
pub const ACPI_SLEEP_CONTROL_PORT: u16 = 0x600;
/// Hardware-reduced ACPI sleep status register (8-bit, FADT SLEEP_STATUS_REG).
pub const ACPI_SLEEP_STATUS_PORT: u16 = 0x601;
/// ACPI reset register (8-bit, FADT RESET_REG); writing 1 resets.
pub const ACPI_RESET_PORT: u16 = 0x602;
