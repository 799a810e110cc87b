//! Data-driven scenarios for the Job machine (STYLE §9): one YAML file per scenario in
//! `tests/job_scenarios/`, each its own named test.
//!
//! A file is a `batch sync job` document (conformance-io §3: `now`, `job`, optional
//! `memory`, `pods`) plus an `expect:` section, or a Job plus a list of `steps`, each with
//! its own `now`, `pods`, optional `spec` (merged into the Job spec before the step, as a
//! user edit), optional `memory` (replaces the carried memory) and `expect`. The status and
//! memory each step returns feed the next step.
//!
//! `expect` is compared as a subset of the §3 output object, extended with
//! `createdPods` (name, index, labels, annotations of each pod to create), `eventReasons`
//! (the event reasons in order), `skipped` and `deleteJobAt`:
//! * an object matches when every key it lists matches (a key absent from the output
//!   matches an expected zero value: `null`, `0`, `""`, `[]`, `{}` or `false`);
//! * a list matches a list of the same length, element by element;
//! * numbers compare by value (`10` matches `10.0`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{merge, subset};

use std::path::{Path, PathBuf};

use batch_core::job::sync::{SyncInput, SyncOutput, sync_decision};
use serde_json::{Map, Value, json};

fn folder() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/job_scenarios")
}

/// Runs one step; returns the extended output.
fn step(input: &Value, label: &str) -> Value {
    let yaml = serde_norway::to_string(input).unwrap();
    let input = SyncInput::parse(&yaml, label)
        .unwrap_or_else(|e| panic!("{label}: not a valid sync document: {e}\n{yaml}"));
    let decision = sync_decision(&input);
    let output = SyncOutput::from_decision(&decision, input.now);
    let mut value = serde_json::to_value(&output).unwrap();
    let obj = value.as_object_mut().unwrap();
    obj.insert(
        "createdPods".into(),
        decision
            .create
            .iter()
            .map(|p| {
                json!({"name": p.name, "index": p.index, "labels": p.labels,
                       "annotations": p.annotations, "hostname": p.hostname})
            })
            .collect(),
    );
    obj.insert(
        "eventReasons".into(),
        decision.events.iter().map(|e| json!(e.reason)).collect(),
    );
    obj.insert("skipped".into(), json!(decision.skipped));
    obj.insert("deleteJobAt".into(), json!(decision.delete_job_at));
    value
}

fn run(name: &str) {
    let (mut doc, steps) = common::read_scenario(&folder(), name, &["now", "pods", "expect"]);
    let mut job = doc
        .remove("job")
        .unwrap_or_else(|| panic!("{name}: no job"));
    let mut memory = doc.remove("memory").unwrap_or(Value::Null);
    assert!(doc.is_empty(), "{name}: unknown keys {:?}", doc.keys());
    assert!(!steps.is_empty(), "{name}: no steps");

    for (i, s) in steps.into_iter().enumerate() {
        let Value::Object(mut s) = s else {
            panic!("{name}: step {i} is not an object")
        };
        let label = format!("{name} step {}", i + 1);
        if let Some(patch) = s.remove("spec") {
            merge(&mut job["spec"], &patch);
        }
        if let Some(patch) = s.remove("status") {
            merge(&mut job["status"], &patch);
        }
        if let Some(m) = s.remove("memory") {
            memory = m;
        }
        let expect = s
            .remove("expect")
            .unwrap_or_else(|| panic!("{label}: no expect"));
        let mut input = Map::new();
        input.insert(
            "now".into(),
            s.remove("now").unwrap_or_else(|| panic!("{label}: no now")),
        );
        input.insert("job".into(), job.clone());
        if !memory.is_null() {
            input.insert("memory".into(), memory.clone());
        }
        input.insert("pods".into(), s.remove("pods").unwrap_or(json!([])));
        assert!(s.is_empty(), "{label}: unknown keys {:?}", s.keys());

        let output = step(&Value::Object(input), &label);
        if let Err(mismatch) = subset(&expect, Some(&output), "output") {
            panic!(
                "{label}: {mismatch}\n--- whole output:\n{}",
                serde_json::to_string_pretty(&output).unwrap()
            );
        }
        job["status"] = output["status"].clone();
        memory = output["memory"].clone();
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
    backoff_doubles_and_caps_at_ten_minutes,
    backoff_first_failure_waits_ten_seconds,
    backoff_limit_checked_before_deadline,
    backoff_limit_counts_failed_pods_never,
    backoff_requeue_has_one_second_floor,
    backoff_reset_by_success,
    backoff_success_at_same_time_clears_delay,
    classification_counts_pods,
    completion_waits_for_terminating_pods,
    deadline_requeue_then_exceeded,
    example1_indexed_creates_lowest_indexes,
    example1_nonindexed_creates_parallelism,
    example2_surplus_running_pod_deleted,
    example3_workqueue_success_ignores_failure,
    example4_indexed_completed_indexes_and_pending,
    example5_indexed_invalid_and_duplicate_deleted,
    example6_backoff_limit_zero_fails_in_two_steps,
    failure_target_in_status_leads_to_failed,
    finished_job_does_nothing,
    indexed_completed_indexes_read_both_forms,
    indexed_invalid_indexes_not_counted,
    indexed_out_of_range_active_pod_deleted,
    managed_by_job_controller_is_managed,
    managed_by_other_controller_does_nothing,
    max_failed_indexes_exceeded,
    no_create_and_delete_in_one_step,
    nonindexed_deletion_order,
    on_failure_backoff_limit_zero_fails_on_first_restart,
    on_failure_restarts_reach_backoff_limit,
    on_failure_terminating_pods_restarts_count,
    parallelism_zero_creates_nothing,
    per_index_backoff_does_not_skip_to_later_index,
    per_index_held_pod_enters_the_backoff_record_once,
    job_being_deleted_creates_nothing,
    job_being_deleted_is_not_suspended,
    suspended_job_that_completes_keeps_start_time,
    lenient_reader_stops_at_the_first_item_beyond_completions,
    per_index_limit_fails_index_then_job,
    per_index_replacement_carries_failure_count,
    pfp_container_name_selects_container,
    pfp_count_rule_first_match_wins,
    pfp_failindex_marks_index_failed,
    pfp_failindex_without_per_index_counts,
    pfp_failjob_exit_code_message,
    pfp_failjob_pod_condition_message,
    pfp_ignore_increments_ignored_annotation,
    pfp_ignore_not_counted_but_delays,
    pfp_notin_operator,
    pfp_notin_operator_no_match,
    pfp_pod_condition_order_decides_message,
    pfp_terminating_pod_not_failed_until_terminal,
    pfp_unknown_action_skipped,
    replacement_failed_terminating_pod_holds_slot_and_index,
    replacement_terminating_or_failed_counts_deleted_pod,
    start_time_set_once,
    success_criteria_met_locks_success,
    success_policy_count_rules_in_order,
    success_policy_indexes_deletes_rest,
    suspend_deletes_pods_then_resume_restarts_clock,
    suspended_job_created_without_start_time,
    suspended_job_still_completes,
    too_many_succeeded_pods,
    ttl_after_finished_requeues_until_expiry,
    unknown_completion_mode_skipped,
    workqueue_no_new_pods_after_first_success,
}
