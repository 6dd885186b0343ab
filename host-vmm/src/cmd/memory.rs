//! `host-vmm memory <id> [--add SIZE | --set TOTAL]`: a running sandbox's RAM.

use anyhow::{bail, Context};
use host_vmm::api::{self, MemoryStatus, Request, Response};
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use host_vmm::units::parse_size;

/// What to do.
pub enum MemoryOp {
    Show,
    Add(String),
    Set(String),
}

pub fn memory(id: &str, op: MemoryOp) -> anyhow::Result<String> {
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
    match api::request(&dir.api_socket(), &request).with_context(|| format!("sandbox {id}"))? {
        Response::Memory(m) => Ok(render(&m)),
        Response::Error { message } => bail!("sandbox {id}: {message}"),
    }
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
