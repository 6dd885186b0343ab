//! The guest console's output path: the vCPU never blocks on it.
//!
//! The UART is written by a vCPU thread, one byte per port write. If those
//! bytes went straight to stdout or a file, a reader that stops reading
//! (a full pipe) would stall the vCPU, and with it the guest and the
//! teardown that waits for the vCPU. Instead the vCPU appends to a
//! [`ConsoleQueue`] of at most [`CONSOLE_BUFFER_BYTES`]; a writer thread
//! drains it to the real output. When the buffer is full the output is
//! dropped, counted, and logged once. Dropping the queue gives the writer
//! [`CONSOLE_DRAIN_DEADLINE`] to write what is left, then leaves it behind.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, LineWriter, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::threads::join_within;

/// Console bytes held for a slow reader; beyond this, output is dropped.
pub const CONSOLE_BUFFER_BYTES: usize = 1 << 20;
/// Bytes the writer thread takes from the buffer per write.
const WRITE_CHUNK: usize = 64 * 1024;
/// How long dropping the console waits for the writer to drain.
pub const CONSOLE_DRAIN_DEADLINE: Duration = Duration::from_secs(2);

/// Where the guest's console bytes go.
pub enum ConsoleOutput {
    Stdout(io::Stdout),
    File(LineWriter<File>),
    /// Discarded (tests).
    Sink,
}

impl ConsoleOutput {
    /// The console for `path`, or stdout when `None`. The file is created
    /// (truncated) now so a bad path fails before the guest starts. The
    /// open never blocks: a FIFO without a reader fails at once (`ENXIO`,
    /// "No such device or address") instead of holding the VMM before
    /// boot; the writes themselves are blocking, on the writer thread.
    pub fn open(path: Option<&Path>) -> io::Result<Self> {
        let Some(p) = path else {
            return Ok(ConsoleOutput::Stdout(io::stdout()));
        };
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(p)?;
        set_blocking(&file)?;
        Ok(ConsoleOutput::File(LineWriter::new(file)))
    }
}

/// Clear `O_NONBLOCK` on `file`.
fn set_blocking(file: &File) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: F_GETFL on a descriptor we own takes no pointer.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: F_SETFL with an int argument on a descriptor we own.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Write for ConsoleOutput {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            ConsoleOutput::Stdout(s) => s.write(buf),
            ConsoleOutput::File(f) => f.write(buf),
            ConsoleOutput::Sink => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            ConsoleOutput::Stdout(s) => s.flush(),
            ConsoleOutput::File(f) => f.flush(),
            ConsoleOutput::Sink => Ok(()),
        }
    }
}

#[derive(Default)]
struct State {
    buf: VecDeque<u8>,
    /// Bytes dropped because the buffer was full.
    dropped: u64,
    /// The queue is being dropped: write what is left and stop.
    closed: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    ready: Condvar,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The vCPU's end of the console: writes never block (see the module
/// documentation).
pub struct ConsoleQueue {
    shared: Arc<Shared>,
    /// `None` for [`ConsoleOutput::Sink`] (nothing to write to).
    writer: Option<JoinHandle<()>>,
    limit: usize,
}

impl ConsoleQueue {
    /// Start the writer thread for `out`.
    pub fn spawn(out: ConsoleOutput) -> io::Result<Self> {
        Self::with_limit(out, CONSOLE_BUFFER_BYTES)
    }

    fn with_limit(out: ConsoleOutput, limit: usize) -> io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let writer = match out {
            ConsoleOutput::Sink => None,
            out => {
                let s = shared.clone();
                Some(crate::seccomp::thread(
                    "console",
                    crate::seccomp::ThreadKind::Log,
                    move || drain(&s, out),
                )?)
            }
        };
        Ok(Self {
            shared,
            writer,
            limit,
        })
    }

    /// Bytes dropped so far because the reader did not keep up.
    pub fn dropped(&self) -> u64 {
        self.shared.lock().dropped
    }

    /// Bytes waiting for the writer.
    pub fn buffered(&self) -> usize {
        self.shared.lock().buf.len()
    }
}

impl Write for ConsoleQueue {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.writer.is_none() {
            return Ok(data.len());
        }
        let mut st = self.shared.lock();
        let room = self.limit.saturating_sub(st.buf.len());
        let take = room.min(data.len());
        st.buf.extend(&data[..take]);
        let lost = (data.len() - take) as u64;
        if lost > 0 {
            if st.dropped == 0 {
                tracing::warn!(
                    buffer_bytes = self.limit,
                    "console reader is not keeping up: guest console output dropped (counted; logged once)"
                );
            }
            st.dropped += lost;
        }
        drop(st);
        if take > 0 {
            self.shared.ready.notify_one();
        }
        Ok(data.len())
    }

    /// The writer thread flushes after each batch; nothing to wait for.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for ConsoleQueue {
    fn drop(&mut self) {
        let dropped = {
            let mut st = self.shared.lock();
            st.closed = true;
            st.dropped
        };
        self.shared.ready.notify_one();
        if dropped > 0 {
            tracing::warn!(dropped, "guest console bytes dropped in all");
        }
        if let Some(t) = self.writer.take() {
            join_within(t, "console writer", CONSOLE_DRAIN_DEADLINE);
        }
    }
}

/// The writer thread: move buffered bytes to `out` until closed and empty.
/// A failing output is logged once; later bytes are discarded.
fn drain(shared: &Shared, mut out: ConsoleOutput) {
    let mut chunk = Vec::with_capacity(WRITE_CHUNK);
    let mut failed = false;
    loop {
        {
            let mut st = shared.lock();
            while st.buf.is_empty() && !st.closed {
                st = shared
                    .ready
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if st.buf.is_empty() {
                return;
            }
            let n = st.buf.len().min(WRITE_CHUNK);
            chunk.clear();
            chunk.extend(st.buf.drain(..n));
        }
        if failed {
            continue;
        }
        if let Err(e) = out.write_all(&chunk).and_then(|()| out.flush()) {
            tracing::warn!(error = %e, "console output failed: further guest console output discarded");
            failed = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::os::fd::{FromRawFd, OwnedFd};
    use std::time::Instant;

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe2 writes.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are fresh and owned by nothing else.
        let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        (File::from(r), File::from(w))
    }

    #[test]
    fn test_console_queue_delivers_in_order() {
        let (mut r, w) = pipe();
        let mut q = ConsoleQueue::spawn(ConsoleOutput::File(LineWriter::new(w))).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            r.read_to_end(&mut got).unwrap();
            got
        });
        for b in data.chunks(7) {
            q.write_all(b).unwrap();
        }
        drop(q);
        assert_eq!(reader.join().unwrap(), data);
    }

    /// Issue 10, finding 7: the console is a pipe nobody reads. Writing
    /// several MiB from the vCPU side returns at once; the excess is
    /// dropped and counted; dropping the console does not wait forever.
    #[test]
    fn test_console_queue_never_blocks_on_a_stalled_reader() {
        let (_r, w) = pipe();
        let mut q = ConsoleQueue::spawn(ConsoleOutput::File(LineWriter::new(w))).unwrap();
        let start = Instant::now();
        let line = [b'x'; 4096];
        for _ in 0..(8 << 20) / line.len() {
            q.write_all(&line).unwrap();
        }
        let took = start.elapsed();
        assert!(took < Duration::from_secs(2), "8 MiB took {took:?}");
        assert!(q.buffered() <= CONSOLE_BUFFER_BYTES);
        // The pipe took at most its buffer (64 KiB by default) plus one
        // chunk in flight; the rest of 8 MiB beyond the queue is dropped.
        let dropped = q.dropped();
        assert!(
            dropped >= (8 << 20) - CONSOLE_BUFFER_BYTES as u64 - 2 * 1024 * 1024,
            "{dropped}"
        );
        let start = Instant::now();
        drop(q);
        let took = start.elapsed();
        assert!(
            took < CONSOLE_DRAIN_DEADLINE + Duration::from_secs(2),
            "drop took {took:?}"
        );
    }

    /// A console FIFO nobody has open for reading fails at once instead
    /// of blocking `open()`; with a reader it works.
    #[test]
    fn test_console_open_of_a_fifo_never_blocks() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let fifo = dir.as_path().join("console.fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: `c` is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let (tx, rx) = std::sync::mpsc::channel();
        let p = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(ConsoleOutput::open(Some(&p)).map(|_| ()));
        });
        let r = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("open returned");
        assert_eq!(r.unwrap_err().raw_os_error(), Some(libc::ENXIO));
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let mut out = ConsoleOutput::open(Some(&fifo)).unwrap();
        out.write_all(b"hello\n").unwrap();
        let mut got = [0u8; 6];
        (&reader).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"hello\n");
    }

    #[test]
    fn test_console_queue_sink_discards() {
        let mut q = ConsoleQueue::spawn(ConsoleOutput::Sink).unwrap();
        q.write_all(&[0u8; 4 << 20]).unwrap();
        assert_eq!((q.buffered(), q.dropped()), (0, 0));
    }
}
