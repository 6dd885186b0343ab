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

/// Why an id was refused: `<field>: <problem>`. `field` names what the id was given as
/// (`container id`, `exec_id`, ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct IdError {
    pub field: String,
    pub problem: IdProblem,
}

/// What is wrong with a refused id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdProblem {
    #[error("empty; allowed: {ID_RULE}")]
    Empty,
    #[error("{len} bytes long; allowed: at most {MAX_ID_LEN} ({ID_RULE})")]
    TooLong { len: usize },
    /// A character that is not an ASCII letter, digit, `.`, `_` or `-`.
    #[error("{} holds {bad:?}; allowed: {ID_RULE}", shown(id))]
    BadChar { id: String, bad: char },
    /// A separator at the start or the end, or two in a row.
    #[error(
        "{} has '.', '_' or '-' at an end or two in a row; allowed: {ID_RULE}",
        shown(id)
    )]
    Separator { id: String },
}

impl IdError {
    /// The field the refused id was given as.
    pub fn field(&self) -> &str {
        &self.field
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
    check(id).map_err(|problem| IdError {
        field: field.to_string(),
        problem,
    })
}

fn check(id: &str) -> Result<(), IdProblem> {
    if id.is_empty() {
        return Err(IdProblem::Empty);
    }
    if let Some(bad) = id
        .chars()
        .find(|&c| !c.is_ascii_alphanumeric() && !is_separator(c))
    {
        return Err(IdProblem::BadChar {
            id: id.to_string(),
            bad,
        });
    }
    // ASCII from here on: bytes are characters.
    if id.len() > MAX_ID_LEN {
        return Err(IdProblem::TooLong { len: id.len() });
    }
    let bytes = id.as_bytes();
    let sep = |b: &u8| is_separator(char::from(*b));
    let doubled = bytes.windows(2).any(|w| sep(&w[0]) && sep(&w[1]));
    if bytes.first().is_some_and(sep) || bytes.last().is_some_and(sep) || doubled {
        return Err(IdProblem::Separator { id: id.to_string() });
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
        assert_eq!(e.problem, IdProblem::Empty);
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
        assert_eq!(e.field(), "sandbox id");
        assert_eq!(e.problem, IdProblem::TooLong { len: 65 });
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
                validate_id(id, "container id").map_err(|e| e.problem),
                Err(IdProblem::BadChar { id: id.into(), bad }),
                "{id:?}"
            );
        }
        // A long non-ASCII id is refused for its characters (never sliced).
        let long = "é".repeat(100);
        assert!(matches!(
            check(&long),
            Err(IdProblem::BadChar { bad: 'é', .. })
        ));
    }

    #[test]
    fn test_separators_only_between_letters_or_digits() {
        for id in [
            ".", "..", "../x", "-x", "x-", "_x", "x.", "a..b", "a-_b", ".hidden",
        ] {
            let e = check(id);
            let ok = matches!(e, Err(IdProblem::Separator { .. }))
                || matches!(e, Err(IdProblem::BadChar { bad: '/', .. }));
            assert!(ok, "{id}: {e:?}");
        }
        assert!(matches!(
            check("../x"),
            Err(IdProblem::BadChar { bad: '/', .. })
        ));
        assert!(matches!(check(".."), Err(IdProblem::Separator { .. })));
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
