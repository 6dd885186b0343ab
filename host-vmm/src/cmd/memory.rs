//! `host-vmm memory <id> [--add SIZE | --set TOTAL] [--no-wait]`: a running sandbox's RAM.
//!
//! A hot-add has two halves, timed separately: the VMM's (map the RAM, register the KVM
//! slot, raise the GED interrupt; the control socket answers when that is done) and the
//! guest's (the kernel adds the blocks, the agent onlines them; `OnlineCPUMem` answers
//! once the blocks cover the new total and all are online). Without `--no-wait` the
//! command returns only when the memory is usable in the guest, as Kata's hotplug does.

use std::time::Instant;

use anyhow::Context;
use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::api::{self, MemoryStatus, Request};
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use host_vmm::units::parse_size;

/// What to do.
pub enum MemoryOp {
    Show,
    Add(String),
    Set(String),
}

pub fn memory(id: &str, op: MemoryOp, wait: bool) -> anyhow::Result<String> {
    let adds = !matches!(op, MemoryOp::Show);
    let request = match op {
        MemoryOp::Show => Request::MemoryInfo,
        MemoryOp::Add(size) => Request::MemoryAdd {
            bytes: parse_size(&size).context("--add")?,
        },
        MemoryOp::Set(total) => Request::MemorySet {
            total_bytes: parse_size(&total).context("--set")?,
        },
    };
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    let start = Instant::now();
    let status = api::memory_request(&dir.api_socket(), &request)
        .with_context(|| format!("sandbox {id}"))?;
    let mut text = render(&status);
    if adds {
        text.push_str(&format!("vmm_ms={}\n", start.elapsed().as_millis()));
    }
    if adds && wait {
        let guest_start = Instant::now();
        wait_online(&dir, status.total_bytes)
            .with_context(|| format!("sandbox {id}: the guest did not online the new memory"))?;
        text.push_str(&format!("guest_ms={}\n", guest_start.elapsed().as_millis()));
    }
    Ok(text)
}

/// Asks the agent to online everything and return once `total_bytes` are usable.
fn wait_online(dir: &RuntimeDir, total_bytes: u64) -> anyhow::Result<()> {
    let agent = AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .context("cannot reach the agent")?;
    agent.online_cpu_mem(total_bytes).context("OnlineCPUMem")?;
    Ok(())
}

/// One `key=value` per line, sizes in MiB.
fn render(m: &MemoryStatus) -> String {
    let mib = |b: u64| b >> 20;
    format!(
        "boot_mib={}\nhotplugged_mib={}\ntotal_mib={}\nmax_mib={}\nslots_used={}\nslots_free={}\nslots_total={}\nblock_mib={}\n",
        mib(m.boot_bytes),
        mib(m.hotplugged_bytes),
        mib(m.total_bytes),
        mib(m.max_bytes),
        m.slots_used,
        m.slots_total.saturating_sub(m.slots_used),
        m.slots_total,
        mib(m.block_bytes),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_render_memory_status() {
        let m = MemoryStatus {
            boot_bytes: 512 << 20,
            hotplugged_bytes: 1 << 30,
            total_bytes: 1536 << 20,
            max_bytes: 2 << 30,
            slots_total: 4,
            slots_used: 2,
            block_bytes: 128 << 20,
        };
        let text = render(&m);
        assert!(text.contains("total_mib=1536\n"), "{text}");
        assert!(text.contains("slots_free=2\n"), "{text}");
        assert!(text.contains("block_mib=128\n"), "{text}");
    }
}
