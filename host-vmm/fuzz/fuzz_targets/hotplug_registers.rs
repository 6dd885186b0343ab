//! Guest accesses to the ACPI hot-plug registers (memory hot-plug controller, GED,
//! virtio present bitmap, empty slot) among host hot-adds (see
//! host_vmm::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::fuzzing::hotplug_registers(data);
});
