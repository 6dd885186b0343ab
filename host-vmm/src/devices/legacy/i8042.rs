//! i8042 keyboard controller, only for its CPU reset line: the guest writes
//! 0xFE to the command port (0x64) to reset the machine (`reboot=k`).
//!
//! There is no keyboard. The status register reports a permanently full
//! output buffer (OBF set, IBF clear): Linux's i8042 driver then gives up
//! after flushing 16 bytes ("No controller found", well under a millisecond)
//! instead of timing out on controller commands for about a second, while
//! the kernel's reboot path, which only waits for IBF to clear, writes the
//! reset command at once.

use std::sync::Arc;

use crate::devices::BusDevice;
use crate::exit::{ExitSignal, GuestExit};

/// Offset of the command/status port (0x64) from the data port (0x60).
pub const COMMAND_OFFSET: u64 = 4;
/// Command: pulse the CPU reset line.
pub const CMD_RESET_CPU: u8 = 0xfe;
/// Status: output buffer full (and input buffer empty).
pub const STATUS_OBF: u8 = 0x01;

/// The i8042 at ports 0x60..=0x64.
pub struct I8042 {
    exit: Arc<ExitSignal>,
}

impl I8042 {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        I8042 { exit }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        match (offset, data) {
            (COMMAND_OFFSET, [status]) => *status = STATUS_OBF,
            (_, data) => data.fill(0),
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if let (COMMAND_OFFSET, [CMD_RESET_CPU]) = (offset, data) {
            self.exit.request(GuestExit::Reset {
                source: "i8042 reset (port 0x64)".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_i8042_reset_on_fe_to_command_port() {
        let exit = ExitSignal::new();
        let mut d = I8042::new(exit.clone());
        d.write(0x60, 0, &[0xfe]);
        d.write(0x60, 4, &[0xfe, 0]);
        assert!(!exit.is_requested());
        d.write(0x60, 4, &[0xfe]);
        assert!(matches!(exit.wait(), GuestExit::Reset { .. }));
    }

    #[test]
    fn test_i8042_status_obf_set_ibf_clear() {
        let mut d = I8042::new(ExitSignal::new());
        let mut s = [0u8];
        d.read(0x60, 4, &mut s);
        assert_eq!(s[0] & 0x01, 0x01, "OBF");
        assert_eq!(s[0] & 0x02, 0, "IBF");
    }

    #[test]
    fn test_i8042_arbitrary_accesses_never_panic() {
        let exit = ExitSignal::new();
        let mut d = I8042::new(exit.clone());
        for off in [0u64, 1, 3, 4, 5, 255, 256, u64::MAX] {
            for len in 0..=8 {
                let mut buf = vec![0u8; len];
                d.read(0x60, off, &mut buf);
                buf.fill(0xfe);
                if !(off == 4 && len == 1) {
                    d.write(0x60, off, &buf);
                }
            }
        }
        assert!(!exit.is_requested());
    }
}
