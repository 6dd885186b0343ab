//! Guest CPUs for vCPU hot-plug: onlining the CPUs the kernel added (offline) after
//! the VMM's ACPI notification, and preparing a removal (out of every cgroup cpuset
//! that names the CPU, then offline), so that the kernel's own offline on the Eject
//! Request finds nothing to refuse.
//!
//! The sandbox cgroup never writes `cpuset.cpus`: an empty one means the parent's
//! effective set, so it follows the online CPUs by itself.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the kernel describes CPUs.
pub const CPU_SYSFS: &str = "/sys/devices/system/cpu";

/// How deep the cpuset walk goes below the cgroup root (sandbox/container/...).
const MAX_CGROUP_DEPTH: usize = 6;
/// Most cgroup directories the walk looks at.
const MAX_CGROUPS: usize = 4096;
/// How often a wait looks at the CPUs again.
const POLL: Duration = Duration::from_millis(5);

/// Why CPUs could not be onlined or offlined.
#[derive(Debug, thiserror::Error)]
pub enum CpuError {
    #[error("read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{}: bad CPU list {text:?}", path.display())]
    BadList { path: PathBuf, text: String },
    #[error("CPU {cpu}: cannot offline it (the kernel refused)")]
    Offline {
        cpu: u32,
        #[source]
        source: io::Error,
    },
    #[error("CPU {cpu} is not present in the guest")]
    NotPresent { cpu: u32 },
    #[error("only {online} of {wanted} CPUs online after {} s", waited.as_secs())]
    Timeout {
        online: u32,
        wanted: u32,
        waited: Duration,
    },
}

/// The CPUs in a kernel CPU list (`0-3,5,7-8`), ascending, at most `limit` of them
/// (the kernel's lists are small; a hostile file cannot make this allocate more). Pure.
pub fn parse_cpu_list(text: &str, limit: u32) -> Option<Vec<u32>> {
    let text = text.trim();
    let mut out = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let n = part.trim().parse::<u32>().ok()?;
                (n, n)
            }
        };
        if last < first || last >= limit {
            return None;
        }
        out.extend(first..=last);
    }
    out.sort_unstable();
    out.dedup();
    Some(out)
}

/// A CPU list in the kernel's form (`0-2,5`). Pure.
pub fn format_cpu_list(cpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let start = cpus[i];
        let mut end = start;
        while i + 1 < cpus.len() && cpus[i + 1] == end.saturating_add(1) {
            i += 1;
            end = cpus[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// `list` without `removed`, or `None` when it names none of them. Pure.
pub fn without_cpus(list: &str, removed: &[u32]) -> Option<String> {
    let cpus = parse_cpu_list(list, u32::MAX)?;
    if !cpus.iter().any(|c| removed.contains(c)) {
        return None;
    }
    let kept: Vec<u32> = cpus.into_iter().filter(|c| !removed.contains(c)).collect();
    Some(format_cpu_list(&kept))
}

/// The kernel's CPU directory (`/sys/devices/system/cpu`) and the cgroup2 root.
#[derive(Debug, Clone)]
pub struct CpuPaths {
    pub sysfs: PathBuf,
    pub cgroup_root: PathBuf,
}

impl CpuPaths {
    fn online_file(&self, cpu: u32) -> PathBuf {
        self.sysfs.join(format!("cpu{cpu}/online"))
    }

    /// The online CPUs (`online`).
    pub fn online(&self) -> Result<Vec<u32>, CpuError> {
        let path = self.sysfs.join("online");
        let text = fs::read_to_string(&path).map_err(|source| CpuError::Read {
            path: path.clone(),
            source,
        })?;
        parse_cpu_list(&text, MAX_CPUS).ok_or(CpuError::BadList { path, text })
    }

    /// Writes 1 to `cpuN/online` of every present CPU that reads 0. Returns how many.
    pub fn online_present(&self) -> u32 {
        let Ok(entries) = fs::read_dir(&self.sysfs) else {
            return 0;
        };
        let mut onlined = 0;
        for e in entries.flatten().take(MAX_CPUS as usize + 64) {
            let name = e.file_name();
            let Some(cpu) = name
                .to_str()
                .and_then(|n| n.strip_prefix("cpu"))
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let file = self.online_file(cpu);
            match fs::read_to_string(&file) {
                Ok(s) if s.trim() == "0" => match fs::write(&file, "1") {
                    Ok(()) => {
                        tracing::info!("cpu: CPU {cpu} online");
                        onlined += 1;
                    }
                    Err(err) => tracing::warn!("cpu: CPU {cpu}: cannot online it: {err}"),
                },
                _ => {}
            }
        }
        onlined
    }

    /// Onlines the present CPUs until at least `wanted` are online, for at most `timeout`.
    pub fn wait_online(&self, wanted: u32, timeout: Duration) -> Result<u32, CpuError> {
        let start = Instant::now();
        loop {
            self.online_present();
            let online = u32::try_from(self.online()?.len()).unwrap_or(u32::MAX);
            if online >= wanted {
                return Ok(online);
            }
            if start.elapsed() >= timeout {
                return Err(CpuError::Timeout {
                    online,
                    wanted,
                    waited: timeout,
                });
            }
            std::thread::sleep(POLL);
        }
    }

    /// Prepares the removal of every online CPU from `keep` up: out of each cgroup
    /// cpuset naming it, then offline, highest first. A CPU the kernel refuses to
    /// offline is an error naming it; the CPUs offlined before it are onlined again.
    pub fn offline_from(&self, keep: u32) -> Result<Vec<u32>, CpuError> {
        let mut going: Vec<u32> = self.online()?.into_iter().filter(|&c| c >= keep).collect();
        going.reverse();
        if going.is_empty() {
            return Ok(going);
        }
        self.drop_from_cpusets(&going);
        let mut done = Vec::new();
        for &cpu in &going {
            let file = self.online_file(cpu);
            if !file.exists() {
                self.undo(&done);
                return Err(CpuError::NotPresent { cpu });
            }
            if let Err(source) = fs::write(&file, "0") {
                self.undo(&done);
                return Err(CpuError::Offline { cpu, source });
            }
            tracing::info!("cpu: CPU {cpu} offline");
            done.push(cpu);
        }
        Ok(done)
    }

    fn undo(&self, offlined: &[u32]) {
        for &cpu in offlined {
            if let Err(e) = fs::write(self.online_file(cpu), "1") {
                tracing::warn!("cpu: CPU {cpu}: cannot online it again: {e}");
            }
        }
    }

    /// Rewrites every `cpuset.cpus` below the cgroup root that names one of `cpus`.
    fn drop_from_cpusets(&self, cpus: &[u32]) {
        let mut stack = vec![(self.cgroup_root.clone(), 0usize)];
        let mut seen = 0;
        while let Some((dir, depth)) = stack.pop() {
            seen += 1;
            if seen > MAX_CGROUPS {
                tracing::warn!("cpu: more than {MAX_CGROUPS} cgroups: the rest keep their cpusets");
                return;
            }
            let file = dir.join("cpuset.cpus");
            if let Ok(text) = fs::read_to_string(&file) {
                if let Some(kept) = without_cpus(&text, cpus) {
                    match fs::write(&file, &kept) {
                        Ok(()) => tracing::info!(
                            "cpu: {}: cpuset.cpus {} -> {kept:?}",
                            dir.display(),
                            text.trim()
                        ),
                        Err(e) => tracing::warn!("cpu: {}: {e}", file.display()),
                    }
                }
            }
            if depth >= MAX_CGROUP_DEPTH {
                continue;
            }
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                        stack.push((e.path(), depth + 1));
                    }
                }
            }
        }
    }
}

/// Most CPUs a list may name (KVM's x86 limit).
pub const MAX_CPUS: u32 = 4096;

/// Counts the CPUs of `<sysfs>/online`.
pub fn online_count(sysfs: &Path) -> Result<u32, CpuError> {
    let paths = CpuPaths {
        sysfs: sysfs.to_path_buf(),
        cgroup_root: PathBuf::new(),
    };
    Ok(u32::try_from(paths.online()?.len()).unwrap_or(u32::MAX))
}

#[cfg(test)]
mod tests;
