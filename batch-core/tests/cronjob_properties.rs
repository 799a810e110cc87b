//! Property tests for the CronJob machine (STYLE §9): random runs of [`reconcile`] on a
//! virtual clock, with child Jobs that finish, fail or disappear at random, under every
//! concurrency policy, DST policy and a few zones and schedules.
//!
//! Invariants: a CronJob never creates two Jobs for the same scheduled time, nor a Job whose
//! name exists; with `Forbid` never two running Jobs; after a step is applied the history
//! never exceeds its limits; the same inputs give the same decision.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use batch_core::cron::DstPolicy;
use batch_core::cronjob::{ChildJob, ChildJobResult, CronJobOptions, reconcile};
use batch_core::model::CronJob;
use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

const SCHEDULES: &[&str] = &[
    "0 * * * *",
    "*/20 * * * *",
    "30 1,2 * * *",
    "30 10,11,12 * * 1-5",
    "0 0 * * 0",
    "@every 45s",
    "@every 50m",
    "* * * * *",
];
const ZONES: &[Option<&str>] = &[None, Some("America/New_York"), Some("Europe/Berlin")];
const POLICIES: &[&str] = &["Allow", "Forbid", "Replace"];

/// One step of a random run: how far the clock moves, and what happens to the Jobs.
#[derive(Debug, Clone)]
struct Tick {
    advance_s: i64,
    /// Per running Job (by position): 0–5 keep running, 6 completes, 7 fails, 8 vanishes.
    fates: Vec<u8>,
    /// Run the step twice (the second must do no harm).
    repeat: bool,
}

fn tick() -> impl Strategy<Value = Tick> {
    (
        prop_oneof![0i64..120, 0i64..7200, 0i64..200_000],
        prop::collection::vec(0u8..9, 0..6),
        any::<bool>(),
    )
        .prop_map(|(advance_s, fates, repeat)| Tick {
            advance_s,
            fates,
            repeat,
        })
}

#[derive(Debug, Clone)]
struct Setup {
    schedule: &'static str,
    zone: Option<&'static str>,
    policy: &'static str,
    deadline: Option<i64>,
    success_limit: i32,
    failed_limit: i32,
    dst: DstPolicy,
    start_offset_s: i64,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(SCHEDULES),
        prop::sample::select(ZONES),
        prop::sample::select(POLICIES),
        prop::option::of(0i64..7200),
        0i32..4,
        0i32..3,
        any::<bool>(),
        0i64..(400 * 86_400),
    )
        .prop_map(
            |(
                schedule,
                zone,
                policy,
                deadline,
                success_limit,
                failed_limit,
                k8s,
                start_offset_s,
            )| {
                Setup {
                    schedule,
                    zone,
                    policy,
                    deadline,
                    success_limit,
                    failed_limit,
                    dst: if k8s {
                        DstPolicy::Kubernetes
                    } else {
                        DstPolicy::RunOnce
                    },
                    start_offset_s,
                }
            },
        )
}

fn cron_job(s: &Setup, created: chrono::DateTime<Utc>) -> CronJob {
    let mut yaml = format!(
        "metadata: {{name: cj, uid: c1, creationTimestamp: {}}}\nspec:\n  schedule: {:?}\n  concurrencyPolicy: {}\n  successfulJobsHistoryLimit: {}\n  failedJobsHistoryLimit: {}\n  jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: c, image: busybox}}]}}}}}}}}\n",
        created.to_rfc3339(),
        s.schedule,
        s.policy,
        s.success_limit,
        s.failed_limit
    );
    if let Some(zone) = s.zone {
        yaml.push_str(&format!("  timeZone: {zone}\n"));
    }
    if let Some(d) = s.deadline {
        yaml.push_str(&format!("  startingDeadlineSeconds: {d}\n"));
    }
    serde_norway::from_str(&yaml).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_runs_keep_the_invariants(s in setup(), ticks in prop::collection::vec(tick(), 1..40)) {
        // Start in 2024 so that the runs cross DST transitions of both zones.
        let mut now = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(s.start_offset_s);
        let mut cj = cron_job(&s, now);
        let options = CronJobOptions::new().with_dst(s.dst);
        let mut jobs: Vec<ChildJob> = Vec::new();
        let mut scheduled_seen = BTreeSet::new();

        for t in ticks {
            now += Duration::seconds(t.advance_s);
            let mut running = 0;
            jobs.retain_mut(|j| {
                if j.finished.is_some() {
                    return true;
                }
                let fate = t.fates.get(running).copied().unwrap_or(0);
                running += 1;
                match fate {
                    6 => { j.finished = Some(ChildJobResult::Complete); j.completion_time = Some(now); true }
                    7 => { j.finished = Some(ChildJobResult::Failed); true }
                    8 => false,
                    _ => true,
                }
            });
            for _ in 0..(1 + usize::from(t.repeat)) {
                let d = reconcile(&cj, &jobs, now, &options);
                prop_assert_eq!(&d, &reconcile(&cj, &jobs, now, &options), "not deterministic");
                if let Some(at) = d.requeue_at {
                    prop_assert!(at > now || cj.spec.suspend == Some(true), "requeue in the past: {} at {}", at, now);
                }
                jobs.retain(|j| !d.delete.contains(&j.name));
                if let Some(job) = &d.create {
                    let scheduled = d.scheduled_time.unwrap();
                    prop_assert!(scheduled <= now);
                    prop_assert!(scheduled_seen.insert(scheduled), "two Jobs for {}", scheduled);
                    prop_assert!(!jobs.iter().any(|j| j.name == job.name()), "{} exists", job.name());
                    jobs.push(ChildJob {
                        name: job.name().to_owned(),
                        scheduled_time: Some(scheduled),
                        created_at: Some(now),
                        start_time: Some(now),
                        ..ChildJob::default()
                    });
                }
                let count = |r| jobs.iter().filter(|j| j.finished == Some(r)).count();
                prop_assert!(count(ChildJobResult::Complete) <= usize::try_from(s.success_limit).unwrap());
                prop_assert!(count(ChildJobResult::Failed) <= usize::try_from(s.failed_limit).unwrap());
                if s.policy == "Forbid" {
                    prop_assert!(jobs.iter().filter(|j| j.finished.is_none()).count() <= 1);
                }
                cj.status = d.status;
            }
        }
    }
}
