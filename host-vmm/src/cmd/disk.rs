//! `host-vmm disk <id> --add PATH[,ro][,serial=S]`: hot-add a virtio-blk
//! disk to a running sandbox. The control socket answers once the device
//! is in place and the guest was told (GED interrupt); the guest's kernel
//! then finds it as the next `vdX` (look it up by serial).

use anyhow::{bail, Context};
use host_vmm::api::{self, Request, Response};
use host_vmm::builder::DiskConfig;
use host_vmm::sandbox::{runtime_root, RuntimeDir};

pub fn add(id: &str, disk: DiskConfig) -> anyhow::Result<String> {
    // The VMM opens the file: give it an absolute path.
    let path =
        std::path::absolute(&disk.path).with_context(|| format!("disk {}", disk.path.display()))?;
    let request = Request::DiskAdd {
        path,
        read_only: disk.read_only,
        serial: disk.serial,
    };
    let dir = RuntimeDir::open(&runtime_root(), id)?;
    match api::request(&dir.api_socket(), &request).with_context(|| format!("sandbox {id}"))? {
        Response::Disk(d) => Ok(format!(
            "slot={}\nserial={}\nsectors={}\nslots_total={}\nslots_used={}\n",
            d.slot, d.serial, d.sectors, d.slots_total, d.slots_used
        )),
        Response::Error { message } => bail!("sandbox {id}: {message}"),
        other => bail!("sandbox {id}: unexpected answer {other:?}"),
    }
}
