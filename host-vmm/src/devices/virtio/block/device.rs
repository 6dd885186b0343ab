//! The virtio-blk device: features, configuration space, and the worker
//! thread's life (started on DRIVER_OK, stopped on reset and drop).

use std::path::PathBuf;
use std::sync::Arc;

use super::io::{Disk, DiskError};
use super::request::SECTOR_SIZE;
use super::worker::{BlockWorker, SEG_MAX};
use crate::devices::virtio::worker_thread::{kill_pair, WorkerThread};
use crate::devices::virtio::{ActivateError, DeviceQueues, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::guest_warn;
use crate::seccomp::ThreadKind;
use virtio_bindings::virtio_blk as b;

/// Virtio device ID of a block device.
pub const VIRTIO_ID_BLOCK: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
/// Size of the request queue.
pub const QUEUE_SIZE: u16 = 256;

/// A disk to attach: a host file (or block device), read-only or not, and
/// the serial the guest sees (`/sys/block/vdX/serial`,
/// `/dev/disk/by-id/virtio-<serial>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiskConfig {
    pub path: PathBuf,
    pub read_only: bool,
    /// Printable ASCII without spaces, at most 20 bytes.
    pub serial: String,
}

/// Why a `--disk` argument was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiskArgError {
    #[error("empty disk path (want PATH[,ro][,serial=S])")]
    NoPath,
    #[error("unknown disk option {0:?} (want PATH[,ro][,serial=S])")]
    Option(String),
}

/// `PATH[,ro][,serial=S]`, as `host-vmm boot --disk` takes it. The serial
/// is checked when the disk is opened.
impl std::str::FromStr for DiskConfig {
    type Err = DiskArgError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.split(',');
        let path = parts
            .next()
            .filter(|p| !p.is_empty())
            .ok_or(DiskArgError::NoPath)?;
        let mut cfg = DiskConfig {
            path: PathBuf::from(path),
            ..Default::default()
        };
        for opt in parts {
            match opt {
                "ro" => cfg.read_only = true,
                "rw" => cfg.read_only = false,
                _ => match opt.strip_prefix("serial=") {
                    Some(serial) => cfg.serial = serial.to_string(),
                    None => return Err(DiskArgError::Option(opt.to_string())),
                },
            }
        }
        Ok(cfg)
    }
}

/// A virtio-blk device on a host file.
pub struct Block {
    disk: Arc<Disk>,
    config: [u8; CONFIG_SIZE],
    running: Option<WorkerThread>,
}

/// Size of the configuration space we expose: `struct virtio_blk_config`
/// up to and including `num_queues` (capacity, size_max, seg_max,
/// geometry, blk_size, topology, writeback, num_queues).
pub const CONFIG_SIZE: usize = 36;

/// `struct virtio_blk_config` bytes for a disk of `capacity` sectors.
pub fn config_space(capacity: u64) -> [u8; CONFIG_SIZE] {
    let mut c = [0u8; CONFIG_SIZE];
    c[0..8].copy_from_slice(&capacity.to_le_bytes());
    // size_max (8) unused: VIRTIO_BLK_F_SIZE_MAX not offered.
    c[12..16].copy_from_slice(&SEG_MAX.to_le_bytes());
    // geometry (16..20) unused.
    c[20..24].copy_from_slice(&(SECTOR_SIZE as u32).to_le_bytes());
    // topology (24..32), writeback (32) unused.
    c[34..36].copy_from_slice(&1u16.to_le_bytes());
    c
}

impl Block {
    /// Open the disk `cfg` describes.
    pub fn new(cfg: &DiskConfig) -> Result<Self, DiskError> {
        Ok(Self::with_disk(Disk::open(
            &cfg.path,
            cfg.read_only,
            &cfg.serial,
        )?))
    }

    pub fn with_disk(disk: Disk) -> Self {
        let config = config_space(disk.geometry().capacity);
        Self {
            disk: Arc::new(disk),
            config,
            running: None,
        }
    }

    /// The disk's size in 512-byte sectors.
    pub fn capacity(&self) -> u64 {
        self.disk.geometry().capacity
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        let mut f = VIRTIO_F_VERSION_1
            | 1 << b::VIRTIO_BLK_F_FLUSH
            | 1 << b::VIRTIO_BLK_F_SEG_MAX
            | 1 << b::VIRTIO_BLK_F_BLK_SIZE;
        if self.disk.geometry().read_only {
            f |= 1 << b::VIRTIO_BLK_F_RO;
        }
        f
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = offset
                .checked_add(i as u64)
                .and_then(|o| self.config.get(usize::try_from(o).ok()?))
                .copied()
                .unwrap_or(0);
        }
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        // Only `writeback` is writable, and only with CONFIG_WCE (not offered).
        guest_warn!(
            offset,
            len = data.len(),
            "virtio-blk: write to read-only config ignored"
        );
    }

    fn activate(&mut self, dq: DeviceQueues) -> Result<(), ActivateError> {
        if self.running.is_some() {
            return Err(ActivateError::AlreadyActive);
        }
        let (kill, worker_kill) = kill_pair()?;
        let worker = BlockWorker::new(dq, worker_kill, self.disk.clone())?;
        self.running = Some(WorkerThread::spawn(
            "virtio-blk".into(),
            ThreadKind::VirtioBlock,
            kill,
            move || worker.run(),
        )?);
        tracing::info!(disk = %self.disk.path().display(), sectors = self.capacity(), "virtio-blk device active");
        Ok(())
    }

    fn reset(&mut self) {
        self.running = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_disk_config_from_cli_argument() {
        let d: DiskConfig = "/img/a.erofs,ro,serial=rootfs".parse().unwrap();
        assert_eq!(
            d,
            DiskConfig {
                path: "/img/a.erofs".into(),
                read_only: true,
                serial: "rootfs".into()
            }
        );
        let d: DiskConfig = "scratch.img".parse().unwrap();
        assert_eq!((d.read_only, d.serial.as_str()), (false, ""));
        assert_eq!("".parse::<DiskConfig>(), Err(DiskArgError::NoPath));
        assert_eq!(",ro".parse::<DiskConfig>(), Err(DiskArgError::NoPath));
        assert_eq!(
            "a,readonly".parse::<DiskConfig>(),
            Err(DiskArgError::Option("readonly".into()))
        );
    }

    #[test]
    fn test_block_config_space_layout() {
        let c = config_space(0x1_0000_0002);
        assert_eq!(
            u64::from_le_bytes(c[0..8].try_into().unwrap()),
            0x1_0000_0002
        );
        assert_eq!(u32::from_le_bytes(c[12..16].try_into().unwrap()), SEG_MAX);
        assert_eq!(u32::from_le_bytes(c[20..24].try_into().unwrap()), 512);
        assert_eq!(u16::from_le_bytes(c[34..36].try_into().unwrap()), 1);
    }
}
