//! `batch simulate` as a user runs it: the real binary on real files (conformance-io.md §5).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{batch, json_lines, stderr, temp_file};

use std::path::Path;
use std::process::{Command, Stdio};

const CORPUS: &str = "../../shared/corpus/k8s-website";

/// A simulation document around a corpus manifest.
fn corpus_document(file: &str, pods: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join(file);
    let manifest = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus file {} is missing: {e}", path.display()));
    let job: String = manifest
        .lines()
        .filter(|l| l.trim() != "---")
        .map(|l| format!("  {l}\n"))
        .collect();
    format!("start: 2026-01-01T00:00:00Z\njob:\n{job}pods:\n{pods}")
}

#[test]
fn two_runs_print_identical_bytes() {
    let doc = corpus_document(
        "job-backoff-limit-per-index-example.yaml",
        "  - match: {index: \"0,2,4,6,8\"}\n    runFor: 5s\n    exitCode: 1\n  - runFor: 5s\n",
    );
    let file = temp_file("cli-simulate", "determinism.yaml", &doc);
    let file = file.to_str().unwrap();
    let first = batch(&["simulate", file]);
    let second = batch(&["simulate", file]);
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);
    assert!(first.stderr.is_empty(), "{}", stderr(&first));
}

#[test]
fn prints_events_in_time_order_then_the_final_status() {
    let doc = corpus_document(
        "job-pod-failure-policy-example.yaml",
        "  - runFor: 5s\n    exitCode: 42\n",
    );
    let out = batch(&[
        "simulate",
        temp_file("cli-simulate", "pfp.yaml", &doc)
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let (last, events) = lines.split_last().unwrap();
    let mut previous = String::new();
    for e in events {
        let t = e["t"].as_str().unwrap().to_owned();
        assert!(t.ends_with('Z'), "{e}");
        assert!(t >= previous, "events out of order: {e}");
        previous = t;
        let kind = e["event"].as_str().unwrap();
        assert!(
            ["create", "exit", "evict", "delete", "condition", "warning"].contains(&kind),
            "{e}"
        );
    }
    assert_eq!(
        events[0]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>()
            .len(),
        3,
        "a NonIndexed create has t, event and pod: {}",
        events[0]
    );
    let status = &last["final"]["status"];
    let failed = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap();
    assert_eq!(failed["reason"], "PodFailurePolicy");
    assert!(
        failed["message"]
            .as_str()
            .unwrap()
            .ends_with("failed with exit code 42 matching FailJob rule at index 0")
    );
    // Field order is part of the contract.
    let raw = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(raw.starts_with(
        r#"{"t":"2026-01-01T00:00:00Z","event":"create","pod":"job-pod-failure-policy-example-"#
    ));
    assert!(raw.contains(r#","event":"exit","pod":"#));
    assert!(
        raw.contains(r#","event":"condition","type":"FailureTarget","reason":"PodFailurePolicy"}"#)
    );
    assert!(
        raw.lines()
            .last()
            .unwrap()
            .starts_with(r#"{"final":{"status":{"#)
    );
}

#[test]
fn indexed_creates_carry_the_index() {
    let doc = corpus_document("indexed-job.yaml", "  - runFor: 1s\n");
    let out = batch(&[
        "simulate",
        temp_file("cli-simulate", "indexed.yaml", &doc)
            .to_str()
            .unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    let indexes: Vec<i64> = lines
        .iter()
        .filter(|l| l["event"] == "create")
        .map(|l| l["index"].as_i64().unwrap())
        .collect();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
    assert_eq!(
        lines.last().unwrap()["final"]["status"]["completedIndexes"],
        "0-4"
    );
}

#[test]
fn stdin_is_read_with_a_dash() {
    use std::io::Write as _;
    let doc = corpus_document("job.yaml", "  - runFor: 3s\n");
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
        .write_all(doc.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_lines(&out).len(), 5);
}

#[test]
fn unreadable_input_exits_2_naming_file_line_and_column() {
    let file = temp_file(
        "cli-simulate",
        "bad.yaml",
        "start: 2026-01-01T00:00:00Z\njob: {metadata: {name: a}}\npods:\n  - runFor: [5s]\n",
    );
    let out = batch(&["simulate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("bad.yaml: line 4, column"), "{err}");
    assert!(out.stdout.is_empty());

    let out = batch(&["simulate", "/nonexistent/sim.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("/nonexistent/sim.yaml"));
}

#[test]
fn an_invalid_job_or_a_cronjob_exits_1() {
    let file = temp_file(
        "cli-simulate",
        "invalid.yaml",
        "start: 2026-01-01T00:00:00Z\njob:\n  metadata: {name: a}\n  spec: {template: {spec: {restartPolicy: Always, containers: [{name: main, image: x}]}}}\n",
    );
    let out = batch(&["simulate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("spec.template.spec.restartPolicy"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());

    let file = temp_file(
        "cli-simulate",
        "cron.yaml",
        "start: 2026-01-01T00:00:00Z\ncronjob: {metadata: {name: c}}\njobs: [{runFor: 90s, result: Complete}]\n",
    );
    let out = batch(&["simulate", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // A CronJob without a spec is simulated only once valid: here it is not.
    assert!(stderr(&out).contains("spec.schedule"), "{}", stderr(&out));
}
