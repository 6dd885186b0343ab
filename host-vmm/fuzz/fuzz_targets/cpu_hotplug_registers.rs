//! Guest accesses to the CPU hot-plug controller (garbage selectors, status bits, ejects)
//! among the host's adds and removal requests (see host_vmm::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::fuzzing::cpu_hotplug_registers(data);
});
