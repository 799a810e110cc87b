//! `batch simulate` on CronJob documents, as a user runs it: the real binary on real files
//! (conformance-io.md §5: `cronjob:` with `jobs:` rules, `jobCreate`/`jobFinish`/`jobDelete`
//! events, the CronJob status on the final line, the usual exit codes).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{batch, json_lines, stderr, temp_file};

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const WEEK: &str = r#"start: 2024-03-04T00:00:00Z
until: 2024-03-11T00:00:00Z
dst: run-once
cronjob:
  apiVersion: batch/v1
  kind: CronJob
  metadata: {name: report}
  spec:
    schedule: "0 9 * * 1-5"
    timeZone: Europe/Berlin
    concurrencyPolicy: Forbid
    successfulJobsHistoryLimit: 1
    jobTemplate:
      spec:
        template:
          spec:
            restartPolicy: Never
            containers: [{name: main, image: busybox}]
jobs:
  - match: {ordinal: 2}
    runFor: 10m
    result: Failed
  - runFor: 90s
    result: Complete
"#;

#[test]
fn a_week_of_a_cronjob_prints_its_jobs_then_the_cronjob_status() {
    let file = temp_file("cli-simulate-cronjob", "week.yaml", WEEK);
    let file = file.to_str().unwrap();
    let out = batch(&["simulate", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let lines = json_lines(&out);
    let (last, events) = lines.split_last().unwrap();

    let kinds = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|e| e["event"] == kind)
            .collect::<Vec<_>>()
    };
    let created = kinds("jobCreate");
    let scheduled: Vec<&str> = created
        .iter()
        .map(|e| e["scheduledTime"].as_str().unwrap())
        .collect();
    assert_eq!(
        scheduled,
        [
            "2024-03-04T08:00:00Z",
            "2024-03-05T08:00:00Z",
            "2024-03-06T08:00:00Z",
            "2024-03-07T08:00:00Z",
            "2024-03-08T08:00:00Z",
        ]
    );
    // Minutes since the epoch name the Job.
    assert_eq!(created[0]["job"], "report-28492320");
    // Field order is part of the contract.
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(
        text.starts_with(r#"{"t":"2024-03-04T08:00:00.100Z","event":"jobCreate","job":"report-28492320","scheduledTime":"2024-03-04T08:00:00Z"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"Z","event":"jobFinish","job":"report-28492320","result":"Complete"}"#),
        "{text}"
    );
    assert!(text.ends_with("}}}\n"), "{text}");
    let finished = kinds("jobFinish");
    assert_eq!(finished.len(), 5);
    assert_eq!(finished[2]["result"], "Failed");
    assert_eq!(finished[0]["result"], "Complete");
    // successfulJobsHistoryLimit 1: each newer success removes the older one.
    let deleted: Vec<&str> = kinds("jobDelete")
        .iter()
        .map(|e| e["job"].as_str().unwrap())
        .collect();
    assert_eq!(
        deleted,
        ["report-28492320", "report-28493760", "report-28496640"]
    );
    // Times in order, all UTC.
    let times: Vec<&str> = events.iter().map(|e| e["t"].as_str().unwrap()).collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted);
    assert!(times.iter().all(|t| t.ends_with('Z')));

    let status = &last["final"]["status"];
    assert_eq!(status["lastScheduleTime"], "2024-03-08T08:00:00Z");
    assert!(status.get("active").is_none(), "{status}");
    assert!(status["lastSuccessfulTime"].is_string(), "{status}");

    // The same file, the same bytes; and stdin reads the same.
    let again = batch(&["simulate", file]);
    assert_eq!(out.stdout, again.stdout);
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(["simulate", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(WEEK.as_bytes())
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert_eq!(piped.stdout, out.stdout);
}

#[test]
fn the_dst_key_chooses_the_policy() {
    let doc = |dst: &str| {
        format!(
            "start: 2024-10-31T00:00:00Z\nuntil: 2024-11-05T00:00:00Z\ndst: {dst}\ncronjob: {{metadata: {{name: n}}, spec: {{schedule: \"30 1 * * *\", timeZone: America/New_York, jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: m, image: x}}]}}}}}}}}}}}}\njobs: [{{runFor: 1m}}]\n"
        )
    };
    let count = |dst: &str| {
        let out = batch(&[
            "simulate",
            temp_file("cli-simulate-cronjob", &format!("dst-{dst}.yaml"), doc(dst))
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        json_lines(&out)
            .iter()
            .filter(|e| e["event"] == "jobCreate")
            .count()
    };
    // Oct 31 .. Nov 4; 01:30 happens twice on Nov 3.
    assert_eq!(count("run-once"), 5);
    assert_eq!(count("kubernetes"), 6);
}

#[test]
fn an_invalid_cronjob_exits_1_and_an_unreadable_document_2() {
    let file = temp_file(
        "cli-simulate-cronjob",
        "invalid.yaml",
        "start: 2026-01-01T00:00:00Z\ncronjob:\n  metadata: {name: c}\n  spec: {schedule: \"0 0 * * 7\", concurrencyPolicy: Sometimes, jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: x}]}}}}}\njobs: [{runFor: 90s}]\n",
    );
    let out = batch(&["simulate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    // One line per validation error, each naming the field.
    assert!(
        err.lines()
            .any(|l| l.contains("cronjob: spec.schedule") && l.contains("invalid.yaml")),
        "{err}"
    );
    assert!(err.contains("spec.concurrencyPolicy"), "{err}");

    for (name, text) in [
        (
            "bad-dst.yaml",
            "start: 2026-01-01T00:00:00Z\ndst: sometimes\ncronjob: {metadata: {name: c}}\n",
        ),
        (
            "bad-result.yaml",
            "start: 2026-01-01T00:00:00Z\ncronjob: {metadata: {name: c}}\njobs: [{runFor: 5s, result: Succeeded}]\n",
        ),
        (
            "pods.yaml",
            "start: 2026-01-01T00:00:00Z\ncronjob: {metadata: {name: c}}\npods: [{runFor: 5s}]\n",
        ),
    ] {
        let out = batch(&[
            "simulate",
            temp_file("cli-simulate-cronjob", name, text)
                .to_str()
                .unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
        assert!(stderr(&out).contains(name), "{}", stderr(&out));
        assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    }
}
