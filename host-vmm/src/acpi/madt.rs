//! MADT ("APIC"): local APICs, the I/O APIC and the LINT1 NMI wiring.
//!
//! Facts (ACPI 6.4, 5.2.12): after the header come Local Interrupt
//! Controller Address u32 and Flags u32 (bit 0 PCAT_COMPAT), then entries,
//! each Type u8, Length u8, ...:
//! - type 0 Processor Local APIC (8 bytes): ACPI Processor UID u8,
//!   APIC ID u8, Flags u32 (bit 0 Enabled, bit 1 Online Capable).
//! - type 1 I/O APIC (12): I/O APIC ID u8, reserved u8, Address u32,
//!   Global System Interrupt Base u32.
//! - type 4 Local APIC NMI (6): ACPI Processor UID u8 (0xFF = all),
//!   Flags u16 (MPS INTI), LINT# u8.
//! - type 9 Processor Local x2APIC (16): reserved u16, X2APIC ID u32,
//!   Flags u32, ACPI Processor UID u32.
//! - type 0xA Local x2APIC NMI (12): Flags u16, ACPI Processor UID u32
//!   (0xFFFFFFFF = all), LINT# u8, reserved[3].
//!
//! Choices, checked against Linux 6.12 (arch/x86/kernel/acpi/boot.c) and
//! KVM (arch/x86/kvm/irq_comm.c, ioapic.c, i8254.c):
//! - APIC ID = ACPI Processor UID = vCPU index (KVM's default APIC ID is
//!   the vCPU id). IDs 0..=254 use type 0 entries, IDs from 255 on use type
//!   9 (0xFF is not a valid xAPIC ID, and Linux ignores x2APIC entries with
//!   an ID below 0xFF when xAPIC entries exist).
//! - vCPUs below `num_vcpus` are Enabled; the rest are Online Capable only,
//!   so the guest sizes its possible-CPU map for hot-add (MADT revision 5,
//!   honoured by Linux when the FADT says ACPI 6.3 or later).
//! - The I/O APIC ID is 0, as KVM's in-kernel IOAPIC resets its ID to 0.
//! - No interrupt source override: KVM's default GSI routing wires GSI n to
//!   IOAPIC pin n (and the PIT raises GSI 0), so ISA IRQs are identity
//!   mapped. An IRQ0->GSI2 override only fits QEMU, which installs its own
//!   routing. With HW_REDUCED_ACPI Linux also skips the PIT timer and the
//!   legacy PIC altogether.
//! - PCAT_COMPAT is 0: the hardware-reduced guest uses no 8259.

use super::sdt::Sdt;
use super::AcpiError;

/// MADT revision 5 (ACPI 6.3/6.4): defines the Online Capable flag.
pub const MADT_REVISION: u8 = 5;
/// Local APIC MMIO address, the architectural default.
pub const LOCAL_APIC_ADDR: u32 = 0xFEE0_0000;
/// I/O APIC MMIO address, the architectural default KVM emulates.
pub const IOAPIC_ADDR: u32 = 0xFEC0_0000;
/// I/O APIC ID: KVM's in-kernel IOAPIC resets its ID register to 0.
pub const IOAPIC_ID: u8 = 0;
/// Highest APIC ID described with a type-0 (xAPIC) entry.
pub const MAX_XAPIC_ID: u32 = 254;

pub const TYPE_LOCAL_APIC: u8 = 0;
pub const TYPE_IOAPIC: u8 = 1;
pub const TYPE_LOCAL_APIC_NMI: u8 = 4;
pub const TYPE_LOCAL_X2APIC: u8 = 9;
pub const TYPE_LOCAL_X2APIC_NMI: u8 = 0xA;

/// Local APIC flag: the processor is usable now.
pub const LAPIC_ENABLED: u32 = 1 << 0;
/// Local APIC flag: the processor can be enabled at run time (hot-add).
pub const LAPIC_ONLINE_CAPABLE: u32 = 1 << 1;

/// Offset of the first entry.
pub const ENTRIES_OFFSET: usize = 44;

/// LINT pin wired to NMI on every processor.
const NMI_LINT: u8 = 1;

/// The MADT for `max_vcpus` possible vCPUs of which the first `num_vcpus`
/// are present. Callers validate `1 <= num_vcpus <= max_vcpus`.
pub fn madt(num_vcpus: u32, max_vcpus: u32) -> Result<Vec<u8>, AcpiError> {
    let mut t = Sdt::new(*b"APIC", MADT_REVISION, *b"HVMMADT ");
    t.push_u32(LOCAL_APIC_ADDR);
    t.push_u32(0); // flags: no PCAT_COMPAT

    for id in 0..max_vcpus {
        let flags = if id < num_vcpus {
            LAPIC_ENABLED
        } else {
            LAPIC_ONLINE_CAPABLE
        };
        match u8::try_from(id) {
            Ok(id8) if id <= MAX_XAPIC_ID => {
                t.push_bytes(&[TYPE_LOCAL_APIC, 8, id8, id8]);
                t.push_u32(flags);
            }
            _ => {
                t.push_bytes(&[TYPE_LOCAL_X2APIC, 16]);
                t.push_u16(0);
                t.push_u32(id); // x2APIC ID
                t.push_u32(flags);
                t.push_u32(id); // ACPI Processor UID
            }
        }
    }

    t.push_bytes(&[TYPE_IOAPIC, 12, IOAPIC_ID, 0]);
    t.push_u32(IOAPIC_ADDR);
    t.push_u32(0); // GSI base

    // LINT1 is NMI on all processors (flags 0: bus-default polarity/trigger).
    t.push_bytes(&[TYPE_LOCAL_APIC_NMI, 6, 0xFF]);
    t.push_u16(0);
    t.push_u8(NMI_LINT);
    if max_vcpus > MAX_XAPIC_ID + 1 {
        t.push_bytes(&[TYPE_LOCAL_X2APIC_NMI, 12]);
        t.push_u16(0);
        t.push_u32(u32::MAX);
        t.push_bytes(&[NMI_LINT, 0, 0, 0]);
    }
    t.finish()
}

/// One parsed processor entry (for tests and diagnostics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessorEntry {
    pub apic_id: u32,
    pub uid: u32,
    pub flags: u32,
    pub x2apic: bool,
}

/// Walks the MADT entries and returns the processor entries; `None` if an
/// entry is malformed (length 0 or running past the table).
pub fn processor_entries(madt: &[u8]) -> Option<Vec<ProcessorEntry>> {
    let mut out = Vec::new();
    let mut off = ENTRIES_OFFSET;
    while off < madt.len() {
        let ty = *madt.get(off)?;
        let len = usize::from(*madt.get(off + 1)?);
        let e = madt.get(off..off.checked_add(len)?)?;
        if len < 2 {
            return None;
        }
        let u32_at = |o: usize| -> Option<u32> {
            Some(u32::from_le_bytes(e.get(o..o + 4)?.try_into().ok()?))
        };
        match ty {
            TYPE_LOCAL_APIC => out.push(ProcessorEntry {
                uid: u32::from(*e.get(2)?),
                apic_id: u32::from(*e.get(3)?),
                flags: u32_at(4)?,
                x2apic: false,
            }),
            TYPE_LOCAL_X2APIC => out.push(ProcessorEntry {
                apic_id: u32_at(4)?,
                flags: u32_at(8)?,
                uid: u32_at(12)?,
                x2apic: true,
            }),
            _ => {}
        }
        off += len;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::sdt::byte_sum;
    use super::*;

    #[test]
    fn test_madt_enabled_and_online_capable() {
        let b = madt(2, 4).unwrap();
        assert_eq!(byte_sum(&b), 0);
        assert_eq!(b[8], MADT_REVISION);
        let procs = processor_entries(&b).unwrap();
        assert_eq!(procs.len(), 4);
        for (i, p) in procs.iter().enumerate() {
            assert_eq!(p.apic_id, i as u32);
            assert_eq!(p.uid, i as u32);
            assert!(!p.x2apic);
            let want = if i < 2 {
                LAPIC_ENABLED
            } else {
                LAPIC_ONLINE_CAPABLE
            };
            assert_eq!(p.flags, want);
        }
    }

    #[test]
    fn test_madt_uses_x2apic_from_id_255() {
        let b = madt(1, 300).unwrap();
        let procs = processor_entries(&b).unwrap();
        assert_eq!(procs.len(), 300);
        assert!(!procs[254].x2apic);
        assert!(procs[255].x2apic);
        assert_eq!(procs[299].apic_id, 299);
        assert_eq!(procs[299].uid, 299);
        assert_eq!(
            procs
                .iter()
                .filter(|p| p.flags & LAPIC_ENABLED != 0)
                .count(),
            1
        );
    }

    #[test]
    fn test_madt_ioapic_entry() {
        let b = madt(1, 1).unwrap();
        // header, lapic addr, flags, one 8-byte LAPIC entry, then IOAPIC.
        let io = ENTRIES_OFFSET + 8;
        assert_eq!(&b[io..io + 4], &[TYPE_IOAPIC, 12, IOAPIC_ID, 0]);
        assert_eq!(
            u32::from_le_bytes(b[io + 4..io + 8].try_into().unwrap()),
            IOAPIC_ADDR
        );
        assert_eq!(
            u32::from_le_bytes(b[io + 8..io + 12].try_into().unwrap()),
            0
        );
        assert_eq!(
            u32::from_le_bytes(b[36..40].try_into().unwrap()),
            LOCAL_APIC_ADDR
        );
        assert_eq!(u32::from_le_bytes(b[40..44].try_into().unwrap()), 0);
    }
}
