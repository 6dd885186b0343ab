//! Onlining hot-plugged memory.
//!
//! The guest kernel adds hot-plugged memory as offline blocks (it is built
//! with `MHP_DEFAULT_ONLINE_TYPE_OFFLINE`), each a directory
//! `<root>/memoryN` with a `state` file: `offline`, `online` or
//! `going-offline`. The agent onlines them by writing `online` (or
//! `online_movable` with `agent.mem_online=movable`) to `state`:
//!
//! - [`Onliner::online_block`]: one block, idempotent (an online block is
//!   left alone, and a concurrent onlining is recognised);
//! - [`Onliner::online_all`]: one pass over every block (at start, and after
//!   a lost uevent);
//! - [`Onliner::online_all_blocking`]: passes until no block is offline or
//!   the timeout is up (for the OnlineCPUMem RPC).
//!
//! `crate::uevent` calls [`Onliner::online_block`] for every memory block the
//! kernel announces, without waiting for any RPC. All onlining goes through
//! one lock, one block at a time. Failures are returned, never ignored; a
//! report keeps the first [`MAX_REPORTED_FAILURES`] of them and a count, so
//! memory use stays bounded however many blocks fail.

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// Where the kernel describes memory blocks.
pub const MEMORY_SYSFS: &str = "/sys/devices/system/memory";
/// Failures a report keeps in detail (the rest are only counted).
pub const MAX_REPORTED_FAILURES: usize = 8;
/// Longest `state` text read (the longest state is `going-offline\n`).
const MAX_STATE_TEXT: u64 = 32;
/// Pause between passes of [`Onliner::online_all_blocking`].
const RETRY_INTERVAL: Duration = Duration::from_millis(20);

/// How new memory is onlined (`agent.mem_online=online|movable`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnlineType {
    /// `online`: the kernel picks the zone (normal memory: usable for
    /// everything, but not reliably removable again).
    Online,
    /// `online_movable` (the default): ZONE_MOVABLE, so the memory can be
    /// unplugged later; user memory and page cache use it, kernel allocations
    /// (and so device DMA buffers) stay in boot RAM.
    #[default]
    Movable,
}

impl OnlineType {
    /// Parses the value of `agent.mem_online`.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "online" => Some(Self::Online),
            "movable" => Some(Self::Movable),
            _ => None,
        }
    }

    /// What to write to `state`.
    pub fn state_value(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Movable => "online_movable",
        }
    }
}

/// A block's `state`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockState {
    Online,
    Offline,
    /// Anything else (`going-offline`, or text a future kernel writes).
    Other(String),
}

impl BlockState {
    fn parse(text: &str) -> Self {
        match text.trim() {
            // The kernel shows `online` whatever the zone; the other two are
            // what a fake sysfs tree (tests) keeps after a write.
            "online" | "online_movable" | "online_kernel" => Self::Online,
            "offline" => Self::Offline,
            other => Self::Other(other.to_string()),
        }
    }

    fn text(&self) -> &str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Other(s) => s,
        }
    }
}

/// Why a block or the block list could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("list {}", path.display())]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("read {}", path.display())]
    ReadState {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("write {value:?} to {}", path.display())]
    WriteState {
        path: PathBuf,
        value: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("{}: still {state:?} after writing {value:?}", path.display())]
    NotOnline {
        path: PathBuf,
        value: &'static str,
        state: String,
    },
    #[error("{} blocks still offline after {waited:?}: {report}", report.offline)]
    Timeout {
        waited: Duration,
        report: OnlineReport,
    },
}

/// What happened to one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockOutcome {
    /// This call onlined it.
    Onlined,
    /// It was online already.
    AlreadyOnline,
}

/// The result of onlining passes.
#[derive(Debug, Default)]
pub struct OnlineReport {
    /// Blocks onlined.
    pub onlined: u32,
    /// Blocks found online already (in the last pass).
    pub already_online: u32,
    /// Blocks left offline or in another state (in the last pass).
    pub offline: u32,
    /// Failed attempts (all passes).
    pub failed: u32,
    /// The first [`MAX_REPORTED_FAILURES`] failures, as `memoryN: cause`.
    pub failures: Vec<String>,
}

impl OnlineReport {
    fn fail(&mut self, block: u32, err: &MemoryError) {
        self.failed = self.failed.saturating_add(1);
        if self.failures.len() < MAX_REPORTED_FAILURES {
            self.failures
                .push(format!("memory{block}: {}", error_chain(err)));
        }
    }
}

impl fmt::Display for OnlineReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "onlined {}, already online {}, offline {}, failed {}",
            self.onlined, self.already_online, self.offline, self.failed
        )?;
        if !self.failures.is_empty() {
            write!(f, " ({})", self.failures.join("; "))?;
        }
        Ok(())
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The number of a `memoryN` directory name.
pub fn parse_block_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("memory")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Onlines memory blocks under one sysfs root, one block at a time.
#[derive(Debug)]
pub struct Onliner {
    root: PathBuf,
    kind: OnlineType,
    /// Serialises all onlining: the uevent thread and RPCs share one onliner.
    lock: Mutex<()>,
}

impl Onliner {
    /// An onliner of the blocks under `root` (normally [`MEMORY_SYSFS`]).
    pub fn new(root: impl Into<PathBuf>, kind: OnlineType) -> Self {
        Onliner {
            root: root.into(),
            kind,
            lock: Mutex::new(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn kind(&self) -> OnlineType {
        self.kind
    }

    fn state_path(&self, block: u32) -> PathBuf {
        self.root.join(format!("memory{block}")).join("state")
    }

    fn read_state(&self, block: u32) -> Result<BlockState, MemoryError> {
        let path = self.state_path(block);
        let mut text = String::new();
        fs::File::open(&path)
            .and_then(|f| f.take(MAX_STATE_TEXT).read_to_string(&mut text))
            .map_err(|source| MemoryError::ReadState { path, source })?;
        Ok(BlockState::parse(&text))
    }

    /// Online block `block` if it is offline. Idempotent: an online block is
    /// left alone. A block in another state (going offline) is an error.
    pub fn online_block(&self, block: u32) -> Result<BlockOutcome, MemoryError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.online_block_locked(block)
    }

    fn online_block_locked(&self, block: u32) -> Result<BlockOutcome, MemoryError> {
        let path = self.state_path(block);
        let value = self.kind.state_value();
        match self.read_state(block)? {
            BlockState::Online => return Ok(BlockOutcome::AlreadyOnline),
            BlockState::Offline => {}
            BlockState::Other(state) => {
                return Err(MemoryError::NotOnline { path, value, state });
            }
        }
        // As `echo online > state` does: O_TRUNC, one write.
        let written = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .and_then(|mut f| f.write_all(value.as_bytes()));
        match (written, self.read_state(block)?) {
            (Ok(()), BlockState::Online) => {
                // One short line per block, whoever onlined it: when each block became
                // usable (`make bench` times hot-adds by it).
                tracing::info!("memory: memory{block} online");
                Ok(BlockOutcome::Onlined)
            }
            // Someone else (the kernel, another process) onlined it meanwhile:
            // the write fails with EINVAL, the goal is reached all the same.
            (Err(_), BlockState::Online) => Ok(BlockOutcome::AlreadyOnline),
            (Err(source), _) => Err(MemoryError::WriteState {
                path,
                value,
                source,
            }),
            (Ok(()), state) => Err(MemoryError::NotOnline {
                path,
                value,
                state: state.text().to_string(),
            }),
        }
    }

    /// The block numbers under the root, ascending.
    pub fn list_blocks(&self) -> Result<Vec<u32>, MemoryError> {
        let list_err = |source| MemoryError::List {
            path: self.root.clone(),
            source,
        };
        let mut blocks = Vec::new();
        for entry in fs::read_dir(&self.root).map_err(list_err)? {
            let entry = entry.map_err(list_err)?;
            if let Some(n) = entry.file_name().to_str().and_then(parse_block_name) {
                blocks.push(n);
            }
        }
        blocks.sort_unstable();
        Ok(blocks)
    }

    /// One pass: online every offline block. Per-block failures are in the
    /// report; only failing to list the blocks is an error.
    pub fn online_all(&self) -> Result<OnlineReport, MemoryError> {
        let mut report = OnlineReport::default();
        self.pass(&mut report)?;
        Ok(report)
    }

    /// One pass over the blocks; returns how many blocks it saw.
    fn pass(&self, report: &mut OnlineReport) -> Result<u64, MemoryError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        report.already_online = 0;
        report.offline = 0;
        let blocks = self.list_blocks()?;
        let seen = blocks.len() as u64;
        for block in blocks {
            match self.online_block_locked(block) {
                Ok(BlockOutcome::Onlined) => report.onlined += 1,
                Ok(BlockOutcome::AlreadyOnline) => report.already_online += 1,
                Err(e) => {
                    report.offline += 1;
                    report.fail(block, &e);
                }
            }
        }
        Ok(seen)
    }

    /// Passes until every block is online; fails with the report after
    /// `timeout` if some block still is not.
    pub fn online_all_blocking(&self, timeout: Duration) -> Result<OnlineReport, MemoryError> {
        let start = Instant::now();
        let mut report = OnlineReport::default();
        loop {
            self.pass(&mut report)?;
            if report.offline == 0 {
                return Ok(report);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(MemoryError::Timeout { waited, report });
            }
            std::thread::sleep(RETRY_INTERVAL.min(timeout - waited));
        }
    }

    /// Like [`Onliner::online_all_blocking`], and also waits until the blocks present
    /// cover at least `min_bytes` (blocks × `block_bytes`). The host passes the RAM it has
    /// plugged in total: a hot-add the kernel has not turned into blocks yet is waited for,
    /// instead of "every block is online" being true too early. Blocks cover boot RAM
    /// rounded up to a block, and hot-added RAM comes in whole blocks, so the count reaches
    /// `min_bytes` only once every hot-added block is there.
    pub fn online_all_covering(
        &self,
        min_bytes: u64,
        block_bytes: u64,
        timeout: Duration,
    ) -> Result<OnlineReport, MemoryError> {
        let start = Instant::now();
        let mut report = OnlineReport::default();
        loop {
            let present = self.pass(&mut report)?;
            if report.offline == 0 && blocks_cover(present, block_bytes, min_bytes) {
                return Ok(report);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(MemoryError::Timeout { waited, report });
            }
            std::thread::sleep(RETRY_INTERVAL.min(timeout - waited));
        }
    }
}

/// Whether `blocks` blocks of `block_bytes` cover `min_bytes` (no overflow).
pub fn blocks_cover(blocks: u64, block_bytes: u64, min_bytes: u64) -> bool {
    blocks.saturating_mul(block_bytes) >= min_bytes
}

/// Called after memory has been onlined (see [`set_grown_hook`]).
pub type GrownHook = Box<dyn Fn() + Send + Sync>;

static GROWN_HOOK: Mutex<Option<GrownHook>> = Mutex::new(None);

/// What to run whenever hot-added memory has been onlined (by the uevent thread after a
/// burst, or by OnlineCPUMem): the sandbox uses it so its cgroup follows the guest's total.
/// `None` removes it.
pub fn set_grown_hook(hook: Option<GrownHook>) {
    *GROWN_HOOK.lock().unwrap_or_else(PoisonError::into_inner) = hook;
}

/// Runs the hook of [`set_grown_hook`], if any.
pub fn memory_grown() {
    if let Some(hook) = GROWN_HOOK
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
    {
        hook();
    }
}

static SYSTEM: OnceLock<Arc<Onliner>> = OnceLock::new();

/// Make the onliner of [`MEMORY_SYSFS`] with `kind` the process-wide one
/// (init does, from `agent.mem_online`). The first call wins; it returns
/// the onliner in place.
pub fn set_system(kind: OnlineType) -> Arc<Onliner> {
    SYSTEM
        .get_or_init(|| Arc::new(Onliner::new(MEMORY_SYSFS, kind)))
        .clone()
}

/// The process-wide onliner of [`MEMORY_SYSFS`] (what RPCs use, so all
/// onlining shares one lock). `OnlineType::Online` unless init set it.
pub fn system() -> Arc<Onliner> {
    set_system(OnlineType::default())
}

/// `MemTotal` of a /proc/meminfo text, in KiB.
pub fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The guest's `MemTotal` in KiB, from /proc/meminfo.
pub fn mem_total_kib() -> Option<u64> {
    fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(parse_mem_total_kib)
}

#[cfg(test)]
mod tests;
