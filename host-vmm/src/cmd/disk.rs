//! `host-vmm disk <id> --add PATH[,ro][,serial=S] | --remove SERIAL | --list`: the
//! hot-added virtio-blk disks of a running sandbox, through its control socket.
//!
//! `--add` answers once the device is in place and the guest was told (GED interrupt);
//! the guest's kernel then finds it as the next `vdX` (look it up by serial). `--remove`
//! refuses a disk that a live container uses as its rootfs (the owner recorded at the
//! add, checked with the agent), has the agent let go of it (`ReleaseDisk`), then asks the
//! VMM, which frees the slot once the guest's driver is gone.

use anyhow::{bail, Context};
use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::api::{self, DiskEntry, DiskStatus, Request, Response};
use host_vmm::builder::DiskConfig;
use host_vmm::sandbox::{runtime_root, RuntimeDir};

/// A hot-added disk, printed as `key=value` lines.
pub struct Added(pub DiskStatus);

impl std::fmt::Display for Added {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = &self.0;
        write!(
            f,
            "slot={}\nserial={}\nsectors={}\nslots_total={}\nslots_used={}\n",
            d.slot, d.serial, d.sectors, d.slots_total, d.slots_used
        )
    }
}

fn ask(id: &str, request: &Request) -> anyhow::Result<Response> {
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    match api::request(&dir.api_socket(), request).with_context(|| format!("sandbox {id}"))? {
        Response::Error { message } => bail!("sandbox {id}: {message}"),
        other => Ok(other),
    }
}

/// Hot-add `disk`; `owner`: the container whose rootfs it is.
pub fn add(id: &str, disk: DiskConfig, owner: Option<&str>) -> anyhow::Result<Added> {
    // The VMM opens the file: give it an absolute path.
    let path =
        std::path::absolute(&disk.path).with_context(|| format!("disk {}", disk.path.display()))?;
    let request = Request::DiskAdd {
        path,
        read_only: disk.read_only,
        serial: disk.serial,
        owner: owner.map(str::to_string),
    };
    match ask(id, &request)? {
        Response::Disk(d) => Ok(Added(d)),
        other => bail!("sandbox {id}: unexpected answer {other:?}"),
    }
}

/// The hot-added disks.
pub fn disks(id: &str) -> anyhow::Result<Vec<DiskEntry>> {
    match ask(id, &Request::DiskList)? {
        Response::Disks(l) => Ok(l.disks),
        other => bail!("sandbox {id}: unexpected answer {other:?}"),
    }
}

/// `--list`: one line per disk.
pub fn list(id: &str) -> anyhow::Result<String> {
    let mut out = format!("{:<5} {:<20} {:<24} STATE\n", "SLOT", "SERIAL", "CONTAINER");
    for d in disks(id)? {
        out.push_str(&format!(
            "{:<5} {:<20} {:<24} {}\n",
            d.slot,
            d.serial,
            d.owner.as_deref().unwrap_or("-"),
            if d.removing { "removing" } else { "attached" }
        ));
    }
    Ok(out)
}

/// Asks the VMM to remove the disk (no check of its owner).
pub fn remove_serial(id: &str, serial: &str) -> anyhow::Result<String> {
    match ask(
        id,
        &Request::DiskRemove {
            serial: serial.to_string(),
        },
    )? {
        Response::DiskRemoved(r) => Ok(format!(
            "slot={}\nserial={}\nwaited_ms={}\nslots_total={}\nslots_used={}\n",
            r.slot, r.serial, r.waited_ms, r.slots_total, r.slots_used
        )),
        other => bail!("sandbox {id}: unexpected answer {other:?}"),
    }
}

/// `--remove SERIAL`: refused while the container that owns it exists; otherwise the guest
/// lets go of it (`ReleaseDisk`: refused while a container uses it or it is mounted), then
/// the VMM removes it.
pub fn remove(id: &str, serial: &str) -> anyhow::Result<String> {
    let Some(disk) = disks(id)?.into_iter().find(|d| d.serial == serial) else {
        bail!("sandbox {id}: no hot-added disk has serial {serial:?} (see `host-vmm disk {id} --list`)");
    };
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    let agent = AgentClient::connect(&dir.vsock_socket(), &ConnectOptions::default())
        .with_context(|| format!("sandbox {id}: cannot reach the agent"))?;
    if let Some(owner) = &disk.owner {
        let containers = agent
            .list_containers()
            .with_context(|| format!("sandbox {id}: list containers"))?;
        if containers.iter().any(|c| &c.id == owner) {
            bail!(
                "sandbox {id}: disk {serial:?} is the rootfs of container {owner}: delete the \
                 container first (`host-vmm delete {id} {owner}` removes its disk too)"
            );
        }
    }
    agent
        .release_disk(serial)
        .with_context(|| format!("sandbox {id}: the guest cannot let go of disk {serial:?}"))?;
    remove_serial(id, serial)
}

/// After `RemoveContainer`: removes every hot-added disk `container` owns.
pub fn remove_owned_by(id: &str, container: &str) -> anyhow::Result<()> {
    for d in disks(id)? {
        if d.owner.as_deref() == Some(container) && !d.removing {
            let text = remove_serial(id, &d.serial)
                .with_context(|| format!("remove the rootfs disk of container {container}"))?;
            tracing::info!("disk of {container} removed: {}", text.replace('\n', " "));
        }
    }
    Ok(())
}
