//! Legacy PC devices: the 8250 UART (console) with its non-blocking output queue and the i8042 (reset line).

pub mod console;
pub mod i8042;
pub mod serial;

pub use console::{ConsoleOutput, ConsoleQueue};
pub use i8042::I8042;
pub use serial::{SerialAml, SerialConsole};
