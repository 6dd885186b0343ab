//! Sandbox ids: safe as a path component and readable in `ps`.

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("sandbox id is empty; allowed: 1..={MAX_ID_LEN} characters of [A-Za-z0-9_.-], starting with a letter or digit")]
    Empty,
    #[error("sandbox id {id:?} is {len} characters long; allowed: at most {MAX_ID_LEN}")]
    TooLong { id: String, len: usize },
    #[error(
        "sandbox id {id:?} has {bad:?}; allowed: [A-Za-z0-9_.-], starting with a letter or digit"
    )]
    BadChar { id: String, bad: char },
}

/// Check that `id` can name a sandbox (and a directory).
pub fn validate_id(id: &str) -> Result<(), IdError> {
    let len = id.chars().count();
    if len == 0 {
        return Err(IdError::Empty);
    }
    if len > MAX_ID_LEN {
        return Err(IdError::TooLong {
            id: id.to_string(),
            len,
        });
    }
    for (i, c) in id.chars().enumerate() {
        let ok = c.is_ascii_alphanumeric() || (i > 0 && matches!(c, '_' | '.' | '-'));
        if !ok {
            return Err(IdError::BadChar {
                id: id.to_string(),
                bad: c,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_validate_id_accepts_usual_ids() {
        for id in [
            "a",
            "sandbox-1",
            "pod_2.web",
            "0abc",
            &"x".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(validate_id(id), Ok(()), "{id}");
        }
    }

    #[test]
    fn test_validate_id_refuses_paths_and_odd_characters() {
        for (id, bad) in [
            ("../x", '.'),
            ("a/b", '/'),
            ("-x", '-'),
            ("a b", ' '),
            (".", '.'),
        ] {
            assert_eq!(
                validate_id(id),
                Err(IdError::BadChar { id: id.into(), bad }),
                "{id}"
            );
        }
        assert_eq!(validate_id(""), Err(IdError::Empty));
        assert!(matches!(
            validate_id(&"x".repeat(MAX_ID_LEN + 1)),
            Err(IdError::TooLong { len: 65, .. })
        ));
    }
}
