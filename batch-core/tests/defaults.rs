//! Defaulting, rule by rule, as the API server applies it (spec §1.2, §4.1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::defaults::{self, prepare_job_for_create};
use batch_core::model::{
    CompletionMode, ConcurrencyPolicy, ConditionStatus, CronJob, Job, PodReplacementPolicy,
    PullPolicy, RestartPolicy,
};

fn job(yaml: &str) -> Job {
    serde_norway::from_str(yaml).unwrap()
}

fn defaulted(yaml: &str) -> Job {
    let mut j = job(yaml);
    defaults::default_job(&mut j);
    j
}

#[test]
fn completions_and_parallelism_both_default_to_one_when_both_are_unset() {
    let j = defaulted("spec: {}");
    assert_eq!((j.spec.completions, j.spec.parallelism), (Some(1), Some(1)));
}

#[test]
fn parallelism_alone_makes_a_work_queue_job() {
    let j = defaulted("spec: {parallelism: 5}");
    assert_eq!((j.spec.completions, j.spec.parallelism), (None, Some(5)));
}

#[test]
fn completions_alone_gets_parallelism_one() {
    let j = defaulted("spec: {completions: 7}");
    assert_eq!((j.spec.completions, j.spec.parallelism), (Some(7), Some(1)));
}

#[test]
fn explicit_zero_parallelism_is_kept() {
    let j = defaulted("spec: {parallelism: 0}");
    assert_eq!((j.spec.completions, j.spec.parallelism), (None, Some(0)));
}

#[test]
fn backoff_limit_defaults_to_six_or_int32_max_with_a_per_index_limit() {
    assert_eq!(defaulted("spec: {}").spec.backoff_limit, Some(6));
    assert_eq!(
        defaulted("spec: {completionMode: Indexed, completions: 3, backoffLimitPerIndex: 1}")
            .spec
            .backoff_limit,
        Some(i32::MAX)
    );
    assert_eq!(
        defaulted("spec: {backoffLimit: 0}").spec.backoff_limit,
        Some(0)
    );
}

#[test]
fn mode_suspend_and_manual_selector_get_their_defaults() {
    let j = defaulted("spec: {}");
    assert_eq!(j.spec.completion_mode, Some(CompletionMode::NonIndexed));
    assert_eq!(j.spec.suspend, Some(false));
    assert_eq!(j.spec.manual_selector, Some(false));
}

#[test]
fn pod_replacement_policy_depends_on_the_pod_failure_policy() {
    assert_eq!(
        defaulted("spec: {}").spec.pod_replacement_policy,
        Some(PodReplacementPolicy::TerminatingOrFailed)
    );
    let j = defaulted(
        "spec: {podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]}}",
    );
    assert_eq!(
        j.spec.pod_replacement_policy,
        Some(PodReplacementPolicy::Failed)
    );
    assert_eq!(
        j.spec.pod_failure_policy.unwrap().rules[0].on_pod_conditions[0].status,
        ConditionStatus::True
    );
}

#[test]
fn an_empty_restart_policy_becomes_always_which_validation_then_rejects() {
    let j = defaulted("spec: {template: {spec: {containers: [{name: c, image: i}]}}}");
    assert_eq!(j.spec.template.spec.restart_policy, RestartPolicy::Always);
    assert_eq!(
        j.spec.template.spec.termination_grace_period_seconds,
        Some(30)
    );
    assert_eq!(
        j.spec.template.spec.containers[0].image_pull_policy,
        Some(PullPolicy::Always)
    );
}

#[test]
fn job_labels_are_copied_from_the_template_only_when_the_job_has_none() {
    let j = defaulted("spec: {template: {metadata: {labels: {app: x}}}}");
    assert_eq!(j.metadata.labels.get("app").map(String::as_str), Some("x"));
    let j = defaulted(
        "metadata: {labels: {team: y}}\nspec: {template: {metadata: {labels: {app: x}}}}",
    );
    assert_eq!(j.metadata.labels.len(), 1);
    assert!(j.metadata.labels.contains_key("team"));
}

#[test]
fn prepare_for_create_sets_uid_and_generates_selector_and_labels() {
    let mut j = job("metadata: {name: pi}\nspec: {template: {spec: {restartPolicy: Never}}}");
    prepare_job_for_create(&mut j, "u-1");
    assert_eq!(j.metadata.uid.as_deref(), Some("u-1"));
    let labels = &j.spec.template.metadata.labels;
    assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u-1");
    assert_eq!(labels["controller-uid"], "u-1");
    assert_eq!(labels["batch.kubernetes.io/job-name"], "pi");
    assert_eq!(labels["job-name"], "pi");
    let selector = j.spec.selector.as_ref().unwrap();
    assert_eq!(selector.match_labels.len(), 1);
    assert_eq!(
        selector.match_labels["batch.kubernetes.io/controller-uid"],
        "u-1"
    );
    assert!(selector.matches(labels));
}

#[test]
fn prepare_for_create_keeps_an_existing_uid_and_user_labels() {
    let mut j = job(
        "metadata: {name: pi, uid: mine}\nspec: {template: {metadata: {labels: {job-name: other}}}}",
    );
    prepare_job_for_create(&mut j, "ignored");
    assert_eq!(j.metadata.uid.as_deref(), Some("mine"));
    // A conflicting user label is left alone for validation to reject.
    assert_eq!(j.spec.template.metadata.labels["job-name"], "other");
}

#[test]
fn a_manual_selector_is_not_generated() {
    let mut j =
        job("metadata: {name: pi}\nspec: {manualSelector: true, selector: {matchLabels: {a: b}}}");
    prepare_job_for_create(&mut j, "u");
    assert_eq!(j.spec.selector.unwrap().match_labels.len(), 1);
    assert!(j.spec.template.metadata.labels.is_empty());
}

#[test]
fn defaulting_twice_changes_nothing() {
    let mut once = job(
        "metadata: {name: pi}\nspec: {parallelism: 3, podFailurePolicy: {rules: [{action: Count, onPodConditions: [{type: X}]}]}, template: {metadata: {labels: {a: b}}, spec: {containers: [{name: c, image: 'i:1'}]}}}",
    );
    prepare_job_for_create(&mut once, "u");
    let mut twice = once.clone();
    prepare_job_for_create(&mut twice, "u");
    assert_eq!(once, twice);
}

#[test]
fn cron_job_defaults_leave_job_level_template_fields_alone() {
    let mut cj: CronJob = serde_norway::from_str(
        "spec:\n  schedule: '@daily'\n  jobTemplate:\n    spec:\n      podFailurePolicy: {rules: [{action: Ignore, onPodConditions: [{type: DisruptionTarget}]}]}\n      template: {spec: {containers: [{name: c, image: 'i:2'}]}}\n",
    )
    .unwrap();
    defaults::default_cron_job(&mut cj);
    assert_eq!(cj.spec.concurrency_policy, ConcurrencyPolicy::Allow);
    assert_eq!(cj.spec.suspend, Some(false));
    assert_eq!(cj.spec.successful_jobs_history_limit, Some(3));
    assert_eq!(cj.spec.failed_jobs_history_limit, Some(1));
    let template = &cj.spec.job_template.spec;
    assert_eq!(template.completions, None);
    assert_eq!(template.parallelism, None);
    assert_eq!(template.backoff_limit, None);
    assert_eq!(template.pod_replacement_policy, None);
    assert_eq!(template.template.spec.restart_policy, RestartPolicy::Always);
    assert_eq!(
        template.template.spec.containers[0].image_pull_policy,
        Some(PullPolicy::IfNotPresent)
    );
    assert_eq!(
        template.pod_failure_policy.as_ref().unwrap().rules[0].on_pod_conditions[0].status,
        ConditionStatus::True
    );
}
