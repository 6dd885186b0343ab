//! Fuzz harnesses for the guest- and client-facing parsers outside the
//! virtio devices (those are in `devices::virtio::fuzzing`). Built only
//! for tests and fuzzing (`--cfg fuzzing`, which cargo-fuzz and
//! `host-vmm/fuzz/run.sh` set); the production binary does not contain
//! them. Each takes arbitrary bytes; a panic or a broken invariant
//! (asserted here) is a bug.
//!
//! - [`hotplug_registers`]: the guest's accesses to the ACPI hot-plug
//!   registers (memory hot-plug controller, GED, virtio present bitmap,
//!   empty virtio-mmio slot), interleaved with the host's hot-adds.
//! - [`cpu_hotplug_registers`]: the guest's accesses to the CPU hot-plug controller
//!   (garbage selectors, status bits, ejects) among the host's adds and removal requests.
//! - [`log_lines`]: the agent log sink's line splitter and sanitizer on
//!   a guest byte stream cut into arbitrary chunks.
//! - [`api_requests`]: the control socket's request reader and parser on
//!   a client's bytes.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;

use vmm_sys_util::eventfd::EventFd;

use crate::agent::log_sink::{sanitize, LineSplitter, MAX_LINE};
use crate::api::protocol::MAX_LINE as API_MAX_LINE;
use crate::api::server::{parse_request, read_request};
use crate::devices::acpi::cpu_hotplug::{CpuHotplugController, CHP_MMIO_SIZE};
use crate::devices::acpi::ged::{Ged, GedNotifier};
use crate::devices::acpi::memory_hotplug::{
    MemoryHotplugController, MHP_MMIO_SIZE, MHP_REG_SELECT,
};
use crate::devices::virtio::fuzzing::Input;
use crate::devices::BusDevice;
use crate::hotplug::disk::{EmptySlot, PresentRegister};

/// What [`hotplug_registers`] did, for the seed checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HotplugOutcome {
    pub slots: u32,
    pub inserted: u32,
    pub acknowledged: u32,
    pub ged_events_seen: u32,
}

fn width(inp: &mut Input) -> usize {
    [1, 2, 4, 8, 0, 3][usize::from(inp.u8() % 6)]
}

fn offset(inp: &mut Input, window: u64) -> u64 {
    match inp.u8() % 8 {
        0 => inp.u64(),
        1 => window + u64::from(inp.u8()),
        _ => u64::from(inp.u8()) % window,
    }
}

fn read_u32(dev: &mut dyn BusDevice, off: u64) -> u32 {
    let mut b = [0u8; 4];
    dev.read(0, off, &mut b);
    u32::from_le_bytes(b)
}

/// See the module documentation.
pub fn hotplug_registers(data: &[u8]) -> HotplugOutcome {
    let mut inp = Input::new(data);
    let slots = u32::from(inp.u8() % 34);
    let mut mhp = MemoryHotplugController::new(slots);
    let Ok(irq) = EventFd::new(libc::EFD_NONBLOCK) else {
        return HotplugOutcome::default();
    };
    let notifier = GedNotifier::new(irq);
    let mut ged = Ged::new(notifier.clone());
    let mut present = PresentRegister::default();
    let bits = present.bits();
    let mut empty = EmptySlot::default();
    let mut out = HotplugOutcome {
        slots,
        ..Default::default()
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 4096 {
        ops += 1;
        match inp.u8() % 10 {
            // Host: hot-add a DIMM (any slot, base, size).
            0 => {
                let slot = u32::from(inp.u8());
                if mhp.insert(slot, inp.u64(), inp.u64()).is_ok() {
                    out.inserted += 1;
                    assert!(slot < slots, "insert into slot {slot} of {slots}");
                }
                let _ = notifier.notify(inp.u32());
            }
            // Host: forget a slot; set present bits.
            1 => mhp.clear(u32::from(inp.u8())),
            2 => bits.store(inp.u32(), Ordering::SeqCst),
            // Guest: reads and writes, any offset and width.
            3 | 4 => {
                let mut buf = vec![0u8; width(&mut inp)];
                let off = offset(&mut inp, MHP_MMIO_SIZE);
                mhp.read(0, off, &mut buf);
            }
            5 | 6 => {
                let w = width(&mut inp);
                let off = offset(&mut inp, MHP_MMIO_SIZE);
                let v = inp.u64().to_le_bytes();
                let before = (0..slots)
                    .filter(|&s| mhp.status(s).is_some_and(|s| !s.inserting && s.enabled))
                    .count();
                mhp.write(0, off, &v[..w.min(8)]);
                let after = (0..slots)
                    .filter(|&s| mhp.status(s).is_some_and(|s| !s.inserting && s.enabled))
                    .count();
                out.acknowledged += u32::try_from(after.saturating_sub(before)).unwrap_or(0);
            }
            7 => {
                let mut buf = vec![0u8; width(&mut inp)];
                let off = offset(&mut inp, 4);
                ged.read(0, off, &mut buf);
                if off == 0 && buf.len() == 4 && buf != [0; 4] {
                    out.ged_events_seen += 1;
                }
                let v = inp.u32().to_le_bytes();
                ged.write(0, offset(&mut inp, 4), &v);
            }
            8 => {
                let mut buf = vec![0u8; width(&mut inp)];
                present.read(0, offset(&mut inp, 4), &mut buf);
                let v = inp.u32().to_le_bytes();
                present.write(0, offset(&mut inp, 4), &v);
            }
            _ => {
                let mut buf = vec![0u8; width(&mut inp)];
                let off = offset(&mut inp, 0x200);
                empty.read(0, off, &mut buf);
                assert!(buf.iter().all(|&b| b == 0), "an empty slot reads as zeros");
                empty.write(0, off, &inp.u32().to_le_bytes());
            }
        }
        // The selector never points outside the slots (0 when there are none).
        let sel = read_u32(&mut mhp, MHP_REG_SELECT);
        assert!(sel < slots.max(1), "selected {sel} of {slots}");
    }
    out
}

/// What [`log_lines`] produced, for the seed checks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LogOutcome {
    pub lines: usize,
    pub longest: usize,
}

/// See the module documentation. The first byte picks the line limit:
/// [`MAX_LINE`] (as the sink runs) or a small one (1..=63), so that the
/// cut is reached with a few bytes. Invariants: no line is longer than the
/// limit or contains a newline; no sanitized line holds a control
/// character other than tab.
pub fn log_lines(data: &[u8]) -> LogOutcome {
    let mut inp = Input::new(data);
    let max = match usize::from(inp.u8() % 64) {
        0 => MAX_LINE,
        n => n,
    };
    let mut splitter = LineSplitter::with_max_line(max);
    let mut out = LogOutcome::default();
    let mut check = |line: &[u8]| {
        assert!(
            line.len() <= max,
            "line of {} bytes, limit {max}",
            line.len()
        );
        assert!(!line.contains(&b'\n'), "newline inside a line");
        let text = sanitize(line);
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\t'),
            "control character in {text:?}"
        );
        out.lines += 1;
        out.longest = out.longest.max(line.len());
    };
    // Runs of one byte reach the limit; their total is capped (a few times
    // the limit) so one input stays fast.
    let mut fill_budget = if max == MAX_LINE { max + 256 } else { 4 * max };
    while !inp.is_empty() {
        // A chunk as one read() returns it, or a run of one byte.
        match inp.u8() % 8 {
            0 => {
                let len = (usize::from(inp.u16()) % (2 * MAX_LINE)).min(fill_budget);
                fill_budget -= len;
                let fill = vec![inp.u8(); len];
                splitter.push(&fill, &mut check);
            }
            _ => {
                let len = usize::from(inp.u8());
                splitter.push(inp.bytes(len), &mut check);
            }
        }
    }
    if let Some(rest) = splitter.finish() {
        check(&rest);
    }
    out
}

/// What [`cpu_hotplug_registers`] did, for the seed checks.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CpuHotplugOutcome {
    pub count: u32,
    pub inserted: u32,
    pub ejected: u32,
}

/// See the module documentation. Invariants: the guest never makes a CPU present, never
/// ejects one the host did not offer for removal, and the controller never grows.
pub fn cpu_hotplug_registers(data: &[u8]) -> CpuHotplugOutcome {
    let mut inp = Input::new(data);
    let count = u32::from(inp.u8() % 17);
    let boot = u32::from(inp.u8()) % (count + 1);
    let mut c = CpuHotplugController::new(count, boot);
    // The host's view: present, and offered for removal.
    let mut present: Vec<bool> = (0..count).map(|i| i < boot).collect();
    let mut offered = vec![false; count as usize];
    let mut out = CpuHotplugOutcome {
        count,
        ..Default::default()
    };
    let mut ops = 0;
    while !inp.is_empty() && ops < 4096 {
        ops += 1;
        let cpu = u32::from(inp.u8() % 20);
        let i = cpu as usize;
        match inp.u8() % 8 {
            0 => {
                if c.insert(cpu).is_ok() {
                    assert!(cpu < count && !present[i], "insert of CPU {cpu}");
                    present[i] = true;
                    offered[i] = false;
                    out.inserted += 1;
                }
            }
            1 => {
                if c.request_removal(cpu).is_ok() {
                    offered[i] = true;
                }
            }
            2 => {
                c.cancel_removal(cpu);
                if let Some(o) = offered.get_mut(i) {
                    *o = false;
                }
            }
            3 => {
                c.clear(cpu);
                if let Some(p) = present.get_mut(i) {
                    *p = false;
                    offered[i] = false;
                }
            }
            4 | 5 => {
                let mut buf = vec![0u8; width(&mut inp)];
                c.read(0, offset(&mut inp, CHP_MMIO_SIZE), &mut buf);
            }
            _ => {
                let w = width(&mut inp);
                let off = offset(&mut inp, CHP_MMIO_SIZE);
                let v = inp.u64().to_le_bytes();
                c.write(0, off, &v[..w.min(8)]);
            }
        }
        assert_eq!(c.count(), count, "the controller changed size");
        assert!(c.status(count).is_none());
        for cpu in 0..count {
            let i = cpu as usize;
            let Some(s) = c.status(cpu) else {
                panic!("CPU {cpu} of {count} has no status");
            };
            assert!(!s.enabled || present[i], "the guest made CPU {cpu} present");
            if present[i] && !s.enabled {
                assert!(offered[i], "the guest ejected CPU {cpu}, never offered");
                assert!(c.take_ejected(cpu), "CPU {cpu} gone without an eject");
                present[i] = false;
                offered[i] = false;
                out.ejected += 1;
            }
        }
    }
    out
}

/// See the module documentation. Invariants: the reader returns at most
/// `MAX_LINE + 1` bytes, ending at the first newline; a parsed request
/// serializes and parses back to itself.
pub fn api_requests(data: &[u8]) -> Option<crate::api::Request> {
    let Ok((mut client, server)) = UnixStream::pair() else {
        return None;
    };
    // Up to the socket buffer; the reader never needs more.
    let sent = &data[..data.len().min(API_MAX_LINE + 64)];
    if client.write_all(sent).is_err() {
        return None;
    }
    let _ = client.shutdown(std::net::Shutdown::Write);
    let line = read_request(&server).ok()?;
    assert!(line.len() <= API_MAX_LINE + 1, "read {} bytes", line.len());
    if let Some(nl) = line.iter().position(|&b| b == b'\n') {
        assert_eq!(nl + 1, line.len(), "bytes after the newline were read");
    }
    assert!(sent.starts_with(&line));
    let req = parse_request(&line).ok()?;
    let again = serde_json::to_vec(&req).ok()?;
    assert_eq!(
        parse_request(&again).ok().as_ref(),
        Some(&req),
        "round trip"
    );
    Some(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::fuzz_smoke::{corpus, smoke};

    fn seed(target: &str, name: &str) -> Vec<u8> {
        corpus(target)
            .into_iter()
            .find(|(p, _)| p.ends_with(name))
            .unwrap_or_else(|| panic!("seed {target}/{name}"))
            .1
    }

    #[test]
    fn test_fuzz_smoke_hotplug_registers() {
        let n = smoke(
            "hotplug_registers",
            |d| {
                hotplug_registers(d);
            },
            1024,
            500,
        );
        eprintln!("hotplug_registers: {n} random inputs");
    }

    #[test]
    fn test_fuzz_smoke_cpu_hotplug_registers() {
        let n = smoke(
            "cpu_hotplug_registers",
            |d| {
                cpu_hotplug_registers(d);
            },
            1024,
            500,
        );
        eprintln!("cpu_hotplug_registers: {n} random inputs");
    }

    #[test]
    fn test_fuzz_smoke_log_lines() {
        let n = smoke(
            "log_lines",
            |d| {
                log_lines(d);
            },
            2048,
            500,
        );
        eprintln!("log_lines: {n} random inputs");
    }

    #[test]
    fn test_fuzz_smoke_api_requests() {
        let n = smoke(
            "api_requests",
            |d| {
                api_requests(d);
            },
            512,
            500,
        );
        eprintln!("api_requests: {n} random inputs");
    }

    /// The seeds reach the state they are named after.
    #[test]
    fn test_fuzz_seeds_reach_their_paths() {
        let o = hotplug_registers(&seed("hotplug_registers", "insert_select_ack"));
        assert_eq!(
            (o.slots, o.inserted, o.acknowledged, o.ged_events_seen),
            (4, 1, 1, 1),
            "{o:?}"
        );
        let o = cpu_hotplug_registers(&seed("cpu_hotplug_registers", "add_remove_eject"));
        assert_eq!((o.count, o.inserted, o.ejected), (4, 1, 1), "{o:?}");
        let o = log_lines(&seed("log_lines", "two_lines"));
        assert_eq!(o.lines, 2, "{o:?}");
        let o = log_lines(&seed("log_lines", "long_line_then_next"));
        assert_eq!((o.lines, o.longest), (2, MAX_LINE), "{o:?}");
        // Limit 8: "01234567" (rest cut), "short", "01234567" (unterminated).
        let o = log_lines(&seed("log_lines", "small_limit_cuts"));
        assert_eq!((o.lines, o.longest), (3, 8), "{o:?}");
        assert_eq!(
            api_requests(&seed("api_requests", "memory_info")),
            Some(crate::api::Request::MemoryInfo)
        );
        assert!(matches!(
            api_requests(&seed("api_requests", "disk_add")),
            Some(crate::api::Request::DiskAdd {
                read_only: true,
                ..
            })
        ));
        assert_eq!(api_requests(&seed("api_requests", "garbage")), None);
        assert_eq!(api_requests(&seed("api_requests", "overlong")), None);
    }
}
