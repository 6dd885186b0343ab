//! The virtio-vsock packet header (virtio 1.2, 5.10.6): 44 bytes, little
//! endian, in front of every packet on the rx and tx queues.

/// Size of `struct virtio_vsock_hdr`.
pub const HDR_SIZE: usize = 44;
/// The host's CID.
pub const HOST_CID: u64 = 2;
/// The default guest CID.
pub const DEFAULT_GUEST_CID: u64 = 3;
/// `type`: stream socket (the only type we support).
pub const TYPE_STREAM: u16 = 1;
/// Largest payload in one packet (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
pub const MAX_PKT_PAYLOAD: usize = 64 * 1024;
/// SHUTDOWN flag: the sender will receive no more data.
pub const SHUTDOWN_RCV: u32 = 1;
/// SHUTDOWN flag: the sender will send no more data.
pub const SHUTDOWN_SEND: u32 = 2;
/// Both SHUTDOWN flags.
pub const SHUTDOWN_BOTH: u32 = SHUTDOWN_RCV | SHUTDOWN_SEND;

/// Packet operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum Op {
    Request = 1,
    Response = 2,
    Rst = 3,
    Shutdown = 4,
    Rw = 5,
    CreditUpdate = 6,
    CreditRequest = 7,
}

impl Op {
    /// The operation for a wire value, `None` if unknown.
    pub fn from_u16(v: u16) -> Option<Self> {
        Some(match v {
            1 => Self::Request,
            2 => Self::Response,
            3 => Self::Rst,
            4 => Self::Shutdown,
            5 => Self::Rw,
            6 => Self::CreditUpdate,
            7 => Self::CreditRequest,
            _ => return None,
        })
    }
}

/// `struct virtio_vsock_hdr`, decoded. Fields are raw wire values: the
/// guest controls them all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VsockHeader {
    pub src_cid: u64,
    pub dst_cid: u64,
    pub src_port: u32,
    pub dst_port: u32,
    pub len: u32,
    pub type_: u16,
    pub op: u16,
    pub flags: u32,
    pub buf_alloc: u32,
    pub fwd_cnt: u32,
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

impl VsockHeader {
    /// Decode the wire layout.
    pub fn from_bytes(b: &[u8; HDR_SIZE]) -> Self {
        Self {
            src_cid: le_u64(b, 0),
            dst_cid: le_u64(b, 8),
            src_port: le_u32(b, 16),
            dst_port: le_u32(b, 20),
            len: le_u32(b, 24),
            type_: le_u16(b, 28),
            op: le_u16(b, 30),
            flags: le_u32(b, 32),
            buf_alloc: le_u32(b, 36),
            fwd_cnt: le_u32(b, 40),
        }
    }

    /// Encode the wire layout.
    pub fn to_bytes(&self) -> [u8; HDR_SIZE] {
        let mut b = [0u8; HDR_SIZE];
        b[0..8].copy_from_slice(&self.src_cid.to_le_bytes());
        b[8..16].copy_from_slice(&self.dst_cid.to_le_bytes());
        b[16..20].copy_from_slice(&self.src_port.to_le_bytes());
        b[20..24].copy_from_slice(&self.dst_port.to_le_bytes());
        b[24..28].copy_from_slice(&self.len.to_le_bytes());
        b[28..30].copy_from_slice(&self.type_.to_le_bytes());
        b[30..32].copy_from_slice(&self.op.to_le_bytes());
        b[32..36].copy_from_slice(&self.flags.to_le_bytes());
        b[36..40].copy_from_slice(&self.buf_alloc.to_le_bytes());
        b[40..44].copy_from_slice(&self.fwd_cnt.to_le_bytes());
        b
    }

    /// The operation, `None` if unknown.
    pub fn op(&self) -> Option<Op> {
        Op::from_u16(self.op)
    }

    /// A host → guest packet on the connection (host `local_port`, guest
    /// `peer_port`), without credit fields.
    pub fn host_to_guest(guest_cid: u64, local_port: u32, peer_port: u32, op: Op) -> Self {
        Self {
            src_cid: HOST_CID,
            dst_cid: guest_cid,
            src_port: local_port,
            dst_port: peer_port,
            len: 0,
            type_: TYPE_STREAM,
            op: op as u16,
            flags: 0,
            buf_alloc: 0,
            fwd_cnt: 0,
        }
    }

    /// The RST answering `self` (a guest packet): addresses swapped.
    pub fn rst_reply(&self) -> Self {
        Self {
            src_cid: self.dst_cid,
            dst_cid: self.src_cid,
            src_port: self.dst_port,
            dst_port: self.src_port,
            len: 0,
            type_: TYPE_STREAM,
            op: Op::Rst as u16,
            flags: 0,
            buf_alloc: 0,
            fwd_cnt: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_header_wire_layout() {
        let h = VsockHeader {
            src_cid: 0x0102_0304_0506_0708,
            dst_cid: 2,
            src_port: 0x1112_1314,
            dst_port: 1024,
            len: 0x2122_2324,
            type_: TYPE_STREAM,
            op: Op::Rw as u16,
            flags: 3,
            buf_alloc: 0x3132_3334,
            fwd_cnt: 0x4142_4344,
        };
        let b = h.to_bytes();
        assert_eq!(&b[0..8], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&b[8..16], &[2, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&b[16..20], &[0x14, 0x13, 0x12, 0x11]);
        assert_eq!(&b[20..24], &[0, 4, 0, 0]);
        assert_eq!(&b[24..28], &[0x24, 0x23, 0x22, 0x21]);
        assert_eq!(&b[28..32], &[1, 0, 5, 0]);
        assert_eq!(&b[32..36], &[3, 0, 0, 0]);
        assert_eq!(&b[36..40], &[0x34, 0x33, 0x32, 0x31]);
        assert_eq!(&b[40..44], &[0x44, 0x43, 0x42, 0x41]);
        assert_eq!(VsockHeader::from_bytes(&b), h);
    }

    #[test]
    fn test_op_values_and_unknown() {
        for v in 1..=7u16 {
            assert_eq!(Op::from_u16(v).map(|o| o as u16), Some(v));
        }
        assert_eq!(Op::from_u16(0), None);
        assert_eq!(Op::from_u16(8), None);
        assert_eq!(Op::from_u16(u16::MAX), None);
    }

    #[test]
    fn test_rst_reply_swaps_addresses() {
        let h = VsockHeader {
            src_cid: 3,
            dst_cid: 2,
            src_port: 5000,
            dst_port: 1234,
            len: 99,
            op: Op::Rw as u16,
            ..Default::default()
        };
        let r = h.rst_reply();
        assert_eq!(
            (r.src_cid, r.dst_cid, r.src_port, r.dst_port),
            (2, 3, 1234, 5000)
        );
        assert_eq!((r.len, r.op(), r.type_), (0, Some(Op::Rst), TYPE_STREAM));
    }
}
