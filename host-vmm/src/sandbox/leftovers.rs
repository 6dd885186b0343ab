//! The hidden work directories next to the sandboxes in the runtime root, and their sweep.
//!
//! A runtime directory is never built in place: it is prepared as `.<id>.new-<pid>-<n>`
//! (0700, its pid file already locked) and renamed to `<id>` in one step, and it leaves the
//! same way (renamed to `.<id>.gone-<pid>-<n>`, or `.<id>.stale-<pid>-<n>` when a start
//! reclaims a dead owner's, then removed). So `<id>` is always either absent or a complete
//! directory with a locked (live) or unlocked (stale) pid file. A hidden directory is left
//! only when the process named in it died half-way; the next start sweeps those whose
//! process is gone (a reused pid only delays the sweep).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

/// What a hidden directory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Being prepared, not yet published.
    New,
    /// Being removed by its owner, at exit.
    Gone,
    /// A dead owner's, being removed by a start that reclaimed the id.
    Stale,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::New => "new",
            Kind::Gone => "gone",
            Kind::Stale => "stale",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "new" => Some(Kind::New),
            "gone" => Some(Kind::Gone),
            "stale" => Some(Kind::Stale),
            _ => None,
        }
    }
}

/// A fresh hidden name for `id` in this process.
pub fn hidden_name(id: &str, kind: Kind) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".{id}.{}-{}-{n}", kind.as_str(), std::process::id())
}

/// The kind and pid of a hidden name, or `None` for any other name.
pub fn parse_hidden(name: &str) -> Option<(Kind, u32)> {
    let rest = name.strip_prefix('.')?;
    let (id, tail) = rest.rsplit_once('.')?;
    if id.is_empty() {
        return None;
    }
    let mut parts = tail.split('-');
    let kind = Kind::parse(parts.next()?)?;
    let pid = parts.next()?.parse().ok()?;
    parts.next()?.parse::<u32>().ok()?;
    parts.next().is_none().then_some((kind, pid))
}

/// Is there a process `pid`?
fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks that the process exists; no pointers.
    if unsafe { libc::kill(pid, 0) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// Removes the hidden directories in `root` whose process is gone. Returns how many.
pub fn sweep(root: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(root) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some((kind, pid)) = name.to_str().and_then(parse_hidden) else {
            continue;
        };
        if pid == std::process::id() || process_exists(pid) {
            continue;
        }
        let path = entry.path();
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {
                tracing::info!(path = %path.display(), ?kind, pid, "removed a leftover of a host-vmm that is gone");
                removed += 1;
            }
            Err(e) => tracing::warn!(path = %path.display(), "cannot remove a leftover: {e}"),
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_hidden_names_roundtrip() {
        let me = std::process::id();
        for (id, kind) in [
            ("sb", Kind::New),
            ("a.b-c_d", Kind::Gone),
            ("x", Kind::Stale),
        ] {
            let a = hidden_name(id, kind);
            let b = hidden_name(id, kind);
            assert_ne!(a, b);
            assert!(a.starts_with(&format!(".{id}.")), "{a}");
            assert_eq!(parse_hidden(&a), Some((kind, me)), "{a}");
        }
        for other in [
            "sb",
            ".sb",
            ".sb.new",
            ".sb.new-1",
            ".sb.old-1-2",
            ".sb.new-x-2",
            ".sb.new-1-2-3",
            "..new-1-2",
        ] {
            assert_eq!(parse_hidden(other), None, "{other}");
        }
    }

    #[test]
    fn test_sweep_removes_only_dead_owners_leftovers() {
        let tmp = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let root = tmp.as_path();
        // A pid that was just used and is gone.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let dead_dir = root.join(format!(".sb.gone-{dead}-0"));
        std::fs::create_dir_all(dead_dir.join("sub")).unwrap();
        let live_dir = root.join(".sb.new-1-0"); // pid 1 lives
        std::fs::create_dir(&live_dir).unwrap();
        let own = root.join(hidden_name("sb", Kind::New));
        std::fs::create_dir(&own).unwrap();
        let sandbox = root.join("sb");
        std::fs::create_dir(&sandbox).unwrap();
        assert_eq!(sweep(root), 1);
        assert!(!dead_dir.exists());
        assert!(live_dir.exists() && own.exists() && sandbox.exists());
    }
}
