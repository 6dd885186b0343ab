//! The virtio-vsock device: configuration space, features, and the worker
//! thread's life (started on DRIVER_OK, stopped on reset and drop).

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use super::muxer::{Muxer, VsockLimits};
use super::packet::HOST_CID;
use super::unix::{bind_listener, UnixError};
use super::worker::{VsockWorker, NUM_QUEUES};
use crate::devices::virtio::worker_thread::{kill_pair, WorkerThread};
use crate::devices::virtio::{ActivateError, DeviceQueues, VirtioDevice, VIRTIO_F_VERSION_1};
use crate::guest_warn;
use crate::seccomp::ThreadKind;

/// Virtio device ID of vsock.
pub const VIRTIO_ID_VSOCK: u32 = virtio_bindings::virtio_ids::VIRTIO_ID_VSOCK;
/// Size of each queue.
pub const QUEUE_SIZE: u16 = 256;

/// Why the vsock device could not be created.
#[derive(Debug, thiserror::Error)]
pub enum VsockError {
    #[error("vsock guest CID {cid} is reserved (use 3 ..= 4294967294)")]
    ReservedCid { cid: u64 },
    #[error(transparent)]
    Unix(#[from] UnixError),
}

/// A virtio-vsock device whose host end is a Unix socket (hybrid vsock).
pub struct Vsock {
    guest_cid: u64,
    uds_path: PathBuf,
    limits: VsockLimits,
    listener: UnixListener,
    running: Option<WorkerThread>,
}

impl Vsock {
    /// A device for guest CID `guest_cid` listening on `uds_path` (bound
    /// now: host clients may connect before the guest driver is up; they
    /// are served once it is).
    pub fn new(guest_cid: u64, uds_path: impl Into<PathBuf>) -> Result<Self, VsockError> {
        Self::with_limits(guest_cid, uds_path, VsockLimits::default())
    }

    pub fn with_limits(
        guest_cid: u64,
        uds_path: impl Into<PathBuf>,
        limits: VsockLimits,
    ) -> Result<Self, VsockError> {
        if guest_cid <= HOST_CID || guest_cid >= u64::from(u32::MAX) {
            return Err(VsockError::ReservedCid { cid: guest_cid });
        }
        let uds_path = uds_path.into();
        let listener = bind_listener(&uds_path)?;
        Ok(Self {
            guest_cid,
            uds_path,
            limits,
            listener,
            running: None,
        })
    }

    pub fn guest_cid(&self) -> u64 {
        self.guest_cid
    }

    /// The host socket clients connect to.
    pub fn uds_path(&self) -> &Path {
        &self.uds_path
    }
}

impl VirtioDevice for Vsock {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_VSOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE; NUM_QUEUES]
    }

    fn features(&self) -> u64 {
        VIRTIO_F_VERSION_1
    }

    /// `struct virtio_vsock_config { le64 guest_cid; }`.
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let cfg = self.guest_cid.to_le_bytes();
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset
                .checked_add(i as u64)
                .and_then(|o| cfg.get(usize::try_from(o).ok()?))
                .copied()
                .unwrap_or(0);
        }
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) {
        guest_warn!(
            offset,
            len = data.len(),
            "vsock: write to read-only config ignored"
        );
    }

    fn activate(&mut self, dq: DeviceQueues) -> Result<(), ActivateError> {
        if self.running.is_some() {
            return Err(ActivateError::AlreadyActive);
        }
        let listener = self.listener.try_clone().map_err(ActivateError::EventFd)?;
        let muxer = Muxer::new(
            self.guest_cid,
            self.uds_path.clone(),
            listener,
            self.limits.clone(),
        )
        .map_err(ActivateError::EventFd)?;
        let (kill, worker_kill) = kill_pair()?;
        let worker = VsockWorker::new(dq, worker_kill, muxer)?;
        self.running = Some(WorkerThread::spawn(
            format!("vsock-cid{}", self.guest_cid),
            ThreadKind::VirtioVsock,
            kill,
            move || worker.run(),
        )?);
        tracing::info!(cid = self.guest_cid, path = %self.uds_path.display(), "vsock device active");
        Ok(())
    }

    fn reset(&mut self) {
        self.running = None;
    }
}

impl Drop for Vsock {
    fn drop(&mut self) {
        // The worker first: it owns the connections to the socket's clients.
        self.running = None;
        match std::fs::remove_file(&self.uds_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.uds_path.display(), error = %e, "vsock: cannot remove the socket");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_vsock_config_space_reads_cid_any_width() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let v = Vsock::new(0x1122_3344, dir.as_path().join("v.sock")).unwrap();
        let mut b = [0u8; 8];
        v.read_config(0, &mut b);
        assert_eq!(u64::from_le_bytes(b), 0x1122_3344);
        let mut b = [0xffu8; 4];
        v.read_config(2, &mut b);
        assert_eq!(b, [0x22, 0x11, 0, 0]);
        let mut b = [0xffu8; 2];
        v.read_config(u64::MAX, &mut b);
        assert_eq!(b, [0, 0]);
    }

    #[test]
    fn test_vsock_refuses_reserved_cids_and_removes_socket_on_drop() {
        let dir = vmm_sys_util::tempdir::TempDir::new().unwrap();
        let path = dir.as_path().join("v.sock");
        for cid in [0, 1, 2, u64::from(u32::MAX), u64::MAX] {
            assert!(matches!(
                Vsock::new(cid, &path),
                Err(VsockError::ReservedCid { .. })
            ));
        }
        let v = Vsock::new(3, &path).unwrap();
        assert!(path.exists());
        drop(v);
        assert!(!path.exists());
    }
}
