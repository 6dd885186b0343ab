//! The rules: [`RawConfig`] + [`HostLimits`] → [`HypervisorConfig`]. Pure, so every
//! rule is unit-tested without touching the host.

use std::path::{Path, PathBuf};

use super::fields::*;
use super::raw::{RawConfig, RawValue};
use super::{Arch, HostLimits, HypervisorConfig, Problem};

/// Reads fields out of a [`RawConfig`], collecting problems instead of stopping at the first.
struct Reader<'a> {
    raw: &'a RawConfig,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn int(&mut self, key: &'static str, default: u64, min: u64, max: u64, unit: &str) -> u64 {
        match self.raw.get(key) {
            Some((RawValue::Int(v), _)) => {
                if *v < 0 || (*v as u64) < min || (*v as u64) > max {
                    self.problems.push(Problem::new(
                        key,
                        format!("{v} is out of range; allowed: {min}..={max}{unit}"),
                    ));
                    default
                } else {
                    *v as u64
                }
            }
            _ => default,
        }
    }

    fn path(&self, key: &str, default: Option<&str>) -> Option<PathBuf> {
        match self.raw.get(key) {
            Some((RawValue::Path(p), _)) => Some(p.clone()),
            _ => default.map(PathBuf::from),
        }
    }

    fn text(&self, key: &str) -> String {
        match self.raw.get(key) {
            Some((RawValue::Text(s), _)) => s.clone(),
            _ => String::new(),
        }
    }
}

fn to_u32(v: u64) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

/// Apply defaults and every range rule. File existence is checked by [`check_files`].
pub fn validate(raw: &RawConfig, host: &HostLimits) -> Result<HypervisorConfig, Vec<Problem>> {
    let mut r = Reader {
        raw,
        problems: Vec::new(),
    };

    let kvm_max = u64::from(host.kvm_max_vcpus.max(1));
    let maxvcpus_given = r.int(
        "default_maxvcpus",
        u64::from(DEFAULT_MAXVCPUS),
        0,
        kvm_max,
        " (0 means host cores; the upper bound is KVM's vCPU limit)",
    );
    let maxvcpus = if maxvcpus_given == 0 {
        u64::from(host.cpus.max(1)).min(kvm_max)
    } else {
        maxvcpus_given
    };
    let vcpus = r.int(
        "default_vcpus",
        u64::from(DEFAULT_VCPUS),
        1,
        kvm_max,
        " (KVM's vCPU limit)",
    );
    if vcpus > maxvcpus {
        let how = if maxvcpus_given == 0 {
            format!("default_maxvcpus is 0, meaning the host's {maxvcpus} cores")
        } else {
            format!("default_maxvcpus is {maxvcpus}")
        };
        r.problems.push(Problem::new(
            "default_vcpus",
            format!("{vcpus} exceeds the maximum ({how}); allowed: 1..={maxvcpus}"),
        ));
    }

    let host_ram = host.ram_mib.max(MIN_MEMORY_MIB);
    let maxmem_given = r.int(
        "default_maxmemory",
        DEFAULT_MAXMEMORY_MIB,
        0,
        host_ram,
        " MiB (0 means the host's RAM)",
    );
    let maxmem = if maxmem_given == 0 {
        host_ram
    } else {
        maxmem_given
    };
    let memory = r.int(
        "default_memory",
        DEFAULT_MEMORY_MIB,
        MIN_MEMORY_MIB,
        host_ram,
        " MiB (the host's RAM)",
    );
    if memory > maxmem {
        r.problems.push(Problem::new(
            "default_memory",
            format!("{memory} MiB exceeds default_maxmemory = {maxmem} MiB; allowed: {MIN_MEMORY_MIB}..={maxmem} MiB"),
        ));
    }

    let root_ports = r.int(
        "default_root_ports",
        u64::from(DEFAULT_ROOT_PORTS),
        0,
        u64::from(MAX_ROOT_PORTS),
        "",
    );
    let bridges = r.int(
        "default_bridges",
        u64::from(DEFAULT_BRIDGES),
        0,
        u64::from(MAX_BRIDGES),
        "",
    );
    let slots = r.int(
        "memory_slots",
        u64::from(DEFAULT_MEMORY_SLOTS),
        0,
        u64::from(MAX_MEMORY_SLOTS),
        " (0 disables memory hotplug)",
    );

    let kernel_params = r.text("kernel_params");
    if kernel_params.len() > MAX_KERNEL_PARAMS_LEN {
        r.problems.push(Problem::new(
            "kernel_params",
            format!(
                "is {} bytes long; allowed: at most {MAX_KERNEL_PARAMS_LEN}",
                kernel_params.len()
            ),
        ));
    }
    if kernel_params.chars().any(|c| c.is_control()) {
        r.problems.push(Problem::new(
            "kernel_params",
            "contains a control character (newline, tab, NUL...); allowed: printable text separated by spaces",
        ));
    }

    let kernel = r.path("kernel", Some(DEFAULT_KERNEL)).unwrap_or_default();
    let initrd = r.path("initrd", Some(DEFAULT_INITRD));
    let image = r.path("image", None);
    // aarch64 boots a UEFI ROM: Debian's unless `firmware` names another.
    let default_firmware = (host.arch == Arch::Aarch64).then_some(DEFAULT_FIRMWARE_AARCH64);
    let firmware = r.path("firmware", default_firmware);
    if let (Arch::X86_64, Some(f)) = (host.arch, &firmware) {
        r.problems.push(Problem::new(
            "firmware",
            format!(
                "{} given, but x86_64 boots the kernel directly with the VMM as firmware; remove it",
                f.display()
            ),
        ));
    }

    if !r.problems.is_empty() {
        return Err(r.problems);
    }
    Ok(HypervisorConfig {
        kernel,
        initrd,
        image,
        firmware,
        kernel_params,
        default_vcpus: to_u32(vcpus),
        default_maxvcpus: to_u32(maxvcpus),
        default_root_ports: to_u32(root_ports),
        default_bridges: to_u32(bridges),
        default_memory: memory,
        memory_slots: to_u32(slots),
        default_maxmemory: maxmem,
    })
}

/// Files the configuration names must exist and be regular files.
pub fn check_files(cfg: &HypervisorConfig) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut check = |key: &str, path: &Path| {
        match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => problems.push(Problem::new(
            key,
            format!("{} is not a regular file", path.display()),
        )),
        Err(e) if key == "firmware" && path == Path::new(DEFAULT_FIRMWARE_AARCH64) => problems
            .push(Problem::new(
                key,
                format!(
                    "{}: {e} (the default UEFI ROM: apt-get install qemu-efi-aarch64, or name another)",
                    path.display()
                ),
            )),
        Err(e) => problems.push(Problem::new(key, format!("{}: {e}", path.display()))),
    }
    };
    check("kernel", &cfg.kernel);
    for (key, path) in [
        ("initrd", &cfg.initrd),
        ("image", &cfg.image),
        ("firmware", &cfg.firmware),
    ] {
        if let Some(p) = path {
            check(key, p);
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::raw::Origin;

    const HOST: HostLimits = HostLimits {
        cpus: 2,
        kvm_max_vcpus: 240,
        ram_mib: 24_000,
        arch: Arch::X86_64,
    };

    fn raw(pairs: &[(&'static str, RawValue)]) -> RawConfig {
        let mut r = RawConfig::default();
        for (k, v) in pairs {
            r.set(k, v.clone(), Origin::File);
        }
        r
    }

    fn int(k: &'static str, v: i64) -> (&'static str, RawValue) {
        (k, RawValue::Int(v))
    }

    fn problems(pairs: &[(&'static str, RawValue)]) -> String {
        let p = validate(&raw(pairs), &HOST).expect_err("expected a validation error");
        p.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn test_validate_defaults() {
        let c = validate(&RawConfig::default(), &HOST).unwrap();
        assert_eq!(c.default_vcpus, 1);
        assert_eq!(c.default_maxvcpus, 2, "0 resolves to host cores");
        assert_eq!(c.default_root_ports, 0);
        assert_eq!(c.default_bridges, 1);
        assert_eq!(c.default_memory, 1024);
        assert_eq!(c.memory_slots, 10);
        assert_eq!(c.default_maxmemory, 24_000, "0 resolves to host RAM");
        assert_eq!(c.kernel, PathBuf::from(DEFAULT_KERNEL));
        assert_eq!(c.initrd, Some(PathBuf::from(DEFAULT_INITRD)));
        assert_eq!(c.image, None);
        assert_eq!(c.firmware, None);
        assert_eq!(c.kernel_params, "");
    }

    #[test]
    fn test_validate_maxvcpus_zero_capped_at_kvm_max() {
        let host = HostLimits { cpus: 512, ..HOST };
        let c = validate(&RawConfig::default(), &host).unwrap();
        assert_eq!(c.default_maxvcpus, 240);
    }

    #[test]
    fn test_validate_maxvcpus_above_kvm_max_refused() {
        let msg = problems(&[int("default_maxvcpus", 241)]);
        assert!(
            msg.contains("default_maxvcpus: 241 is out of range; allowed: 0..=240"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_explicit_maxvcpus_may_exceed_host_cores() {
        let c = validate(
            &raw(&[int("default_maxvcpus", 8), int("default_vcpus", 4)]),
            &HOST,
        )
        .unwrap();
        assert_eq!((c.default_vcpus, c.default_maxvcpus), (4, 8));
    }

    #[test]
    fn test_validate_vcpus_zero_refused() {
        let msg = problems(&[int("default_vcpus", 0)]);
        assert!(
            msg.contains("default_vcpus: 0 is out of range; allowed: 1..=240"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_vcpus_above_maxvcpus_refused() {
        let msg = problems(&[int("default_vcpus", 4), int("default_maxvcpus", 2)]);
        assert!(
            msg.contains("default_vcpus: 4 exceeds the maximum (default_maxvcpus is 2)"),
            "{msg}"
        );
        let msg = problems(&[int("default_vcpus", 3)]);
        assert!(
            msg.contains("default_maxvcpus is 0, meaning the host's 2 cores"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_negative_refused() {
        let msg = problems(&[int("memory_slots", -1)]);
        assert!(
            msg.contains("memory_slots: -1 is out of range; allowed: 0..=256"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_memory_zero_and_too_small_refused() {
        let msg = problems(&[int("default_memory", 0)]);
        assert!(
            msg.contains("default_memory: 0 is out of range; allowed: 64..=24000 MiB"),
            "{msg}"
        );
        let msg = problems(&[int("default_memory", 8)]);
        assert!(msg.contains("default_memory: 8 is out of range"), "{msg}");
    }

    #[test]
    fn test_validate_memory_above_host_ram_refused() {
        let msg = problems(&[int("default_memory", 30_000)]);
        assert!(
            msg.contains("default_memory: 30000 is out of range"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_memory_above_maxmemory_refused() {
        let msg = problems(&[int("default_memory", 2048), int("default_maxmemory", 1024)]);
        assert!(
            msg.contains("default_memory: 2048 MiB exceeds default_maxmemory = 1024 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_maxmemory_above_host_ram_refused() {
        let msg = problems(&[int("default_maxmemory", 100_000)]);
        assert!(
            msg.contains("default_maxmemory: 100000 is out of range; allowed: 0..=24000 MiB"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_bridges_range() {
        assert_eq!(
            validate(&raw(&[int("default_bridges", 5)]), &HOST)
                .unwrap()
                .default_bridges,
            5
        );
        let msg = problems(&[int("default_bridges", 6)]);
        assert!(
            msg.contains("default_bridges: 6 is out of range; allowed: 0..=5"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_root_ports_range() {
        let msg = problems(&[int("default_root_ports", 17)]);
        assert!(
            msg.contains("default_root_ports: 17 is out of range; allowed: 0..=16"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_memory_slots_range() {
        assert_eq!(
            validate(&raw(&[int("memory_slots", 0)]), &HOST)
                .unwrap()
                .memory_slots,
            0
        );
        let msg = problems(&[int("memory_slots", 257)]);
        assert!(
            msg.contains("memory_slots: 257 is out of range; allowed: 0..=256"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_kernel_params_rules() {
        let long = "a".repeat(MAX_KERNEL_PARAMS_LEN + 1);
        let msg = problems(&[("kernel_params", RawValue::Text(long))]);
        assert!(
            msg.contains("kernel_params: is 1025 bytes long; allowed: at most 1024"),
            "{msg}"
        );
        let msg = problems(&[("kernel_params", RawValue::Text("a\nb".into()))]);
        assert!(
            msg.contains("kernel_params: contains a control character"),
            "{msg}"
        );
    }

    #[test]
    fn test_validate_firmware_per_arch() {
        let msg = problems(&[("firmware", RawValue::Path("/fw.fd".into()))]);
        assert!(
            msg.contains("firmware: /fw.fd given, but x86_64 boots the kernel directly"),
            "{msg}"
        );
        let arm = HostLimits {
            arch: Arch::Aarch64,
            ..HOST
        };
        let dflt = validate(&RawConfig::default(), &arm).unwrap();
        assert_eq!(dflt.firmware, Some(PathBuf::from(DEFAULT_FIRMWARE_AARCH64)));
        let x86 = validate(&RawConfig::default(), &HOST).unwrap();
        assert_eq!(x86.firmware, None);
        let ok = validate(&raw(&[("firmware", RawValue::Path("/fw.fd".into()))]), &arm).unwrap();
        assert_eq!(ok.firmware, Some(PathBuf::from("/fw.fd")));
    }

    #[test]
    fn test_validate_reports_every_problem_at_once() {
        let p = validate(
            &raw(&[int("default_vcpus", 0), int("default_bridges", 9)]),
            &HOST,
        )
        .unwrap_err();
        assert_eq!(p.len(), 2);
    }

    #[test]
    fn test_check_files_missing_kernel_and_initrd_named() {
        let mut c = validate(&RawConfig::default(), &HOST).unwrap();
        c.kernel = PathBuf::from("/nonexistent/bzImage");
        c.initrd = Some(PathBuf::from("/nonexistent/initrd"));
        let msg: Vec<String> = check_files(&c).iter().map(|p| p.to_string()).collect();
        assert_eq!(msg.len(), 2);
        assert!(
            msg[0].starts_with("kernel: /nonexistent/bzImage:"),
            "{msg:?}"
        );
        assert!(
            msg[1].starts_with("initrd: /nonexistent/initrd:"),
            "{msg:?}"
        );
    }

    #[test]
    fn test_check_files_directory_refused() {
        let mut c = validate(&RawConfig::default(), &HOST).unwrap();
        c.kernel = std::env::temp_dir();
        c.initrd = None;
        let p = check_files(&c);
        assert_eq!(p.len(), 1);
        assert!(
            p[0].to_string().contains("is not a regular file"),
            "{}",
            p[0]
        );
    }
}
