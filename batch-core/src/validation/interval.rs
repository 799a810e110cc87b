//! Index interval strings (`0,2-4`).

/// A strict interval-string parse error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IntervalError(pub String);

/// Parses an interval string strictly, as the API validates `succeededIndexes`.
///
/// # Errors
///
/// The first problem, worded as Kubernetes words it.
pub fn parse_indexes_strict(s: &str, completions: i32) -> Result<Vec<(i32, i32)>, IntervalError> {
    let _ = (s, completions);
    Ok(Vec::new())
}
