//! The root pointers: RSDP (ACPI 2.0+ form) and the XSDT.
//!
//! Facts (ACPI 6.4, 5.2.5.3): the RSDP is 36 bytes: Signature "RSD PTR "
//! [8], Checksum u8 (over the first 20 bytes), OEMID[6], Revision u8 (2 for
//! ACPI 2.0+), RsdtAddress u32, Length u32, XsdtAddress u64, Extended
//! Checksum u8 (over all 36 bytes), Reserved[3]. The XSDT (5.2.8) is a
//! table header followed by 64-bit physical addresses of the other tables.

use super::sdt::{byte_sum, checksum, Sdt, OEM_ID};
use super::AcpiError;

/// Length of the ACPI 2.0+ RSDP.
pub const RSDP_LEN: usize = 36;
/// Bytes covered by the legacy (ACPI 1.0) RSDP checksum.
pub const RSDP_V1_LEN: usize = 20;
/// Offset of XsdtAddress inside the RSDP.
pub const RSDP_XSDT_OFFSET: usize = 24;

/// XSDT revision (ACPI 6.4: 1).
const XSDT_REVISION: u8 = 1;

/// The RSDP pointing at the XSDT at `xsdt_addr`; no RSDT (RsdtAddress 0).
pub fn rsdp(xsdt_addr: u64) -> [u8; RSDP_LEN] {
    let mut b = [0u8; RSDP_LEN];
    b[0..8].copy_from_slice(b"RSD PTR ");
    // b[8]: checksum, below
    b[9..15].copy_from_slice(&OEM_ID);
    // revision 2: ACPI 2.0+. b[16..20]: RsdtAddress stays 0, there is no RSDT.
    b[15] = 2;
    b[20..24].copy_from_slice(&(RSDP_LEN as u32).to_le_bytes());
    b[RSDP_XSDT_OFFSET..RSDP_XSDT_OFFSET + 8].copy_from_slice(&xsdt_addr.to_le_bytes());
    // b[32]: extended checksum, below; b[33..36] reserved
    b[8] = checksum(&b[..RSDP_V1_LEN]);
    b[32] = checksum(&b);
    debug_assert_eq!(byte_sum(&b[..RSDP_V1_LEN]), 0);
    b
}

/// Length of an XSDT listing `entries` tables.
pub fn xsdt_len(entries: usize) -> usize {
    super::sdt::HEADER_LEN + 8 * entries
}

/// The XSDT listing the tables at `entries` (guest physical addresses).
pub fn xsdt(entries: &[u64]) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"XSDT", XSDT_REVISION, *b"HVMXSDT ");
    for addr in entries {
        t.push_u64(*addr);
    }
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rsdp_checksums_and_fields() {
        let b = rsdp(0x1234_5678_9abc);
        assert_eq!(&b[0..8], b"RSD PTR ");
        assert_eq!(b[15], 2);
        assert_eq!(byte_sum(&b[..RSDP_V1_LEN]), 0);
        assert_eq!(byte_sum(&b), 0);
        assert_eq!(u32::from_le_bytes(b[20..24].try_into().unwrap()), 36);
        assert_eq!(
            u64::from_le_bytes(b[24..32].try_into().unwrap()),
            0x1234_5678_9abc
        );
    }

    #[test]
    fn test_xsdt_lists_entries() {
        let t = xsdt(&[0x1000, 0x2000]).unwrap();
        assert_eq!(t.len(), xsdt_len(2));
        assert_eq!(byte_sum(&t), 0);
        assert_eq!(u64::from_le_bytes(t[36..44].try_into().unwrap()), 0x1000);
        assert_eq!(u64::from_le_bytes(t[44..52].try_into().unwrap()), 0x2000);
    }
}
