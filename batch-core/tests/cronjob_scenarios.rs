//! Data-driven scenarios for the CronJob machine (STYLE §9): one YAML file per scenario in
//! `tests/cronjob_scenarios/`, each its own named test.
//!
//! A file holds `cronjob` (as stored; defaults are applied as `batch sync cronjob` does),
//! optional `dst` (`run-once`, the default, or `kubernetes`), and either one step (`now`,
//! `jobs`, `expect` at the top level) or a list of `steps`. Each step has its own `now`,
//! optional `jobs` (the child Jobs that exist; when absent, the previous step's Jobs are
//! carried: minus the deleted ones, plus the created one, running since `now`), optional
//! `finish` (`{<job name>: Complete|Failed}`: a carried Job finished at this step's `now`),
//! optional `spec` / `status` (merged into the CronJob before the step, as a user edit) and
//! `expect`. The status each step returns feeds the next step.
//!
//! `expect` is compared as a subset of the conformance-io §4 output object, extended with
//! `createdJob` (the whole Job to create, or `null`), `eventReasons` (the event reasons in
//! order) and `requeueAt`:
//! * an object matches when every key it lists matches (a key absent from the output
//!   matches an expected zero value: `null`, `0`, `""`, `[]`, `{}` or `false`);
//! * a list matches a list of the same length, element by element;
//! * numbers compare by value (`10` matches `10.0`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{merge, subset};

use std::path::{Path, PathBuf};

use batch_core::cron::DstPolicy;
use batch_core::cronjob::CronJobOptions;
use batch_core::cronjob::sync::{SyncInput, SyncOutput, sync_decision};
use serde_json::{Value, json};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cronjob_scenarios")
}

/// Runs one step; returns the extended output.
fn step(input: &Value, options: &CronJobOptions, label: &str) -> Value {
    let yaml = serde_norway::to_string(input).unwrap();
    let input = SyncInput::parse(&yaml, label)
        .unwrap_or_else(|e| panic!("{label}: not a valid sync document: {e}\n{yaml}"));
    let decision = sync_decision(&input, options);
    // The machine is deterministic: the same inputs give the same decision.
    assert_eq!(
        decision,
        sync_decision(&input, options),
        "{label}: not deterministic"
    );
    let output = SyncOutput::from_decision(&decision, input.now);
    let mut value = serde_json::to_value(&output).unwrap();
    let obj = value.as_object_mut().unwrap();
    obj.insert("createdJob".into(), json!(decision.create));
    obj.insert(
        "eventReasons".into(),
        decision.events.iter().map(|e| json!(e.reason)).collect(),
    );
    obj.insert("requeueAt".into(), json!(decision.requeue_at));
    value
}

fn run(name: &str) {
    let (mut doc, steps) = common::read_scenario(&folder(), name, &["now", "jobs", "expect"]);
    let mut cron_job = doc
        .remove("cronjob")
        .unwrap_or_else(|| panic!("{name}: no cronjob"));
    let dst: DstPolicy = match doc.remove("dst") {
        Some(Value::String(s)) => s.parse().unwrap(),
        Some(other) => panic!("{name}: dst must be a string, found {other}"),
        None => DstPolicy::default(),
    };
    let options = CronJobOptions::new().with_dst(dst);
    assert!(doc.is_empty(), "{name}: unknown keys {:?}", doc.keys());
    assert!(!steps.is_empty(), "{name}: no steps");

    let mut jobs: Vec<Value> = Vec::new();
    for (i, s) in steps.into_iter().enumerate() {
        let Value::Object(mut s) = s else {
            panic!("{name}: step {i} is not an object")
        };
        let label = format!("{name} step {}", i + 1);
        if let Some(patch) = s.remove("spec") {
            merge(&mut cron_job["spec"], &patch);
        }
        if let Some(patch) = s.remove("status") {
            merge(&mut cron_job["status"], &patch);
        }
        let now = s.remove("now").unwrap_or_else(|| panic!("{label}: no now"));
        if let Some(Value::Array(given)) = s.remove("jobs") {
            jobs = given;
        }
        if let Some(Value::Object(finish)) = s.remove("finish") {
            for (job, result) in finish {
                let entry = jobs
                    .iter_mut()
                    .find(|j| j["name"] == json!(job))
                    .unwrap_or_else(|| panic!("{label}: finish: no job {job}"));
                entry["finished"] = result.clone();
                if result == json!("Complete") {
                    entry["completionTime"] = now.clone();
                }
            }
        }
        let expect = s
            .remove("expect")
            .unwrap_or_else(|| panic!("{label}: no expect"));
        assert!(s.is_empty(), "{label}: unknown keys {:?}", s.keys());
        let input = json!({"now": now, "cronjob": cron_job, "jobs": jobs});

        let output = step(&input, &options, &label);
        if let Err(mismatch) = subset(&expect, Some(&output), "output") {
            panic!(
                "{label}: {mismatch}\n--- whole output:\n{}",
                serde_json::to_string_pretty(&output).unwrap()
            );
        }
        cron_job["status"] = output["status"].clone();
        let deleted: Vec<Value> = output["delete"].as_array().unwrap().clone();
        jobs.retain(|j| !deleted.contains(&j["name"]));
        for created in output["create"].as_array().unwrap() {
            jobs.push(
                json!({"name": created["name"], "scheduledTime": created["scheduledTime"],
                             "createdAt": now, "startTime": now}),
            );
        }
    }
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run(stringify!($name));
            }
        )*

        /// Every scenario listed above, by file stem.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

#[test]
fn every_scenario_file_is_listed() {
    common::check_every_file_is_listed(&folder(), LISTED);
}

scenarios! {
    allow_runs_jobs_concurrently,
    already_processed_slot_is_not_started_again,
    clock_going_backwards_creates_nothing,
    completed_job_leaves_active_and_last_successful_time_lags,
    creates_job_for_most_recent_time,
    deleted_cronjob_only_updates_status,
    dst_fall_back_kubernetes_runs_twice,
    dst_fall_back_run_once_runs_once,
    dst_spring_forward_kubernetes_skips_the_day,
    dst_spring_forward_run_once_runs_after_gap,
    every_schedule_counts_from_last_schedule_time,
    existing_finished_job_with_deterministic_name_advances_schedule,
    existing_slot_job_does_not_bypass_forbid,
    existing_slot_job_does_not_bypass_replace,
    existing_job_with_deterministic_name_is_never_created_twice,
    forbid_skips_then_starts_late_when_job_ends,
    forbid_with_deadline_drops_late_start,
    history_cleanup_deletes_oldest_beyond_limits,
    history_limit_zero_keeps_none,
    irregular_schedule_missed_run_found_exactly,
    missing_active_job_removed,
    no_time_zone_means_utc,
    nothing_due_requeues_at_next_fire,
    replace_deletes_running_job,
    schedule_change_between_steps_uses_last_schedule_time,
    schedule_that_never_fires_is_invalid,
    scheduled_timestamp_annotation_uses_time_zone,
    starting_deadline_exactly_at_limit_is_missed,
    starting_deadline_missed_slot_is_reported,
    starting_deadline_starts_within_deadline,
    suspended_creates_nothing_and_does_not_requeue,
    too_many_missed_warns_and_still_starts,
    tz_prefix_in_schedule_warns_and_is_used,
    unexpected_running_job_warns_and_is_not_adopted,
    unknown_time_zone_warns_without_requeue,
    unparseable_schedule_warns_without_requeue,
    weekend_outage_starts_friday_last_run,
}
