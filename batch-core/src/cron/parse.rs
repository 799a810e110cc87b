//! The schedule parser: exactly what a Kubernetes CronJob accepts (robfig/cron v3's
//! standard parser with descriptors), and nothing more.

use super::{CronError, Field, Spec};

/// Bit 63 of a field mask: set when the field was written as a star (`*`, `?`, a star with
/// step 1, or a list containing one). Only the day fields use it (the DOM/DOW rule).
pub(super) const STAR: u64 = 1 << 63;

/// The five fields of a cron expression, as bit masks (bit `n` set = value `n` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct Fields {
    pub(super) minute: u64,
    pub(super) hour: u64,
    pub(super) dom: u64,
    pub(super) month: u64,
    pub(super) dow: u64,
}

impl Fields {
    /// Whether a calendar day matches, with Kubernetes' rule: when either day field is a
    /// star both must match; otherwise either may.
    pub(super) fn day_matches(&self, day: u32, weekday_from_sunday: u32) -> bool {
        let dom = self.dom & (1 << day) != 0;
        let dow = self.dow & (1 << weekday_from_sunday) != 0;
        if (self.dom | self.dow) & STAR != 0 {
            dom && dow
        } else {
            dom || dow
        }
    }
}

impl Fields {
    /// The first day from `day` to `days_in_month` that matches, given the weekday
    /// (0 = Sunday) of `day`. Works on the bit masks alone.
    pub(super) fn next_day(&self, day: u32, weekday: u32, days_in_month: u32) -> Option<u32> {
        if self.day_of_month_alone_decides() {
            let bits = (self.dom & !STAR).checked_shr(day)?;
            let next = day + bits.trailing_zeros();
            return (bits != 0 && next <= days_in_month).then_some(next);
        }
        (day..=days_in_month).find(|d| self.day_matches(*d, (weekday + d - day) % 7))
    }

    /// True when every weekday matches and the rule is "both must match": the day of the
    /// month alone then decides, and the search can work on its bits directly.
    fn day_of_month_alone_decides(&self) -> bool {
        (self.dom | self.dow) & STAR != 0 && self.dow & 0x7f == 0x7f
    }

    /// The last day from `day` down to 1 that matches, given the weekday (0 = Sunday) of
    /// `day`.
    pub(super) fn prev_day(&self, day: u32, weekday: u32) -> Option<u32> {
        if self.day_of_month_alone_decides() {
            let below = self.dom & ((2u64 << day) - 2);
            return (below != 0).then(|| 63 - below.leading_zeros());
        }
        (1..=day)
            .rev()
            .find(|d| self.day_matches(*d, (weekday + 7 * 5 - (day - d)) % 7))
    }
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// Parses a schedule (the part after any `TZ=` prefix).
pub(super) fn parse_spec(spec: &str) -> Result<Spec, CronError> {
    if spec.starts_with('@') {
        return parse_descriptor(spec);
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(CronError::schedule(format!(
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), found {}",
            fields.len()
        )));
    }
    Ok(Spec::Cron(Fields {
        minute: parse_field(fields[0], Field::Minute)?,
        hour: parse_field(fields[1], Field::Hour)?,
        dom: parse_field(fields[2], Field::DayOfMonth)?,
        month: parse_field(fields[3], Field::Month)?,
        dow: parse_field(fields[4], Field::DayOfWeek)?,
    }))
}

fn parse_descriptor(spec: &str) -> Result<Spec, CronError> {
    let fields = |minute: u64, hour: u64, dom: u64, month: u64, dow: u64| {
        Spec::Cron(Fields {
            minute,
            hour,
            dom,
            month,
            dow,
        })
    };
    let all = |field: Field| range_bits(field.min(), field.max(), 1) | STAR;
    let one = |value: u32| 1u64 << value;
    Ok(match spec {
        "@yearly" | "@annually" => fields(one(0), one(0), one(1), one(1), all(Field::DayOfWeek)),
        "@monthly" => fields(
            one(0),
            one(0),
            one(1),
            all(Field::Month),
            all(Field::DayOfWeek),
        ),
        "@weekly" => fields(
            one(0),
            one(0),
            all(Field::DayOfMonth),
            all(Field::Month),
            one(0),
        ),
        "@daily" | "@midnight" => fields(
            one(0),
            one(0),
            all(Field::DayOfMonth),
            all(Field::Month),
            all(Field::DayOfWeek),
        ),
        "@hourly" => fields(
            one(0),
            all(Field::Hour),
            all(Field::DayOfMonth),
            all(Field::Month),
            all(Field::DayOfWeek),
        ),
        _ => match spec.strip_prefix("@every ") {
            Some(duration) => {
                let nanos = super::duration::parse_go_duration(duration).map_err(|why| {
                    CronError::schedule(format!("@every: invalid duration {duration:?}: {why}"))
                })?;
                // As upstream: rounded down to whole seconds, at least one second (a zero or
                // negative duration therefore means one second).
                let seconds = (nanos / 1_000_000_000).max(1);
                Spec::Every(u64::try_from(seconds).unwrap_or(1))
            }
            None => {
                return Err(CronError::schedule(format!(
                    "unrecognized descriptor {spec:?} (supported: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>)"
                )));
            }
        },
    })
}

/// Parses one field: a comma-separated list of ranges. Empty list items are ignored (as
/// upstream, so `,` alone is a field that matches nothing).
fn parse_field(text: &str, field: Field) -> Result<u64, CronError> {
    let mut bits = 0;
    for item in text.split(',').filter(|item| !item.is_empty()) {
        bits |= parse_range(item, field)?;
    }
    Ok(bits)
}

fn parse_range(item: &str, field: Field) -> Result<u64, CronError> {
    let err = |message: String| CronError::field(field, item, message);
    let mut slash = item.split('/');
    let range = slash.next().unwrap_or_default();
    let step_text = slash.next();
    if slash.next().is_some() {
        return Err(err(format!("{item:?} has too many slashes")));
    }
    let mut hyphen = range.split('-');
    let low = hyphen.next().unwrap_or_default();
    let high = hyphen.next();
    let (start, mut end, mut star) = if low == "*" || low == "?" {
        // Upstream ignores anything after the hyphen of a star.
        (i64::from(field.min()), i64::from(field.max()), true)
    } else {
        if hyphen.next().is_some() {
            return Err(err(format!("{item:?} has too many hyphens")));
        }
        let start = parse_value(low, field, item)?;
        let end = match high {
            Some(high) => parse_value(high, field, item)?,
            None => start,
        };
        (start, end, false)
    };
    let step = match step_text {
        None => 1,
        Some(step_text) => {
            let step = parse_number(step_text)
                .ok_or_else(|| err(format!("step {step_text:?} in {item:?} is not a number")))?;
            // `N/step` means `N-max/step`.
            if high.is_none() {
                end = i64::from(field.max());
            }
            if step > 1 {
                star = false;
            }
            step
        }
    };
    if start < i64::from(field.min()) {
        return Err(err(format!("{start} is below the minimum {}", field.min())));
    }
    if end > i64::from(field.max()) {
        return Err(err(match field {
            Field::DayOfWeek => format!(
                "{end} is above the maximum {} (Sunday is 0; 7 is not accepted)",
                field.max()
            ),
            _ => format!("{end} is above the maximum {}", field.max()),
        }));
    }
    if start > end {
        return Err(err(format!(
            "range {item:?} starts at {start}, after its end {end}"
        )));
    }
    if step == 0 {
        return Err(err(format!("step of {item:?} must be a positive number")));
    }
    // In range, so the conversions are exact.
    let bits = range_bits(
        u32::try_from(start).unwrap_or_default(),
        u32::try_from(end).unwrap_or_default(),
        u64::try_from(step).unwrap_or(u64::MAX),
    );
    Ok(if star { bits | STAR } else { bits })
}

/// Parses a value: a month or day name (in those fields, any case) or a number.
fn parse_value(text: &str, field: Field, item: &str) -> Result<i64, CronError> {
    let names: &[&str] = match field {
        Field::Month => &MONTHS,
        Field::DayOfWeek => &DAYS,
        _ => &[],
    };
    let lower = text.to_ascii_lowercase();
    if let Some(pos) = names.iter().position(|n| *n == lower) {
        let pos = i64::try_from(pos).unwrap_or_default();
        return Ok(if field == Field::Month { pos + 1 } else { pos });
    }
    parse_number(text).ok_or_else(|| {
        let what = match field {
            Field::Month => "a number or a month name (jan-dec)",
            Field::DayOfWeek => "a number or a day name (sun-sat)",
            _ => "a number",
        };
        if text.is_empty() {
            CronError::field(field, item, format!("{item:?} is missing a value"))
        } else {
            CronError::field(field, item, format!("{text:?} is not {what}"))
        }
    })
}

/// A non-negative integer the way Go's `strconv.Atoi` reads it (optional `+`, digits, within
/// 64 bits); a negative number cannot reach here (its `-` splits the range).
fn parse_number(text: &str) -> Option<i64> {
    let digits = text.strip_prefix('+').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// The bits `start, start+step, …` up to `end` (all below 64).
fn range_bits(start: u32, end: u32, step: u64) -> u64 {
    let mut bits = 0u64;
    let mut value = u64::from(start);
    while value <= u64::from(end) {
        bits |= 1 << value;
        value = match value.checked_add(step) {
            Some(v) => v,
            None => break,
        };
    }
    bits
}
