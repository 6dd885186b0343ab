//! virtio-blk (virtio 1.2, 5.2): one request queue in front of a host
//! file, read-only or read-write.
//!
//! Threading: as for vsock, the transport's registers are handled on vCPU
//! threads and never do I/O; DRIVER_OK starts one device thread
//! (`virtio-blk`, [`worker`]) that waits on the queue's eventfd (a KVM
//! ioeventfd on QueueNotify) and serves requests synchronously with
//! `pread`/`pwrite` through a bounded bounce buffer. Reset or drop stops
//! it; the file stays open for the device's life.
//!
//! Offered: VERSION_1, FLUSH, SEG_MAX, BLK_SIZE (512), and RO for a
//! read-only disk. Requests: IN, OUT, FLUSH, GET_ID; anything else
//! (DISCARD, WRITE_ZEROES, ...) is answered UNSUPP, which a driver that
//! was not offered those features never sends.
//!
//! The guest is untrusted: each chain is walked and checked up front
//! ([`DescChain`](crate::devices::virtio::chain::DescChain)), then
//! [`request::Request::parse`] checks header size, buffer directions,
//! sector alignment and range (overflow-safe) and the read-only flag. A
//! bad request gets VIRTIO_BLK_S_IOERR (UNSUPP for unknown types); a chain
//! without a writable status byte is returned with length 0.
//!
//! Files: [`request`] (pure parsing), [`io`] (the disk file, execution),
//! [`worker`] (the thread), [`device`] (the `VirtioDevice`),
//! [`slots`] (the hot slots' serials), [`fuzzing`] (the
//! `block_queues` harness).

pub mod device;
#[doc(hidden)]
pub mod fuzzing;
pub mod io;
pub mod request;
pub mod slots;
pub mod worker;

#[cfg(test)]
mod tests;

pub use device::{Block, DiskConfig, VIRTIO_ID_BLOCK};
pub use io::{serial_id, Disk, DiskError};
