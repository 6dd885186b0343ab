//! Register layouts shared by the AML the VMM writes and the devices that implement them:
//! the contract between [`crate::acpi`] (which the guest's ACPI interpreter runs) and
//! [`crate::devices::acpi`] (which answers the accesses). Pure constants, so both sides
//! import them from here and the devices sit above the tables.

// The Generic Event Device (`devices::acpi::ged`).
/// Bytes of the GED register window.
pub const GED_MMIO_SIZE: u64 = 4;
/// Offset of the event register.
pub const GED_REG_EVENT: u64 = 0;
/// Event bit: memory devices were inserted; `_EVT` calls the memory
/// hot-plug controller's scan method.
pub const GED_EVENT_MEMORY: u32 = 1 << 0;
/// Event bit: virtio-mmio devices were hot-added; `_EVT` sends a Bus Check
/// to the virtio hot-plug container (see
/// `crate::hotplug::disk`).
pub const GED_EVENT_VIRTIO: u32 = 1 << 1;

// The memory hot-plug controller (`devices::acpi::memory_hotplug`).
/// Bytes of the register window.
pub const MHP_MMIO_SIZE: u64 = 0x20;
/// Register offsets.
pub const MHP_REG_SELECT: u64 = 0x00;
pub const MHP_REG_BASE_LO: u64 = 0x04;
pub const MHP_REG_BASE_HI: u64 = 0x08;
pub const MHP_REG_SIZE_LO: u64 = 0x0c;
pub const MHP_REG_SIZE_HI: u64 = 0x10;
pub const MHP_REG_STATUS: u64 = 0x14;
pub const MHP_REG_SLOTS: u64 = 0x18;
/// STATUS bit 0: the selected slot holds memory.
pub const MHP_STATUS_ENABLED: u32 = 1 << 0;
/// STATUS bit 1: the selected slot was hot-added and the guest has not
/// acknowledged it yet.
pub const MHP_STATUS_INSERTING: u32 = 1 << 1;

/// Event bit: vCPUs were hot-added or are to be removed; `_EVT` calls the CPU
/// hot-plug controller's scan method (see `crate::hotplug::cpu`).
pub const GED_EVENT_CPU: u32 = 1 << 2;

// The CPU hot-plug controller (`devices::acpi::cpu_hotplug`).
/// Bytes of the register window.
pub const CHP_MMIO_SIZE: u64 = 0x10;
/// Register offsets.
pub const CHP_REG_SELECT: u64 = 0x00;
pub const CHP_REG_STATUS: u64 = 0x04;
pub const CHP_REG_COUNT: u64 = 0x08;
/// STATUS bit 0: the selected CPU is present (read-only).
pub const CHP_STATUS_ENABLED: u32 = 1 << 0;
/// STATUS bit 1: the selected CPU was hot-added and the guest has not
/// acknowledged it yet (the guest writes 1 to acknowledge).
pub const CHP_STATUS_INSERTING: u32 = 1 << 1;
/// STATUS bit 2: the VMM asks the guest to remove the selected CPU; the guest
/// writes 1 to acknowledge.
pub const CHP_STATUS_REMOVING: u32 = 1 << 2;
/// STATUS bit 3 (write-only): the guest has offlined the selected CPU and
/// ejects it (`_EJ0`); honoured only for a CPU the VMM asked to remove.
pub const CHP_STATUS_EJECT: u32 = 1 << 3;
