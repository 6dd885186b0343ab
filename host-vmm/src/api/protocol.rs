//! Messages of the control socket: one JSON object per line.

use serde::{Deserialize, Serialize};

/// Longest request line the server reads; anything longer is refused.
pub const MAX_LINE: usize = 4096;

/// What a client asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Boot RAM, slots used and free, total.
    MemoryInfo,
    /// Hot-add `bytes` of RAM (one DIMM slot).
    MemoryAdd { bytes: u64 },
    /// Hot-add as many slots as needed to reach `total_bytes`.
    MemorySet { total_bytes: u64 },
    /// Hot-add a virtio-blk disk (a host file) with the serial the guest
    /// finds it by: empty for a fresh one from the VMM; one another live
    /// disk has is refused. `owner`: the container whose rootfs it is.
    DiskAdd {
        path: std::path::PathBuf,
        read_only: bool,
        #[serde(default)]
        serial: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<String>,
    },
    /// The sandbox's pid, uptime, vCPUs and memory (`host-vmm list`).
    Status,
    /// Stop the sandbox the way SIGTERM to its host-vmm does (`host-vmm stop`). Answered
    /// at once; the caller waits for the pid file's lock to go.
    Stop,
    /// Remove a hot-added disk once the guest has let go of it.
    DiskRemove { serial: String },
    /// The hot-added disks.
    DiskList,
    /// The vCPUs: boot, present, max.
    CpuInfo,
    /// Bring the VM to `count` vCPUs: hot-add, or ask the guest to eject. `floor`: asked
    /// for by hand (`host-vmm cpus --set`): deleting containers never shrinks below it.
    CpuSet {
        count: u32,
        #[serde(default)]
        floor: bool,
    },
    /// Container `container` needs `vcpus` whole vCPUs (0: it is gone); answered with
    /// the vCPUs the sandbox should have for all its containers (`CpuTarget`).
    CpuNeed { container: String, vcpus: u32 },
}

/// The vCPUs of a running VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VcpuStatus {
    /// `default_vcpus`: present from boot, never removed.
    pub boot: u32,
    /// Present now.
    pub present: u32,
    /// `default_maxvcpus` (equal to `boot` when vCPUs cannot be hot-plugged).
    pub max: u32,
}

/// A removed disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRemoved {
    pub slot: u32,
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How long the guest took to let go.
    pub waited_ms: u64,
    pub slots_total: u32,
    pub slots_used: u32,
}

/// One hot-added disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskEntry {
    pub slot: u32,
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Being removed (the VMM waits for the guest to let go).
    pub removing: bool,
}

/// The hot-added disks of a VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskList {
    pub slots_total: u32,
    pub slots_used: u32,
    pub disks: Vec<DiskEntry>,
}

/// A running sandbox, as `Status` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxStatus {
    /// The host-vmm process serving it.
    pub pid: u32,
    /// Since its control socket started (just before the guest boots).
    pub uptime_ms: u64,
    pub vcpus: u32,
    pub memory: MemoryStatus,
}

/// A hot-added disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskStatus {
    /// Hot slot it went into.
    pub slot: u32,
    pub serial: String,
    /// Size in 512-byte sectors.
    pub sectors: u64,
    pub slots_total: u32,
    pub slots_used: u32,
}

/// The memory of a running VM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryStatus {
    pub boot_bytes: u64,
    pub hotplugged_bytes: u64,
    pub total_bytes: u64,
    pub max_bytes: u64,
    pub slots_total: u32,
    pub slots_used: u32,
    /// Hot-plug granularity: sizes must be multiples of it.
    pub block_bytes: u64,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Response {
    Memory(MemoryStatus),
    Disk(DiskStatus),
    Sandbox(SandboxStatus),
    /// `Stop` accepted: host-vmm `pid` is tearing the sandbox down.
    Stopping {
        pid: u32,
    },
    DiskRemoved(DiskRemoved),
    Disks(DiskList),
    Vcpus(VcpuStatus),
    /// The vCPUs the containers need (between `default_vcpus` and `default_maxvcpus`),
    /// and the vCPUs now.
    CpuTarget {
        target: u32,
        now: VcpuStatus,
    },
    Error {
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cpu_request_wire_format() {
        let r = Request::CpuSet {
            count: 4,
            floor: true,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"cpu-set","count":4,"floor":true}"#);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"cpu-set","count":2}"#).unwrap(),
            Request::CpuSet {
                count: 2,
                floor: false
            }
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert!(serde_json::from_str::<Request>(r#"{"op":"cpu-set","count":-1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"cpu-set","count":4294967296}"#).is_err());
    }

    #[test]
    fn test_request_wire_format() {
        let r = Request::MemoryAdd { bytes: 512 << 20 };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"op":"memory-add","bytes":536870912}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"memory-info"}"#).unwrap(),
            Request::MemoryInfo
        );
    }

    #[test]
    fn test_disk_add_wire_format() {
        let r = Request::DiskAdd {
            path: "/i/a.erofs".into(),
            read_only: true,
            serial: "rootfs".into(),
            owner: None,
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"op":"disk-add","path":"/i/a.erofs","read_only":true,"serial":"rootfs"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
        let owned = r#"{"op":"disk-add","path":"/i/a","read_only":true,"owner":"c1"}"#;
        assert_eq!(
            serde_json::from_str::<Request>(owned).unwrap(),
            Request::DiskAdd {
                path: "/i/a".into(),
                read_only: true,
                serial: String::new(),
                owner: Some("c1".into())
            }
        );
        let rm = Request::DiskRemove {
            serial: "disk-3".into(),
        };
        let line = serde_json::to_string(&rm).unwrap();
        assert_eq!(line, r#"{"op":"disk-remove","serial":"disk-3"}"#);
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), rm);
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"disk-list"}"#).unwrap(),
            Request::DiskList
        );
        let list = Response::Disks(DiskList {
            slots_total: 7,
            slots_used: 1,
            disks: vec![DiskEntry {
                slot: 0,
                serial: "disk-0".into(),
                owner: Some("c".into()),
                removing: false,
            }],
        });
        let line = serde_json::to_string(&list).unwrap();
        assert!(line.starts_with(r#"{"status":"disks","#), "{line}");
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), list);
    }

    #[test]
    fn test_status_and_stop_wire_format() {
        assert_eq!(
            serde_json::to_string(&Request::Stop).unwrap(),
            r#"{"op":"stop"}"#
        );
        assert_eq!(
            serde_json::from_str::<Request>(r#"{"op":"status"}"#).unwrap(),
            Request::Status
        );
        let r = Response::Stopping { pid: 7 };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(line, r#"{"status":"stopping","pid":7}"#);
        let r = Response::Sandbox(SandboxStatus {
            pid: 1,
            uptime_ms: 2,
            vcpus: 3,
            memory: MemoryStatus {
                boot_bytes: 4,
                hotplugged_bytes: 0,
                total_bytes: 4,
                max_bytes: 8,
                slots_total: 1,
                slots_used: 0,
                block_bytes: 2,
            },
        });
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), r);
    }

    #[test]
    fn test_unknown_op_refused() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"format-disk"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"memory-add"}"#).is_err());
    }

    #[test]
    fn test_response_roundtrip() {
        let r = Response::Error {
            message: "no".into(),
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<Response>(&line).unwrap(), r);
    }
}
