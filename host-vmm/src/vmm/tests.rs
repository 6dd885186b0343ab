//! End-to-end runs of tiny stub guests through `build_vm` and `Vmm::run`:
//! a fake bzImage whose 64-bit entry is a few instructions that power off,
//! reset, write to the console or triple-fault. These need /dev/kvm and
//! fail (not skip) without it.

/// vCPU hot-plug on real vCPUs (`tests/cpu_hotplug.rs`).
mod cpu_hotplug;

use std::path::{Path, PathBuf};

use crate::arch::x86_64::test_utils::{stub_bzimage, HALT_LOOP};
use crate::builder::{build_vm, BootOptions};
use crate::config::HypervisorConfig;
use vm_memory::{GuestMemoryBackend, GuestMemoryRegion};

use crate::vmm::GuestExit;

/// `mov dx, 0x600; mov al, SLP_EN | 5 << 2; out dx, al`
const POWER_OFF: &[u8] = &[0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee];
/// `mov al, 0xfe; out 0x64, al`
const I8042_RESET: &[u8] = &[0xb0, 0xfe, 0xe6, 0x64];
/// `ud2`: the boot IDT is empty, so #UD -> #GP -> #DF -> triple fault.
const TRIPLE_FAULT: &[u8] = &[0x0f, 0x0b];

/// `mov dx, 0x3f8; mov al, byte; out dx, al` for each byte.
fn serial_write(text: &[u8]) -> Vec<u8> {
    text.iter()
        .flat_map(|b| [0x66, 0xba, 0xf8, 0x03, 0xb0, *b, 0xee])
        .collect()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("host-vmm-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(kernel: &Path, vcpus: u32) -> HypervisorConfig {
    config_mem(kernel, vcpus, 64)
}

fn config_mem(kernel: &Path, vcpus: u32, memory_mib: u64) -> HypervisorConfig {
    HypervisorConfig {
        kernel: kernel.to_path_buf(),
        initrd: None,
        image: None,
        firmware: None,
        kernel_params: String::new(),
        default_vcpus: vcpus,
        default_maxvcpus: vcpus.max(2),
        default_root_ports: 0,
        default_bridges: 0,
        default_memory: memory_mib,
        memory_slots: 0,
        default_maxmemory: memory_mib,
    }
}

/// Build and run a stub guest; return how it ended and its console output.
fn run_stub(name: &str, code: &[u8], vcpus: u32) -> (GuestExit, String) {
    assert!(
        Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm, which this host does not have"
    );
    let dir = TempDir::new(name);
    let kernel = dir.0.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(code)).unwrap();
    let console = dir.0.join("console");
    let opts = BootOptions {
        console: Some(console.clone()),
        ..Default::default()
    };
    let vmm = build_vm(&config(&kernel, vcpus), &opts).unwrap();
    let exit = vmm.run().unwrap();
    (exit, std::fs::read_to_string(&console).unwrap())
}

#[test]
fn test_stub_guest_acpi_power_off() {
    let (exit, _) = run_stub("poweroff", POWER_OFF, 1);
    assert_eq!(exit, GuestExit::PowerOff);
}

#[test]
fn test_stub_guest_console_then_power_off() {
    let mut code = serial_write(b"hi\n");
    code.extend_from_slice(POWER_OFF);
    let (exit, console) = run_stub("console", &code, 1);
    assert_eq!(exit, GuestExit::PowerOff);
    assert_eq!(console, "hi\n");
}

#[test]
fn test_stub_guest_with_ram_above_4g() {
    // 5 GiB: 3 GiB below the MMIO gap and 2 GiB from 4 GiB, two KVM slots.
    assert!(Path::new("/dev/kvm").exists(), "this test needs /dev/kvm");
    let dir = TempDir::new("himem");
    let kernel = dir.0.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(POWER_OFF)).unwrap();
    let opts = BootOptions {
        console: Some(dir.0.join("console")),
        ..Default::default()
    };
    let vmm = build_vm(&config_mem(&kernel, 1, 5 * 1024), &opts).unwrap();
    let regions: Vec<_> = vmm
        .memory()
        .iter()
        .map(|r| (r.start_addr().0, r.len()))
        .collect();
    assert_eq!(regions, vec![(0, 3 << 30), (4 << 30, 2 << 30)]);
    assert_eq!(vmm.run().unwrap(), GuestExit::PowerOff);
}

#[test]
fn test_stub_guest_i8042_reset() {
    let (exit, _) = run_stub("reset", I8042_RESET, 1);
    assert!(matches!(exit, GuestExit::Reset { .. }), "{exit}");
    assert_eq!(exit.exit_code(), 2);
}

#[test]
fn test_stub_guest_triple_fault_dumps_registers() {
    let (exit, _) = run_stub("triple", TRIPLE_FAULT, 1);
    let GuestExit::TripleFault { vcpu, regs } = &exit else {
        panic!("expected a triple fault, got {exit}");
    };
    assert_eq!(*vcpu, 0);
    assert!(
        regs.contains("rip=") && regs.contains("cr3=0x9000"),
        "{regs}"
    );
    assert_eq!(exit.exit_code(), 3);
}

#[test]
fn test_stub_guest_power_off_stops_waiting_application_processors() {
    // vCPUs 1..3 wait for INIT/SIPI inside KVM; the VMM must kick them out.
    let (exit, _) = run_stub("smp", POWER_OFF, 4);
    assert_eq!(exit, GuestExit::PowerOff);
}

#[test]
fn test_stub_guest_halt_is_stopped_by_another_vcpus_exit() {
    // The boot vCPU halts forever; nothing else ends the VM, so use a second
    // VM-level exit: a device request from this thread after a delay.
    assert!(Path::new("/dev/kvm").exists(), "this test needs /dev/kvm");
    let dir = TempDir::new("halt");
    let kernel = dir.0.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(HALT_LOOP)).unwrap();
    let opts = BootOptions {
        console: Some(dir.0.join("console")),
        ..Default::default()
    };
    let vmm = build_vm(&config(&kernel, 2), &opts).unwrap();
    let exit = vmm.exit_signal().clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        exit.request(GuestExit::PowerOff);
    });
    assert_eq!(vmm.run().unwrap(), GuestExit::PowerOff);
    t.join().unwrap();
}

/// Issue 10, finding 7, through a real vCPU: the console is a FIFO whose
/// reader holds it open (its pipe shrunk to one page) and never reads.
/// A guest that writes 64 KiB to COM1 still runs to its power-off, and the
/// teardown does not wait for the stuck console writer.
#[test]
fn test_stub_guest_chatty_console_with_a_stalled_reader_powers_off() {
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::{Duration, Instant};
    assert!(Path::new("/dev/kvm").exists(), "this test needs /dev/kvm");
    let dir = TempDir::new("stalled-console");
    let fifo = dir.0.join("console.fifo");
    let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    // SAFETY: F_SETPIPE_SZ with an int argument on a descriptor we own.
    let size = unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&reader),
            libc::F_SETPIPE_SZ,
            4096,
        )
    };
    assert!(size >= 4096, "F_SETPIPE_SZ: {size}");
    // mov ecx, 65536; mov dx, 0x3f8; mov al, 'x'; 1: out dx, al; dec ecx; jnz 1b
    let mut code = vec![
        0xb9, 0x00, 0x00, 0x01, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xb0, b'x',
    ];
    code.extend_from_slice(&[0xee, 0xff, 0xc9, 0x75, 0xfb]);
    code.extend_from_slice(POWER_OFF);
    let kernel = dir.0.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(&code)).unwrap();
    let opts = BootOptions {
        console: Some(fifo.clone()),
        ..Default::default()
    };
    let vmm = build_vm(&config(&kernel, 1), &opts).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let _ = tx.send(vmm.run().map_err(|e| e.to_string()));
    });
    let exit = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the guest powered off and the VMM returned within 120 s");
    assert_eq!(exit.unwrap(), GuestExit::PowerOff);
    eprintln!("64 KiB to a stalled console: {:?}", start.elapsed());
    drop(reader);
}
