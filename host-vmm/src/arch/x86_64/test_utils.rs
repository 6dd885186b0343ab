//! Test helpers: fake kernel images.

/// `hlt; jmp .-1`
pub const HALT_LOOP: &[u8] = &[0xf4, 0xeb, 0xfd];

/// A minimal bzImage (boot protocol 2.15, 64-bit entry) running `code`.
pub fn stub_bzimage(code: &[u8]) -> Vec<u8> {
    stub_bzimage_with(code, 0x10_0000)
}

/// [`stub_bzimage`] with the given `init_size` (RAM the kernel claims to need).
pub fn stub_bzimage_with(code: &[u8], init_size: u32) -> Vec<u8> {
    let setup_sects = 1u8;
    let mut img = vec![0u8; (usize::from(setup_sects) + 1) * 512];
    img[0x1f1] = setup_sects;
    img[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
    img[0x202..0x206].copy_from_slice(b"HdrS");
    img[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
    img[0x211] = 0x1; // LOADED_HIGH
    img[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    img[0x22c..0x230].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
    img[0x236..0x238].copy_from_slice(&1u16.to_le_bytes()); // XLF_KERNEL_64
    img[0x238..0x23c].copy_from_slice(&2047u32.to_le_bytes());
    img[0x258..0x260].copy_from_slice(&0x10_0000u64.to_le_bytes());
    img[0x260..0x264].copy_from_slice(&init_size.to_le_bytes());
    // Protected-mode kernel: the 64-bit entry is at offset 0x200.
    let mut payload = vec![0u8; 0x200];
    payload.extend_from_slice(code);
    payload.extend_from_slice(HALT_LOOP);
    img.extend_from_slice(&payload);
    img
}
