//! DSDT: the AML namespace the guest's ACPI interpreter loads.
//!
//! AML is produced with the `acpi_tables` crate's `aml` module (re-exported
//! as `crate::acpi::aml`): Device, Name, Method, Package, ResourceTemplate
//! with Memory32Fixed/IO/Interrupt, OpRegion/Field, If/Return, ... Each
//! device of the VMM contributes an object implementing [`Aml`], and
//! [`DsdtBuilder`] collects them:
//! - [`DsdtBuilder::add_root`] for objects at the namespace root (like
//!   `\_S5_`),
//! - [`DsdtBuilder::add_system_bus`] for devices that live under `\_SB_`
//!   (GED ACPI0013, virtio-mmio LNRO0005, a memory-hotplug controller,
//!   PNP0C80 memory devices, ...).
//!
//! The base namespace is `\_S5_` (soft-off, SLP_TYP 5: the guest writes
//! `SLP_TYP << 2 | SLP_EN` = 0x34 to the sleep control register) and the
//! `\_SB_` scope.

use acpi_tables::aml::{Name, Package, Path, Scope};
use acpi_tables::Aml;

use super::sdt::Sdt;
use super::AcpiError;

/// DSDT revision 2: AML integers are 64 bits wide.
pub const DSDT_REVISION: u8 = 2;

/// SLP_TYP of the S5 (soft-off) state in `\_S5_`.
pub const S5_SLP_TYP: u8 = 5;
/// SLP_EN bit of the hardware-reduced sleep control register.
pub const SLEEP_CONTROL_SLP_EN: u8 = 1 << 5;
/// Shift of SLP_TYP inside the hardware-reduced sleep control register.
pub const SLEEP_CONTROL_SLP_TYP_SHIFT: u8 = 2;
/// Mask of SLP_TYP inside the hardware-reduced sleep control register.
pub const SLEEP_CONTROL_SLP_TYP_MASK: u8 = 0b111 << SLEEP_CONTROL_SLP_TYP_SHIFT;
/// Byte the guest writes to the sleep control register to power off.
pub const SLEEP_CONTROL_POWER_OFF: u8 =
    (S5_SLP_TYP << SLEEP_CONTROL_SLP_TYP_SHIFT) | SLEEP_CONTROL_SLP_EN;

/// Collects AML objects and assembles the DSDT.
#[derive(Debug, Default)]
pub struct DsdtBuilder {
    root: Vec<u8>,
    system_bus: Vec<u8>,
}

impl DsdtBuilder {
    /// An empty namespace (no `\_S5_`); see [`DsdtBuilder::with_base`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The base namespace every guest gets: `\_S5_`, and `\_SB_`.
    pub fn with_base() -> Self {
        let mut b = Self::new();
        b.add_root(&Name::new(
            Path::new("_S5_"),
            &Package::new(vec![&S5_SLP_TYP, &0u8, &0u8, &0u8]),
        ));
        b
    }

    /// Adds an object at the namespace root.
    pub fn add_root(&mut self, obj: &dyn Aml) -> &mut Self {
        obj.to_aml_bytes(&mut self.root);
        self
    }

    /// Adds an object (usually a Device) inside `Scope (\_SB_)`.
    pub fn add_system_bus(&mut self, obj: &dyn Aml) -> &mut Self {
        obj.to_aml_bytes(&mut self.system_bus);
        self
    }

    /// The DSDT bytes: root objects, then `Scope (\_SB_) { ... }`.
    pub fn build(self) -> Result<Vec<u8>, AcpiError> {
        let mut t = Sdt::new(*b"DSDT", DSDT_REVISION, *b"HVMDSDT ");
        t.push_bytes(&self.root);
        t.push_bytes(&Scope::raw(Path::new("\\_SB_"), self.system_bus));
        t.finish()
    }
}

/// The DSDT of the current machine: the base namespace only.
pub fn dsdt() -> Result<Vec<u8>, AcpiError> {
    DsdtBuilder::with_base().build()
}

#[cfg(test)]
mod tests {
    use super::super::sdt::byte_sum;
    use super::*;

    #[test]
    fn test_dsdt_has_s5_and_sb() {
        let b = dsdt().unwrap();
        assert_eq!(&b[0..4], b"DSDT");
        assert_eq!(b[8], DSDT_REVISION);
        assert_eq!(byte_sum(&b), 0);
        assert_eq!(
            u32::from_le_bytes(b[4..8].try_into().unwrap()) as usize,
            b.len()
        );
        // NameOp "_S5_" PackageOp
        let body = &b[36..];
        assert_eq!(&body[0..6], &[0x08, b'_', b'S', b'5', b'_', 0x12]);
        // Package: pkglen, count 4, BytePrefix 5, Zero, Zero, Zero
        assert_eq!(&body[6..13], &[0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00]);
        let sb = body.windows(5).position(|w| w == b"\\_SB_");
        assert!(sb.is_some(), "no \\_SB_ scope in {body:x?}");
    }

    #[test]
    fn test_power_off_byte() {
        assert_eq!(SLEEP_CONTROL_POWER_OFF, 0x34);
        assert_eq!(
            (SLEEP_CONTROL_POWER_OFF & SLEEP_CONTROL_SLP_TYP_MASK) >> SLEEP_CONTROL_SLP_TYP_SHIFT,
            S5_SLP_TYP
        );
    }
}
