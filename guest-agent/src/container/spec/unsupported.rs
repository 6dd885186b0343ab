//! Spec fields the engine cannot apply: declared so they are never dropped silently, and
//! refused by validation when they hold anything.

use serde::{Deserialize, Serialize};

use super::SpecError;

/// A field the engine cannot apply. Absent or empty (null, "", [], {}, false, 0, or an
/// object whose values are all empty, such as `"hooks": {"prestart": []}`) is accepted as
/// saying nothing; any other value is refused by [`Unsupported::refuse`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Unsupported(pub Option<serde_json::Value>);

impl Unsupported {
    /// Absent (for `skip_serializing_if`).
    pub fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// Holds a value that asks for something.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|v| !is_empty(v))
    }

    /// An error naming `field` and saying `why` when the field is set.
    pub fn refuse(&self, field: &str, why: &str) -> Result<(), SpecError> {
        if self.is_set() {
            return Err(SpecError::new(field, format!("not supported: {why}")));
        }
        Ok(())
    }
}

fn is_empty(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn test_unsupported_empty_values_pass() {
        for v in [
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!({"prestart": [], "poststop": null}),
            json!(false),
            json!(0),
        ] {
            Unsupported(Some(v.clone())).refuse("f", "x").unwrap();
        }
        Unsupported(None).refuse("f", "x").unwrap();
    }

    #[test]
    fn test_unsupported_values_are_refused_by_name() {
        let err = Unsupported(Some(json!({"prestart": [{"path": "/bin/true"}]})))
            .refuse("hooks", "hooks run on the host")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "hooks: not supported: hooks run on the host"
        );
        assert!(Unsupported(Some(json!("docker-default"))).is_set());
    }
}
