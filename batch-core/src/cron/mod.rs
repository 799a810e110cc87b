//! Cron schedules: parsing, next fire times in IANA time zones, and the DST policy.
//!
//! A [`Schedule`] accepts exactly what a Kubernetes CronJob accepts (five fields, `*` and
//! `?`, lists, ranges, steps, month and day names in any case, day-of-week 0–6 with 0 =
//! Sunday, the macros `@yearly @annually @monthly @weekly @daily @midnight @hourly`, and
//! `@every <duration>`), and rejects everything else with an error naming the field and the
//! token. Day matching follows Kubernetes: when the day-of-month or the day-of-week field is
//! a star (`*`, `?`, `*/1`, or a list containing one), a day must match both; otherwise it
//! may match either (`0 0 13 * 5` runs on every Friday *and* every 13th).
//!
//! Wall-clock fields are matched in a time zone ([`chrono_tz::Tz`]; no zone means UTC). Where
//! daylight saving time makes a wall time happen zero or two times, the [`DstPolicy`]
//! decides:
//!
//! - [`DstPolicy::RunOnce`] (the default): a time in a skipped hour runs once, at the first
//!   instant after the gap; a time in a repeated hour runs once, at its first occurrence.
//! - [`DstPolicy::Kubernetes`]: as upstream — skipped times do not run, repeated times run
//!   twice. The fire times are exactly the instants whose local wall time matches.
//!
//! Fire times are always strictly increasing. A search looks at most 5 years ahead (as
//! upstream): a schedule that never fires there, such as `0 0 30 2 *`, yields `None`.
//!
//! ```
//! use batch_core::cron::{DstPolicy, Schedule};
//! use chrono::{TimeZone, Utc};
//!
//! let schedule = Schedule::parse("30 2 * * *").unwrap();
//! let zone: chrono_tz::Tz = "America/New_York".parse().unwrap();
//! let before_spring_forward = Utc.with_ymd_and_hms(2024, 3, 10, 5, 0, 0).unwrap();
//!
//! // 02:30 does not exist on 2024-03-10 in New York: run once when the gap ends (03:00 EDT).
//! let fire = schedule.next_fire(before_spring_forward, zone, DstPolicy::RunOnce).unwrap();
//! assert_eq!(fire.time, Utc.with_ymd_and_hms(2024, 3, 10, 7, 0, 0).unwrap());
//!
//! // Upstream Kubernetes skips that day.
//! let fire = schedule.next_fire(before_spring_forward, zone, DstPolicy::Kubernetes).unwrap();
//! assert_eq!(fire.time, Utc.with_ymd_and_hms(2024, 3, 11, 6, 30, 0).unwrap());
//!
//! assert_eq!(
//!     Schedule::parse("60 * * * *").unwrap_err().to_string(),
//!     "minute: 60 is above the maximum 59"
//! );
//! ```

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

mod duration;
mod parse;

pub(crate) use duration::parse_go_duration;
use parse::{Fields, STAR};

/// How far ahead (or back) a search for a fire time looks, in years, as upstream.
pub const SEARCH_YEARS: i32 = 5;

/// Above this many missed fire times, [`MostRecent::too_many_missed`] is true (the
/// CronJob controller then warns `TooManyMissedTimes`).
pub const MISSED_TIMES_LIMIT: u32 = 100;

/// The largest change of UTC offset at one transition that the search allows for (real
/// daylight-saving changes are at most 2 hours).
const MAX_SHIFT: Duration = Duration::hours(3);

/// One of the five fields of a cron expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// Minute, 0–59.
    Minute,
    /// Hour, 0–23.
    Hour,
    /// Day of the month, 1–31.
    DayOfMonth,
    /// Month, 1–12 or `jan`–`dec`.
    Month,
    /// Day of the week, 0–6 (0 = Sunday) or `sun`–`sat`.
    DayOfWeek,
}

impl Field {
    /// The field's name as used in error messages (`minute`, `day-of-month`, …).
    pub fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day-of-month",
            Field::Month => "month",
            Field::DayOfWeek => "day-of-week",
        }
    }

    /// The smallest value.
    pub fn min(self) -> u32 {
        match self {
            Field::DayOfMonth | Field::Month => 1,
            _ => 0,
        }
    }

    /// The largest value.
    pub fn max(self) -> u32 {
        match self {
            Field::Minute => 59,
            Field::Hour => 23,
            Field::DayOfMonth => 31,
            Field::Month => 12,
            Field::DayOfWeek => 6,
        }
    }
}

/// A schedule or time zone that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", self.place())]
#[non_exhaustive]
pub struct CronError {
    /// The field the problem is in; `None` for the schedule as a whole or the time zone.
    pub field: Option<Field>,
    /// The offending token (a field item, a descriptor, a zone name).
    pub token: String,
    /// What is wrong.
    pub message: String,
    zone: bool,
}

impl CronError {
    fn field(field: Field, token: &str, message: String) -> Self {
        CronError {
            field: Some(field),
            token: token.to_owned(),
            message,
            zone: false,
        }
    }

    fn schedule(message: String) -> Self {
        CronError {
            field: None,
            token: String::new(),
            message,
            zone: false,
        }
    }

    fn time_zone(name: &str, message: String) -> Self {
        CronError {
            field: None,
            token: name.to_owned(),
            message,
            zone: true,
        }
    }

    /// Whether the problem is the time zone (rather than the schedule).
    pub fn is_time_zone(&self) -> bool {
        self.zone
    }

    fn place(&self) -> &'static str {
        match (self.field, self.zone) {
            (Some(field), _) => field.name(),
            (None, true) => "time zone",
            (None, false) => "schedule",
        }
    }
}

/// Looks up an IANA time zone by its exact name (`Europe/Berlin`, `UTC`).
///
/// `Local` is refused: a schedule's meaning must not depend on the host.
///
/// # Errors
///
/// A [`CronError`] naming the zone when it is not in the time zone database.
pub fn parse_time_zone(name: &str) -> Result<Tz, CronError> {
    if name.eq_ignore_ascii_case("local") {
        return Err(CronError::time_zone(
            name,
            format!("{name:?} is not allowed: name an IANA zone such as \"Europe/Berlin\""),
        ));
    }
    Tz::from_str(name).map_err(|_| {
        CronError::time_zone(
            name,
            format!("unknown time zone {name:?} (expected an IANA name such as \"Europe/Berlin\")"),
        )
    })
}

/// What daylight saving time does to a wall time that happens zero or two times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DstPolicy {
    /// Run once, never skip: a time in a skipped hour runs at the first instant after the
    /// gap; a time in a repeated hour runs at its first occurrence only.
    #[default]
    RunOnce,
    /// Upstream Kubernetes: times in a skipped hour do not run; times in a repeated hour run
    /// twice.
    Kubernetes,
}

impl FromStr for DstPolicy {
    type Err = String;

    /// `run-once` or `kubernetes`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "run-once" => Ok(DstPolicy::RunOnce),
            "kubernetes" => Ok(DstPolicy::Kubernetes),
            other => Err(format!(
                "unknown DST policy {other:?} (expected \"run-once\" or \"kubernetes\")"
            )),
        }
    }
}

impl fmt::Display for DstPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DstPolicy::RunOnce => "run-once",
            DstPolicy::Kubernetes => "kubernetes",
        })
    }
}

/// How daylight saving time affected one fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DstEffect {
    /// None: the wall time happens exactly once.
    None,
    /// The scheduled wall time was skipped by the clock going forward; the run happens at
    /// the first instant after the gap ([`DstPolicy::RunOnce`]).
    Shifted,
    /// The scheduled wall time happens twice; this is its first occurrence and the second
    /// does not run ([`DstPolicy::RunOnce`]).
    Deduplicated,
    /// The scheduled wall time happens twice and runs both times ([`DstPolicy::Kubernetes`]);
    /// this is occurrence 1 or 2.
    Repeated(u8),
}

/// One fire time of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fire {
    /// When it runs.
    pub time: DateTime<Utc>,
    /// The local wall time that matched the schedule (for `@every`, the UTC time).
    pub scheduled: NaiveDateTime,
    /// What DST did to it.
    pub dst: DstEffect,
}

/// The most recent fire time at or before "now" (see [`Schedule::most_recent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MostRecent {
    /// The most recent fire time.
    pub time: DateTime<Utc>,
    /// How many fire times there were since the reference, counting this one; capped at
    /// [`MISSED_TIMES_LIMIT`]` + 1`.
    pub missed: u32,
}

impl MostRecent {
    /// Whether more than [`MISSED_TIMES_LIMIT`] fire times were missed.
    pub fn too_many_missed(&self) -> bool {
        self.missed > MISSED_TIMES_LIMIT
    }
}

/// What a schedule is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Spec {
    /// Five fields (also what the macros stand for).
    Cron(Fields),
    /// `@every`: a fixed period in whole seconds (at least 1), counted from the reference.
    Every(u64),
}

/// A parsed cron schedule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Schedule {
    source: String,
    zone: Option<Tz>,
    spec: Spec,
}

impl FromStr for Schedule {
    type Err = CronError;
    fn from_str(s: &str) -> Result<Self, CronError> {
        Schedule::parse(s)
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Schedule {
    /// Parses a schedule as a Kubernetes CronJob's `spec.schedule`.
    ///
    /// A `TZ=<zone> ` or `CRON_TZ=<zone> ` prefix is understood (the CronJob controller
    /// honours it at run time, though validation forbids it in new objects); see
    /// [`Schedule::zone`].
    ///
    /// # Errors
    ///
    /// A [`CronError`] naming the field and the token for anything Kubernetes rejects.
    pub fn parse(text: &str) -> Result<Schedule, CronError> {
        if text.is_empty() {
            return Err(CronError::schedule("the schedule is empty".to_owned()));
        }
        let mut zone = None;
        let mut spec_text = text;
        if text.starts_with("TZ=") || text.starts_with("CRON_TZ=") {
            let Some((prefix, rest)) = text.split_once(' ') else {
                return Err(CronError::schedule(format!(
                    "{text:?}: a TZ= prefix must be followed by a space and the schedule"
                )));
            };
            let name = prefix.split_once('=').map_or("", |(_, name)| name);
            zone = Some(if name.is_empty() {
                chrono_tz::UTC
            } else {
                parse_time_zone(name)?
            });
            spec_text = rest.trim();
        }
        Ok(Schedule {
            source: text.to_owned(),
            zone,
            spec: parse::parse_spec(spec_text)?,
        })
    }

    /// The schedule as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The zone of a `TZ=`/`CRON_TZ=` prefix, if the schedule has one. It takes precedence
    /// over the zone passed to the search functions (as upstream).
    pub fn zone(&self) -> Option<Tz> {
        self.zone
    }

    /// Whether a local wall time (whole minute) matches the five fields. Always false for
    /// `@every`, which follows no clock.
    pub fn matches(&self, wall: NaiveDateTime) -> bool {
        match self.spec {
            Spec::Every(_) => false,
            Spec::Cron(fields) => {
                wall.second() == 0
                    && wall.nanosecond() == 0
                    && fields.minute & (1 << wall.minute()) != 0
                    && fields.hour & (1 << wall.hour()) != 0
                    && fields.month & (1 << wall.month()) != 0
                    && fields.day_matches(wall.day(), wall.weekday().num_days_from_sunday())
            }
        }
    }

    /// Whether this is an `@every` schedule, whose fire times count from a reference time
    /// instead of following the clock.
    pub fn is_every(&self) -> bool {
        matches!(self.spec, Spec::Every(_))
    }

    /// The first fire time strictly after `after`, or `None` if there is none within
    /// [`SEARCH_YEARS`] years.
    ///
    /// For `@every`, the next fire time is `after` rounded down to the second plus the
    /// period (as upstream).
    pub fn next_fire(&self, after: DateTime<Utc>, tz: Tz, policy: DstPolicy) -> Option<Fire> {
        let tz = self.zone.unwrap_or(tz);
        match self.spec {
            Spec::Every(seconds) => {
                let time = truncate_seconds(after)
                    .checked_add_signed(Duration::seconds(i64::try_from(seconds).ok()?))?;
                Some(Fire {
                    time,
                    scheduled: time.naive_utc(),
                    dst: DstEffect::None,
                })
            }
            Spec::Cron(fields) => Search { fields, tz, policy }.next(after),
        }
    }

    /// The first fire time strictly after `after` (see [`Schedule::next_fire`]).
    pub fn next_after(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        policy: DstPolicy,
    ) -> Option<DateTime<Utc>> {
        self.next_fire(after, tz, policy).map(|f| f.time)
    }

    /// The fire times after `after`, in order (strictly increasing).
    pub fn fires_after(
        &self,
        after: DateTime<Utc>,
        tz: Tz,
        policy: DstPolicy,
    ) -> impl Iterator<Item = Fire> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let fire = self.next_fire(cursor, tz, policy)?;
            cursor = fire.time;
            Some(fire)
        })
    }

    /// The last fire time at or before `at`, or `None` if there is none within
    /// [`SEARCH_YEARS`] years before it. Not defined for `@every` (which has no fixed
    /// grid): returns `None`; use [`Schedule::most_recent`].
    pub fn prev_fire(&self, at: DateTime<Utc>, tz: Tz, policy: DstPolicy) -> Option<Fire> {
        let tz = self.zone.unwrap_or(tz);
        match self.spec {
            Spec::Every(_) => None,
            Spec::Cron(fields) => Search { fields, tz, policy }.prev(at),
        }
    }

    /// The most recent fire time in `(reference, now]`, exactly, with the number of fire
    /// times in that interval (capped at [`MISSED_TIMES_LIMIT`]` + 1`). This is what the
    /// CronJob controller needs: `reference` is the last schedule time (or the creation
    /// time), and only the most recent missed time is ever started.
    ///
    /// Unlike upstream's estimate from the gap between the next two runs, the answer is
    /// exact for irregular schedules too. It does not step through every missed time: a
    /// minutely schedule three years behind answers after counting at most 101 of them.
    pub fn most_recent(
        &self,
        reference: DateTime<Utc>,
        now: DateTime<Utc>,
        tz: Tz,
        policy: DstPolicy,
    ) -> Option<MostRecent> {
        if now <= reference {
            return None;
        }
        match self.spec {
            Spec::Every(seconds) => {
                let base = truncate_seconds(reference);
                let period = i64::try_from(seconds).ok()?;
                let elapsed = (now - base).num_seconds();
                let count = elapsed / period;
                if count < 1 {
                    return None;
                }
                let time =
                    base.checked_add_signed(Duration::seconds(count.checked_mul(period)?))?;
                let cap = i64::from(MISSED_TIMES_LIMIT) + 1;
                Some(MostRecent {
                    time,
                    missed: u32::try_from(count.min(cap)).unwrap_or(MISSED_TIMES_LIMIT + 1),
                })
            }
            Spec::Cron(_) => {
                let last = self.prev_fire(now, tz, policy)?;
                if last.time <= reference {
                    return None;
                }
                let missed = self
                    .fires_after(reference, tz, policy)
                    .take_while(|f| f.time <= now)
                    .take(usize::try_from(MISSED_TIMES_LIMIT + 1).unwrap_or(usize::MAX))
                    .count();
                Some(MostRecent {
                    time: last.time,
                    missed: u32::try_from(missed).unwrap_or(MISSED_TIMES_LIMIT + 1),
                })
            }
        }
    }
}

fn truncate_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// A fire time found by the search, with the UTC offset in force at it.
#[derive(Clone, Copy)]
struct Candidate {
    time: DateTime<Utc>,
    offset: i64,
    scheduled: NaiveDateTime,
    dst: DstEffect,
}

impl Candidate {
    fn fire(self) -> Fire {
        Fire {
            time: self.time,
            scheduled: self.scheduled,
            dst: self.dst,
        }
    }
}

/// The fire-time search of a five-field schedule in one zone under one policy.
///
/// The fire times are the instants the matching local wall times map to (per the policy).
/// Wall times are scanned in order; because the clock going back makes the mapping
/// non-monotonic around a transition, the scan starts up to [`MAX_SHIFT`] early and
/// continues up to [`MAX_SHIFT`] past the first candidate, but only when a transition is
/// that close — elsewhere the first matching wall time is the answer.
struct Search {
    fields: Fields,
    tz: Tz,
    policy: DstPolicy,
}

impl Search {
    /// UTC has no transitions: its wall time is the instant, with no zone lookup.
    fn is_utc(&self) -> bool {
        matches!(self.tz, Tz::UTC | Tz::Etc__UTC)
    }

    fn offset(&self, t: DateTime<Utc>) -> i64 {
        use chrono::Offset;
        if self.is_utc() {
            return 0;
        }
        i64::from(
            self.tz
                .offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc(),
        )
    }

    /// The local wall time at `t` and the UTC offset there, with one zone lookup.
    fn wall_and_offset(&self, t: DateTime<Utc>) -> (NaiveDateTime, i64) {
        let offset = self.offset(t);
        let wall = t
            .naive_utc()
            .checked_add_signed(Duration::seconds(offset))
            .unwrap_or_else(|| t.naive_utc());
        (wall, offset)
    }

    fn wall(&self, t: DateTime<Utc>) -> NaiveDateTime {
        self.wall_and_offset(t).0
    }

    /// Whether the UTC offset at `t` differs from `offset` (a transition lies between).
    fn offset_differs(&self, t: Option<DateTime<Utc>>, offset: i64) -> bool {
        t.is_none_or(|t| self.offset(t) != offset)
    }

    fn next(&self, after: DateTime<Utc>) -> Option<Fire> {
        self.next_candidate(after).map(Candidate::fire)
    }

    fn prev(&self, at: DateTime<Utc>) -> Option<Fire> {
        self.prev_candidate(at).map(Candidate::fire)
    }

    fn next_candidate(&self, after: DateTime<Utc>) -> Option<Candidate> {
        let (wall_after, offset_after) = self.wall_and_offset(after);
        let wall_after = floor_minute(wall_after);
        let limit_year = wall_after.year().saturating_add(SEARCH_YEARS);
        let look_back = self.offset_differs(after.checked_add_signed(MAX_SHIFT), offset_after);
        let mut w = if look_back {
            wall_after.checked_sub_signed(MAX_SHIFT)?
        } else {
            wall_after
        };
        let mut best: Option<Candidate> = None;
        let mut stop: Option<NaiveDateTime> = None;
        loop {
            let Some(found) = next_match(&self.fields, w, limit_year) else {
                return best;
            };
            w = found;
            if stop.is_some_and(|s| w > s) {
                return best;
            }
            for fire in self.resolve(w).into_iter().flatten() {
                if fire.time > after && best.is_none_or(|b| fire.time < b.time) {
                    best = Some(fire);
                    // Later wall times can only map to earlier instants if the clock went
                    // back shortly before this fire time.
                    let near =
                        self.offset_differs(fire.time.checked_sub_signed(MAX_SHIFT), fire.offset);
                    stop = Some(if near {
                        self.wall(fire.time)
                            .max(w)
                            .checked_add_signed(MAX_SHIFT)
                            .unwrap_or(w)
                    } else {
                        w
                    });
                }
            }
            let Some(following) = w.checked_add_signed(Duration::minutes(1)) else {
                return best;
            };
            w = following;
        }
    }

    fn prev_candidate(&self, at: DateTime<Utc>) -> Option<Candidate> {
        let (wall_at, offset_at) = self.wall_and_offset(at);
        let wall_at = floor_minute(wall_at);
        let limit_year = wall_at.year().saturating_sub(SEARCH_YEARS);
        let look_ahead = self.offset_differs(at.checked_sub_signed(MAX_SHIFT), offset_at);
        let mut w = if look_ahead {
            wall_at.checked_add_signed(MAX_SHIFT)?
        } else {
            wall_at
        };
        let mut best: Option<Candidate> = None;
        let mut stop: Option<NaiveDateTime> = None;
        loop {
            let Some(found) = prev_match(&self.fields, w, limit_year) else {
                return best;
            };
            w = found;
            if stop.is_some_and(|s| w < s) {
                return best;
            }
            for fire in self.resolve(w).into_iter().flatten() {
                if fire.time <= at && best.is_none_or(|b| fire.time > b.time) {
                    best = Some(fire);
                    let near =
                        self.offset_differs(fire.time.checked_add_signed(MAX_SHIFT), fire.offset);
                    stop = Some(if near {
                        w.checked_sub_signed(MAX_SHIFT).unwrap_or(w)
                    } else {
                        w
                    });
                }
            }
            let Some(earlier) = w.checked_sub_signed(Duration::minutes(1)) else {
                return best;
            };
            w = earlier;
        }
    }

    /// The fire times a matching wall time maps to under the policy (zero, one or two).
    fn resolve(&self, w: NaiveDateTime) -> [Option<Candidate>; 2] {
        use chrono::Offset;
        if self.is_utc() {
            let fire = Candidate {
                time: w.and_utc(),
                offset: 0,
                scheduled: w,
                dst: DstEffect::None,
            };
            return [Some(fire), None];
        }
        let fire = |dt: DateTime<Tz>, dst| {
            Some(Candidate {
                time: dt.with_timezone(&Utc),
                offset: i64::from(dt.offset().fix().local_minus_utc()),
                scheduled: w,
                dst,
            })
        };
        match (self.tz.from_local_datetime(&w), self.policy) {
            (chrono::LocalResult::Single(dt), _) => [fire(dt, DstEffect::None), None],
            (chrono::LocalResult::Ambiguous(first, _), DstPolicy::RunOnce) => {
                [fire(first, DstEffect::Deduplicated), None]
            }
            (chrono::LocalResult::Ambiguous(first, second), DstPolicy::Kubernetes) => [
                fire(first, DstEffect::Repeated(1)),
                fire(second, DstEffect::Repeated(2)),
            ],
            (chrono::LocalResult::None, DstPolicy::RunOnce) => [
                self.gap_end(w).map(|time| Candidate {
                    time,
                    offset: self.offset(time),
                    scheduled: w,
                    dst: DstEffect::Shifted,
                }),
                None,
            ],
            (chrono::LocalResult::None, DstPolicy::Kubernetes) => [None, None],
        }
    }

    /// The first instant after the gap that contains wall time `w`.
    fn gap_end(&self, w: NaiveDateTime) -> Option<DateTime<Utc>> {
        let exists = |t: NaiveDateTime| {
            !matches!(self.tz.from_local_datetime(&t), chrono::LocalResult::None)
        };
        // The first whole minute after the gap (gaps are at most a day long).
        let mut g = w;
        for _ in 0..=(26 * 60) {
            g = g.checked_add_signed(Duration::minutes(1))?;
            if exists(g) {
                // The gap ends within the minute before `g`: find its exact second.
                let (mut lo, mut hi) = (0i64, 60i64); // g - 60s + lo is in the gap, g - 60s + hi is not
                while hi - lo > 1 {
                    let mid = (lo + hi) / 2;
                    if g.checked_sub_signed(Duration::seconds(60 - mid))
                        .is_some_and(exists)
                    {
                        hi = mid;
                    } else {
                        lo = mid;
                    }
                }
                let end = g.checked_sub_signed(Duration::seconds(60 - hi))?;
                return self
                    .tz
                    .from_local_datetime(&end)
                    .earliest()
                    .map(|dt| dt.with_timezone(&Utc));
            }
        }
        None
    }
}

fn floor_minute(t: NaiveDateTime) -> NaiveDateTime {
    t.with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(t)
}

fn at(date: NaiveDate, hour: u32, minute: u32) -> Option<NaiveDateTime> {
    date.and_hms_opt(hour, minute, 0)
}

/// The lowest set bit of `mask` at or above `from` (ignoring the star bit), if any.
fn next_bit(mask: u64, from: u32) -> Option<u32> {
    let bits = (mask & !STAR).checked_shr(from)?;
    (bits != 0).then(|| from + bits.trailing_zeros())
}

/// The highest set bit of `mask` at or below `upto` (ignoring the star bit), if any.
fn prev_bit(mask: u64, upto: u32) -> Option<u32> {
    let below = if upto >= 62 {
        mask & !STAR
    } else {
        mask & ((2u64 << upto) - 1)
    };
    (below != 0).then(|| 63 - below.leading_zeros())
}

/// The first wall time at or after `t` (whole minutes) matching the fields, up to the end
/// of `limit_year`.
fn next_match(fields: &Fields, t: NaiveDateTime, limit_year: i32) -> Option<NaiveDateTime> {
    let mut date = t.date();
    let (mut hour, mut minute) = (t.hour(), t.minute());
    loop {
        if date.year() > limit_year {
            return None;
        }
        if fields.month & (1 << date.month()) == 0 {
            date = match next_bit(fields.month, date.month() + 1).filter(|m| *m <= 12) {
                Some(m) => NaiveDate::from_ymd_opt(date.year(), m, 1)?,
                None => NaiveDate::from_ymd_opt(
                    date.year().checked_add(1)?,
                    next_bit(fields.month, 1).filter(|m| *m <= 12)?,
                    1,
                )?,
            };
            (hour, minute) = (0, 0);
            continue;
        }
        match fields.next_day(
            date.day(),
            date.weekday().num_days_from_sunday(),
            days_in_month(date.year(), date.month())?,
        ) {
            Some(day) if day == date.day() => {}
            Some(day) => {
                date = date.with_day(day)?;
                (hour, minute) = (0, 0);
            }
            None => {
                date = first_of_next_month(date)?;
                (hour, minute) = (0, 0);
                continue;
            }
        }
        match next_bit(fields.hour, hour).filter(|h| *h <= 23) {
            Some(h) if h == hour => {}
            Some(h) => {
                (hour, minute) = (h, 0);
            }
            None => {
                date = date.succ_opt()?;
                (hour, minute) = (0, 0);
                continue;
            }
        }
        match next_bit(fields.minute, minute).filter(|m| *m <= 59) {
            Some(m) => return at(date, hour, m),
            None => {
                if hour == 23 {
                    date = date.succ_opt()?;
                    (hour, minute) = (0, 0);
                } else {
                    (hour, minute) = (hour + 1, 0);
                }
            }
        }
    }
}

/// The last wall time at or before `t` (whole minutes) matching the fields, down to the
/// start of `limit_year`.
fn prev_match(fields: &Fields, t: NaiveDateTime, limit_year: i32) -> Option<NaiveDateTime> {
    let mut date = t.date();
    let (mut hour, mut minute) = (t.hour(), t.minute());
    loop {
        if date.year() < limit_year {
            return None;
        }
        if fields.month & (1 << date.month()) == 0 {
            let (year, month) = match prev_bit(fields.month, date.month() - 1).filter(|m| *m >= 1) {
                Some(m) => (date.year(), m),
                None => (
                    date.year().checked_sub(1)?,
                    prev_bit(fields.month, 12).filter(|m| *m >= 1)?,
                ),
            };
            date = last_day_of_month(year, month)?;
            (hour, minute) = (23, 59);
            continue;
        }
        match fields.prev_day(date.day(), date.weekday().num_days_from_sunday()) {
            Some(day) if day == date.day() => {}
            Some(day) => {
                date = date.with_day(day)?;
                (hour, minute) = (23, 59);
            }
            None => {
                // The last day of the previous month.
                date = date.with_day(1)?.pred_opt()?;
                (hour, minute) = (23, 59);
                continue;
            }
        }
        match prev_bit(fields.hour, hour) {
            Some(h) if h == hour => {}
            Some(h) => {
                (hour, minute) = (h, 59);
            }
            None => {
                date = date.pred_opt()?;
                (hour, minute) = (23, 59);
                continue;
            }
        }
        match prev_bit(fields.minute, minute) {
            Some(m) => return at(date, hour, m),
            None => {
                if hour == 0 {
                    date = date.pred_opt()?;
                    (hour, minute) = (23, 59);
                } else {
                    (hour, minute) = (hour - 1, 59);
                }
            }
        }
    }
}

fn first_of_next_month(date: NaiveDate) -> Option<NaiveDate> {
    if date.month() == 12 {
        NaiveDate::from_ymd_opt(date.year().checked_add(1)?, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(date.year(), date.month() + 1, 1)
    }
}

fn days_in_month(year: i32, month: u32) -> Option<u32> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => Some(31),
        4 | 6 | 9 | 11 => Some(30),
        2 => Some(if leap { 29 } else { 28 }),
        _ => None,
    }
}

fn last_day_of_month(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year.checked_add(1)?, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}
