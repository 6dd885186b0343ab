//! The fw_cfg items: fixed keys and named files, and the file directory
//! (pure).
//!
//! Facts (QEMU `docs/specs/fw_cfg.rst`, `include/standard-headers/linux/qemu_fw_cfg.h`):
//! numeric items are little-endian; the file directory (key 0x19) is a
//! big-endian u32 count, then per file a big-endian u32 size, a big-endian
//! u16 key, a u16 reserved and a 56-byte NUL-padded name; files take keys
//! from 0x20 in directory order, sorted by name as QEMU does.

/// "QEMU": the signature item.
pub const KEY_SIGNATURE: u16 = 0x00;
/// Feature bits (u32): traditional interface and DMA.
pub const KEY_ID: u16 = 0x01;
pub const KEY_RAM_SIZE: u16 = 0x03;
pub const KEY_NOGRAPHIC: u16 = 0x04;
pub const KEY_NB_CPUS: u16 = 0x05;
pub const KEY_MAX_CPUS: u16 = 0x0f;
pub const KEY_KERNEL_ADDR: u16 = 0x07;
pub const KEY_KERNEL_SIZE: u16 = 0x08;
pub const KEY_INITRD_ADDR: u16 = 0x0a;
pub const KEY_INITRD_SIZE: u16 = 0x0b;
pub const KEY_KERNEL_ENTRY: u16 = 0x10;
pub const KEY_KERNEL_DATA: u16 = 0x11;
pub const KEY_INITRD_DATA: u16 = 0x12;
pub const KEY_CMDLINE_ADDR: u16 = 0x13;
pub const KEY_CMDLINE_SIZE: u16 = 0x14;
pub const KEY_CMDLINE_DATA: u16 = 0x15;
pub const KEY_SETUP_SIZE: u16 = 0x17;
pub const KEY_SETUP_DATA: u16 = 0x18;
pub const KEY_FILE_DIR: u16 = 0x19;
/// First file key.
pub const KEY_FILE_FIRST: u16 = 0x20;
/// Bits of a selector that are not part of the key (write channel 0x4000,
/// arch-local 0x8000): keys are looked up without them.
pub const KEY_MASK: u16 = 0x3fff;

/// Feature bit 0: the traditional (register) interface; bit 1: DMA.
pub const FEATURE_TRADITIONAL: u32 = 1 << 0;
pub const FEATURE_DMA: u32 = 1 << 1;

/// Bytes of a file name in the directory, NUL included.
pub const FILE_NAME_LEN: usize = 56;
/// Most files (keys 0x20..0x3fff).
pub const MAX_FILES: usize = (KEY_MASK - KEY_FILE_FIRST + 1) as usize;

/// Why the items cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("fw_cfg file name {0:?} is empty or longer than 55 bytes")]
    BadName(String),
    #[error("fw_cfg file {0:?} is given twice")]
    Duplicate(String),
    #[error("fw_cfg item of {len} bytes is larger than the 4 GiB the protocol can describe")]
    TooLarge { len: usize },
    #[error("more than {MAX_FILES} fw_cfg files")]
    TooManyFiles,
}

/// What the firmware can read: fixed keys and files, by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Items {
    /// (key, data), keys below [`KEY_FILE_FIRST`].
    fixed: Vec<(u16, Vec<u8>)>,
    /// (name, data), sorted by name once [`Items::finish`] ran.
    files: Vec<(String, Vec<u8>)>,
}

impl Items {
    /// The items every machine has: signature, features (with DMA).
    pub fn new() -> Self {
        let mut i = Items::default();
        i.set(KEY_SIGNATURE, b"QEMU".to_vec());
        i.set(
            KEY_ID,
            (FEATURE_TRADITIONAL | FEATURE_DMA).to_le_bytes().to_vec(),
        );
        i
    }

    /// Set fixed key `key` (replacing it).
    pub fn set(&mut self, key: u16, data: Vec<u8>) {
        self.fixed.retain(|(k, _)| *k != key);
        self.fixed.push((key, data));
    }

    pub fn set_u16(&mut self, key: u16, v: u16) {
        self.set(key, v.to_le_bytes().to_vec());
    }

    pub fn set_u32(&mut self, key: u16, v: u32) {
        self.set(key, v.to_le_bytes().to_vec());
    }

    pub fn set_u64(&mut self, key: u16, v: u64) {
        self.set(key, v.to_le_bytes().to_vec());
    }

    /// The kernel image for the firmware's loader (QEMU on arm: the whole
    /// Image in KERNEL_DATA, no setup part).
    pub fn set_kernel(&mut self, image: Vec<u8>) -> Result<(), ItemError> {
        let len = size_u32(image.len())?;
        self.set_u32(KEY_KERNEL_SIZE, len);
        self.set(KEY_KERNEL_DATA, image);
        self.set_u32(KEY_SETUP_SIZE, 0);
        self.set(KEY_SETUP_DATA, Vec::new());
        Ok(())
    }

    pub fn set_initrd(&mut self, initrd: Vec<u8>) -> Result<(), ItemError> {
        let len = size_u32(initrd.len())?;
        self.set_u32(KEY_INITRD_SIZE, len);
        self.set(KEY_INITRD_DATA, initrd);
        Ok(())
    }

    /// The command line, NUL-terminated (its size counts the NUL).
    pub fn set_cmdline(&mut self, line: &str) -> Result<(), ItemError> {
        let mut data = line.as_bytes().to_vec();
        data.push(0);
        let len = size_u32(data.len())?;
        self.set_u32(KEY_CMDLINE_SIZE, len);
        self.set(KEY_CMDLINE_DATA, data);
        Ok(())
    }

    /// Add file `name`.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) -> Result<(), ItemError> {
        if name.is_empty() || name.len() >= FILE_NAME_LEN {
            return Err(ItemError::BadName(name.to_string()));
        }
        if self.files.iter().any(|(n, _)| n == name) {
            return Err(ItemError::Duplicate(name.to_string()));
        }
        if self.files.len() >= MAX_FILES {
            return Err(ItemError::TooManyFiles);
        }
        size_u32(data.len())?;
        self.files.push((name.to_string(), data));
        Ok(())
    }

    /// Sort the files and write the directory: the table the device serves.
    pub fn finish(mut self) -> Table {
        self.files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut dir = Vec::with_capacity(4 + self.files.len() * 64);
        // Bounded by MAX_FILES and size_u32 in add_file.
        dir.extend_from_slice(&(self.files.len() as u32).to_be_bytes());
        for (i, (name, data)) in self.files.iter().enumerate() {
            dir.extend_from_slice(&(data.len() as u32).to_be_bytes());
            dir.extend_from_slice(&(KEY_FILE_FIRST + i as u16).to_be_bytes());
            dir.extend_from_slice(&[0, 0]);
            let mut n = [0u8; FILE_NAME_LEN];
            n[..name.len()].copy_from_slice(name.as_bytes());
            dir.extend_from_slice(&n);
        }
        self.set(KEY_FILE_DIR, dir);
        Table {
            fixed: self.fixed,
            files: self.files,
        }
    }
}

fn size_u32(len: usize) -> Result<u32, ItemError> {
    u32::try_from(len).map_err(|_| ItemError::TooLarge { len })
}

/// The finished, read-only item table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    fixed: Vec<(u16, Vec<u8>)>,
    files: Vec<(String, Vec<u8>)>,
}

impl Table {
    /// The data of `selector` (its key bits); empty for an unknown key.
    pub fn get(&self, selector: u16) -> &[u8] {
        let key = selector & KEY_MASK;
        if key >= KEY_FILE_FIRST {
            return self
                .files
                .get(usize::from(key - KEY_FILE_FIRST))
                .map_or(&[], |(_, d)| d.as_slice());
        }
        self.fixed
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[], |(_, d)| d.as_slice())
    }

    /// The key of file `name`.
    pub fn file_key(&self, name: &str) -> Option<u16> {
        self.files
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| KEY_FILE_FIRST + i as u16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_items_signature_features_and_numbers() {
        let mut i = Items::new();
        i.set_u16(KEY_NB_CPUS, 2);
        i.set_u64(KEY_RAM_SIZE, 1 << 30);
        let t = i.finish();
        assert_eq!(t.get(KEY_SIGNATURE), b"QEMU");
        assert_eq!(t.get(KEY_ID), &3u32.to_le_bytes());
        assert_eq!(t.get(KEY_NB_CPUS), &[2, 0]);
        assert_eq!(t.get(KEY_RAM_SIZE), &(1u64 << 30).to_le_bytes());
        assert_eq!(t.get(0x3ffe), b"");
        // The write and arch bits of a selector are not part of the key.
        assert_eq!(t.get(KEY_SIGNATURE | 0x8000), b"QEMU");
    }

    #[test]
    fn test_items_file_directory_sorted_big_endian() {
        let mut i = Items::new();
        i.add_file("etc/table-loader", vec![1; 3]).unwrap();
        i.add_file("etc/acpi/tables", vec![2; 5]).unwrap();
        let t = i.finish();
        let dir = t.get(KEY_FILE_DIR);
        assert_eq!(dir.len(), 4 + 2 * 64);
        assert_eq!(&dir[0..4], &2u32.to_be_bytes());
        // First entry: etc/acpi/tables (sorted), 5 bytes, key 0x20.
        assert_eq!(&dir[4..8], &5u32.to_be_bytes());
        assert_eq!(&dir[8..10], &0x20u16.to_be_bytes());
        assert_eq!(&dir[12..12 + 15], b"etc/acpi/tables");
        assert_eq!(dir[12 + 15], 0);
        assert_eq!(&dir[68..72], &3u32.to_be_bytes());
        assert_eq!(&dir[72..74], &0x21u16.to_be_bytes());
        assert_eq!(t.file_key("etc/table-loader"), Some(0x21));
        assert_eq!(t.get(0x21), &[1, 1, 1]);
        assert_eq!(t.get(0x22), b"");
    }

    #[test]
    fn test_items_kernel_initrd_cmdline() {
        let mut i = Items::new();
        i.set_kernel(vec![7; 10]).unwrap();
        i.set_initrd(vec![8; 4]).unwrap();
        i.set_cmdline("console=ttyAMA0").unwrap();
        let t = i.finish();
        assert_eq!(t.get(KEY_KERNEL_SIZE), &10u32.to_le_bytes());
        assert_eq!(t.get(KEY_KERNEL_DATA), &[7; 10]);
        assert_eq!(t.get(KEY_SETUP_SIZE), &0u32.to_le_bytes());
        assert_eq!(t.get(KEY_INITRD_SIZE), &4u32.to_le_bytes());
        assert_eq!(t.get(KEY_CMDLINE_SIZE), &16u32.to_le_bytes());
        assert_eq!(t.get(KEY_CMDLINE_DATA), b"console=ttyAMA0\0");
    }

    #[test]
    fn test_items_refuse_bad_names_and_duplicates() {
        let mut i = Items::new();
        assert!(matches!(i.add_file("", vec![]), Err(ItemError::BadName(_))));
        assert!(matches!(
            i.add_file(&"x".repeat(56), vec![]),
            Err(ItemError::BadName(_))
        ));
        i.add_file(&"x".repeat(55), vec![]).unwrap();
        assert_eq!(
            i.add_file(&"x".repeat(55), vec![]),
            Err(ItemError::Duplicate("x".repeat(55)))
        );
    }
}
