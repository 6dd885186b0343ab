//! Assembly: validate the config, lay the tables out at `tables_addr`, fill
//! in the pointers between them.

use super::sdt::{byte_sum, HEADER_LEN, LENGTH_OFFSET};
use super::{
    fadt, madt, root, AcpiConfig, AcpiContents, AcpiError, AcpiTables, MAX_VCPUS, RSDP_ALIGN,
    TABLES_ALIGN,
};

/// Builds RSDP, XSDT, FADT, MADT and DSDT for `cfg`, with the default ports
/// and the base DSDT.
pub fn create_acpi_tables(cfg: &AcpiConfig) -> Result<AcpiTables, AcpiError> {
    create_acpi_tables_with(cfg, AcpiContents::default())
}

/// Like [`create_acpi_tables`], with explicit ports, DSDT devices and extra
/// tables.
pub fn create_acpi_tables_with(
    cfg: &AcpiConfig,
    contents: AcpiContents,
) -> Result<AcpiTables, AcpiError> {
    validate_vcpus(cfg)?;
    check_aligned("rsdp_addr", cfg.rsdp_addr, RSDP_ALIGN)?;
    check_aligned("tables_addr", cfg.tables_addr, TABLES_ALIGN)?;
    for (index, t) in contents.extra_tables.iter().enumerate() {
        check_table(t).map_err(|reason| AcpiError::BadExtraTable { index, reason })?;
    }

    // Layout at tables_addr, each table 8-byte aligned:
    // DSDT, FADT, MADT, extra tables..., XSDT.
    let dsdt = contents.dsdt.build()?;
    let madt = madt::madt(cfg.num_vcpus, cfg.max_vcpus)?;
    let xsdt_entries = 2 + contents.extra_tables.len(); // FADT, MADT, extras
    let mut sizes = vec![dsdt.len(), fadt::FADT_LEN, madt.len()];
    sizes.extend(contents.extra_tables.iter().map(Vec::len));
    sizes.push(root::xsdt_len(xsdt_entries));

    let mut addrs = Vec::with_capacity(sizes.len());
    let mut len = 0u64;
    for size in &sizes {
        addrs.push(len);
        len = align_up(len + *size as u64, TABLES_ALIGN);
    }
    let tables_end = range_end("tables_addr", cfg.tables_addr, len)?;
    let rsdp_end = range_end("rsdp_addr", cfg.rsdp_addr, root::RSDP_LEN as u64)?;
    if cfg.rsdp_addr < tables_end && cfg.tables_addr < rsdp_end {
        return Err(AcpiError::Overlap {
            rsdp_start: cfg.rsdp_addr,
            rsdp_end,
            tables_start: cfg.tables_addr,
            tables_end,
        });
    }
    // Cannot overflow: every address is below tables_end.
    let addrs: Vec<u64> = addrs.iter().map(|o| cfg.tables_addr + o).collect();
    let (dsdt_addr, fadt_addr, madt_addr) = (addrs[0], addrs[1], addrs[2]);
    let extra_addrs = &addrs[3..addrs.len() - 1];
    let xsdt_addr = addrs[addrs.len() - 1];

    let fadt = fadt::fadt(dsdt_addr, &contents.ports)?;
    let mut xsdt_list = vec![fadt_addr, madt_addr];
    xsdt_list.extend_from_slice(extra_addrs);
    let xsdt = root::xsdt(&xsdt_list)?;
    let rsdp = root::rsdp(xsdt_addr).to_vec();

    tracing::debug!(
        num_vcpus = cfg.num_vcpus,
        max_vcpus = cfg.max_vcpus,
        rsdp = format_args!("{:#x}", cfg.rsdp_addr),
        tables = format_args!("{:#x}..{:#x}", cfg.tables_addr, tables_end),
        "ACPI tables built"
    );
    let mut blobs = vec![
        (cfg.rsdp_addr, rsdp),
        (xsdt_addr, xsdt),
        (fadt_addr, fadt),
        (madt_addr, madt),
        (dsdt_addr, dsdt),
    ];
    blobs.extend(extra_addrs.iter().copied().zip(contents.extra_tables));
    Ok(AcpiTables {
        rsdp_addr: cfg.rsdp_addr,
        blobs,
    })
}

fn validate_vcpus(cfg: &AcpiConfig) -> Result<(), AcpiError> {
    if cfg.num_vcpus == 0 {
        return Err(AcpiError::NoVcpus);
    }
    if cfg.max_vcpus > MAX_VCPUS {
        return Err(AcpiError::MaxVcpusTooLarge {
            max_vcpus: cfg.max_vcpus,
            limit: MAX_VCPUS,
        });
    }
    if cfg.num_vcpus > cfg.max_vcpus {
        return Err(AcpiError::NumVcpusAboveMax {
            num_vcpus: cfg.num_vcpus,
            max_vcpus: cfg.max_vcpus,
        });
    }
    Ok(())
}

/// A complete table: a header whose length matches and a zero byte sum.
fn check_table(t: &[u8]) -> Result<(), &'static str> {
    if t.len() < HEADER_LEN {
        return Err("shorter than a table header");
    }
    let mut len = [0u8; 4];
    len.copy_from_slice(&t[LENGTH_OFFSET..LENGTH_OFFSET + 4]);
    if u32::from_le_bytes(len) as usize != t.len() {
        return Err("header length differs from its size");
    }
    if byte_sum(t) != 0 {
        return Err("bad checksum");
    }
    Ok(())
}

fn check_aligned(field: &'static str, addr: u64, align: u64) -> Result<(), AcpiError> {
    if addr % align != 0 {
        return Err(AcpiError::Misaligned { field, addr, align });
    }
    Ok(())
}

/// `addr + len`, or an error naming `field` if it overflows.
fn range_end(field: &'static str, addr: u64, len: u64) -> Result<u64, AcpiError> {
    addr.checked_add(len)
        .ok_or(AcpiError::AddressOverflow { field, addr, len })
}

fn align_up(v: u64, align: u64) -> u64 {
    v.div_ceil(align) * align
}
