//! `configuration.toml`: parsing, defaults and validation.
//!
//! - [`raw`] reads TOML into the values as written (knows the format).
//! - [`validate`] applies defaults and the rules (pure, unit-tested).
//! - [`show`] renders `host-vmm config show`.
//! - [`search`] decides which file to read (pure, unit-tested).
//!
//! This module is the only place that reads the file or the host limits.

pub mod fields;
pub mod raw;
pub mod search;
mod show;
mod suggest;
pub mod validate;

use std::fmt;
use std::path::{Path, PathBuf};

pub use raw::{Origin, RawConfig, RawValue};

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

/// The architecture the rules are checked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub const fn host() -> Self {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }
}

/// What the host offers; the input that makes validation pure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    pub cpus: u32,
    /// KVM_CAP_MAX_VCPUS.
    pub kvm_max_vcpus: u32,
    pub ram_mib: u64,
    pub arch: Arch,
}

/// Used when /dev/kvm cannot be asked (for example by `config show` without KVM).
pub const FALLBACK_KVM_MAX_VCPUS: u32 = 255;

impl HostLimits {
    /// Read the limits of this host.
    pub fn detect() -> Self {
        let cpus = std::thread::available_parallelism()
            .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
        let ram_mib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| parse_mem_total_kib(&m))
            .map_or(0, |kib| kib / 1024);
        HostLimits {
            cpus,
            kvm_max_vcpus: kvm_max_vcpus().unwrap_or(FALLBACK_KVM_MAX_VCPUS),
            ram_mib,
            arch: Arch::host(),
        }
    }
}

fn kvm_max_vcpus() -> Option<u32> {
    let kvm = kvm_ioctls::Kvm::new().ok()?;
    u32::try_from(kvm.get_max_vcpus()).ok()
}

/// `MemTotal` of a /proc/meminfo text, in KiB.
fn parse_mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// One broken rule: the field it concerns and what is wrong, with what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors from loading or validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: invalid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("invalid configuration{}:\n{}", source_file.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default(), problems.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        source_file: Option<PathBuf>,
        problems: Vec<Problem>,
    },
}

/// Command-line values that take precedence over the file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// Boot RAM in MiB.
    pub memory: Option<u64>,
    pub cpus: Option<u32>,
    /// Appended to the file's `kernel_params`.
    pub kernel_params: Option<String>,
}

impl Overrides {
    fn apply(&self, raw: &mut RawConfig) {
        let cli = Origin::CommandLine;
        if let Some(k) = &self.kernel {
            raw.set("kernel", RawValue::Path(k.clone()), cli);
        }
        if let Some(i) = &self.initrd {
            raw.set("initrd", RawValue::Path(i.clone()), cli);
        }
        if let Some(m) = self.memory {
            raw.set(
                "default_memory",
                RawValue::Int(i64::try_from(m).unwrap_or(i64::MAX)),
                cli,
            );
        }
        if let Some(c) = self.cpus {
            raw.set("default_vcpus", RawValue::Int(i64::from(c)), cli);
        }
        if let Some(extra) = &self.kernel_params {
            let joined = match raw.get("kernel_params") {
                Some((RawValue::Text(t), _)) if !t.is_empty() => format!("{t} {extra}"),
                _ => extra.clone(),
            };
            raw.set("kernel_params", RawValue::Text(joined), cli);
        }
    }
}

pub use search::{ConfigChoice, FoundBy, CONFIG_ENV, SYSTEM_CONFIG};

/// The file to read for `--config explicit` in this process (see
/// [`search`] for the order). `None` means the compiled-in defaults.
pub fn find_config_file(explicit: Option<&Path>) -> Option<ConfigChoice> {
    search::resolve(&search::SearchInputs::from_process(explicit))
}

/// Read the chosen file (if any) into a [`RawConfig`].
fn read_choice(choice: Option<&ConfigChoice>) -> Result<RawConfig, ConfigError> {
    let Some(choice) = choice else {
        return Ok(RawConfig::default());
    };
    let path = &choice.path;
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.clone(),
        source,
    })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
    let base = abs.parent().map(Path::to_path_buf).unwrap_or_default();
    tracing::debug!(path = %path.display(), found_by = %choice.found_by, "configuration file");
    raw::parse(&text, path, &base)
}

/// Read the file (if any) into a [`RawConfig`].
pub fn read_raw(path: Option<&Path>) -> Result<RawConfig, ConfigError> {
    read_choice(find_config_file(path).as_ref())
}

/// Load, apply `overrides`, validate every rule against this host, and check the files exist.
pub fn load_with(
    path: Option<&Path>,
    overrides: &Overrides,
) -> Result<HypervisorConfig, ConfigError> {
    let mut raw = read_raw(path)?;
    overrides.apply(&mut raw);
    let invalid = |problems| ConfigError::Invalid {
        source_file: raw.source.clone(),
        problems,
    };
    let cfg = validate::validate(&raw, &HostLimits::detect()).map_err(invalid)?;
    let missing = validate::check_files(&cfg);
    if !missing.is_empty() {
        return Err(invalid(missing));
    }
    Ok(cfg)
}

/// [`load_with`] without command-line overrides.
pub fn load(path: Option<&Path>) -> Result<HypervisorConfig, ConfigError> {
    load_with(path, &Overrides::default())
}

/// The text `host-vmm config show` prints: every field's effective value and its origin.
/// Range rules must hold; files that do not exist are flagged in the output.
pub fn show(path: Option<&Path>) -> Result<String, ConfigError> {
    let choice = find_config_file(path);
    let raw = read_choice(choice.as_ref())?;
    let host = HostLimits::detect();
    let cfg = validate::validate(&raw, &host).map_err(|problems| ConfigError::Invalid {
        source_file: raw.source.clone(),
        problems,
    })?;
    Ok(show::render(
        &cfg,
        &raw,
        &host,
        choice.as_ref().map(|c| c.found_by),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_mem_total() {
        let m = "MemTotal:       24562300 kB\nMemFree:        1 kB\n";
        assert_eq!(parse_mem_total_kib(m), Some(24_562_300));
        assert_eq!(parse_mem_total_kib("nothing"), None);
    }

    #[test]
    fn test_overrides_take_precedence_and_append_params() {
        let mut raw = raw::parse(
            "[hypervisor.host-vmm]\ndefault_memory = 2048\nkernel_params = \"a=1\"\n",
            Path::new("/c.toml"),
            Path::new("/"),
        )
        .unwrap();
        let o = Overrides {
            memory: Some(512),
            cpus: Some(2),
            kernel_params: Some("b=2".into()),
            ..Default::default()
        };
        o.apply(&mut raw);
        assert_eq!(
            raw.get("default_memory"),
            Some(&(RawValue::Int(512), Origin::CommandLine))
        );
        assert_eq!(
            raw.get("default_vcpus"),
            Some(&(RawValue::Int(2), Origin::CommandLine))
        );
        assert_eq!(
            raw.get("kernel_params"),
            Some(&(RawValue::Text("a=1 b=2".into()), Origin::CommandLine))
        );
    }

    #[test]
    fn test_load_missing_explicit_file_names_it() {
        let err = load(Some(Path::new("/nonexistent/host-vmm.toml"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("cannot read configuration file /nonexistent/host-vmm.toml"),
            "{err}"
        );
    }

    #[test]
    fn test_load_missing_kernel_names_field_and_path() {
        let dir = std::env::temp_dir().join(format!("host-vmm-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("c.toml");
        let mut text = String::from(
            "[hypervisor.host-vmm]\nkernel = \"no-such-bzImage\"\ninitrd = \"no-such.cpio\"\n",
        );
        if Arch::host() == Arch::Aarch64 {
            // Name a missing ROM too (the default is Debian's, which may be installed).
            text.push_str("firmware = \"no-such.fd\"\n");
        }
        std::fs::write(&file, text).unwrap();
        let msg = load(Some(&file)).unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            msg.contains("kernel: ") && msg.contains("no-such-bzImage"),
            "{msg}"
        );
        assert!(
            msg.contains("initrd: ") && msg.contains("no-such.cpio"),
            "{msg}"
        );
    }
}
