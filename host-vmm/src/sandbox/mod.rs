//! A sandbox's identity on the host: its id and its runtime directory.
//!
//! Every running VM owns `<runtime root>/<id>/`, holding
//!
//! | file | what |
//! |---|---|
//! | `pid` | the host-vmm process serving the sandbox, `flock`ed by it for its whole life |
//! | `vsock.sock` | hybrid vsock: `CONNECT <port>\n` reaches the guest |
//! | `vsock.sock_<port>` | where guest-initiated vsock connections to `<port>` land |
//! | `api.sock` | the VMM's control socket (hotplug, status) |
//! | `agent.log` | the agent's log, forwarded over vsock port 1025 |
//!
//! The runtime root is `$HOST_VMM_RUNTIME_DIR`, else `/run/host-vmm` for root and
//! `$XDG_RUNTIME_DIR/host-vmm` for any other user. The root and every
//! sandbox directory are 0700 and the caller's; sockets are 0600; files are created with
//! `O_NOFOLLOW | O_CLOEXEC`. A sandbox is live while its pid file's lock is held
//! ([`pid_file`]); the directory is claimed atomically and removed when the [`RuntimeDir`]
//! is dropped ([`runtime_dir`]), and a dead owner's directory is reclaimed by the next start
//! with its id ([`leftovers`] sweeps the rest).

mod id;
mod leftovers;
mod list;
mod pid_file;
mod runtime_dir;

pub use id::{validate_id, IdError, ID_RULE, MAX_ID_LEN};
pub use list::{list_sandboxes, SandboxEntry, SandboxState};
pub use runtime_dir::{runtime_root, RuntimeDir, RuntimeDirError, RUNTIME_ROOT_ENV};
