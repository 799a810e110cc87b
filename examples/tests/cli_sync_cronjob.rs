//! `batch sync cronjob` as a user runs it: the real binary on real files (conformance-io §4).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{batch, temp_file};

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

/// Runs `batch sync cronjob` on a document; expects exit 0 and exactly one JSON line.
fn sync_ok(name: &str, doc: &str, extra: &[&str]) -> Value {
    let path = temp_file("cli-sync-cronjob", name, doc);
    let mut args = vec!["sync", "cronjob", path.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = batch(&args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

const EXAMPLE: &str = "\
now: 2016-05-19T10:01:00Z
cronjob:
  metadata: {name: mycronjob, namespace: default, uid: c1, creationTimestamp: 2016-05-19T08:30:00Z}
  spec:
    schedule: '0 * * * *'
    jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
  status: {lastScheduleTime: 2016-05-19T09:00:00Z, active: [{apiVersion: batch/v1, kind: Job, name: mycronjob-24394140}]}
jobs:
  - name: mycronjob-24394140
    scheduledTime: 2016-05-19T09:00:00Z
    createdAt: 2016-05-19T09:01:00Z
    startTime: 2016-05-19T09:01:00Z
    finished: Complete
    completionTime: 2016-05-19T09:01:10Z
";

#[test]
fn conformance_example_gives_the_documented_output() {
    let path = temp_file("cli-sync-cronjob", "example.yaml", EXAMPLE);
    let raw =
        String::from_utf8(batch(&["sync", "cronjob", path.to_str().unwrap()]).stdout).unwrap();
    let positions: Vec<usize> = [
        "\"create\":",
        "\"delete\":",
        "\"status\":",
        "\"events\":",
        "\"requeueAfter\":",
    ]
    .iter()
    .map(|k| raw.find(k).unwrap_or_else(|| panic!("{k} in {raw}")))
    .collect();
    assert!(positions.is_sorted(), "the §4 fields, in order: {raw}");
    let out = sync_ok("example.yaml", EXAMPLE, &[]);
    assert_eq!(
        out["create"],
        json!([{"name": "mycronjob-24394200", "scheduledTime": "2016-05-19T10:00:00Z"}])
    );
    assert_eq!(out["delete"], json!([]));
    assert_eq!(
        out["status"],
        json!({
            "active": [{"apiVersion": "batch/v1", "kind": "Job", "name": "mycronjob-24394200", "namespace": "default"}],
            "lastScheduleTime": "2016-05-19T10:00:00Z"
        })
    );
    assert_eq!(
        out["events"],
        json!([
            {"type": "Normal", "reason": "SawCompletedJob", "message": "Saw completed job: mycronjob-24394140, status: Complete"},
            {"type": "Normal", "reason": "SuccessfulCreate", "message": "Created job mycronjob-24394200"}
        ])
    );
    assert_eq!(out["requeueAfter"], json!(3540.1));
}

#[test]
fn stdin_is_read_with_a_dash() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(["sync", "cronjob", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(EXAMPLE.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["create"][0]["name"], "mycronjob-24394200");
}

const SPRING_FORWARD: &str = "\
now: 2024-03-10T07:00:00.100Z
cronjob:
  metadata: {name: cj, creationTimestamp: 2024-03-01T00:00:00Z}
  spec:
    schedule: '30 2 * * *'
    timeZone: America/New_York
    jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
  status: {lastScheduleTime: 2024-03-09T07:30:00Z}
";

#[test]
fn dst_option_selects_the_policy() {
    let run_once = sync_ok("dst.yaml", SPRING_FORWARD, &[]);
    assert_eq!(
        run_once["create"],
        json!([{"name": "cj-28500900", "scheduledTime": "2024-03-10T07:00:00Z"}])
    );
    let explicit = sync_ok("dst.yaml", SPRING_FORWARD, &["--dst", "run-once"]);
    assert_eq!(explicit, run_once);
    let kubernetes = sync_ok("dst.yaml", SPRING_FORWARD, &["--dst", "kubernetes"]);
    assert_eq!(kubernetes["create"], json!([]));
    // Next run 2024-03-11T06:30Z (+100 ms).
    assert_eq!(kubernetes["requeueAfter"], json!(84600.0));
}

#[test]
fn unusable_zone_or_schedule_is_a_warning_not_an_error() {
    for (name, patch, reason) in [
        ("zone.yaml", "timeZone: Nowhere/Land", "UnknownTimeZone"),
        (
            "parse.yaml",
            "schedule: '61 * * * *'",
            "UnparseableSchedule",
        ),
        ("never.yaml", "schedule: '0 0 31 2 *'", "InvalidSchedule"),
    ] {
        let mut doc = format!(
            "now: 2026-01-01T00:30:00Z\ncronjob:\n  metadata: {{name: cj, creationTimestamp: 2025-12-31T00:00:00Z}}\n  spec:\n    jobTemplate: {{spec: {{template: {{spec: {{containers: []}}}}}}}}\n    {patch}\n"
        );
        if !patch.starts_with("schedule") {
            doc.push_str("    schedule: '0 * * * *'\n");
        }
        let out = sync_ok(name, &doc, &[]);
        assert_eq!(out["create"], json!([]), "{name}");
        assert_eq!(out["events"][0]["type"], "Warning", "{name}");
        assert_eq!(out["events"][0]["reason"], reason, "{name}");
        assert_eq!(out["requeueAfter"], Value::Null, "{name}");
    }
}

#[test]
fn unreadable_document_exits_2_naming_file_and_line() {
    let path = temp_file(
        "cli-sync-cronjob",
        "bad.yaml",
        "now: 2026-01-01T00:00:00Z\ncronjob: {}\njobs:\n  - {name: a, finished: Maybe}\n",
    );
    let out = batch(&["sync", "cronjob", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(stderr.contains("bad.yaml"), "{stderr}");
    assert!(stderr.contains('4'), "names the line: {stderr}");
    assert!(
        stderr.contains("jobs[0].finished"),
        "names the field: {stderr}"
    );

    let path = temp_file(
        "cli-sync-cronjob",
        "unknown.yaml",
        "now: 2026-01-01T00:00:00Z\ncronjob: {}\npods: []\n",
    );
    let out = batch(&["sync", "cronjob", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));

    let out = batch(&["sync", "cronjob", "/nonexistent/batch-test.yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unknown_dst_policy_is_a_usage_error() {
    let path = temp_file("cli-sync-cronjob", "ok.yaml", EXAMPLE);
    let out = batch(&[
        "sync",
        "cronjob",
        path.to_str().unwrap(),
        "--dst",
        "sometimes",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("sometimes"));
}
