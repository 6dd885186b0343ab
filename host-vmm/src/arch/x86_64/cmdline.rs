//! The kernel command line: the VMM's own parameters, then the user's.

/// What the VMM's devices and exit handling need:
/// - `console=ttyS0`: the only console is COM1; `8250.nr_uarts=1` stops the
///   kernel probing COM2..COM4 (each probe is a run of slow I/O exits).
/// - `quiet`: every console byte is an I/O exit (slow when nested).
/// - `reboot=k`: reboot through the i8042 reset line; `panic=-1`: reboot at
///   once on panic, so a panic ends the VM as a reset.
/// - `pci=off`: the VMM has no PCI host bridge (devices are virtio-mmio), so
///   the kernel need not look for config space.
pub const BASE_CMDLINE: &str = "console=ttyS0 8250.nr_uarts=1 reboot=k panic=-1 pci=off quiet";

/// Why the command line cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CmdlineError {
    #[error("kernel_params: the command line is {len} bytes, the kernel accepts at most {max}")]
    TooLong { len: usize, max: usize },
    #[error("kernel_params: contains a NUL byte")]
    Nul,
}

/// [`BASE_CMDLINE`] followed by `extra` (trimmed). `max` is the longest
/// line the kernel accepts, without the terminating NUL.
pub fn build_cmdline(extra: &str, max: usize) -> Result<String, CmdlineError> {
    if extra.contains('\0') {
        return Err(CmdlineError::Nul);
    }
    let extra = extra.trim();
    let line = if extra.is_empty() {
        BASE_CMDLINE.to_string()
    } else {
        format!("{BASE_CMDLINE} {extra}")
    };
    if line.len() > max {
        return Err(CmdlineError::TooLong {
            len: line.len(),
            max,
        });
    }
    Ok(line)
}

/// `line` as the NUL-terminated bytes written to guest memory.
pub fn cmdline_bytes(line: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(line.len() + 1);
    v.extend_from_slice(line.as_bytes());
    v.push(0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cmdline_appends_user_params() {
        assert_eq!(build_cmdline("", 2048).unwrap(), BASE_CMDLINE);
        assert_eq!(
            build_cmdline("  init=/init agent.log=debug ", 2048).unwrap(),
            format!("{BASE_CMDLINE} init=/init agent.log=debug")
        );
        assert!(BASE_CMDLINE.contains("console=ttyS0"));
        assert!(BASE_CMDLINE.contains("panic=-1"));
    }

    #[test]
    fn test_cmdline_too_long_and_nul() {
        let long = "x".repeat(4096);
        assert!(matches!(
            build_cmdline(&long, 2047),
            Err(CmdlineError::TooLong { max: 2047, .. })
        ));
        assert_eq!(build_cmdline("a\0b", 2048), Err(CmdlineError::Nul));
        let e = build_cmdline(&long, 10).unwrap_err().to_string();
        assert!(e.starts_with("kernel_params:"), "{e}");
    }

    #[test]
    fn test_cmdline_bytes_nul_terminated() {
        assert_eq!(cmdline_bytes("ab"), b"ab\0".to_vec());
    }
}
