//! Hot-adds against a real KVM VM (no vCPU needed: KVM takes memory slots
//! at any time). These need /dev/kvm and fail (not skip) without it.

use std::path::Path;

use vm_memory::{Bytes, GuestAddressSpace, GuestMemoryBackend};

use super::*;
use crate::devices::acpi::memory_hotplug::{
    MHP_REG_BASE_HI, MHP_REG_SELECT, MHP_REG_STATUS, MHP_STATUS_ENABLED, MHP_STATUS_INSERTING,
};
use crate::memory::layout::{hotplug_region, HotplugLayoutInput, GUEST_MEMORY_BLOCK_SIZE};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const BLOCK: u64 = GUEST_MEMORY_BLOCK_SIZE;
const CONTROLLER: u64 = 0xd100_1000;
const GED: u64 = 0xd100_0000;

struct Setup {
    hp: Arc<MemoryHotplug>,
    mmio: Bus,
}

/// A VM with 64 MiB of boot RAM, `slots` slots and `max_mib` of maxmemory.
fn setup(slots: u32, max_mib: u64) -> Setup {
    assert!(
        Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm, which this host does not have"
    );
    let vm = Arc::new(Vm::new().unwrap());
    let mem = crate::memory::create_guest_memory(&[(GuestAddress(0), 64 * MIB)], 64).unwrap();
    vm.register_memory(&mem).unwrap();
    let memory = GuestMemoryAtomic::new(mem);
    #[cfg(target_arch = "x86_64")]
    vm.setup_irqchip().unwrap();
    let region = hotplug_region(&HotplugLayoutInput {
        boot_bytes: 64 * MIB,
        boot_ram_end: 64 * MIB,
        max_bytes: max_mib * MIB,
        slots,
        min_start: 4 * GIB,
        phys_bits: 40,
        block_size: BLOCK,
    });
    let mut mmio = Bus::new();
    let at = HotplugDevices {
        controller_base: CONTROLLER,
        ged_base: GED,
        ged_gsi: 13,
    };
    let hp = attach(&vm, &mut mmio, &memory, region, at).unwrap();
    Setup { hp, mmio }
}

fn r32(bus: &Bus, addr: u64) -> u32 {
    let mut b = [0u8; 4];
    assert!(bus.read(addr, &mut b));
    u32::from_le_bytes(b)
}

#[test]
fn test_hot_add_maps_registers_and_notifies() {
    let s = setup(3, 2048);
    let r = s.hp.hotplug_memory(512 * MIB).unwrap();
    assert_eq!(
        r,
        HotplugResult {
            slot: 0,
            base: 4 * GIB,
            size: 512 * MIB,
            total_bytes: 576 * MIB
        }
    );
    let r2 = s.hp.hotplug_memory(256 * MIB).unwrap();
    assert_eq!((r2.slot, r2.base), (1, 4 * GIB + 512 * MIB));

    // The guest memory map reaches the new RAM (devices could DMA into it).
    let mem = s.hp.guest_memory().memory();
    assert_eq!(mem.num_regions(), 3);
    mem.write_obj(0xfeed_u64, GuestAddress(r2.base + 256 * MIB - 8))
        .unwrap();
    assert_eq!(
        mem.read_obj::<u64>(GuestAddress(r2.base + 256 * MIB - 8))
            .unwrap(),
        0xfeed
    );

    // The controller shows slot 1 through the MMIO bus.
    assert!(s
        .mmio
        .write(CONTROLLER + MHP_REG_SELECT, &1u32.to_le_bytes()));
    assert_eq!(r32(&s.mmio, CONTROLLER + MHP_REG_BASE_HI), 1);
    assert_eq!(
        r32(&s.mmio, CONTROLLER + MHP_REG_STATUS),
        MHP_STATUS_ENABLED | MHP_STATUS_INSERTING
    );
    // The memory event is pending in the GED (read clears). KVM consumes
    // the irqfd, so the interrupt itself is not observable here.
    assert_eq!(r32(&s.mmio, GED), GED_EVENT_MEMORY);
    assert_eq!(r32(&s.mmio, GED), 0);

    let st = s.hp.status();
    assert_eq!(st.slots_used, 2);
    assert_eq!(st.hotplugged_bytes, 768 * MIB);
    assert_eq!(st.total_bytes, 832 * MIB);
    assert_eq!(st.block_bytes, BLOCK);
}

#[test]
fn test_refused_hot_adds_change_nothing() {
    let s = setup(2, 1024);
    s.hp.hotplug_memory(128 * MIB).unwrap();
    let before = s.hp.status();
    assert_eq!(r32(&s.mmio, GED), GED_EVENT_MEMORY);
    for (size, want) in [
        (
            100 * MIB,
            "100M is not a multiple of the 128 MiB memory block size",
        ),
        (0, "memory block size"),
        (
            1024 * MIB,
            "would make 1216 MiB > default_maxmemory = 1024 MiB",
        ),
    ] {
        let e = s.hp.hotplug_memory(size).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        assert_eq!(s.hp.status(), before);
        assert_eq!(s.hp.guest_memory().memory().num_regions(), 2);
        assert_eq!(r32(&s.mmio, GED), 0, "no event for a refused request");
    }
    s.hp.hotplug_memory(256 * MIB).unwrap();
    let e = s.hp.hotplug_memory(128 * MIB).unwrap_err().to_string();
    assert_eq!(e, "memory_slots = 2 are all in use");
    assert_eq!(s.hp.status().slots_used, 2);
    assert_eq!(r32(&s.mmio, GED), GED_EVENT_MEMORY);
    assert_eq!(
        r32(&s.mmio, GED),
        0,
        "no event for the refused fourth request"
    );
}

#[test]
fn test_grow_to_adds_the_difference() {
    let s = setup(4, 2048);
    assert_eq!(s.hp.grow_to(64 * MIB).unwrap(), None);
    let r = s.hp.grow_to(576 * MIB).unwrap().unwrap();
    assert_eq!((r.slot, r.size, r.total_bytes), (0, 512 * MIB, 576 * MIB));
    let e = s.hp.grow_to(512 * MIB).unwrap_err().to_string();
    assert_eq!(
        e,
        "the guest has 576 MiB; memory cannot shrink to 512 MiB (no hot-unplug)"
    );
    let e = s.hp.grow_to((4096 + 64) * MIB).unwrap_err().to_string();
    assert!(e.contains("> default_maxmemory = 2048 MiB"), "{e}");
    assert_eq!(s.hp.status().slots_used, 1);
}

#[test]
fn test_concurrent_hot_adds_get_distinct_slots() {
    let s = setup(4, 4096);
    let hp = s.hp.clone();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let hp = hp.clone();
            std::thread::spawn(move || hp.hotplug_memory(BLOCK).unwrap())
        })
        .collect();
    let mut got: Vec<_> = threads
        .into_iter()
        .map(|t| t.join().unwrap())
        .map(|r| (r.slot, r.base))
        .collect();
    got.sort();
    let want: Vec<_> = (0..4u32)
        .map(|i| (i, 4 * GIB + u64::from(i) * BLOCK))
        .collect();
    assert_eq!(got, want);
    assert_eq!(hp.guest_memory().memory().num_regions(), 5);
}

/// A stub guest (64-bit entry of a fake bzImage) polls the GED register
/// while the host hot-adds a DIMM from another thread, then reads slot 0's
/// STATUS and BASE_HI through the controller and prints them as digits.
#[cfg(target_arch = "x86_64")]
#[test]
fn test_stub_guest_sees_hot_add_while_running() {
    use crate::arch::x86_64::layout::{GED_MMIO_BASE, MEMORY_HOTPLUG_MMIO_BASE};
    use crate::arch::x86_64::test_utils::stub_bzimage;
    use crate::builder::{build_vm, BootOptions};
    use crate::config::HypervisorConfig;
    use crate::vmm::GuestExit;

    assert!(
        Path::new("/dev/kvm").exists(),
        "this test needs /dev/kvm, which this host does not have"
    );
    let mut code = vec![0x48, 0xbb]; // mov rbx, GED
    code.extend_from_slice(&GED_MMIO_BASE.to_le_bytes());
    code.extend_from_slice(&[0x8b, 0x03, 0x85, 0xc0, 0x74, 0xfa]); // 1: mov eax,[rbx]; test; jz 1b
    code.extend_from_slice(&[0x48, 0xbb]); // mov rbx, controller
    code.extend_from_slice(&MEMORY_HOTPLUG_MMIO_BASE.to_le_bytes());
    code.extend_from_slice(&[0xc7, 0x03, 0, 0, 0, 0]); // mov dword [rbx], 0 (SEL)
    code.extend_from_slice(&[0x8b, 0x43, MHP_REG_STATUS as u8]); // mov eax, [rbx+STATUS]
    code.extend_from_slice(&[0x66, 0xba, 0xf8, 0x03, 0x04, b'0', 0xee]); // dx=COM1; al+='0'; out
    code.extend_from_slice(&[0x8b, 0x43, MHP_REG_BASE_HI as u8]); // mov eax, [rbx+BASE_HI]
    code.extend_from_slice(&[0x04, b'0', 0xee]); // al += '0'; out
    code.extend_from_slice(&[0x66, 0xba, 0x00, 0x06, 0xb0, 0x34, 0xee]); // ACPI S5

    let dir = std::env::temp_dir().join(format!("host-vmm-hp-stub-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kernel = dir.join("bzImage");
    std::fs::write(&kernel, stub_bzimage(&code)).unwrap();
    let cfg = HypervisorConfig {
        kernel: kernel.clone(),
        initrd: None,
        image: None,
        firmware: None,
        kernel_params: String::new(),
        default_vcpus: 1,
        default_maxvcpus: 1,
        default_root_ports: 0,
        default_bridges: 0,
        default_memory: 64,
        memory_slots: 2,
        default_maxmemory: 1024,
    };
    let opts = BootOptions {
        console: Some(dir.join("console")),
        ..Default::default()
    };
    let vmm = build_vm(&cfg, &opts).unwrap();
    let hp = vmm.memory_hotplug().unwrap();
    let adder = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(200));
        hp.hotplug_memory(128 * MIB)
    });
    let exit = vmm.run().unwrap();
    let added = adder.join().unwrap().unwrap();
    let console = std::fs::read_to_string(dir.join("console")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(exit, GuestExit::PowerOff);
    assert_eq!(added.base, 4 * GIB);
    // STATUS = ENABLED | INSERTING = 3, BASE_HI = 1 (4 GiB).
    assert_eq!(console, "31");
}
