//! Hardware-reduced ACPI power management: the sleep control, sleep status
//! and reset registers the FADT points at (three consecutive 8-bit ports).
//!
//! Power-off is a write of SLP_EN | SLP_TYP=S5 to the sleep control
//! register; reset is a write of the FADT's RESET_VALUE to the reset
//! register. The values come from the ACPI tables module so the tables and
//! this device cannot disagree.

use std::sync::Arc;

use crate::acpi::dsdt::{
    S5_SLP_TYP, SLEEP_CONTROL_SLP_EN, SLEEP_CONTROL_SLP_TYP_MASK, SLEEP_CONTROL_SLP_TYP_SHIFT,
};
use crate::acpi::fadt::RESET_VALUE_BYTE;
use crate::devices::BusDevice;
use crate::exit::{ExitSignal, GuestExit};

/// Offset of the sleep control register from the device base.
pub const SLEEP_CONTROL_OFFSET: u64 = 0;
/// Offset of the sleep status register.
pub const SLEEP_STATUS_OFFSET: u64 = 1;
/// Offset of the reset register.
pub const RESET_OFFSET: u64 = 2;
/// Number of ports the device occupies.
pub const ACPI_PM_PORTS: u64 = 3;

/// The three registers; the base port is chosen by the caller.
pub struct AcpiPm {
    exit: Arc<ExitSignal>,
}

impl AcpiPm {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        AcpiPm { exit }
    }

    fn sleep_control(&self, value: u8) {
        let slp_typ = (value & SLEEP_CONTROL_SLP_TYP_MASK) >> SLEEP_CONTROL_SLP_TYP_SHIFT;
        if value & SLEEP_CONTROL_SLP_EN == 0 {
            return;
        }
        if slp_typ == S5_SLP_TYP {
            self.exit.request(GuestExit::PowerOff);
        } else {
            tracing::debug!(slp_typ, "ACPI: unsupported sleep state ignored");
        }
    }
}

impl BusDevice for AcpiPm {
    fn read(&mut self, _base: u64, _offset: u64, data: &mut [u8]) {
        // Nothing to report: no wake events, and the control and reset
        // registers are write-only.
        data.fill(0);
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        let [value] = data else {
            tracing::trace!(offset, len = data.len(), "ACPI PM: ignored wide write");
            return;
        };
        match offset {
            SLEEP_CONTROL_OFFSET => self.sleep_control(*value),
            RESET_OFFSET if *value == RESET_VALUE_BYTE => self.exit.request(GuestExit::Reset {
                source: "ACPI reset register".into(),
            }),
            // Sleep status: write-1-to-clear of bits we never set.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev() -> (Arc<ExitSignal>, AcpiPm) {
        let exit = ExitSignal::new();
        (exit.clone(), AcpiPm::new(exit))
    }

    #[test]
    fn test_acpi_pm_s5_powers_off() {
        let (exit, mut d) = dev();
        d.write(0x600, SLEEP_CONTROL_OFFSET, &[(5 << 2) | (1 << 5)]);
        assert_eq!(exit.wait(), GuestExit::PowerOff);
    }

    #[test]
    fn test_acpi_pm_reset_register_resets() {
        let (exit, mut d) = dev();
        d.write(0x600, RESET_OFFSET, &[1]);
        assert!(matches!(exit.wait(), GuestExit::Reset { .. }));
    }

    #[test]
    fn test_acpi_pm_other_writes_do_nothing() {
        let (exit, mut d) = dev();
        // S5 without SLP_EN, other sleep types with SLP_EN, wrong reset value,
        // the status register, wide accesses, out-of-range offsets.
        d.write(0x600, 0, &[5 << 2]);
        for typ in [0u8, 1, 2, 3, 4, 6, 7] {
            d.write(0x600, 0, &[(typ << 2) | (1 << 5)]);
        }
        d.write(0x600, RESET_OFFSET, &[2]);
        d.write(0x600, SLEEP_STATUS_OFFSET, &[0xff]);
        d.write(0x600, 0, &[(5 << 2) | (1 << 5), 0]);
        d.write(0x600, 0, &[]);
        d.write(0x600, u64::MAX, &[0x34]);
        for len in 0..=8 {
            let mut buf = vec![0xaa; len];
            d.read(0x600, 1, &mut buf);
            assert!(buf.iter().all(|b| *b == 0));
        }
        assert!(!exit.is_requested());
    }
}
