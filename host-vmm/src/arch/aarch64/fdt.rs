//! The device tree the UEFI ROM reads at the start of RAM (pure: a function
//! of the board, built and tested on every architecture).
//!
//! The ROM (EDK2's ArmVirtQemu) finds RAM, the CPUs and their PSCI method,
//! the GIC, the timer, its console (PL011), the RTC (PL031), fw_cfg, the
//! variable store (`cfi-flash`) and the virtio-mmio devices here; the
//! kernel it boots gets ACPI instead. Node names, compatibles and cells
//! follow QEMU's `virt` board (hw/arm/virt.c), which that ROM was written for.

use vm_fdt::FdtWriter;

use super::layout::{self, Board, GicVersion};

/// Interrupt specifier: SPI or PPI, then the number, then the flags.
const GIC_SPI: u32 = 0;
const GIC_PPI: u32 = 1;
/// Edge, rising (the board's device interrupts are irqfd pulses).
const IRQ_EDGE_RISING: u32 = 1;
/// Level, active high (the architected timers).
const IRQ_LEVEL_HIGH: u32 = 4;
/// phandles.
const PHANDLE_GIC: u32 = 1;
const PHANDLE_CLOCK: u32 = 2;
/// The APB clock the PrimeCells name (QEMU: 24 MHz).
const APB_CLOCK_HZ: u32 = 24_000_000;
/// The CFI flash bus width in bytes.
const FLASH_BANK_WIDTH: u32 = 4;

/// Why the device tree cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum FdtError {
    #[error("cannot write the device tree")]
    Write(#[from] vm_fdt::Error),
    #[error("the device tree is {len} bytes, more than the {max} reserved at the start of RAM")]
    TooLarge { len: usize, max: u64 },
}

/// What the device tree describes beyond the fixed board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdtConfig {
    pub board: Board,
    /// vCPUs present at boot (one `cpu` node each).
    pub num_vcpus: u32,
    pub gic: GicVersion,
    /// (window base, SPI) of each virtio-mmio device present at boot.
    pub virtio: Vec<(u64, u32)>,
}

fn reg(base: u64, size: u64) -> [u64; 2] {
    [base, size]
}

/// The device tree blob.
pub fn device_tree(cfg: &FdtConfig) -> Result<Vec<u8>, FdtError> {
    let mut f = FdtWriter::new()?;
    let root = f.begin_node("")?;
    f.property_string("compatible", "linux,dummy-virt")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_u32("interrupt-parent", PHANDLE_GIC)?;

    let chosen = f.begin_node("chosen")?;
    f.property_string("stdout-path", &format!("/pl011@{:x}", layout::UART_BASE))?;
    f.end_node(chosen)?;

    let mem = f.begin_node(&format!("memory@{:x}", layout::RAM_BASE))?;
    f.property_string("device_type", "memory")?;
    f.property_array_u64("reg", &reg(layout::RAM_BASE, cfg.board.ram_bytes))?;
    f.end_node(mem)?;

    let psci = f.begin_node("psci")?;
    f.property_string_list(
        "compatible",
        vec!["arm,psci-0.2".to_string(), "arm,psci".to_string()],
    )?;
    f.property_string("method", "hvc")?;
    f.end_node(psci)?;

    let cpus = f.begin_node("cpus")?;
    f.property_u32("#address-cells", 1)?;
    f.property_u32("#size-cells", 0)?;
    for index in 0..cfg.num_vcpus {
        // Below 2^24 for every vCPU the layout allows.
        let mpidr = layout::mpidr(index) as u32;
        let cpu = f.begin_node(&format!("cpu@{mpidr:x}"))?;
        f.property_string("device_type", "cpu")?;
        f.property_string("compatible", "arm,arm-v8")?;
        f.property_u32("reg", mpidr)?;
        f.property_string("enable-method", "psci")?;
        f.end_node(cpu)?;
    }
    f.end_node(cpus)?;

    let gic = f.begin_node(&format!("intc@{:x}", layout::GICD_BASE))?;
    match cfg.gic {
        GicVersion::V3 => {
            f.property_string("compatible", "arm,gic-v3")?;
            f.property_array_u64(
                "reg",
                &[
                    layout::GICD_BASE,
                    layout::GICD_SIZE,
                    layout::GICR_BASE,
                    cfg.board.gicr_size(),
                ],
            )?;
            f.property_u32("#redistributor-regions", 1)?;
        }
        GicVersion::V2 => {
            f.property_string("compatible", "arm,cortex-a15-gic")?;
            f.property_array_u64(
                "reg",
                &[
                    layout::GICD_BASE,
                    layout::GICD_SIZE,
                    layout::GICC_BASE,
                    layout::GICC_SIZE,
                ],
            )?;
        }
    }
    f.property_u32("#interrupt-cells", 3)?;
    f.property_null("interrupt-controller")?;
    f.property_u32("#address-cells", 2)?;
    f.property_u32("#size-cells", 2)?;
    f.property_phandle(PHANDLE_GIC)?;
    f.end_node(gic)?;

    // GICv2 PPIs name the CPUs they go to (a mask in bits 8..15).
    let ppi_flags = match cfg.gic {
        GicVersion::V3 => IRQ_LEVEL_HIGH,
        GicVersion::V2 => {
            let cpus = cfg.num_vcpus.min(8);
            IRQ_LEVEL_HIGH | (((1u32 << cpus) - 1) << 8)
        }
    };
    let timer = f.begin_node("timer")?;
    f.property_string("compatible", "arm,armv8-timer")?;
    let mut irqs = Vec::new();
    for ppi in [
        layout::TIMER_PPI_SECURE,
        layout::TIMER_PPI_NONSECURE,
        layout::TIMER_PPI_VIRTUAL,
        layout::TIMER_PPI_HYP,
    ] {
        irqs.extend_from_slice(&[GIC_PPI, ppi, ppi_flags]);
    }
    f.property_array_u32("interrupts", &irqs)?;
    f.property_null("always-on")?;
    f.end_node(timer)?;

    let clock = f.begin_node("apb-pclk")?;
    f.property_string("compatible", "fixed-clock")?;
    f.property_u32("#clock-cells", 0)?;
    f.property_u32("clock-frequency", APB_CLOCK_HZ)?;
    f.property_string("clock-output-names", "clk24mhz")?;
    f.property_phandle(PHANDLE_CLOCK)?;
    f.end_node(clock)?;

    let uart = f.begin_node(&format!("pl011@{:x}", layout::UART_BASE))?;
    f.property_string_list(
        "compatible",
        vec!["arm,pl011".to_string(), "arm,primecell".to_string()],
    )?;
    f.property_array_u64("reg", &reg(layout::UART_BASE, layout::UART_SIZE))?;
    f.property_array_u32("interrupts", &[GIC_SPI, layout::UART_SPI, IRQ_EDGE_RISING])?;
    f.property_array_u32("clocks", &[PHANDLE_CLOCK, PHANDLE_CLOCK])?;
    f.property_string_list(
        "clock-names",
        vec!["uartclk".to_string(), "apb_pclk".to_string()],
    )?;
    f.end_node(uart)?;

    let rtc = f.begin_node(&format!("pl031@{:x}", layout::RTC_BASE))?;
    f.property_string_list(
        "compatible",
        vec!["arm,pl031".to_string(), "arm,primecell".to_string()],
    )?;
    f.property_array_u64("reg", &reg(layout::RTC_BASE, layout::RTC_SIZE))?;
    f.property_array_u32("interrupts", &[GIC_SPI, layout::RTC_SPI, IRQ_EDGE_RISING])?;
    f.property_u32("clocks", PHANDLE_CLOCK)?;
    f.property_string("clock-names", "apb_pclk")?;
    f.end_node(rtc)?;

    let fw_cfg = f.begin_node(&format!("fw-cfg@{:x}", layout::FW_CFG_BASE))?;
    f.property_string("compatible", "qemu,fw-cfg-mmio")?;
    f.property_array_u64("reg", &reg(layout::FW_CFG_BASE, layout::FW_CFG_SIZE))?;
    f.property_null("dma-coherent")?;
    f.end_node(fw_cfg)?;

    let flash = f.begin_node(&format!("flash@{:x}", layout::FLASH0_BASE))?;
    f.property_string("compatible", "cfi-flash")?;
    f.property_array_u64(
        "reg",
        &[
            layout::FLASH0_BASE,
            layout::FLASH_BANK_SIZE,
            layout::FLASH1_BASE,
            layout::FLASH1_SIZE,
        ],
    )?;
    f.property_u32("bank-width", FLASH_BANK_WIDTH)?;
    f.end_node(flash)?;

    for &(base, spi) in &cfg.virtio {
        let v = f.begin_node(&format!("virtio_mmio@{base:x}"))?;
        f.property_string("compatible", "virtio,mmio")?;
        f.property_array_u64("reg", &reg(base, layout::VIRTIO_MMIO_SIZE))?;
        f.property_array_u32("interrupts", &[GIC_SPI, spi, IRQ_EDGE_RISING])?;
        f.property_null("dma-coherent")?;
        f.end_node(v)?;
    }

    f.end_node(root)?;
    let blob = f.finish()?;
    if blob.len() as u64 > layout::FDT_MAX_SIZE {
        return Err(FdtError::TooLarge {
            len: blob.len(),
            max: layout::FDT_MAX_SIZE,
        });
    }
    Ok(blob)
}

#[cfg(test)]
mod tests;
