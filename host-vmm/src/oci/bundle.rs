//! An OCI bundle: `DIR/config.json` and the root filesystem it names (`root.path`,
//! relative to the bundle). The command line's options override the spec's.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::namespaces::check_spec_namespaces;
use super::spec::{apply_process, apply_resources, check_args, ProcessOptions, ResourceOptions};
use super::{Problem, SpecError};

/// Largest `config.json` read (specs are a few KiB).
const MAX_CONFIG: u64 = 4 << 20;

/// A bundle, checked, with the command line's options applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Bundle {
    /// The spec to send.
    pub spec: Value,
    /// The root filesystem directory on the host.
    pub rootfs: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_CONFIG} bytes", path.display())]
    TooLarge { path: PathBuf },
    #[error("{}:\n  {spec}", path.display())]
    Spec { path: PathBuf, spec: SpecError },
    #[error("{}: root.path {} is not a directory", config.display(), rootfs.display())]
    NoRootfs { config: PathBuf, rootfs: PathBuf },
}

/// Checks a bundle's `config.json` text and applies the options: namespace policy (every
/// problem at once), the command (`process.args` overridden when `process.args` is given),
/// `-e/-w/-t`, resources; the rootfs is `root.path` resolved against `dir`.
pub fn bundle_spec(
    text: &str,
    dir: &Path,
    process: &ProcessOptions,
    resources: &ResourceOptions,
) -> Result<Bundle, SpecError> {
    let mut spec: Value =
        serde_json::from_str(text).map_err(|e| SpecError::one("config.json", e.to_string()))?;
    if !spec.is_object() {
        return Err(SpecError::one("config.json", "not a JSON object"));
    }
    let mut problems = check_spec_namespaces(&spec);
    let root = match spec.pointer("/root/path").and_then(Value::as_str) {
        Some(p) if !p.is_empty() => Some(dir.join(p)),
        _ => {
            problems.push(Problem::new(
                "root.path",
                "missing: the bundle must name its root filesystem directory",
            ));
            None
        }
    };
    for result in [
        apply_process(&mut spec, process),
        apply_resources(&mut spec, resources),
        check_args(&spec),
    ] {
        if let Err(SpecError(p)) = result {
            problems.extend(p);
        }
    }
    match root {
        Some(rootfs) if problems.is_empty() => Ok(Bundle { spec, rootfs }),
        _ => Err(SpecError(problems)),
    }
}

/// Reads and checks `dir/config.json` ([`bundle_spec`]); the rootfs must be a directory.
pub fn read_bundle(
    dir: &Path,
    process: &ProcessOptions,
    resources: &ResourceOptions,
) -> Result<Bundle, BundleError> {
    use std::io::Read;
    let path = dir.join("config.json");
    let read = |source| BundleError::Read {
        path: path.clone(),
        source,
    };
    let file = std::fs::File::open(&path).map_err(read)?;
    let mut text = String::new();
    file.take(MAX_CONFIG + 1)
        .read_to_string(&mut text)
        .map_err(read)?;
    if text.len() as u64 > MAX_CONFIG {
        return Err(BundleError::TooLarge { path });
    }
    let bundle = bundle_spec(&text, dir, process, resources).map_err(|spec| BundleError::Spec {
        path: path.clone(),
        spec,
    })?;
    if !bundle.rootfs.is_dir() {
        return Err(BundleError::NoRootfs {
            config: path,
            rootfs: bundle.rootfs,
        });
    }
    Ok(bundle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(mutate: impl FnOnce(&mut Value)) -> String {
        let mut spec = super::super::default_spec("bundle");
        spec["process"]["args"] = json!(["/bin/app", "--serve"]);
        mutate(&mut spec);
        spec.to_string()
    }

    #[test]
    fn test_bundle_keeps_args_and_resolves_rootfs() {
        let b = bundle_spec(
            &config(|_| {}),
            Path::new("/b"),
            &ProcessOptions::default(),
            &ResourceOptions::default(),
        )
        .unwrap();
        assert_eq!(b.rootfs, Path::new("/b/rootfs"));
        assert_eq!(b.spec["process"]["args"], json!(["/bin/app", "--serve"]));
        // An absolute root.path stays as it is.
        let b = bundle_spec(
            &config(|s| s["root"]["path"] = json!("/images/x")),
            Path::new("/b"),
            &ProcessOptions::default(),
            &ResourceOptions::default(),
        )
        .unwrap();
        assert_eq!(b.rootfs, Path::new("/images/x"));
    }

    #[test]
    fn test_bundle_cli_overrides() {
        let process = ProcessOptions {
            args: vec!["sh".into()],
            env: vec!["X=1".into()],
            cwd: Some("/srv".into()),
            terminal: true,
        };
        let resources = ResourceOptions {
            memory_mib: Some(128),
            ..Default::default()
        };
        let b = bundle_spec(&config(|_| {}), Path::new("/b"), &process, &resources).unwrap();
        assert_eq!(b.spec["process"]["args"], json!(["sh"]));
        assert_eq!(b.spec["process"]["cwd"], "/srv");
        assert_eq!(b.spec["process"]["terminal"], true);
        assert_eq!(b.spec["linux"]["resources"]["memory"]["limit"], 128 << 20);
        assert!(b.spec["process"]["env"]
            .as_array()
            .unwrap()
            .contains(&json!("X=1")));
    }

    #[test]
    fn test_bundle_refusals_all_at_once() {
        let text = config(|s| {
            s["linux"]["namespaces"] = json!([
                {"type": "pid"},
                {"type": "network", "path": "/proc/1/ns/net"},
                {"type": "mount"}
            ]);
            s["root"] = json!({});
            s["process"]["args"] = json!([]);
        });
        let e = bundle_spec(
            &text,
            Path::new("/b"),
            &ProcessOptions::default(),
            &ResourceOptions::default(),
        )
        .unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "linux.namespaces[1].path",
                "linux.namespaces",
                "linux.namespaces",
                "root.path",
                "command"
            ],
            "{e}"
        );
    }

    #[test]
    fn test_bundle_syntax_error() {
        let e = bundle_spec(
            "{",
            Path::new("/b"),
            &ProcessOptions::default(),
            &ResourceOptions::default(),
        )
        .unwrap_err();
        assert_eq!(e.0[0].field, "config.json");
        assert!(bundle_spec(
            "[1]",
            Path::new("/b"),
            &ProcessOptions::default(),
            &ResourceOptions::default()
        )
        .is_err());
    }

    #[test]
    fn test_read_bundle_files() {
        let dir = std::env::temp_dir().join(format!("host-vmm-bundle-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let opts = (ProcessOptions::default(), ResourceOptions::default());
        let e = read_bundle(&dir, &opts.0, &opts.1).unwrap_err();
        assert!(matches!(e, BundleError::Read { .. }), "{e}");
        std::fs::write(dir.join("config.json"), config(|_| {})).unwrap();
        let e = read_bundle(&dir, &opts.0, &opts.1).unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        std::fs::create_dir(dir.join("rootfs")).unwrap();
        let b = read_bundle(&dir, &opts.0, &opts.1).unwrap();
        assert_eq!(b.rootfs, dir.join("rootfs"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
