//! Checks on what the agent answers. The guest is untrusted: its replies are bounded and
//! checked before anything on the host uses them. Pure functions.

use protocol::agent::GuestDetailsResponse;

/// Longest text field accepted from the agent (versions, kernel release).
pub const MAX_TEXT: usize = 256;
/// Smallest memory block size accepted (one page).
pub const MIN_BLOCK_SIZE: u64 = 4 << 10;
/// Largest memory block size accepted (Linux uses at most a few GiB).
pub const MAX_BLOCK_SIZE: u64 = 64 << 30;

/// Facts about the guest, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestDetails {
    /// The memory hotplug granularity; `None` when the guest has no memory hotplug sysfs.
    pub mem_block_size: Option<u64>,
    /// The kernel offers `/sys/devices/system/memory/probe`.
    pub mem_hotplug_probe: bool,
    /// `uname -r` in the guest.
    pub kernel_version: String,
    pub agent_version: String,
    /// The agent runs as pid 1.
    pub init_daemon: bool,
    /// CPUs online in the guest (0: the agent did not say).
    pub online_cpus: u32,
}

/// `text` if it is at most [`MAX_TEXT`] bytes of printable characters.
pub fn text(field: &str, text: &str) -> Result<String, String> {
    if text.len() > MAX_TEXT {
        return Err(format!(
            "{field} is {} bytes long (at most {MAX_TEXT})",
            text.len()
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(format!("{field} {text:?} holds control characters"));
    }
    Ok(text.to_string())
}

/// `text` cut to at most `max` bytes (at a character boundary), control characters replaced
/// by `?`: safe to print in one line.
pub fn one_line(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].replace(char::is_control, "?")
}

/// A memory block size: 0 means none; otherwise a power of two in
/// [`MIN_BLOCK_SIZE`]..=[`MAX_BLOCK_SIZE`].
pub fn block_size(bytes: u64) -> Result<Option<u64>, String> {
    if bytes == 0 {
        return Ok(None);
    }
    if !bytes.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bytes) {
        return Err(format!(
            "memory block size {bytes:#x} is not a power of two in {MIN_BLOCK_SIZE:#x}..={MAX_BLOCK_SIZE:#x}"
        ));
    }
    Ok(Some(bytes))
}

/// Checks a `GetGuestDetails` reply.
pub fn guest_details(r: &GuestDetailsResponse) -> Result<GuestDetails, String> {
    let agent = r
        .agent_details
        .as_ref()
        .ok_or_else(|| "agent_details missing".to_string())?;
    Ok(GuestDetails {
        mem_block_size: block_size(r.mem_block_size_bytes)?,
        mem_hotplug_probe: r.support_mem_hotplug_probe,
        kernel_version: text("kernel_version", &r.kernel_version)?,
        agent_version: text("agent_version", &agent.version)?,
        init_daemon: agent.init_daemon,
        online_cpus: r.online_cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::agent::AgentDetails;
    use protocol::protobuf::MessageField;

    fn reply(block: u64, kernel: &str, agent: &str) -> GuestDetailsResponse {
        let mut r = GuestDetailsResponse::new();
        r.mem_block_size_bytes = block;
        r.kernel_version = kernel.into();
        let mut a = AgentDetails::new();
        a.version = agent.into();
        a.init_daemon = true;
        r.agent_details = MessageField::some(a);
        r
    }

    #[test]
    fn test_guest_details_valid() {
        let d = guest_details(&reply(128 << 20, "6.12.117", "0.1.0")).unwrap();
        assert_eq!(d.mem_block_size, Some(128 << 20));
        assert_eq!(d.kernel_version, "6.12.117");
        assert!(d.init_daemon);
        assert_eq!(
            guest_details(&reply(0, "6.12", "0.1.0"))
                .unwrap()
                .mem_block_size,
            None
        );
    }

    #[test]
    fn test_block_size_bounds() {
        assert_eq!(block_size(4096), Ok(Some(4096)));
        assert_eq!(block_size(MAX_BLOCK_SIZE), Ok(Some(MAX_BLOCK_SIZE)));
        for bad in [
            1,
            2048,
            4095,
            12345,
            (128 << 20) + 4096,
            MAX_BLOCK_SIZE * 2,
            u64::MAX,
        ] {
            assert!(block_size(bad).is_err(), "{bad:#x}");
        }
    }

    #[test]
    fn test_text_bounds() {
        assert!(text("k", &"a".repeat(MAX_TEXT)).is_ok());
        assert!(text("k", &"a".repeat(MAX_TEXT + 1)).is_err());
        assert!(text("k", "6.12\u{1b}[31m").is_err());
        assert!(text("k", "a\nb").is_err());
    }

    #[test]
    fn test_one_line_cuts_and_neutralizes() {
        assert_eq!(one_line("abc", 10), "abc");
        assert_eq!(one_line("a\nb\u{1b}c", 10), "a?b?c");
        assert_eq!(one_line("aé", 2), "a");
    }

    #[test]
    fn test_guest_details_rejects_bad_fields() {
        assert!(guest_details(&reply(3 << 20, "6.12", "0.1")).is_err());
        assert!(guest_details(&reply(128 << 20, &"x".repeat(300), "0.1")).is_err());
        assert!(guest_details(&reply(128 << 20, "6.12", "\u{7}")).is_err());
        assert!(guest_details(&GuestDetailsResponse::new()).is_err());
    }
}
