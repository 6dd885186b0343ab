//! The board's DSDT and fw_cfg items, checked as the firmware and iasl see them.

use super::*;
use crate::acpi::tests::iasl_util::{disassemble, round_trip, ScratchDir};
use crate::devices::firmware::fw_cfg::items::{
    KEY_CMDLINE_DATA, KEY_FILE_DIR, KEY_INITRD_SIZE, KEY_KERNEL_DATA, KEY_KERNEL_SIZE,
};
use crate::devices::firmware::fw_cfg::loader::{
    COMMAND_ADD_CHECKSUM, COMMAND_ADD_POINTER, COMMAND_ALLOCATE, COMMAND_LEN,
};

fn devices() -> BoardDevices {
    BoardDevices {
        virtio: (0..2).map(|i| virtio_place(i).unwrap()).collect(),
        hot_virtio: (2..5).map(|i| virtio_place(i).unwrap()).collect(),
        memory_slots: 4,
    }
}

fn board() -> Board {
    Board::new(4, 1 << 30, 40).unwrap()
}

fn name(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches('\0')
        .to_string()
}

/// The file `wanted` of the table, through the directory.
fn file(t: &Table, wanted: &str) -> Vec<u8> {
    let dir = t.get(KEY_FILE_DIR);
    let n = u32::from_be_bytes(dir[0..4].try_into().unwrap()) as usize;
    for i in 0..n {
        let e = &dir[4 + 64 * i..4 + 64 * (i + 1)];
        if name(&e[8..64]) == wanted {
            let key = u16::from_be_bytes([e[4], e[5]]);
            let data = t.get(key).to_vec();
            assert_eq!(
                data.len(),
                u32::from_be_bytes(e[0..4].try_into().unwrap()) as usize
            );
            return data;
        }
    }
    panic!("no fw_cfg file {wanted}");
}

/// What EDK2's `QemuFwCfgAcpi.c` does with the loader file: allocate the
/// blobs (here at fixed addresses), patch pointers, set checksums with
/// `CalculateCheckSum8` over the range as it is (the checksum byte is not
/// cleared first: the blob must hold 0 there).
fn run_loader(t: &Table, addrs: &[(&str, u64)]) -> Vec<(String, Vec<u8>)> {
    let script = file(t, LOADER_FILE);
    assert_eq!(script.len() % COMMAND_LEN, 0);
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let addr_of = |n: &str| addrs.iter().find(|(a, _)| *a == n).unwrap().1;
    for c in script.chunks(COMMAND_LEN) {
        let cmd = u32::from_le_bytes(c[0..4].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(c[o..o + 4].try_into().unwrap()) as usize;
        match cmd {
            COMMAND_ALLOCATE => {
                let f = name(&c[4..60]);
                let align = u32_at(60) as u64;
                assert_eq!(addr_of(&f) % align, 0, "{f} alignment");
                blobs.push((f.clone(), file(t, &f)));
            }
            COMMAND_ADD_POINTER => {
                let (dest, src) = (name(&c[4..60]), name(&c[60..116]));
                let (offset, size) = (u32_at(116), usize::from(c[120]));
                let base = addr_of(&src);
                let b = &mut blobs.iter_mut().find(|(n, _)| *n == dest).unwrap().1;
                let mut v = [0u8; 8];
                v[..size].copy_from_slice(&b[offset..offset + size]);
                let p = u64::from_le_bytes(v) + base;
                b[offset..offset + size].copy_from_slice(&p.to_le_bytes()[..size]);
            }
            COMMAND_ADD_CHECKSUM => {
                let f = name(&c[4..60]);
                let (offset, start, len) = (u32_at(60), u32_at(64), u32_at(68));
                let b = &mut blobs.iter_mut().find(|(n, _)| *n == f).unwrap().1;
                let sum = b[start..start + len]
                    .iter()
                    .fold(0u8, |a, x| a.wrapping_add(*x));
                b[offset] = 0u8.wrapping_sub(sum);
            }
            other => panic!("unknown loader command {other}"),
        }
    }
    blobs
}

#[test]
fn test_board_dsdt_has_the_boards_devices_and_passes_iasl() {
    let dsdt = dsdt(&devices()).build().unwrap();
    let has = |n: &[u8]| dsdt.windows(n.len()).any(|w| w == n);
    for id in [
        &b"ARMH0011"[..],
        b"LNRO0005",
        b"ACPI0013",
        b"VHPC",
        b"MHPC",
        b"M003",
        b"VR04",
    ] {
        assert!(has(id), "{}", String::from_utf8_lossy(id));
    }
    let dir = ScratchDir::new("arm-dsdt");
    let dsl = disassemble(dir.path(), "dsdt", &dsdt);
    assert!(dsl.contains("ARMH0011"), "{dsl}");
    // The UART's and the GED's interrupts are GIC INTIDs (SPI + 32).
    assert!(dsl.contains("0x00000021"), "UART INTID 33:\n{dsl}");
    assert!(dsl.contains("0x00000029"), "GED INTID 41:\n{dsl}");
    let re = round_trip(dir.path(), "dsdt-rt", &dsdt);
    assert!(!re.is_empty());
}

#[test]
fn test_board_dsdt_without_hotplug_has_no_ged() {
    let d = BoardDevices {
        virtio: vec![virtio_place(0).unwrap()],
        hot_virtio: vec![virtio_place(1).unwrap()],
        memory_slots: 0,
    };
    let dsdt = dsdt(&d).build().unwrap();
    let has = |n: &[u8]| dsdt.windows(n.len()).any(|w| w == n);
    assert!(has(b"LNRO0005") && !has(b"ACPI0013") && !has(b"VHPC"));
}

#[test]
fn test_board_fw_cfg_items_boot_and_acpi_through_the_loader() {
    let b = board();
    let tables = acpi_tables(&b, 2, GicVersion::V3, &devices()).unwrap();
    let t = fw_cfg_table(
        &b,
        2,
        &tables,
        FirmwareBoot {
            kernel: vec![0x4d, 0x5a, 1, 2],
            initrd: None,
            cmdline: cmdline("").unwrap(),
        },
    )
    .unwrap();
    assert_eq!(t.get(KEY_KERNEL_SIZE), &4u32.to_le_bytes());
    assert_eq!(t.get(KEY_KERNEL_DATA), &[0x4d, 0x5a, 1, 2]);
    assert_eq!(t.get(KEY_INITRD_SIZE), b"");
    assert_eq!(
        t.get(KEY_CMDLINE_DATA),
        format!("{BASE_CMDLINE}\0").as_bytes()
    );

    // The firmware's linking gives what FirmwareTables::link gives.
    let tables_at = 0x7e00_0000;
    let blobs = run_loader(&t, &[(TABLES_FILE, tables_at), (RSDP_FILE, 0x7f00_0000)]);
    let (rsdp, linked) = tables.link(tables_at);
    assert_eq!(blobs.iter().find(|(n, _)| n == RSDP_FILE).unwrap().1, rsdp);
    assert_eq!(
        blobs.iter().find(|(n, _)| n == TABLES_FILE).unwrap().1,
        linked
    );

    // Every table sums to 0 as EDK2's second pass requires (it skips others).
    for (sig, at) in &tables.layout {
        let at = *at as usize;
        let len = u32::from_le_bytes(linked[at + 4..at + 8].try_into().unwrap()) as usize;
        let sum = linked[at..at + len]
            .iter()
            .fold(0u8, |a, x| a.wrapping_add(*x));
        assert_eq!(sum, 0, "{}", String::from_utf8_lossy(sig));
    }
    let rsdp_sum = |n: usize| rsdp[..n].iter().fold(0u8, |a, x| a.wrapping_add(*x));
    assert_eq!((rsdp_sum(20), rsdp_sum(36)), (0, 0));

    // And every linked table passes iasl.
    let dir = ScratchDir::new("arm-linked");
    for (sig, at) in &tables.layout {
        let at = *at as usize;
        let len = u32::from_le_bytes(linked[at + 4..at + 8].try_into().unwrap()) as usize;
        let n = String::from_utf8_lossy(sig).to_ascii_lowercase();
        round_trip(dir.path(), &n, &linked[at..at + len]);
    }
}

#[test]
fn test_board_cmdline_appends_user_params_and_bounds_the_length() {
    assert_eq!(cmdline("  ").unwrap(), BASE_CMDLINE);
    assert_eq!(
        cmdline("init=/x").unwrap(),
        format!("{BASE_CMDLINE} init=/x")
    );
    assert_eq!(cmdline("a\0b"), Err(CmdlineError::Nul));
    assert!(matches!(
        cmdline(&"x".repeat(CMDLINE_MAX)),
        Err(CmdlineError::TooLong { .. })
    ));
}

#[test]
fn test_board_virtio_places_are_bounded() {
    assert_eq!(
        virtio_place(0),
        Some(VirtioPlace {
            index: 0,
            base: 0x0a00_0000,
            spi: 16
        })
    );
    assert_eq!(virtio_place(board::VIRTIO_MMIO_SLOTS as usize), None);
    assert_eq!(virtio_place(usize::MAX), None);
}
