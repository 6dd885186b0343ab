//! Native boot benchmark: host-vmm start → first vCPU entry, against the
//! bare KVM floor, on this machine's /dev/kvm (KVM-PVM here is enough: the
//! first entry works even where a Linux guest cannot run).
//!
//! Each run spawns a subject with `HOST_VMM_STOP_AFTER_FIRST_ENTRY=1`
//! (see `host_vmm::kvm::first_entry`): host-vmm booting the real guest
//! kernel and initramfs with the repository's configuration.toml (1024 MiB,
//! 1 vCPU) and with `--memory 128`, and the floor (this binary with
//! `--floor MIB`: /dev/kvm, a VM, one memory slot of the same size, one
//! vCPU entering a `hlt`). Rounds interleave the subjects (order reversed
//! every other round) after one warm-up round. Per run it records the wall
//! and CPU time to the entry, to the stop after it, and /proc/PID/smaps at the
//! stop (for the RSS figures, computed by `tests/bench/report.py`).
//!
//! `cargo bench -p host-vmm --bench boot -- [--runs N] [--out DIR]
//! [--kernel BZIMAGE] [--initrd CPIO] [--config FILE]` writes DIR/native.tsv
//! (default DIR: target/bench/native) and prints medians and ratios. `make
//! bench` runs it as part of the full report. Fails, naming what is
//! missing, without /dev/kvm, the kernel or the initramfs.

#[cfg(target_arch = "x86_64")]
mod child;
#[cfg(target_arch = "x86_64")]
mod driver;
#[cfg(target_arch = "x86_64")]
mod floor;

use std::process::ExitCode;

#[cfg(not(target_arch = "x86_64"))]
fn main() -> ExitCode {
    eprintln!("boot bench: only implemented on x86_64");
    ExitCode::FAILURE
}

#[cfg(target_arch = "x86_64")]
fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        let mib = args.get(i + 1).and_then(|v| v.parse::<u64>().ok());
        return match mib.map(floor::run) {
            Some(Ok(())) => ExitCode::SUCCESS,
            Some(Err(e)) => {
                eprintln!("kvm-floor: {e}");
                ExitCode::FAILURE
            }
            None => {
                eprintln!("kvm-floor: usage: --floor MIB");
                ExitCode::FAILURE
            }
        };
    }
    match driver::bench(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("boot bench: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
