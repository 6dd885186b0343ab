//! TOML text → [`RawConfig`]: the values as written, with where each came from.
//! Knows the file format (tables, key names, value types) but not the rules.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::fields::KNOWN_KEYS;
use super::suggest::nearest;
use super::{ConfigError, Problem};

/// The one hypervisor table this VMM reads.
pub const HYPERVISOR_TABLE: &str = "hypervisor";
pub const HYPERVISOR_NAME: &str = "host-vmm";

/// Where a field's effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Default,
    File,
    CommandLine,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Default => "default",
            Origin::File => "file",
            Origin::CommandLine => "command line",
        })
    }
}

/// A value as written, before range checks.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Path(PathBuf),
    Text(String),
    Int(i64),
}

/// Values given explicitly (by the file or the command line), keyed by field name.
#[derive(Debug, Clone, Default)]
pub struct RawConfig {
    /// The file they were read from, if any.
    pub source: Option<PathBuf>,
    pub values: BTreeMap<&'static str, (RawValue, Origin)>,
}

impl RawConfig {
    pub fn get(&self, key: &str) -> Option<&(RawValue, Origin)> {
        self.values.get(key)
    }

    pub fn set(&mut self, key: &'static str, value: RawValue, origin: Origin) {
        self.values.insert(key, (value, origin));
    }
}

/// Which fields hold paths, text or integers.
fn kind_of(key: &str) -> ValueKind {
    match key {
        "kernel" | "initrd" | "image" | "firmware" => ValueKind::Path,
        "kernel_params" => ValueKind::Text,
        _ => ValueKind::Int,
    }
}

enum ValueKind {
    Path,
    Text,
    Int,
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn type_name(v: &toml::Value) -> &'static str {
    match v {
        toml::Value::String(_) => "a string",
        toml::Value::Integer(_) => "an integer",
        toml::Value::Float(_) => "a float",
        toml::Value::Boolean(_) => "a boolean",
        toml::Value::Datetime(_) => "a datetime",
        toml::Value::Array(_) => "an array",
        toml::Value::Table(_) => "a table",
    }
}

/// Parse `text` (the contents of `path`). Relative paths resolve against `base_dir`.
pub fn parse(text: &str, path: &Path, base_dir: &Path) -> Result<RawConfig, ConfigError> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let (line, column) = e.span().map_or((1, 1), |s| line_col(text, s.start));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })?;

    let mut problems = Vec::new();
    let mut raw = RawConfig {
        source: Some(path.to_path_buf()),
        values: BTreeMap::new(),
    };

    for (name, value) in &doc {
        if name != HYPERVISOR_TABLE {
            let hint = nearest(name, &[HYPERVISOR_TABLE])
                .map(|k| format!("; did you mean `[{k}.{HYPERVISOR_NAME}]`?"))
                .unwrap_or_else(|| {
                    format!("; the only table is `[{HYPERVISOR_TABLE}.{HYPERVISOR_NAME}]`")
                });
            problems.push(Problem::new(name, format!("unknown table{hint}")));
            continue;
        }
        let Some(hypervisors) = value.as_table() else {
            problems.push(Problem::new(
                name,
                format!("must be a table, got {}", type_name(value)),
            ));
            continue;
        };
        for (hv, table) in hypervisors {
            if hv != HYPERVISOR_NAME {
                problems.push(Problem::new(
                    format!("{HYPERVISOR_TABLE}.{hv}"),
                    format!("unknown hypervisor; the only one is `[{HYPERVISOR_TABLE}.{HYPERVISOR_NAME}]`"),
                ));
                continue;
            }
            let Some(table) = table.as_table() else {
                problems.push(Problem::new(
                    hv,
                    format!("must be a table, got {}", type_name(table)),
                ));
                continue;
            };
            for (key, v) in table {
                match read_value(key, v, base_dir) {
                    Ok((known, value)) => raw.set(known, value, Origin::File),
                    Err(p) => problems.push(p),
                }
            }
        }
    }

    if problems.is_empty() {
        Ok(raw)
    } else {
        Err(ConfigError::Invalid {
            source_file: raw.source,
            problems,
        })
    }
}

fn read_value(
    key: &str,
    v: &toml::Value,
    base_dir: &Path,
) -> Result<(&'static str, RawValue), Problem> {
    let Some(known) = KNOWN_KEYS.iter().copied().find(|k| *k == key) else {
        let hint = nearest(key, KNOWN_KEYS)
            .map(|k| format!("; did you mean `{k}`?"))
            .unwrap_or_else(|| format!("; known keys: {}", KNOWN_KEYS.join(", ")));
        return Err(Problem::new(key, format!("unknown key{hint}")));
    };
    let value = match (kind_of(known), v) {
        (ValueKind::Path, toml::Value::String(s)) if s.is_empty() => {
            return Err(Problem::new(
                known,
                "must be a file path, got an empty string",
            ))
        }
        (ValueKind::Path, toml::Value::String(s)) => RawValue::Path(base_dir.join(s)),
        (ValueKind::Path, other) => {
            return Err(Problem::new(
                known,
                format!("must be a file path (a string), got {}", type_name(other)),
            ))
        }
        (ValueKind::Text, toml::Value::String(s)) => RawValue::Text(s.clone()),
        (ValueKind::Text, other) => {
            return Err(Problem::new(
                known,
                format!("must be a string, got {}", type_name(other)),
            ))
        }
        (ValueKind::Int, toml::Value::Integer(i)) => RawValue::Int(*i),
        (ValueKind::Int, other) => {
            return Err(Problem::new(
                known,
                format!("must be an integer, got {}", type_name(other)),
            ))
        }
    };
    Ok((known, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<RawConfig, ConfigError> {
        parse(text, Path::new("/etc/cfg.toml"), Path::new("/etc"))
    }

    #[test]
    fn test_parse_valid_table_records_file_origin() {
        let raw =
            parse_str("[hypervisor.host-vmm]\ndefault_memory = 2048\nkernel = \"k/bz\"\n").unwrap();
        assert_eq!(
            raw.get("default_memory"),
            Some(&(RawValue::Int(2048), Origin::File))
        );
        assert_eq!(
            raw.get("kernel"),
            Some(&(RawValue::Path(PathBuf::from("/etc/k/bz")), Origin::File))
        );
        assert!(raw.get("default_vcpus").is_none());
    }

    #[test]
    fn test_parse_absolute_path_kept() {
        let raw = parse_str("[hypervisor.host-vmm]\ninitrd = \"/boot/i.cpio\"\n").unwrap();
        assert_eq!(
            raw.get("initrd"),
            Some(&(RawValue::Path(PathBuf::from("/boot/i.cpio")), Origin::File))
        );
    }

    #[test]
    fn test_parse_bad_toml_reports_line_and_column() {
        let err = parse_str("[hypervisor.host-vmm]\ndefault_memory = = 3\n").unwrap_err();
        match &err {
            ConfigError::Syntax { line, column, .. } => {
                assert_eq!(*line, 2);
                assert!(*column > 1, "column {column}");
            }
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(err.to_string().contains("/etc/cfg.toml:2:"), "{err}");
    }

    #[test]
    fn test_parse_unknown_key_suggests_nearest() {
        let err = parse_str("[hypervisor.host-vmm]\ndefault_memroy = 512\n").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("default_memroy"), "{msg}");
        assert!(msg.contains("did you mean `default_memory`?"), "{msg}");
    }

    #[test]
    fn test_parse_unknown_key_without_neighbour_lists_known_keys() {
        let msg = parse_str("[hypervisor.host-vmm]\nenable_iommu = true\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("known keys: kernel, initrd"), "{msg}");
    }

    #[test]
    fn test_parse_unknown_hypervisor_and_table_refused() {
        let msg = parse_str("[hypervisor.qemu]\ndefault_memory = 1\n")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("hypervisor.qemu"), "{msg}");
        let msg = parse_str("[hypervisr.host-vmm]\n").unwrap_err().to_string();
        assert!(
            msg.contains("did you mean `[hypervisor.host-vmm]`"),
            "{msg}"
        );
    }

    #[test]
    fn test_parse_wrong_types_name_field_and_type() {
        let msg = parse_str(
            "[hypervisor.host-vmm]\ndefault_memory = \"1G\"\nkernel = 3\nkernel_params = [1]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            msg.contains("default_memory: must be an integer, got a string"),
            "{msg}"
        );
        assert!(
            msg.contains("kernel: must be a file path (a string), got an integer"),
            "{msg}"
        );
        assert!(
            msg.contains("kernel_params: must be a string, got an array"),
            "{msg}"
        );
    }

    #[test]
    fn test_parse_empty_path_refused() {
        let msg = parse_str("[hypervisor.host-vmm]\ninitrd = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("initrd: must be a file path, got an empty string"),
            "{msg}"
        );
    }

    #[test]
    fn test_parse_empty_file_is_all_defaults() {
        let raw = parse_str("# nothing\n").unwrap();
        assert!(raw.values.is_empty());
    }

    #[test]
    fn test_line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
    }
}
