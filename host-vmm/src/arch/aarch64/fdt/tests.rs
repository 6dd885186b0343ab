//! The device tree read back with a small reader of the flattened format
//! (devicetree specification v0.4, chapter 5: header, structure block of
//! BEGIN_NODE 1 / END_NODE 2 / PROP 3 / NOP 4 / END 9 tokens, strings block).

use std::collections::BTreeMap;

use super::*;

/// path -> property name -> value.
type Tree = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes(b[o..o + 4].try_into().unwrap())
}

fn cstr(b: &[u8], o: usize) -> String {
    let end = b[o..].iter().position(|&c| c == 0).unwrap();
    String::from_utf8(b[o..o + end].to_vec()).unwrap()
}

fn parse(blob: &[u8]) -> Tree {
    assert_eq!(be32(blob, 0), 0xd00d_feed, "magic");
    assert_eq!(be32(blob, 4) as usize, blob.len(), "totalsize");
    let (structs, strings) = (be32(blob, 8) as usize, be32(blob, 12) as usize);
    assert_eq!(be32(blob, 20), 17, "version");
    let mut tree = Tree::new();
    let mut path: Vec<String> = Vec::new();
    let mut o = structs;
    loop {
        let token = be32(blob, o);
        o += 4;
        match token {
            1 => {
                let name = cstr(blob, o);
                o = (o + name.len() + 1).div_ceil(4) * 4;
                path.push(name);
                tree.entry(format!("/{}", path[1..].join("/"))).or_default();
            }
            2 => {
                path.pop();
            }
            3 => {
                let (len, name_off) = (be32(blob, o) as usize, be32(blob, o + 4) as usize);
                o += 8;
                let value = blob[o..o + len].to_vec();
                o = (o + len).div_ceil(4) * 4;
                let node = format!("/{}", path[1..].join("/"));
                let name = cstr(blob, strings + name_off);
                tree.get_mut(&node).unwrap().insert(name, value);
            }
            4 => {}
            9 => break,
            t => panic!("bad token {t} at {o}"),
        }
    }
    assert!(path.is_empty(), "unbalanced nodes");
    tree
}

fn cells(v: &[u8]) -> Vec<u32> {
    v.chunks(4)
        .map(|c| u32::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn u64s(v: &[u8]) -> Vec<u64> {
    v.chunks(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap()))
        .collect()
}

fn config(vcpus: u32, gic: GicVersion) -> FdtConfig {
    FdtConfig {
        board: Board::new(8, 1 << 30, 40).unwrap(),
        num_vcpus: vcpus,
        gic,
        virtio: vec![(layout::virtio_mmio_base(0), layout::virtio_mmio_spi(0))],
    }
}

#[test]
fn test_fdt_describes_memory_cpus_and_psci() {
    let t = parse(&device_tree(&config(3, GicVersion::V3)).unwrap());
    let mem = &t["/memory@40000000"];
    assert_eq!(u64s(&mem["reg"]), [0x4000_0000, 1 << 30]);
    assert_eq!(mem["device_type"], b"memory\0");
    assert_eq!(t["/psci"]["method"], b"hvc\0");
    for i in 0..3 {
        let cpu = &t[&format!("/cpus/cpu@{i:x}")];
        assert_eq!(cells(&cpu["reg"]), [i]);
        assert_eq!(cpu["enable-method"], b"psci\0");
    }
    assert!(!t.contains_key("/cpus/cpu@3"));
    assert_eq!(t["/chosen"]["stdout-path"], b"/pl011@9000000\0");
}

#[test]
fn test_fdt_gic_v3_and_v2_and_timer() {
    let t = parse(&device_tree(&config(2, GicVersion::V3)).unwrap());
    let gic = &t["/intc@8000000"];
    assert_eq!(gic["compatible"], b"arm,gic-v3\0");
    assert_eq!(
        u64s(&gic["reg"]),
        [
            layout::GICD_BASE,
            layout::GICD_SIZE,
            layout::GICR_BASE,
            8 * layout::GICR_STRIDE
        ]
    );
    assert_eq!(cells(&gic["phandle"]), [PHANDLE_GIC]);
    assert_eq!(cells(&t["/"]["interrupt-parent"]), [PHANDLE_GIC]);
    assert_eq!(
        cells(&t["/timer"]["interrupts"]),
        [1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]
    );
    let t = parse(&device_tree(&config(2, GicVersion::V2)).unwrap());
    let gic = &t["/intc@8000000"];
    assert_eq!(gic["compatible"], b"arm,cortex-a15-gic\0");
    assert_eq!(u64s(&gic["reg"])[2], layout::GICC_BASE);
    assert_eq!(cells(&t["/timer"]["interrupts"])[2], 4 | 0x3 << 8);
}

#[test]
fn test_fdt_devices_the_rom_needs() {
    let t = parse(&device_tree(&config(1, GicVersion::V3)).unwrap());
    let uart = &t["/pl011@9000000"];
    assert_eq!(uart["compatible"], b"arm,pl011\0arm,primecell\0");
    assert_eq!(cells(&uart["interrupts"]), [0, layout::UART_SPI, 1]);
    assert_eq!(
        t["/pl031@9010000"]["compatible"],
        b"arm,pl031\0arm,primecell\0"
    );
    let fw = &t["/fw-cfg@9020000"];
    assert_eq!(fw["compatible"], b"qemu,fw-cfg-mmio\0");
    assert_eq!(u64s(&fw["reg"]), [0x0902_0000, 0x18]);
    let flash = &t["/flash@0"];
    assert_eq!(flash["compatible"], b"cfi-flash\0");
    assert_eq!(
        u64s(&flash["reg"]),
        [0, 0x0400_0000, 0x0400_0000, layout::FLASH1_SIZE]
    );
    assert_eq!(cells(&flash["bank-width"]), [4]);
    let v = &t["/virtio_mmio@a000000"];
    assert_eq!(v["compatible"], b"virtio,mmio\0");
    assert_eq!(cells(&v["interrupts"]), [0, 16, 1]);
}

#[test]
fn test_fdt_is_a_pure_function_of_the_board_and_fits() {
    let a = device_tree(&config(2, GicVersion::V3)).unwrap();
    assert_eq!(a, device_tree(&config(2, GicVersion::V3)).unwrap());
    let mut big = config(layout::MAX_VCPUS, GicVersion::V3);
    big.board = Board::new(layout::MAX_VCPUS, 1 << 30, 40).unwrap();
    big.virtio = (0..layout::VIRTIO_MMIO_SLOTS)
        .map(|i| (layout::virtio_mmio_base(i), layout::virtio_mmio_spi(i)))
        .collect();
    let blob = device_tree(&big).unwrap();
    assert!(blob.len() as u64 <= layout::FDT_MAX_SIZE);
    assert_eq!(
        parse(&blob)
            .keys()
            .filter(|k| k.starts_with("/cpus/cpu@"))
            .count(),
        123
    );
}
