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

/// Ids follow one rule at every command (issue 10, finding 8: a non-ASCII id panicked the
/// CLI). A refused id is a clear error naming the field and the rule, exit 1, no panic, and
/// nothing created.
#[test]
fn test_bad_ids_refused_at_every_command_without_panic() {
    let root = runtime_root("ids");
    let long = "x".repeat(65);
    // Byte 64 falls inside a character: the old `&id[..64]` panicked here.
    let long_non_ascii = format!("a{}", "é".repeat(40));
    // (`-x` would be parsed as an option: `x-` breaks the same separator rule.)
    for bad in [
        "café",
        "",
        &long,
        &long_non_ascii,
        "../x",
        "a/b",
        "x-",
        "日本語のコンテナ名",
    ] {
        for (args, field) in [
            (vec!["run", "--id", bad, "--", "true"], "--id"),
            (vec!["boot", "--id", bad], "--id"),
            (vec!["create", "pod1", bad, "--", "true"], "container id"),
            (vec!["create", bad, "web", "--", "true"], "sandbox id"),
            (vec!["start", "pod1", bad], "container id"),
            (vec!["exec", "pod1", bad, "--", "true"], "container id"),
            (vec!["kill", "pod1", bad], "container id"),
            (vec!["wait", "pod1", bad], "container id"),
            (vec!["delete", "pod1", bad], "container id"),
            (vec!["stats", "pod1", bad], "container id"),
            (
                vec!["update", "pod1", bad, "--memory", "64"],
                "container id",
            ),
            (vec!["ps", bad], "sandbox id"),
            (vec!["memory", bad], "sandbox id"),
            (vec!["disk", bad, "--add", "/dev/null"], "sandbox id"),
            (vec!["agent", "check", bad], "sandbox id"),
        ] {
            let (status, stderr) = host_vmm(&root, &args);
            assert_eq!(status, 1, "{args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!("host-vmm: error: {field}: ")),
                "{args:?}: {stderr}"
            );
            assert!(
                stderr.contains("64 characters matching [A-Za-z0-9]+([._-][A-Za-z0-9]+)*"),
                "{args:?}: {stderr}"
            );
            assert!(!root.exists(), "{args:?}: {} was created", root.display());
        }
    }
}
