//! `host-vmm agent check|details <id>`: talk to a running sandbox's agent.

use anyhow::Context;
use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::sandbox::{runtime_root, RuntimeDir};

fn connect(id: &str) -> anyhow::Result<AgentClient> {
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .with_context(|| format!("sandbox {id}: cannot reach the agent"))
}

/// `Health.Check` and `Health.Version`: prints `SERVING` and the versions.
pub fn check(id: &str) -> anyhow::Result<String> {
    let agent = connect(id)?;
    agent
        .check()
        .with_context(|| format!("sandbox {id}: health check"))?;
    let v = agent
        .version()
        .with_context(|| format!("sandbox {id}: version"))?;
    Ok(format!(
        "SERVING agent_version={} protocol_version={}\n",
        v.agent_version, v.protocol_version
    ))
}

/// `GetGuestDetails`, one `key=value` per line.
pub fn details(id: &str) -> anyhow::Result<String> {
    let d = connect(id)?
        .guest_details()
        .with_context(|| format!("sandbox {id}: guest details"))?;
    let block = d
        .mem_block_size
        .map_or_else(|| "none".to_string(), |b| b.to_string());
    Ok(format!(
        "mem_block_size_bytes={block}\nmem_hotplug_probe={}\nkernel_version={}\nagent_version={}\ninit_daemon={}\n",
        d.mem_hotplug_probe, d.kernel_version, d.agent_version, d.init_daemon
    ))
}
