//! Descriptor chains checked before use.
//!
//! virtio-queue walks a chain (following `next`, bounded by the queue size,
//! so a loop ends) but stops silently on a bad index or an unreadable
//! descriptor. [`DescChain::parse`] walks it once, up front, and refuses
//! the whole chain if it is broken, too long, has a readable buffer after a
//! writable one, or names memory outside guest RAM. Reads and writes then
//! only touch the checked buffers.

use std::ops::Deref;

use virtio_queue::DescriptorChain;
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};

use crate::memory::GuestMemoryMmap;

/// Why a descriptor chain was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    #[error("descriptor chain is empty or its head is unreadable")]
    Empty,
    #[error("descriptor chain is broken (bad next index, loop or unreadable descriptor)")]
    Broken,
    #[error("descriptor chain has more than {max} descriptors")]
    TooLong { max: usize },
    #[error("descriptor chain has a device-readable buffer after a device-writable one")]
    ReadableAfterWritable,
    #[error("descriptor buffer {addr:#x}+{len:#x} is not in guest RAM")]
    OutOfMemory { addr: u64, len: u32 },
    #[error("descriptor chain is larger than 4 GiB")]
    TooLarge,
    #[error("access of {len} bytes at offset {offset} is past the end of the chain's buffers")]
    OutOfBounds { offset: usize, len: usize },
    #[error("guest memory access failed at {addr:#x}")]
    Memory { addr: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Region {
    addr: u64,
    len: u32,
}

/// A descriptor chain whose buffers are all in guest RAM: the
/// device-readable ones first, then the device-writable ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescChain {
    head: u16,
    readable: Vec<Region>,
    writable: Vec<Region>,
    readable_len: usize,
    writable_len: usize,
}

impl DescChain {
    /// Walk `chain` (at most `max_descs` descriptors) and check it.
    pub fn parse<M>(
        mut chain: DescriptorChain<M>,
        mem: &GuestMemoryMmap,
        max_descs: usize,
    ) -> Result<Self, ChainError>
    where
        M: Deref,
        M::Target: vm_memory::GuestMemory,
    {
        let mut out = DescChain {
            head: chain.head_index(),
            readable: Vec::new(),
            writable: Vec::new(),
            readable_len: 0,
            writable_len: 0,
        };
        let mut count = 0usize;
        let mut more = true;
        while more {
            let Some(desc) = chain.next() else {
                return Err(if count == 0 {
                    ChainError::Empty
                } else {
                    ChainError::Broken
                });
            };
            count += 1;
            if count > max_descs {
                return Err(ChainError::TooLong { max: max_descs });
            }
            more = desc.has_next();
            let region = Region {
                addr: desc.addr().0,
                len: desc.len(),
            };
            // u32 fits usize on every host we build for (64-bit).
            let len = region.len as usize;
            if !mem.check_range(GuestAddress(region.addr), len) {
                return Err(ChainError::OutOfMemory {
                    addr: region.addr,
                    len: region.len,
                });
            }
            let total = out.readable_len + out.writable_len + len;
            if total > u32::MAX as usize {
                return Err(ChainError::TooLarge);
            }
            if desc.is_write_only() {
                out.writable.push(region);
                out.writable_len += len;
            } else if !out.writable.is_empty() {
                return Err(ChainError::ReadableAfterWritable);
            } else {
                out.readable.push(region);
                out.readable_len += len;
            }
        }
        Ok(out)
    }

    /// The head descriptor index, to return the chain in the used ring.
    pub fn head_index(&self) -> u16 {
        self.head
    }

    /// Total bytes the device may read.
    pub fn readable_len(&self) -> usize {
        self.readable_len
    }

    /// Total bytes the device may write.
    pub fn writable_len(&self) -> usize {
        self.writable_len
    }

    /// Read exactly `buf.len()` bytes from the readable buffers, starting
    /// `offset` bytes into them.
    pub fn read_at(
        &self,
        mem: &GuestMemoryMmap,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), ChainError> {
        let mut done = 0;
        for_each_piece(&self.readable, offset, buf.len(), |addr, at, n| {
            mem.read_slice(&mut buf[at..at + n], GuestAddress(addr))
                .map_err(|_| ChainError::Memory { addr })?;
            done += n;
            Ok(())
        })?;
        debug_assert_eq!(done, buf.len());
        Ok(())
    }

    /// Write all of `buf` to the writable buffers, starting `offset` bytes
    /// into them.
    pub fn write_at(
        &self,
        mem: &GuestMemoryMmap,
        offset: usize,
        buf: &[u8],
    ) -> Result<(), ChainError> {
        for_each_piece(&self.writable, offset, buf.len(), |addr, at, n| {
            mem.write_slice(&buf[at..at + n], GuestAddress(addr))
                .map_err(|_| ChainError::Memory { addr })
        })
    }
}

/// Split `[offset, offset + len)` of the concatenated `regions` into
/// per-region pieces: `f(guest_addr, offset_in_buf, piece_len)`.
fn for_each_piece(
    regions: &[Region],
    offset: usize,
    len: usize,
    mut f: impl FnMut(u64, usize, usize) -> Result<(), ChainError>,
) -> Result<(), ChainError> {
    let total: usize = regions.iter().map(|r| r.len as usize).sum();
    if offset.checked_add(len).is_none_or(|end| end > total) {
        return Err(ChainError::OutOfBounds { offset, len });
    }
    let mut skip = offset;
    let mut at = 0;
    for r in regions {
        if at == len {
            break;
        }
        let rlen = r.len as usize;
        if skip >= rlen {
            skip -= rlen;
            continue;
        }
        let n = (rlen - skip).min(len - at);
        // In bounds: checked against guest RAM by `parse`, skip < rlen.
        f(r.addr + skip as u64, at, n)?;
        at += n;
        skip = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::virtio::testutil::{Desc, GuestQueue};
    use virtio_queue::QueueT;

    fn mem() -> GuestMemoryMmap {
        GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap()
    }

    fn parse_one(
        mem: &GuestMemoryMmap,
        gq: &GuestQueue,
        max: usize,
    ) -> Result<DescChain, ChainError> {
        let mut q = gq.device_queue();
        let chain = q.pop_descriptor_chain(mem).expect("a chain");
        DescChain::parse(chain, mem, max)
    }

    #[test]
    fn test_chain_read_write_across_buffers() {
        let mem = mem();
        let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
        gq.add_chain(
            &mem,
            &[
                Desc::read(0x8000, 3),
                Desc::read(0x9000, 5),
                Desc::write(0xa000, 4),
                Desc::write(0xb000, 4),
            ],
        );
        mem.write_slice(b"abc", GuestAddress(0x8000)).unwrap();
        mem.write_slice(b"defgh", GuestAddress(0x9000)).unwrap();
        let c = parse_one(&mem, &gq, 8).unwrap();
        assert_eq!((c.readable_len(), c.writable_len()), (8, 8));
        let mut buf = [0u8; 6];
        c.read_at(&mem, 1, &mut buf).unwrap();
        assert_eq!(&buf, b"bcdefg");
        c.write_at(&mem, 2, b"WXYZ").unwrap();
        let mut out = [0u8; 4];
        mem.read_slice(&mut out, GuestAddress(0xa002)).unwrap();
        assert_eq!(&out[..2], b"WX");
        mem.read_slice(&mut out, GuestAddress(0xb000)).unwrap();
        assert_eq!(&out[..2], b"YZ");
        assert_eq!(
            c.read_at(&mem, 4, &mut [0u8; 5]),
            Err(ChainError::OutOfBounds { offset: 4, len: 5 })
        );
        assert!(c.write_at(&mem, usize::MAX, b"x").is_err());
    }

    #[test]
    fn test_chain_refuses_bad_chains() {
        let mem = mem();
        let cases: Vec<(Vec<Desc>, ChainError)> = vec![
            (
                vec![Desc::read(0xff000, 0x2000)],
                ChainError::OutOfMemory {
                    addr: 0xff000,
                    len: 0x2000,
                },
            ),
            (
                vec![Desc::read(u64::MAX - 1, 4)],
                ChainError::OutOfMemory {
                    addr: u64::MAX - 1,
                    len: 4,
                },
            ),
            (
                vec![Desc::write(0x8000, 4), Desc::read(0x9000, 4)],
                ChainError::ReadableAfterWritable,
            ),
            (
                (0..5).map(|i| Desc::read(0x8000 + i * 16, 16)).collect(),
                ChainError::TooLong { max: 4 },
            ),
        ];
        for (descs, want) in cases {
            let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
            gq.add_chain(&mem, &descs);
            assert_eq!(parse_one(&mem, &gq, 4), Err(want));
        }
    }

    #[test]
    fn test_chain_refuses_loops_and_bad_next() {
        let mem = mem();
        // A two-descriptor loop: 0 -> 1 -> 0 ...
        let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
        gq.write_raw_desc(&mem, 0, 0x8000, 8, 1 /* NEXT */, 1);
        gq.write_raw_desc(&mem, 1, 0x8000, 8, 1, 0);
        gq.publish(&mem, 0);
        assert_eq!(parse_one(&mem, &gq, 1000), Err(ChainError::Broken));
        // next index past the table.
        let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
        gq.write_raw_desc(&mem, 0, 0x8000, 8, 1, 200);
        gq.publish(&mem, 0);
        assert_eq!(parse_one(&mem, &gq, 1000), Err(ChainError::Broken));
        // Head index past the table: virtio-queue refuses it.
        let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
        gq.publish(&mem, 999);
        assert_eq!(parse_one(&mem, &gq, 1000), Err(ChainError::Empty));
    }

    #[test]
    fn test_chain_indirect_table_outside_ram_is_refused() {
        let mem = mem();
        let mut gq = GuestQueue::new(&mem, GuestAddress(0x1000), 16);
        gq.write_raw_desc(&mem, 0, 0xdead_0000, 64, 4 /* INDIRECT */, 0);
        gq.publish(&mem, 0);
        assert_eq!(parse_one(&mem, &gq, 1000), Err(ChainError::Empty));
    }

    #[test]
    fn test_for_each_piece_bounds() {
        let regions = [Region { addr: 0, len: 4 }, Region { addr: 100, len: 4 }];
        let mut pieces = vec![];
        for_each_piece(&regions, 3, 3, |a, at, n| {
            pieces.push((a, at, n));
            Ok(())
        })
        .unwrap();
        assert_eq!(pieces, vec![(3, 0, 1), (100, 1, 2)]);
        assert!(for_each_piece(&regions, 8, 1, |_, _, _| Ok(())).is_err());
        for_each_piece(&regions, 8, 0, |_, _, _| panic!("no piece")).unwrap();
    }
}
