//! virtio-vsock served in userspace ("hybrid vsock", as Firecracker and
//! Cloud Hypervisor do it): guest stream sockets end at Unix sockets on
//! the host, no /dev/vhost-vsock needed.
//!
//! Host → guest: a client connects to the device's socket (`uds_path`),
//! writes `CONNECT <port>\n`, and reads `OK <hostport>\n` once the guest
//! accepted; from then on the stream is the connection. If the guest
//! answers RST or does not answer within the connect timeout, the client's
//! socket is closed.
//! Guest → host: a guest connection to host port P goes to the listener at
//! `<uds_path>_P`; with none there the guest gets RST.
//!
//! Threading model: the transport's registers are accessed on vCPU
//! threads under the transport's lock; they never do I/O. DRIVER_OK
//! starts one device thread (`vsock-cid<N>`, [`worker`]) that owns the
//! queues, the connections and an epoll set over: the kill eventfd, the
//! rx/tx/event queue eventfds (signalled by QueueNotify or a KVM
//! ioeventfd), the Unix listener, and every host stream. It is the only
//! thread that touches the queues or the sockets, so there are no locks on
//! the data path. A reset (status 0) or dropping the device writes the
//! kill eventfd and joins the thread; all connections close with it. The
//! listening socket lives as long as the [`Vsock`] and its file is removed
//! on drop.
//!
//! Flow control ([`credit`]): we read from a host stream only what the
//! guest has credit for, and hold at most `buf_alloc` bytes of guest data
//! per connection for a slow host reader (a guest that sends more is
//! reset). Memory is bounded by [`VsockLimits`].
//!
//! Files: [`packet`] (the header), [`credit`], [`connection`] (one
//! stream's state machine), [`muxer`] (routing, timers; host clients'
//! `CONNECT` lines in `muxer/clients.rs`),
//! [`unix`] (sockets), [`worker`] (the thread), [`device`] (the
//! `VirtioDevice`).

pub mod connection;
pub mod credit;
pub mod device;
pub mod muxer;
pub mod packet;
pub mod unix;
pub mod worker;

#[cfg(test)]
mod tests;

pub use device::{Vsock, VsockError, VIRTIO_ID_VSOCK};
pub use muxer::VsockLimits;
pub use packet::{DEFAULT_GUEST_CID, HOST_CID};
