//! A process's stdio as the agent sees it: pipes, or a pseudo-terminal when the spec asks for
//! one. The agent keeps the host ends ([`ProcessIo`]) for the stdio RPCs; the child ends
//! ([`ChildIo`]) become the process's fds 0-2 and are closed in the agent once it started.
//!
//! Buffering is bounded by the kernel: nothing is read ahead into agent memory. A read RPC
//! reads straight from the pipe (at most [`MAX_READ`] bytes), so a process whose output is not
//! read blocks once the pipe (64 KiB) is full, instead of growing the agent. Each stream has
//! its own lock: a blocked stdout read does not hold up stdin or stderr, nor anything else.
//!
//! A terminal is a pty pair from the agent's devpts: the master is stdout and stdin (there is
//! no separate stderr), the slave the process's fds 0-2 and controlling terminal. The slave is
//! opened with `TIOCGPTPEER`, without a path. (It does not appear in the container's own
//! `/dev/pts`, a separate devpts instance; the process reaches it through its fds and
//! `/dev/tty`.)

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Mutex, MutexGuard};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

/// Most bytes one read returns.
pub const MAX_READ: usize = 1 << 20;

/// The agent's ends.
#[derive(Debug)]
pub struct ProcessIo {
    stdin: Mutex<Option<File>>,
    stdout: Mutex<Option<File>>,
    stderr: Mutex<Option<File>>,
    /// The pty master, for window size changes.
    terminal: Option<File>,
}

/// The process's ends, fds 0-2 in the process.
#[derive(Debug)]
pub struct ChildIo {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ProcessIo {
    /// Three pipes.
    pub fn pipes() -> io::Result<(Self, ChildIo)> {
        let (in_r, in_w) = pipe2(OFlag::O_CLOEXEC)?;
        let (out_r, out_w) = pipe2(OFlag::O_CLOEXEC)?;
        let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC)?;
        Ok((
            Self {
                stdin: Mutex::new(Some(in_w.into())),
                stdout: Mutex::new(Some(out_r.into())),
                stderr: Mutex::new(Some(err_r.into())),
                terminal: None,
            },
            ChildIo {
                stdin: in_r,
                stdout: out_w,
                stderr: err_w,
            },
        ))
    }

    /// A pseudo-terminal.
    pub fn terminal() -> io::Result<(Self, ChildIo)> {
        let master = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY | libc::O_CLOEXEC)
            .open("/dev/ptmx")?;
        let unlock: libc::c_int = 0;
        // SAFETY: TIOCSPTLCK reads one int from this frame; the master fd is open.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: TIOCGPTPEER takes open flags and returns a new fd for the slave.
        let slave = unsafe {
            libc::ioctl(
                master.as_raw_fd(),
                libc::TIOCGPTPEER,
                libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
            )
        };
        if slave < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a fresh fd owned by nothing else.
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        Ok((
            Self {
                stdin: Mutex::new(Some(master.try_clone()?)),
                stdout: Mutex::new(Some(master.try_clone()?)),
                stderr: Mutex::new(None),
                terminal: Some(master),
            },
            ChildIo {
                stdin: slave.try_clone()?,
                stdout: slave.try_clone()?,
                stderr: slave,
            },
        ))
    }

    /// No stdio: `/dev/null` for the process, nothing for the agent.
    pub fn null() -> io::Result<(Self, ChildIo)> {
        let null = || -> io::Result<OwnedFd> {
            Ok(OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open("/dev/null")?
                .into())
        };
        Ok((
            Self {
                stdin: Mutex::new(None),
                stdout: Mutex::new(None),
                stderr: Mutex::new(None),
                terminal: None,
            },
            ChildIo {
                stdin: null()?,
                stdout: null()?,
                stderr: null()?,
            },
        ))
    }

    pub fn is_terminal(&self) -> bool {
        self.terminal.is_some()
    }

    /// Up to `max` bytes of stdout (0: [`MAX_READ`]), blocking until some arrive; empty at
    /// end-of-file.
    pub fn read_stdout(&self, max: usize) -> io::Result<Vec<u8>> {
        read_stream(&self.stdout, max)
    }

    /// Like [`Self::read_stdout`] for stderr (always at end-of-file with a terminal).
    pub fn read_stderr(&self, max: usize) -> io::Result<Vec<u8>> {
        read_stream(&self.stderr, max)
    }

    /// Writes all of `data` to stdin; returns its length.
    pub fn write_stdin(&self, data: &[u8]) -> io::Result<usize> {
        let mut stdin = lock(&self.stdin);
        let file = stdin
            .as_mut()
            .ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "stdin is closed"))?;
        file.write_all(data)?;
        Ok(data.len())
    }

    /// Closes stdin: the process reads end-of-file. With a terminal the master stays open
    /// (it is also stdout), so an end-of-file character (^D) is sent instead.
    pub fn close_stdin(&self) -> io::Result<()> {
        let mut stdin = lock(&self.stdin);
        if self.is_terminal() {
            if let Some(file) = stdin.as_mut() {
                file.write_all(&[0x04])?;
            }
        }
        *stdin = None;
        Ok(())
    }

    /// Sets the terminal's window size.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        let master = self
            .terminal
            .as_ref()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a terminal"))?;
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from this frame; the master fd is open.
        if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn read_stream(stream: &Mutex<Option<File>>, max: usize) -> io::Result<Vec<u8>> {
    let mut guard = lock(stream);
    let Some(file) = guard.as_mut() else {
        return Ok(Vec::new());
    };
    let max = if max == 0 {
        MAX_READ
    } else {
        max.min(MAX_READ)
    };
    let mut buf = vec![0u8; max];
    loop {
        match file.read(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // A pty master reads EIO once the last slave fd is closed: end-of-file.
            Err(e) if e.raw_os_error() == Some(libc::EIO) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_pipes_carry_data_and_eof() {
        let (io, child) = ProcessIo::pipes().unwrap();
        let mut out = File::from(child.stdout);
        out.write_all(b"hello").unwrap();
        drop(out);
        assert_eq!(io.read_stdout(3).unwrap(), b"hel");
        assert_eq!(io.read_stdout(0).unwrap(), b"lo");
        assert_eq!(io.read_stdout(0).unwrap(), b"");

        assert_eq!(io.write_stdin(b"in").unwrap(), 2);
        io.close_stdin().unwrap();
        let mut input = String::new();
        File::from(child.stdin).read_to_string(&mut input).unwrap();
        assert_eq!(input, "in");
        assert!(io.write_stdin(b"x").is_err());
        drop(child.stderr);
        assert_eq!(io.read_stderr(10).unwrap(), b"");
        assert!(io.resize(24, 80).is_err());
    }

    #[test]
    fn test_null_io_reads_eof() {
        let (io, _child) = ProcessIo::null().unwrap();
        assert_eq!(io.read_stdout(10).unwrap(), b"");
        assert!(io.write_stdin(b"x").is_err());
    }
}
