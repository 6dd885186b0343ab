//! Ids in requests: every RPC that names a sandbox, container or process checks the id
//! against the one rule ([`protocol::id`], the host checks the same) before anything else,
//! and answers INVALID_ARGUMENT naming the request field.

use super::RpcError;

/// `value` of request field `field` as an id.
pub fn id<'a>(value: &'a str, field: &str) -> Result<&'a str, RpcError> {
    protocol::id::validate_id(value, field)
        .map_err(|e| RpcError::InvalidArgument(e.to_string()))?;
    Ok(value)
}

/// `container_id` and `exec_id` of a request about one process.
pub fn process<'a>(container_id: &'a str, exec_id: &'a str) -> Result<(), RpcError> {
    id(container_id, "container_id")?;
    id(exec_id, "exec_id")?;
    Ok(())
}

/// An `exec_id` that may be empty (SignalProcess: every process of the container).
pub fn exec_or_all(exec_id: &str) -> Result<&str, RpcError> {
    if exec_id.is_empty() {
        return Ok(exec_id);
    }
    id(exec_id, "exec_id")
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ttrpc::Code;

    #[test]
    fn test_bad_ids_are_invalid_argument_naming_the_field() {
        for (bad, field) in [("", "container_id"), ("caf\u{e9}", "container_id")] {
            let e = id(bad, field).unwrap_err();
            assert_eq!(e.code(), Code::INVALID_ARGUMENT);
            assert!(e.to_string().contains(&format!("{field}: ")), "{e}");
        }
        let e = process("c1", "../x").unwrap_err();
        assert!(e.to_string().contains("exec_id: "), "{e}");
        assert_eq!(process("c1", "e1").ok(), Some(()));
        assert_eq!(exec_or_all("").ok(), Some(""));
        assert!(exec_or_all("a..b").is_err());
    }
}
