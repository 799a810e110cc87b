//! Properties of the Job machine over random Jobs and random pod histories (STYLE §9):
//! active never exceeds parallelism, counts never go down, a finished Job stays finished
//! and creates nothing, no index beyond completions is created, the same input gives the
//! same output, and replaying from any persisted status + memory gives the same rest of
//! the run.
//!
//! The driver here is deliberately small and independent of `batch_core::simulate`: pods
//! end after a pseudo-random number of steps with a pseudo-random outcome, both derived
//! from a seed and the pod's name, so a run is a pure function of its inputs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::defaults;
use batch_core::job::{
    ContainerState, JobDecision, JobMemory, ObservedPod, PodCondition, PodPhase, reconcile,
};
use batch_core::model::{ConditionStatus, Job, JobConditionType, JobStatus};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Spec {
    completions: Option<i32>,
    parallelism: i32,
    indexed: bool,
    backoff_limit: i32,
    per_index: Option<i32>,
    max_failed_indexes: Option<i32>,
    policy: u8,
    replacement_failed: bool,
    on_failure: bool,
    deadline: Option<i64>,
    suspend_at: Option<u32>,
    resume_at: Option<u32>,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        (prop::option::of(0i32..12), 0i32..5, any::<bool>(), 0i32..5),
        (
            prop::option::of(0i32..3),
            prop::option::of(0i32..4),
            0u8..4,
            any::<bool>(),
        ),
        (
            any::<bool>(),
            prop::option::of(5i64..200),
            prop::option::of(1u32..10),
            prop::option::of(1u32..20),
        ),
    )
        .prop_map(
            |(
                (completions, parallelism, indexed, backoff_limit),
                (per_index, max_failed, policy, replacement_failed),
                (on_failure, deadline, suspend_at, resume_at),
            )| {
                // Indexed needs completions; per-index limits need Indexed.
                let indexed = indexed && completions.is_some();
                Spec {
                    completions,
                    parallelism,
                    indexed,
                    backoff_limit,
                    per_index: per_index.filter(|_| indexed),
                    max_failed_indexes: max_failed.filter(|_| indexed && per_index.is_some()),
                    policy,
                    replacement_failed,
                    on_failure: on_failure && policy == 0,
                    deadline,
                    suspend_at,
                    resume_at,
                }
            },
        )
}

fn build_job(s: &Spec) -> Job {
    let mut v = serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "prop", "uid": "uid-prop", "namespace": "ns"},
        "spec": {
            "parallelism": s.parallelism,
            "backoffLimit": s.backoff_limit,
            "template": {"spec": {
                "restartPolicy": if s.on_failure { "OnFailure" } else { "Never" },
                "containers": [{"name": "main", "image": "busybox"}]
            }}
        }
    });
    let spec = &mut v["spec"];
    if let Some(c) = s.completions {
        spec["completions"] = c.into();
    }
    if s.indexed {
        spec["completionMode"] = "Indexed".into();
    }
    if let Some(p) = s.per_index {
        spec["backoffLimitPerIndex"] = p.into();
    }
    if let Some(m) = s.max_failed_indexes {
        spec["maxFailedIndexes"] = m.into();
    }
    if let Some(d) = s.deadline {
        spec["activeDeadlineSeconds"] = d.into();
    }
    match s.policy {
        1 => {
            spec["podFailurePolicy"] = serde_json::json!({"rules": [
                {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
                {"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}
            ]})
        }
        2 if s.per_index.is_some() => {
            spec["podFailurePolicy"] = serde_json::json!({"rules": [
                {"action": "FailIndex", "onExitCodes": {"containerName": "main", "operator": "In", "values": [7]}},
                {"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [7]}}
            ]})
        }
        3 if s.replacement_failed => spec["podReplacementPolicy"] = "Failed".into(),
        _ => {}
    }
    let mut job: Job = serde_json::from_value(v).unwrap();
    defaults::default_job(&mut job);
    job
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn mix(seed: u64, name: &str, salt: u64) -> u64 {
    let mut h = seed ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ (h >> 29)
}

/// Everything the driver carries between steps.
#[derive(Debug, Clone, PartialEq)]
struct World {
    job: Job,
    memory: JobMemory,
    pods: Vec<ObservedPod>,
    step: u32,
    now: DateTime<Utc>,
}

/// One recorded step: what went in and what came out.
#[derive(Debug, Clone, PartialEq)]
struct Record {
    now: DateTime<Utc>,
    status_in: JobStatus,
    decision: JobDecision,
}

/// Runs one step: reconcile, apply the decision, then let time and pods move on.
fn step(world: &mut World, spec: &Spec, seed: u64) -> Record {
    let status_in = world.job.status.clone();
    let decision = reconcile(&world.job, &world.pods, &world.memory, world.now);
    // Apply: deletions mark pods as terminating; releases mark them counted (and forget
    // terminal ones); creations add Pending pods.
    for name in &decision.delete {
        if let Some(p) = world.pods.iter_mut().find(|p| &p.name == name) {
            p.deleting = true;
            p.deletion_time = Some(world.now);
        }
    }
    for name in &decision.release {
        if let Some(p) = world.pods.iter_mut().find(|p| &p.name == name) {
            p.counted = true;
        }
    }
    world.pods.retain(|p| !(p.counted && p.phase.is_terminal()));
    for c in &decision.create {
        world.pods.push(ObservedPod {
            name: c.name.clone(),
            phase: PodPhase::Pending,
            index: c.index.map(|i| i.to_string()),
            annotations: c.annotations.clone(),
            created_at: Some(world.now),
            containers: vec![ContainerState {
                name: "main".into(),
                ..ContainerState::default()
            }],
            ..ObservedPod::default()
        });
    }
    world.job.status = decision.status.clone();
    world.memory = decision.memory.clone();

    // Time moves: to the requested wake-up if it is soon, else by a few seconds.
    world.step += 1;
    let jump = Duration::seconds(
        i64::try_from(1 + mix(seed, "time", u64::from(world.step)) % 30).unwrap(),
    );
    world.now = match decision.requeue_at {
        Some(at) if at > world.now && at - world.now < jump => at,
        _ => world.now + jump,
    };
    // Suspend / resume at fixed steps.
    if spec.suspend_at == Some(world.step) {
        world.job.spec.suspend = Some(true);
    }
    if spec.resume_at == Some(world.step) {
        world.job.spec.suspend = Some(false);
    }
    // Pods move: Pending -> Running; Running may end; terminating pods end.
    let now = world.now;
    for p in &mut world.pods {
        let r = mix(seed, &p.name, u64::from(world.step));
        if p.deleting && !p.phase.is_terminal() {
            if !r.is_multiple_of(3) {
                p.phase = PodPhase::Failed;
                p.finished_at = Some(now);
                p.containers[0].exit_code = Some(137);
            }
            continue;
        }
        match p.phase {
            PodPhase::Pending => p.phase = PodPhase::Running,
            PodPhase::Running => match r % 10 {
                0..=3 => {
                    p.phase = PodPhase::Succeeded;
                    p.finished_at = Some(now);
                    p.containers[0].exit_code = Some(0);
                }
                4 | 5 => {
                    p.phase = PodPhase::Failed;
                    p.finished_at = Some(now);
                    p.containers[0].exit_code =
                        Some([1, 42, 7][usize::try_from(r / 10 % 3).unwrap()]);
                }
                6 => {
                    p.phase = PodPhase::Failed;
                    p.finished_at = Some(now);
                    p.conditions.push(PodCondition {
                        type_: "DisruptionTarget".into(),
                        status: ConditionStatus::True,
                        reason: "EvictionByEvictionAPI".into(),
                        last_transition_time: Some(now),
                    });
                }
                7 if spec.on_failure => p.containers[0].restarts += 1,
                8 => p.ready = true,
                _ => {}
            },
            _ => {}
        }
    }
    Record {
        now: world.now,
        status_in,
        decision,
    }
}

fn run(spec: &Spec, seed: u64, steps: u32) -> (Vec<Record>, Vec<World>) {
    let mut world = World {
        job: build_job(spec),
        memory: JobMemory::default(),
        pods: Vec::new(),
        step: 0,
        now: t0(),
    };
    let mut records = Vec::new();
    let mut worlds = Vec::new();
    for _ in 0..steps {
        worlds.push(world.clone());
        records.push(step(&mut world, spec, seed));
    }
    (records, worlds)
}

fn finished(status: &JobStatus) -> bool {
    status.is_finished()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn invariants_hold_over_random_histories(s in spec(), seed in any::<u64>()) {
        let (records, _) = run(&s, seed, 60);
        for r in &records {
            let d = &r.decision;
            let st = &d.status;
            // No create and delete in one step.
            prop_assert!(d.create.is_empty() || d.delete.is_empty(), "{:?}", d);
            // Counts never go down.
            prop_assert!(st.succeeded >= r.status_in.succeeded, "succeeded went down: {:?} -> {:?}", r.status_in, st);
            prop_assert!(st.failed >= r.status_in.failed, "failed went down: {:?} -> {:?}", r.status_in, st);
            // Active never exceeds parallelism, except pods the machine did not create this
            // step (it only ever adds up to parallelism).
            let created = i32::try_from(d.create.len()).unwrap();
            if created > 0 {
                prop_assert!(st.active <= s.parallelism, "active {} > parallelism {}", st.active, s.parallelism);
            }
            // No index beyond completions, no index twice in one step.
            let mut seen = std::collections::BTreeSet::new();
            for c in &d.create {
                if let Some(ix) = c.index {
                    prop_assert!(ix >= 0 && ix < s.completions.unwrap_or(0), "index {} created", ix);
                    prop_assert!(seen.insert(ix), "index {} created twice", ix);
                }
            }
            // ready <= active; terminal conditions are consistent.
            prop_assert!(st.ready.unwrap_or(0) <= st.active.max(0));
            let has = |t: JobConditionType| st.has_true_condition(&t);
            prop_assert!(!(has(JobConditionType::Complete) && has(JobConditionType::Failed)));
            if has(JobConditionType::Failed) {
                prop_assert!(has(JobConditionType::FailureTarget));
            }
            if has(JobConditionType::Complete) {
                prop_assert!(has(JobConditionType::SuccessCriteriaMet));
                prop_assert!(st.completion_time.is_some());
            }
            if finished(st) {
                prop_assert_eq!(st.active, 0);
                prop_assert_eq!(st.terminating.unwrap_or(0), 0);
            }
            // A finished Job stays finished and creates nothing.
            if finished(&r.status_in) {
                prop_assert!(d.create.is_empty());
                prop_assert!(d.delete.is_empty());
                prop_assert_eq!(&r.status_in, st);
            }
        }
    }

    #[test]
    fn a_step_that_changes_no_pod_is_a_fixed_point(s in spec(), seed in any::<u64>()) {
        let (records, worlds) = run(&s, seed, 40);
        for (w, r) in worlds.iter().zip(&records) {
            let d = &r.decision;
            if !(d.create.is_empty() && d.delete.is_empty() && d.release.is_empty()) {
                continue;
            }
            // Feed the step's own output back in, with the same pods and time.
            let mut job = w.job.clone();
            job.status = d.status.clone();
            let again = reconcile(&job, &w.pods, &d.memory, w.now);
            prop_assert_eq!(&again.status, &d.status);
            prop_assert_eq!(&again.memory, &d.memory);
            prop_assert!(again.create.is_empty() && again.delete.is_empty() && again.release.is_empty());
        }
    }

    #[test]
    fn the_same_input_gives_the_same_decision(s in spec(), seed in any::<u64>()) {
        let (records, worlds) = run(&s, seed, 40);
        for (w, r) in worlds.iter().zip(&records) {
            let again = reconcile(&w.job, &w.pods, &w.memory, w.now);
            prop_assert_eq!(&again, &r.decision);
        }
    }

    #[test]
    fn replaying_from_persisted_state_gives_the_same_rest(s in spec(), seed in any::<u64>(), cut in 0usize..40) {
        let (records, worlds) = run(&s, seed, 40);
        // Persist the state at step `cut` (status and memory through JSON, as a store
        // would), restore it, and run the rest again.
        let saved = &worlds[cut];
        let mut restored = saved.clone();
        let status_json = serde_json::to_string(&saved.job.status).unwrap();
        let memory_json = serde_json::to_string(&saved.memory).unwrap();
        restored.job.status = serde_json::from_str(&status_json).unwrap();
        restored.memory = serde_json::from_str(&memory_json).unwrap();
        for expected in &records[cut..] {
            let r = step(&mut restored, &s, seed);
            prop_assert_eq!(&r, expected);
        }
    }
}

/// The random histories above must reach every kind of ending, or the properties would
/// only ever be checked on dull runs.
#[test]
fn random_histories_reach_every_kind_of_ending() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let mut reasons = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let s = spec().new_tree(&mut runner).unwrap().current();
        let seed = any::<u64>().new_tree(&mut runner).unwrap().current();
        let (records, _) = run(&s, seed, 60);
        for c in &records.last().unwrap().decision.status.conditions {
            if c.status == ConditionStatus::True {
                reasons.insert(format!("{}:{}", c.type_, c.reason));
            }
        }
    }
    for expected in [
        "Complete:CompletionsReached",
        "Failed:BackoffLimitExceeded",
        "Failed:DeadlineExceeded",
        "Failed:PodFailurePolicy",
        "Failed:FailedIndexes",
        "Failed:MaxFailedIndexesExceeded",
        "Suspended:JobSuspended",
    ] {
        assert!(
            reasons.contains(expected),
            "no run ended with {expected}: {reasons:?}"
        );
    }
}
