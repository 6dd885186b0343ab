//! The bare KVM floor: the least a process must do to enter a vCPU with
//! `mem_mib` of guest RAM. Open /dev/kvm, create a VM, map and register one
//! memory slot, create one vCPU at a `hlt`, and enter it once. It prints the
//! same entry line as host-vmm's first-entry hook and stops itself the same
//! way, so the driver measures both alike.

use std::io::Write;

use host_vmm::kvm::first_entry;
use kvm_ioctls::{Kvm, VcpuExit};

/// Where the `hlt` sits (real mode, CS base 0).
const CODE_ADDR: u64 = 0x1000;
const HLT: u8 = 0xf4;

/// Run the floor and return the exit status (the process is stopped with
/// SIGSTOP after the entry and normally killed there by the driver).
pub fn run(mem_mib: u64) -> Result<(), String> {
    let kvm = Kvm::new().map_err(|e| format!("open /dev/kvm: {e}"))?;
    let vm = kvm.create_vm().map_err(|e| format!("KVM_CREATE_VM: {e}"))?;
    let size = mem_mib << 20;
    let size_usize = usize::try_from(size).map_err(|_| "memory size overflows usize")?;
    // SAFETY: an anonymous private mapping at a kernel-chosen address; no
    // existing memory is touched. Checked for MAP_FAILED below.
    let host = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size_usize,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if host == libc::MAP_FAILED {
        return Err(format!(
            "mmap {mem_mib} MiB: {}",
            std::io::Error::last_os_error()
        ));
    }
    let code_offset = usize::try_from(CODE_ADDR).map_err(|_| "code address")?;
    // SAFETY: CODE_ADDR lies inside the `size`-byte mapping created above
    // (at least 1 MiB), which is writable.
    unsafe { host.cast::<u8>().add(code_offset).write(HLT) };
    let region = kvm_bindings::kvm_userspace_memory_region {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: size,
        userspace_addr: host as u64,
    };
    // SAFETY: the region points at the mapping above, which stays mapped
    // until the process ends (it is never unmapped).
    unsafe { vm.set_user_memory_region(region) }
        .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
    let mut vcpu = vm
        .create_vcpu(0)
        .map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?;
    let mut sregs = vcpu
        .get_sregs()
        .map_err(|e| format!("KVM_GET_SREGS: {e}"))?;
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    vcpu.set_sregs(&sregs)
        .map_err(|e| format!("KVM_SET_SREGS: {e}"))?;
    let regs = kvm_bindings::kvm_regs {
        rip: CODE_ADDR,
        rflags: 0x2,
        ..Default::default()
    };
    vcpu.set_regs(&regs)
        .map_err(|e| format!("KVM_SET_REGS: {e}"))?;

    let (user_us, sys_us) = first_entry::process_cpu_us();
    let ns = first_entry::monotonic_ns();
    let _ = writeln!(
        std::io::stderr(),
        "kvm-floor: first vCPU entry monotonic_ns={ns} user_us={user_us} sys_us={sys_us}"
    );
    let exit = vcpu.run().map_err(|e| format!("KVM_RUN: {e}"))?;
    if !matches!(exit, VcpuExit::Hlt) {
        return Err(format!("KVM_RUN: expected a HLT exit, got {exit:?}"));
    }
    // SAFETY: raising SIGSTOP stops the process until SIGCONT.
    unsafe { libc::raise(libc::SIGSTOP) };
    Ok(())
}
