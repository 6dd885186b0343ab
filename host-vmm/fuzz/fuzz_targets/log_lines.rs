//! The agent log sink's line splitter and sanitizer on a guest byte stream (see
//! host_vmm::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::fuzzing::log_lines(data);
});
