//! Kernel uevents (NETLINK_KOBJECT_UEVENT), and the thread that onlines
//! every memory block the kernel adds, without waiting for any RPC.
//!
//! The kernel multicasts one datagram per event to group 1:
//! `add@/devices/system/memory/memory40\0ACTION=add\0DEVPATH=...\0SUBSYSTEM=memory\0SEQNUM=N\0`.
//! [`parse_uevent`] reads that (pure, tested); [`memory_block_added`] picks
//! the memory block additions. The thread ([`start_memory_onliner`]) opens
//! the socket before its first full scan, so a block added during the scan
//! is still announced. When the socket overflows (ENOBUFS: events were
//! lost) it scans everything again. After a burst of additions it logs
//! `memory: onlined N blocks, MemTotal now M kB` on the console.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::socket::{
    bind, recvfrom, setsockopt, socket, sockopt, AddressFamily, NetlinkAddr, SockFlag,
    SockProtocol, SockType,
};
use nix::sys::time::TimeVal;

use crate::memory::{self, BlockOutcome, Onliner};

/// The multicast group the kernel sends uevents to.
const KERNEL_GROUP: u32 = 1;
/// Biggest datagram read (the kernel's uevent buffer is 2 KiB of
/// environment plus the header); longer ones are truncated and ignored.
const MAX_MESSAGE: usize = 8192;
/// Receive buffer asked for: room for thousands of block events while the
/// thread is busy onlining (needs CAP_NET_ADMIN, which pid 1 has).
const RECEIVE_BUFFER: usize = 4 << 20;
/// Quiet time after the last addition before the summary line is logged.
const SUMMARY_DELAY: Duration = Duration::from_millis(300);

/// Why the listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum UeventError {
    #[error("create the uevent netlink socket")]
    Socket(#[source] Errno),
    #[error("bind the uevent netlink socket to the kernel group")]
    Bind(#[source] Errno),
    #[error("start the memory onliner thread")]
    Thread(#[source] std::io::Error),
}

/// One parsed uevent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uevent<'a> {
    pub action: &'a str,
    /// Relative to /sys (`/devices/system/memory/memory40`).
    pub devpath: &'a str,
    pub subsystem: Option<&'a str>,
    pub seqnum: Option<u64>,
}

/// Parses a kernel uevent datagram; `None` for anything else (udev's
/// `libudev` messages, garbage, invalid UTF-8).
pub fn parse_uevent(buf: &[u8]) -> Option<Uevent<'_>> {
    let mut parts = buf.split(|&b| b == 0).filter(|p| !p.is_empty());
    let header = std::str::from_utf8(parts.next()?).ok()?;
    let (action, devpath) = header.split_once('@')?;
    if action.is_empty() || !devpath.starts_with('/') {
        return None;
    }
    let mut ev = Uevent {
        action,
        devpath,
        subsystem: None,
        seqnum: None,
    };
    for part in parts {
        let Some((key, value)) = std::str::from_utf8(part)
            .ok()
            .and_then(|p| p.split_once('='))
        else {
            continue;
        };
        match key {
            "ACTION" => ev.action = value,
            "DEVPATH" => ev.devpath = value,
            "SUBSYSTEM" => ev.subsystem = Some(value),
            "SEQNUM" => ev.seqnum = value.parse().ok(),
            _ => {}
        }
    }
    Some(ev)
}

/// The block number if `ev` announces a new memory block.
pub fn memory_block_added(ev: &Uevent<'_>) -> Option<u32> {
    if ev.action != "add" || ev.subsystem != Some("memory") {
        return None;
    }
    ev.devpath
        .strip_prefix("/devices/system/memory/")
        .and_then(memory::parse_block_name)
}

/// The CPU number if `ev` announces a hot-added CPU (it arrives offline).
pub fn cpu_added(ev: &Uevent<'_>) -> Option<u32> {
    if ev.action != "add" || ev.subsystem != Some("cpu") {
        return None;
    }
    ev.devpath
        .strip_prefix("/devices/system/cpu/cpu")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|&n| n < crate::cpus::MAX_CPUS)
}

/// Onlines a hot-added CPU (OnlineCPUMem does the same for any it finds offline).
fn online_cpu(cpu: u32) {
    let file = format!("{}/cpu{cpu}/online", crate::cpus::CPU_SYSFS);
    match std::fs::read_to_string(&file) {
        Ok(s) if s.trim() == "0" => match std::fs::write(&file, "1") {
            Ok(()) => tracing::info!("cpu: CPU {cpu} online (uevent)"),
            Err(e) => tracing::warn!("cpu: CPU {cpu}: cannot online it: {e}"),
        },
        _ => {}
    }
}

/// A socket receiving the kernel's uevents.
pub struct UeventSocket {
    fd: OwnedFd,
}

impl UeventSocket {
    pub fn open() -> Result<Self, UeventError> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Datagram,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkKObjectUEvent,
        )
        .map_err(UeventError::Socket)?;
        if let Err(e) = setsockopt(&fd, sockopt::RcvBufForce, &RECEIVE_BUFFER) {
            tracing::debug!("uevent socket: SO_RCVBUFFORCE: {e}");
        }
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, KERNEL_GROUP)).map_err(UeventError::Bind)?;
        Ok(UeventSocket { fd })
    }

    /// Waits for the next datagram from the kernel, at most `timeout`
    /// (`None`: forever). `Ok(None)` on timeout. Datagrams from user space
    /// are skipped.
    pub fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<Option<usize>, Errno> {
        let tv = timeout.map_or(TimeVal::new(0, 0), |t| {
            // A zero TimeVal means no timeout: wait at least a microsecond.
            let us = i64::try_from(t.as_micros()).unwrap_or(i64::MAX).max(1);
            TimeVal::new(us / 1_000_000, us % 1_000_000)
        });
        setsockopt(&self.fd, sockopt::ReceiveTimeout, &tv)?;
        loop {
            match recvfrom::<NetlinkAddr>(self.fd.as_raw_fd(), buf) {
                Ok((n, Some(from))) if from.pid() == 0 => return Ok(Some(n)),
                Ok(_) => continue,
                Err(Errno::EAGAIN) => return Ok(None),
                Err(Errno::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Scan and online every block now, then start the thread that onlines
/// the blocks the kernel announces. The first scan's failures are logged.
pub fn start_memory_onliner(onliner: Arc<Onliner>) -> Result<(), UeventError> {
    let socket = UeventSocket::open()?;
    rescan(&onliner, "start");
    std::thread::Builder::new()
        .name("mem-online".into())
        .spawn(move || listen(&socket, &onliner))
        .map_err(UeventError::Thread)?;
    Ok(())
}

/// Online everything offline; returns how many blocks were onlined.
fn rescan(onliner: &Onliner, why: &str) -> u32 {
    match onliner.online_all() {
        Ok(report) => {
            if report.failed > 0 {
                tracing::error!("memory: scan at {why}: {report}");
            } else {
                tracing::debug!("memory: scan at {why}: {report}");
            }
            report.onlined
        }
        Err(e) => {
            tracing::error!(
                "memory: scan at {why}: {}",
                crate::error_chain::error_chain(&e)
            );
            0
        }
    }
}

fn listen(socket: &UeventSocket, onliner: &Onliner) {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut onlined: u32 = 0;
    loop {
        let timeout = (onlined > 0).then_some(SUMMARY_DELAY);
        match socket.recv(&mut buf, timeout) {
            Ok(Some(n)) => {
                let ev = buf.get(..n).and_then(parse_uevent);
                if let Some(cpu) = ev.as_ref().and_then(cpu_added) {
                    online_cpu(cpu);
                    continue;
                }
                let Some(block) = ev.as_ref().and_then(memory_block_added) else {
                    continue;
                };
                match onliner.online_block(block) {
                    Ok(BlockOutcome::Onlined) => onlined = onlined.saturating_add(1),
                    Ok(BlockOutcome::AlreadyOnline) => {}
                    Err(e) => tracing::error!(
                        "memory: online memory{block}: {}",
                        crate::error_chain::error_chain(&e)
                    ),
                }
            }
            Ok(None) => {
                log_summary(onlined);
                memory::memory_grown();
                onlined = 0;
            }
            Err(Errno::ENOBUFS) => {
                tracing::warn!("memory: uevents were lost (socket overflow); rescanning");
                onlined = onlined.saturating_add(rescan(onliner, "overflow"));
            }
            Err(e) => {
                tracing::error!("memory: uevent socket: {e}; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn log_summary(onlined: u32) {
    match memory::mem_total_kib() {
        Some(kib) => tracing::info!("memory: onlined {onlined} blocks, MemTotal now {kib} kB"),
        None => tracing::info!("memory: onlined {onlined} blocks"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KERNEL_ADD: &[u8] = b"add@/devices/system/memory/memory40\0ACTION=add\0\
        DEVPATH=/devices/system/memory/memory40\0SUBSYSTEM=memory\0SEQNUM=1234\0";

    #[test]
    fn test_parse_kernel_memory_add() {
        let ev = parse_uevent(KERNEL_ADD).unwrap();
        assert_eq!(
            ev,
            Uevent {
                action: "add",
                devpath: "/devices/system/memory/memory40",
                subsystem: Some("memory"),
                seqnum: Some(1234),
            }
        );
        assert_eq!(memory_block_added(&ev), Some(40));
    }

    #[test]
    fn test_other_events_are_not_block_additions() {
        for msg in [
            &b"online@/devices/system/memory/memory40\0ACTION=online\0SUBSYSTEM=memory\0"[..],
            b"remove@/devices/system/memory/memory40\0ACTION=remove\0SUBSYSTEM=memory\0",
            b"add@/devices/system/cpu/cpu3\0ACTION=add\0SUBSYSTEM=cpu\0",
            b"add@/devices/system/memory/memoryX\0ACTION=add\0SUBSYSTEM=memory\0",
            b"add@/devices/system/memory/power\0ACTION=add\0SUBSYSTEM=memory\0",
            // No SUBSYSTEM: not trusted to be a memory block.
            b"add@/devices/system/memory/memory7\0ACTION=add\0",
        ] {
            let ev = parse_uevent(msg).unwrap();
            assert_eq!(memory_block_added(&ev), None, "{ev:?}");
        }
    }

    #[test]
    fn test_cpu_additions_are_recognised() {
        let msg = b"add@/devices/system/cpu/cpu3\0ACTION=add\0DEVPATH=/devices/system/cpu/cpu3\0SUBSYSTEM=cpu\0SEQNUM=9\0";
        let ev = parse_uevent(msg).unwrap();
        assert_eq!(cpu_added(&ev), Some(3));
        assert_eq!(memory_block_added(&ev), None);
        let msg = b"remove@/devices/system/cpu/cpu3\0ACTION=remove\0DEVPATH=/devices/system/cpu/cpu3\0SUBSYSTEM=cpu\0";
        assert_eq!(cpu_added(&parse_uevent(msg).unwrap()), None);
        let msg = b"add@/devices/system/cpu/cpufreq\0ACTION=add\0DEVPATH=/devices/system/cpu/cpufreq\0SUBSYSTEM=cpu\0";
        assert_eq!(cpu_added(&parse_uevent(msg).unwrap()), None);
    }

    #[test]
    fn test_garbage_and_udev_messages_are_ignored() {
        assert_eq!(parse_uevent(b""), None);
        assert_eq!(parse_uevent(b"\0\0\0"), None);
        assert_eq!(parse_uevent(b"libudev\0\xfe\xed\xca\xfe"), None);
        assert_eq!(parse_uevent(b"add@relative/path\0"), None);
        assert_eq!(parse_uevent(b"@/devices\0"), None);
        assert_eq!(parse_uevent(b"\xff\xfe@/x\0"), None);
        // Truncated message: the header alone still parses; broken fields are skipped.
        let ev = parse_uevent(b"add@/devices/system/memory/memory3\0SUBSYSTEM=memory\0\xff=1\0SEQ")
            .unwrap();
        assert_eq!(memory_block_added(&ev), Some(3));
        assert_eq!(ev.seqnum, None);
    }

    #[test]
    fn test_fields_override_header() {
        let ev = parse_uevent(
            b"change@/devices/a\0ACTION=add\0DEVPATH=/devices/system/memory/memory9\0\
              SUBSYSTEM=memory\0SEQNUM=notanumber\0",
        )
        .unwrap();
        assert_eq!(memory_block_added(&ev), Some(9));
        assert_eq!(ev.seqnum, None);
    }

    #[test]
    fn test_uevent_socket_opens_and_times_out() {
        // Any user may listen to the kernel's uevents.
        let s = UeventSocket::open().expect("NETLINK_KOBJECT_UEVENT socket");
        let mut buf = [0u8; 64];
        let r = s.recv(&mut buf, Some(Duration::from_millis(10)));
        assert!(matches!(r, Ok(None) | Ok(Some(_))), "{r:?}");
    }
}
