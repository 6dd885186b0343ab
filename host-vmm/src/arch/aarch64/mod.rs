//! aarch64: boots from a UEFI ROM in flash (not written yet).
