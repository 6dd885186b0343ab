//! Guest accesses to fw_cfg's selector, data and DMA registers, with DMA
//! descriptors the guest writes into its RAM (see
//! host_vmm::devices::firmware::fuzzing).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    host_vmm::devices::firmware::fuzzing::fw_cfg_registers(data);
});
