//! `host-vmm update <sandbox> <container> [--memory MiB] [--cpus N] [--pids-limit N]`:
//! change a running container's limits (UpdateContainer, cgroup v2 in the guest, live).
//!
//! A memory limit above what the sandbox has grows the sandbox first, as `run --memory`
//! does: the VMM hot-adds whole memory blocks (control socket) and the agent onlines them
//! (OnlineCPUMem) before the new limit is set, so the container can use it at once.

use anyhow::{bail, Context};
use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::api::{self, MemoryStatus, Request};
use host_vmm::oci::spec::apply_resources;
use host_vmm::oci::ResourceOptions;
use host_vmm::sandbox::{runtime_root, RuntimeDir};
use protocol::agent::UpdateContainerRequest;
use serde_json::{json, Value};

/// What `update` needs.
pub struct UpdateRequest {
    pub sandbox: String,
    pub container: String,
    pub resources: ResourceOptions,
}

/// The OCI `linux.resources` object for `opts` (checked: the errors name the flag).
pub fn resources_json(opts: &ResourceOptions) -> anyhow::Result<Value> {
    if opts.memory_mib.is_none() && opts.cpus.is_none() && opts.pids_limit.is_none() {
        bail!("nothing to update: give --memory, --cpus or --pids-limit");
    }
    let mut spec = json!({});
    apply_resources(&mut spec, opts)?;
    Ok(spec["linux"]["resources"].take())
}

/// The sandbox total that holds a limit of `limit_bytes`: `None` when `status` already
/// has enough, else the current total plus the shortfall rounded up to whole blocks.
pub fn total_for_limit(status: &MemoryStatus, limit_bytes: u64) -> Option<u64> {
    let short = limit_bytes
        .checked_sub(status.total_bytes)
        .filter(|&b| b > 0)?;
    let block = status.block_bytes.max(1);
    Some(
        status
            .total_bytes
            .saturating_add(short.div_ceil(block).saturating_mul(block)),
    )
}

/// Grows sandbox `sandbox` (runtime directory `dir`) so it holds a container memory limit
/// of `mib`: hot-adds whole blocks through the control socket and waits until the guest
/// has them online. Nothing happens when it has enough already. For `update` and `create`.
pub fn grow_for_limit(
    sandbox: &str,
    dir: &RuntimeDir,
    agent: &AgentClient,
    mib: u64,
) -> anyhow::Result<()> {
    let status = api::memory_request(&dir.api_socket(), &Request::MemoryInfo)
        .with_context(|| format!("sandbox {sandbox}: memory"))?;
    let Some(total) = total_for_limit(&status, mib << 20) else {
        return Ok(());
    };
    let grown = api::memory_request(
        &dir.api_socket(),
        &Request::MemorySet { total_bytes: total },
    )
    .with_context(|| {
        format!(
            "--memory {mib} MiB is more than sandbox {sandbox} has ({} MiB), and it cannot \
                 grow to {} MiB",
            status.total_bytes >> 20,
            total >> 20
        )
    })?;
    agent
        .online_cpu_mem(grown.total_bytes)
        .with_context(|| format!("sandbox {sandbox}: the guest did not online it"))?;
    tracing::info!(
        total_mib = grown.total_bytes >> 20,
        "sandbox grown for --memory {mib} MiB"
    );
    Ok(())
}

pub fn update(req: UpdateRequest) -> anyhow::Result<()> {
    let resources = resources_json(&req.resources)?;
    let sandbox = &req.sandbox;
    let dir = RuntimeDir::open(&runtime_root(), sandbox)?;
    let agent = AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .with_context(|| format!("sandbox {sandbox}: cannot reach the agent"))?;
    if let Some(mib) = req.resources.memory_mib {
        grow_for_limit(sandbox, &dir, &agent, mib)?;
    }
    if let Some(cpus) = req.resources.cpus {
        super::cpus::grow_for_quota(&dir, &agent, &req.container, cpus)
            .with_context(|| format!("sandbox {sandbox}: update {}", req.container))?;
    }
    let mut request = UpdateContainerRequest::new();
    request.container_id = req.container.clone();
    request.resources_json = resources.to_string();
    agent
        .call("UpdateContainer", |a, ctx| {
            a.update_container(ctx, &request)
        })
        .with_context(|| format!("update {} in sandbox {sandbox}", req.container))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn status(total_mib: u64) -> MemoryStatus {
        MemoryStatus {
            boot_bytes: 512 * MIB,
            hotplugged_bytes: (total_mib - 512) * MIB,
            total_bytes: total_mib * MIB,
            max_bytes: 4096 * MIB,
            slots_total: 4,
            slots_used: 0,
            block_bytes: 128 * MIB,
        }
    }

    #[test]
    fn test_resources_json() {
        let r = resources_json(&ResourceOptions {
            memory_mib: Some(1200),
            pids_limit: Some(64),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r["memory"]["limit"], json!(1200 * MIB));
        assert_eq!(r["pids"]["limit"], json!(64));
        let e = resources_json(&ResourceOptions::default()).unwrap_err();
        assert!(
            e.to_string().contains("--memory, --cpus or --pids-limit"),
            "{e}"
        );
        let e = resources_json(&ResourceOptions {
            memory_mib: Some(0),
            ..Default::default()
        })
        .unwrap_err();
        assert!(format!("{e:#}").contains("--memory"), "{e:#}");
    }

    #[test]
    fn test_total_for_limit_rounds_up_to_blocks() {
        assert_eq!(total_for_limit(&status(1536), 1200 * MIB), None);
        assert_eq!(total_for_limit(&status(1536), 1536 * MIB), None);
        assert_eq!(total_for_limit(&status(512), 1200 * MIB), Some(1280 * MIB));
        assert_eq!(total_for_limit(&status(512), 513 * MIB), Some(640 * MIB));
    }
}
