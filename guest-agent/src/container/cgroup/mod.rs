//! cgroup v2 for containers, by writing the interface files directly (no cgroups-rs: 0.4+
//! pulls zbus, and 0.3 has no cgroup v2 device support; measured in ARCHITECTURE.md). The
//! device allow-list is `container::devices`.
//!
//! Layout: `<root>/sandbox` for the pod, with the controllers the root offers enabled in its
//! `cgroup.subtree_control`, and one child `<root>/sandbox/<container id>` per container. The
//! sandbox cgroup itself never holds processes (cgroup v2's no-internal-process rule).
//! `<root>` is a parameter so tests run against a fake tree in a temp directory.

mod resources;
mod stats;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use resources::{resource_writes, shares_to_weight, swap_max};
pub use stats::{CgroupStats, IoStat};

use crate::cgroup_root as root_cgroups;
use crate::container::spec::{Resources, SpecError};

/// The pod's cgroup under the cgroup2 root.
pub const SANDBOX_CGROUP: &str = "sandbox";

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error("create cgroup {path}")]
    Create {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cgroup {path} already exists")]
    Exists { path: String },
    #[error("enable controllers in {path}: {detail}")]
    Controllers { path: String, detail: String },
    #[error("write {value:?} to {path}")]
    Write {
        path: String,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("remove cgroup {path}")]
    Remove {
        path: String,
        #[source]
        source: io::Error,
    },
}

/// The cgroup2 tree the engine works in.
#[derive(Debug, Clone)]
pub struct CgroupTree {
    root: PathBuf,
}

impl CgroupTree {
    /// A tree rooted at `root` (`/sys/fs/cgroup` in the guest).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn sandbox_path(&self) -> PathBuf {
        self.root.join(SANDBOX_CGROUP)
    }

    /// Creates the sandbox cgroup (or keeps an existing one) and enables in it every
    /// controller it is offered that the agent wants. Returns the controllers that failed.
    pub fn create_sandbox(&self) -> Result<Vec<String>, CgroupError> {
        let path = self.sandbox_path();
        make_dir(&path, true)?;
        let (_plan, failures) =
            root_cgroups::enable(&path).map_err(|e| CgroupError::Controllers {
                path: path.display().to_string(),
                detail: crate::error_chain::error_chain(&e),
            })?;
        Ok(failures
            .iter()
            .map(|f| crate::error_chain::error_chain(f))
            .collect())
    }

    /// Sets the sandbox cgroup's `memory.max` (every container together).
    pub fn set_sandbox_memory_max(&self, bytes: u64) -> Result<(), CgroupError> {
        let path = self.sandbox_path().join("memory.max");
        let value = bytes.to_string();
        fs::write(&path, &value).map_err(|source| CgroupError::Write {
            path: path.display().to_string(),
            value,
            source,
        })
    }

    /// Sets the sandbox cgroup's `pids.max` (every container together).
    pub fn set_sandbox_pids_max(&self, tasks: u64) -> Result<(), CgroupError> {
        let path = self.sandbox_path().join("pids.max");
        let value = tasks.to_string();
        fs::write(&path, &value).map_err(|source| CgroupError::Write {
            path: path.display().to_string(),
            value,
            source,
        })
    }

    /// Creates the cgroup of container `id` (which must not exist yet).
    pub fn create_container(&self, id: &str) -> Result<ContainerCgroup, CgroupError> {
        let path = self.sandbox_path().join(id);
        make_dir(&path, false)?;
        Ok(ContainerCgroup { path })
    }

    /// Removes the (empty) sandbox cgroup.
    pub fn remove_sandbox(&self) -> Result<(), CgroupError> {
        remove_dir(&self.sandbox_path(), Duration::ZERO)
    }
}

/// One container's cgroup.
#[derive(Debug)]
pub struct ContainerCgroup {
    path: PathBuf,
}

impl ContainerCgroup {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The cgroup's path as `/proc/<pid>/cgroup` shows it (`/sandbox/<id>`), given the root.
    pub fn relative_to(&self, root: &Path) -> String {
        match self.path.strip_prefix(root) {
            Ok(rel) => format!("/{}", rel.display()),
            Err(_) => self.path.display().to_string(),
        }
    }

    /// Writes the limits of `resources` (`field` names it in errors). Values are checked
    /// before any file is written.
    pub fn apply(&self, resources: &Resources, field: &str) -> Result<(), CgroupError> {
        for (file, value) in resource_writes(resources, field)? {
            self.write(file, &value)?;
        }
        Ok(())
    }

    /// Moves process `pid` into this cgroup.
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        self.write("cgroup.procs", &pid.to_string())
    }

    /// The pids in the cgroup.
    pub fn processes(&self) -> Result<Vec<i32>, CgroupError> {
        Ok(self
            .read("cgroup.procs")?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect())
    }

    /// Sends `signal` to every process of the cgroup. SIGKILL goes through `cgroup.kill`
    /// (atomic against forks); other signals one pid at a time.
    pub fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        if signal == libc::SIGKILL && self.path.join("cgroup.kill").exists() {
            return self.write("cgroup.kill", "1");
        }
        for pid in self.processes()? {
            // SAFETY: kill takes plain integers. A process that exited meanwhile is ESRCH.
            unsafe { libc::kill(pid, signal) };
        }
        Ok(())
    }

    /// Reads the statistics; files the kernel lacks read as zero.
    pub fn stats(&self) -> Result<CgroupStats, CgroupError> {
        if !self.path.is_dir() {
            return Err(CgroupError::Read {
                path: self.path.display().to_string(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        let text = |file: &str| self.read(file).unwrap_or_default();
        let cpu = text("cpu.stat");
        let keyed = |key| stats::keyed_value(&cpu, key).unwrap_or(0);
        Ok(CgroupStats {
            cpu_usage_usec: keyed("usage_usec"),
            cpu_user_usec: keyed("user_usec"),
            cpu_system_usec: keyed("system_usec"),
            cpu_nr_throttled: keyed("nr_throttled"),
            cpu_throttled_usec: keyed("throttled_usec"),
            memory_current: stats::limit_value(&text("memory.current")).unwrap_or(0),
            memory_max: stats::limit_value(&text("memory.max")),
            memory_swap_current: stats::limit_value(&text("memory.swap.current")).unwrap_or(0),
            pids_current: stats::limit_value(&text("pids.current")).unwrap_or(0),
            pids_max: stats::limit_value(&text("pids.max")),
            oom_kills: stats::keyed_value(&text("memory.events"), "oom_kill").unwrap_or(0),
            io: stats::parse_io_stat(&text("io.stat")),
        })
    }

    /// Removes the cgroup, retrying while it is busy (its last processes are still exiting)
    /// for up to `timeout`. Removing a cgroup that is already gone succeeds.
    pub fn remove(&self, timeout: Duration) -> Result<(), CgroupError> {
        remove_dir(&self.path, timeout)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), CgroupError> {
        let path = self.path.join(file);
        fs::write(&path, value).map_err(|source| CgroupError::Write {
            path: path.display().to_string(),
            value: value.to_string(),
            source,
        })
    }

    fn read(&self, file: &str) -> Result<String, CgroupError> {
        let path = self.path.join(file);
        fs::read_to_string(&path).map_err(|source| CgroupError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

fn make_dir(path: &Path, exist_ok: bool) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && exist_ok => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(CgroupError::Exists {
            path: path.display().to_string(),
        }),
        Err(source) => Err(CgroupError::Create {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn remove_dir(path: &Path, timeout: Duration) -> Result<(), CgroupError> {
    let deadline = Instant::now() + timeout;
    loop {
        match fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(source) => {
                return Err(CgroupError::Remove {
                    path: path.display().to_string(),
                    source,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::spec::{MemoryResources, PidsResources};
    use crate::container::testutil::TempDir;

    /// A fake cgroup2 root offering every controller.
    fn fake_root() -> (TempDir, CgroupTree) {
        let dir = TempDir::new("cgroup");
        fs::write(
            dir.path().join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        let tree = CgroupTree::new(dir.path());
        (dir, tree)
    }

    /// What the kernel creates in a new cgroup directory.
    fn populate(dir: &Path) {
        fs::write(
            dir.join("cgroup.controllers"),
            "cpuset cpu io memory pids\n",
        )
        .unwrap();
        fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    }

    #[test]
    fn test_create_sandbox_enables_controllers() {
        let (_dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        populate(&tree.sandbox_path());
        let failures = tree.create_sandbox().unwrap();
        assert!(failures.is_empty(), "{failures:?}");
        // A plain file keeps only the last write; the real one accumulates.
        assert_eq!(
            fs::read_to_string(tree.sandbox_path().join("cgroup.subtree_control")).unwrap(),
            "+pids"
        );
    }

    #[test]
    fn test_create_container_twice_is_an_error() {
        let (_dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        let cg = tree.create_container("c1").unwrap();
        assert_eq!(cg.path(), tree.sandbox_path().join("c1"));
        assert!(matches!(
            tree.create_container("c1"),
            Err(CgroupError::Exists { .. })
        ));
    }

    #[test]
    fn test_apply_writes_mapped_values() {
        let (dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        let cg = tree.create_container("c1").unwrap();
        let res = Resources {
            memory: Some(MemoryResources {
                limit: Some(64 << 20),
                swap: Some(64 << 20),
                ..Default::default()
            }),
            pids: Some(PidsResources { limit: Some(32) }),
            ..Default::default()
        };
        cg.apply(&res, "linux.resources").unwrap();
        let read = |f: &str| fs::read_to_string(cg.path().join(f)).unwrap();
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("memory.swap.max"), "0");
        assert_eq!(read("pids.max"), "32");
        assert_eq!(cg.relative_to(dir.path()), "/sandbox/c1");
    }

    #[test]
    fn test_apply_checks_all_values_before_writing() {
        let (_dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        let cg = tree.create_container("c1").unwrap();
        let res = Resources {
            memory: Some(MemoryResources {
                limit: Some(-7),
                swap: None,
                ..Default::default()
            }),
            pids: Some(PidsResources { limit: Some(32) }),
            ..Default::default()
        };
        let err = cg.apply(&res, "resources").unwrap_err();
        assert_eq!(
            err.to_string(),
            "resources.memory.limit: must be -1 (unlimited) or a byte count, not -7"
        );
        assert!(!cg.path().join("pids.max").exists());
    }

    #[test]
    fn test_stats_reads_fake_files() {
        let (_dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        let cg = tree.create_container("c1").unwrap();
        let write = |f: &str, v: &str| fs::write(cg.path().join(f), v).unwrap();
        write(
            "cpu.stat",
            "usage_usec 300\nuser_usec 200\nsystem_usec 100\n",
        );
        write("memory.current", "4096\n");
        write("memory.max", "max\n");
        write("pids.current", "3\n");
        write("pids.max", "64\n");
        write("io.stat", "254:0 rbytes=1 wbytes=2 rios=3 wios=4\n");
        write("memory.events", "low 0\nmax 4\noom 1\noom_kill 1\n");
        let s = cg.stats().unwrap();
        assert_eq!(s.oom_kills, 1);
        assert_eq!(s.cpu_usage_usec, 300);
        assert_eq!(s.cpu_system_usec, 100);
        assert_eq!(s.memory_current, 4096);
        assert_eq!(s.memory_max, None);
        assert_eq!((s.pids_current, s.pids_max), (3, Some(64)));
        assert_eq!(s.io.len(), 1);
        assert_eq!(s.memory_swap_current, 0);
    }

    #[test]
    fn test_processes_and_remove() {
        let (_dir, tree) = fake_root();
        fs::create_dir(tree.sandbox_path()).unwrap();
        let cg = tree.create_container("c1").unwrap();
        cg.add_process(42).unwrap();
        assert_eq!(cg.processes().unwrap(), vec![42]);
        fs::remove_file(cg.path().join("cgroup.procs")).unwrap();
        cg.remove(Duration::ZERO).unwrap();
        assert!(!cg.path().exists());
        // Already gone: fine.
        cg.remove(Duration::ZERO).unwrap();
        assert!(cg.stats().is_err());
        tree.remove_sandbox().unwrap();
    }
}
