//! OnlineCPUMem and OfflineCpus. CPUs: with `nb_cpus`, the agent onlines every present
//! offline CPU (hot-added ones arrive offline) until that many are online (with `wait`;
//! without, it onlines what is there and checks). OfflineCpus prepares a vCPU removal
//! (`crate::cpus`). Memory: hot-added memory blocks are onlined by the agent's onliner
//! (`crate::memory`, in the `agent.mem_online` mode); with `wait` the call returns once no
//! block is offline and, when the host gives `memory_bytes` (the RAM it has plugged in
//! total), once the blocks cover that much: a hot-add the kernel has not turned into blocks
//! yet is waited for. Without `wait` it returns right after starting a pass.

use std::sync::Arc;
use std::time::Duration;

use protocol::agent::*;
use protocol::Empty;

use super::{Agent, RpcError};
use crate::cpus::CpuError;
use crate::error_chain::error_chain;
use crate::memory::{self, MemoryError, Onliner};

/// Where the kernel describes CPUs.
pub use crate::cpus::CPU_SYSFS;
/// How long a waiting OnlineCPUMem keeps trying (a hot-add of many GiB is onlined one
/// block at a time; nested, a 1 GiB add takes under a second).
pub const ONLINE_TIMEOUT: Duration = Duration::from_secs(30);

pub fn online_cpu_mem(agent: &Agent, req: OnlineCPUMemRequest) -> Result<Empty, RpcError> {
    if req.nb_cpus > 0 {
        online_cpus(agent, req.nb_cpus, req.wait)?;
    }
    if req.cpu_only {
        return Ok(Empty::new());
    }
    let onliner = agent.onliner.clone().unwrap_or_else(memory::system);
    if req.wait {
        let report = if req.memory_bytes > 0 {
            let block = crate::guest_details::read_block_size(onliner.root())
                .map_err(|e| RpcError::Internal(error_chain(&e)))?
                .ok_or_else(|| {
                    RpcError::InvalidArgument(
                        "memory_bytes: this guest has no memory block size (no memory hotplug)"
                            .into(),
                    )
                })?;
            onliner.online_all_covering(req.memory_bytes, block, ONLINE_TIMEOUT)
        } else {
            onliner.online_all_blocking(ONLINE_TIMEOUT)
        }
        .map_err(memory_error)?;
        match memory::mem_total_kib() {
            Some(kib) => tracing::info!("memory: OnlineCPUMem: {report}, MemTotal now {kib} kB"),
            None => tracing::info!("memory: OnlineCPUMem: {report}"),
        }
        // Before the reply, so the host sees the sandbox's new limit in place.
        memory::memory_grown();
    } else {
        std::thread::Builder::new()
            .name("online-memory".into())
            .spawn(move || online_in_background(&onliner))
            .map_err(RpcError::io("start the memory onlining thread"))?;
    }
    Ok(Empty::new())
}

fn online_in_background(onliner: &Arc<Onliner>) {
    match onliner.online_all_blocking(ONLINE_TIMEOUT) {
        Ok(report) => tracing::info!("OnlineCPUMem: {report}"),
        Err(e) => tracing::warn!("OnlineCPUMem: {}", error_chain(&e)),
    }
}

fn memory_error(e: MemoryError) -> RpcError {
    match e {
        MemoryError::Timeout { .. } => RpcError::DeadlineExceeded(error_chain(&e)),
        _ => RpcError::Internal(error_chain(&e)),
    }
}

/// Onlines the present CPUs until `wanted` are online (`wait`), or checks once.
fn online_cpus(agent: &Agent, wanted: u32, wait: bool) -> Result<(), RpcError> {
    let paths = agent.cpu_paths();
    let timeout = if wait { ONLINE_TIMEOUT } else { Duration::ZERO };
    let online = paths.wait_online(wanted, timeout).map_err(|e| match e {
        CpuError::Timeout { .. } => RpcError::DeadlineExceeded(error_chain(&e)),
        _ => RpcError::Internal(error_chain(&e)),
    })?;
    tracing::info!("cpu: OnlineCPUMem: {online} CPUs online (asked {wanted})");
    Ok(())
}

/// OfflineCpus: CPUs from `keep` up out of every cpuset, then offline.
pub fn offline_cpus(agent: &Agent, req: OfflineCpusRequest) -> Result<Empty, RpcError> {
    if req.keep == 0 {
        return Err(RpcError::InvalidArgument(
            "keep: at least one CPU stays online".into(),
        ));
    }
    let done = agent
        .cpu_paths()
        .offline_from(req.keep)
        .map_err(|e| RpcError::FailedPrecondition(error_chain(&e)))?;
    tracing::info!(
        "cpu: OfflineCpus: offlined {done:?}, keeping 0..{}",
        req.keep
    );
    Ok(Empty::new())
}

/// The number of CPUs in a kernel CPU list (`0-3,5,7-8`). Pure.
pub fn count_cpu_list(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    let mut count = 0u32;
    for part in text.split(',') {
        let (first, last) = match part.split_once('-') {
            Some((a, b)) => (a.parse::<u32>().ok()?, b.parse::<u32>().ok()?),
            None => {
                let n = part.parse::<u32>().ok()?;
                (n, n)
            }
        };
        count = count.checked_add(last.checked_sub(first)?.checked_add(1)?)?;
    }
    Some(count)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::container::testutil::TempDir;
    use crate::memory::OnlineType;
    use protocol::ttrpc::Code;

    #[test]
    fn test_count_cpu_list() {
        assert_eq!(count_cpu_list("0\n"), Some(1));
        assert_eq!(count_cpu_list("0-3\n"), Some(4));
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list(""), Some(0));
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
    }

    fn fake_agent(dir: &TempDir) -> Agent {
        let cpu = dir.path().join("cpu");
        let mem = dir.path().join("memory");
        for (block, state) in [(0, "online"), (1, "offline"), (2, "offline")] {
            let d = mem.join(format!("memory{block}"));
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("state"), state).unwrap();
        }
        fs::create_dir_all(&cpu).unwrap();
        fs::write(cpu.join("online"), "0-1\n").unwrap();
        Agent::new(None)
            .with_cpu_sysfs(cpu)
            .with_onliner(Arc::new(Onliner::new(mem, OnlineType::Movable)))
    }

    fn state(dir: &TempDir, block: u32) -> String {
        fs::read_to_string(dir.path().join(format!("memory/memory{block}/state"))).unwrap()
    }

    #[test]
    fn test_wait_onlines_every_block_in_the_configured_mode() {
        let dir = TempDir::new("hotplug-wait");
        let agent = fake_agent(&dir);
        let mut req = OnlineCPUMemRequest::new();
        req.wait = true;
        online_cpu_mem(&agent, req).unwrap();
        assert_eq!(state(&dir, 1), "online_movable");
        assert_eq!(state(&dir, 2), "online_movable");
        assert_eq!(state(&dir, 0), "online");
    }

    #[test]
    fn test_memory_bytes_waits_for_the_blocks_to_cover_it() {
        let dir = TempDir::new("hotplug-cover");
        let agent = fake_agent(&dir);
        fs::write(dir.path().join("memory/block_size_bytes"), "8000000\n").unwrap();
        let mut req = OnlineCPUMemRequest::new();
        req.wait = true;
        // Three blocks of 128 MiB are there: 384 MiB is covered at once.
        req.memory_bytes = 384 << 20;
        online_cpu_mem(&agent, req.clone()).unwrap();
        assert_eq!(state(&dir, 2), "online_movable");
        // A fourth block appears later; the call waits for it and onlines it.
        let block = dir.path().join("memory/memory3");
        let adder = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            fs::create_dir_all(&block).unwrap();
            fs::write(block.join("state"), "offline").unwrap();
        });
        req.memory_bytes = 512 << 20;
        online_cpu_mem(&agent, req).unwrap();
        adder.join().unwrap();
        assert_eq!(state(&dir, 3), "online_movable");
    }

    #[test]
    fn test_memory_bytes_without_block_size_is_refused() {
        let dir = TempDir::new("hotplug-noblock");
        let agent = fake_agent(&dir);
        let mut req = OnlineCPUMemRequest::new();
        req.wait = true;
        req.memory_bytes = 1 << 30;
        let e = online_cpu_mem(&agent, req).unwrap_err();
        assert_eq!(e.code(), Code::INVALID_ARGUMENT);
        assert!(e.to_string().contains("memory_bytes"), "{e}");
    }

    #[test]
    fn test_offline_cpus_refuses_keep_zero() {
        let dir = TempDir::new("hotplug-offline");
        let agent = fake_agent(&dir);
        let e = offline_cpus(&agent, OfflineCpusRequest::new()).unwrap_err();
        assert_eq!(e.code(), Code::INVALID_ARGUMENT);
    }

    #[test]
    fn test_cpus_online_without_wait_is_checked_once() {
        let dir = TempDir::new("hotplug-cpu");
        let agent = fake_agent(&dir);
        let mut req = OnlineCPUMemRequest::new();
        req.cpu_only = true;
        req.nb_cpus = 2;
        online_cpu_mem(&agent, req.clone()).unwrap();
        // cpu_only: memory untouched.
        assert_eq!(state(&dir, 1), "offline");
        req.nb_cpus = 3;
        let e = online_cpu_mem(&agent, req).unwrap_err();
        assert_eq!(e.code(), Code::DEADLINE_EXCEEDED);
        assert!(e.to_string().contains("only 2 of 3 CPUs online"), "{e}");
        assert_eq!(state(&dir, 1), "offline");
    }
}
