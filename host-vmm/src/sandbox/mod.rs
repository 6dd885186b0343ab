//! A sandbox's identity on the host: its id and its runtime directory.
//!
//! Every running VM owns `<runtime root>/<id>/`, holding
//!
//! | file | what |
//! |---|---|
//! | `pid` | the host-vmm process serving the sandbox |
//! | `vsock.sock` | hybrid vsock: `CONNECT <port>\n` reaches the guest |
//! | `vsock.sock_<port>` | where guest-initiated vsock connections to `<port>` land |
//! | `api.sock` | the VMM's control socket (hotplug, status) |
//! | `agent.log` | the agent's log, forwarded over vsock port 1025 |
//!
//! The runtime root is `$HOST_VMM_RUNTIME_DIR`, else `/run/host-vmm` for root and
//! `$XDG_RUNTIME_DIR/host-vmm` for any other user. The
//! directory is removed when the [`RuntimeDir`] is dropped, so nothing is
//! left behind when the VMM exits.

mod id;
mod runtime_dir;

pub use id::{validate_id, IdError};
pub use runtime_dir::{runtime_root, RuntimeDir, RuntimeDirError, RUNTIME_ROOT_ENV};
