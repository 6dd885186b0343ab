//! Arbitrary MMIO register accesses on the virtio-mmio transport (see
//! host_vmm::devices::virtio::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::devices::virtio::fuzzing::mmio_registers(data);
});
