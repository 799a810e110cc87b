//! The cron evaluator: every form of spec §4.2, every DST case under both policies, the
//! exact most-recent computation, and properties against brute-force oracles.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::cron::{DstEffect, DstPolicy, Schedule, parse_time_zone};
use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use proptest::prelude::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn zone(name: &str) -> Tz {
    parse_time_zone(name).unwrap()
}

fn fires(expr: &str, tz: &str, after: &str, policy: DstPolicy, n: usize) -> Vec<String> {
    Schedule::parse(expr)
        .unwrap()
        .fires_after(utc(after), zone(tz), policy)
        .take(n)
        .map(|f| f.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .collect()
}

fn run_once(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    fires(expr, tz, after, DstPolicy::RunOnce, n)
}

fn kubernetes(expr: &str, tz: &str, after: &str, n: usize) -> Vec<String> {
    fires(expr, tz, after, DstPolicy::Kubernetes, n)
}

fn error(expr: &str) -> String {
    Schedule::parse(expr).unwrap_err().to_string()
}

// ---------------------------------------------------------------- syntax (spec §4.2)

#[test]
fn every_field_form_is_accepted() {
    for expr in [
        "* * * * *",
        "? ? ? ? ?",
        "0,15,30,45 * * * *",
        "0-30 * * * *",
        "*/15 * * * *",
        "5/15 * * * *",
        "1-30/5 * * * *",
        "0 0 * JAN-mar MON-fri",
        "0 0 * jan,Feb,MAR sun,SAT",
        "0 0 1,15 * *",
        "0 0 * * 0-6",
        "+5 05 * * *",
        "*-5 * * * *",
        "0 0 1,,15 * *",
        "  0   9 * * 1-5  ",
        "0\t9\t*\t*\t1-5",
    ] {
        assert!(
            Schedule::parse(expr).is_ok(),
            "{expr}: {:?}",
            Schedule::parse(expr)
        );
    }
}

#[test]
fn every_macro_means_its_five_fields() {
    let after = "2024-05-15T10:20:00Z";
    for (mac, equivalent) in [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ] {
        assert_eq!(
            run_once(mac, "UTC", after, 3),
            run_once(equivalent, "UTC", after, 3),
            "{mac}"
        );
    }
}

#[test]
fn every_runs_on_a_fixed_period_from_the_reference() {
    assert_eq!(
        run_once("@every 1h30m", "UTC", "2024-01-01T00:00:10Z", 2),
        ["2024-01-01T01:30:10Z", "2024-01-01T03:00:10Z"]
    );
    // Rounded down to whole seconds, at least one second (as upstream).
    assert_eq!(
        run_once("@every 1500ms", "UTC", "2024-01-01T00:00:00Z", 2),
        ["2024-01-01T00:00:01Z", "2024-01-01T00:00:02Z"]
    );
    assert_eq!(
        run_once("@every -5m", "UTC", "2024-01-01T00:00:00Z", 1),
        ["2024-01-01T00:00:01Z"]
    );
    assert!(Schedule::parse("@every 90s").unwrap().is_every());
}

#[test]
fn rejected_schedules_name_the_field_and_the_token() {
    for (expr, message) in [
        ("60 * * * *", "minute: 60 is above the maximum 59"),
        ("* 24 * * *", "hour: 24 is above the maximum 23"),
        ("* * 0 * *", "day-of-month: 0 is below the minimum 1"),
        ("* * 32 * *", "day-of-month: 32 is above the maximum 31"),
        ("* * * 13 *", "month: 13 is above the maximum 12"),
        ("* * * 0 *", "month: 0 is below the minimum 1"),
        (
            "* * * * 7",
            "day-of-week: 7 is above the maximum 6 (Sunday is 0; 7 is not accepted)",
        ),
        (
            "*/0 * * * *",
            "minute: step of \"*/0\" must be a positive number",
        ),
        (
            "5-3 * * * *",
            "minute: range \"5-3\" starts at 5, after its end 3",
        ),
        ("1-2-3 * * * *", "minute: \"1-2-3\" has too many hyphens"),
        ("*/2/3 * * * *", "minute: \"*/2/3\" has too many slashes"),
        (
            "* * * foo *",
            "month: \"foo\" is not a number or a month name (jan-dec)",
        ),
        (
            "* * * * funday",
            "day-of-week: \"funday\" is not a number or a day name (sun-sat)",
        ),
        ("mon * * * *", "minute: \"mon\" is not a number"),
        ("-1 * * * *", "minute: \"-1\" is missing a value"),
        ("5- * * * *", "minute: \"5-\" is missing a value"),
        (
            "*/x * * * *",
            "minute: step \"x\" in \"*/x\" is not a number",
        ),
        ("0 0 L * *", "day-of-month: \"L\" is not a number"),
        (
            "0 0 * * 1#2",
            "day-of-week: \"1#2\" is not a number or a day name (sun-sat)",
        ),
        ("0 0 1W * *", "day-of-month: \"1W\" is not a number"),
        (
            "99999999999999999999 * * * *",
            "minute: \"99999999999999999999\" is not a number",
        ),
    ] {
        assert_eq!(error(expr), message, "{expr}");
    }
    for (expr, needle) in [
        (
            "* * * *",
            "expected exactly 5 fields (minute hour day-of-month month day-of-week), found 4",
        ),
        ("0 * * * * *", "found 6"),
        ("", "the schedule is empty"),
        ("@reboot", "unrecognized descriptor \"@reboot\""),
        ("@Daily", "unrecognized descriptor"),
        ("@every", "unrecognized descriptor"),
        ("@every 5", "@every: invalid duration \"5\""),
        ("@every 1d", "@every: invalid duration \"1d\""),
        (
            "TZ=Nowhere/City 0 * * * *",
            "time zone: unknown time zone \"Nowhere/City\"",
        ),
        ("TZ=UTC", "TZ= prefix must be followed by a space"),
    ] {
        let e = error(expr);
        assert!(e.contains(needle), "{expr}: {e}");
    }
}

#[test]
fn a_tz_prefix_selects_the_zone() {
    let s = Schedule::parse("TZ=Asia/Tokyo 0 9 * * *").unwrap();
    assert_eq!(s.zone(), Some(zone("Asia/Tokyo")));
    assert_eq!(
        s.next_after(
            utc("2024-01-01T00:00:00Z"),
            chrono_tz::UTC,
            DstPolicy::RunOnce
        ),
        Some(utc("2024-01-02T00:00:00Z"))
    );
    assert!(Schedule::parse("CRON_TZ=UTC 0 9 * * *").is_ok());
}

#[test]
fn unknown_and_local_zones_are_refused() {
    assert!(parse_time_zone("Europe/Berlin").is_ok());
    assert!(parse_time_zone("UTC").is_ok());
    for bad in ["Local", "local", "Mars/Olympus", "", "europe/berlin"] {
        let e = parse_time_zone(bad).unwrap_err();
        assert!(e.is_time_zone(), "{bad}");
        assert!(e.to_string().starts_with("time zone: "), "{e}");
    }
}

// ---------------------------------------------------------------- day matching

#[test]
fn day_of_month_and_day_of_week_are_ored_when_neither_is_a_star() {
    // Every Friday and every 13th (2024-10-13 is a Sunday).
    assert_eq!(
        run_once("0 0 13 * 5", "UTC", "2024-09-30T00:00:00Z", 4),
        [
            "2024-10-04T00:00:00Z",
            "2024-10-11T00:00:00Z",
            "2024-10-13T00:00:00Z",
            "2024-10-18T00:00:00Z"
        ]
    );
    // An explicit full range is not a star: every day.
    assert_eq!(
        run_once("0 0 1-31 * MON", "UTC", "2024-10-01T12:00:00Z", 3).len(),
        3
    );
    assert_eq!(
        run_once("0 0 1-31 * MON", "UTC", "2024-10-01T12:00:00Z", 2),
        ["2024-10-02T00:00:00Z", "2024-10-03T00:00:00Z"]
    );
    // `*/2` is not a star: odd days or Mondays.
    assert_eq!(
        run_once("0 0 */2 * 1", "UTC", "2024-10-01T12:00:00Z", 4),
        [
            "2024-10-03T00:00:00Z",
            "2024-10-05T00:00:00Z",
            "2024-10-07T00:00:00Z",
            "2024-10-09T00:00:00Z"
        ]
    );
}

#[test]
fn a_star_day_field_means_both_must_match() {
    // `*`, `?`, `*/1` and a list containing a star all count as a star: Mondays only.
    for expr in [
        "0 0 * * MON",
        "0 0 ? * MON",
        "0 0 */1 * MON",
        "0 0 ?,5 * mon",
    ] {
        assert_eq!(
            run_once(expr, "UTC", "2024-10-01T12:00:00Z", 2),
            ["2024-10-07T00:00:00Z", "2024-10-14T00:00:00Z"],
            "{expr}"
        );
    }
    // Weekdays at 09:00: Monday to Friday, not Sunday to Thursday.
    assert_eq!(
        run_once("0 9 * * 1-5", "UTC", "2024-10-04T10:00:00Z", 2),
        ["2024-10-07T09:00:00Z", "2024-10-08T09:00:00Z"]
    );
}

// ---------------------------------------------------------------- calendar

#[test]
fn leap_days_month_ends_and_impossible_dates() {
    assert_eq!(
        run_once("0 0 29 2 *", "UTC", "2025-01-01T00:00:00Z", 2),
        ["2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"]
    );
    assert_eq!(
        run_once("0 0 31 * *", "UTC", "2024-04-01T00:00:00Z", 3),
        [
            "2024-05-31T00:00:00Z",
            "2024-07-31T00:00:00Z",
            "2024-08-31T00:00:00Z"
        ]
    );
    assert_eq!(
        run_once("59 23 31 12 *", "UTC", "2024-12-31T23:59:00Z", 1),
        ["2025-12-31T23:59:00Z"]
    );
    // Never fires: the search ends within 5 years and says so.
    for never in [
        "0 0 30 2 *",
        "59 23 31 2 *",
        "0 0 31 4,6,9,11 *",
        ", * * * *",
    ] {
        let s = Schedule::parse(never).unwrap();
        assert_eq!(
            s.next_fire(
                utc("2024-01-01T00:00:00Z"),
                chrono_tz::UTC,
                DstPolicy::RunOnce
            ),
            None,
            "{never}"
        );
        assert_eq!(
            s.prev_fire(
                utc("2024-01-01T00:00:00Z"),
                chrono_tz::UTC,
                DstPolicy::RunOnce
            ),
            None,
            "{never}"
        );
    }
}

#[test]
fn seconds_of_the_reference_are_respected_strictly() {
    assert_eq!(
        run_once("* * * * *", "UTC", "2024-01-01T00:00:00Z", 1),
        ["2024-01-01T00:01:00Z"]
    );
    assert_eq!(
        run_once("* * * * *", "UTC", "2024-01-01T00:00:59.999Z", 1),
        ["2024-01-01T00:01:00Z"]
    );
}

// ---------------------------------------------------------------- DST (decisions §2)

#[test]
fn new_york_spring_forward() {
    let after = "2024-03-10T05:00:00Z";
    assert_eq!(
        run_once("30 2 * * *", "America/New_York", after, 2),
        ["2024-03-10T07:00:00Z", "2024-03-11T06:30:00Z"]
    );
    assert_eq!(
        kubernetes("30 2 * * *", "America/New_York", after, 1),
        ["2024-03-11T06:30:00Z"]
    );
}

#[test]
fn new_york_fall_back() {
    let after = "2024-11-03T04:00:00Z";
    assert_eq!(
        kubernetes("30 1 * * *", "America/New_York", after, 3),
        [
            "2024-11-03T05:30:00Z",
            "2024-11-03T06:30:00Z",
            "2024-11-04T06:30:00Z"
        ]
    );
    assert_eq!(
        run_once("30 1 * * *", "America/New_York", after, 2),
        ["2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"]
    );
}

#[test]
fn berlin_fall_back_issue_121594() {
    let after = "2023-10-28T12:00:00Z";
    assert_eq!(
        kubernetes("0 2 * * *", "Europe/Berlin", after, 3),
        [
            "2023-10-29T00:00:00Z",
            "2023-10-29T01:00:00Z",
            "2023-10-30T01:00:00Z"
        ]
    );
    assert_eq!(
        run_once("0 2 * * *", "Europe/Berlin", after, 2),
        ["2023-10-29T00:00:00Z", "2023-10-30T01:00:00Z"]
    );
}

#[test]
fn havana_changes_at_midnight() {
    // 2024-03-10 00:00 CST -> 01:00 CDT: midnight does not exist.
    assert_eq!(
        run_once("0 0 * * *", "America/Havana", "2024-03-09T12:00:00Z", 2),
        ["2024-03-10T05:00:00Z", "2024-03-11T04:00:00Z"]
    );
    assert_eq!(
        kubernetes("0 0 * * *", "America/Havana", "2024-03-09T12:00:00Z", 1),
        ["2024-03-11T04:00:00Z"]
    );
    // 2024-11-03 01:00 CDT -> 00:00 CST: midnight happens twice.
    assert_eq!(
        run_once("0 0 * * *", "America/Havana", "2024-11-02T12:00:00Z", 2),
        ["2024-11-03T04:00:00Z", "2024-11-04T05:00:00Z"]
    );
    assert_eq!(
        kubernetes("0 0 * * *", "America/Havana", "2024-11-02T12:00:00Z", 3),
        [
            "2024-11-03T04:00:00Z",
            "2024-11-03T05:00:00Z",
            "2024-11-04T05:00:00Z"
        ]
    );
}

#[test]
fn santiago_changes_at_midnight_between_saturday_and_sunday() {
    // 2024-04-07 00:00 -03 -> 2024-04-06 23:00 -04: Saturday 23:xx happens twice.
    assert_eq!(
        kubernetes("30 23 * * *", "America/Santiago", "2024-04-06T12:00:00Z", 2),
        ["2024-04-07T02:30:00Z", "2024-04-07T03:30:00Z"]
    );
    assert_eq!(
        run_once("30 23 * * *", "America/Santiago", "2024-04-06T12:00:00Z", 2),
        ["2024-04-07T02:30:00Z", "2024-04-08T03:30:00Z"]
    );
    // 2024-09-08 00:00 -04 -> 01:00 -03.
    assert_eq!(
        run_once("30 0 * * *", "America/Santiago", "2024-09-07T12:00:00Z", 2),
        ["2024-09-08T04:00:00Z", "2024-09-09T03:30:00Z"]
    );
    assert_eq!(
        kubernetes("30 0 * * *", "America/Santiago", "2024-09-07T12:00:00Z", 1),
        ["2024-09-09T03:30:00Z"]
    );
}

#[test]
fn lord_howe_changes_by_thirty_minutes() {
    // 2024-10-06 02:00 +10:30 -> 02:30 +11: 02:15 does not exist.
    assert_eq!(
        run_once(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2024-10-05T00:00:00Z",
            2
        ),
        ["2024-10-05T15:30:00Z", "2024-10-06T15:15:00Z"]
    );
    assert_eq!(
        kubernetes(
            "15 2 * * *",
            "Australia/Lord_Howe",
            "2024-10-05T00:00:00Z",
            1
        ),
        ["2024-10-06T15:15:00Z"]
    );
    // 2024-04-07 02:00 +11 -> 01:30 +10:30: 01:45 happens twice.
    assert_eq!(
        kubernetes(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2024-04-06T00:00:00Z",
            2
        ),
        ["2024-04-06T14:45:00Z", "2024-04-06T15:15:00Z"]
    );
    assert_eq!(
        run_once(
            "45 1 * * *",
            "Australia/Lord_Howe",
            "2024-04-06T00:00:00Z",
            2
        ),
        ["2024-04-06T14:45:00Z", "2024-04-07T15:15:00Z"]
    );
}

#[test]
fn hourly_schedules_across_transitions() {
    // Spring: upstream keeps every absolute hour; run-once runs the skipped 02:00 at 03:00
    // EDT, together with 03:00 itself (once).
    let spring = "2024-03-10T05:30:00Z";
    assert_eq!(
        kubernetes("0 * * * *", "America/New_York", spring, 3),
        [
            "2024-03-10T06:00:00Z",
            "2024-03-10T07:00:00Z",
            "2024-03-10T08:00:00Z"
        ]
    );
    assert_eq!(
        run_once("0 * * * *", "America/New_York", spring, 3),
        [
            "2024-03-10T06:00:00Z",
            "2024-03-10T07:00:00Z",
            "2024-03-10T08:00:00Z"
        ]
    );
    // Fall: upstream runs 01:00 twice; run-once runs it once.
    let fall = "2024-11-03T04:30:00Z";
    assert_eq!(
        kubernetes("0 * * * *", "America/New_York", fall, 3),
        [
            "2024-11-03T05:00:00Z",
            "2024-11-03T06:00:00Z",
            "2024-11-03T07:00:00Z"
        ]
    );
    assert_eq!(
        run_once("0 * * * *", "America/New_York", fall, 2),
        ["2024-11-03T05:00:00Z", "2024-11-03T07:00:00Z"]
    );
}

#[test]
fn fires_report_what_dst_did() {
    let ny = zone("America/New_York");
    let s = Schedule::parse("30 2 * * *").unwrap();
    let f = s
        .next_fire(utc("2024-03-10T05:00:00Z"), ny, DstPolicy::RunOnce)
        .unwrap();
    assert_eq!(f.dst, DstEffect::Shifted);
    assert_eq!(f.scheduled.to_string(), "2024-03-10 02:30:00");
    let s = Schedule::parse("30 1 * * *").unwrap();
    let f = s
        .next_fire(utc("2024-11-03T04:00:00Z"), ny, DstPolicy::RunOnce)
        .unwrap();
    assert_eq!(f.dst, DstEffect::Deduplicated);
    let k: Vec<DstEffect> = s
        .fires_after(utc("2024-11-03T04:00:00Z"), ny, DstPolicy::Kubernetes)
        .take(3)
        .map(|f| f.dst)
        .collect();
    assert_eq!(
        k,
        [
            DstEffect::Repeated(1),
            DstEffect::Repeated(2),
            DstEffect::None
        ]
    );
}

#[test]
fn starting_inside_a_repeated_hour() {
    // 06:10Z is 01:10 EST, the second pass of 01:xx in New York.
    assert_eq!(
        kubernetes("30 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", 1),
        ["2024-11-03T06:30:00Z"]
    );
    // Run-once already ran 01:30 at its first occurrence (05:30Z).
    assert_eq!(
        run_once("30 1 * * *", "America/New_York", "2024-11-03T06:10:00Z", 1),
        ["2024-11-04T06:30:00Z"]
    );
    // 05:50Z is 01:50 EDT: the next instants whose wall time is 01:xx are the second pass.
    assert_eq!(
        kubernetes(
            "*/15 1 * * *",
            "America/New_York",
            "2024-11-03T05:50:00Z",
            3
        ),
        [
            "2024-11-03T06:00:00Z",
            "2024-11-03T06:15:00Z",
            "2024-11-03T06:30:00Z"
        ]
    );
}

// ---------------------------------------------------------------- most recent (decisions §4)

#[test]
fn most_recent_is_exact_on_irregular_schedules_spec_9_15() {
    // Last run Thursday 10:30, controller back on Friday 16:30: upstream finds nothing and
    // skips Friday 12:30; the exact answer is Friday 12:30, with 5 missed times.
    let s = Schedule::parse("30 10,11,12 * * 1-5").unwrap();
    let got = s
        .most_recent(
            utc("2024-05-16T10:30:00Z"),
            utc("2024-05-17T16:30:00Z"),
            chrono_tz::UTC,
            DstPolicy::RunOnce,
        )
        .unwrap();
    assert_eq!(got.time, utc("2024-05-17T12:30:00Z"));
    assert_eq!(got.missed, 5);
    assert!(!got.too_many_missed());
}

#[test]
fn most_recent_after_years_counts_at_most_101() {
    let s = Schedule::parse("* * * * *").unwrap();
    let got = s
        .most_recent(
            utc("2021-06-01T00:00:00Z"),
            utc("2024-06-01T12:34:56Z"),
            chrono_tz::UTC,
            DstPolicy::RunOnce,
        )
        .unwrap();
    assert_eq!(got.time, utc("2024-06-01T12:34:00Z"));
    assert_eq!(got.missed, 101);
    assert!(got.too_many_missed());
}

#[test]
fn most_recent_is_none_before_the_first_fire_and_inclusive_of_now() {
    let s = Schedule::parse("0 * * * *").unwrap();
    let tz = chrono_tz::UTC;
    assert_eq!(
        s.most_recent(
            utc("2024-01-01T00:00:00Z"),
            utc("2024-01-01T00:59:59Z"),
            tz,
            DstPolicy::RunOnce
        ),
        None
    );
    let got = s
        .most_recent(
            utc("2024-01-01T00:00:00Z"),
            utc("2024-01-01T01:00:00Z"),
            tz,
            DstPolicy::RunOnce,
        )
        .unwrap();
    assert_eq!((got.time, got.missed), (utc("2024-01-01T01:00:00Z"), 1));
    // @every counts from the reference.
    let every = Schedule::parse("@every 10m").unwrap();
    let got = every
        .most_recent(
            utc("2024-01-01T00:00:30Z"),
            utc("2024-01-01T00:35:00Z"),
            tz,
            DstPolicy::RunOnce,
        )
        .unwrap();
    assert_eq!((got.time, got.missed), (utc("2024-01-01T00:30:30Z"), 3));
}

#[test]
fn most_recent_across_a_fall_back_under_both_policies() {
    let s = Schedule::parse("30 1 * * *").unwrap();
    let ny = zone("America/New_York");
    let reference = utc("2024-11-02T12:00:00Z");
    let now = utc("2024-11-03T07:00:00Z");
    let k = s
        .most_recent(reference, now, ny, DstPolicy::Kubernetes)
        .unwrap();
    assert_eq!((k.time, k.missed), (utc("2024-11-03T06:30:00Z"), 2));
    let r = s
        .most_recent(reference, now, ny, DstPolicy::RunOnce)
        .unwrap();
    assert_eq!((r.time, r.missed), (utc("2024-11-03T05:30:00Z"), 1));
}

// ---------------------------------------------------------------- properties

const ZONES: &[&str] = &[
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "America/Havana",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "Pacific/Chatham",
    "Asia/Tehran",
    "America/St_Johns",
];

fn field(max_dense: u32, min: u32, max: u32) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just("*".to_owned()),
        2 => (1..=max_dense).prop_map(|k| format!("*/{k}")),
        2 => (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
        2 => proptest::collection::btree_set(min..=max, 1..4)
            .prop_map(|s| s.iter().map(u32::to_string).collect::<Vec<_>>().join(",")),
        1 => (min..=max, 1..=max_dense).prop_map(|(a, k)| format!("{a}/{k}")),
        1 => (min..=max).prop_map(|a| a.to_string()),
    ]
}

fn schedule() -> impl Strategy<Value = String> {
    (
        field(20, 0, 59),
        field(6, 0, 23),
        prop_oneof![4 => Just("*".to_owned()), 1 => field(5, 1, 31)],
        prop_oneof![6 => Just("*".to_owned()), 1 => field(3, 1, 12)],
        prop_oneof![4 => Just("*".to_owned()), 1 => field(3, 0, 6)],
    )
        .prop_map(|(m, h, dom, mon, dow)| format!("{m} {h} {dom} {mon} {dow}"))
}

/// An instant between 2000 and 2040, at a random second; often near a DST transition.
fn instant() -> impl Strategy<Value = DateTime<Utc>> {
    prop_oneof![
        (946_684_800i64..2_208_988_800).prop_map(|s| Utc.timestamp_opt(s, 0).unwrap()),
        // Close to the 2024 transitions of the zones above.
        (0usize..8, -10_800i64..10_800).prop_map(|(i, d)| {
            let t = [
                "2024-03-10T07:00:00Z",
                "2024-11-03T06:00:00Z",
                "2023-10-29T01:00:00Z",
                "2024-03-10T05:00:00Z",
                "2024-11-03T05:00:00Z",
                "2024-04-07T03:00:00Z",
                "2024-10-05T15:30:00Z",
                "2024-04-06T15:00:00Z",
            ][i];
            utc(t) + Duration::seconds(d)
        }),
    ]
}

fn wall(tz: Tz, t: DateTime<Utc>) -> NaiveDateTime {
    tz.from_utc_datetime(&t.naive_utc()).naive_local()
}

const HORIZON_MINUTES: i64 = 2 * 24 * 60;

/// Kubernetes policy, by brute force: the first minute instant after `after` whose local
/// wall time matches (None when there is none within the horizon).
fn brute_kubernetes(s: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = after.timestamp().div_euclid(60) * 60 + 60;
    let found = (0..HORIZON_MINUTES)
        .map(|k| Utc.timestamp_opt(start + 60 * k, 0).unwrap())
        .find(|i| s.matches(wall(tz, *i)));
    within_horizon(after, found)
}

/// Run-once policy, by brute force: scan every minute instant; a matching wall time fires
/// at its first instant; matching wall times skipped by a forward jump fire at the first
/// instant after the jump.
fn brute_run_once(s: &Schedule, tz: Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let start = after.timestamp().div_euclid(60) * 60 - 4 * 3600;
    let mut seen = std::collections::HashSet::new();
    let mut previous: Option<NaiveDateTime> = None;
    for k in 0..(HORIZON_MINUTES + 5 * 60) {
        let i = Utc.timestamp_opt(start + 60 * k, 0).unwrap();
        let w = wall(tz, i);
        let mut fires_here = false;
        if let Some(p) = previous {
            let mut g = p + Duration::minutes(1);
            while g < w {
                if s.matches(g) && seen.insert(g) {
                    fires_here = true;
                }
                g += Duration::minutes(1);
            }
        }
        if s.matches(w) && seen.insert(w) {
            fires_here = true;
        }
        previous = Some(w);
        if fires_here && i > after {
            return within_horizon(after, Some(i));
        }
    }
    None
}

fn within_horizon(after: DateTime<Utc>, t: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    t.filter(|t| *t <= after + Duration::minutes(HORIZON_MINUTES - 1))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn next_agrees_with_brute_force_under_the_kubernetes_policy(
        expr in schedule(), z in 0..ZONES.len(), after in instant()
    ) {
        let s = Schedule::parse(&expr).unwrap();
        let tz = zone(ZONES[z]);
        let ours = within_horizon(after, s.next_after(after, tz, DstPolicy::Kubernetes));
        prop_assert_eq!(ours, brute_kubernetes(&s, tz, after), "{} in {}", expr, ZONES[z]);
    }

    #[test]
    fn next_agrees_with_brute_force_under_the_run_once_policy(
        expr in schedule(), z in 0..ZONES.len(), after in instant()
    ) {
        let s = Schedule::parse(&expr).unwrap();
        let tz = zone(ZONES[z]);
        let ours = within_horizon(after, s.next_after(after, tz, DstPolicy::RunOnce));
        prop_assert_eq!(ours, brute_run_once(&s, tz, after), "{} in {}", expr, ZONES[z]);
    }

    #[test]
    fn fire_times_are_strictly_increasing_and_prev_finds_them_again(
        expr in schedule(), z in 0..ZONES.len(), after in instant(), kube in any::<bool>()
    ) {
        let s = Schedule::parse(&expr).unwrap();
        let tz = zone(ZONES[z]);
        let policy = if kube { DstPolicy::Kubernetes } else { DstPolicy::RunOnce };
        let times: Vec<_> = s.fires_after(after, tz, policy).take(20).map(|f| f.time).collect();
        let mut last = after;
        for t in &times {
            prop_assert!(*t > last, "{} in {}: {:?}", expr, ZONES[z], times);
            // prev(t) is t, and prev just before t is the fire time before it.
            prop_assert_eq!(s.prev_fire(*t, tz, policy).map(|f| f.time), Some(*t));
            if last > after {
                prop_assert_eq!(
                    s.prev_fire(*t - Duration::seconds(1), tz, policy).map(|f| f.time),
                    Some(last),
                    "{} in {}", expr, ZONES[z]
                );
            }
            last = *t;
        }
    }

    #[test]
    fn the_parser_never_panics(text in "\\PC{0,40}") {
        let _ = Schedule::parse(&text);
    }

    #[test]
    fn the_parser_never_panics_on_cron_like_text(
        text in "[0-9*?,/ a-zA-Z@+-]{0,30}"
    ) {
        if let Ok(s) = Schedule::parse(&text) {
            let _ = s.next_fire(utc("2024-01-01T00:00:00Z"), chrono_tz::UTC, DstPolicy::RunOnce);
        }
    }
}
