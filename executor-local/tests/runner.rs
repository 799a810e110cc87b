//! The runner (`batch_core::runner`) driving real local processes.
//!
//! Time is a `ManualClock` shared by the runner and the executor: the pod-failure backoff,
//! TTLs and schedules pass when the test moves the clock, never by sleeping. Timeouts only
//! turn a hang into a failure; nothing asserts how long anything takes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration as StdDuration;

use batch_core::clock::ManualClock;
use batch_core::executor::ExecutorExt;
use batch_core::model::{CronJob, Job, JobConditionType, JobStatus};
use batch_core::runner::{JobHandle, RunEvent, RunEventKind, Runner};
use batch_executor_local::{LocalExecutor, LocalExecutorConfig};
use chrono::{Duration, TimeZone, Utc};
use tokio::sync::broadcast;

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

struct Setup {
    _root: tempfile::TempDir,
    clock: ManualClock,
    executor: Arc<LocalExecutor>,
    runner: Runner,
}

fn setup_at(start: chrono::DateTime<Utc>) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(start);
    let executor = Arc::new(
        LocalExecutor::with_clock(
            LocalExecutorConfig {
                root: root.path().to_path_buf(),
                ..LocalExecutorConfig::default()
            },
            Arc::new(clock.clone()),
        )
        .unwrap(),
    );
    let runner = Runner::new(executor.clone(), Arc::new(clock.clone()));
    Setup {
        _root: root,
        clock,
        executor,
        runner,
    }
}

fn setup() -> Setup {
    setup_at(t0())
}

fn job(value: serde_json::Value) -> Job {
    serde_json::from_value(value).unwrap()
}

/// A Job of one container running `command`.
fn job_of(name: &str, spec: serde_json::Value, command: &[&str]) -> Job {
    let mut spec = spec;
    spec["template"] = serde_json::json!({"spec": {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "none", "command": command}]
    }});
    job(serde_json::json!({"metadata": {"name": name}, "spec": spec}))
}

/// Waits for `f`, polling; the timeout is a hang guard.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let done = tokio::time::timeout(StdDuration::from_secs(60), async {
        while !f() {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "timed out waiting for: {what}");
}

/// Waits for the Job to finish, moving the clock to each deadline anyone sleeps until
/// (pod-failure backoff) while it runs.
async fn finish(h: &JobHandle, clock: &ManualClock) -> JobStatus {
    let wait = h.wait();
    tokio::pin!(wait);
    let run = async {
        loop {
            tokio::select! {
                status = &mut wait => return status.unwrap(),
                () = tokio::time::sleep(StdDuration::from_millis(20)) => {
                    if let Some(d) = clock.next_deadline() {
                        clock.set(d);
                    }
                }
            }
        }
    };
    tokio::time::timeout(StdDuration::from_secs(120), run)
        .await
        .expect("the Job finishes")
}

fn drain(rx: &mut broadcast::Receiver<RunEvent>) -> Vec<RunEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_indexed_job_of_five_completions_at_parallelism_two_completes() {
    let s = setup();
    let h = s
        .runner
        .submit_job(job_of(
            "indexed",
            serde_json::json!({"completions": 5, "parallelism": 2, "completionMode": "Indexed"}),
            &["sh", "-c", "test -n \"$JOB_COMPLETION_INDEX\""],
        ))
        .unwrap();
    let mut rx = h.events();
    let mut most_active = 0;
    let mut statuses = h.status_watch();
    let status = loop {
        let st = statuses.borrow_and_update().clone();
        most_active = most_active.max(st.active);
        if st.is_finished() {
            break st;
        }
        tokio::time::timeout(StdDuration::from_secs(60), statuses.changed())
            .await
            .expect("progress")
            .unwrap();
    };
    assert!(status.has_true_condition(&JobConditionType::Complete));
    assert_eq!(status.completed_indexes, "0-4");
    assert_eq!(status.succeeded, 5);
    assert_eq!(status.failed, 0);
    assert!(most_active <= 2, "at most parallelism pods at once");
    let events = drain(&mut rx);
    let mut indexes: Vec<i32> = events
        .iter()
        .filter_map(|e| match e.kind {
            RunEventKind::Create { index, .. } => index,
            _ => None,
        })
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, [0, 1, 2, 3, 4]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_killed_from_outside_counts_as_a_failure_with_exit_137() {
    let s = setup();
    let h = s
        .runner
        .submit_job(job_of(
            "killed",
            serde_json::json!({"backoffLimit": 0}),
            // `$$` is Kubernetes' escape for `$`: the shell sees `kill -9 $$`.
            &["sh", "-c", "kill -9 $$$$"],
        ))
        .unwrap();
    let mut rx = h.events();
    let status = finish(&h, &s.clock).await;
    assert_eq!(status.failed, 1);
    let failed = status.condition(&JobConditionType::Failed).unwrap();
    assert_eq!(failed.reason, "BackoffLimitExceeded");
    let events = drain(&mut rx);
    assert!(
        events
            .iter()
            .any(|e| matches!(e.kind, RunEventKind::Exit { exit_code: 137, .. })),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exceeding_the_backoff_limit_fails_the_job() {
    let s = setup();
    let h = s
        .runner
        .submit_job(job_of(
            "failing",
            serde_json::json!({"backoffLimit": 2}),
            &["sh", "-c", "exit 3"],
        ))
        .unwrap();
    let status = finish(&h, &s.clock).await;
    assert_eq!(status.failed, 3);
    assert_eq!(status.succeeded, 0);
    let failed = status.condition(&JobConditionType::Failed).unwrap();
    assert_eq!(failed.reason, "BackoffLimitExceeded");
    // The pods are kept (with their logs) until the Job is deleted.
    let pods = s.executor.list_job_pods(h.uid()).await.unwrap();
    assert_eq!(pods.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fail_job_rule_of_the_pod_failure_policy_fails_the_job_at_once() {
    let s = setup();
    let h = s
        .runner
        .submit_job(job_of(
            "policy",
            serde_json::json!({"backoffLimit": 6, "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
            ]}}),
            &["sh", "-c", "exit 42"],
        ))
        .unwrap();
    let status = finish(&h, &s.clock).await;
    assert_eq!(status.failed, 1);
    let failed = status.condition(&JobConditionType::Failed).unwrap();
    assert_eq!(failed.reason, "PodFailurePolicy");
    assert!(
        failed.message.contains("exit code 42"),
        "{}",
        failed.message
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_the_pods_without_counting_them_and_resume_runs_new_ones() {
    let s = setup();
    let marker = s._root.path().join("go");
    let script = format!(
        "if [ -f '{}' ]; then exit 0; else exec sleep 60; fi",
        marker.display()
    );
    let h = s
        .runner
        .submit_job(job_of(
            "pausable",
            serde_json::json!({"completions": 2, "parallelism": 2}),
            &["sh", "-c", &script],
        ))
        .unwrap();
    until("two pods run", || h.status().active == 2).await;
    h.suspend().await.unwrap();
    until("the Job is suspended with no pod left", || {
        let st = h.status();
        st.has_true_condition(&JobConditionType::Suspended)
            && st.active == 0
            && st.terminating.unwrap_or(0) == 0
    })
    .await;
    assert_eq!(h.status().failed, 0);
    assert!(h.status().start_time.is_none());

    std::fs::write(&marker, b"").unwrap();
    h.resume().await.unwrap();
    let status = finish(&h, &s.clock).await;
    assert_eq!(status.succeeded, 2);
    assert_eq!(status.failed, 0);
    assert!(status.has_true_condition(&JobConditionType::Complete));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finished_job_is_deleted_when_its_ttl_runs_out() {
    let s = setup();
    let h = s
        .runner
        .submit_job(job_of(
            "ttl",
            serde_json::json!({"ttlSecondsAfterFinished": 60}),
            &["true"],
        ))
        .unwrap();
    let mut rx = h.events();
    let status = h.wait().await.unwrap();
    assert!(status.has_true_condition(&JobConditionType::Complete));
    assert_eq!(s.executor.list_job_pods(h.uid()).await.unwrap().len(), 1);
    let expiry = batch_core::cronjob::ttl::ttl_expiry(&h.job()).unwrap();
    until("the runner sleeps until the expiry", || {
        s.clock.next_deadline() == Some(expiry)
    })
    .await;
    s.clock.set(expiry);
    let mut events = Vec::new();
    until("the Job is deleted", || {
        events.extend(drain(&mut rx));
        events.iter().any(|e| {
            e.kind
                == RunEventKind::JobDelete {
                    job: "ttl".to_owned(),
                }
        })
    })
    .await;
    assert!(s.executor.list_job_pods(h.uid()).await.unwrap().is_empty());
    // wait() still gives the terminal status.
    assert_eq!(h.wait().await.unwrap(), status);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cron_job_creates_its_job_when_the_clock_reaches_the_schedule() {
    let s = setup_at(t0() + Duration::seconds(30));
    let cron_job: CronJob = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "none", "command": ["true"]}]
            }}}}
        }
    }))
    .unwrap();
    let cj = s.runner.submit_cron_job(cron_job).unwrap();
    let mut rx = cj.events();
    let fire = t0() + Duration::minutes(1) + Duration::milliseconds(100);
    until("the CronJob sleeps until the schedule", || {
        s.clock.next_deadline() == Some(fire)
    })
    .await;
    assert!(cj.jobs().is_empty());
    s.clock.set(fire);
    until("a child Job exists", || cj.jobs().len() == 1).await;
    let child = cj.jobs().remove(0);
    assert_eq!(
        child.name(),
        batch_core::cronjob::job_name("tick", t0() + Duration::minutes(1))
    );
    let status = child.wait().await.unwrap();
    assert_eq!(status.succeeded, 1);
    let mut events = Vec::new();
    until("jobFinish", || {
        events.extend(drain(&mut rx));
        events
            .iter()
            .any(|e| matches!(e.kind, RunEventKind::JobFinish { .. }))
    })
    .await;
    let lines: Vec<String> = events
        .iter()
        .filter_map(RunEvent::to_sim_event)
        .map(|e| e.to_string())
        .collect();
    assert!(lines[0].contains(r#""event":"jobCreate""#), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains(r#""event":"create""#)),
        "the child's pod events are forwarded: {lines:?}"
    );
    until("lastSuccessfulTime", || {
        cj.status().last_successful_time.is_some()
    })
    .await;
    cj.stop().await.unwrap();
}
