//! `host-vmm config show`: the effective value of every field and where it came from.

use std::fmt::Write as _;
use std::path::Path;

use super::fields::KNOWN_KEYS;
use super::raw::{Origin, RawConfig, RawValue, HYPERVISOR_NAME, HYPERVISOR_TABLE};
use super::search::{FoundBy, CONFIG_ENV, SYSTEM_CONFIG};
use super::{HostLimits, HypervisorConfig};

fn path_value(p: Option<&Path>) -> String {
    match p {
        None => "(none)".to_string(),
        Some(p) if p.is_file() => format!("{:?}", p.display().to_string()),
        Some(p) => format!("{:?} (missing!)", p.display().to_string()),
    }
}

fn effective(cfg: &HypervisorConfig, key: &str) -> String {
    match key {
        "kernel" => path_value(Some(&cfg.kernel)),
        "initrd" => path_value(cfg.initrd.as_deref()),
        "image" => path_value(cfg.image.as_deref()),
        "firmware" => path_value(cfg.firmware.as_deref()),
        "kernel_params" => format!("{:?}", cfg.kernel_params),
        "default_vcpus" => cfg.default_vcpus.to_string(),
        "default_maxvcpus" => cfg.default_maxvcpus.to_string(),
        "default_root_ports" => cfg.default_root_ports.to_string(),
        "default_bridges" => cfg.default_bridges.to_string(),
        "default_memory" => format!("{} MiB", cfg.default_memory),
        "memory_slots" => cfg.memory_slots.to_string(),
        "default_maxmemory" => format!("{} MiB", cfg.default_maxmemory),
        _ => String::new(),
    }
}

/// Why a resolved value differs from what was written, if it does.
fn resolution_note(key: &str, raw: &RawConfig, host: &HostLimits) -> Option<String> {
    let written_zero = matches!(raw.get(key), None | Some((RawValue::Int(0), _)));
    match key {
        "default_maxvcpus" if written_zero => Some(format!(
            "0 = host cores ({}), capped at KVM's limit ({})",
            host.cpus, host.kvm_max_vcpus
        )),
        "default_maxmemory" if written_zero => Some(format!("0 = host RAM ({} MiB)", host.ram_mib)),
        _ => None,
    }
}

/// Render the table. `raw` tells the origin of each value.
/// `found_by` says how the file was chosen (`None`: no file).
pub fn render(
    cfg: &HypervisorConfig,
    raw: &RawConfig,
    host: &HostLimits,
    found_by: Option<FoundBy>,
) -> String {
    let mut out = String::new();
    let source = match (&raw.source, found_by) {
        (Some(p), Some(by)) => format!("{} ({by})", p.display()),
        (Some(p), None) => p.display().to_string(),
        (None, _) => format!(
            "no file: built-in defaults (searched ${CONFIG_ENV}, {SYSTEM_CONFIG}, the shipped default; never ./configuration.toml unless named)"
        ),
    };
    let _ = writeln!(out, "# configuration: {source}");
    let _ = writeln!(out, "[{HYPERVISOR_TABLE}.{HYPERVISOR_NAME}]");
    let rows: Vec<(String, String)> = KNOWN_KEYS
        .iter()
        .map(|key| {
            let origin = raw.get(key).map_or(Origin::Default, |(_, o)| *o);
            let mut comment = origin.to_string();
            if let Some(note) = resolution_note(key, raw, host) {
                let _ = write!(comment, "; {note}");
            }
            (format!("{key} = {}", effective(cfg, key)), comment)
        })
        .collect();
    let width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    for (line, comment) in rows {
        let _ = writeln!(out, "{line:width$}  # {comment}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::validate::validate;
    use crate::config::Arch;

    #[test]
    fn test_render_lists_every_field_with_origin() {
        let host = HostLimits {
            cpus: 2,
            kvm_max_vcpus: 240,
            ram_mib: 4096,
            arch: Arch::X86_64,
        };
        let raw = crate::config::raw::parse(
            "[hypervisor.host-vmm]\ndefault_memory = 512\n",
            Path::new("/etc/c.toml"),
            Path::new("/etc"),
        )
        .unwrap();
        let cfg = validate(&raw, &host).unwrap();
        let text = render(&cfg, &raw, &host, Some(FoundBy::System));
        assert!(
            text.contains("# configuration: /etc/c.toml (the system configuration)"),
            "{text}"
        );
        for key in KNOWN_KEYS {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{key} = "))),
                "{key} missing:\n{text}"
            );
        }
        let line = |k: &str| {
            text.lines()
                .find(|l| l.starts_with(&format!("{k} = ")))
                .unwrap()
                .to_string()
        };
        assert!(
            line("default_memory").contains("512 MiB")
                && line("default_memory").ends_with("# file")
        );
        assert!(
            line("default_vcpus").ends_with("# default"),
            "{}",
            line("default_vcpus")
        );
        assert!(
            line("default_maxvcpus").contains("0 = host cores (2)"),
            "{}",
            line("default_maxvcpus")
        );
        assert!(
            line("default_maxmemory").contains("4096 MiB"),
            "{}",
            line("default_maxmemory")
        );
        assert!(line("kernel").contains("(missing!)"), "{}", line("kernel"));
    }
}
