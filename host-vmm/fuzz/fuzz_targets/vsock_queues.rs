//! Arbitrary descriptor chains, packet headers and host-client actions on
//! the vsock device (see host_vmm::devices::virtio::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::devices::virtio::fuzzing::vsock_queues(data);
});
