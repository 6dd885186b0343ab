//! i8042 keyboard controller, only for its CPU reset line: the guest writes
//! 0xFE to the command port (0x64) to reset the machine (`reboot=k`).

use std::sync::Arc;

use vm_superio::{I8042Device, Trigger};

use crate::devices::BusDevice;
use crate::vmm::exit::{ExitSignal, GuestExit};

/// Turns the i8042 reset line into a guest reset.
pub struct ResetLine(Arc<ExitSignal>);

impl Trigger for ResetLine {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.request(GuestExit::Reset {
            source: "i8042 reset (port 0x64)".into(),
        });
        Ok(())
    }
}

/// The i8042 at ports 0x60..=0x64 (offset 4 is the command port).
pub struct I8042 {
    dev: I8042Device<ResetLine>,
}

impl I8042 {
    pub fn new(exit: Arc<ExitSignal>) -> Self {
        I8042 {
            dev: I8042Device::new(ResetLine(exit)),
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, _base: u64, offset: u64, data: &mut [u8]) {
        match (data.len(), u8::try_from(offset)) {
            (1, Ok(off)) => data[0] = self.dev.read(off),
            _ => data.fill(0xff),
        }
    }

    fn write(&mut self, _base: u64, offset: u64, data: &[u8]) {
        if let (1, Ok(off)) = (data.len(), u8::try_from(offset)) {
            // The trigger is infallible.
            let _ = self.dev.write(off, data[0]);
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
        assert!(!exit.is_requested());
        d.write(0x60, 4, &[0xfe]);
        assert!(matches!(exit.wait(), GuestExit::Reset { .. }));
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
