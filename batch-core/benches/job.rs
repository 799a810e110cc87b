//! The Job machine at scale.
//!
//! - `reconcile/100k_completions_1000_active`: one step on an Indexed Job with 100,000
//!   completions, half of them done, 1,000 running pods of which 20 just ended (10 succeeded,
//!   10 failed); `..._fragmented` is the same with every other index of the first half done
//!   (25,000 ranges in `completedIndexes`, the worst case for the interval strings).
//! - `reconcile_flat/<completions>`: one step with 1,000 / 10,000 / 100,000 / 1,000,000
//!   completions, half done, 100 running pods of which 5 just succeeded: the per-step cost
//!   should stay roughly flat as completions grow.
//! - `simulate/100k_completions_parallelism_1000`: a whole run to completion of an Indexed
//!   Job with 100,000 completions and parallelism 1,000 through `batch_core::simulate`
//!   (pods run 7 s, 11 s or 13 s by index; one index in 97 fails its first attempt).
//!   Measured with a small sample size: one run takes seconds.
//!
//! Run with `cargo bench -p batch-core --bench job`.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use batch_core::defaults;
use batch_core::job::{ContainerState, IndexSet, JobMemory, ObservedPod, PodPhase, reconcile};
use batch_core::model::Job;
use batch_core::simulate::{PodMatch, PodRule, SimulationInput, simulate_job};
use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_main};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn indexed_job(completions: i32, parallelism: i32, backoff_limit: i32) -> Job {
    let mut job: Job = serde_norway::from_str(&format!(
        "metadata: {{name: scale, namespace: default}}
spec:
  completions: {completions}
  parallelism: {parallelism}
  completionMode: Indexed
  backoffLimit: {backoff_limit}
  template:
    spec:
      restartPolicy: Never
      containers: [{{name: main, image: busybox}}]
"
    ))
    .unwrap();
    defaults::prepare_job_for_create(&mut job, "bench-uid");
    job
}

fn pod(index: i32, phase: PodPhase, exit_code: Option<i32>, at: DateTime<Utc>) -> ObservedPod {
    ObservedPod {
        name: format!("scale-{index}-x"),
        phase,
        index: Some(index.to_string()),
        annotations: [(
            batch_core::job::COMPLETION_INDEX_ANNOTATION.to_owned(),
            index.to_string(),
        )]
        .into(),
        ready: phase == PodPhase::Running,
        ready_since: Some(at - Duration::seconds(30)),
        scheduled: Some(true),
        created_at: Some(at - Duration::seconds(30)),
        finished_at: phase.is_terminal().then_some(at),
        containers: vec![ContainerState {
            name: "main".into(),
            exit_code,
            finished_at: phase.is_terminal().then_some(at),
            ..ContainerState::default()
        }],
        ..ObservedPod::default()
    }
}

/// A Job half done (indexes `[0, completions/2)` completed), with `active` pods running on
/// the next indexes, the first `succeeded` of them just succeeded and the next `failed` just
/// failed.
fn state(
    completions: i32,
    parallelism: i32,
    active: i32,
    succeeded: i32,
    failed: i32,
) -> (Job, Vec<ObservedPod>) {
    let mut job = indexed_job(completions, parallelism, i32::MAX);
    let now = t0() + Duration::hours(1);
    let half = completions / 2;
    let mut done = IndexSet::new();
    done.insert_range(0, half - 1);
    job.status.completed_indexes = done.to_string();
    job.status.succeeded = half;
    job.status.active = active;
    job.status.start_time = Some(t0());
    let pods = (0..active)
        .map(|k| {
            let ix = half + k;
            if k < succeeded {
                pod(ix, PodPhase::Succeeded, Some(0), now)
            } else if k < succeeded + failed {
                pod(ix, PodPhase::Failed, Some(1), now)
            } else {
                pod(ix, PodPhase::Running, None, now)
            }
        })
        .collect();
    (job, pods)
}

fn bench_step(c: &mut Criterion) {
    let now = t0() + Duration::hours(1);
    let memory = JobMemory::default();
    let (job, pods) = state(100_000, 1_000, 1_000, 10, 10);
    let decision = reconcile(&job, &pods, &memory, now);
    assert_eq!(decision.release.len(), 20);
    c.bench_function("reconcile/100k_completions_1000_active", |b| {
        b.iter(|| reconcile(black_box(&job), black_box(&pods), &memory, now));
    });

    // Worst case for the interval strings: every other index of the first half completed
    // (25,000 separate ranges in completedIndexes, parsed and written at every step).
    let (mut job, pods) = state(100_000, 1_000, 1_000, 10, 10);
    let fragmented: IndexSet = (0..50_000).filter(|i| i % 2 == 0).collect();
    job.status.completed_indexes = fragmented.to_string();
    job.status.succeeded = 25_000;
    c.bench_function("reconcile/100k_completions_1000_active_fragmented", |b| {
        b.iter(|| reconcile(black_box(&job), black_box(&pods), &memory, now));
    });

    let mut group = c.benchmark_group("reconcile_flat");
    for completions in [1_000, 10_000, 100_000, 1_000_000] {
        let (job, pods) = state(completions, 100, 100, 5, 0);
        group.bench_function(completions.to_string(), |b| {
            b.iter(|| reconcile(black_box(&job), black_box(&pods), &memory, now));
        });
    }
    group.finish();
}

fn scale_input() -> SimulationInput {
    let mut input = SimulationInput::new(t0(), indexed_job(100_000, 1_000, 100_000));
    let every = |k: i32, r: i32| (0..100_000).filter(move |i| i % k == r);
    input.pods = vec![
        PodRule::exit(Duration::seconds(5), 1)
            .when(PodMatch::any().with_indexes(every(97, 0)).with_attempt(0)),
        PodRule::exit(Duration::seconds(7), 0).when(PodMatch::any().with_indexes(every(3, 0))),
        PodRule::exit(Duration::seconds(11), 0).when(PodMatch::any().with_indexes(every(3, 1))),
        PodRule::exit(Duration::seconds(13), 0),
    ];
    input
}

fn bench_simulate(c: &mut Criterion) {
    let input = scale_input();
    let run = simulate_job(&input).unwrap();
    assert!(run.finished);
    assert_eq!(run.status.succeeded, 100_000);
    assert_eq!(run.status.completed_indexes, "0-99999");
    println!(
        "simulate/100k_completions_parallelism_1000: {} events, virtual run time {}s, failed {}",
        run.events.len(),
        (run.end - input.start).num_seconds(),
        run.status.failed
    );
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.bench_function("100k_completions_parallelism_1000", |b| {
        b.iter(|| simulate_job(black_box(&input)).unwrap());
    });
    group.finish();
}

/// The benchmark groups (written out rather than with `criterion_group!`, whose generated
/// function has no documentation).
fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench_step(&mut c);
    bench_simulate(&mut c);
}

criterion_main!(benches);
