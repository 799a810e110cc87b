//! `batch schedule` as a user runs it (conformance-io.md §2).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::batch;

use std::process::Output;

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn prints_the_next_times_in_utc() {
    let out = batch(&[
        "schedule",
        "0 9 * * 1-5",
        "--after",
        "2026-01-02T10:00:00Z",
        "--count",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        lines(&out),
        [
            "2026-01-05T09:00:00Z",
            "2026-01-06T09:00:00Z",
            "2026-01-07T09:00:00Z"
        ]
    );
}

#[test]
fn five_times_by_default_and_after_accepts_offsets() {
    let out = batch(&[
        "schedule",
        "@hourly",
        "--after",
        "2026-01-01T01:30:00+01:00",
    ]);
    assert_eq!(
        lines(&out),
        [
            "2026-01-01T01:00:00Z",
            "2026-01-01T02:00:00Z",
            "2026-01-01T03:00:00Z",
            "2026-01-01T04:00:00Z",
            "2026-01-01T05:00:00Z"
        ]
    );
}

#[test]
fn both_dst_policies_in_a_zone() {
    let args = [
        "schedule",
        "30 2 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2024-03-10T05:00:00Z",
        "--count",
        "1",
    ];
    assert_eq!(lines(&batch(&args)), ["2024-03-10T07:00:00Z"]);
    let mut k = args.to_vec();
    k.extend(["--dst", "kubernetes"]);
    assert_eq!(lines(&batch(&k)), ["2024-03-11T06:30:00Z"]);
    let mut r = args.to_vec();
    r.extend(["--dst", "run-once"]);
    assert_eq!(lines(&batch(&r)), ["2024-03-10T07:00:00Z"]);
}

#[test]
fn human_output_shows_wall_time_and_marks_dst_runs() {
    let out = batch(&[
        "schedule",
        "30 1 * * *",
        "--tz",
        "America/New_York",
        "--after",
        "2024-11-02T12:00:00Z",
        "--count",
        "3",
        "--dst",
        "kubernetes",
        "--human",
    ]);
    let text = lines(&out);
    assert!(
        text[0].starts_with("2024-11-03T05:30:00Z  Sun 2024-11-03 01:30:00 EDT"),
        "{text:?}"
    );
    assert!(text[0].contains("run 1 of 2"), "{text:?}");
    assert!(
        text[1].contains("01:30:00 EST") && text[1].contains("run 2 of 2"),
        "{text:?}"
    );
    assert!(!text[2].contains("DST"), "{text:?}");
}

#[test]
fn a_schedule_that_never_fires_prints_nothing_and_succeeds() {
    let out = batch(&["schedule", "0 0 30 2 *", "--after", "2026-01-01T00:00:00Z"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

#[test]
fn invalid_schedules_and_zones_exit_1_naming_the_token() {
    for (args, needle) in [
        (
            vec!["schedule", "* * * * 7"],
            "day-of-week: 7 is above the maximum 6",
        ),
        (vec!["schedule", "60 * * * *"], "minute: 60"),
        (vec!["schedule", "@reboot"], "@reboot"),
        (vec!["schedule", "0 0 L * *"], "\"L\""),
        (vec!["schedule", "@daily", "--tz", "Mars/Base"], "Mars/Base"),
        (vec!["schedule", "-5 * * * *"], "\"-5\""),
    ] {
        let out = batch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn unreadable_options_exit_2_on_one_line() {
    for args in [
        vec!["schedule", "@daily", "--after", "yesterday"],
        vec!["schedule", "@daily", "--dst", "sometimes"],
        vec!["schedule", "@daily", "--count", "-1"],
    ] {
        let out = batch(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
