//! The bytes every ACPI table shares: the 36-byte system description table
//! header, the 8-bit checksum, and the Generic Address Structure (GAS).
//!
//! Facts (ACPI 6.4, 5.2.6 and 5.2.3.2): the header is Signature[4],
//! Length u32, Revision u8, Checksum u8, OEMID[6], OEM Table ID[8],
//! OEM Revision u32, Creator ID[4], Creator Revision u32, all little-endian.
//! The whole table, header included, sums to 0 mod 256.

use super::AcpiError;

/// Length of the common table header.
pub const HEADER_LEN: usize = 36;
/// Offset of the Length field in the header.
pub const LENGTH_OFFSET: usize = 4;
/// Offset of the Checksum field in the header.
pub const CHECKSUM_OFFSET: usize = 9;

/// OEMID written in every table and in the RSDP.
pub const OEM_ID: [u8; 6] = *b"HOSTVM";
/// OEM revision written in every table header.
pub const OEM_REVISION: u32 = 1;
/// Creator ID ("ASL compiler" ID): the VMM wrote these tables.
pub const CREATOR_ID: [u8; 4] = *b"HVMM";
/// Creator revision.
pub const CREATOR_REVISION: u32 = 1;

/// Sum of all bytes mod 256 (0 for a table with a correct checksum).
pub fn byte_sum(bytes: &[u8]) -> u8 {
    bytes.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

/// The byte that makes `bytes` (which holds 0 in the checksum position)
/// sum to 0 mod 256.
pub fn checksum(bytes: &[u8]) -> u8 {
    0u8.wrapping_sub(byte_sum(bytes))
}

/// A table under construction: header first, then the body appended or
/// written at absolute offsets. `finish` fills in Length and Checksum.
#[derive(Debug)]
pub struct Sdt {
    signature: [u8; 4],
    bytes: Vec<u8>,
}

impl Sdt {
    /// Starts a table with the common header and an empty body.
    pub fn new(signature: [u8; 4], revision: u8, oem_table_id: [u8; 8]) -> Self {
        let mut bytes = Vec::with_capacity(HEADER_LEN);
        bytes.extend_from_slice(&signature);
        bytes.extend_from_slice(&0u32.to_le_bytes()); // length, set by finish
        bytes.push(revision);
        bytes.push(0); // checksum, set by finish
        bytes.extend_from_slice(&OEM_ID);
        bytes.extend_from_slice(&oem_table_id);
        bytes.extend_from_slice(&OEM_REVISION.to_le_bytes());
        bytes.extend_from_slice(&CREATOR_ID);
        bytes.extend_from_slice(&CREATOR_REVISION.to_le_bytes());
        debug_assert_eq!(bytes.len(), HEADER_LEN);
        Sdt { signature, bytes }
    }

    /// Bytes so far, header included.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Never: the header is always there.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Grows the table with zeroes to `len` bytes (header included).
    pub fn zero_fill_to(&mut self, len: usize) {
        if self.bytes.len() < len {
            self.bytes.resize(len, 0);
        }
    }

    pub fn push_u8(&mut self, v: u8) {
        self.bytes.push(v);
    }

    pub fn push_u16(&mut self, v: u16) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn push_u32(&mut self, v: u32) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn push_u64(&mut self, v: u64) {
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    pub fn push_bytes(&mut self, v: &[u8]) {
        self.bytes.extend_from_slice(v);
    }

    /// Writes `v` at absolute `offset`, growing the table if needed.
    pub fn put_bytes(&mut self, offset: usize, v: &[u8]) {
        self.zero_fill_to(offset + v.len());
        self.bytes[offset..offset + v.len()].copy_from_slice(v);
    }

    pub fn put_u8(&mut self, offset: usize, v: u8) {
        self.put_bytes(offset, &[v]);
    }

    pub fn put_u16(&mut self, offset: usize, v: u16) {
        self.put_bytes(offset, &v.to_le_bytes());
    }

    pub fn put_u32(&mut self, offset: usize, v: u32) {
        self.put_bytes(offset, &v.to_le_bytes());
    }

    pub fn put_u64(&mut self, offset: usize, v: u64) {
        self.put_bytes(offset, &v.to_le_bytes());
    }

    /// Fills in Length and Checksum and returns the table bytes.
    pub fn finish(mut self) -> Result<Vec<u8>, AcpiError> {
        let len = u32::try_from(self.bytes.len()).map_err(|_| AcpiError::TableTooLarge {
            signature: String::from_utf8_lossy(&self.signature).into_owned(),
            len: self.bytes.len(),
        })?;
        self.bytes[LENGTH_OFFSET..LENGTH_OFFSET + 4].copy_from_slice(&len.to_le_bytes());
        self.bytes[CHECKSUM_OFFSET] = 0;
        self.bytes[CHECKSUM_OFFSET] = checksum(&self.bytes);
        Ok(self.bytes)
    }
}

/// Address space IDs of a Generic Address Structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum AddressSpace {
    SystemMemory = 0,
    SystemIo = 1,
}

/// Generic Address Structure (ACPI 6.4, 5.2.3.2): 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gas {
    pub space: AddressSpace,
    pub bit_width: u8,
    pub bit_offset: u8,
    /// 0 undefined, 1 byte, 2 word, 3 dword, 4 qword.
    pub access_size: u8,
    pub address: u64,
}

/// Length of an encoded [`Gas`].
pub const GAS_LEN: usize = 12;

impl Gas {
    /// An 8-bit register at a System I/O port, accessed with byte accesses.
    pub fn io_port_u8(port: u16) -> Self {
        Gas {
            space: AddressSpace::SystemIo,
            bit_width: 8,
            bit_offset: 0,
            access_size: 1,
            address: u64::from(port),
        }
    }

    pub fn to_bytes(self) -> [u8; GAS_LEN] {
        let mut b = [0u8; GAS_LEN];
        b[0] = self.space as u8;
        b[1] = self.bit_width;
        b[2] = self.bit_offset;
        b[3] = self.access_size;
        b[4..12].copy_from_slice(&self.address.to_le_bytes());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_sdt_finish_sets_length_and_checksum() {
        let mut t = Sdt::new(*b"TEST", 3, *b"TESTTBL ");
        t.push_u32(0xdead_beef);
        t.put_u8(50, 7);
        let bytes = t.finish().unwrap();
        assert_eq!(bytes.len(), 51);
        assert_eq!(&bytes[0..4], b"TEST");
        assert_eq!(u32::from_le_bytes(bytes[4..8].try_into().unwrap()), 51);
        assert_eq!(bytes[8], 3);
        assert_eq!(&bytes[10..16], &OEM_ID);
        assert_eq!(&bytes[16..24], b"TESTTBL ");
        assert_eq!(&bytes[28..32], &CREATOR_ID);
        assert_eq!(byte_sum(&bytes), 0);
    }

    #[test]
    fn test_gas_io_port_u8_encoding() {
        let b = Gas::io_port_u8(0x600).to_bytes();
        assert_eq!(b, [1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn test_checksum_makes_sum_zero() {
        let data = [1u8, 2, 3, 250];
        let c = checksum(&data);
        assert_eq!(byte_sum(&data).wrapping_add(c), 0);
    }
}
