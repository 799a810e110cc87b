//! The CronJob machine over a long virtual run.
//!
//! - `simulate_cronjob/every_minute_one_year`: `* * * * *` (UTC, policy Allow, default
//!   history limits) simulated for one year through `batch_core::simulate`: 525,600 slots,
//!   each child Job running 30 s and completing. Every slot takes a handful of machine steps
//!   (the create, the finish, the history cleanup that deletes the oldest Job), so this is
//!   millions of `cronjob::reconcile` calls. Measured with a small sample size: one run takes
//!   seconds.
//!
//! Run with `cargo bench -p batch-core --bench cronjob`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use batch_core::model::CronJob;
use batch_core::simulate::{CronJobSimulationInput, JobResult, JobRule, simulate_cron_job};
use chrono::{Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_main};

fn every_minute_for_a_year() -> CronJobSimulationInput {
    let cron_job: CronJob = serde_norway::from_str(
        "metadata: {name: minutely, namespace: default, creationTimestamp: 2024-12-31T23:59:00Z}
spec:
  schedule: \"* * * * *\"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers: [{name: main, image: busybox}]
",
    )
    .unwrap();
    let start = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
    let mut input = CronJobSimulationInput::new(start, cron_job);
    // Created a minute before the start, so the first slot is the start itself; the last
    // one, 2025-12-31T23:59, is created 100 ms after it.
    input.until = Some(start + Duration::days(365));
    input.jobs = vec![JobRule::new(Duration::seconds(30), JobResult::Complete)];
    input
}

fn bench_simulate(c: &mut Criterion) {
    let input = every_minute_for_a_year();
    let run = simulate_cron_job(&input).unwrap();
    assert_eq!(run.jobs_created, 525_600);
    println!(
        "simulate_cronjob/every_minute_one_year: {} Jobs, {} events, virtual run time {} days",
        run.jobs_created,
        run.events.len(),
        (run.end - input.start).num_days()
    );
    let mut group = c.benchmark_group("simulate_cronjob");
    group.sample_size(10);
    group.bench_function("every_minute_one_year", |b| {
        b.iter(|| simulate_cron_job(black_box(&input)).unwrap());
    });
    group.finish();
}

/// The benchmark groups (written out rather than with `criterion_group!`, whose generated
/// function has no documentation).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_simulate(&mut c);
}

criterion_main!(benches);
