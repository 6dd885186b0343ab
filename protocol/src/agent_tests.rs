//! Encode/decode round trips of `agent.proto` and the RPC paths the service registers.

use std::collections::BTreeSet;
use std::sync::Arc;

use protobuf::Message;

use crate::agent::*;
use crate::agent_ttrpc::{create_agent_service, AgentService};
use crate::Empty;

fn roundtrip<M: Message + PartialEq + std::fmt::Debug>(m: &M) {
    let bytes = m.write_to_bytes().unwrap();
    let back = M::parse_from_bytes(&bytes).unwrap();
    assert_eq!(&back, m);
}

#[test]
fn test_sandbox_and_container_messages_roundtrip() {
    let mut s = CreateSandboxRequest::new();
    s.hostname = "sb".into();
    s.dns = vec!["nameserver 10.0.0.1".into()];
    s.sandbox_id = "sb1".into();
    roundtrip(&s);
    roundtrip(&DestroySandboxRequest::new());

    let mut c = CreateContainerRequest::new();
    c.container_id = "c1".into();
    c.exec_id = "init".into();
    c.oci_spec_json = r#"{"ociVersion":"1.0.2","process":{"args":["sh"]}}"#.into();
    roundtrip(&c);

    let mut r = RemoveContainerRequest::new();
    r.container_id = "c1".into();
    r.timeout = 10;
    roundtrip(&r);

    let mut u = UpdateContainerRequest::new();
    u.container_id = "c1".into();
    u.resources_json = r#"{"memory":{"limit":1048576}}"#.into();
    roundtrip(&u);

    let mut st = StatsContainerResponse::new();
    st.cpu_usage_usec = u64::MAX;
    st.memory_usage_bytes = 1 << 30;
    st.memory_limit_bytes = 2 << 30;
    st.pids_current = 7;
    roundtrip(&st);
}

#[test]
fn test_process_and_stdio_messages_roundtrip() {
    let mut e = ExecProcessRequest::new();
    e.container_id = "c1".into();
    e.exec_id = "e1".into();
    e.process_json = r#"{"args":["true"]}"#.into();
    roundtrip(&e);

    let mut w = WaitProcessResponse::new();
    w.status = -1;
    roundtrip(&w);

    let mut sig = SignalProcessRequest::new();
    sig.container_id = "c1".into();
    sig.signal = 9;
    roundtrip(&sig);

    let mut ws = WriteStreamRequest::new();
    ws.container_id = "c1".into();
    ws.exec_id = "e1".into();
    ws.data = (0..=255u8).collect();
    roundtrip(&ws);

    let mut rs = ReadStreamRequest::new();
    rs.len = 4096;
    roundtrip(&rs);

    let mut tty = TtyWinResizeRequest::new();
    tty.row = 24;
    tty.column = 80;
    roundtrip(&tty);
}

#[test]
fn test_guest_messages_roundtrip() {
    let mut t = SetGuestDateTimeRequest::new();
    t.sec = 1_764_000_000;
    t.usec = 999_999;
    roundtrip(&t);

    let mut cp = CopyFileRequest::new();
    cp.path = "/run/x".into();
    cp.file_size = 3;
    cp.file_mode = 0o644;
    cp.uid = -1;
    cp.data = b"abc".to_vec();
    roundtrip(&cp);

    let mut on = OnlineCPUMemRequest::new();
    on.wait = true;
    on.nb_cpus = 4;
    roundtrip(&on);

    let mut d = GuestDetailsResponse::new();
    d.mem_block_size_bytes = 128 << 20;
    d.support_mem_hotplug_probe = true;
    d.kernel_version = "6.12.117".into();
    let mut a = AgentDetails::new();
    a.version = "0.1.0".into();
    a.init_daemon = true;
    d.agent_details = protobuf::MessageField::some(a);
    roundtrip(&d);
}

#[test]
fn test_empty_message_encodes_to_nothing() {
    assert!(Empty::new().write_to_bytes().unwrap().is_empty());
    // Unknown fields from a newer peer are kept, not an error.
    let back = Empty::parse_from_bytes(&[0x08, 0x01]).unwrap();
    assert_eq!(back.write_to_bytes().unwrap(), vec![0x08, 0x01]);
}

#[test]
fn test_garbage_is_a_decode_error_not_a_panic() {
    // Wire type 7 does not exist; a string (field 4) cut short; a length past the end;
    // a string that is not UTF-8.
    let cases: [&[u8]; 4] = [
        &[0xff],
        &[0x22, 0x05, b'a'],
        &[0x22, 0xff, 0xff, 0xff, 0xff, 0x0f],
        &[0x22, 0x01, 0xff],
    ];
    for bytes in cases {
        assert!(
            GuestDetailsResponse::parse_from_bytes(bytes).is_err(),
            "{bytes:02x?}"
        );
    }
}

struct Defaults;
impl AgentService for Defaults {}

#[test]
fn test_agent_service_paths_follow_kata_names() {
    let methods = create_agent_service(Arc::new(Defaults));
    let got: BTreeSet<&str> = methods.keys().map(String::as_str).collect();
    let want: BTreeSet<String> = [
        "CreateSandbox",
        "DestroySandbox",
        "CreateContainer",
        "StartContainer",
        "RemoveContainer",
        "UpdateContainer",
        "StatsContainer",
        // Ours: Kata lists processes per container instead.
        "ListContainers",
        "ExecProcess",
        "WaitProcess",
        "SignalProcess",
        "WriteStdin",
        "ReadStdout",
        "ReadStderr",
        "CloseStdin",
        "TtyWinResize",
        "OnlineCPUMem",
        // Ours: a hot-added disk let go of before the host removes it.
        "ReleaseDisk",
        // Ours: a vCPU removal's guest half (cpusets, offline) before the host ejects.
        "OfflineCpus",
        "CopyFile",
        "SetGuestDateTime",
        "GetGuestDetails",
    ]
    .iter()
    .map(|m| format!("/grpc.AgentService/{m}"))
    .collect();
    assert_eq!(got, want.iter().map(String::as_str).collect());
}
