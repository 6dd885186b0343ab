//! ACPI tables written by the VMM (it is the firmware on x86_64).
