//! `configuration.toml`: parsing, defaults and validation (pure, unit-tested).
//!
//! NOTE: being fleshed out (validation, unknown-key suggestions, `config show`).
//! The shape of [`HypervisorConfig`] is stable: other modules may rely on it.

use std::path::PathBuf;

/// The effective, validated `[hypervisor.host-vmm]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HypervisorConfig {
    /// Guest kernel (bzImage or PVH vmlinux on x86_64).
    pub kernel: PathBuf,
    /// Guest initramfs (guest-agent as /init).
    pub initrd: Option<PathBuf>,
    /// Optional guest rootfs disk image (for virtio-blk, later).
    pub image: Option<PathBuf>,
    /// Firmware ROM (required on aarch64: a UEFI ROM; unused on x86_64).
    pub firmware: Option<PathBuf>,
    /// Extra kernel command-line parameters, appended to the VMM's own.
    pub kernel_params: String,
    /// vCPUs at boot.
    pub default_vcpus: u32,
    /// Maximum vCPUs (resolved: never 0 here).
    pub default_maxvcpus: u32,
    pub default_root_ports: u32,
    pub default_bridges: u32,
    /// Boot RAM in MiB.
    pub default_memory: u64,
    /// Hot-pluggable DIMM slots.
    pub memory_slots: u32,
    /// Maximum RAM in MiB (resolved: never 0 here).
    pub default_maxmemory: u64,
}

/// Errors from loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Invalid(String),
}

/// Load the configuration: `path` if given, else the default search
/// (`$HOST_VMM_CONFIG`, `./configuration.toml`, `/etc/host-vmm/configuration.toml`),
/// else built-in defaults. Relative paths inside the file resolve against its directory.
pub fn load(path: Option<&std::path::Path>) -> Result<HypervisorConfig, ConfigError> {
    let _ = path;
    Err(ConfigError::Invalid("config loading: not written yet".into()))
}

/// The text `host-vmm config show` prints: every field's effective value and its origin.
pub fn show(path: Option<&std::path::Path>) -> Result<String, ConfigError> {
    let _ = path;
    Err(ConfigError::Invalid("config show: not written yet".into()))
}
