//! The agent channel end to end without KVM or vsock: the real guest-agent ttrpc server on a
//! Unix socket, a fake hybrid vsock front ([`front`]) in between, and the host client.

mod front;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::agent::{CreateContainerRequest, GuestDetailsResponse};
use protocol::agent_ttrpc::{create_agent_service, AgentService};
use protocol::ttrpc::{self, Code, TtrpcContext};

use super::hybrid_vsock::HandshakeError;
use super::{AgentClient, ClientError, ConnectOptions};
use front::{Front, Reply};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let d = std::env::temp_dir().join(format!("hv-agent-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }

    fn uds(&self) -> PathBuf {
        self.0.join("vsock.sock")
    }

    fn guest(&self) -> PathBuf {
        self.0.join("guest-1024.sock")
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The real agent server on `dir.guest()`, with a fake sysfs and a recording clock.
struct GuestAgent {
    server: Option<ttrpc::Server>,
    clock: Arc<Mutex<Vec<Duration>>>,
}

impl GuestAgent {
    fn start(dir: &Dir) -> Self {
        let memory = dir.0.join("memory");
        std::fs::create_dir_all(&memory).unwrap();
        std::fs::write(memory.join("block_size_bytes"), "8000000\n").unwrap();
        std::fs::write(memory.join("probe"), "").unwrap();
        let clock = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&clock);
        let agent = guest_agent::rpc::Agent::new(None)
            .with_memory_sysfs(&memory)
            .with_clock(Box::new(move |t| {
                seen.lock().unwrap().push(t);
                Ok(())
            }));
        let addr = format!("unix://{}", dir.guest().display());
        let server = guest_agent::server::serve_on(&addr, agent).unwrap();
        Self {
            server: Some(server),
            clock,
        }
    }
}

impl Drop for GuestAgent {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            // Not `shutdown()`: in ttrpc 0.10 it can hang joining its connection reaper when a
            // connection is being torn down at the same moment (seen in these tests). Stopping
            // the listener is enough; connections end when their clients close.
            drop(s.stop_listen());
        }
    }
}

fn opts(deadline_ms: u64) -> ConnectOptions {
    ConnectOptions {
        deadline: Duration::from_millis(deadline_ms),
        attempt_timeout: Duration::from_millis(500),
        rpc_timeout: Duration::from_secs(10),
        ..ConnectOptions::default()
    }
}

/// `error: cause: cause`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[test]
fn test_client_check_version_details_and_time_through_front() {
    let dir = Dir::new("calls");
    let agent = GuestAgent::start(&dir);
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Ok);
    let client = AgentClient::connect(&dir.uds(), &opts(10_000)).unwrap();
    assert_eq!(client.socket(), dir.uds());

    client.check().unwrap();
    let v = client.version().unwrap();
    assert_eq!(v.agent_version, guest_agent::VERSION);
    assert_eq!(v.protocol_version, protocol::VERSION);

    let d = client.guest_details().unwrap();
    assert_eq!(d.mem_block_size, Some(128 << 20));
    assert!(d.mem_hotplug_probe);
    assert!(!d.kernel_version.is_empty());
    assert_eq!(d.agent_version, guest_agent::VERSION);
    assert!(!d.init_daemon);

    let when = UNIX_EPOCH + Duration::new(1_764_000_000, 123_456_789);
    client.set_guest_date_time(when).unwrap();
    assert_eq!(
        *agent.clock.lock().unwrap(),
        vec![Duration::new(1_764_000_000, 123_456_000)]
    );
}

#[test]
fn test_agent_error_status_is_mapped() {
    let dir = Dir::new("status");
    let _agent = GuestAgent::start(&dir);
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Ok);
    let client = AgentClient::connect(&dir.uds(), &opts(10_000)).unwrap();
    // No sandbox yet: the agent refuses, and the status code and message come through.
    let mut req = CreateContainerRequest::new();
    req.container_id = "c1".into();
    req.exec_id = "c1".into();
    let e = client
        .call("CreateContainer", |a, ctx| a.create_container(ctx, &req))
        .unwrap_err();
    assert_eq!(e.status_code(), Some(Code::FAILED_PRECONDITION), "{e}");
    assert!(
        e.to_string()
            .starts_with("agent CreateContainer: FAILED_PRECONDITION: "),
        "{e}"
    );
    // The typed calls map it the same way.
    let e = client.list_containers().unwrap_err();
    assert_eq!(e.status_code(), Some(Code::FAILED_PRECONDITION), "{e}");
    // A bad id is refused before anything else, naming the field (issue 10, finding 8).
    let e = client
        .call("CreateContainer", |a, ctx| {
            a.create_container(ctx, &CreateContainerRequest::new())
        })
        .unwrap_err();
    assert_eq!(e.status_code(), Some(Code::INVALID_ARGUMENT), "{e}");
    assert!(e.to_string().contains("container_id: empty"), "{e}");
    // The connection still works.
    client.check().unwrap();
}

#[test]
fn test_client_retries_until_vmm_and_agent_appear() {
    let dir = Dir::new("retry");
    let uds = dir.uds();
    let connecting = thread::spawn(move || {
        let started = Instant::now();
        let r = AgentClient::connect(&uds, &opts(20_000));
        (r, started.elapsed())
    });
    // First no socket at all (VMM starting), then a front whose guest is not listening yet
    // (the device closes the client), then the agent.
    thread::sleep(Duration::from_millis(200));
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Ok);
    thread::sleep(Duration::from_millis(300));
    let _agent = GuestAgent::start(&dir);
    let (client, waited) = connecting.join().unwrap();
    let client = client.unwrap();
    assert!(client.attempts() > 2, "attempts {}", client.attempts());
    assert!(waited >= Duration::from_millis(500), "{waited:?}");
    client.check().unwrap();
}

#[test]
fn test_client_gives_up_at_deadline_naming_socket_and_last_failure() {
    let dir = Dir::new("deadline");
    let started = Instant::now();
    let Err(e) = AgentClient::connect(&dir.uds(), &opts(400)) else {
        panic!("connected to nothing");
    };
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(400), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    let text = chain(&e);
    assert!(text.contains(&dir.uds().display().to_string()), "{text}");
    assert!(text.contains("agent not reachable"), "{text}");
    assert!(text.contains("No such file"), "{text}");
    assert!(matches!(
        e,
        ClientError::Unreachable {
            last: HandshakeError::Connect { .. },
            ..
        }
    ));
}

#[test]
fn test_silent_front_times_out_within_deadline() {
    let dir = Dir::new("silent");
    let _agent = GuestAgent::start(&dir);
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Silent);
    let started = Instant::now();
    let Err(e) = AgentClient::connect(&dir.uds(), &opts(700)) else {
        panic!("connected without OK");
    };
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(
            e,
            ClientError::Unreachable {
                last: HandshakeError::Timeout(_),
                ..
            }
        ),
        "{}",
        chain(&e)
    );
}

#[test]
fn test_malformed_ok_lines_are_refused_at_once() {
    for reply in [
        &b"OK\n"[..],
        b"OK 1024 extra\n",
        b"OK -1\n",
        b"KO 1024\n",
        b"OK 99999999999\n",
        &[b'O'; 64],
    ] {
        let dir = Dir::new("malformed");
        let _agent = GuestAgent::start(&dir);
        let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Raw(reply.to_vec()));
        let started = Instant::now();
        let Err(e) = AgentClient::connect(&dir.uds(), &opts(10_000)) else {
            panic!("accepted {:?}", String::from_utf8_lossy(reply));
        };
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "retried a bad reply"
        );
        assert!(
            matches!(
                e,
                ClientError::Handshake {
                    source: HandshakeError::Malformed(_) | HandshakeError::TooLong,
                    ..
                }
            ),
            "{}",
            chain(&e)
        );
    }
}

/// An agent that lies in `GetGuestDetails`.
struct LyingAgent(u64);

impl AgentService for LyingAgent {
    fn get_guest_details(
        &self,
        _: &TtrpcContext,
        _: protocol::agent::GuestDetailsRequest,
    ) -> ttrpc::Result<GuestDetailsResponse> {
        let mut r = GuestDetailsResponse::new();
        r.mem_block_size_bytes = self.0;
        r.kernel_version = "6.12".into();
        r.agent_details = protocol::protobuf::MessageField::some(Default::default());
        Ok(r)
    }
}

fn serve_liar(path: &Path, block: u64) -> ttrpc::Server {
    let mut server = ttrpc::Server::new()
        .bind(&format!("unix://{}", path.display()))
        .unwrap()
        .register_service(create_agent_service(Arc::new(LyingAgent(block))));
    server.start().unwrap();
    server
}

#[test]
fn test_invalid_guest_details_are_refused() {
    let dir = Dir::new("liar");
    let server = serve_liar(&dir.guest(), 12345);
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Ok);
    let client = AgentClient::connect(&dir.uds(), &opts(10_000)).unwrap();
    let e = client.guest_details().unwrap_err();
    assert!(
        matches!(
            e,
            ClientError::InvalidReply {
                rpc: "GetGuestDetails",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("0x3039"), "{e}");
    // The liar serves no Health: ttrpc answers with an error status, reported as such.
    let e = client.check().unwrap_err();
    assert!(e.status_code().is_some(), "{e}");
    drop(server.stop_listen()); // not shutdown(): see GuestAgent's Drop
}

#[test]
fn test_set_guest_date_time_before_epoch_is_a_clock_error() {
    let dir = Dir::new("epoch");
    let _agent = GuestAgent::start(&dir);
    let _front = Front::start(&dir.uds(), &dir.guest(), Reply::Ok);
    let client = AgentClient::connect(&dir.uds(), &opts(10_000)).unwrap();
    let before = UNIX_EPOCH - Duration::from_secs(1);
    assert!(matches!(
        client.set_guest_date_time(before),
        Err(ClientError::Clock(_))
    ));
    client.set_guest_date_time(SystemTime::now()).unwrap();
}
