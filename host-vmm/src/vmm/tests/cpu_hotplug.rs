//! vCPU hot-plug on real KVM vCPUs, with a stub guest that halts and a test thread in the
//! role of the guest's AML (it acknowledges removals and ejects through the MMIO bus, as
//! CSCN and `_EJ0` do). Needs /dev/kvm (fails without it).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::acpi::registers::{
    CHP_REG_SELECT, CHP_REG_STATUS, CHP_STATUS_EJECT, CHP_STATUS_REMOVING,
};
use crate::arch::x86_64::layout::CPU_HOTPLUG_MMIO_BASE;
use crate::arch::x86_64::test_utils::{stub_bzimage, HALT_LOOP};
use crate::builder::{build_vm, BootOptions};
use crate::config::HypervisorConfig;
use crate::devices::Bus;
use crate::hotplug::cpu::CpuHotplugError;
use crate::hotplug::cpu_plan::CountError;
use crate::vmm::GuestExit;

fn config(kernel: std::path::PathBuf) -> HypervisorConfig {
    HypervisorConfig {
        kernel,
        initrd: None,
        image: None,
        firmware: None,
        kernel_params: String::new(),
        default_vcpus: 1,
        default_maxvcpus: 3,
        default_root_ports: 0,
        default_bridges: 0,
        default_memory: 128,
        memory_slots: 1,
        default_maxmemory: 256,
    }
}

fn write32(bus: &Bus, offset: u64, value: u32) {
    assert!(bus.write(CPU_HOTPLUG_MMIO_BASE + offset, &value.to_le_bytes()));
}

fn read32(bus: &Bus, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    assert!(bus.read(CPU_HOTPLUG_MMIO_BASE + offset, &mut b));
    u32::from_le_bytes(b)
}

/// The guest's side of a removal: every CPU with REMOVING set is acknowledged and ejected.
fn eject_requested(bus: &Bus, count: u32) {
    for cpu in 0..count {
        write32(bus, CHP_REG_SELECT, cpu);
        if read32(bus, CHP_REG_STATUS) & CHP_STATUS_REMOVING != 0 {
            write32(bus, CHP_REG_STATUS, CHP_STATUS_REMOVING);
            write32(bus, CHP_REG_STATUS, CHP_STATUS_EJECT);
        }
    }
}

#[test]
fn test_cpu_hotplug_add_remove_and_add_again_on_kvm() {
    assert!(
        std::path::Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm, which this host does not have"
    );
    let dir = std::env::temp_dir().join(format!("host-vmm-cpuhp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(HALT_LOOP)).unwrap();
    let opts = BootOptions {
        console: Some(dir.join("console")),
        ..Default::default()
    };
    let vmm = build_vm(&config(kernel), &opts).unwrap();
    let cpus = vmm.cpu_hotplug().expect("vCPU hot-plug is on");
    let bus = vmm.run_context().mmio;
    let exit = vmm.exit_signal().clone();
    let vm = std::thread::spawn(move || vmm.run().unwrap());

    // The guest's AML, acting on removal requests.
    let done = Arc::new(AtomicBool::new(false));
    let guest = {
        let (bus, done) = (bus.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                eject_requested(&bus, 3);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    assert_eq!(cpus.status().present, 1);
    assert_eq!(cpus.set_vcpus(3).unwrap().present, 3);
    match cpus.set_vcpus(4) {
        Err(CpuHotplugError::Count(CountError::AboveMax { max: 3, .. })) => {}
        other => panic!("{:?}", other.map(|s| s.present)),
    }
    assert!(matches!(
        cpus.set_vcpus(0),
        Err(CpuHotplugError::Count(CountError::BelowOne { .. }))
    ));
    assert_eq!(cpus.status().present, 3, "refusals change nothing");
    // Down, up (the parked vCPUs are reused: KVM refuses a second KVM_CREATE_VCPU), down.
    for _ in 0..3 {
        assert_eq!(cpus.set_vcpus(1).unwrap().present, 1);
        assert_eq!(cpus.set_vcpus(3).unwrap().present, 3);
    }
    assert_eq!(cpus.set_vcpus(2).unwrap().present, 2);

    // A guest that does not eject: refused, naming the CPU; it stays, REMOVING withdrawn.
    done.store(true, Ordering::SeqCst);
    guest.join().unwrap();
    cpus.set_eject_deadline(Duration::from_millis(100));
    match cpus.set_vcpus(1) {
        Err(e @ CpuHotplugError::GuestRefused { cpu: 1, .. }) => {
            assert!(e.to_string().contains("did not eject CPU 1"), "{e}");
        }
        other => panic!("{:?}", other.map(|s| s.present)),
    }
    assert_eq!(cpus.status().present, 2);
    write32(&bus, CHP_REG_SELECT, 1);
    assert_eq!(read32(&bus, CHP_REG_STATUS) & CHP_STATUS_REMOVING, 0);
    // A late eject is ignored: the request was withdrawn.
    write32(&bus, CHP_REG_STATUS, CHP_STATUS_EJECT);
    assert_eq!(read32(&bus, CHP_REG_STATUS) & 1, 1, "still present");

    exit.request(GuestExit::PowerOff);
    assert_eq!(vm.join().unwrap(), GuestExit::PowerOff);
    assert!(matches!(cpus.set_vcpus(3), Err(CpuHotplugError::Stopped)));
    let _ = std::fs::remove_dir_all(&dir);
}
