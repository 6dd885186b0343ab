//! Legacy devices: the 8250 UART (console) with its non-blocking output queue and the i8042
//! (reset line) of the PC; the PL011 UART and PL031 RTC of the aarch64 board.

pub mod console;
pub mod i8042;
pub mod pl011;
pub mod pl031;
pub mod serial;

pub use console::{ConsoleOutput, ConsoleQueue};
pub use i8042::I8042;
pub use pl011::{Pl011, Pl011Aml};
pub use pl031::Pl031;
pub use serial::{SerialAml, SerialConsole};
