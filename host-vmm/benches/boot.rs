//! Boot-path timings on this machine's /dev/kvm (no nested test host):
//! - `build`: `build_vm` for 1 GiB and 1 vCPU (memory, KVM VM, devices,
//!   kernel and initrd load, ACPI, boot params, vCPU setup), with the real
//!   guest kernel when `target/kernel/guest/bzImage` exists, else a stub;
//! - `stub_cycle`: build + run + teardown of a stub guest that powers off at
//!   its first instruction (VMM overhead of one VM lifetime, 1 and 4 vCPUs).
//!
//! `cargo bench -p host-vmm --bench boot [-- RUNS]`. Prints one line per
//! case: `bench NAME runs=N median_us=M min_us=L`. Needs /dev/kvm.

use std::path::{Path, PathBuf};
use std::time::Instant;

use host_vmm::builder::{build_vm, BootOptions};
use host_vmm::config::HypervisorConfig;
use host_vmm::vmm::GuestExit;

/// `mov dx, 0x600; mov al, 0x34; out dx, al; hlt`
const POWER_OFF: &[u8] = &[0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee, 0xf4];

/// A minimal bzImage (boot protocol 2.15, 64-bit entry) running `code`.
fn stub_bzimage(code: &[u8]) -> Vec<u8> {
    let mut img = vec![0u8; 1024];
    img[0x1f1] = 1; // setup_sects
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    img[0x211] = 0x1; // LOADED_HIGH
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    img[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
    img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    img[0x258..0x260].copy_from_slice(&0x10_0000u64.to_le_bytes());
    img[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img.extend_from_slice(&[0u8; 0x200]);
    img.extend_from_slice(code);
    img
}

fn config(kernel: &Path, initrd: Option<PathBuf>, vcpus: u32) -> HypervisorConfig {
    HypervisorConfig {
        kernel: kernel.to_path_buf(),
        initrd,
        image: None,
        firmware: None,
        kernel_params: String::new(),
        default_vcpus: vcpus,
        default_maxvcpus: vcpus,
        default_root_ports: 0,
        default_bridges: 0,
        default_memory: 1024,
        memory_slots: 0,
        default_maxmemory: 1024,
    }
}

fn measure(name: &str, runs: usize, mut f: impl FnMut()) {
    let mut us: Vec<u128> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_micros()
        })
        .collect();
    us.sort_unstable();
    println!(
        "bench {name} runs={runs} median_us={} min_us={}",
        us[runs / 2],
        us[0]
    );
}

fn main() {
    let runs = std::env::args()
        .skip(1)
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(20)
        .max(1);
    assert!(Path::new("/dev/kvm").exists(), "this benchmark needs /dev/kvm");
    let dir = std::env::temp_dir().join(format!("host-vmm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let stub = dir.join("stub-bzImage");
    std::fs::write(&stub, stub_bzimage(POWER_OFF)).expect("write stub kernel");
    let opts = BootOptions {
        console: Some(dir.join("console")),
    };

    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let real_kernel = repo.join("target/kernel/guest/bzImage");
    let real_initrd = repo.join("target/rootfs/initramfs.cpio");
    let (name, kernel, initrd) = if real_kernel.is_file() {
        let initrd = real_initrd.is_file().then_some(real_initrd);
        ("build_real_kernel_1g", real_kernel, initrd)
    } else {
        ("build_stub_kernel_1g", stub.clone(), None)
    };
    let cfg = config(&kernel, initrd, 1);
    measure(name, runs, || {
        drop(build_vm(&cfg, &opts).expect("build_vm"));
    });

    for vcpus in [1, 4] {
        let cfg = config(&stub, None, vcpus);
        measure(&format!("stub_cycle_{vcpus}vcpu_1g"), runs, || {
            let vmm = build_vm(&cfg, &opts).expect("build_vm");
            assert_eq!(vmm.run().expect("run"), GuestExit::PowerOff);
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}
