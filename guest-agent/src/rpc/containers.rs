//! Sandbox and container lifecycle: each handler parses its request, makes one call on the
//! [`Sandbox`] (the table in [`crate::sandbox`]) and builds the response.

use std::sync::Arc;
use std::time::Duration;

use protocol::agent::*;
use protocol::Empty;

use super::block::{self, DiskPaths, DISK_WAIT};
use super::ids;
use super::{Agent, RpcError};
use crate::container::spec::{Resources, Spec};
use crate::container::RootfsSource;
use crate::container::{CreateRequest, Status};
use crate::sandbox::{Sandbox, SandboxConfig};

/// How long DestroySandbox waits for each container's processes to die.
pub const DESTROY_TIMEOUT: Duration = Duration::from_secs(30);

/// RemoveContainer's wait for the processes to die: the request's seconds, or for 0
/// [`DESTROY_TIMEOUT`]. Never for ever: a process stuck in the kernel must not hold an
/// agent thread (and the host's call) for good.
pub fn remove_timeout(secs: u32) -> Duration {
    match secs {
        0 => DESTROY_TIMEOUT,
        s => Duration::from_secs(s.into()),
    }
}

/// `field` of the request must not be empty.
pub fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, RpcError> {
    if value.is_empty() {
        return Err(RpcError::InvalidArgument(format!("{field}: must be set")));
    }
    Ok(value)
}

pub fn create_sandbox(agent: &Agent, req: CreateSandboxRequest) -> Result<Empty, RpcError> {
    let id = ids::id(&req.sandbox_id, "sandbox_id")?;
    let reaper = agent.reaper().cloned().ok_or_else(|| {
        RpcError::FailedPrecondition("no child reaper: the agent is not the guest's init".into())
    })?;
    let mut config = SandboxConfig::new(id);
    if !req.hostname.is_empty() {
        config.hostname = req.hostname;
    }
    config.share_pid = req.share_pid;
    agent.sandbox.create(|| Sandbox::create(config, reaper))?;
    // The sandbox cgroup's memory.max follows the guest's total, now and after each
    // hot-add (the hook holds no reference: a destroyed sandbox is simply skipped).
    let sandbox = agent.sandbox()?;
    sandbox.follow_memory_total();
    let weak = Arc::downgrade(&sandbox);
    crate::memory::set_grown_hook(Some(Box::new(move || {
        if let Some(sandbox) = weak.upgrade() {
            sandbox.follow_memory_total();
        }
    })));
    Ok(Empty::new())
}

pub fn destroy_sandbox(agent: &Agent, _: DestroySandboxRequest) -> Result<Empty, RpcError> {
    crate::memory::set_grown_hook(None);
    agent
        .sandbox
        .destroy(|sandbox| sandbox.destroy(Some(DESTROY_TIMEOUT)))?;
    Ok(Empty::new())
}

pub fn create_container(agent: &Agent, req: CreateContainerRequest) -> Result<Empty, RpcError> {
    ids::process(&req.container_id, &req.exec_id)?;
    let sandbox = agent.sandbox()?;
    let spec = Spec::from_json(required(&req.oci_spec_json, "oci_spec_json")?)?;
    let requested = block::requested_rootfs(req.rootfs.as_ref())?;
    let paths = DiskPaths::system();
    let rootfs = block::resolve(requested, &paths, DISK_WAIT)?;
    let created = sandbox.create_container(CreateRequest {
        id: req.container_id,
        exec_id: req.exec_id,
        spec,
        rootfs: rootfs.clone(),
    });
    if created.is_err() {
        // The host takes the disk back out after a failed create.
        release_rootfs_disk(&paths, &rootfs);
    }
    created?;
    Ok(Empty::new())
}

pub fn start_container(agent: &Agent, req: StartContainerRequest) -> Result<Empty, RpcError> {
    let id = ids::id(&req.container_id, "container_id")?;
    agent.sandbox()?.start_container(id)?;
    Ok(Empty::new())
}

pub fn remove_container(agent: &Agent, req: RemoveContainerRequest) -> Result<Empty, RpcError> {
    let id = ids::id(&req.container_id, "container_id")?;
    let timeout = Some(remove_timeout(req.timeout));
    let sandbox = agent.sandbox()?;
    let rootfs = sandbox.container(id).map(|c| c.rootfs_source().clone());
    sandbox.remove_container(id, timeout)?;
    // Unmounted: let go of its disk, so the host can remove it and free the slot.
    if let Ok(rootfs) = rootfs {
        release_rootfs_disk(&DiskPaths::system(), &rootfs);
    }
    Ok(Empty::new())
}

/// ReleaseDisk: the disk with `serial` is let go of (its driver unbound) unless a container
/// uses it or it is mounted; a serial no disk has is fine.
pub fn release_disk(agent: &Agent, req: ReleaseDiskRequest) -> Result<Empty, RpcError> {
    block::check_serial("serial", &req.serial)?;
    let paths = DiskPaths::system();
    let Some(name) = block::find_disk(&paths.block, &req.serial)? else {
        return Ok(Empty::new());
    };
    let node = paths.dev.join(&name);
    if let Ok(sandbox) = agent.sandbox() {
        for id in sandbox.container_ids() {
            let Ok(c) = sandbox.container(&id) else {
                continue;
            };
            if matches!(c.rootfs_source(), RootfsSource::Block { device, .. } if *device == node) {
                return Err(RpcError::FailedPrecondition(format!(
                    "disk {:?} ({}) is the rootfs of container {id}",
                    req.serial,
                    node.display()
                )));
            }
        }
    }
    let dev = std::fs::read_to_string(paths.block.join(&name).join("dev")).map_err(
        RpcError::io(format!("read {}/{name}/dev", paths.block.display())),
    )?;
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(RpcError::io("read /proc/self/mountinfo"))?;
    if let Some(point) = block::mounted_at(&mountinfo, dev.trim()) {
        return Err(RpcError::FailedPrecondition(format!(
            "disk {:?} ({}) is mounted at {point}",
            req.serial,
            node.display()
        )));
    }
    block::release_disk(&paths, &node)?;
    Ok(Empty::new())
}

/// Releases a container's rootfs disk, if it had one. A failure is logged: the container is
/// gone either way, and the host's removal of the disk then reports that the guest still
/// holds it.
fn release_rootfs_disk(paths: &DiskPaths, rootfs: &RootfsSource) {
    if let RootfsSource::Block { device, .. } = rootfs {
        if let Err(e) = block::release_disk(paths, device) {
            tracing::warn!("disk {}: {e}", device.display());
        }
    }
}

pub fn update_container(agent: &Agent, req: UpdateContainerRequest) -> Result<Empty, RpcError> {
    let id = ids::id(&req.container_id, "container_id")?;
    let sandbox = agent.sandbox()?;
    let resources = Resources::from_json(required(&req.resources_json, "resources_json")?)?;
    sandbox.update_container(id, &resources)?;
    Ok(Empty::new())
}

pub fn stats_container(
    agent: &Agent,
    req: StatsContainerRequest,
) -> Result<StatsContainerResponse, RpcError> {
    let id = ids::id(&req.container_id, "container_id")?;
    let stats = agent.sandbox()?.stats_container(id)?;
    let mut r = StatsContainerResponse::new();
    r.cpu_usage_usec = stats.cpu_usage_usec;
    r.memory_usage_bytes = stats.memory_current;
    r.memory_limit_bytes = stats.memory_max.unwrap_or(0);
    r.pids_current = stats.pids_current;
    r.pids_limit = stats.pids_max.unwrap_or(0);
    r.oom_kills = stats.oom_kills;
    r.io_read_bytes = stats.io_read_bytes();
    r.io_write_bytes = stats.io_write_bytes();
    Ok(r)
}

pub fn list_containers(
    agent: &Agent,
    _: ListContainersRequest,
) -> Result<ListContainersResponse, RpcError> {
    let sandbox = agent.sandbox()?;
    let mut r = ListContainersResponse::new();
    for id in sandbox.container_ids() {
        // Removed meanwhile: not listed.
        let Ok(container) = sandbox.container(&id) else {
            continue;
        };
        let status = container.status();
        if status == Status::Removed {
            continue;
        }
        let init = container.init();
        let mut info = ContainerInfo::new();
        info.container_id = id;
        info.status = status.as_str().to_string();
        info.init_pid = match init.exit_status() {
            None => u32::try_from(init.pid()).unwrap_or(0),
            Some(_) => 0,
        };
        info.exec_ids = container.live_exec_ids();
        r.containers.push(info);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_remove_timeout_is_never_forever() {
        assert_eq!(remove_timeout(0), DESTROY_TIMEOUT);
        assert_eq!(remove_timeout(10), Duration::from_secs(10));
        assert_eq!(
            remove_timeout(u32::MAX),
            Duration::from_secs(u32::MAX.into())
        );
    }
}
