//! `host-vmm list [--json]`: the sandboxes in the runtime root, one line each.
//!
//! A live sandbox (its host-vmm holds the pid file's lock) is asked over its control socket
//! for its pid, uptime, vCPUs and memory, and its agent for its containers; a value that
//! does not come within a few seconds shows as `-`. A directory whose lock is free is shown
//! as `stale` (its host-vmm is gone), never as running.

use std::time::Duration;

use host_vmm::agent::{AgentClient, ConnectOptions};
use host_vmm::api::{self, Request, Response};
use host_vmm::errors::error_chain;
use host_vmm::sandbox::{list_sandboxes, runtime_root, RuntimeDir, SandboxEntry, SandboxState};
use serde::Serialize;

/// How long one sandbox's control socket and agent may take to answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(3);

/// One line of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub id: String,
    /// `running`, `stale` or `refused`.
    pub state: &'static str,
    pub pid: Option<u32>,
    pub uptime_secs: Option<u64>,
    pub vcpus: Option<u32>,
    pub memory_mib: Option<u64>,
    pub containers: Option<usize>,
    /// Why a value is missing, or why the directory is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

pub fn list(json: bool) -> anyhow::Result<String> {
    let root = runtime_root();
    let entries = list_sandboxes(&root)?;
    // One thread per sandbox: a sandbox that does not answer costs its timeout once, not
    // once per sandbox.
    let rows: Vec<Row> = std::thread::scope(|s| {
        let handles: Vec<_> = entries
            .into_iter()
            .map(|e| {
                let id = e.id.clone();
                (id, s.spawn(move || row(e)))
            })
            .collect();
        handles
            .into_iter()
            .map(|(id, h)| {
                h.join()
                    .unwrap_or_else(|_| refused(id, "its query panicked"))
            })
            .collect()
    });
    Ok(if json {
        format_json(&rows)?
    } else {
        format_table(&rows)
    })
}

fn refused(id: String, note: &str) -> Row {
    Row {
        id,
        state: "refused",
        pid: None,
        uptime_secs: None,
        vcpus: None,
        memory_mib: None,
        containers: None,
        note: Some(note.to_string()),
    }
}

fn row(entry: SandboxEntry) -> Row {
    let mut row = Row {
        id: entry.id,
        state: "running",
        pid: None,
        uptime_secs: None,
        vcpus: None,
        memory_mib: None,
        containers: None,
        note: None,
    };
    match entry.state {
        SandboxState::Stale { pid } => {
            row.state = "stale";
            row.pid = pid;
        }
        SandboxState::Refused(e) => {
            row.state = "refused";
            row.note = Some(error_chain(&e));
        }
        SandboxState::Live(dir) => {
            row.pid = dir.pid();
            fill_live(&mut row, &dir);
        }
    }
    row
}

fn fill_live(row: &mut Row, dir: &RuntimeDir) {
    match api::request_with_timeout(&dir.api_socket(), &Request::Status, ANSWER_TIMEOUT) {
        Ok(Response::Sandbox(s)) => {
            row.pid = Some(s.pid);
            row.uptime_secs = Some(s.uptime_ms / 1000);
            row.vcpus = Some(s.vcpus);
            row.memory_mib = Some(s.memory.total_bytes >> 20);
        }
        Ok(other) => row.note = Some(format!("control socket: {other:?}")),
        Err(e) => row.note = Some(format!("control socket: {}", error_chain(&e))),
    }
    let opts = ConnectOptions {
        deadline: ANSWER_TIMEOUT,
        ..Default::default()
    };
    match AgentClient::connect(&dir.vsock_socket(), &opts).and_then(|a| a.list_containers()) {
        Ok(list) => row.containers = Some(list.len()),
        Err(e) => {
            row.note
                .get_or_insert_with(|| format!("agent: {}", error_chain(&e)));
        }
    }
}

/// `1h02m`, `3m05s`, `12s`.
pub fn format_uptime(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The table `list` prints.
pub fn format_table(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<24} {:<8} {:>8} {:>8} {:>5} {:>10} {:>10}\n",
        "ID", "STATE", "PID", "UPTIME", "VCPUS", "MEMORY_MIB", "CONTAINERS"
    );
    for r in rows {
        out.push_str(&format!(
            "{:<24} {:<8} {:>8} {:>8} {:>5} {:>10} {:>10}",
            r.id,
            r.state,
            cell(r.pid),
            cell(r.uptime_secs.map(format_uptime)),
            cell(r.vcpus),
            cell(r.memory_mib),
            cell(r.containers),
        ));
        if let Some(note) = &r.note {
            out.push_str(&format!("  ({note})"));
        }
        out.push('\n');
    }
    out
}

/// `list --json`: an array of rows.
pub fn format_json(rows: &[Row]) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(rows)? + "\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<Row> {
        vec![
            Row {
                id: "pod1".into(),
                state: "running",
                pid: Some(4242),
                uptime_secs: Some(65),
                vcpus: Some(2),
                memory_mib: Some(1536),
                containers: Some(3),
                note: None,
            },
            Row {
                id: "old".into(),
                state: "stale",
                pid: Some(17),
                uptime_secs: None,
                vcpus: None,
                memory_mib: None,
                containers: None,
                note: None,
            },
        ]
    }

    #[test]
    fn test_format_uptime() {
        assert_eq!(format_uptime(0), "0s");
        assert_eq!(format_uptime(59), "59s");
        assert_eq!(format_uptime(65), "1m05s");
        assert_eq!(format_uptime(3600 + 120 + 5), "1h02m");
    }

    #[test]
    fn test_format_table_one_line_per_sandbox() {
        let text = format_table(&rows());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let cols = |l: &str| l.split_whitespace().map(str::to_string).collect::<Vec<_>>();
        assert_eq!(
            cols(lines[0]),
            [
                "ID",
                "STATE",
                "PID",
                "UPTIME",
                "VCPUS",
                "MEMORY_MIB",
                "CONTAINERS"
            ]
        );
        assert_eq!(
            cols(lines[1]),
            ["pod1", "running", "4242", "1m05s", "2", "1536", "3"]
        );
        assert_eq!(cols(lines[2]), ["old", "stale", "17", "-", "-", "-", "-"]);
    }

    #[test]
    fn test_format_json() {
        let v: serde_json::Value = serde_json::from_str(&format_json(&rows()).unwrap()).unwrap();
        assert_eq!(v[0]["id"], "pod1");
        assert_eq!(v[0]["memory_mib"], 1536);
        assert_eq!(v[0]["containers"], 3);
        assert_eq!(v[1]["state"], "stale");
        assert!(v[1]["vcpus"].is_null());
        assert!(v[1].get("note").is_none());
    }
}
