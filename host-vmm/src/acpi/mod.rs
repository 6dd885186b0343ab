//! ACPI tables written by the VMM (it is the firmware on x86_64).
//!
//! [`create_acpi_tables`] is pure: it returns the bytes of each table and the
//! guest physical address where it goes; the caller copies them into guest
//! RAM, marks the ranges as reserved/ACPI in the memory map and points the
//! kernel at the RSDP (boot_params.acpi_rsdp_addr, or a 16-byte aligned
//! address in 0xE0000..0xFFFFF where Linux scans for it).
//!
//! Tables: RSDP (ACPI 2.0+) -> XSDT -> { FADT -> DSDT, MADT }. The platform
//! is hardware-reduced ACPI: power-off and reset go through the three I/O
//! ports of [`AcpiPorts`]. The table bytes are plain data, so this module
//! builds and tests on every architecture.
//!
//! [`arm`]: the aarch64 board's tables (FADT with PSCI, MADT with the GIC,
//! GTDT, SPCR), built relocatable for the UEFI ROM, which installs them.

pub mod arm;
mod build;
pub mod cpu_hotplug;
pub mod dsdt;
pub mod fadt;
pub mod madt;
pub mod memory_hotplug;
pub mod registers;
pub mod root;
pub mod sdt;

#[cfg(test)]
pub(crate) mod tests;

/// The AML builder (Device, Name, Method, Package, ResourceTemplate,
/// Memory32Fixed, IO, Interrupt, OpRegion, Field, ...) used for the DSDT.
pub use acpi_tables::aml;
pub use acpi_tables::Aml;
pub use build::{create_acpi_tables, create_acpi_tables_with};
pub use dsdt::DsdtBuilder;

/// Port of the 8-bit hardware-reduced sleep control register
/// (FADT SLEEP_CONTROL_REG). Power-off is a write of
/// [`dsdt::SLEEP_CONTROL_POWER_OFF`] (SLP_TYP 5 << 2 | SLP_EN).
pub const SLEEP_CONTROL_PORT: u16 = 0x600;
/// Port of the 8-bit sleep status register (FADT SLEEP_STATUS_REG).
pub const SLEEP_STATUS_PORT: u16 = 0x601;
/// Port of the 8-bit reset register (FADT RESET_REG); the guest writes
/// [`fadt::RESET_VALUE_BYTE`] (1) to reset.
pub const RESET_PORT: u16 = 0x602;

/// Largest `max_vcpus` accepted: KVM's x86 upper bound for vCPUs
/// (CONFIG_KVM_MAX_NR_VCPUS is at most 4096). The MADT format itself (x2APIC
/// entries, 32-bit IDs) could describe more, but no KVM guest could use them,
/// and the bound keeps the MADT under 64 KiB.
pub const MAX_VCPUS: u32 = 4096;

/// Upper bound of the space the base tables (default [`AcpiContents`]) take
/// at `tables_addr`, reached at [`MAX_VCPUS`]; extra DSDT devices and tables
/// add to it (see [`AcpiTables::tables_range`] for the real size).
pub const BASE_TABLES_MAX_SIZE: u64 = 64 * 1024;

/// Required alignment of `rsdp_addr` (where the RSDP is searched for, it sits
/// on a 16-byte boundary).
pub const RSDP_ALIGN: u64 = 16;
/// Required alignment of `tables_addr`; every table starts 8-byte aligned.
pub const TABLES_ALIGN: u64 = 8;

/// What the tables describe and where they go in guest physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiConfig {
    /// vCPUs present at boot (MADT entries marked Enabled).
    pub num_vcpus: u32,
    /// vCPUs that can ever exist (the rest are marked Online Capable).
    pub max_vcpus: u32,
    /// Where the 36-byte RSDP goes (16-byte aligned).
    pub rsdp_addr: u64,
    /// Where the other tables go, one after the other (8-byte aligned).
    pub tables_addr: u64,
}

/// The I/O ports of the hardware-reduced sleep and reset registers written
/// into the FADT. [`create_acpi_tables`] uses the defaults, which must match
/// the ports the VMM's power device listens on
/// (`arch::x86_64::layout::ACPI_{SLEEP_CONTROL,SLEEP_STATUS,RESET}_PORT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiPorts {
    pub sleep_control: u16,
    pub sleep_status: u16,
    pub reset: u16,
}

impl Default for AcpiPorts {
    fn default() -> Self {
        AcpiPorts {
            sleep_control: SLEEP_CONTROL_PORT,
            sleep_status: SLEEP_STATUS_PORT,
            reset: RESET_PORT,
        }
    }
}

/// What the tables hold besides the vCPUs: the power-management ports, the
/// DSDT's devices and extra tables. `Default` is what
/// [`create_acpi_tables`] uses: default ports, the base DSDT, no extras.
#[derive(Debug)]
pub struct AcpiContents {
    pub ports: AcpiPorts,
    /// Start from [`DsdtBuilder::with_base`] and add devices.
    pub dsdt: DsdtBuilder,
    /// Complete tables (header, length and checksum filled in, e.g. built
    /// with [`sdt::Sdt`]) listed in the XSDT after the FADT and the MADT.
    pub extra_tables: Vec<Vec<u8>>,
}

impl Default for AcpiContents {
    fn default() -> Self {
        AcpiContents {
            ports: AcpiPorts::default(),
            dsdt: DsdtBuilder::with_base(),
            extra_tables: Vec::new(),
        }
    }
}

/// The tables to copy into guest RAM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcpiTables {
    /// Guest physical address of the RSDP (for boot_params.acpi_rsdp_addr).
    pub rsdp_addr: u64,
    /// (guest physical address, bytes) of each table, RSDP first; the
    /// ranges do not overlap.
    pub blobs: Vec<(u64, Vec<u8>)>,
}

impl AcpiTables {
    /// The guest physical range `[start, end)` covering every table except
    /// the RSDP, i.e. what to reserve at `tables_addr`.
    pub fn tables_range(&self) -> (u64, u64) {
        let mut start = u64::MAX;
        let mut end = 0;
        for (addr, bytes) in self.blobs.iter().filter(|(a, _)| *a != self.rsdp_addr) {
            start = start.min(*addr);
            end = end.max(addr + bytes.len() as u64);
        }
        (start, end)
    }
}

/// Why the tables could not be built; each names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcpiError {
    /// num_vcpus is 0: at least one vCPU must be present at boot.
    #[error("num_vcpus is 0: at least one vCPU must be present at boot")]
    NoVcpus,
    /// num_vcpus exceeds max_vcpus.
    #[error("num_vcpus ({num_vcpus}) exceeds max_vcpus ({max_vcpus})")]
    NumVcpusAboveMax { num_vcpus: u32, max_vcpus: u32 },
    /// max_vcpus exceeds what the MADT is built for.
    #[error("max_vcpus ({max_vcpus}) exceeds the supported maximum of {limit}")]
    MaxVcpusTooLarge { max_vcpus: u32, limit: u32 },
    /// An address is not aligned as required.
    #[error("{field} ({addr:#x}) is not {align}-byte aligned")]
    Misaligned {
        field: &'static str,
        addr: u64,
        align: u64,
    },
    /// A range runs past the end of the 64-bit address space.
    #[error("{field} ({addr:#x}) + {len:#x} bytes runs past the end of the address space")]
    AddressOverflow {
        field: &'static str,
        addr: u64,
        len: u64,
    },
    /// The RSDP and the tables overlap.
    #[error(
        "rsdp_addr range [{rsdp_start:#x}, {rsdp_end:#x}) overlaps tables_addr range \
         [{tables_start:#x}, {tables_end:#x})"
    )]
    Overlap {
        rsdp_start: u64,
        rsdp_end: u64,
        tables_start: u64,
        tables_end: u64,
    },
    /// An extra table is not a well-formed ACPI table.
    #[error("extra_tables[{index}] is not a valid ACPI table: {reason}")]
    BadExtraTable { index: usize, reason: &'static str },
    /// A table grew past the 32-bit length field of its header.
    #[error("ACPI table {signature} would be {len} bytes, more than its header can describe")]
    TableTooLarge { signature: String, len: usize },
}

impl AcpiError {
    /// The AcpiConfig field this error is about.
    pub fn field(&self) -> &'static str {
        match self {
            AcpiError::NoVcpus | AcpiError::NumVcpusAboveMax { .. } => "num_vcpus",
            AcpiError::MaxVcpusTooLarge { .. } => "max_vcpus",
            AcpiError::TableTooLarge { signature, .. } => match signature.as_str() {
                "APIC" => "max_vcpus",
                "DSDT" => "dsdt",
                _ => "extra_tables",
            },
            AcpiError::Misaligned { field, .. } | AcpiError::AddressOverflow { field, .. } => field,
            AcpiError::Overlap { .. } => "rsdp_addr",
            AcpiError::BadExtraTable { .. } => "extra_tables",
        }
    }
}
