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
    /// finds it by.
    DiskAdd {
        path: std::path::PathBuf,
        read_only: bool,
        serial: String,
    },
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
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

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
        };
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"op":"disk-add","path":"/i/a.erofs","read_only":true,"serial":"rootfs"}"#
        );
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), r);
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
