//! Go's `time.ParseDuration`, for `@every <duration>`.

/// Parses a Go duration (`1h30m`, `1.5h`, `90s`, `500ms`, `-2m`, `0`) into nanoseconds.
///
/// Returns a short reason on failure.
pub(crate) fn parse_go_duration(text: &str) -> Result<i128, &'static str> {
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err("empty duration");
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        // The number: digits, optionally a fraction.
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let int_part = &rest[..int_len];
        rest = &rest[int_len..];
        let mut frac_part = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            frac_part = &after_dot[..frac_len];
            rest = &after_dot[frac_len..];
            if int_part.is_empty() && frac_part.is_empty() {
                return Err("a number is expected before the unit");
            }
        } else if int_part.is_empty() {
            return Err("a number is expected before the unit");
        }
        // The unit: everything up to the next digit or dot.
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(i, _)| i);
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => return Err("missing unit (use ns, us, ms, s, m or h)"),
            _ => return Err("unknown unit (use ns, us, ms, s, m or h)"),
        };
        let int_value: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().map_err(|_| "number too large")?
        };
        let mut value = int_value.checked_mul(scale).ok_or("number too large")?;
        // The fraction, exact to the nanosecond (further digits are dropped, as Go does).
        let mut frac_scale = scale;
        for digit in frac_part.bytes() {
            frac_scale /= 10;
            if frac_scale == 0 {
                break;
            }
            value += i128::from(digit - b'0') * frac_scale;
        }
        total = total.checked_add(value).ok_or("number too large")?;
        if total > i128::from(i64::MAX) {
            return Err("duration too large");
        }
    }
    Ok(if negative { -total } else { total })
}

#[cfg(test)]
mod tests {
    use super::parse_go_duration;

    #[test]
    fn reads_go_durations() {
        let s = 1_000_000_000i128;
        assert_eq!(parse_go_duration("1h30m"), Ok(5_400 * s));
        assert_eq!(parse_go_duration("1.5h"), Ok(5_400 * s));
        assert_eq!(parse_go_duration("90s"), Ok(90 * s));
        assert_eq!(parse_go_duration("500ms"), Ok(s / 2));
        assert_eq!(parse_go_duration(".5s"), Ok(s / 2));
        assert_eq!(parse_go_duration("-2m"), Ok(-120 * s));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("1\u{b5}s"), Ok(1_000));
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("5").is_err());
        assert!(parse_go_duration("5d").is_err());
        assert!(parse_go_duration("h").is_err());
        assert!(parse_go_duration(".s").is_err());
        assert!(parse_go_duration("1h ").is_err());
        assert!(parse_go_duration("99999999999999999999h").is_err());
        assert!(parse_go_duration("3000000h").is_err());
    }
}
