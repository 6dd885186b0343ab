//! Sizes as users write them: `512M`, `2G`, `1048576`.

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Why a size could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error(
        "size {0:?}: expected a number with an optional unit K, M, G or T (for example 512M, 2G)"
    )]
    Malformed(String),
    #[error("size {0:?} is too large")]
    Overflow(String),
}

/// Parse `text` into bytes. Units are binary (K = KiB, M = MiB, G = GiB,
/// T = TiB); an optional trailing `B`/`iB` is accepted; no unit means bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    let malformed = || SizeError::Malformed(text.to_string());
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits_end);
    if num.is_empty() {
        return Err(malformed());
    }
    let n: u64 = num
        .parse()
        .map_err(|_| SizeError::Overflow(text.to_string()))?;
    let unit = unit.trim().to_ascii_uppercase();
    let unit = unit
        .strip_suffix("IB")
        .or_else(|| unit.strip_suffix('B'))
        .unwrap_or(&unit);
    let mult = match unit {
        "" => 1,
        "K" => KIB,
        "M" => MIB,
        "G" => GIB,
        "T" => 1024 * GIB,
        _ => return Err(malformed()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| SizeError::Overflow(text.to_string()))
}

/// `bytes` in the largest binary unit that divides it exactly (for messages).
pub fn format_size(bytes: u64) -> String {
    for (unit, m) in [("G", GIB), ("M", MIB), ("K", KIB)] {
        if bytes >= m && bytes % m == 0 {
            return format!("{}{unit}", bytes / m);
        }
    }
    format!("{bytes}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_size_units() {
        assert_eq!(parse_size("512M"), Ok(512 * MIB));
        assert_eq!(parse_size("2G"), Ok(2 * GIB));
        assert_eq!(parse_size("2g"), Ok(2 * GIB));
        assert_eq!(parse_size("1GiB"), Ok(GIB));
        assert_eq!(parse_size("64MB"), Ok(64 * MIB));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size(" 1 K "), Ok(KIB));
    }

    #[test]
    fn test_parse_size_refuses_garbage() {
        for bad in ["", "M", "12Q", "-5M", "1.5G", "abc"] {
            assert!(
                matches!(parse_size(bad), Err(SizeError::Malformed(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            parse_size("99999999999T"),
            Err(SizeError::Overflow(_))
        ));
    }

    #[test]
    fn test_format_size() {
        assert_eq!(format_size(512 * MIB), "512M");
        assert_eq!(format_size(3 * GIB), "3G");
        assert_eq!(format_size(1536 * MIB), "1536M");
        assert_eq!(format_size(100), "100");
    }
}
