//! Job and CronJob validation through the public API: every rule family, with the exact
//! field path, error type, bad value and detail the Kubernetes API server reports, and the
//! verdict on every manifest of the Kubernetes documentation corpus.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::defaults::{default_cron_job, prepare_job_for_create};
use batch_core::loader;
use batch_core::model::{CronJob, Job, Manifest};
use batch_core::validation::{FieldError, validate_cron_job, validate_job};
use serde_json::{Value, json};

const CORPUS: &str = "../../shared/corpus/k8s-website";

fn base_job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi"},
        "spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "pi", "image": "perl"}]
        }}}
    })
}

fn base_cron_job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello"},
        "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "hello", "image": "busybox"}]
        }}}}}
    })
}

fn job_errors(value: Value) -> Vec<FieldError> {
    let mut job: Job = serde_json::from_value(value).unwrap();
    prepare_job_for_create(&mut job, "test-uid");
    match validate_job(&job) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0,
    }
}

fn cron_errors(value: Value) -> Vec<FieldError> {
    let mut cron_job: CronJob = serde_json::from_value(value).unwrap();
    default_cron_job(&mut cron_job);
    match validate_cron_job(&cron_job) {
        Ok(()) => Vec::new(),
        Err(errors) => errors.0,
    }
}

/// Asserts that an error with this path, type, bad value and detail is among `errors`.
fn assert_has(
    errors: &[FieldError],
    path: &str,
    type_name: &str,
    bad: Option<Value>,
    detail: &str,
) {
    let found = errors.iter().any(|e| {
        e.path.as_str() == path
            && e.kind.type_name() == type_name
            && e.bad_value == bad
            && e.detail == detail
    });
    assert!(
        found,
        "no {type_name} at {path} (bad value {bad:?}, detail {detail:?}) among:\n{}",
        errors
            .iter()
            .map(|e| format!("  {e} [{}] {:?}", e.kind.type_name(), e.bad_value))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn paths(errors: &[FieldError]) -> Vec<&str> {
    errors.iter().map(|e| e.path.as_str()).collect()
}

// ------------------------------------------------------------------------------------
// Job spec numbers and modes

#[test]
fn a_minimal_job_is_valid() {
    assert_eq!(job_errors(base_job()), vec![]);
}

#[test]
fn negative_parallelism_is_invalid_at_spec_parallelism() {
    let mut v = base_job();
    v["spec"]["parallelism"] = json!(-1);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.parallelism",
        "FieldValueInvalid",
        Some(json!(-1)),
        "must be greater than or equal to 0",
    );
}

#[test]
fn every_negative_count_is_invalid_at_its_own_path() {
    let mut v = base_job();
    v["spec"]["completions"] = json!(-2);
    v["spec"]["activeDeadlineSeconds"] = json!(-3);
    v["spec"]["backoffLimit"] = json!(-4);
    v["spec"]["ttlSecondsAfterFinished"] = json!(-5);
    let errors = job_errors(v);
    for (path, value) in [
        ("spec.completions", -2),
        ("spec.activeDeadlineSeconds", -3),
        ("spec.backoffLimit", -4),
        ("spec.ttlSecondsAfterFinished", -5),
    ] {
        assert_has(
            &errors,
            path,
            "FieldValueInvalid",
            Some(json!(value)),
            "must be greater than or equal to 0",
        );
    }
}

#[test]
fn max_failed_indexes_without_backoff_limit_per_index_requires_it() {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["completions"] = json!(4);
    v["spec"]["maxFailedIndexes"] = json!(1);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.backoffLimitPerIndex",
        "FieldValueRequired",
        None,
        "when maxFailedIndexes is specified",
    );
}

#[test]
fn an_unknown_completion_mode_is_not_supported() {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Sometimes");
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.completionMode",
        "FieldValueNotSupported",
        Some(json!("Sometimes")),
        r#"supported values: "NonIndexed", "Indexed""#,
    );
}

#[test]
fn an_indexed_job_without_completions_requires_them() {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["parallelism"] = json!(100_001);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.completions",
        "FieldValueRequired",
        None,
        "when completion mode is Indexed",
    );
    assert_has(
        &errors,
        "spec.parallelism",
        "FieldValueInvalid",
        Some(json!(100_001)),
        "must be less than or equal to 100000 when completion mode is Indexed",
    );
}

#[test]
fn indexed_limits_with_backoff_limit_per_index_are_enforced() {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["completions"] = json!(200_000);
    v["spec"]["parallelism"] = json!(20_000);
    v["spec"]["backoffLimitPerIndex"] = json!(1);
    let errors = job_errors(v.clone());
    assert_has(
        &errors,
        "spec.maxFailedIndexes",
        "FieldValueRequired",
        None,
        "must be specified when completions is above 100000",
    );
    assert_has(
        &errors,
        "spec.parallelism",
        "FieldValueInvalid",
        Some(json!(20_000)),
        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
    );
    v["spec"]["maxFailedIndexes"] = json!(150_000);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.maxFailedIndexes",
        "FieldValueInvalid",
        Some(json!(150_000)),
        "must be less than or equal to 100000",
    );
    assert_has(
        &errors,
        "spec.maxFailedIndexes",
        "FieldValueInvalid",
        Some(json!(150_000)),
        "must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index",
    );
}

#[test]
fn max_failed_indexes_above_completions_is_invalid() {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["completions"] = json!(3);
    v["spec"]["backoffLimitPerIndex"] = json!(1);
    v["spec"]["maxFailedIndexes"] = json!(4);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.maxFailedIndexes",
        "FieldValueInvalid",
        Some(json!(4)),
        "must be less than or equal to completions",
    );
}

#[test]
fn per_index_fields_require_indexed_completion_mode() {
    let mut v = base_job();
    v["spec"]["backoffLimitPerIndex"] = json!(1);
    v["spec"]["maxFailedIndexes"] = json!(1);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.backoffLimitPerIndex",
        "FieldValueInvalid",
        Some(json!(1)),
        "requires indexed completion mode",
    );
    assert_has(
        &errors,
        "spec.maxFailedIndexes",
        "FieldValueInvalid",
        Some(json!(1)),
        "requires indexed completion mode",
    );
}

#[test]
fn an_indexed_job_whose_last_hostname_is_not_a_dns_label_is_invalid_at_metadata_name() {
    let name = "a".repeat(60);
    let mut v = base_job();
    v["metadata"]["name"] = json!(name);
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["completions"] = json!(1000);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "metadata.name",
        "FieldValueInvalid",
        Some(json!(name)),
        &format!("will not able to create pod with invalid DNS label: {name}-999"),
    );
}

#[test]
fn extreme_numbers_never_panic() {
    for completions in [i32::MIN, -1, 0, 1, i32::MAX] {
        let mut v = base_job();
        v["spec"]["completionMode"] = json!("Indexed");
        v["spec"]["completions"] = json!(completions);
        v["spec"]["parallelism"] = json!(i32::MAX);
        v["spec"]["backoffLimitPerIndex"] = json!(i32::MIN);
        v["spec"]["maxFailedIndexes"] = json!(i32::MAX);
        v["spec"]["activeDeadlineSeconds"] = json!(i64::MIN);
        v["spec"]["successPolicy"] = json!({"rules": [{"succeededIndexes": "0-2147483647,99999999999999999999", "succeededCount": i32::MIN}]});
        v["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(i64::MAX);
        let _ = job_errors(v);
    }
}

// ------------------------------------------------------------------------------------
// restartPolicy

#[test]
fn a_missing_restart_policy_is_required_once_defaulted_to_always() {
    let mut v = base_job();
    v["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    let errors = job_errors(v);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_has(
        &errors,
        "spec.template.spec.restartPolicy",
        "FieldValueRequired",
        None,
        r#"valid values: "OnFailure", "Never""#,
    );
}

#[test]
fn an_unknown_restart_policy_is_reported_by_the_pod_and_the_job_rules() {
    let mut v = base_job();
    v["spec"]["template"]["spec"]["restartPolicy"] = json!("Sometimes");
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        Some(json!("Sometimes")),
        r#"supported values: "Always", "OnFailure", "Never""#,
    );
    assert_has(
        &errors,
        "spec.template.spec.restartPolicy",
        "FieldValueNotSupported",
        Some(json!("Sometimes")),
        r#"supported values: "OnFailure", "Never""#,
    );
}

#[test]
fn an_explicit_always_restart_policy_is_required_with_the_valid_values() {
    let mut v = base_job();
    v["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let errors = job_errors(v);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_has(
        &errors,
        "spec.template.spec.restartPolicy",
        "FieldValueRequired",
        None,
        r#"valid values: "OnFailure", "Never""#,
    );
}

#[test]
fn on_failure_with_a_pod_failure_policy_is_invalid() {
    let mut v = base_job();
    v["spec"]["template"]["spec"]["restartPolicy"] = json!("OnFailure");
    v["spec"]["podFailurePolicy"] =
        json!({"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.template.spec.restartPolicy",
        "FieldValueInvalid",
        Some(json!("OnFailure")),
        r#"only "Never" is supported when podFailurePolicy is specified"#,
    );
}

// ------------------------------------------------------------------------------------
// podFailurePolicy and podReplacementPolicy

#[test]
fn exit_code_rules_report_each_value_at_its_index() {
    let mut v = base_job();
    v["spec"]["podFailurePolicy"] = json!({"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "nope", "operator": "In", "values": [0, 3, 3, 1]}}
    ]});
    let errors = job_errors(v);
    let p = "spec.podFailurePolicy.rules[0].onExitCodes";
    assert_has(
        &errors,
        &format!("{p}.values[0]"),
        "FieldValueInvalid",
        Some(json!(0)),
        "must not be 0 for the In operator",
    );
    assert_has(
        &errors,
        &format!("{p}.values[2]"),
        "FieldValueDuplicate",
        Some(json!(3)),
        "",
    );
    assert_has(
        &errors,
        &format!("{p}.values"),
        "FieldValueInvalid",
        Some(json!([0, 3, 3, 1])),
        "must be ordered",
    );
    assert_has(
        &errors,
        &format!("{p}.containerName"),
        "FieldValueInvalid",
        Some(json!("nope")),
        "must be one of the container or initContainer names in the pod template",
    );
}

#[test]
fn duplicate_exit_code_is_reported_at_values_1() {
    let mut v = base_job();
    v["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "Count", "onExitCodes": {"operator": "NotIn", "values": [5, 5]}}]});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.podFailurePolicy.rules[0].onExitCodes.values[1]",
        "FieldValueDuplicate",
        Some(json!(5)),
        "",
    );
}

#[test]
fn rule_actions_and_operators_are_checked() {
    let mut v = base_job();
    v["spec"]["podFailurePolicy"] = json!({"rules": [
        {"onExitCodes": {"values": []}},
        {"action": "Explode", "onExitCodes": {"operator": "Maybe", "values": [1]}},
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}},
        {"action": "Ignore"},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [1]}, "onPodConditions": [{"type": "X"}]}
    ]});
    let errors = job_errors(v);
    let r = "spec.podFailurePolicy.rules";
    assert_has(
        &errors,
        &format!("{r}[0].action"),
        "FieldValueRequired",
        None,
        r#"valid values: ["Count" "FailIndex" "FailJob" "Ignore"]"#,
    );
    assert_has(
        &errors,
        &format!("{r}[0].onExitCodes.operator"),
        "FieldValueRequired",
        None,
        r#"valid values: ["In" "NotIn"]"#,
    );
    assert_has(
        &errors,
        &format!("{r}[0].onExitCodes.values"),
        "FieldValueInvalid",
        Some(json!([])),
        "at least one value is required",
    );
    assert_has(
        &errors,
        &format!("{r}[1].action"),
        "FieldValueNotSupported",
        Some(json!("Explode")),
        r#"supported values: "Count", "FailIndex", "FailJob", "Ignore""#,
    );
    assert_has(
        &errors,
        &format!("{r}[1].onExitCodes.operator"),
        "FieldValueNotSupported",
        Some(json!("Maybe")),
        r#"supported values: "In", "NotIn""#,
    );
    assert_has(
        &errors,
        &format!("{r}[2].action"),
        "FieldValueInvalid",
        Some(json!("FailIndex")),
        "requires the backoffLimitPerIndex to be set",
    );
    assert_has(
        &errors,
        &format!("{r}[3]"),
        "FieldValueInvalid",
        None,
        "specifying one of OnExitCodes and OnPodConditions is required",
    );
    assert_has(
        &errors,
        &format!("{r}[4]"),
        "FieldValueInvalid",
        None,
        "specifying both OnExitCodes and OnPodConditions is not supported",
    );
}

#[test]
fn too_many_rules_and_values_are_too_many() {
    let mut v = base_job();
    let values: Vec<i32> = (1..=256).collect();
    let mut rules =
        vec![json!({"action": "Count", "onExitCodes": {"operator": "In", "values": values}})];
    rules.extend(
        (0..20).map(
            |_| json!({"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}),
        ),
    );
    v["spec"]["podFailurePolicy"] = json!({"rules": rules});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.podFailurePolicy.rules",
        "FieldValueTooMany",
        Some(json!(21)),
        "must have at most 20 items",
    );
    assert_has(
        &errors,
        "spec.podFailurePolicy.rules[0].onExitCodes.values",
        "FieldValueTooMany",
        Some(json!(256)),
        "must have at most 255 items",
    );
}

#[test]
fn pod_condition_patterns_are_checked() {
    let mut v = base_job();
    v["spec"]["podFailurePolicy"] = json!({"rules": [{"action": "Ignore", "onPodConditions": [
        {"type": "Bad Type", "status": "Maybe"}
    ]}]});
    let errors = job_errors(v);
    let p = "spec.podFailurePolicy.rules[0].onPodConditions[0]";
    assert_has(
        &errors,
        &format!("{p}.status"),
        "FieldValueNotSupported",
        Some(json!("Maybe")),
        r#"supported values: "False", "True", "Unknown""#,
    );
    assert!(
        paths(&errors).contains(&format!("{p}.type").as_str()),
        "{errors:?}"
    );
}

#[test]
fn pod_replacement_policy_must_be_failed_with_a_pod_failure_policy() {
    let mut v = base_job();
    v["spec"]["podReplacementPolicy"] = json!("TerminatingOrFailed");
    v["spec"]["podFailurePolicy"] =
        json!({"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}]});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.podReplacementPolicy",
        "FieldValueNotSupported",
        Some(json!("TerminatingOrFailed")),
        r#"supported values: "Failed""#,
    );
}

#[test]
fn an_unknown_pod_replacement_policy_is_not_supported() {
    let mut v = base_job();
    v["spec"]["podReplacementPolicy"] = json!("");
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.podReplacementPolicy",
        "FieldValueNotSupported",
        Some(json!("")),
        r#"supported values: "Failed", "TerminatingOrFailed""#,
    );
}

// ------------------------------------------------------------------------------------
// successPolicy

fn indexed_job(completions: i32) -> Value {
    let mut v = base_job();
    v["spec"]["completionMode"] = json!("Indexed");
    v["spec"]["completions"] = json!(completions);
    v
}

#[test]
fn a_success_policy_requires_indexed_completion_mode() {
    let mut v = base_job();
    v["spec"]["successPolicy"] = json!({"rules": [{"succeededCount": 1}]});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.successPolicy",
        "FieldValueInvalid",
        Some(json!({"rules": [{"succeededCount": 1}]})),
        "requires indexed completion mode",
    );
}

#[test]
fn success_policy_rules_are_required_and_each_needs_a_field() {
    let mut v = indexed_job(5);
    v["spec"]["successPolicy"] = json!({"rules": []});
    assert_has(
        &job_errors(v.clone()),
        "spec.successPolicy.rules",
        "FieldValueRequired",
        None,
        "at least one rules must be specified when the successPolicy is specified",
    );
    v["spec"]["successPolicy"] = json!({"rules": [{}]});
    assert_has(
        &job_errors(v.clone()),
        "spec.successPolicy.rules[0]",
        "FieldValueRequired",
        None,
        "at least one of succeededCount or succeededIndexes must be specified",
    );
    v["spec"]["successPolicy"] = json!({"rules": vec![json!({"succeededCount": 1}); 21]});
    assert_has(
        &job_errors(v),
        "spec.successPolicy.rules",
        "FieldValueTooMany",
        Some(json!(21)),
        "must have at most 20 items",
    );
}

#[test]
fn malformed_succeeded_indexes_are_reported_with_the_parser_message() {
    let mut v = indexed_job(10);
    v["spec"]["successPolicy"] = json!({"rules": [{"succeededIndexes": "0-2,10"}, {"succeededIndexes": "3-1"}, {"succeededIndexes": "1-2-3"}]});
    let errors = job_errors(v);
    let r = "spec.successPolicy.rules";
    assert_has(
        &errors,
        &format!("{r}[0].succeededIndexes"),
        "FieldValueInvalid",
        Some(json!("0-2,10")),
        r#"error parsing succeededIndexes: too large index: "10""#,
    );
    assert_has(
        &errors,
        &format!("{r}[1].succeededIndexes"),
        "FieldValueInvalid",
        Some(json!("3-1")),
        "error parsing succeededIndexes: non-increasing order, previous: 3, current: 1",
    );
    assert_has(
        &errors,
        &format!("{r}[2].succeededIndexes"),
        "FieldValueInvalid",
        Some(json!("1-2-3")),
        r#"error parsing succeededIndexes: the fragment "1-2-3" violates the requirement that an index interval can have at most two parts separated by '-'"#,
    );
}

#[test]
fn succeeded_count_is_bounded_by_completions_and_indexes() {
    let mut v = indexed_job(5);
    v["spec"]["successPolicy"] = json!({"rules": [{"succeededCount": 6}, {"succeededIndexes": "0,2", "succeededCount": 3}, {"succeededCount": -1}]});
    let errors = job_errors(v);
    let r = "spec.successPolicy.rules";
    assert_has(
        &errors,
        &format!("{r}[0].succeededCount"),
        "FieldValueInvalid",
        Some(json!(6)),
        "must be less than or equal to 5 (the number of specified completions)",
    );
    assert_has(
        &errors,
        &format!("{r}[1].succeededCount"),
        "FieldValueInvalid",
        Some(json!(3)),
        "must be less than or equal to 2 (the number of indexes in the specified succeededIndexes field)",
    );
    assert_has(
        &errors,
        &format!("{r}[2].succeededCount"),
        "FieldValueInvalid",
        Some(json!(-1)),
        "must be greater than or equal to 0",
    );
}

#[test]
fn overlong_succeeded_indexes_are_too_long() {
    let mut v = indexed_job(5);
    v["spec"]["successPolicy"] = json!({"rules": [{"succeededIndexes": "0".repeat(65_537)}]});
    let errors = job_errors(v);
    assert!(
        errors.iter().any(
            |e| e.path.as_str() == "spec.successPolicy.rules[0].succeededIndexes"
                && e.kind.type_name() == "FieldValueTooLong"
                && e.detail == "may not be more than 65536 bytes"
        ),
        "{errors:?}"
    );
}

// ------------------------------------------------------------------------------------
// managedBy

#[test]
fn managed_by_must_be_a_short_domain_prefixed_path() {
    let mut v = base_job();
    v["spec"]["managedBy"] = json!("controller");
    assert_has(
        &job_errors(v.clone()),
        "spec.managedBy",
        "FieldValueInvalid",
        Some(json!("controller")),
        r#"must be a domain-prefixed path (such as "acme.io/foo")"#,
    );
    let long = format!("example.com/{}", "x".repeat(60));
    v["spec"]["managedBy"] = json!(long);
    let errors = job_errors(v.clone());
    assert!(
        errors.iter().any(|e| e.path.as_str() == "spec.managedBy"
            && e.kind.type_name() == "FieldValueTooLong"
            && e.detail == "may not be more than 63 bytes"),
        "{errors:?}"
    );
    v["spec"]["managedBy"] = json!("kubernetes.io/job-controller");
    assert_eq!(job_errors(v), vec![]);
}

// ------------------------------------------------------------------------------------
// Selector and generated labels

#[test]
fn a_manual_job_without_a_selector_requires_one() {
    let mut v = base_job();
    v["spec"]["manualSelector"] = json!(true);
    let errors = job_errors(v);
    assert_has(&errors, "spec.selector", "FieldValueRequired", None, "");
}

#[test]
fn a_manual_selector_must_match_the_template_labels() {
    let mut v = base_job();
    v["spec"]["manualSelector"] = json!(true);
    v["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    v["spec"]["template"]["metadata"] = json!({"labels": {"app": "y"}});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.template.metadata.labels",
        "FieldValueInvalid",
        Some(json!({"app": "y"})),
        "`selector` does not match template `labels`",
    );
}

#[test]
fn a_user_selector_is_not_auto_generated() {
    let mut v = base_job();
    v["spec"]["selector"] = json!({"matchLabels": {"app": "x"}});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.selector",
        "FieldValueInvalid",
        Some(
            json!({"matchLabels": {"app": "x", "batch.kubernetes.io/controller-uid": "test-uid"}}),
        ),
        "`selector` not auto-generated",
    );
    assert!(
        paths(&errors).contains(&"spec.template.metadata.labels"),
        "{errors:?}"
    );
}

#[test]
fn a_conflicting_generated_label_is_invalid_at_its_key() {
    let mut v = base_job();
    v["spec"]["template"]["metadata"] = json!({"labels": {"job-name": "other"}});
    let errors = job_errors(v);
    let e = errors
        .iter()
        .find(|e| e.path.as_str() == "spec.template.metadata.labels[job-name]")
        .unwrap();
    assert_eq!(e.kind.type_name(), "FieldValueInvalid");
    assert_eq!(e.detail, "must be 'pi'");
    assert_eq!(e.bad_value.as_ref().unwrap()["job-name"], "other");
}

#[test]
fn a_job_without_a_uid_requires_one() {
    let mut job: Job = serde_json::from_value(base_job()).unwrap();
    batch_core::defaults::default_job(&mut job);
    job.spec.selector = Some(batch_core::model::LabelSelector::default());
    let errors = validate_job(&job).unwrap_err().0;
    assert_has(&errors, "metadata.uid", "FieldValueRequired", None, "");
    assert_has(
        &errors,
        "spec.template.metadata.labels[controller-uid]",
        "FieldValueRequired",
        None,
        "must be ''",
    );
    // Pod-level defaults are missing too: no terminationGracePeriodSeconds was set.
    assert!(!paths(&errors).contains(&"spec.template.spec.terminationGracePeriodSeconds"));
}

#[test]
fn an_undefaulted_pod_requires_a_termination_grace_period() {
    let job: Job = serde_json::from_value(base_job()).unwrap();
    let errors = validate_job(&job).unwrap_err().0;
    assert_has(
        &errors,
        "spec.template.spec.terminationGracePeriodSeconds",
        "FieldValueRequired",
        None,
        "",
    );
    assert_has(&errors, "spec.selector", "FieldValueRequired", None, "");
}

#[test]
fn selector_expressions_are_validated() {
    let mut v = base_job();
    v["spec"]["manualSelector"] = json!(true);
    v["spec"]["selector"] = json!({"matchExpressions": [{"key": "app", "operator": "Near"}, {"key": "b", "operator": "In"}]});
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.selector.matchExpressions[0].operator",
        "FieldValueInvalid",
        Some(json!("Near")),
        "not a valid selector operator",
    );
    assert_has(
        &errors,
        "spec.selector.matchExpressions[1].values",
        "FieldValueRequired",
        None,
        "must be specified when `operator` is 'In' or 'NotIn'",
    );
}

// ------------------------------------------------------------------------------------
// Metadata

#[test]
fn a_job_without_a_name_requires_one_unless_generate_name_is_set() {
    let mut v = base_job();
    v["metadata"] = json!({});
    assert_has(
        &job_errors(v.clone()),
        "metadata.name",
        "FieldValueRequired",
        None,
        "name or generateName is required",
    );
    v["metadata"] = json!({"generateName": "pi-"});
    assert_eq!(job_errors(v.clone()), vec![]);
    v["metadata"] = json!({"generateName": "Pi-"});
    assert!(paths(&job_errors(v)).contains(&"metadata.generateName"));
}

#[test]
fn an_invalid_name_is_reported_at_metadata_name_and_in_the_template_labels() {
    let mut v = base_job();
    v["metadata"]["name"] = json!("process-item-$ITEM");
    let errors = job_errors(v);
    assert_has(
        &errors,
        "metadata.name",
        "FieldValueInvalid",
        Some(json!("process-item-$ITEM")),
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
    );
    // The name is copied into two label values (job-name, batch.kubernetes.io/job-name).
    let label_errors: Vec<_> = errors
        .iter()
        .filter(|e| e.path.as_str() == "spec.template.labels")
        .collect();
    assert_eq!(label_errors.len(), 2, "{errors:?}");
    assert_eq!(
        label_errors[0].detail,
        "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
}

#[test]
fn a_name_longer_than_63_fails_in_the_template_labels() {
    let name = "a".repeat(64);
    let mut v = base_job();
    v["metadata"]["name"] = json!(name);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.template.labels",
        "FieldValueInvalid",
        Some(json!(name)),
        "must be no more than 63 bytes",
    );
    assert!(!paths(&errors).contains(&"metadata.name"), "{errors:?}");
}

#[test]
fn labels_annotations_and_namespace_are_validated() {
    let mut v = base_job();
    v["metadata"]["namespace"] = json!("Default");
    v["metadata"]["labels"] = json!({"a/b/c": "ok", "ok": "bad value"});
    v["metadata"]["annotations"] = json!({"/x": "y"});
    let errors = job_errors(v);
    assert!(paths(&errors).contains(&"metadata.namespace"), "{errors:?}");
    assert_has(
        &errors,
        "metadata.labels",
        "FieldValueInvalid",
        Some(json!("a/b/c")),
        "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
    );
    assert!(
        errors.iter().any(
            |e| e.path.as_str() == "metadata.labels" && e.bad_value == Some(json!("bad value"))
        )
    );
    assert_has(
        &errors,
        "metadata.annotations",
        "FieldValueInvalid",
        Some(json!("/x")),
        "prefix part must be non-empty",
    );
}

#[test]
fn annotations_larger_than_256_kib_are_too_long() {
    let mut v = base_job();
    v["metadata"]["annotations"] = json!({"big": "x".repeat(256 * 1024)});
    let errors = job_errors(v);
    assert!(
        errors
            .iter()
            .any(|e| e.path.as_str() == "metadata.annotations"
                && e.kind.type_name() == "FieldValueTooLong"
                && e.detail == "may not be more than 262144 bytes"),
        "{errors:?}"
    );
}

// ------------------------------------------------------------------------------------
// Pod template: containers

fn with_pod(pod: Value) -> Value {
    let mut v = base_job();
    v["spec"]["template"]["spec"] = pod;
    v
}

#[test]
fn a_pod_without_containers_requires_them() {
    let errors = job_errors(with_pod(json!({"restartPolicy": "Never"})));
    assert_has(
        &errors,
        "spec.template.spec.containers",
        "FieldValueRequired",
        None,
        "",
    );
}

#[test]
fn container_names_and_images_are_required_and_unique() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "main", "image": "busybox"}, {"name": "Init_1", "image": "busybox"}],
        "containers": [{"name": "main", "image": "busybox"}, {"image": "busybox"}, {"name": "nolabel"}, {"name": "main", "image": "x"}]
    })));
    let c = "spec.template.spec.containers";
    assert_has(
        &errors,
        &format!("{c}[1].name"),
        "FieldValueRequired",
        None,
        "",
    );
    assert_has(
        &errors,
        &format!("{c}[2].image"),
        "FieldValueRequired",
        None,
        "",
    );
    assert_has(
        &errors,
        &format!("{c}[3].name"),
        "FieldValueDuplicate",
        Some(json!("main")),
        "",
    );
    assert_has(
        &errors,
        "spec.template.spec.initContainers[0].name",
        "FieldValueDuplicate",
        Some(json!("main")),
        "",
    );
    assert!(
        paths(&errors).contains(&"spec.template.spec.initContainers[1].name"),
        "{errors:?}"
    );
}

#[test]
fn container_restart_policies_follow_the_sidecar_rules() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "initContainers": [{"name": "ok", "image": "b", "restartPolicy": "Always"}, {"name": "bad", "image": "b", "restartPolicy": "OnFailure"}],
        "containers": [{"name": "main", "image": "b", "restartPolicy": "Always"}]
    })));
    assert_has(
        &errors,
        "spec.template.spec.initContainers[1].restartPolicy",
        "FieldValueNotSupported",
        Some(json!("OnFailure")),
        r#"supported values: "Always""#,
    );
    assert_has(
        &errors,
        "spec.template.spec.containers[0].restartPolicy",
        "FieldValueForbidden",
        None,
        "may not be set for non-init containers",
    );
    assert!(!paths(&errors).contains(&"spec.template.spec.initContainers[0].restartPolicy"));
}

#[test]
fn environment_variables_are_checked() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "b", "env": [
            {"name": "A=B", "value": "x"},
            {"name": "", "value": "x"},
            {"name": "POD", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "PHASE", "valueFrom": {"fieldRef": {"fieldPath": "status.phase"}}},
            {"name": "NONE", "valueFrom": {}},
            {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
            {"name": "BAD", "valueFrom": {"fieldRef": {"fieldPath": "spec.nothing"}}}
        ]}]
    })));
    let e = "spec.template.spec.containers[0].env";
    assert_has(
        &errors,
        &format!("{e}[0].name"),
        "FieldValueInvalid",
        Some(json!("A=B")),
        "a valid environment variable name must consist only of printable ASCII characters other than '='",
    );
    assert_has(
        &errors,
        &format!("{e}[1].name"),
        "FieldValueRequired",
        None,
        "",
    );
    assert_has(
        &errors,
        &format!("{e}[2].valueFrom"),
        "FieldValueInvalid",
        Some(json!("")),
        "may not be specified when `value` is not empty",
    );
    assert_has(
        &errors,
        &format!("{e}[3].valueFrom.fieldRef.fieldPath"),
        "FieldValueNotSupported",
        Some(json!("status.phase")),
        r#"supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs""#,
    );
    assert_has(
        &errors,
        &format!("{e}[4].valueFrom"),
        "FieldValueInvalid",
        Some(json!("")),
        "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
    );
    assert!(
        !paths(&errors)
            .iter()
            .any(|p| p.starts_with(&format!("{e}[5]"))),
        "{errors:?}"
    );
    assert_has(
        &errors,
        &format!("{e}[6].valueFrom.fieldRef.fieldPath"),
        "FieldValueInvalid",
        Some(json!("spec.nothing")),
        "error converting fieldPath: field label not supported: spec.nothing",
    );
}

#[test]
fn volume_mounts_must_name_a_volume_and_have_unique_paths() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{"name": "main", "image": "b", "volumeMounts": [
            {"name": "data", "mountPath": "/d"},
            {"name": "missing", "mountPath": "/d"},
            {"name": "data"}
        ]}]
    })));
    let m = "spec.template.spec.containers[0].volumeMounts";
    assert_has(
        &errors,
        &format!("{m}[1].name"),
        "FieldValueNotFound",
        Some(json!("missing")),
        "",
    );
    assert_has(
        &errors,
        &format!("{m}[1].mountPath"),
        "FieldValueInvalid",
        Some(json!("/d")),
        "must be unique",
    );
    assert_has(
        &errors,
        &format!("{m}[2].mountPath"),
        "FieldValueRequired",
        None,
        "",
    );
}

#[test]
fn resources_must_be_quantities_with_requests_within_limits() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "b", "resources": {
            "limits": {"cpu": "1", "memory": "lots", "example.com/gpu": "1"},
            "requests": {"cpu": "1500m", "example.com/gpu": "2", "disk": "1"}
        }}]
    })));
    let r = "spec.template.spec.containers[0].resources";
    assert_has(
        &errors,
        &format!("{r}.limits[memory]"),
        "FieldValueInvalid",
        Some(json!("lots")),
        "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
    );
    assert_has(
        &errors,
        &format!("{r}.requests"),
        "FieldValueInvalid",
        Some(json!("1500m")),
        "must be less than or equal to cpu limit of 1",
    );
    assert_has(
        &errors,
        &format!("{r}.requests"),
        "FieldValueInvalid",
        Some(json!("2")),
        "must be equal to example.com/gpu limit of 1",
    );
    assert_has(
        &errors,
        &format!("{r}.requests[disk]"),
        "FieldValueInvalid",
        Some(json!("disk")),
        "must be a standard resource for containers",
    );
}

#[test]
fn negative_quantities_are_invalid() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "b", "resources": {"requests": {"memory": "-1Gi"}}}]
    })));
    assert_has(
        &errors,
        "spec.template.spec.containers[0].resources.requests[memory]",
        "FieldValueInvalid",
        Some(json!("-1Gi")),
        "must be greater than or equal to 0",
    );
}

#[test]
fn an_empty_image_pull_policy_is_required_and_an_unknown_one_not_supported() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "a", "image": "b", "imagePullPolicy": ""}, {"name": "c", "image": "b", "imagePullPolicy": "Sometimes"}]
    })));
    assert_has(
        &errors,
        "spec.template.spec.containers[0].imagePullPolicy",
        "FieldValueRequired",
        None,
        "",
    );
    assert_has(
        &errors,
        "spec.template.spec.containers[1].imagePullPolicy",
        "FieldValueNotSupported",
        Some(json!("Sometimes")),
        r#"supported values: "Always", "IfNotPresent", "Never""#,
    );
}

// ------------------------------------------------------------------------------------
// Pod template: volumes and pod fields

#[test]
fn volumes_need_a_unique_dns_label_name_and_exactly_one_source() {
    let errors = job_errors(with_pod(json!({
        "restartPolicy": "Never",
        "containers": [{"name": "a", "image": "b"}],
        "volumes": [
            {"name": "data", "emptyDir": {}},
            {"name": "data", "emptyDir": {}},
            {"name": "two", "emptyDir": {}, "configMap": {"name": "c"}},
            {"name": "none"},
            {"name": "Bad_Name", "secret": {"secretName": "s"}},
            {"name": "hp", "hostPath": {"path": "/a/../b", "type": "Weird"}}
        ]
    })));
    let v = "spec.template.spec.volumes";
    assert_has(
        &errors,
        &format!("{v}[1].name"),
        "FieldValueDuplicate",
        Some(json!("data")),
        "",
    );
    assert_has(
        &errors,
        &format!("{v}[2].configMap"),
        "FieldValueForbidden",
        None,
        "may not specify more than 1 volume type",
    );
    assert_has(
        &errors,
        &format!("{v}[3]"),
        "FieldValueRequired",
        None,
        "must specify a volume type",
    );
    assert!(
        paths(&errors).contains(&format!("{v}[4].name").as_str()),
        "{errors:?}"
    );
    assert_has(
        &errors,
        &format!("{v}[5].hostPath.path"),
        "FieldValueInvalid",
        Some(json!("/a/../b")),
        "must not contain '..'",
    );
    assert_has(
        &errors,
        &format!("{v}[5].hostPath.type"),
        "FieldValueNotSupported",
        Some(json!("Weird")),
        r#"supported values: "", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate", "Socket""#,
    );
}

#[test]
fn a_pod_active_deadline_must_be_positive() {
    let mut v = base_job();
    v["spec"]["template"]["spec"]["activeDeadlineSeconds"] = json!(0);
    let errors = job_errors(v);
    assert_has(
        &errors,
        "spec.template.spec.activeDeadlineSeconds",
        "FieldValueInvalid",
        Some(json!(0)),
        "must be between 1 and 2147483647, inclusive",
    );
}

// ------------------------------------------------------------------------------------
// CronJob

#[test]
fn a_minimal_cron_job_is_valid() {
    assert_eq!(cron_errors(base_cron_job()), vec![]);
}

#[test]
fn a_cron_job_name_longer_than_52_is_invalid() {
    let name = "c".repeat(53);
    let mut v = base_cron_job();
    v["metadata"]["name"] = json!(name);
    let errors = cron_errors(v);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_has(
        &errors,
        "metadata.name",
        "FieldValueInvalid",
        Some(json!(name)),
        "must be no more than 52 characters",
    );
}

#[test]
fn an_empty_schedule_is_required() {
    let mut v = base_cron_job();
    v["spec"]["schedule"] = json!("");
    assert_has(
        &cron_errors(v),
        "spec.schedule",
        "FieldValueRequired",
        None,
        "",
    );
}

#[test]
fn schedule_parser_errors_are_invalid_at_spec_schedule() {
    for (schedule, detail) in [
        ("60 * * * *", "minute: 60 is above the maximum 59"),
        (
            "* * * *",
            "schedule: expected exactly 5 fields (minute hour day-of-month month day-of-week), found 4",
        ),
        (
            "@reboot",
            "schedule: unrecognized descriptor \"@reboot\" (supported: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly, @every <duration>)",
        ),
        (
            "0 0 * * 7",
            "day-of-week: 7 is above the maximum 6 (Sunday is 0; 7 is not accepted)",
        ),
    ] {
        let mut v = base_cron_job();
        v["spec"]["schedule"] = json!(schedule);
        let errors = cron_errors(v);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_has(
            &errors,
            "spec.schedule",
            "FieldValueInvalid",
            Some(json!(schedule)),
            detail,
        );
    }
    for schedule in [
        "@every 1h30m",
        "@daily",
        "0 9 * * MON-FRI",
        "*/15 0-6 1,15 jan-jun ?",
    ] {
        let mut v = base_cron_job();
        v["spec"]["schedule"] = json!(schedule);
        assert_eq!(cron_errors(v), vec![], "{schedule}");
    }
}

#[test]
fn tz_in_the_schedule_is_invalid() {
    let mut v = base_cron_job();
    v["spec"]["schedule"] = json!("CRON_TZ=UTC 0 0 * * *");
    let errors = cron_errors(v);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_has(
        &errors,
        "spec.schedule",
        "FieldValueInvalid",
        Some(json!("CRON_TZ=UTC 0 0 * * *")),
        "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
    );
}

#[test]
fn time_zones_must_be_explicit_iana_zones() {
    for (zone, details) in [
        ("", vec!["timeZone must be nil or non-empty string"]),
        (" Europe/Berlin", vec!["unknown time zone  Europe/Berlin"]),
        ("Europe//Berlin", vec!["unknown time zone Europe//Berlin"]),
        (
            "Local",
            vec![
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
            ],
        ),
        (
            "local",
            vec![
                "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
                "unknown time zone local",
            ],
        ),
        ("Mars/Olympus", vec!["unknown time zone Mars/Olympus"]),
    ] {
        let mut v = base_cron_job();
        v["spec"]["timeZone"] = json!(zone);
        let errors = cron_errors(v);
        assert_eq!(errors.len(), details.len(), "{zone}: {errors:?}");
        for detail in details {
            assert_has(
                &errors,
                "spec.timeZone",
                "FieldValueInvalid",
                Some(json!(zone)),
                detail,
            );
        }
    }
    let mut v = base_cron_job();
    v["spec"]["timeZone"] = json!("America/New_York");
    assert_eq!(cron_errors(v), vec![]);
}

#[test]
fn cron_job_numbers_and_concurrency_policy_are_checked() {
    let mut v = base_cron_job();
    v["spec"]["startingDeadlineSeconds"] = json!(-1);
    v["spec"]["successfulJobsHistoryLimit"] = json!(-2);
    v["spec"]["failedJobsHistoryLimit"] = json!(-3);
    v["spec"]["concurrencyPolicy"] = json!("Sometimes");
    let errors = cron_errors(v);
    assert_has(
        &errors,
        "spec.startingDeadlineSeconds",
        "FieldValueInvalid",
        Some(json!(-1)),
        "must be greater than or equal to 0",
    );
    assert_has(
        &errors,
        "spec.successfulJobsHistoryLimit",
        "FieldValueInvalid",
        Some(json!(-2)),
        "must be greater than or equal to 0",
    );
    assert_has(
        &errors,
        "spec.failedJobsHistoryLimit",
        "FieldValueInvalid",
        Some(json!(-3)),
        "must be greater than or equal to 0",
    );
    assert_has(
        &errors,
        "spec.concurrencyPolicy",
        "FieldValueNotSupported",
        Some(json!("Sometimes")),
        r#"supported values: "Allow", "Forbid", "Replace""#,
    );
}

#[test]
fn an_undefaulted_empty_concurrency_policy_is_required() {
    let cron_job: CronJob = serde_json::from_value(base_cron_job()).unwrap();
    let errors = validate_cron_job(&cron_job).unwrap_err().0;
    assert_has(
        &errors,
        "spec.concurrencyPolicy",
        "FieldValueRequired",
        None,
        "",
    );
}

#[test]
fn the_job_template_gets_every_job_spec_rule() {
    let mut v = base_cron_job();
    let spec = &mut v["spec"]["jobTemplate"]["spec"];
    spec["parallelism"] = json!(-1);
    spec["completionMode"] = json!("Indexed");
    spec["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    spec["selector"] = json!({"matchLabels": {"a": "b"}});
    spec["manualSelector"] = json!(true);
    v["spec"]["jobTemplate"]["metadata"] = json!({"labels": {"team": "a b"}});
    let errors = cron_errors(v);
    let s = "spec.jobTemplate.spec";
    assert_has(
        &errors,
        &format!("{s}.parallelism"),
        "FieldValueInvalid",
        Some(json!(-1)),
        "must be greater than or equal to 0",
    );
    assert_has(
        &errors,
        &format!("{s}.completions"),
        "FieldValueRequired",
        None,
        "when completion mode is Indexed",
    );
    assert_has(
        &errors,
        &format!("{s}.template.spec.restartPolicy"),
        "FieldValueRequired",
        None,
        r#"valid values: "OnFailure", "Never""#,
    );
    assert_has(
        &errors,
        &format!("{s}.selector"),
        "FieldValueInvalid",
        Some(json!({"matchLabels": {"a": "b"}})),
        "`selector` will be auto-generated",
    );
    assert_has(
        &errors,
        &format!("{s}.manualSelector"),
        "FieldValueNotSupported",
        Some(json!(true)),
        r#"supported values: "nil", "false""#,
    );
    // As upstream, the template's own labels are not validated with the CronJob.
    assert!(
        !errors
            .iter()
            .any(|e| e.path.as_str().starts_with("spec.jobTemplate.metadata")),
        "{errors:?}"
    );
}

// ------------------------------------------------------------------------------------
// The Kubernetes documentation corpus

fn corpus_objects(file: &str) -> Vec<Manifest> {
    let path = std::path::Path::new(CORPUS).join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    loader::load_bytes(&bytes, file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .into_iter()
        .filter_map(|d| d.object)
        .collect()
}

fn validate_manifest(manifest: Manifest) -> Vec<FieldError> {
    let result = match manifest {
        Manifest::Job(mut job) => {
            prepare_job_for_create(&mut job, "test-uid");
            validate_job(&job)
        }
        Manifest::CronJob(mut cron_job) => {
            default_cron_job(&mut cron_job);
            validate_cron_job(&cron_job)
        }
        other => panic!("unexpected manifest {other:?}"),
    };
    result.map_or_else(|e| e.0, |()| Vec::new())
}

#[test]
fn every_corpus_manifest_validates_as_documented() {
    let mut files: Vec<String> = std::fs::read_dir(CORPUS)
        .expect("the corpus folder")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 16, "{files:?}");
    for file in &files {
        if file == "job-pod-failure-policy-ignore.yaml" {
            // Malformed YAML as published (a TAB used for indentation): a parse error.
            continue;
        }
        let objects = corpus_objects(file);
        assert_eq!(objects.len(), 1, "{file}");
        let errors = validate_manifest(objects.into_iter().next().unwrap());
        match file.as_str() {
            "job-tmpl.yaml" => {
                assert!(
                    errors.iter().any(|e| e.path.as_str() == "metadata.name"
                        && e.kind.type_name() == "FieldValueInvalid"),
                    "{file}: {errors:?}"
                );
                assert!(
                    errors
                        .iter()
                        .any(|e| e.path.as_str() == "spec.template.labels"),
                    "{file}: {errors:?}"
                );
                assert!(
                    errors.iter().all(|e| e.path.as_str() == "metadata.name"
                        || e.path.as_str() == "spec.template.labels"),
                    "{file}: {errors:?}"
                );
            }
            "job-success-policy-example.yaml" => {
                assert_has(
                    &errors,
                    "metadata.name",
                    "FieldValueRequired",
                    None,
                    "name or generateName is required",
                );
                assert_has(
                    &errors,
                    "spec.template.spec.restartPolicy",
                    "FieldValueRequired",
                    None,
                    r#"valid values: "OnFailure", "Never""#,
                );
                // As upstream, the Indexed hostname rule also sees the empty name ("-9").
                assert_has(
                    &errors,
                    "metadata.name",
                    "FieldValueInvalid",
                    Some(json!("")),
                    "will not able to create pod with invalid DNS label: -9",
                );
                assert_eq!(errors.len(), 3, "{file}: {errors:?}");
            }
            _ => assert_eq!(errors, vec![], "{file}"),
        }
    }
}
