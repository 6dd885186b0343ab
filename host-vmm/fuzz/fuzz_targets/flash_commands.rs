//! Guest command sequences on the CFI flash variable store (see
//! host_vmm::devices::firmware::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::devices::firmware::fuzzing::flash_commands(data);
});
