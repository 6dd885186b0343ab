//! SELF-TEST, not the product path: with `agent.selftest=containers` on the kernel command
//! line the agent, after its ready line, drives the engine directly (no RPC) against the
//! built-in busybox image and prints one machine-readable line on the console:
//!
//! ```text
//! SELFTEST containers PASS
//! SELFTEST containers FAIL <reason>
//! ```
//!
//! preceded by `SELFTEST containers: <detail>` lines showing what the containers printed.
//! tests/scenarios/40-container-selftest.sh boots a guest with it and checks the line. It is
//! the engine's own check; its last part drives the same engine through the RPC handlers.
//!
//! What it checks, in a sandbox with private pid namespaces:
//! 1. `hello`: a container with memory and pids limits prints `hello-from-container`, its
//!    hostname, `0::/sandbox/hello` as its cgroup, `uid=0(root) gid=0(root)`, `pid=1`, the
//!    pod's loopback `lo` up (flags 0x9) and no other interface but the kernel's tunnel
//!    fallbacks (`sit0`); exit code 0; the limits are in
//!    its cgroup files; removal leaves no cgroup and no rootfs directory.
//!    Also its cgroup files (memory.max, memory.swap.max, pids.max, cpu.weight, cpu.max,
//!    cpuset.cpus), Docker's default capabilities, no_new_privs, RLIMIT_NOFILE, a writable
//!    root, a read-only `/proc/sys`, a file from `/run/sandbox/shared` bound read-only.
//! 2. `sleeper`: `sleep 600` on a read-only root; exec into it (same hostname, sees
//!    `sleep 600` as its pid 1, cannot write `/`), exec with a terminal, exec as uid 1000,
//!    stats, a live pids limit update, SIGKILL gives 137, removal.
//! 3. `term`: an init with a terminal (`tty` says `/dev/console`); `never`: removed before
//!    it was started.
//! 4. refusals: a spec joining `/proc/1/ns/net`, a bind of the guest's `/etc`, a program missing from the image (no cgroup
//!    left behind).
//!
//! Then a second sandbox with `share_pid`: a `sleep` container is visible from another one.
//! Last, the container RPCs end to end over a ttrpc socket (`crate::rpc::selftest`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use super::rootfs::RootfsSource;
use super::spec::{
    default_spec, CpuResources, Linux, MemoryResources, Mount, Namespace, PidsResources, Process,
    Resources, Spec,
};
use super::{CreateRequest, Status, DEFAULT_IMAGE};
use crate::console;
use crate::init::reaper::Reaper;
use crate::sandbox::{Sandbox, SandboxConfig};

/// The name after `agent.selftest=`.
pub const NAME: &str = "containers";

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(60));

/// Runs the self-test and prints its result line.
pub fn run(reaper: &Reaper) {
    match run_all(reaper) {
        Ok(()) => console::write_line("SELFTEST containers PASS"),
        Err(reason) => console::write_line(&format!(
            "SELFTEST containers FAIL {}",
            reason.replace('\n', " | ")
        )),
    }
}

fn say(line: &str) {
    console::write_line(&format!("SELFTEST containers: {line}"));
}

fn run_all(reaper: &Reaper) -> Result<(), String> {
    let config = SandboxConfig::new("selftest");
    let cgroup_dir = config.cgroup_root.join("sandbox");
    let sandbox =
        Sandbox::create(config, reaper.clone()).map_err(|e| chain("create sandbox", &e))?;
    let result = private_pid_checks(&sandbox);
    let destroyed = sandbox
        .destroy(TIMEOUT)
        .map_err(|e| chain("destroy sandbox", &e));
    result?;
    destroyed?;
    if cgroup_dir.exists() {
        return Err(format!(
            "{} still exists after destroy",
            cgroup_dir.display()
        ));
    }

    let mut config = SandboxConfig::new("selftest-shared");
    config.share_pid = true;
    let sandbox = Sandbox::create(config, reaper.clone())
        .map_err(|e| chain("create sandbox with share_pid", &e))?;
    let result = shared_pid_checks(&sandbox);
    let destroyed = sandbox
        .destroy(TIMEOUT)
        .map_err(|e| chain("destroy shared sandbox", &e));
    result?;
    destroyed?;

    // The same engine through the RPC handlers, over a ttrpc socket.
    crate::rpc::selftest::run(reaper).map_err(|e| format!("rpc: {e}"))
}

fn chain(what: &str, e: &dyn std::error::Error) -> String {
    format!("{what}: {}", crate::init::error_chain(e))
}

fn request(id: &str, spec: Spec) -> CreateRequest {
    CreateRequest {
        id: id.into(),
        exec_id: id.into(),
        spec,
        rootfs: RootfsSource::Dir(DEFAULT_IMAGE.into()),
    }
}

fn sh(script: &str, hostname: &str) -> Spec {
    default_spec(vec!["sh".into(), "-c".into(), script.into()], hostname)
}

/// Reads a process's stdout to end-of-file, waits for it, returns (stdout lines, exit code).
fn collect(sandbox: &Sandbox, id: &str, exec_id: &str) -> Result<(Vec<String>, i32), String> {
    let process = sandbox
        .process(id, exec_id)
        .map_err(|e| chain("find process", &e))?;
    let mut out = Vec::new();
    loop {
        let chunk = process
            .io()
            .read_stdout(0)
            .map_err(|e| format!("read stdout of {exec_id}: {e}"))?;
        if chunk.is_empty() {
            break;
        }
        out.extend_from_slice(&chunk);
    }
    let err = process.io().read_stderr(0).unwrap_or_default();
    let code = sandbox
        .wait_process(id, exec_id)
        .map_err(|e| chain("wait", &e))?;
    let text = String::from_utf8_lossy(&out).into_owned();
    for line in text.lines() {
        say(&format!("{id}/{exec_id}| {line}"));
    }
    for line in String::from_utf8_lossy(&err).lines() {
        say(&format!("{id}/{exec_id} stderr| {line}"));
    }
    Ok((text.lines().map(str::to_string).collect(), code))
}

fn expect(what: &str, ok: bool, detail: impl std::fmt::Display) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("{what}: {detail}"))
    }
}

fn read_trim(path: &Path) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|e| format!("<{}: {e}>", path.display()))
}

fn private_pid_checks(sandbox: &Sandbox) -> Result<(), String> {
    hello(sandbox)?;
    sleeper(sandbox)?;
    terminal_and_unstarted(sandbox)?;
    refusals(sandbox)
}

/// A container whose init has a terminal (`/dev/console` is it), and one removed before it
/// was ever started.
fn terminal_and_unstarted(sandbox: &Sandbox) -> Result<(), String> {
    let mut spec = sh("tty; test -t 0 && echo tty-ok", "term");
    if let Some(p) = spec.process.as_mut() {
        p.terminal = true;
    }
    sandbox
        .create_container(request("term", spec))
        .map_err(|e| chain("create term", &e))?;
    sandbox
        .start_container("term")
        .map_err(|e| chain("start term", &e))?;
    let (lines, code) = collect(sandbox, "term", "term")?;
    expect("term exit code", code == 0, code)?;
    let lines: Vec<&str> = lines.iter().map(|l| l.trim_end()).collect();
    expect(
        "term output",
        lines == ["/dev/console", "tty-ok"],
        format!("{lines:?}"),
    )?;
    sandbox
        .remove_container("term", TIMEOUT)
        .map_err(|e| chain("remove term", &e))?;

    sandbox
        .create_container(request("never", default_spec(vec!["true".into()], "never")))
        .map_err(|e| chain("create never", &e))?;
    let cg = sandbox
        .container("never")
        .map_err(|e| chain("never", &e))?
        .cgroup_path()
        .to_path_buf();
    sandbox
        .remove_container("never", TIMEOUT)
        .map_err(|e| chain("remove never (not started)", &e))?;
    expect("never cgroup removed", !cg.exists(), cg.display())?;
    expect(
        "never forgotten",
        sandbox.container("never").is_err(),
        "still registered",
    )?;
    say("terminal init and exec, remove before start: ok");
    Ok(())
}

/// Devices every network namespace has: loopback and the kernel's tunnel fallback devices.
const TUNNEL_FALLBACKS: [&str; 7] = [
    "lo", "sit0", "tunl0", "ip6tnl0", "gre0", "ip_vti0", "ip6_vti0",
];

/// A check of one output line.
type LineCheck = fn(&str) -> bool;

fn hello(sandbox: &Sandbox) -> Result<(), String> {
    let script = "echo hello-from-container; hostname; cat /proc/self/cgroup; id; echo pid=$$; \
                  cat /sys/class/net/lo/flags; echo $(ls /sys/class/net); \
                  grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -s '\\t' ' '; \
                  ulimit -n; echo written >/tmp/f && cat /tmp/f; \
                  (echo x >/proc/sys/kernel/domainname) 2>/dev/null && echo proc-sys-rw \
                  || echo proc-sys-ro; cat /greeting; \
                  (echo x >/greeting) 2>/dev/null && echo bind-rw || echo bind-ro";
    let mut spec = sh(script, "hello-host");
    let shared = sandbox.config().shared_dir().join("greeting");
    fs::write(&shared, "hi from the sandbox\n")
        .map_err(|e| format!("write {}: {e}", shared.display()))?;
    spec.mounts.push(Mount {
        destination: "/greeting".into(),
        kind: Some("bind".into()),
        source: Some(shared.display().to_string()),
        options: vec!["rbind".into(), "ro".into()],
    });
    spec.linux.get_or_insert_with(Linux::default).resources = Some(Resources {
        memory: Some(MemoryResources {
            limit: Some(64 << 20),
            swap: Some(128 << 20),
        }),
        pids: Some(PidsResources { limit: Some(32) }),
        cpu: Some(CpuResources {
            shares: Some(512),
            quota: Some(50_000),
            period: Some(100_000),
            cpus: Some("0".into()),
            mems: None,
        }),
    });
    sandbox
        .create_container(request("hello", spec))
        .map_err(|e| chain("create hello", &e))?;
    let container = sandbox.container("hello").map_err(|e| chain("hello", &e))?;
    expect(
        "hello status after create",
        container.status() == Status::Created,
        format!("{:?}", container.status()),
    )?;
    let cg = container.cgroup_path().to_path_buf();
    for (file, want) in [
        ("memory.max", "67108864"),
        ("memory.swap.max", "67108864"),
        ("pids.max", "32"),
        ("cpu.weight", "20"),
        ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0"),
    ] {
        let got = read_trim(&cg.join(file));
        expect(
            &format!("hello {file}"),
            got == want,
            format!("want {want}, got {got}"),
        )?;
    }
    sandbox
        .start_container("hello")
        .map_err(|e| chain("start hello", &e))?;
    let (lines, code) = collect(sandbox, "hello", "hello")?;
    expect("hello exit code", code == 0, code)?;
    let want: [(&str, LineCheck); 15] = [
        ("hello-from-container", |l| l == "hello-from-container"),
        ("hostname hello-host", |l| l == "hello-host"),
        ("cgroup 0::/sandbox/hello", |l| l == "0::/sandbox/hello"),
        ("id uid=0(root) gid=0(root)", |l| {
            l.starts_with("uid=0(root) gid=0(root)")
        }),
        ("pid=1 (own pid namespace)", |l| l == "pid=1"),
        ("lo flags 0x9 (up)", |l| l == "0x9"),
        ("no interface but lo and tunnel fallbacks (sit0)", |l| {
            l.split(' ').any(|i| i == "lo") && l.split(' ').all(|i| TUNNEL_FALLBACKS.contains(&i))
        }),
        ("Docker's default effective caps", |l| {
            l == "CapEff: 00000000a80425fb"
        }),
        ("Docker's default bounding caps", |l| {
            l == "CapBnd: 00000000a80425fb"
        }),
        ("no_new_privs", |l| l == "NoNewPrivs: 1"),
        ("RLIMIT_NOFILE 1024", |l| l == "1024"),
        ("a writable root", |l| l == "written"),
        ("/proc/sys read-only", |l| l == "proc-sys-ro"),
        ("the shared file bind-mounted", |l| {
            l == "hi from the sandbox"
        }),
        ("read-only bind", |l| l == "bind-ro"),
    ];
    for (i, (what, check)) in want.iter().enumerate() {
        let line = lines.get(i).map(String::as_str).unwrap_or("<missing>");
        expect(
            &format!("hello line {}", i + 1),
            check(line),
            format!("want {what}, got {line:?}"),
        )?;
    }
    expect(
        "hello output length",
        lines.len() == want.len(),
        format!("{lines:?}"),
    )?;
    sandbox
        .remove_container("hello", TIMEOUT)
        .map_err(|e| chain("remove hello", &e))?;
    expect("hello cgroup removed", !cg.exists(), cg.display())?;
    let dir = sandbox.config().run_dir.join("containers/hello");
    expect("hello rootfs removed", !dir.exists(), dir.display())?;
    say("hello: ok");
    Ok(())
}

fn process(args: &[&str], uid: u32) -> Process {
    let mut p = default_spec(args.iter().map(|s| s.to_string()).collect(), "x")
        .process
        .unwrap_or_default();
    p.user.uid = uid;
    p.user.gid = uid;
    p
}

fn sleeper(sandbox: &Sandbox) -> Result<(), String> {
    let mut spec = default_spec(vec!["sleep".into(), "600".into()], "sleeper");
    if let Some(root) = spec.root.as_mut() {
        root.readonly = true;
    }
    sandbox
        .create_container(request("sleeper", spec))
        .map_err(|e| chain("create sleeper", &e))?;
    sandbox
        .start_container("sleeper")
        .map_err(|e| chain("start sleeper", &e))?;
    let probe = process(
        &[
            "sh",
            "-c",
            "hostname; tr '\\0' ' ' </proc/1/cmdline; echo; id -u; \
             touch /x 2>/dev/null && echo root-rw || echo root-ro",
        ],
        0,
    );
    sandbox
        .exec_process("sleeper", "probe", &probe)
        .map_err(|e| chain("exec probe", &e))?;
    let (lines, code) = collect(sandbox, "sleeper", "probe")?;
    expect("probe exit code", code == 0, code)?;
    expect(
        "probe output (hostname, pid 1, uid, read-only root)",
        lines == ["sleeper", "sleep 600 ", "0", "root-ro"],
        format!("{lines:?}"),
    )?;

    let mut tty = process(&["sh", "-c", "test -t 0 && test -t 1 && echo tty-ok"], 0);
    tty.terminal = true;
    sandbox
        .exec_process("sleeper", "tty", &tty)
        .map_err(|e| chain("exec with a terminal", &e))?;
    let (lines, code) = collect(sandbox, "sleeper", "tty")?;
    expect("terminal exec exit code", code == 0, code)?;
    let first = lines.first().map(|l| l.trim_end()).unwrap_or("");
    expect(
        "terminal exec output",
        first == "tty-ok",
        format!("{lines:?}"),
    )?;

    sandbox
        .exec_process("sleeper", "user", &process(&["id"], 1000))
        .map_err(|e| chain("exec as uid 1000", &e))?;
    let (lines, code) = collect(sandbox, "sleeper", "user")?;
    expect("uid 1000 exit code", code == 0, code)?;
    let first = lines.first().map(String::as_str).unwrap_or("");
    expect("uid 1000 id", first.starts_with("uid=1000 gid=1000"), first)?;

    let stats = sandbox
        .stats_container("sleeper")
        .map_err(|e| chain("stats", &e))?;
    say(&format!(
        "sleeper stats: pids={} memory={} cpu_usec={}",
        stats.pids_current, stats.memory_current, stats.cpu_usage_usec
    ));
    expect(
        "stats pids_current",
        stats.pids_current >= 1,
        stats.pids_current,
    )?;
    expect(
        "stats memory_current",
        stats.memory_current > 0,
        stats.memory_current,
    )?;

    let update = Resources {
        pids: Some(PidsResources { limit: Some(16) }),
        ..Default::default()
    };
    sandbox
        .update_container("sleeper", &update)
        .map_err(|e| chain("update", &e))?;
    let cg = sandbox
        .container("sleeper")
        .map_err(|e| chain("sleeper", &e))?
        .cgroup_path()
        .to_path_buf();
    let pids_max = read_trim(&cg.join("pids.max"));
    expect("updated pids.max", pids_max == "16", &pids_max)?;

    sandbox
        .signal_process("sleeper", "sleeper", libc::SIGKILL)
        .map_err(|e| chain("signal", &e))?;
    let code = sandbox
        .wait_process("sleeper", "sleeper")
        .map_err(|e| chain("wait sleeper", &e))?;
    expect("SIGKILL exit code", code == 137, code)?;
    sandbox
        .remove_container("sleeper", TIMEOUT)
        .map_err(|e| chain("remove sleeper", &e))?;
    expect("sleeper cgroup removed", !cg.exists(), cg.display())?;
    say("sleeper: exec, uid, stats, update, signal: ok");
    Ok(())
}

fn refusals(sandbox: &Sandbox) -> Result<(), String> {
    let mut spec = sh("true", "x");
    spec.linux.get_or_insert_with(Linux::default).namespaces = vec![Namespace {
        kind: "network".into(),
        path: Some("/proc/1/ns/net".into()),
    }];
    let err = match sandbox.create_container(request("hostns", spec)) {
        Ok(()) => return Err("a spec joining /proc/1/ns/net was accepted".into()),
        Err(e) => e.to_string(),
    };
    expect(
        "host namespace refusal",
        err.contains("joins the host's net namespace"),
        &err,
    )?;
    let mut spec = sh("true", "x");
    spec.mounts.push(Mount {
        destination: "/host-etc".into(),
        kind: Some("bind".into()),
        source: Some("/etc".into()),
        options: vec!["rbind".into()],
    });
    let err = match sandbox.create_container(request("hostbind", spec)) {
        Ok(()) => return Err("a bind of the guest's /etc was accepted".into()),
        Err(e) => e.to_string(),
    };
    expect(
        "bind outside the shared directory refused",
        err.contains("is outside /run/sandbox/shared"),
        &err,
    )?;
    let spec = default_spec(vec!["no-such-program".into()], "x");
    let err = match sandbox.create_container(request("missing", spec)) {
        Ok(()) => return Err("a missing program was accepted".into()),
        Err(e) => e.to_string(),
    };
    expect("missing program", err.contains("not found in $PATH"), &err)?;
    let leftover = sandbox.config().cgroup_root.join("sandbox/missing");
    expect(
        "no cgroup left by a failed create",
        !leftover.exists(),
        leftover.display(),
    )?;
    say(&format!("refusals: ok ({err})"));
    Ok(())
}

fn shared_pid_checks(sandbox: &Sandbox) -> Result<(), String> {
    sandbox
        .create_container(request(
            "a",
            default_spec(vec!["sleep".into(), "600".into()], "a"),
        ))
        .map_err(|e| chain("create a", &e))?;
    sandbox
        .start_container("a")
        .map_err(|e| chain("start a", &e))?;
    let script = "cat /proc/[0-9]*/comm | sort | tr '\\n' ' '";
    sandbox
        .create_container(request("b", sh(script, "b")))
        .map_err(|e| chain("create b", &e))?;
    sandbox
        .start_container("b")
        .map_err(|e| chain("start b", &e))?;
    let (lines, code) = collect(sandbox, "b", "b")?;
    expect("b exit code", code == 0, code)?;
    let seen = lines.first().cloned().unwrap_or_default();
    expect(
        "b sees a's sleep",
        seen.split(' ').any(|c| c == "sleep"),
        &seen,
    )?;
    say("shared pid namespace: ok");
    Ok(())
}
