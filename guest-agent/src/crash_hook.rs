//! TEST BUILDS ONLY (cargo feature `test-crash-hook`, built into the separate test
//! initramfs by `rootfs/build.sh --test-hooks`; the production agent and initramfs do not
//! contain this module): make the agent die inside the guest on purpose, so the host's
//! handling of a dead agent can be tested end to end.
//!
//! `hvtest.crash=MODE[@DELAY_MS]` on the kernel command line arms it; the first
//! `WaitProcess` (a container is attached) starts the countdown (default 1000 ms), then:
//!
//! - `exit`: pid 1 exits. The kernel panics ("Attempted to kill init") and, with
//!   `panic=-1`, resets the VM: the host sees the VM end.
//! - `close`: the agent's vsock sockets (the ttrpc listener and every connection, the log
//!   channel too) are shut down while pid 1 and the kernel live on: the host sees its
//!   connections end.
//! - `hang`: every RPC that arrives from then on blocks for ever before it is handled (the
//!   calls already running go on): the agent stops answering, its connections stay open.
//!
//! The key has a dot and no `agent.` prefix, so the kernel does not hand it to init and the
//! production agent's command-line parser ignores it without a warning.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use protocol::ttrpc::{self, MethodHandler, TtrpcContext};

/// The kernel command-line key.
pub const KEY: &str = "hvtest.crash";
const DEFAULT_DELAY: Duration = Duration::from_millis(1000);

/// How the agent dies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exit,
    Close,
    Hang,
}

/// Parses `hvtest.crash=MODE[@DELAY_MS]` out of a kernel command line (the last one wins);
/// `None` when absent or malformed (logged).
pub fn parse(cmdline: &str) -> Option<(Mode, Duration)> {
    let value = cmdline
        .split_ascii_whitespace()
        .filter_map(|w| w.strip_prefix(KEY)?.strip_prefix('='))
        .next_back()?;
    let (mode, delay) = match value.split_once('@') {
        Some((m, d)) => (m, d.parse().ok().map(Duration::from_millis)),
        None => (value, Some(DEFAULT_DELAY)),
    };
    let mode = match mode {
        "exit" => Mode::Exit,
        "close" => Mode::Close,
        "hang" => Mode::Hang,
        _ => None?,
    };
    Some((mode, delay?))
}

static ARMED: Once = Once::new();
static HUNG: AtomicBool = AtomicBool::new(false);

/// Called by `WaitProcess`: the first call starts the countdown when the command line asks.
pub fn on_wait_process() {
    ARMED.call_once(|| {
        let Ok(cmdline) = std::fs::read_to_string("/proc/cmdline") else {
            return;
        };
        let Some((mode, delay)) = parse(&cmdline) else {
            return;
        };
        tracing::warn!("TEST crash hook armed: {mode:?} in {delay:?}");
        let _ = std::thread::Builder::new()
            .name("crash-hook".into())
            .spawn(move || {
                std::thread::sleep(delay);
                crash(mode);
            });
    });
}

fn crash(mode: Mode) {
    tracing::warn!("TEST crash hook: {mode:?} now");
    match mode {
        Mode::Exit => std::process::exit(70),
        Mode::Close => close_vsock_sockets(),
        Mode::Hang => HUNG.store(true, Ordering::SeqCst),
    }
}

/// `shutdown(SHUT_RDWR)` on every AF_VSOCK socket of the process.
fn close_vsock_sockets() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let mut closed = 0;
    for entry in dir.flatten() {
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        // SAFETY: an all-zero sockaddr_storage is valid plain data; getsockname writes at
        // most `len` bytes into it and fails harmlessly on an fd that is not a socket.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: see above; `addr` and `len` outlive the call.
        let rc = unsafe { libc::getsockname(fd, std::ptr::addr_of_mut!(addr).cast(), &mut len) };
        if rc == 0 && i32::from(addr.ss_family) == libc::AF_VSOCK {
            // SAFETY: shutdown only changes the socket's state; the fd stays open.
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
            closed += 1;
        }
    }
    tracing::warn!("TEST crash hook: shut down {closed} vsock sockets");
}

/// A handler that blocks for ever once the agent hangs.
struct Gated(Box<dyn MethodHandler + Send + Sync>);

impl MethodHandler for Gated {
    fn handler(&self, ctx: TtrpcContext, req: ttrpc::Request) -> ttrpc::Result<()> {
        park_if_hung();
        self.0.handler(ctx, req)
    }
}

fn park_if_hung() {
    while HUNG.load(Ordering::SeqCst) {
        std::thread::park_timeout(Duration::from_secs(3600));
    }
}

/// Wraps every handler so that `hang` can stop them all.
pub fn gate(
    methods: HashMap<String, Box<dyn MethodHandler + Send + Sync>>,
) -> HashMap<String, Box<dyn MethodHandler + Send + Sync>> {
    methods
        .into_iter()
        .map(|(name, h)| {
            (
                name,
                Box::new(Gated(h)) as Box<dyn MethodHandler + Send + Sync>,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse() {
        let ms = Duration::from_millis;
        assert_eq!(parse("quiet"), None);
        assert_eq!(
            parse("hvtest.crash=exit"),
            Some((Mode::Exit, DEFAULT_DELAY))
        );
        assert_eq!(
            parse("a hvtest.crash=close@250 b"),
            Some((Mode::Close, ms(250)))
        );
        assert_eq!(
            parse("hvtest.crash=exit hvtest.crash=hang@0"),
            Some((Mode::Hang, ms(0)))
        );
        assert_eq!(parse("hvtest.crash=boom"), None);
        assert_eq!(parse("hvtest.crash=exit@soon"), None);
        assert_eq!(parse("xhvtest.crash=exit"), None);
    }
}
