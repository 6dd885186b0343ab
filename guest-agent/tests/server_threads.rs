//! The agent server's thread bound, counted: each connection runs exactly
//! `3 + HANDLER_THREADS` threads (ttrpc's control thread, reader, writer and the fixed handler
//! pool), however many calls it gets at once, and all of them end when it closes.
//!
//! Its own test binary (one test), so no other test's threads are counted. ttrpc names the
//! control thread `client_handler`; the threads it spawns have no name of their own and so
//! inherit that one (Linux copies `comm` to new threads), which is how they are told apart
//! from the clients' threads.

use std::time::{Duration, Instant};

use guest_agent::rpc::Agent;
use guest_agent::server::{serve_with, HANDLER_THREADS};
use protocol::health::CheckRequest;
use protocol::health_ttrpc::HealthClient;
use protocol::ttrpc::{self, context};

fn server_connection_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == "client_handler")
        .count()
}

fn wait_threads(want: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_connection_threads() != want {
        assert!(
            Instant::now() < deadline,
            "{} connection threads (want {want})",
            server_connection_threads()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn check(client: &ttrpc::Client) {
    let ctx = context::with_timeout(Duration::from_secs(10).as_nanos() as i64);
    HealthClient::new(client.clone())
        .check(ctx, &CheckRequest::new())
        .unwrap();
}

#[test]
fn test_each_connection_has_a_fixed_number_of_threads() {
    let dir = std::env::temp_dir().join(format!("ga-server-threads-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let addr = format!("unix://{}", dir.join("agent.sock").display());
    let serving = serve_with(&addr, Agent::new(None), 8).unwrap();
    let per_connection = 3 + HANDLER_THREADS;

    let clients: Vec<ttrpc::Client> = (0..5)
        .map(|_| ttrpc::Client::connect(&addr).unwrap())
        .collect();
    for c in &clients {
        check(c);
    }
    wait_threads(5 * per_connection);

    // A burst of concurrent calls on one connection does not grow its pool.
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                for _ in 0..20 {
                    check(&clients[0]);
                }
            });
        }
    });
    assert_eq!(server_connection_threads(), 5 * per_connection);

    drop(clients);
    wait_threads(0);
    assert_eq!(serving.slots.live(), 0);
    drop(serving.server.stop_listen());
    let _ = std::fs::remove_dir_all(&dir);
}
