use super::*;

fn r32(c: &mut CpuHotplugController, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    c.read(0, offset, &mut b);
    u32::from_le_bytes(b)
}

fn w32(c: &mut CpuHotplugController, offset: u64, v: u32) {
    c.write(0, offset, &v.to_le_bytes());
}

#[test]
fn test_cpu_controller_boot_cpus_present_rest_absent() {
    let mut c = CpuHotplugController::new(4, 2);
    assert_eq!(r32(&mut c, CHP_REG_COUNT), 4);
    assert_eq!(c.present(), 2);
    assert_eq!(r32(&mut c, CHP_REG_STATUS), CHP_STATUS_ENABLED);
    w32(&mut c, CHP_REG_SELECT, 2);
    assert_eq!(r32(&mut c, CHP_REG_SELECT), 2);
    assert_eq!(r32(&mut c, CHP_REG_STATUS), 0);
}

#[test]
fn test_cpu_controller_insert_then_guest_acknowledges() {
    let mut c = CpuHotplugController::new(4, 1);
    c.insert(1).unwrap();
    w32(&mut c, CHP_REG_SELECT, 1);
    assert_eq!(
        r32(&mut c, CHP_REG_STATUS),
        CHP_STATUS_ENABLED | CHP_STATUS_INSERTING
    );
    // 0 and ENABLED acknowledge nothing and disable nothing.
    w32(&mut c, CHP_REG_STATUS, 0);
    w32(&mut c, CHP_REG_STATUS, CHP_STATUS_ENABLED);
    assert_eq!(
        r32(&mut c, CHP_REG_STATUS),
        CHP_STATUS_ENABLED | CHP_STATUS_INSERTING
    );
    w32(&mut c, CHP_REG_STATUS, CHP_STATUS_INSERTING);
    assert_eq!(r32(&mut c, CHP_REG_STATUS), CHP_STATUS_ENABLED);
    assert_eq!(
        c.insert(1),
        Err(CpuControllerError::AlreadyPresent { cpu: 1 })
    );
    assert_eq!(
        c.insert(4),
        Err(CpuControllerError::NoSuchCpu { cpu: 4, count: 4 })
    );
}

#[test]
fn test_cpu_controller_removal_ack_and_eject() {
    let mut c = CpuHotplugController::new(4, 3);
    c.request_removal(2).unwrap();
    w32(&mut c, CHP_REG_SELECT, 2);
    assert_eq!(
        r32(&mut c, CHP_REG_STATUS),
        CHP_STATUS_ENABLED | CHP_STATUS_REMOVING
    );
    w32(&mut c, CHP_REG_STATUS, CHP_STATUS_REMOVING);
    assert_eq!(r32(&mut c, CHP_REG_STATUS), CHP_STATUS_ENABLED);
    assert!(!c.take_ejected(2));
    w32(&mut c, CHP_REG_STATUS, CHP_STATUS_EJECT);
    // Not present at once: Linux reads _STA right after _EJ0.
    assert_eq!(r32(&mut c, CHP_REG_STATUS), 0);
    assert!(c.take_ejected(2));
    assert!(!c.take_ejected(2), "taken once");
    assert_eq!(c.present(), 2);
    // Added again later.
    c.insert(2).unwrap();
    assert_eq!(c.present(), 3);
}

#[test]
fn test_cpu_controller_eject_without_request_is_ignored() {
    let mut c = CpuHotplugController::new(4, 2);
    for cpu in 0..4 {
        w32(&mut c, CHP_REG_SELECT, cpu);
        w32(
            &mut c,
            CHP_REG_STATUS,
            CHP_STATUS_EJECT | CHP_STATUS_REMOVING,
        );
        assert!(!c.take_ejected(cpu), "cpu {cpu}");
    }
    assert_eq!(c.present(), 2);
    // A cancelled request no longer lets an eject through.
    c.request_removal(1).unwrap();
    c.cancel_removal(1);
    w32(&mut c, CHP_REG_SELECT, 1);
    w32(&mut c, CHP_REG_STATUS, CHP_STATUS_EJECT);
    assert_eq!(c.present(), 2);
    assert_eq!(
        c.request_removal(3),
        Err(CpuControllerError::NotPresent { cpu: 3 })
    );
}

#[test]
fn test_cpu_controller_garbage_selectors_never_select_out_of_range() {
    let mut c = CpuHotplugController::new(3, 1);
    w32(&mut c, CHP_REG_SELECT, 1);
    for bad in [3, 4, 0xff, 0x1_0000, u32::MAX] {
        w32(&mut c, CHP_REG_SELECT, bad);
        assert_eq!(r32(&mut c, CHP_REG_SELECT), 1, "{bad:#x}");
        // Status writes still go to CPU 1, which is absent: nothing appears.
        w32(&mut c, CHP_REG_STATUS, u32::MAX);
    }
    assert_eq!(c.present(), 1);
    // A controller without CPUs keeps selecting nothing.
    let mut z = CpuHotplugController::new(0, 0);
    w32(&mut z, CHP_REG_SELECT, 0);
    w32(&mut z, CHP_REG_STATUS, u32::MAX);
    assert_eq!(r32(&mut z, CHP_REG_STATUS), 0);
    assert_eq!(r32(&mut z, CHP_REG_COUNT), 0);
}

#[test]
fn test_cpu_controller_any_guest_access_never_panics_or_adds_a_cpu() {
    let mut c = CpuHotplugController::new(4, 1);
    c.insert(2).unwrap();
    let offsets = (0..0x30).chain([u64::MAX - 3, u64::MAX]);
    for off in offsets {
        for len in 0..=8 {
            for fill in [0x00, 0xff, 0x0a] {
                let mut b = vec![0xaa; len];
                c.read(0, off, &mut b);
                if off >= CHP_MMIO_SIZE {
                    assert!(b.iter().all(|&x| x == 0), "off {off:#x} len {len}");
                }
                c.write(0, off, &vec![fill; len]);
            }
        }
    }
    assert!(r32(&mut c, CHP_REG_SELECT) < 4);
    assert_eq!(c.status(0).map(|s| s.enabled), Some(true));
    assert_eq!(c.status(2).map(|s| s.enabled), Some(true));
    assert_eq!(c.present(), 2, "the guest can neither add nor eject");
    assert_eq!(r32(&mut c, CHP_REG_COUNT), 4);
}

#[test]
fn test_cpu_controller_read_only_registers_ignore_writes() {
    let mut c = CpuHotplugController::new(2, 1);
    let before = c.registers();
    w32(&mut c, CHP_REG_COUNT, 0xdead_beef);
    w32(&mut c, 0x0c, 0xdead_beef);
    assert_eq!(c.registers(), before);
}
