//! Arbitrary descriptor chains and request headers on the virtio-blk
//! request queue (see host_vmm::devices::virtio::block::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::devices::virtio::block::fuzzing::block_queues(data);
});
