//! FADT ("FACP"): a hardware-reduced ACPI platform.
//!
//! Facts (ACPI 6.4, 5.2.9, Table 5.9): the table is 276 bytes. With
//! HW_REDUCED_ACPI set, the fixed-hardware fields (SCI_INT, SMI_CMD, PM1x,
//! PM2, PM timer, GPE blocks, ...) are ignored and stay 0; sleep/wake goes
//! through SLEEP_CONTROL_REG / SLEEP_STATUS_REG and reset through RESET_REG.
//! There is no FACS (FIRMWARE_CTRL and X_FIRMWARE_CTRL are 0), which the
//! spec allows for hardware-reduced platforms.
//!
//! Linux reads FADT revision 6 with minor revision >= 3 as "ACPI 6.3+",
//! the condition for honouring the MADT ONLINE_CAPABLE flag.

use super::sdt::{Gas, Sdt};
use super::{AcpiError, AcpiPorts};

/// Total FADT length for revision 6.
pub const FADT_LEN: usize = 276;
/// FADT major revision (Header.Revision).
pub const FADT_REVISION: u8 = 6;
/// FADT minor revision: ACPI 6.4.
pub const FADT_MINOR_REVISION: u8 = 4;

// Field offsets (Table 5.9).
pub const PREFERRED_PM_PROFILE: usize = 45;
pub const IAPC_BOOT_ARCH: usize = 109;
pub const FLAGS: usize = 112;
pub const RESET_REG: usize = 116;
pub const RESET_VALUE: usize = 128;
pub const MINOR_REVISION: usize = 131;
pub const X_DSDT: usize = 140;
pub const SLEEP_CONTROL_REG: usize = 244;
pub const SLEEP_STATUS_REG: usize = 256;

// IAPC_BOOT_ARCH bits (Table 5.10).
/// An 8042 (or its reset port) is present: the VMM emulates the i8042
/// reset line.
pub const BOOT_ARCH_8042: u16 = 1 << 1;
/// There is no VGA hardware to probe.
pub const BOOT_ARCH_VGA_NOT_PRESENT: u16 = 1 << 2;
/// There is no CMOS RTC: the VMM does not emulate one.
pub const BOOT_ARCH_CMOS_RTC_NOT_PRESENT: u16 = 1 << 5;

// Fixed feature flags (Table 5.11).
/// WBINVD works (the spec asks every modern platform to set it).
pub const FLAG_WBINVD: u32 = 1 << 0;
/// Power button is a control-method device or absent (no fixed button).
pub const FLAG_PWR_BUTTON: u32 = 1 << 4;
/// Sleep button is a control-method device or absent (no fixed button).
pub const FLAG_SLP_BUTTON: u32 = 1 << 5;
/// RESET_REG is supported.
pub const FLAG_RESET_REG_SUP: u32 = 1 << 10;
/// Hardware-reduced ACPI: no fixed hardware, no SCI, no FACS needed.
pub const FLAG_HW_REDUCED_ACPI: u32 = 1 << 20;

/// Preferred PM profile 0 ("Unspecified"): a VM is neither a desktop nor a
/// real server; Linux only uses the profile to pick cpufreq defaults, which a
/// guest does not have.
const PM_PROFILE_UNSPECIFIED: u8 = 0;

/// Value the guest writes to RESET_REG to reset the machine.
pub const RESET_VALUE_BYTE: u8 = 1;

/// The FADT of a hardware-reduced platform whose DSDT is at `dsdt_addr`.
pub fn fadt(dsdt_addr: u64, ports: &AcpiPorts) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"FACP", FADT_REVISION, *b"HVMFADT ");
    t.zero_fill_to(FADT_LEN);
    t.put_u8(PREFERRED_PM_PROFILE, PM_PROFILE_UNSPECIFIED);
    t.put_u16(
        IAPC_BOOT_ARCH,
        BOOT_ARCH_8042 | BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_CMOS_RTC_NOT_PRESENT,
    );
    t.put_u32(
        FLAGS,
        FLAG_WBINVD | FLAG_PWR_BUTTON | FLAG_SLP_BUTTON | FLAG_RESET_REG_SUP | FLAG_HW_REDUCED_ACPI,
    );
    t.put_bytes(RESET_REG, &Gas::io_port_u8(ports.reset).to_bytes());
    t.put_u8(RESET_VALUE, RESET_VALUE_BYTE);
    t.put_u8(MINOR_REVISION, FADT_MINOR_REVISION);
    // Only the 64-bit DSDT pointer: the 32-bit DSDT field stays 0 so the two
    // can never disagree.
    t.put_u64(X_DSDT, dsdt_addr);
    t.put_bytes(
        SLEEP_CONTROL_REG,
        &Gas::io_port_u8(ports.sleep_control).to_bytes(),
    );
    t.put_bytes(
        SLEEP_STATUS_REG,
        &Gas::io_port_u8(ports.sleep_status).to_bytes(),
    );
    t.finish()
}

#[cfg(test)]
mod tests {
    use super::super::sdt::byte_sum;
    use super::*;

    fn u32_at(b: &[u8], off: usize) -> u32 {
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    #[test]
    fn test_fadt_is_hw_reduced_with_ports() {
        let b = fadt(0xabcd_0000, &AcpiPorts::default()).unwrap();
        assert_eq!(b.len(), FADT_LEN);
        assert_eq!(byte_sum(&b), 0);
        assert_eq!(&b[0..4], b"FACP");
        assert_eq!(b[8], 6);
        assert_eq!(b[MINOR_REVISION], FADT_MINOR_REVISION);
        let flags = u32_at(&b, FLAGS);
        assert_ne!(flags & FLAG_HW_REDUCED_ACPI, 0);
        assert_ne!(flags & FLAG_RESET_REG_SUP, 0);
        // DSDT (32-bit) is 0, X_DSDT carries the address.
        assert_eq!(u32_at(&b, 40), 0);
        assert_eq!(
            u64::from_le_bytes(b[X_DSDT..X_DSDT + 8].try_into().unwrap()),
            0xabcd_0000
        );
        // Sleep control: System I/O, 8 bits, byte access, port 0x600.
        assert_eq!(
            &b[SLEEP_CONTROL_REG..SLEEP_CONTROL_REG + 12],
            &[1, 8, 0, 1, 0x00, 0x06, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            &b[SLEEP_STATUS_REG..SLEEP_STATUS_REG + 12],
            &[1, 8, 0, 1, 0x01, 0x06, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            &b[RESET_REG..RESET_REG + 12],
            &[1, 8, 0, 1, 0x02, 0x06, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(b[RESET_VALUE], 1);
        let boot_arch = u16::from_le_bytes([b[IAPC_BOOT_ARCH], b[IAPC_BOOT_ARCH + 1]]);
        assert_ne!(boot_arch & BOOT_ARCH_CMOS_RTC_NOT_PRESENT, 0);
        assert_ne!(boot_arch & BOOT_ARCH_VGA_NOT_PRESENT, 0);
    }
}
