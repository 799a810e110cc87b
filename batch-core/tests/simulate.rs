//! `batch_core::simulate`: whole Job runs on a virtual clock. The documentation examples
//! of Kubernetes (../shared/corpus/k8s-website) reach the outcomes the docs describe, given
//! pod behaviour that matches each example's script; output is byte-identical across runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use batch_core::model::{ConditionStatus, JobCondition, JobConditionType, JobStatus};
use batch_core::simulate::{
    PodMatch, PodRule, SimEventKind, SimulateError, Simulation, SimulationInput, parse_input,
    simulate_job,
};
use chrono::{DateTime, Duration, Utc};

const CORPUS: &str = "../../shared/corpus/k8s-website";
const START: &str = "2026-01-01T00:00:00Z";

/// A corpus manifest, indented to sit under `job:` in a simulation document.
fn corpus_job(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("corpus file {} is missing: {e}", path.display()));
    text.lines()
        .filter(|l| l.trim() != "---")
        .map(|l| format!("  {l}\n"))
        .collect()
}

fn document(job: &str, pods: &str) -> String {
    format!("start: {START}\njob:\n{job}pods:\n{pods}")
}

fn simulate_corpus(file: &str, pods: &str) -> Simulation {
    simulate_text(&document(&corpus_job(file), pods))
}

fn simulate_text(text: &str) -> Simulation {
    let input = parse_input(text, "test.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"));
    simulate_job(&input).unwrap_or_else(|e| panic!("{e}"))
}

fn t(secs: i64) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(START)
        .unwrap()
        .with_timezone(&Utc)
        + Duration::seconds(secs)
}

fn condition<'a>(status: &'a JobStatus, type_: &JobConditionType) -> &'a JobCondition {
    status
        .condition(type_)
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
}

fn assert_finished(sim: &Simulation, type_: JobConditionType, reason: &str) {
    assert!(sim.finished, "not finished: {}", sim.json_lines());
    let c = condition(&sim.status, &type_);
    assert_eq!(c.status, ConditionStatus::True);
    assert_eq!(c.reason, reason, "{}", sim.json_lines());
}

fn lines_with(sim: &Simulation, needle: &str) -> Vec<String> {
    sim.json_lines()
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

#[test]
fn the_same_input_gives_byte_identical_output() {
    let pods =
        "  - match: {index: \"0,2,4,6,8\"}\n    runFor: 3s\n    exitCode: 1\n  - runFor: 7s\n";
    let text = document(
        &corpus_job("job-backoff-limit-per-index-example.yaml"),
        pods,
    );
    let a = simulate_text(&text).json_lines();
    let b = simulate_text(&text).json_lines();
    assert_eq!(a, b);
    assert!(a.lines().count() > 20);
    for line in a.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.is_object());
    }
}

#[test]
fn backoff_limit_per_index_example_fails_with_failed_indexes() {
    // Even indexes exit 1, odd ones exit 0 (the example's script).
    let sim = simulate_corpus(
        "job-backoff-limit-per-index-example.yaml",
        "  - match: {index: \"0,2,4,6,8\"}\n    runFor: 5s\n    exitCode: 1\n  - runFor: 5s\n    exitCode: 0\n",
    );
    assert_finished(&sim, JobConditionType::Failed, "FailedIndexes");
    assert_eq!(
        condition(&sim.status, &JobConditionType::Failed).message,
        "Job has failed indexes"
    );
    assert_eq!(sim.status.failed_indexes.as_deref(), Some("0,2,4,6,8"));
    assert_eq!(sim.status.completed_indexes, "1,3,5,7,9");
    // As the docs show: every even index ran twice (backoffLimitPerIndex: 1).
    assert_eq!(sim.status.failed, 10);
    assert_eq!(sim.status.succeeded, 5);
    assert_eq!(sim.status.active, 0);
    assert_eq!(lines_with(&sim, "\"create\"").len(), 15);
}

#[test]
fn backoff_limit_per_index_failindex_retries_index_0_once_and_fails_index_1_at_once() {
    let sim = simulate_corpus(
        "job-backoff-limit-per-index-failindex.yaml",
        "  - match: {index: 0}\n    runFor: 2s\n    exitCode: 1\n  - match: {index: 1}\n    runFor: 2s\n    exitCode: 42\n  - runFor: 2s\n",
    );
    assert_finished(&sim, JobConditionType::Failed, "FailedIndexes");
    assert_eq!(sim.status.failed_indexes.as_deref(), Some("0,1"));
    assert_eq!(sim.status.completed_indexes, "2,3");
    assert_eq!(sim.status.failed, 3);
    assert_eq!(sim.status.succeeded, 2);
    let creates: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::Create { index, .. } => *index,
            _ => None,
        })
        .collect();
    assert_eq!(
        creates.iter().filter(|i| **i == 0).count(),
        2,
        "index 0 retried once"
    );
    assert_eq!(
        creates.iter().filter(|i| **i == 1).count(),
        1,
        "index 1 not retried"
    );
}

#[test]
fn pod_failure_policy_example_fails_the_job_on_exit_code_42() {
    let sim = simulate_corpus(
        "job-pod-failure-policy-example.yaml",
        "  - runFor: 5s\n    exitCode: 42\n",
    );
    assert_finished(&sim, JobConditionType::Failed, "PodFailurePolicy");
    let failed = condition(&sim.status, &JobConditionType::Failed);
    let first_pod = sim
        .events
        .iter()
        .find_map(|e| match &e.kind {
            SimEventKind::Create { pod, .. } => Some(pod.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        failed.message,
        format!(
            "Container main for pod default/{first_pod} failed with exit code 42 matching FailJob rule at index 0"
        )
    );
    assert_eq!(
        condition(&sim.status, &JobConditionType::FailureTarget).message,
        failed.message
    );
    // The three pods end together at 5s; the Job fails right then, with all three counted.
    assert_eq!(sim.end, t(5));
    assert_eq!(sim.status.failed, 3);
    assert_eq!(sim.status.succeeded, 0);
}

#[test]
fn pod_failure_policy_example_ignores_evicted_pods() {
    let sim = simulate_corpus(
        "job-pod-failure-policy-example.yaml",
        "  - match: {ordinal: 1}\n    runFor: 2s\n    evicted: true\n  - runFor: 5s\n",
    );
    assert_finished(&sim, JobConditionType::Complete, "CompletionsReached");
    assert_eq!(
        sim.status.failed, 0,
        "an Ignore rule does not count the eviction"
    );
    assert_eq!(sim.status.succeeded, 12);
    assert_eq!(lines_with(&sim, "\"evict\"").len(), 1);
    assert_eq!(lines_with(&sim, "\"create\"").len(), 13);
}

#[test]
fn pod_failure_policy_failjob_deletes_the_other_pods_and_waits_for_them() {
    // Pod 0 exits 42 after 30s (the example's script); pod 1 would run much longer, so it
    // is deleted and killed when its 30s grace period ends.
    let sim = simulate_corpus(
        "job-pod-failure-policy-failjob.yaml",
        "  - match: {ordinal: 0}\n    runFor: 30s\n    exitCode: 42\n  - runFor: 1h\n",
    );
    assert_finished(&sim, JobConditionType::Failed, "PodFailurePolicy");
    let lines = sim.json_lines();
    let expected_tail = [
        r#"{"t":"2026-01-01T00:00:30Z","event":"exit","pod":"#,
        r#"{"t":"2026-01-01T00:00:30Z","event":"delete","pod":"#,
        r#"{"t":"2026-01-01T00:00:30Z","event":"condition","type":"FailureTarget","reason":"PodFailurePolicy"}"#,
        r#"{"t":"2026-01-01T00:01:00Z","event":"exit","pod":"#,
        r#"{"t":"2026-01-01T00:01:00Z","event":"condition","type":"Failed","reason":"PodFailurePolicy"}"#,
        r#"{"t":"2026-01-01T00:01:00Z","event":"warning","reason":"PodFailurePolicy","message":"Container main for pod default/"#,
        r#"{"final":"#,
    ];
    let all: Vec<&str> = lines.lines().collect();
    let tail = &all[all.len() - expected_tail.len()..];
    for (line, want) in tail.iter().zip(expected_tail) {
        assert!(
            line.starts_with(want),
            "{line}\nshould start with\n{want}\n{lines}"
        );
    }
    assert!(tail[3].ends_with(r#""exitCode":137}"#), "{}", tail[3]);
    assert_eq!(sim.status.failed, 2);
    assert_eq!(sim.status.terminating, Some(0));
}

#[test]
fn pod_failure_policy_config_issue_condition_fails_the_job() {
    let sim = simulate_corpus(
        "job-pod-failure-policy-config-issue.yaml",
        "  - runFor: 1m\n    conditions: [{type: ConfigIssue, reason: ImagePullBackOff}]\n",
    );
    assert_finished(&sim, JobConditionType::Failed, "PodFailurePolicy");
    let message = &condition(&sim.status, &JobConditionType::Failed).message;
    assert!(
        message.starts_with("Pod default/job-pod-failure-policy-config-issue-")
            && message.ends_with(" has condition ConfigIssue matching FailJob rule at index 0"),
        "{message}"
    );
    assert_eq!(lines_with(&sim, "\"evict\"").len(), 2);
}

#[test]
fn success_policy_completes_when_index_2_succeeds() {
    // Only index 2 succeeds; here it also finishes first, so no failure limit is reached.
    let sim = simulate_corpus(
        "job-success-policy.yaml",
        "  - match: {index: 2}\n    runFor: 5s\n    exitCode: 0\n  - runFor: 10s\n    exitCode: 1\n",
    );
    assert_finished(&sim, JobConditionType::Complete, "SuccessPolicy");
    assert_eq!(
        condition(&sim.status, &JobConditionType::Complete).message,
        "Matched rules at index 0"
    );
    assert_eq!(
        condition(&sim.status, &JobConditionType::SuccessCriteriaMet).reason,
        "SuccessPolicy"
    );
    assert_eq!(sim.status.completed_indexes, "2");
    assert_eq!(sim.status.succeeded, 1);
    // The other pods are deleted at 5s, not counted, and end on their own at 10s.
    assert_eq!(sim.status.failed, 0);
    assert_eq!(lines_with(&sim, "\"delete\"").len(), 9);
    assert_eq!(sim.end, t(10));
    assert_eq!(sim.status.completion_time, Some(t(10)));
}

#[test]
fn pi_job_completes() {
    let sim = simulate_corpus("job.yaml", "  - runFor: 12s\n    exitCode: 0\n");
    assert_finished(&sim, JobConditionType::Complete, "CompletionsReached");
    assert_eq!(sim.status.succeeded, 1);
    assert_eq!(sim.status.start_time, Some(t(0)));
    assert_eq!(sim.status.completion_time, Some(t(12)));
    let lines = sim.json_lines();
    let all: Vec<&str> = lines.lines().collect();
    assert_eq!(all.len(), 5, "{lines}");
    assert!(all[0].starts_with(r#"{"t":"2026-01-01T00:00:00Z","event":"create","pod":"pi-"#));
    assert!(!all[0].contains("index"), "NonIndexed pods have no index");
    assert!(all[1].ends_with(r#""exitCode":0}"#));
    assert_eq!(
        all[2],
        r#"{"t":"2026-01-01T00:00:12Z","event":"condition","type":"SuccessCriteriaMet","reason":"CompletionsReached"}"#
    );
    assert_eq!(
        all[3],
        r#"{"t":"2026-01-01T00:00:12Z","event":"condition","type":"Complete","reason":"CompletionsReached"}"#
    );
    assert!(all[4].starts_with(r#"{"final":{"status":{"conditions":["#));
}

#[test]
fn pi_job_fails_after_backoff_limit_with_exponential_delays() {
    let sim = simulate_corpus("job.yaml", "  - runFor: 1s\n    exitCode: 1\n");
    assert_finished(&sim, JobConditionType::Failed, "BackoffLimitExceeded");
    assert_eq!(sim.status.failed, 5, "backoffLimit 4 allows 4 failures");
    let creates: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e.kind, SimEventKind::Create { .. }))
        .map(|e| e.t)
        .collect();
    // Each pod fails 1s after it starts; then 10s, 20s, 40s, 80s of back-off.
    assert_eq!(creates, [t(0), t(11), t(32), t(73), t(154)]);
    assert_eq!(sim.end, t(155));
}

#[test]
fn indexed_job_completes_every_index() {
    let sim = simulate_corpus("indexed-job.yaml", "  - runFor: 3s\n");
    assert_finished(&sim, JobConditionType::Complete, "CompletionsReached");
    assert_eq!(sim.status.completed_indexes, "0-4");
    assert_eq!(sim.status.succeeded, 5);
    // Three at once, then two more when the first three end.
    let creates: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::Create { index, .. } => Some((e.t, index.unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(
        creates,
        [(t(0), 0), (t(0), 1), (t(0), 2), (t(3), 3), (t(3), 4)]
    );
}

#[test]
fn a_pod_no_rule_matches_succeeds_at_once() {
    let sim = simulate_corpus(
        "indexed-job.yaml",
        "  - match: {index: 7}\n    exitCode: 1\n",
    );
    assert_finished(&sim, JobConditionType::Complete, "CompletionsReached");
    assert_eq!(sim.end, t(0));
    assert_eq!(sim.status.succeeded, 5);
}

#[test]
fn active_deadline_fails_the_job_at_the_exact_time() {
    let job = "  metadata: {name: slow}\n  spec:\n    activeDeadlineSeconds: 100\n    template:\n      spec:\n        restartPolicy: Never\n        terminationGracePeriodSeconds: 5\n        containers: [{name: main, image: busybox}]\n";
    let sim = simulate_text(&document(job, "  - runFor: 1h\n"));
    assert_finished(&sim, JobConditionType::Failed, "DeadlineExceeded");
    let target = condition(&sim.status, &JobConditionType::FailureTarget);
    assert_eq!(target.last_transition_time, Some(t(100)));
    assert_eq!(
        condition(&sim.status, &JobConditionType::Failed).last_transition_time,
        Some(t(105)),
        "the pod is killed after its 5s grace period"
    );
    assert_eq!(sim.status.failed, 1);
}

#[test]
fn on_failure_restarts_count_against_the_backoff_limit() {
    let job = "  metadata: {name: flaky}\n  spec:\n    backoffLimit: 3\n    template:\n      spec:\n        restartPolicy: OnFailure\n        terminationGracePeriodSeconds: 0\n        containers: [{name: main, image: busybox}]\n";
    let sim = simulate_text(&document(job, "  - runFor: 1s\n    exitCode: 2\n"));
    assert_finished(&sim, JobConditionType::Failed, "BackoffLimitExceeded");
    // One pod; its container fails at 1s, restarts after 10s, fails at 12s, restarts
    // after 20s, fails at 33s: three restarts reach backoffLimit 3.
    assert_eq!(lines_with(&sim, "\"create\"").len(), 1);
    let exits: Vec<_> = sim
        .events
        .iter()
        .filter(|e| matches!(e.kind, SimEventKind::Exit { .. }))
        .map(|e| e.t)
        .collect();
    assert_eq!(exits, [t(1), t(12), t(33), t(33)], "{}", sim.json_lines());
    assert_eq!(sim.status.failed, 1);
}

#[test]
fn a_suspended_job_stops_when_nothing_can_happen() {
    let job = "  metadata: {name: paused}\n  spec:\n    suspend: true\n    template:\n      spec:\n        restartPolicy: Never\n        containers: [{name: main, image: busybox}]\n";
    let sim = simulate_text(&document(job, "  - runFor: 1s\n"));
    assert!(!sim.finished);
    assert_eq!(sim.end, t(0));
    let c = condition(&sim.status, &JobConditionType::Suspended);
    assert_eq!(c.reason, "JobSuspended");
    assert_eq!(sim.status.start_time, None);
}

#[test]
fn until_stops_the_run_early() {
    let text = format!(
        "start: {START}\nuntil: 2026-01-01T00:00:30Z\njob:\n{}pods:\n  - runFor: 1m\n",
        corpus_job("job.yaml")
    );
    let sim = simulate_text(&text);
    assert!(!sim.finished);
    assert_eq!(sim.status.active, 1);
    assert_eq!(sim.end, t(0));
}

#[test]
fn rules_can_be_built_in_code() {
    let text = document(&corpus_job("indexed-job.yaml"), "  []\n");
    let mut input: SimulationInput = parse_input(&text, "x.yaml").unwrap();
    input.pods = vec![
        PodRule::exit(Duration::seconds(2), 1)
            .when(PodMatch::any().with_indexes([3]).with_attempt(0)),
        PodRule::evicted(Duration::seconds(1)).when(PodMatch::any().with_ordinal(0)),
        PodRule::exit(Duration::milliseconds(500), 0),
    ];
    let sim = simulate_job(&input).unwrap();
    assert_finished(&sim, JobConditionType::Complete, "CompletionsReached");
    assert_eq!(sim.status.failed, 2);
    assert!(
        sim.json_lines()
            .contains(r#""t":"2026-01-01T00:00:00.500Z""#)
    );
}

#[test]
fn parse_input_is_for_jobs_and_points_cronjobs_elsewhere() {
    let err = parse_input(
        "start: 2026-01-01T00:00:00Z\ncronjob: {metadata: {name: c}}\njobs: [{runFor: 90s, result: Complete}]\n",
        "c.yaml",
    )
    .unwrap_err();
    assert!(matches!(err, SimulateError::Unsupported(_)), "{err:?}");
    assert!(err.to_string().contains("parse_document"), "{err}");
}

#[test]
fn unreadable_documents_name_line_and_column() {
    let err = parse_input(
        "start: 2026-01-01T00:00:00Z\njob: {metadata: {name: a}}\npods:\n  - runFor: 5 seconds\n",
        "bad.yaml",
    )
    .unwrap_err();
    let SimulateError::Parse(p) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(p.line, Some(4), "{err}");
    assert!(p.column.is_some(), "{err}");
    assert!(
        err.to_string().starts_with("bad.yaml: line 4, column"),
        "{err}"
    );

    let err = parse_input(
        "start: 2026-01-01T00:00:00Z\njob: {}\npod: []\n",
        "typo.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `pod`"), "{err}");

    let err = parse_input("start: soon\njob: {}\n", "t.yaml").unwrap_err();
    assert!(matches!(err, SimulateError::Parse(_)), "{err:?}");
}

#[test]
fn invalid_jobs_and_rules_are_refused() {
    let text = document(
        "  metadata: {name: a}\n  spec: {template: {spec: {restartPolicy: Always, containers: [{name: main, image: x}]}}}\n",
        "  []\n",
    );
    let err = simulate_job(&parse_input(&text, "a.yaml").unwrap()).unwrap_err();
    assert!(matches!(err, SimulateError::InvalidJob(_)), "{err:?}");

    let text = document(&corpus_job("job.yaml"), "  - exitCodes: {main: 1}\n");
    let err = simulate_job(&parse_input(&text, "a.yaml").unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("pods[0]: exitCodes names container \"main\""),
        "{err}"
    );

    let text = document(
        &corpus_job("job.yaml"),
        "  - exitCode: 1\n    evicted: true\n",
    );
    let err = parse_input(&text, "a.yaml").unwrap_err();
    assert!(
        matches!(err, SimulateError::InvalidRule { rule: 0, .. }),
        "{err:?}"
    );

    let text = format!(
        "start: {START}\nuntil: 2025-01-01T00:00:00Z\njob:\n{}",
        corpus_job("job.yaml")
    );
    let err = simulate_job(&parse_input(&text, "a.yaml").unwrap()).unwrap_err();
    assert!(
        matches!(err, SimulateError::InvalidHorizon { .. }),
        "{err:?}"
    );
}
