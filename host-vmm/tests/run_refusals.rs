//! `host-vmm run` refuses what a VM cannot give before anything starts: exit status 1, a
//! message naming the flag and why, and no runtime directory (nor VM) left behind. These
//! need no KVM: the refusal comes before the configuration is even read.

use std::path::PathBuf;
use std::process::Command;

fn runtime_root(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("host-vmm-refusals-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Runs `host-vmm ARGS` with its runtime root at `root`; returns (status, stderr).
fn host_vmm(root: &PathBuf, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_host-vmm"))
        .args(args)
        .env("HOST_VMM_RUNTIME_DIR", root)
        .env("HOST_VMM_CONFIG", "/nonexistent/configuration.toml")
        .output()
        .expect("cannot run host-vmm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_run_host_namespaces_refused_before_boot() {
    for (flag, why) in [
        ("--net", "cannot join the host's network namespace"),
        ("--ipc", "cannot join the host's IPC namespace"),
        ("--pid", "cannot join the host's pid namespace"),
        ("--uts", "cannot join the host's uts namespace"),
    ] {
        let root = runtime_root(&flag[2..]);
        let (status, stderr) = host_vmm(
            &root,
            &["run", "--id", "refused", flag, "host", "--", "true"],
        );
        assert_eq!(status, 1, "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag}: host is refused")),
            "{stderr}"
        );
        assert!(stderr.contains(why), "{stderr}");
        assert!(stderr.contains("allowed:"), "{stderr}");
        assert!(!root.exists(), "{flag}: {} was created", root.display());
    }
}

#[test]
fn test_run_bad_options_refused_before_boot() {
    let root = runtime_root("opts");
    for (args, want) in [
        (
            &["run", "--net", "bridge", "--", "true"][..],
            "--net: unknown mode \"bridge\"",
        ),
        (
            &["run", "-e", "NOEQUALS", "--", "true"],
            "-e: \"NOEQUALS\" is not KEY=VALUE",
        ),
        (
            &["run", "-w", "rel", "--", "true"],
            "-w: \"rel\" is not an absolute path",
        ),
        (&["run", "--cpus", "0", "--", "true"], "--cpus"),
        (&["run"], "nothing to run"),
        (&["run", "--bundle", "/nonexistent-bundle"], "config.json"),
    ] {
        let (status, stderr) = host_vmm(&root, args);
        assert_eq!(status, 1, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!root.exists(), "{args:?}: {} was created", root.display());
    }
}
