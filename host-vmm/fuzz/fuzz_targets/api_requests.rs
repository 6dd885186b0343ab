//! The control socket's request reader and parser on a client's bytes (see
//! host_vmm::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::fuzzing::api_requests(data);
});
