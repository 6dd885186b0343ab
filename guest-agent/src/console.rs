//! Line output to the kernel console.
//!
//! As pid 1 the agent opens `/dev/console` (the kernel console, ttyS0) once, before it mounts
//! devtmpfs over `/dev`: the open file stays valid afterwards. Each line goes out in a single
//! `write(2)`, so lines from different threads never interleave. When the console is not open
//! (dry run, tests) lines go to stderr. Write errors are ignored: there is nowhere else to
//! report them.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

/// The console device the kernel gives init.
pub const CONSOLE_PATH: &str = "/dev/console";

static CONSOLE: OnceLock<File> = OnceLock::new();

/// Opens the console for writing; later [`write_line`] calls use it.
pub fn open(path: &Path) -> io::Result<()> {
    let file = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(path)?;
    // A second open keeps the first file: the console is opened once per process.
    let _ = CONSOLE.set(file);
    Ok(())
}

/// Writes `line` plus a newline in one write, to the console or else stderr.
pub fn write_line(line: &str) {
    let mut buf = Vec::with_capacity(line.len() + 1);
    buf.extend_from_slice(line.as_bytes());
    buf.push(b'\n');
    let _ = match CONSOLE.get() {
        Some(mut file) => file.write_all(&buf),
        None => io::stderr().lock().write_all(&buf),
    };
}
