//! SELF-TEST, not the product path: the container RPCs end to end inside the guest, over a
//! Unix-socket ttrpc server of their own (the real handlers, the real engine, busybox from
//! the built-in image). The container self-test (`agent.selftest=containers`) runs it last;
//! its lines are `SELFTEST containers: rpc| ...`. Host-side unit tests cannot do this: the
//! engine re-executes the agent binary as its setup helper and needs the guest's initramfs
//! root and built-in image.
//!
//! What it checks: CreateSandbox (twice: ALREADY_EXISTS); a container running
//! `echo hi; echo oops >&2; exit 7` created, listed as created, started, its stdout and
//! stderr read to EOF, waited for (7, no OOM), listed as stopped, restarted (FAILED_PRECONDITION);
//! a `sleep` container with a stdout read blocked on it while an exec `cat` gets stdin,
//! stats, ListContainers with both exec ids, SIGKILL (137); a container killed by its memory
//! limit (`oom_killed`); bad requests (both rootfs kinds, an unknown container); removal and
//! DestroySandbox, after which the calls answer FAILED_PRECONDITION.

use std::time::Duration;

use protocol::agent::*;
use protocol::agent_ttrpc::AgentServiceClient;
use protocol::ttrpc::{self, context, Code};

use super::Agent;
use crate::container::spec::{default_spec, Linux, MemoryResources, Resources, Spec};
use crate::init::reaper::Reaper;
use crate::server::serve_on;

const SOCKET: &str = "/run/rpc-selftest.sock";

fn say(line: &str) {
    crate::console::write_line(&format!("SELFTEST containers: rpc| {line}"));
}

/// Runs the RPC self-test; `Err` says what failed.
pub fn run(reaper: &Reaper) -> Result<(), String> {
    let _ = std::fs::remove_file(SOCKET);
    let addr = format!("unix://{SOCKET}");
    let server = serve_on(&addr, Agent::new(Some(reaper.clone())))
        .map_err(|e| format!("serve on {addr}: {}", crate::init::error_chain(&e)))?;
    let result = ttrpc::Client::connect(&addr)
        .map_err(|e| format!("connect {addr}: {e}"))
        .and_then(|client| drive(&AgentServiceClient::new(client)));
    // Not shutdown(): see `serve_on`.
    drop(server.stop_listen());
    let _ = std::fs::remove_file(SOCKET);
    result
}

fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(120).as_nanos() as i64)
}

fn ok<T>(what: &str, r: ttrpc::Result<T>) -> Result<T, String> {
    r.map_err(|e| format!("{what}: {e:?}"))
}

/// The call must fail with `code`.
fn refused<T: std::fmt::Debug>(what: &str, r: ttrpc::Result<T>, code: Code) -> Result<(), String> {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) if s.code() == code => {
            say(&format!("{what}: {:?} {}", code, s.message));
            Ok(())
        }
        other => Err(format!("{what}: want {code:?}, got {other:?}")),
    }
}

fn check(what: &str, good: bool, detail: impl std::fmt::Debug) -> Result<(), String> {
    if good {
        Ok(())
    } else {
        Err(format!("{what}: {detail:?}"))
    }
}

fn sh(script: &str) -> Spec {
    default_spec(vec!["sh".into(), "-c".into(), script.into()], "rpc")
}

fn create(a: &AgentServiceClient, id: &str, spec: &Spec) -> Result<(), String> {
    let mut req = CreateContainerRequest::new();
    req.container_id = id.into();
    req.exec_id = id.into();
    req.oci_spec_json = serde_json::to_string(spec).map_err(|e| format!("spec json: {e}"))?;
    ok(&format!("create {id}"), a.create_container(ctx(), &req))?;
    Ok(())
}

fn start(a: &AgentServiceClient, id: &str) -> Result<(), String> {
    let mut req = StartContainerRequest::new();
    req.container_id = id.into();
    ok(&format!("start {id}"), a.start_container(ctx(), &req))?;
    Ok(())
}

fn stream_req(id: &str, exec_id: &str) -> ReadStreamRequest {
    let mut req = ReadStreamRequest::new();
    req.container_id = id.into();
    req.exec_id = exec_id.into();
    req
}

/// Reads stdout (or stderr) to EOF.
fn read_all(
    a: &AgentServiceClient,
    id: &str,
    exec_id: &str,
    stderr: bool,
) -> Result<String, String> {
    let req = stream_req(id, exec_id);
    let mut out = Vec::new();
    loop {
        let r = if stderr {
            a.read_stderr(ctx(), &req)
        } else {
            a.read_stdout(ctx(), &req)
        };
        let chunk = ok(&format!("read {id}/{exec_id}"), r)?.data;
        if chunk.is_empty() {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
        out.extend_from_slice(&chunk);
    }
}

fn wait(a: &AgentServiceClient, id: &str, exec_id: &str) -> Result<WaitProcessResponse, String> {
    let mut req = WaitProcessRequest::new();
    req.container_id = id.into();
    req.exec_id = exec_id.into();
    ok(&format!("wait {id}/{exec_id}"), a.wait_process(ctx(), &req))
}

fn list(a: &AgentServiceClient) -> Result<Vec<ContainerInfo>, String> {
    Ok(ok(
        "list",
        a.list_containers(ctx(), &ListContainersRequest::new()),
    )?
    .containers)
}

fn remove(a: &AgentServiceClient, id: &str) -> Result<(), String> {
    let mut req = RemoveContainerRequest::new();
    req.container_id = id.into();
    req.timeout = 60;
    ok(&format!("remove {id}"), a.remove_container(ctx(), &req))?;
    Ok(())
}

fn drive(a: &AgentServiceClient) -> Result<(), String> {
    let mut req = CreateSandboxRequest::new();
    req.sandbox_id = "rpc-selftest".into();
    req.hostname = "rpc".into();
    ok("create sandbox", a.create_sandbox(ctx(), &req))?;
    let result = containers(a);
    let destroyed = ok(
        "destroy sandbox",
        a.destroy_sandbox(ctx(), &DestroySandboxRequest::new()),
    );
    result?;
    destroyed?;
    refused(
        "list after destroy",
        a.list_containers(ctx(), &ListContainersRequest::new()),
        Code::FAILED_PRECONDITION,
    )?;
    say("ok");
    Ok(())
}

fn containers(a: &AgentServiceClient) -> Result<(), String> {
    let mut again = CreateSandboxRequest::new();
    again.sandbox_id = "second".into();
    refused(
        "second sandbox",
        a.create_sandbox(ctx(), &again),
        Code::ALREADY_EXISTS,
    )?;

    // echo: output, exit code, states.
    create(a, "echo", &sh("echo hi; echo oops >&2; exit 7"))?;
    let listed = list(a)?;
    check(
        "list after create",
        listed.len() == 1 && listed[0].status == "created" && listed[0].init_pid > 0,
        &listed,
    )?;
    start(a, "echo")?;
    let out = read_all(a, "echo", "echo", false)?;
    let err = read_all(a, "echo", "echo", true)?;
    check("echo stdout", out == "hi\n", &out)?;
    check("echo stderr", err == "oops\n", &err)?;
    let w = wait(a, "echo", "echo")?;
    check(
        "echo exit",
        w.status == 7 && !w.oom_killed,
        (w.status, w.oom_killed),
    )?;
    say(&format!("echo: {out:?} {err:?} exit {}", w.status));
    let listed = list(a)?;
    check(
        "list after exit",
        listed[0].status == "stopped" && listed[0].init_pid == 0 && listed[0].exec_ids.is_empty(),
        &listed,
    )?;
    let mut restart = StartContainerRequest::new();
    restart.container_id = "echo".into();
    refused(
        "start a stopped container",
        a.start_container(ctx(), &restart),
        Code::FAILED_PRECONDITION,
    )?;
    remove(a, "echo")?;

    sleeper(a)?;
    oom(a)?;
    bad_requests(a)
}

/// A blocked read on one process does not hold up the others; exec with stdin; stats; kill.
fn sleeper(a: &AgentServiceClient) -> Result<(), String> {
    create(a, "sleeper", &sh("exec sleep 600"))?;
    start(a, "sleeper")?;
    let blocked = {
        let a = a.clone();
        std::thread::spawn(move || read_all(&a, "sleeper", "sleeper", false))
    };
    let mut exec = ExecProcessRequest::new();
    exec.container_id = "sleeper".into();
    exec.exec_id = "cat".into();
    exec.process_json = serde_json::to_string(&default_spec(vec!["cat".into()], "rpc").process)
        .map_err(|e| format!("process json: {e}"))?;
    ok("exec cat", a.exec_process(ctx(), &exec))?;
    let listed = list(a)?;
    check(
        "list with an exec",
        listed.len() == 1
            && listed[0].status == "running"
            && listed[0].exec_ids == ["sleeper", "cat"],
        &listed,
    )?;
    let mut write = WriteStreamRequest::new();
    write.container_id = "sleeper".into();
    write.exec_id = "cat".into();
    write.data = b"ping\n".to_vec();
    let written = ok("write stdin", a.write_stdin(ctx(), &write))?.len;
    check("written", written == 5, written)?;
    let mut close = CloseStdinRequest::new();
    close.container_id = "sleeper".into();
    close.exec_id = "cat".into();
    ok("close stdin", a.close_stdin(ctx(), &close))?;
    let echoed = read_all(a, "sleeper", "cat", false)?;
    check("cat echoed", echoed == "ping\n", &echoed)?;
    let w = wait(a, "sleeper", "cat")?;
    check("cat exit", w.status == 0, w.status)?;

    let mut stats = StatsContainerRequest::new();
    stats.container_id = "sleeper".into();
    let s = ok("stats", a.stats_container(ctx(), &stats))?;
    check("stats", s.pids_current >= 1 && s.memory_usage_bytes > 0, &s)?;

    let mut kill = SignalProcessRequest::new();
    kill.container_id = "sleeper".into();
    kill.exec_id = "sleeper".into();
    kill.signal = 9;
    ok("kill", a.signal_process(ctx(), &kill))?;
    let w = wait(a, "sleeper", "sleeper")?;
    check("sleeper killed", w.status == 137, w.status)?;
    let out = blocked
        .join()
        .map_err(|_| "blocked reader panicked".to_string())??;
    check("sleeper stdout", out.is_empty(), &out)?;
    say(&format!(
        "sleeper: exec cat echoed {echoed:?}, killed: {}, pids {}",
        w.status, s.pids_current
    ));
    remove(a, "sleeper")
}

/// A process over its container's memory limit is OOM-killed and WaitProcess says so.
fn oom(a: &AgentServiceClient) -> Result<(), String> {
    let mut spec = sh("head -c 200m /dev/zero | tail -c 100m >/dev/null");
    spec.linux.get_or_insert_with(Linux::default).resources = Some(Resources {
        memory: Some(MemoryResources {
            limit: Some(16 << 20),
            swap: Some(16 << 20),
        }),
        ..Default::default()
    });
    create(a, "oom", &spec)?;
    start(a, "oom")?;
    let w = wait(a, "oom", "oom")?;
    let mut stats = StatsContainerRequest::new();
    stats.container_id = "oom".into();
    let s = ok("stats oom", a.stats_container(ctx(), &stats))?;
    check(
        "oom killed",
        w.oom_killed && s.oom_kills > 0 && s.memory_limit_bytes == 16 << 20,
        (w.status, w.oom_killed, &s),
    )?;
    say(&format!(
        "oom: exit {}, oom_killed, oom_kills {}",
        w.status, s.oom_kills
    ));
    remove(a, "oom")
}

fn bad_requests(a: &AgentServiceClient) -> Result<(), String> {
    let mut req = CreateContainerRequest::new();
    req.container_id = "bad".into();
    req.exec_id = "bad".into();
    req.oci_spec_json = serde_json::to_string(&sh("true")).map_err(|e| e.to_string())?;
    let mut rootfs = Rootfs::new();
    rootfs.dir = "/images/busybox".into();
    rootfs.block_serial = "disk".into();
    rootfs.fstype = "ext4".into();
    req.rootfs = Some(rootfs).into();
    refused(
        "both rootfs kinds",
        a.create_container(ctx(), &req),
        Code::INVALID_ARGUMENT,
    )?;
    let mut rootfs = Rootfs::new();
    rootfs.dir = "/images/none".into();
    req.rootfs = Some(rootfs).into();
    refused(
        "missing image dir",
        a.create_container(ctx(), &req),
        Code::INVALID_ARGUMENT,
    )?;
    req.rootfs = Default::default();
    req.oci_spec_json = String::new();
    refused(
        "no spec",
        a.create_container(ctx(), &req),
        Code::INVALID_ARGUMENT,
    )?;
    let mut start = StartContainerRequest::new();
    start.container_id = "ghost".into();
    refused(
        "unknown container",
        a.start_container(ctx(), &start),
        Code::NOT_FOUND,
    )?;
    check(
        "nothing left",
        list(a)?.is_empty(),
        "containers after the bad requests",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_spec_json_round_trips() {
        let spec = sh("echo hi");
        let text = serde_json::to_string(&spec).unwrap();
        assert_eq!(Spec::from_json(&text).unwrap(), spec);
    }
}
