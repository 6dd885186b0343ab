//! Rendering an error with its causes, for the CLI and the control socket.

use std::error::Error;

/// The error and its sources joined with ": ", skipping a cause whose text the
/// message before it already ends with (errors that print their source).
pub fn error_chain(e: &(dyn Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(e);
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}
