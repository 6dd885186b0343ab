//! The services end to end over a Unix socket: the real ttrpc server and generated clients.

use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use protocol::agent::*;
use protocol::agent_ttrpc::AgentServiceClient;
use protocol::health::{health_check_response::ServingStatus, CheckRequest};
use protocol::health_ttrpc::HealthClient;
use protocol::ttrpc::{self, context, Code};

use super::Agent;
use crate::server::serve_on;

struct Fixture {
    dir: PathBuf,
    server: Option<ttrpc::Server>,
    client: ttrpc::Client,
    clock: Arc<Mutex<Vec<Duration>>>,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("ga-rpc-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let memory = dir.join("memory");
        fs::create_dir_all(&memory).unwrap();
        fs::write(memory.join("block_size_bytes"), "8000000\n").unwrap();
        let clock = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&clock);
        let agent = Agent::new(None)
            .with_memory_sysfs(&memory)
            .with_clock(Box::new(move |t| {
                seen.lock().unwrap().push(t);
                Ok(())
            }));
        let addr = format!("unix://{}", dir.join("agent.sock").display());
        let server = serve_on(&addr, agent).unwrap();
        let client = ttrpc::Client::connect(&addr).unwrap();
        Self {
            dir,
            server: Some(server),
            client,
            clock,
        }
    }

    fn agent(&self) -> AgentServiceClient {
        AgentServiceClient::new(self.client.clone())
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            // Not `shutdown()`: in ttrpc 0.10 it can hang joining its connection reaper when a
            // connection is being torn down at the same moment (seen in these tests). Stopping
            // the listener is enough; connections end when their clients close.
            drop(s.stop_listen());
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(10).as_nanos() as i64)
}

fn code_of<T: std::fmt::Debug>(r: ttrpc::Result<T>) -> (Code, String) {
    match r {
        Err(ttrpc::Error::RpcStatus(s)) => (s.code(), s.message),
        other => panic!("expected an rpc status, got {other:?}"),
    }
}

#[test]
fn test_health_check_and_version() {
    let f = Fixture::new("health");
    let h = HealthClient::new(f.client.clone());
    let r = h.check(ctx(), &CheckRequest::new()).unwrap();
    assert_eq!(r.status.enum_value(), Ok(ServingStatus::SERVING));
    let v = h.version(ctx(), &CheckRequest::new()).unwrap();
    assert_eq!(v.agent_version, crate::VERSION);
    assert_eq!(v.grpc_version, protocol::VERSION);
}

#[test]
fn test_guest_details_from_sysfs() {
    let f = Fixture::new("details");
    let mut req = GuestDetailsRequest::new();
    req.mem_block_size = true;
    req.mem_hotplug_probe = true;
    let r = f.agent().get_guest_details(ctx(), &req).unwrap();
    assert_eq!(r.mem_block_size_bytes, 128 << 20);
    assert!(!r.support_mem_hotplug_probe);
    assert_eq!(r.agent_details.version, crate::VERSION);
    assert!(!r.agent_details.init_daemon);
    assert!(!r.kernel_version.is_empty());

    // Not asked: not read.
    let r = f
        .agent()
        .get_guest_details(ctx(), &GuestDetailsRequest::new())
        .unwrap();
    assert_eq!(r.mem_block_size_bytes, 0);

    // A corrupt sysfs file is an INTERNAL error naming the file, not a crash.
    fs::write(f.dir.join("memory/block_size_bytes"), "zz").unwrap();
    let (code, msg) = code_of(f.agent().get_guest_details(ctx(), &req));
    assert_eq!(code, Code::INTERNAL);
    assert!(msg.contains("block_size_bytes"), "{msg}");
}

#[test]
fn test_set_guest_date_time_validates_then_sets() {
    let f = Fixture::new("time");
    let mut req = SetGuestDateTimeRequest::new();
    req.sec = 1_764_000_000;
    req.usec = 5;
    f.agent().set_guest_date_time(ctx(), &req).unwrap();
    assert_eq!(
        *f.clock.lock().unwrap(),
        vec![Duration::new(1_764_000_000, 5_000)]
    );

    req.usec = 1_000_000;
    let (code, _) = code_of(f.agent().set_guest_date_time(ctx(), &req));
    assert_eq!(code, Code::INVALID_ARGUMENT);
    assert_eq!(f.clock.lock().unwrap().len(), 1);
}

/// Every id-taking RPC, called with `container_id` and `exec_id`: (name, status).
fn call_every_id_rpc(
    a: &AgentServiceClient,
    cid: &str,
    eid: &str,
) -> Vec<(&'static str, (Code, String))> {
    let c = ctx;
    macro_rules! req {
        ($t:ident) => {{
            let mut r = $t::new();
            r.container_id = cid.into();
            r
        }};
        ($t:ident, exec) => {{
            let mut r = $t::new();
            r.container_id = cid.into();
            r.exec_id = eid.into();
            r
        }};
    }
    vec![
        (
            "CreateContainer",
            code_of(a.create_container(c(), &req!(CreateContainerRequest, exec))),
        ),
        (
            "StartContainer",
            code_of(a.start_container(c(), &req!(StartContainerRequest))),
        ),
        (
            "RemoveContainer",
            code_of(a.remove_container(c(), &req!(RemoveContainerRequest))),
        ),
        (
            "UpdateContainer",
            code_of(a.update_container(c(), &req!(UpdateContainerRequest))),
        ),
        (
            "StatsContainer",
            code_of(a.stats_container(c(), &req!(StatsContainerRequest))),
        ),
        (
            "ExecProcess",
            code_of(a.exec_process(c(), &req!(ExecProcessRequest, exec))),
        ),
        (
            "WaitProcess",
            code_of(a.wait_process(c(), &req!(WaitProcessRequest, exec))),
        ),
        (
            "SignalProcess",
            code_of(a.signal_process(c(), &req!(SignalProcessRequest, exec))),
        ),
        (
            "WriteStdin",
            code_of(a.write_stdin(c(), &req!(WriteStreamRequest, exec))),
        ),
        (
            "ReadStdout",
            code_of(a.read_stdout(c(), &req!(ReadStreamRequest, exec))),
        ),
        (
            "ReadStderr",
            code_of(a.read_stderr(c(), &req!(ReadStreamRequest, exec))),
        ),
        (
            "CloseStdin",
            code_of(a.close_stdin(c(), &req!(CloseStdinRequest, exec))),
        ),
        (
            "TtyWinResize",
            code_of(a.tty_win_resize(c(), &req!(TtyWinResizeRequest, exec))),
        ),
    ]
}

#[test]
fn test_container_rpcs_without_a_sandbox_are_failed_precondition() {
    let f = Fixture::new("nosandbox");
    let a = f.agent();
    let mut results = call_every_id_rpc(&a, "c1", "e1");
    results.push((
        "DestroySandbox",
        code_of(a.destroy_sandbox(ctx(), &Default::default())),
    ));
    results.push((
        "ListContainers",
        code_of(a.list_containers(ctx(), &Default::default())),
    ));
    for (name, (code, msg)) in results {
        assert_eq!(code, Code::FAILED_PRECONDITION, "{name}: {msg}");
        assert_eq!(msg, "no sandbox: CreateSandbox first", "{name}");
    }
    // The server is still up.
    HealthClient::new(f.client.clone())
        .check(ctx(), &CheckRequest::new())
        .unwrap();
}

/// Issue 10, finding 8: every RPC that takes an id checks it with the one rule, before
/// anything else (here: before noticing there is no sandbox), and names the field.
#[test]
fn test_every_id_is_checked_invalid_argument_naming_the_field() {
    let f = Fixture::new("ids");
    let a = f.agent();
    let long = "x".repeat(65);
    for bad in ["", "caf\u{e9}", "../x", long.as_str(), "a..b", "\u{1b}[2J"] {
        for (name, (code, msg)) in call_every_id_rpc(&a, bad, "e1") {
            // SignalProcess and the others alike: the container id is checked first.
            assert_eq!(code, Code::INVALID_ARGUMENT, "{name} {bad:?}: {msg}");
            assert!(msg.contains("container_id: "), "{name}: {msg}");
            assert!(msg.contains("allowed: "), "{name}: {msg}");
        }
        for (name, (code, msg)) in call_every_id_rpc(&a, "c1", bad) {
            let takes_exec = !matches!(
                name,
                "StartContainer" | "RemoveContainer" | "UpdateContainer" | "StatsContainer"
            );
            // SignalProcess: an empty exec_id means every process of the container.
            if !takes_exec || (name == "SignalProcess" && bad.is_empty()) {
                assert_eq!(code, Code::FAILED_PRECONDITION, "{name} {bad:?}: {msg}");
                continue;
            }
            assert_eq!(code, Code::INVALID_ARGUMENT, "{name} {bad:?}: {msg}");
            assert!(msg.contains("exec_id: "), "{name}: {msg}");
        }
        let mut req = CreateSandboxRequest::new();
        req.sandbox_id = bad.into();
        let (code, msg) = code_of(a.create_sandbox(ctx(), &req));
        assert_eq!(code, Code::INVALID_ARGUMENT, "{bad:?}: {msg}");
        assert!(msg.contains("sandbox_id: "), "{msg}");
    }
    // The server is still up.
    HealthClient::new(f.client.clone())
        .check(ctx(), &CheckRequest::new())
        .unwrap();
}

#[test]
fn test_create_sandbox_checks_its_request_and_needs_the_reaper() {
    let f = Fixture::new("sandbox");
    let (code, msg) = code_of(f.agent().create_sandbox(ctx(), &Default::default()));
    assert_eq!(code, Code::INVALID_ARGUMENT);
    assert!(msg.contains("sandbox_id"), "{msg}");

    // A test process has no reaper (only init runs one): refused, nothing created.
    let mut req = CreateSandboxRequest::new();
    req.sandbox_id = "pod1".into();
    let (code, msg) = code_of(f.agent().create_sandbox(ctx(), &req));
    assert_eq!(code, Code::FAILED_PRECONDITION);
    assert!(msg.contains("reaper"), "{msg}");
    let (code, _) = code_of(f.agent().list_containers(ctx(), &Default::default()));
    assert_eq!(code, Code::FAILED_PRECONDITION);
}

#[test]
fn test_copy_file_is_still_unimplemented() {
    let f = Fixture::new("stubs");
    let (code, msg) = code_of(f.agent().copy_file(ctx(), &Default::default()));
    assert_eq!(code, Code::UNIMPLEMENTED);
    assert_eq!(msg, "not implemented yet: CopyFile");
}

#[test]
fn test_release_disk_checks_the_serial_and_accepts_an_absent_disk() {
    let f = Fixture::new("release-disk");
    for bad in ["", "../vda", "x123456789012345678901"] {
        let mut req = ReleaseDiskRequest::new();
        req.serial = bad.into();
        let (code, msg) = code_of(f.agent().release_disk(ctx(), &req));
        assert_eq!(code, Code::INVALID_ARGUMENT, "{bad:?}: {msg}");
        assert!(msg.contains("serial"), "{msg}");
    }
    // No disk has it (this host has no such virtio disk): nothing to let go of.
    let mut req = ReleaseDiskRequest::new();
    req.serial = "no-such-disk-78".into();
    f.agent().release_disk(ctx(), &req).unwrap();
}
