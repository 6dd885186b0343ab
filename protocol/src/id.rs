//! The one rule for sandbox, container and exec ids, on the host (every `host-vmm` command)
//! and in the guest (every agent RPC that takes one). Pure.
//!
//! An id is 1 to [`MAX_ID_LEN`] ASCII characters matching
//! `^[A-Za-z0-9]+([._-][A-Za-z0-9]+)*$` (containerd's rule): letters and digits, with `.`, `_`
//! and `-` only between two of them. So an id is always one safe path component (never `.`,
//! `..`, empty or holding `/`), a cgroup name, a hostname, and it is the same string in bytes
//! and in characters (byte offsets can never split a character).
//!
//! Why 64: ids name directories whose sockets must fit `sun_path` (107 bytes):
//! `/run/host-vmm/<id>/vsock.sock_<port>` is 14 + 64 + 11 + 10 = 99 bytes at most, leaving
//! room for a longer `$HOST_VMM_RUNTIME_DIR`. 64 is also the kernel's hostname limit
//! (`__NEW_UTS_LEN`), and sandbox ids become guest hostnames.

/// The longest id, in bytes (= characters: ids are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// The rule, as error messages state it.
pub const ID_RULE: &str = "1 to 64 characters matching [A-Za-z0-9]+([._-][A-Za-z0-9]+)*: \
                           letters and digits, with '.', '_' or '-' only between two of them";

/// Why an id was refused. `field` names what the id was given as (`container id`,
/// `exec_id`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{field}: empty; allowed: {ID_RULE}")]
    Empty { field: String },
    #[error("{field}: {len} bytes long; allowed: at most {MAX_ID_LEN} ({ID_RULE})")]
    TooLong { field: String, len: usize },
    /// A character that is not an ASCII letter, digit, `.`, `_` or `-`.
    #[error("{field}: {} holds {bad:?}; allowed: {ID_RULE}", shown(id))]
    BadChar {
        field: String,
        id: String,
        bad: char,
    },
    /// A separator at the start or the end, or two in a row.
    #[error(
        "{field}: {} has '.', '_' or '-' at an end or two in a row; allowed: {ID_RULE}",
        shown(id)
    )]
    Separator { field: String, id: String },
}

impl IdError {
    /// The field the refused id was given as.
    pub fn field(&self) -> &str {
        match self {
            IdError::Empty { field }
            | IdError::TooLong { field, .. }
            | IdError::BadChar { field, .. }
            | IdError::Separator { field, .. } => field,
        }
    }
}

/// `id` quoted with escapes (no control character reaches a terminal), cut to a readable
/// length.
fn shown(id: &str) -> String {
    const SHOWN: usize = MAX_ID_LEN + 16;
    let mut cut: String = id.chars().take(SHOWN).collect();
    if cut.len() < id.len() {
        cut.push_str("...");
    }
    format!("{cut:?}")
}

/// Checks `id` against the rule; errors name `field`.
pub fn validate_id(id: &str, field: &str) -> Result<(), IdError> {
    let field = || field.to_string();
    if id.is_empty() {
        return Err(IdError::Empty { field: field() });
    }
    if let Some(bad) = id
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && !is_separator(c))
    {
        return Err(IdError::BadChar {
            field: field(),
            id: id.to_string(),
            bad,
        });
    }
    // ASCII from here on: bytes are characters.
    if id.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            field: field(),
            len: id.len(),
        });
    }
    let bytes = id.as_bytes();
    let at_end = |b: &u8| is_separator(char::from(*b));
    let doubled = bytes
        .windows(2)
        .any(|w| is_separator(char::from(w[0])) && is_separator(char::from(w[1])));
    if bytes.first().is_some_and(at_end) || bytes.last().is_some_and(at_end) || doubled {
        return Err(IdError::Separator {
            field: field(),
            id: id.to_string(),
        });
    }
    Ok(())
}

fn is_separator(c: char) -> bool {
    matches!(c, '.' | '_' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_usual_ids_pass() {
        for id in [
            "a",
            "0",
            "web",
            "pod1",
            "sandbox-1",
            "pod_2.web",
            "a.b_c-d",
            "hv-12345",
            "E1",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(validate_id(id, "container id"), Ok(()), "{id}");
        }
    }

    #[test]
    fn test_empty_is_refused_naming_the_field() {
        let e = validate_id("", "exec_id").unwrap_err();
        assert_eq!(
            e,
            IdError::Empty {
                field: "exec_id".into()
            }
        );
        assert_eq!(e.field(), "exec_id");
        let text = e.to_string();
        assert!(
            text.starts_with("exec_id: empty; allowed: 1 to 64"),
            "{text}"
        );
    }

    #[test]
    fn test_too_long_is_refused() {
        let e = validate_id(&"x".repeat(MAX_ID_LEN + 1), "sandbox id").unwrap_err();
        assert_eq!(
            e,
            IdError::TooLong {
                field: "sandbox id".into(),
                len: 65
            }
        );
        assert!(e.to_string().contains("65 bytes long; allowed: at most 64"));
    }

    #[test]
    fn test_non_ascii_and_odd_characters_are_refused() {
        for (id, bad) in [
            ("é", 'é'),
            ("caf\u{e9}", '\u{e9}'),
            ("a/b", '/'),
            ("a b", ' '),
            ("a:b", ':'),
            ("a\nb", '\n'),
            ("\u{1b}[2J", '\u{1b}'),
            ("日本", '日'),
            ("a\0", '\0'),
        ] {
            assert_eq!(
                validate_id(id, "container id"),
                Err(IdError::BadChar {
                    field: "container id".into(),
                    id: id.into(),
                    bad
                }),
                "{id:?}"
            );
        }
        // A long non-ASCII id is refused for its characters (never sliced).
        let long = "é".repeat(100);
        assert!(matches!(
            validate_id(&long, "f"),
            Err(IdError::BadChar { bad: 'é', .. })
        ));
    }

    #[test]
    fn test_separators_only_between_letters_or_digits() {
        for id in [
            ".", "..", "../x", "-x", "x-", "_x", "x.", "a..b", "a-_b", ".hidden",
        ] {
            let e = validate_id(id, "container id");
            let ok = matches!(e, Err(IdError::Separator { .. }))
                || matches!(e, Err(IdError::BadChar { bad: '/', .. }));
            assert!(ok, "{id}: {e:?}");
        }
        assert!(matches!(
            validate_id("../x", "f"),
            Err(IdError::BadChar { bad: '/', .. })
        ));
        assert!(matches!(
            validate_id("..", "f"),
            Err(IdError::Separator { .. })
        ));
    }

    #[test]
    fn test_error_text_escapes_and_cuts_the_id() {
        let e = validate_id("\u{1b}[2Jx", "container id").unwrap_err();
        let text = e.to_string();
        assert!(!text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains("\\u{1b}"), "{text}");
        let long = format!("{}/", "a".repeat(10_000));
        let text = validate_id(&long, "container id").unwrap_err().to_string();
        assert!(text.len() < 400, "{} bytes", text.len());
        assert!(text.contains("..."), "{text}");
    }
}
