//! Readers for the initramfs test: the cpio newc format and the ELF facts that make a binary
//! static.

pub mod cpio;
pub mod elf;
