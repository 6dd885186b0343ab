//! Invalid configurations give an AcpiError naming the field.

use super::super::sdt::Sdt;
use super::super::{
    create_acpi_tables, create_acpi_tables_with, AcpiConfig, AcpiContents, AcpiError, MAX_VCPUS,
};
use super::structure::{cfg, RSDP_ADDR, TABLES_ADDR};

fn err(c: AcpiConfig) -> AcpiError {
    match create_acpi_tables(&c) {
        Ok(_) => panic!("{c:?} was accepted"),
        Err(e) => e,
    }
}

#[test]
fn test_zero_vcpus_rejected() {
    let e = err(cfg(0, 4));
    assert_eq!(e, AcpiError::NoVcpus);
    assert_eq!(e.field(), "num_vcpus");
    assert!(e.to_string().contains("num_vcpus"), "{e}");
}

#[test]
fn test_num_above_max_rejected() {
    let e = err(cfg(5, 4));
    assert!(matches!(e, AcpiError::NumVcpusAboveMax { .. }), "{e:?}");
    assert_eq!(e.field(), "num_vcpus");
    assert!(e.to_string().contains("max_vcpus"), "{e}");
}

#[test]
fn test_max_vcpus_beyond_limit_rejected() {
    assert!(create_acpi_tables(&cfg(1, MAX_VCPUS)).is_ok());
    let e = err(cfg(1, MAX_VCPUS + 1));
    assert!(matches!(e, AcpiError::MaxVcpusTooLarge { .. }), "{e:?}");
    assert_eq!(e.field(), "max_vcpus");
    let e = err(cfg(1, u32::MAX));
    assert_eq!(e.field(), "max_vcpus");
    assert!(e.to_string().contains("max_vcpus"), "{e}");
}

#[test]
fn test_misaligned_rsdp_rejected() {
    let e = err(AcpiConfig {
        rsdp_addr: RSDP_ADDR + 8,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::Misaligned { .. }), "{e:?}");
    assert_eq!(e.field(), "rsdp_addr");
    assert!(e.to_string().contains("rsdp_addr"), "{e}");
}

#[test]
fn test_misaligned_tables_rejected() {
    let e = err(AcpiConfig {
        tables_addr: TABLES_ADDR + 4,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::Misaligned { .. }), "{e:?}");
    assert_eq!(e.field(), "tables_addr");
    assert!(e.to_string().contains("tables_addr"), "{e}");
}

#[test]
fn test_overlap_rejected() {
    // RSDP inside the tables.
    let e = err(AcpiConfig {
        rsdp_addr: TABLES_ADDR + 0x10,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::Overlap { .. }), "{e:?}");
    assert!(e.to_string().contains("rsdp_addr"), "{e}");
    assert!(e.to_string().contains("tables_addr"), "{e}");
    // Tables starting inside the RSDP.
    let e = err(AcpiConfig {
        tables_addr: RSDP_ADDR + 0x20,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::Overlap { .. }), "{e:?}");
    // Same address.
    let e = err(AcpiConfig {
        tables_addr: RSDP_ADDR,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::Overlap { .. }), "{e:?}");
}

#[test]
fn test_adjacent_regions_accepted() {
    // Tables right after the 36-byte RSDP, rounded to 8: no overlap.
    let t = create_acpi_tables(&AcpiConfig {
        tables_addr: RSDP_ADDR + 40,
        ..cfg(1, 1)
    })
    .unwrap();
    assert_eq!(t.tables_range().0, RSDP_ADDR + 40);
    // RSDP right after the tables.
    let t = create_acpi_tables(&cfg(1, 1)).unwrap();
    let end = t.tables_range().1.next_multiple_of(16);
    assert!(create_acpi_tables(&AcpiConfig {
        rsdp_addr: end,
        ..cfg(1, 1)
    })
    .is_ok());
}

#[test]
fn test_address_overflow_rejected() {
    let e = err(AcpiConfig {
        tables_addr: u64::MAX - 7,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::AddressOverflow { .. }), "{e:?}");
    assert_eq!(e.field(), "tables_addr");
    let e = err(AcpiConfig {
        rsdp_addr: u64::MAX - 15,
        ..cfg(1, 1)
    });
    assert!(matches!(e, AcpiError::AddressOverflow { .. }), "{e:?}");
    assert_eq!(e.field(), "rsdp_addr");
}

#[test]
fn test_bad_extra_tables_rejected() {
    let good = Sdt::new(*b"OEM1", 1, *b"HVMTEST ").finish().unwrap();
    let mut bad_sum = good.clone();
    bad_sum[20] ^= 1;
    let mut bad_len = good.clone();
    bad_len.push(0);
    for (bad, why) in [
        (bad_sum, "checksum"),
        (bad_len, "length"),
        (vec![0u8; 10], "shorter"),
    ] {
        let contents = AcpiContents {
            extra_tables: vec![good.clone(), bad],
            ..AcpiContents::default()
        };
        let e = create_acpi_tables_with(&cfg(1, 1), contents).unwrap_err();
        assert!(
            matches!(e, AcpiError::BadExtraTable { index: 1, .. }),
            "{e:?}"
        );
        assert_eq!(e.field(), "extra_tables");
        assert!(e.to_string().contains(why), "{e}");
    }
}
