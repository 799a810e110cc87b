//! Job validation, as the API server validates a create (`ValidateJob`).

use std::collections::{BTreeMap, BTreeSet};

use super::interval::{count_indexes, parse_indexes_strict};
use super::meta::{
    dns1123_label_errors, selector_matches, validate_label_selector, validate_object_meta,
    validate_qualified_name,
};
use super::pod::validate_pod_template;
use super::{FieldError, FieldPath, ValidationErrors, go_quote_list};
use crate::defaults::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::model::{
    CompletionMode, ConditionStatus, Job, JobSpec, LabelSelector, PodFailurePolicyAction,
    PodFailurePolicyOnExitCodesOperator, PodFailurePolicyRule, PodReplacementPolicy, RestartPolicy,
    SuccessPolicyRule,
};

/// Most parallelism of an Indexed Job.
const MAX_PARALLELISM_FOR_INDEXED_JOB: i32 = 100_000;
/// Most `maxFailedIndexes` of an Indexed Job.
const MAX_FAILED_INDEXES_FOR_INDEXED_JOB: i32 = 100_000;
/// Above this many completions, `backoffLimitPerIndex` needs tighter limits.
const COMPLETIONS_SOFT_LIMIT: i32 = 100_000;
const PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_POD_FAILURE_POLICY_RULES: usize = 20;
const MAX_ON_EXIT_CODES_VALUES: usize = 255;
const MAX_ON_POD_CONDITIONS_PATTERNS: usize = 20;
const MAX_MANAGED_BY_LENGTH: usize = 63;
const MAX_SUCCEEDED_INDEXES_LENGTH: usize = 64 * 1024;
const MAX_SUCCESS_POLICY_RULES: usize = 20;

const NEGATIVE: &str = "must be greater than or equal to 0";

/// Validates a defaulted Job as the API server validates a create.
///
/// Run [`crate::defaults::prepare_job_for_create`] first: it sets the UID, the defaults and
/// the generated selector and template labels that this checks.
///
/// # Errors
///
/// Every problem found, as [`ValidationErrors`], in the order Kubernetes reports them:
/// metadata, the generated selector, the spec (pod template included), the selector, and
/// the Indexed-Job name rule.
pub fn validate_job(job: &Job) -> Result<(), ValidationErrors> {
    let mut errs = Vec::new();
    validate_object_meta(&job.metadata, &FieldPath::new("metadata"), &mut errs);
    validate_generated_selector(job, &mut errs);
    let spec_path = FieldPath::new("spec");
    validate_job_spec(&job.spec, &spec_path, &mut errs);
    match &job.spec.selector {
        None => errs.push(FieldError::required(spec_path.child("selector"), "")),
        Some(selector) => {
            validate_label_selector(selector, &spec_path.child("selector"), &mut errs);
        }
    }
    if let Some(selector) = &job.spec.selector {
        let labels = &job.spec.template.metadata.labels;
        if selector_matches(selector, labels) == Some(false) {
            errs.push(FieldError::invalid(
                spec_path
                    .child("template")
                    .child("metadata")
                    .child("labels"),
                labels_value(labels),
                "`selector` does not match template `labels`",
            ));
        }
    }
    // With only a generateName, the API server would have generated the name by now.
    let generated_name = job.name().is_empty()
        && job
            .metadata
            .generate_name
            .as_deref()
            .is_some_and(|g| !g.is_empty());
    if job.is_indexed()
        && !generated_name
        && let Some(completions) = job.spec.completions.filter(|&c| c > 0)
    {
        let name = job.name();
        let hostname = format!("{name}-{}", i64::from(completions) - 1);
        if !dns1123_label_errors(&hostname).is_empty() {
            errs.push(FieldError::invalid(
                FieldPath::new("metadata").child("name"),
                name,
                format!("will not able to create pod with invalid DNS label: {hostname}"),
            ));
        }
    }
    ValidationErrors(errs).into_result()
}

fn labels_value(labels: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::to_value(labels).unwrap_or_default()
}

fn selector_value(selector: &LabelSelector) -> serde_json::Value {
    serde_json::to_value(selector).unwrap_or_default()
}

/// `validateGeneratedSelector`: the UID, the four generated template labels, and a selector
/// that selects them.
fn validate_generated_selector(job: &Job, errs: &mut Vec<FieldError>) {
    if job.spec.manual_selector == Some(true) {
        return;
    }
    let Some(selector) = &job.spec.selector else {
        return;
    };
    let uid = job.metadata.uid.as_deref().unwrap_or_default();
    let name = job.name();
    if uid.is_empty() {
        errs.push(FieldError::required(
            FieldPath::new("metadata").child("uid"),
            "",
        ));
    }
    let labels = &job.spec.template.metadata.labels;
    let labels_path = FieldPath::new("spec")
        .child("template")
        .child("metadata")
        .child("labels");
    for (key, expected) in [
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
    ] {
        match labels.get(key) {
            None => errs.push(FieldError::required(
                labels_path.key(key),
                format!("must be '{expected}'"),
            )),
            Some(actual) if actual != expected => errs.push(FieldError::invalid(
                labels_path.key(key),
                labels_value(labels),
                format!("must be '{expected}'"),
            )),
            Some(_) => {}
        }
    }
    let expected: BTreeMap<String, String> = [
        (CONTROLLER_UID_LABEL, uid),
        (JOB_NAME_LABEL, name),
        (LEGACY_CONTROLLER_UID_LABEL, uid),
        (LEGACY_JOB_NAME_LABEL, name),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if selector_matches(selector, &expected) == Some(false) {
        errs.push(FieldError::invalid(
            FieldPath::new("spec").child("selector"),
            selector_value(selector),
            "`selector` not auto-generated",
        ));
    }
}

fn non_negative(value: Option<i64>, path: FieldPath, errs: &mut Vec<FieldError>) {
    if let Some(value) = value.filter(|&v| v < 0) {
        errs.push(FieldError::invalid(path, value, NEGATIVE));
    }
}

/// `validateJobSpec`: every rule of a Job spec, wherever it appears (a Job's `spec` or a
/// CronJob's `spec.jobTemplate.spec`). Fields may be unset (a CronJob's template is not
/// defaulted at the Job level).
pub(crate) fn validate_job_spec(spec: &JobSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    non_negative(
        spec.parallelism.map(i64::from),
        path.child("parallelism"),
        errs,
    );
    non_negative(
        spec.completions.map(i64::from),
        path.child("completions"),
        errs,
    );
    non_negative(
        spec.active_deadline_seconds,
        path.child("activeDeadlineSeconds"),
        errs,
    );
    non_negative(
        spec.backoff_limit.map(i64::from),
        path.child("backoffLimit"),
        errs,
    );
    non_negative(
        spec.ttl_seconds_after_finished.map(i64::from),
        path.child("ttlSecondsAfterFinished"),
        errs,
    );
    non_negative(
        spec.backoff_limit_per_index.map(i64::from),
        path.child("backoffLimitPerIndex"),
        errs,
    );
    if let Some(max_failed) = spec.max_failed_indexes {
        non_negative(
            Some(i64::from(max_failed)),
            path.child("maxFailedIndexes"),
            errs,
        );
        if spec.backoff_limit_per_index.is_none() {
            errs.push(FieldError::required(
                path.child("backoffLimitPerIndex"),
                "when maxFailedIndexes is specified",
            ));
        }
    }
    if let Some(managed_by) = &spec.managed_by {
        validate_managed_by(managed_by, &path.child("managedBy"), errs);
    }
    if let Some(mode) = &spec.completion_mode {
        if !mode.is_known() {
            errs.push(FieldError::not_supported(
                path.child("completionMode"),
                mode.as_str(),
                &["NonIndexed", "Indexed"],
            ));
        }
        if *mode == CompletionMode::Indexed {
            validate_indexed_limits(spec, path, errs);
        }
    }
    if spec.completion_mode.is_none() || spec.completion_mode == Some(CompletionMode::NonIndexed) {
        if let Some(per_index) = spec.backoff_limit_per_index {
            errs.push(FieldError::invalid(
                path.child("backoffLimitPerIndex"),
                per_index,
                "requires indexed completion mode",
            ));
        }
        if let Some(max_failed) = spec.max_failed_indexes {
            errs.push(FieldError::invalid(
                path.child("maxFailedIndexes"),
                max_failed,
                "requires indexed completion mode",
            ));
        }
    }
    if spec.pod_failure_policy.is_some() {
        validate_pod_failure_policy(spec, &path.child("podFailurePolicy"), errs);
    }
    if let Some(policy) = &spec.success_policy {
        if spec.completion_mode != Some(CompletionMode::Indexed) {
            errs.push(FieldError::invalid(
                path.child("successPolicy"),
                serde_json::to_value(policy).unwrap_or_default(),
                "requires indexed completion mode",
            ));
        } else {
            let rules_path = path.child("successPolicy").child("rules");
            if policy.rules.is_empty() {
                errs.push(FieldError::required(
                    rules_path.clone(),
                    "at least one rules must be specified when the successPolicy is specified",
                ));
            }
            if policy.rules.len() > MAX_SUCCESS_POLICY_RULES {
                errs.push(FieldError::too_many(
                    rules_path.clone(),
                    policy.rules.len(),
                    MAX_SUCCESS_POLICY_RULES,
                ));
            }
            for (i, rule) in policy.rules.iter().enumerate() {
                validate_success_policy_rule(spec, rule, &rules_path.index(i), errs);
            }
        }
    }
    if let Some(policy) = &spec.pod_replacement_policy {
        let rp_path = path.child("podReplacementPolicy");
        if spec.pod_failure_policy.is_some() {
            if *policy != PodReplacementPolicy::Failed {
                errs.push(FieldError::not_supported(
                    rp_path,
                    policy.as_str(),
                    &["Failed"],
                ));
            }
        } else if !policy.is_known() {
            errs.push(FieldError::not_supported(
                rp_path,
                policy.as_str(),
                &["Failed", "TerminatingOrFailed"],
            ));
        }
    }
    validate_pod_template(&spec.template, &path.child("template"), errs);
    let restart_path = path.child("template").child("spec").child("restartPolicy");
    let restart = &spec.template.spec.restart_policy;
    match restart {
        RestartPolicy::OnFailure | RestartPolicy::Never => {
            if spec.pod_failure_policy.is_some() && *restart != RestartPolicy::Never {
                errs.push(FieldError::invalid(
                    restart_path,
                    restart.as_str(),
                    "only \"Never\" is supported when podFailurePolicy is specified",
                ));
            }
        }
        // Decision 0002: as current upstream, `Always` (and an empty value, which
        // defaulting turns into `Always`) is Required with the valid values; any other
        // value is NotSupported.
        RestartPolicy::Always => errs.push(FieldError::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        other if other.as_str().is_empty() => errs.push(FieldError::required(
            restart_path,
            "valid values: \"OnFailure\", \"Never\"",
        )),
        _ => errs.push(FieldError::not_supported(
            restart_path,
            restart.as_str(),
            &["OnFailure", "Never"],
        )),
    }
}

/// `IsDomainPrefixedPath` plus the length limit.
fn validate_managed_by(value: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if value.is_empty() {
        errs.push(FieldError::required(path.clone(), ""));
    } else {
        match value.split_once('/') {
            Some((host, rest)) if !host.is_empty() && !rest.is_empty() => {
                for msg in super::meta::dns1123_subdomain_errors(host) {
                    errs.push(FieldError::invalid(path.clone(), host, msg));
                }
                let path_ok = rest
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
                if !path_ok {
                    errs.push(FieldError::invalid(
                        path.clone(),
                        rest,
                        super::meta::regex_error(
                            "Invalid path",
                            "[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+",
                            &[],
                        ),
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                path.clone(),
                value,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
    }
    if value.len() > MAX_MANAGED_BY_LENGTH {
        errs.push(FieldError::too_long(
            path.clone(),
            value,
            MAX_MANAGED_BY_LENGTH,
        ));
    }
}

fn validate_indexed_limits(spec: &JobSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if spec.completions.is_none() {
        errs.push(FieldError::required(
            path.child("completions"),
            "when completion mode is Indexed",
        ));
    }
    if let Some(parallelism) = spec
        .parallelism
        .filter(|&p| p > MAX_PARALLELISM_FOR_INDEXED_JOB)
    {
        errs.push(FieldError::invalid(
            path.child("parallelism"),
            parallelism,
            format!(
                "must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"
            ),
        ));
    }
    if let (Some(completions), Some(max_failed)) = (spec.completions, spec.max_failed_indexes)
        && max_failed > completions
    {
        errs.push(FieldError::invalid(
            path.child("maxFailedIndexes"),
            max_failed,
            "must be less than or equal to completions",
        ));
    }
    if let Some(max_failed) = spec
        .max_failed_indexes
        .filter(|&m| m > MAX_FAILED_INDEXES_FOR_INDEXED_JOB)
    {
        errs.push(FieldError::invalid(
            path.child("maxFailedIndexes"),
            max_failed,
            format!("must be less than or equal to {MAX_FAILED_INDEXES_FOR_INDEXED_JOB}"),
        ));
    }
    let high_completions = spec.completions.is_some_and(|c| c > COMPLETIONS_SOFT_LIMIT);
    if high_completions && spec.backoff_limit_per_index.is_some() {
        if spec.max_failed_indexes.is_none() {
            errs.push(FieldError::required(
                path.child("maxFailedIndexes"),
                format!("must be specified when completions is above {COMPLETIONS_SOFT_LIMIT}"),
            ));
        }
        if let Some(parallelism) = spec
            .parallelism
            .filter(|&p| p > PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                path.child("parallelism"),
                parallelism,
                format!(
                    "must be less than or equal to {PARALLELISM_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
                ),
            ));
        }
        if let Some(max_failed) = spec
            .max_failed_indexes
            .filter(|&m| m > MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS)
        {
            errs.push(FieldError::invalid(
                path.child("maxFailedIndexes"),
                max_failed,
                format!(
                    "must be less than or equal to {MAX_FAILED_INDEXES_LIMIT_FOR_HIGH_COMPLETIONS} when completions are above {COMPLETIONS_SOFT_LIMIT} and used with backoff limit per index"
                ),
            ));
        }
    }
}

const ACTIONS: &[&str] = &["Count", "FailIndex", "FailJob", "Ignore"];
const OPERATORS: &[&str] = &["In", "NotIn"];
const STATUSES: &[&str] = &["False", "True", "Unknown"];

fn validate_pod_failure_policy(spec: &JobSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(policy) = &spec.pod_failure_policy else {
        return;
    };
    let rules_path = path.child("rules");
    if policy.rules.len() > MAX_POD_FAILURE_POLICY_RULES {
        errs.push(FieldError::too_many(
            rules_path.clone(),
            policy.rules.len(),
            MAX_POD_FAILURE_POLICY_RULES,
        ));
    }
    let pod_spec = &spec.template.spec;
    let container_names: BTreeSet<&str> = pod_spec
        .containers
        .iter()
        .chain(&pod_spec.init_containers)
        .map(|c| c.name.as_str())
        .collect();
    for (i, rule) in policy.rules.iter().enumerate() {
        validate_pod_failure_policy_rule(spec, rule, &rules_path.index(i), &container_names, errs);
    }
}

fn validate_pod_failure_policy_rule(
    spec: &JobSpec,
    rule: &PodFailurePolicyRule,
    path: &FieldPath,
    container_names: &BTreeSet<&str>,
    errs: &mut Vec<FieldError>,
) {
    let action_path = path.child("action");
    match &rule.action {
        PodFailurePolicyAction::Other(value) if value.is_empty() => {
            errs.push(FieldError::required(
                action_path,
                format!("valid values: {}", go_quote_list(ACTIONS)),
            ))
        }
        PodFailurePolicyAction::FailIndex if spec.backoff_limit_per_index.is_none() => {
            errs.push(FieldError::invalid(
                action_path,
                "FailIndex",
                "requires the backoffLimitPerIndex to be set",
            ));
        }
        PodFailurePolicyAction::Other(value) => {
            errs.push(FieldError::not_supported(
                action_path,
                value.as_str(),
                ACTIONS,
            ));
        }
        _ => {}
    }
    if let Some(on_exit_codes) = &rule.on_exit_codes {
        let oec_path = path.child("onExitCodes");
        let operator_path = oec_path.child("operator");
        match &on_exit_codes.operator {
            PodFailurePolicyOnExitCodesOperator::Other(value) if value.is_empty() => {
                errs.push(FieldError::required(
                    operator_path,
                    format!("valid values: {}", go_quote_list(OPERATORS)),
                ));
            }
            PodFailurePolicyOnExitCodesOperator::Other(value) => {
                errs.push(FieldError::not_supported(
                    operator_path,
                    value.as_str(),
                    OPERATORS,
                ));
            }
            _ => {}
        }
        if let Some(name) = &on_exit_codes.container_name
            && !container_names.contains(name.as_str())
        {
            errs.push(FieldError::invalid(
                oec_path.child("containerName"),
                name.as_str(),
                "must be one of the container or initContainer names in the pod template",
            ));
        }
        let values_path = oec_path.child("values");
        let values = &on_exit_codes.values;
        if values.is_empty() {
            errs.push(FieldError::invalid(
                values_path.clone(),
                serde_json::Value::Array(Vec::new()),
                "at least one value is required",
            ));
        } else if values.len() > MAX_ON_EXIT_CODES_VALUES {
            errs.push(FieldError::too_many(
                values_path.clone(),
                values.len(),
                MAX_ON_EXIT_CODES_VALUES,
            ));
        }
        let mut seen = BTreeSet::new();
        let mut ordered = true;
        let is_in = on_exit_codes.operator == PodFailurePolicyOnExitCodesOperator::In;
        for (j, &value) in values.iter().enumerate() {
            let value_path = values_path.index(j);
            if is_in && value == 0 {
                errs.push(FieldError::invalid(
                    value_path.clone(),
                    value,
                    "must not be 0 for the In operator",
                ));
            }
            if !seen.insert(value) {
                errs.push(FieldError::duplicate(value_path, value));
            }
            if j > 0 && values.get(j - 1).is_some_and(|&prev| prev > value) {
                ordered = false;
            }
        }
        if !ordered {
            errs.push(FieldError::invalid(
                values_path,
                serde_json::to_value(values).unwrap_or_default(),
                "must be ordered",
            ));
        }
    }
    if !rule.on_pod_conditions.is_empty() {
        let opc_path = path.child("onPodConditions");
        if rule.on_pod_conditions.len() > MAX_ON_POD_CONDITIONS_PATTERNS {
            errs.push(FieldError::too_many(
                opc_path.clone(),
                rule.on_pod_conditions.len(),
                MAX_ON_POD_CONDITIONS_PATTERNS,
            ));
        }
        for (j, pattern) in rule.on_pod_conditions.iter().enumerate() {
            let pattern_path = opc_path.index(j);
            validate_qualified_name(&pattern.type_, &pattern_path.child("type"), errs);
            let status_path = pattern_path.child("status");
            match &pattern.status {
                ConditionStatus::Other(value) if value.is_empty() => {
                    errs.push(FieldError::required(
                        status_path,
                        format!("valid values: {}", go_quote_list(STATUSES)),
                    ));
                }
                ConditionStatus::Other(value) => {
                    errs.push(FieldError::not_supported(
                        status_path,
                        value.as_str(),
                        STATUSES,
                    ));
                }
                _ => {}
            }
        }
    }
    match (
        rule.on_exit_codes.is_some(),
        !rule.on_pod_conditions.is_empty(),
    ) {
        (true, true) => errs.push(FieldError::invalid_without_value(
            path.clone(),
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, false) => errs.push(FieldError::invalid_without_value(
            path.clone(),
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
}

fn validate_success_policy_rule(
    spec: &JobSpec,
    rule: &SuccessPolicyRule,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
        errs.push(FieldError::required(
            path.clone(),
            "at least one of succeededCount or succeededIndexes must be specified",
        ));
    }
    let mut total_indexes: i64 = 0;
    if let Some(indexes) = &rule.succeeded_indexes {
        let indexes_path = path.child("succeededIndexes");
        if indexes.len() > MAX_SUCCEEDED_INDEXES_LENGTH {
            errs.push(FieldError::too_long(
                indexes_path.clone(),
                indexes.as_str(),
                MAX_SUCCEEDED_INDEXES_LENGTH,
            ));
        }
        // Without completions (already reported as Required), only the format is checked.
        let completions = spec.completions.unwrap_or(i32::MAX);
        match parse_indexes_strict(indexes, completions) {
            Ok(intervals) => total_indexes = count_indexes(&intervals),
            Err(e) => errs.push(FieldError::invalid(
                indexes_path,
                indexes.as_str(),
                format!("error parsing succeededIndexes: {e}"),
            )),
        }
    }
    if let Some(count) = rule.succeeded_count {
        let count_path = path.child("succeededCount");
        non_negative(Some(i64::from(count)), count_path.clone(), errs);
        if let Some(completions) = spec.completions.filter(|&c| count > c) {
            errs.push(FieldError::invalid(
                count_path.clone(),
                count,
                format!(
                    "must be less than or equal to {completions} (the number of specified completions)"
                ),
            ));
        }
        if rule.succeeded_indexes.is_some() && i64::from(count) > total_indexes {
            errs.push(FieldError::invalid(
                count_path,
                count,
                format!(
                    "must be less than or equal to {total_indexes} (the number of indexes in the specified succeededIndexes field)"
                ),
            ));
        }
    }
}
