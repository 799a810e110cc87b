//! CronJob validation, as the API server validates a create (`ValidateCronJobCreate`).

use std::str::FromStr;

use super::job::validate_job_spec;
use super::meta::validate_object_meta;
use super::{FieldError, FieldPath, ValidationErrors};
use crate::model::{ConcurrencyPolicy, CronJob, JobTemplateSpec};

/// Longest CronJob name: the controller appends an 11-character suffix to name its Jobs,
/// whose names are at most 63 characters.
const MAX_CRON_JOB_NAME_LENGTH: usize = 52;

/// Validates a defaulted CronJob as the API server validates a create.
///
/// Run [`crate::defaults::default_cron_job`] first. The job template is checked with every
/// Job spec rule, under `spec.jobTemplate.spec`; its Job-level fields may be unset.
///
/// # Errors
///
/// Every problem found, as [`ValidationErrors`], in the order Kubernetes reports them.
pub fn validate_cron_job(cron_job: &CronJob) -> Result<(), ValidationErrors> {
    let mut errs = Vec::new();
    let meta_path = FieldPath::new("metadata");
    validate_object_meta(&cron_job.metadata, &meta_path, &mut errs);
    let spec = &cron_job.spec;
    let path = FieldPath::new("spec");

    let schedule_path = path.child("schedule");
    if spec.schedule.is_empty() {
        errs.push(FieldError::required(schedule_path, ""));
    } else {
        // The same parser the CronJob machine runs on (issue: "everything a CronJob
        // accepts and nothing it rejects"); its message names the field and the token.
        if let Err(e) = crate::cron::Schedule::parse(&spec.schedule) {
            errs.push(FieldError::invalid(
                schedule_path.clone(),
                spec.schedule.as_str(),
                e.to_string(),
            ));
        }
        if spec.schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                schedule_path,
                spec.schedule.as_str(),
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    if let Some(deadline) = spec.starting_deadline_seconds.filter(|&d| d < 0) {
        errs.push(FieldError::invalid(
            path.child("startingDeadlineSeconds"),
            deadline,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(zone) = &spec.time_zone {
        validate_time_zone(zone, &path.child("timeZone"), &mut errs);
    }
    let policy_path = path.child("concurrencyPolicy");
    match &spec.concurrency_policy {
        ConcurrencyPolicy::Other(value) if value.is_empty() => {
            errs.push(FieldError::required(policy_path, ""));
        }
        ConcurrencyPolicy::Other(value) => errs.push(FieldError::not_supported(
            policy_path,
            value.as_str(),
            &["Allow", "Forbid", "Replace"],
        )),
        _ => {}
    }
    validate_job_template(&spec.job_template, &path.child("jobTemplate"), &mut errs);
    for (value, name) in [
        (
            spec.successful_jobs_history_limit,
            "successfulJobsHistoryLimit",
        ),
        (spec.failed_jobs_history_limit, "failedJobsHistoryLimit"),
    ] {
        if let Some(limit) = value.filter(|&l| l < 0) {
            errs.push(FieldError::invalid(
                path.child(name),
                limit,
                "must be greater than or equal to 0",
            ));
        }
    }
    let name = cron_job.name();
    if name.len() > MAX_CRON_JOB_NAME_LENGTH {
        errs.push(FieldError::invalid(
            meta_path.child("name"),
            name,
            "must be no more than 52 characters",
        ));
    }
    ValidationErrors(errs).into_result()
}

/// `ValidateJobTemplateSpec`. As upstream, the template's own labels and annotations are
/// not checked here (a bad one surfaces when a Job is created from the template).
fn validate_job_template(template: &JobTemplateSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let spec_path = path.child("spec");
    validate_job_spec(&template.spec, &spec_path, errs);
    if let Some(selector) = &template.spec.selector {
        errs.push(FieldError::invalid(
            spec_path.child("selector"),
            serde_json::to_value(selector).unwrap_or_default(),
            "`selector` will be auto-generated",
        ));
    }
    if template.spec.manual_selector == Some(true) {
        errs.push(FieldError::not_supported(
            spec_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
}

/// A path segment of an IANA zone name: `[A-Za-z.\-_0-9+]{1,14}`, not `.` or `..`, not
/// starting with `-`.
fn is_valid_zone_segment(part: &str) -> bool {
    (1..=14).contains(&part.len())
        && part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b))
        && part != "."
        && part != ".."
        && !part.starts_with('-')
}

fn validate_time_zone(zone: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if zone.is_empty() {
        errs.push(FieldError::invalid(
            path.clone(),
            zone,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    if !zone.split('/').all(is_valid_zone_segment) {
        errs.push(FieldError::invalid(
            path.clone(),
            zone,
            format!("unknown time zone {zone}"),
        ));
        return;
    }
    if zone.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            path.clone(),
            zone,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
    // Go loads "UTC" and "Local" without the database; everything else must be in it.
    let loadable = zone == "UTC" || zone == "Local" || chrono_tz::Tz::from_str(zone).is_ok();
    if !loadable {
        errs.push(FieldError::invalid(
            path.clone(),
            zone,
            format!("unknown time zone {zone}"),
        ));
    }
}
