//! The per-step limits of the Job machine (spec §2.9, §2.12): at most 500 pods deleted or
//! created, and at most 500 terminal pods counted, in one step; the rest wait for the next.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::defaults;
use batch_core::job::{JobMemory, ObservedPod, PodPhase, reconcile};
use batch_core::model::{Job, JobConditionType};
use chrono::{TimeZone, Utc};

fn job(spec: serde_json::Value) -> Job {
    let mut v = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "big", "uid": "u-big"},
        "spec": {"template": {"spec": {"restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox"}]}}}
    });
    for (k, val) in spec.as_object().unwrap() {
        v["spec"][k] = val.clone();
    }
    let mut job: Job = serde_json::from_value(v).unwrap();
    defaults::default_job(&mut job);
    job
}

fn pods(n: usize, phase: PodPhase) -> Vec<ObservedPod> {
    (0..n)
        .map(|i| ObservedPod {
            name: format!("big-{i:04}"),
            phase,
            created_at: Some(
                Utc.timestamp_opt(1_767_225_600 + i64::try_from(i).unwrap(), 0)
                    .unwrap(),
            ),
            finished_at: phase
                .is_terminal()
                .then(|| Utc.timestamp_opt(1_767_226_000, 0).unwrap()),
            ..ObservedPod::default()
        })
        .collect()
}

#[test]
fn at_most_500_pods_are_created_in_one_step() {
    let j = job(serde_json::json!({"completions": 2000, "parallelism": 1200}));
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let d = reconcile(&j, &[], &JobMemory::default(), now);
    assert_eq!(d.create.len(), 500);
    assert_eq!(d.status.active, 500);
    let names: std::collections::BTreeSet<_> = d.create.iter().map(|p| &p.name).collect();
    assert_eq!(names.len(), 500, "pod names are unique");
}

#[test]
fn at_most_500_pods_are_deleted_in_one_step() {
    // 700 running pods, parallelism lowered to 0: 500 go now, 200 next step.
    let j = job(serde_json::json!({"completions": 1000, "parallelism": 0}));
    let running = pods(700, PodPhase::Running);
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 1, 0, 0).unwrap();
    let d = reconcile(&j, &running, &JobMemory::default(), now);
    assert_eq!(d.delete.len(), 500);
    assert!(d.create.is_empty());
    assert_eq!(d.status.active, 200);
    assert_eq!(d.status.terminating, Some(500));
}

#[test]
fn at_most_500_terminal_pods_are_counted_in_one_step_and_the_job_waits() {
    // 600 succeeded pods of a 600-completion NonIndexed Job: 500 are counted and released
    // now; the Job is not declared finished (Complete) in a step that hit the limit.
    let j = job(serde_json::json!({"completions": 600, "parallelism": 600}));
    let done = pods(600, PodPhase::Succeeded);
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 2, 0, 0).unwrap();
    let d = reconcile(&j, &done, &JobMemory::default(), now);
    assert_eq!(d.release.len(), 500);
    assert_eq!(d.status.succeeded, 500);
    // The target may be recorded, but the Job is not declared finished in this step.
    assert!(!d.status.has_true_condition(&JobConditionType::Complete));

    // Next step: the released pods are gone; the other 100 are counted and the Job completes.
    let mut next = j.clone();
    next.status = d.status.clone();
    let rest: Vec<ObservedPod> = done
        .into_iter()
        .filter(|p| !d.release.contains(&p.name))
        .collect();
    let d2 = reconcile(&next, &rest, &d.memory, now);
    assert_eq!(d2.release.len(), 100);
    assert_eq!(d2.status.succeeded, 600);
    assert!(d2.status.has_true_condition(&JobConditionType::Complete));
}

#[test]
fn pods_listed_as_uncounted_by_an_earlier_write_are_counted_exactly_once() {
    // An earlier partial write (upstream phase 1) listed p-0001 as uncounted: it is moved
    // into the counter now, once, whether or not its record is still there.
    let mut j = job(serde_json::json!({"completions": 5, "parallelism": 1}));
    j.status.succeeded = 1;
    j.status.uncounted_terminated_pods = Some(batch_core::model::UncountedTerminatedPods {
        succeeded: vec!["big-0001".into()],
        ..Default::default()
    });
    let mut done = pods(2, PodPhase::Succeeded);
    done.remove(0); // only big-0001 is still observed
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 3, 0, 0).unwrap();
    let d = reconcile(&j, &done, &JobMemory::default(), now);
    assert_eq!(d.status.succeeded, 2);
    assert_eq!(d.status.uncounted_terminated_pods, None);
    assert_eq!(d.release, vec!["big-0001".to_owned()]);
    // And with the record gone, it is not counted again.
    let mut next = j.clone();
    next.status = d.status.clone();
    let d2 = reconcile(&next, &[], &d.memory, now);
    assert_eq!(d2.status.succeeded, 2);
}

#[test]
fn a_failing_job_deletes_every_active_pod_not_only_500() {
    // The 500 cap belongs to manageJob; the failure path deletes all active pods (spec
    // §2.10 step 1) and records the FailureTarget. Found in review.
    let j = job(serde_json::json!({"completions": 600, "parallelism": 501, "backoffLimit": 0}));
    let mut observed = pods(501, PodPhase::Running);
    observed.push(ObservedPod {
        name: "big-failed".into(),
        phase: PodPhase::Failed,
        finished_at: Some(Utc.timestamp_opt(1_767_226_000, 0).unwrap()),
        ..ObservedPod::default()
    });
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 4, 0, 0).unwrap();
    let d = reconcile(&j, &observed, &JobMemory::default(), now);
    assert_eq!(d.delete.len(), 501);
    assert_eq!(d.status.active, 0);
    assert!(
        d.status
            .has_true_condition(&JobConditionType::FailureTarget)
    );
}
