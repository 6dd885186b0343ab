//! `host-vmm cpus <id> [--set N]`: a running sandbox's vCPUs, and changing their number.
//!
//! A change has two halves, timed separately, like `memory`: the VMM's (create and start
//! the vCPUs and raise the GED; or, on a removal, wait for the guest's eject and park
//! them) and the guest's (the agent onlines the new CPUs: `OnlineCPUMem { nb_cpus }`;
//! or, before a removal, takes the CPUs out of its cpusets and offlines them:
//! `OfflineCpus { keep }`). A removal asks the guest first, so a CPU the guest will not
//! offline is refused before the VMM changes anything. `run`, `create`, `update` and
//! `delete` use [`resize`] to fit the sandbox to its containers' CPU limits.

use std::time::Instant;

use anyhow::Context;
use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::api::{self, Request, VcpuStatus};
use host_vmm::hotplug::cpu_plan::{vcpus_for_quota, CpuLimits};
use host_vmm::sandbox::{runtime_root, RuntimeDir};

/// What a change took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resized {
    pub before: u32,
    pub after: u32,
    pub vmm_ms: u128,
    pub guest_ms: u128,
}

pub fn cpus(id: &str, set: Option<u32>) -> anyhow::Result<String> {
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    let agent = AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .with_context(|| format!("sandbox {id}: cannot reach the agent"))?;
    let mut timing = None;
    if let Some(wanted) = set {
        timing = Some(resize(&dir, &agent, wanted, true).with_context(|| format!("sandbox {id}"))?);
    }
    let status = api::cpu_request(&dir.api_socket(), &Request::CpuInfo)
        .with_context(|| format!("sandbox {id}"))?;
    let online = agent
        .guest_details()
        .map(|d| d.online_cpus)
        .context("GetGuestDetails")?;
    let mut text = render(&status, online);
    if let Some(t) = timing {
        text.push_str(&format!("vmm_ms={}\nguest_ms={}\n", t.vmm_ms, t.guest_ms));
    }
    Ok(text)
}

/// Brings the sandbox behind `dir` to `wanted` vCPUs and returns once the guest has them
/// online (or offline). Refusals (limits, a CPU the guest will not offline) change nothing.
/// `by_hand` (`cpus --set`): deleting containers never shrinks below `wanted`.
pub fn resize(
    dir: &RuntimeDir,
    agent: &AgentClient,
    wanted: u32,
    by_hand: bool,
) -> anyhow::Result<Resized> {
    let status = api::cpu_request(&dir.api_socket(), &Request::CpuInfo)?;
    let limits = CpuLimits {
        boot: status.boot,
        max: status.max,
    };
    limits.check(wanted)?;
    let mut r = Resized {
        before: status.present,
        after: wanted,
        ..Resized::default()
    };
    if wanted >= status.present {
        let vmm = Instant::now();
        let set = Request::CpuSet {
            count: wanted,
            floor: by_hand,
        };
        if wanted > status.present || by_hand {
            api::cpu_request(&dir.api_socket(), &set)?;
        }
        r.vmm_ms = vmm.elapsed().as_millis();
        let guest = Instant::now();
        agent
            .online_cpus(wanted)
            .context("the guest did not online the new CPUs (OnlineCPUMem)")?;
        r.guest_ms = guest.elapsed().as_millis();
    } else {
        let guest = Instant::now();
        agent
            .offline_cpus(wanted)
            .context("the guest refused to offline the CPUs (OfflineCpus)")?;
        r.guest_ms = guest.elapsed().as_millis();
        let vmm = Instant::now();
        let set = Request::CpuSet {
            count: wanted,
            floor: by_hand,
        };
        if let Err(e) = api::cpu_request(&dir.api_socket(), &set) {
            // Whatever the VMM did not take stays: online it again.
            let now = api::cpu_request(&dir.api_socket(), &Request::CpuInfo)
                .map(|s| s.present)
                .unwrap_or(status.present);
            let _ = agent.online_cpus(now);
            return Err(e.into());
        }
        r.vmm_ms = vmm.elapsed().as_millis();
    }
    tracing::info!(before = r.before, after = r.after, "vCPUs resized");
    Ok(r)
}

/// A container's `--cpus`: record its need (whole vCPUs, rounded up) with the VMM and
/// grow the sandbox first when the containers need more vCPUs than it has (at most
/// `default_maxvcpus`: a quota above it only caps, as on any host with fewer CPUs).
pub fn grow_for_quota(
    dir: &RuntimeDir,
    agent: &AgentClient,
    container: &str,
    cpus: f64,
) -> anyhow::Result<()> {
    let Some(need) = vcpus_for_quota(cpus) else {
        return Ok(());
    };
    let (target, now) = api::cpu_need(&dir.api_socket(), container, need)?;
    if target > now.present {
        let r = resize(dir, agent, target, false)
            .with_context(|| format!("--cpus {cpus}: cannot grow the sandbox to {target} vCPUs"))?;
        tracing::info!(
            vmm_ms = r.vmm_ms as u64,
            guest_ms = r.guest_ms as u64,
            "sandbox grown from {} to {target} vCPUs for --cpus {cpus}",
            r.before
        );
    }
    Ok(())
}

/// `container` is gone: forget its need and shrink the sandbox to what the remaining
/// containers need (never below `default_vcpus`).
pub fn shrink_after(dir: &RuntimeDir, agent: &AgentClient, container: &str) -> anyhow::Result<()> {
    let (target, now) = api::cpu_need(&dir.api_socket(), container, 0)?;
    if target < now.present {
        let r = resize(dir, agent, target, false)
            .with_context(|| format!("cannot shrink the sandbox to {target} vCPUs"))?;
        tracing::info!(
            vmm_ms = r.vmm_ms as u64,
            guest_ms = r.guest_ms as u64,
            "sandbox shrunk from {} to {target} vCPUs after {container}",
            r.before
        );
    }
    Ok(())
}

/// One `key=value` per line.
fn render(s: &VcpuStatus, online: u32) -> String {
    format!(
        "boot={}\npresent={}\nonline={online}\nmax={}\n",
        s.boot, s.present, s.max
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_render_cpu_status() {
        let s = VcpuStatus {
            boot: 1,
            present: 3,
            max: 4,
        };
        assert_eq!(render(&s, 3), "boot=1\npresent=3\nonline=3\nmax=4\n");
    }
}
