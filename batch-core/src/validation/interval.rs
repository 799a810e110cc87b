//! Index interval strings (`0,2-4`), read strictly as the API server validates them.

/// A strict interval-string parse error, worded as Kubernetes words it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IntervalError(pub String);

/// Parses an interval string strictly, as the API validates `succeededIndexes`.
///
/// Items are separated by `,`; each is `a` or `a-b` with integers `a < b`, every index is
/// below `completions`, and items are strictly increasing. The empty string is no interval.
///
/// ```
/// use batch_core::validation::parse_indexes_strict;
///
/// assert_eq!(parse_indexes_strict("0,2-4", 5).unwrap(), vec![(0, 0), (2, 4)]);
/// assert_eq!(
///     parse_indexes_strict("3-3", 5).unwrap_err().to_string(),
///     "non-increasing order, previous: 3, current: 3"
/// );
/// ```
///
/// # Errors
///
/// The first problem, worded as Kubernetes words it: `cannot convert string to integer for
/// index: "x"`, `too large index: "9"`, `non-increasing order, previous: 4, current: 2`, or
/// `the fragment "1-2-3" violates the requirement that an index interval can have at most
/// two parts separated by '-'`.
pub fn parse_indexes_strict(s: &str, completions: i32) -> Result<Vec<(i32, i32)>, IntervalError> {
    let mut intervals: Vec<(i32, i32)> = Vec::new();
    if s.is_empty() {
        return Ok(intervals);
    }
    for item in s.split(',') {
        let (x, y) = parse_interval(item, completions)?;
        if let Some(&(_, last)) = intervals.last()
            && last >= x
        {
            return Err(IntervalError(format!(
                "non-increasing order, previous: {last}, current: {x}"
            )));
        }
        intervals.push((x, y));
    }
    Ok(intervals)
}

/// The number of indexes in parsed intervals.
pub(crate) fn count_indexes(intervals: &[(i32, i32)]) -> i64 {
    intervals
        .iter()
        .map(|&(x, y)| i64::from(y) - i64::from(x) + 1)
        .sum()
}

fn parse_interval(item: &str, completions: i32) -> Result<(i32, i32), IntervalError> {
    let parts: Vec<&str> = item.split('-').collect();
    if parts.len() > 2 {
        return Err(IntervalError(format!(
            "the fragment {} violates the requirement that an index interval can have at most two parts separated by '-'",
            super::go_quote(item)
        )));
    }
    let first = parts.first().copied().unwrap_or_default();
    let x = parse_index(first, completions)?;
    match parts.get(1) {
        None => Ok((x, x)),
        Some(second) => {
            let y = parse_index(second, completions)?;
            if x >= y {
                return Err(IntervalError(format!(
                    "non-increasing order, previous: {x}, current: {y}"
                )));
            }
            Ok((x, y))
        }
    }
}

/// One index: Go's `strconv.Atoi` (optional sign, decimal digits, 64-bit range), then below
/// `completions`.
fn parse_index(s: &str, completions: i32) -> Result<i32, IntervalError> {
    let not_integer = || {
        IntervalError(format!(
            "cannot convert string to integer for index: {}",
            super::go_quote(s)
        ))
    };
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(not_integer());
    }
    let value: i64 = s.parse().map_err(|_| not_integer())?;
    if value >= i64::from(completions) {
        return Err(IntervalError(format!(
            "too large index: {}",
            super::go_quote(s)
        )));
    }
    // Below completions (an i32) but possibly very negative: only "+N" and plain digits reach
    // here (a '-' splits the item), so the value is never negative.
    i32::try_from(value).map_err(|_| not_integer())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn err(s: &str, completions: i32) -> String {
        parse_indexes_strict(s, completions).unwrap_err().0
    }

    #[test]
    fn valid_interval_strings_parse() {
        assert_eq!(parse_indexes_strict("", 3).unwrap(), vec![]);
        assert_eq!(
            parse_indexes_strict("0,2-3,5", 6).unwrap(),
            vec![(0, 0), (2, 3), (5, 5)]
        );
        assert_eq!(parse_indexes_strict("+1", 3).unwrap(), vec![(1, 1)]);
        assert_eq!(count_indexes(&[(0, 0), (2, 3)]), 3);
    }

    #[test]
    fn malformed_interval_strings_are_reported_as_kubernetes_reports_them() {
        assert_eq!(
            err("a", 3),
            r#"cannot convert string to integer for index: "a""#
        );
        assert_eq!(
            err("1,,2", 3),
            r#"cannot convert string to integer for index: """#
        );
        assert_eq!(
            err("-1", 3),
            r#"cannot convert string to integer for index: """#
        );
        assert_eq!(err("3", 3), r#"too large index: "3""#);
        assert_eq!(err("0-5", 3), r#"too large index: "5""#);
        assert_eq!(
            err("2-1", 3),
            "non-increasing order, previous: 2, current: 1"
        );
        assert_eq!(
            err("0-1,1", 3),
            "non-increasing order, previous: 1, current: 1"
        );
        assert_eq!(
            err("1-2-3", 5),
            r#"the fragment "1-2-3" violates the requirement that an index interval can have at most two parts separated by '-'"#
        );
        assert_eq!(
            err("99999999999999999999", 3),
            r#"cannot convert string to integer for index: "99999999999999999999""#
        );
        assert_eq!(err("0", i32::MIN), r#"too large index: "0""#);
    }
}
