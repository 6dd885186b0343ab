//! Sandbox ids on the host: the one rule of [`protocol::id`], which the agent checks too.
//! (`host-vmm` checks every id a command names before it does anything else: `main.rs`.)

pub use protocol::id::{IdError, ID_RULE, MAX_ID_LEN};

/// Checks that `id` can name a sandbox (and its runtime directory).
pub fn validate_id(id: &str) -> Result<(), IdError> {
    protocol::id::validate_id(id, "sandbox id")
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
    fn test_validate_id_refuses_paths_and_odd_characters_naming_the_field() {
        for id in ["../x", "a/b", "-x", "a b", ".", "é", "", &"x".repeat(65)] {
            let e = validate_id(id).unwrap_err();
            assert_eq!(e.field(), "sandbox id", "{id}");
            assert!(e.to_string().starts_with("sandbox id: "), "{e}");
            assert!(e.to_string().contains(ID_RULE), "{e}");
        }
    }
}
