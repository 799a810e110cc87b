//! `batch sync job` as a user runs it: the real binary on real files (conformance-io §3).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{batch, temp_file};

use std::io::Write;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

fn batch_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the batch binary runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `batch sync job` on a document; expects exit 0 and exactly one JSON line.
fn sync_ok(name: &str, doc: &str) -> Value {
    let path = temp_file("cli-sync", name, doc);
    let out = batch(&["sync", "job", path.to_str().unwrap()]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.lines().count(),
        1,
        "one JSON object on one line: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

/// Runs `batch sync job` on an unreadable document; returns stderr.
fn sync_unreadable(name: &str, doc: &str) -> String {
    let path = temp_file("cli-sync", name, doc);
    let out = batch(&["sync", "job", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "exit 2 for {doc}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one error line: {stderr}");
    assert!(
        stderr.contains(name),
        "the message names the file: {stderr}"
    );
    stderr
}

const INDEXED: &str = "
now: 2026-01-01T00:00:10Z
job:
  metadata: {name: demo, uid: u1, creationTimestamp: 2026-01-01T00:00:00Z}
  spec:
    completions: 5
    parallelism: 2
    completionMode: Indexed
    template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
pods:
  - name: demo-0-abc12
    phase: Succeeded
    index: 0
    exitCodes: {main: 0}
    createdAt: 2026-01-01T00:00:00Z
    finishedAt: 2026-01-01T00:00:05Z
";

#[test]
fn output_has_the_documented_fields_in_order() {
    let out = sync_ok("indexed.yaml", INDEXED);
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // serde_json without preserve_order sorts keys, so check the set, then the raw order.
    let mut expected = vec![
        "create",
        "delete",
        "release",
        "status",
        "memory",
        "events",
        "requeueAfter",
    ];
    expected.sort_unstable();
    let mut keys_sorted = keys.clone();
    keys_sorted.sort_unstable();
    assert_eq!(keys_sorted, expected);
    let path = temp_file("cli-sync", "indexed-raw.yaml", INDEXED);
    let raw = String::from_utf8(batch(&["sync", "job", path.to_str().unwrap()]).stdout).unwrap();
    let positions: Vec<usize> = [
        "\"create\"",
        "\"delete\"",
        "\"release\"",
        "\"status\"",
        "\"memory\"",
        "\"events\"",
        "\"requeueAfter\"",
    ]
    .iter()
    .map(|k| raw.find(k).unwrap())
    .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{raw}");
}

#[test]
fn indexed_step_creates_indexes_and_releases_counted_pods() {
    let out = sync_ok("indexed.yaml", INDEXED);
    assert_eq!(out["create"], json!([{"index": 1}, {"index": 2}]));
    assert_eq!(out["delete"], json!([]));
    assert_eq!(out["release"], json!(["demo-0-abc12"]));
    assert_eq!(out["status"]["completedIndexes"], "0");
    assert_eq!(out["status"]["succeeded"], 1);
    assert_eq!(out["status"]["active"], 2);
    assert_eq!(out["status"]["startTime"], "2026-01-01T00:00:10Z");
    assert_eq!(out["requeueAfter"], Value::Null);
    let events = out["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["type"], "Normal");
    assert_eq!(events[0]["reason"], "SuccessfulCreate");
    assert!(
        events[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("Created pod: demo-1-")
    );
}

#[test]
fn nonindexed_create_entries_have_no_index() {
    let out = sync_ok(
        "nonindexed.yaml",
        "now: 2026-01-01T00:00:00Z\njob:\n  metadata: {name: demo}\n  spec: {parallelism: 3, completions: 5, template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}\npods: []\n",
    );
    assert_eq!(out["create"], json!([{}, {}, {}]));
}

#[test]
fn backoff_gives_requeue_after_in_seconds_and_memory() {
    let out = sync_ok(
        "backoff.yaml",
        "
now: 2026-01-01T00:00:10Z
job:
  metadata: {name: demo, uid: u1}
  spec: {completions: 1, template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
  status: {startTime: 2026-01-01T00:00:00Z, active: 1}
memory:
  backoff: {failuresAfterLastSuccess: 1, lastFailureTime: 2026-01-01T00:00:01Z}
pods:
  - {name: demo-a, phase: Failed, exitCodes: {main: 1}, finishedAt: 2026-01-01T00:00:05Z}
",
    );
    assert_eq!(out["create"], json!([]));
    assert_eq!(out["release"], json!(["demo-a"]));
    assert_eq!(out["status"]["failed"], 1);
    // Two failures since the last success: 20 s from 00:00:05, 5 s already passed.
    assert_eq!(out["requeueAfter"].as_f64(), Some(15.0));
    assert_eq!(
        out["memory"]["backoff"],
        json!({"failuresAfterLastSuccess": 2, "lastFailureTime": "2026-01-01T00:00:05Z"})
    );
}

#[test]
fn output_memory_is_accepted_as_next_input() {
    let first = sync_ok(
        "first.yaml",
        "
now: 2026-01-01T00:00:10Z
job:
  metadata: {name: demo, uid: u1}
  spec: {completions: 1, template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
pods:
  - {name: demo-a, phase: Failed, exitCodes: {main: 1}, finishedAt: 2026-01-01T00:00:05Z}
",
    );
    let next = json!({
        "now": "2026-01-01T00:00:15Z",
        "job": {"metadata": {"name": "demo", "uid": "u1"},
                "spec": {"completions": 1, "template": {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "busybox"}]}}},
                "status": first["status"]},
        "memory": first["memory"],
        "pods": [{"name": "demo-a", "phase": "Failed", "counted": true,
                  "exitCodes": {"main": 1}, "finishedAt": "2026-01-01T00:00:05Z"}],
    });
    let out = sync_ok("second.json", &next.to_string());
    assert_eq!(out["create"], json!([{}]));
    assert_eq!(out["status"]["failed"], 1);
    assert_eq!(out["requeueAfter"], Value::Null);
}

#[test]
fn reads_stdin() {
    let out = batch_stdin(&["sync", "job", "-"], INDEXED);
    assert_eq!(out.status.code(), Some(0));
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["create"], json!([{"index": 1}, {"index": 2}]));
}

#[test]
fn a_spec_that_would_not_validate_still_syncs() {
    // restartPolicy Always and an unknown rule action: rejected by `validate`, but `sync`
    // is a controller step on a stored object and never exits 1.
    let out = sync_ok(
        "invalid-spec.yaml",
        "
now: 2026-01-01T00:00:10Z
job:
  metadata: {name: demo}
  spec:
    completions: -1
    parallelism: 2
    podFailurePolicy: {rules: [{action: Explode, onExitCodes: {operator: In, values: [1]}}]}
    template: {spec: {restartPolicy: Always, containers: []}}
pods:
  - {name: p, phase: Failed, exitCodes: {main: 1}, finishedAt: 2026-01-01T00:00:05Z}
",
    );
    assert_eq!(out["status"]["failed"], 1);
}

#[test]
fn malformed_documents_exit_2_naming_the_place() {
    let err = sync_unreadable(
        "bad-phase.yaml",
        "now: 2026-01-01T00:00:00Z\njob: {metadata: {name: d}}\npods:\n  - name: p\n    phase: Done\n",
    );
    assert!(err.contains("line 5"), "{err}");
    assert!(err.contains("pods[0].phase"), "{err}");

    let err = sync_unreadable(
        "unknown-pod-field.yaml",
        "now: 2026-01-01T00:00:00Z\njob: {metadata: {name: d}}\npods:\n  - {name: p, phase: Running, exitcode: 1}\n",
    );
    assert!(err.contains("exitcode"), "{err}");
    assert!(err.contains("line 4"), "{err}");

    let err = sync_unreadable(
        "unknown-top-field.yaml",
        "now: 2026-01-01T00:00:00Z\njob: {metadata: {name: d}}\npod: []\n",
    );
    assert!(err.contains("pod"), "{err}");

    let err = sync_unreadable("no-now.yaml", "job: {metadata: {name: d}}\npods: []\n");
    assert!(err.contains("now"), "{err}");

    let err = sync_unreadable(
        "bad-time.yaml",
        "now: yesterday\njob: {metadata: {name: d}}\n",
    );
    assert!(err.contains("line 1"), "{err}");

    let err = sync_unreadable(
        "bad-memory.yaml",
        "now: 2026-01-01T00:00:00Z\njob: {metadata: {name: d}}\nmemory: {backoff: {failuresAfterLastSucces: 1}}\n",
    );
    assert!(err.contains("memory.backoff"), "{err}");

    let err = sync_unreadable(
        "bad-spec-type.yaml",
        "now: 2026-01-01T00:00:00Z\njob:\n  metadata: {name: d}\n  spec: {completions: five}\n",
    );
    assert!(err.contains("job.spec.completions"), "{err}");
    assert!(err.contains("line 4"), "{err}");

    sync_unreadable("bad-yaml.yaml", "now: [\n");
    sync_unreadable("empty.yaml", "");
    sync_unreadable("list.yaml", "- 1\n- 2\n");
    sync_unreadable(
        "two-docs.yaml",
        "now: 2026-01-01T00:00:00Z\njob: {}\n---\nnow: 2026-01-01T00:00:00Z\njob: {}\n",
    );
}

#[test]
fn unparsable_index_and_boolean_condition_status_are_accepted() {
    let out = sync_ok(
        "odd-values.yaml",
        "
now: 2026-01-01T00:00:10Z
job:
  metadata: {name: demo}
  spec: {completions: 2, parallelism: 2, completionMode: Indexed,
         template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
pods:
  - {name: bad, phase: Running, index: x, conditions: [{type: Ready, status: true}]}
  - {name: big, phase: Running, index: 99999999999}
",
    );
    assert_eq!(out["delete"], json!(["bad", "big"]));
    assert_eq!(out["create"], json!([]));
}

#[test]
fn missing_file_exits_2() {
    let out = batch(&["sync", "job", "/nonexistent/batch-sync.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/batch-sync.yaml"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(batch(&["sync"]).status.code(), Some(2));
    assert_eq!(batch(&["sync", "job"]).status.code(), Some(2));
    // `sync cronjob` is conformance-io §4, not implemented yet.
    assert_eq!(batch(&["sync", "cronjob", "x.yaml"]).status.code(), Some(2));
}
