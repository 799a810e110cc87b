//! Defaulting, the way the Kubernetes API server fills in a Job or CronJob it receives.
//!
//! Pure functions that change the object in place. Applying them twice changes nothing.
//!
//! What is defaulted, and where it differs from upstream:
//!
//! | field | default |
//! |---|---|
//! | `spec.completions`, `spec.parallelism` | both 1 when both are unset; otherwise `parallelism` 1 when unset and `completions` left unset (a work-queue Job) |
//! | `spec.backoffLimit` | 6, or `i32::MAX` when `backoffLimitPerIndex` is set |
//! | `spec.completionMode` | `NonIndexed` |
//! | `spec.suspend`, `spec.manualSelector` | `false` |
//! | `spec.podReplacementPolicy` | `Failed` with a `podFailurePolicy`, else `TerminatingOrFailed` |
//! | `spec.podFailurePolicy.rules[].onPodConditions[].status` | `True` |
//! | `metadata.labels` (Job) | the template's labels, when the Job has none |
//! | `spec.template.spec.restartPolicy` | `Always` (which Job validation then rejects: a Job must say `Never` or `OnFailure`) |
//! | `spec.template.spec.terminationGracePeriodSeconds` | 30 |
//! | `containers[].imagePullPolicy` | `Always` for an untagged or `:latest` image, else `IfNotPresent` |
//! | CronJob `concurrencyPolicy` | `Allow` |
//! | CronJob `suspend` | `false` |
//! | CronJob `successfulJobsHistoryLimit` / `failedJobsHistoryLimit` | 3 / 1 |
//!
//! As upstream, a CronJob's `jobTemplate.spec` receives only the pod-level and
//! pod-failure-policy defaults: the Job-level ones (`completions`, `backoffLimit`, …) are
//! applied to each Job when it is created from the template.
//!
//! Pod defaults that nothing in batch requires (DNS policy, scheduler name, termination
//! message path, port protocols, …) are not added; they stay absent.
//!
//! ```
//! use batch_core::{defaults, model::{Job, JobSpec}};
//!
//! let mut job = Job { spec: JobSpec { parallelism: Some(5), ..Default::default() }, ..Default::default() };
//! defaults::default_job(&mut job);
//! assert_eq!(job.spec.completions, None); // parallelism alone makes a work-queue Job
//! assert_eq!(job.spec.backoff_limit, Some(6));
//! ```

use crate::model::{
    CompletionMode, ConcurrencyPolicy, ConditionStatus, Container, CronJob, Job, JobSpec,
    LabelSelector, PodFailurePolicy, PodReplacementPolicy, PodTemplateSpec, PullPolicy,
    RestartPolicy,
};

/// Default `spec.backoffLimit` without `backoffLimitPerIndex`.
pub const DEFAULT_BACKOFF_LIMIT: i32 = 6;
/// Default `terminationGracePeriodSeconds` of a pod.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// Default `successfulJobsHistoryLimit` of a CronJob.
pub const DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT: i32 = 3;
/// Default `failedJobsHistoryLimit` of a CronJob.
pub const DEFAULT_FAILED_JOBS_HISTORY_LIMIT: i32 = 1;

/// Label on pods carrying the owning Job's UID (used by the generated selector).
pub const CONTROLLER_UID_LABEL: &str = "batch.kubernetes.io/controller-uid";
/// Legacy form of [`CONTROLLER_UID_LABEL`], still set on every pod.
pub const LEGACY_CONTROLLER_UID_LABEL: &str = "controller-uid";
/// Label on pods carrying the owning Job's name.
pub const JOB_NAME_LABEL: &str = "batch.kubernetes.io/job-name";
/// Legacy form of [`JOB_NAME_LABEL`], still set on every pod.
pub const LEGACY_JOB_NAME_LABEL: &str = "job-name";

/// Applies the API server's defaults to a Job (spec, pod template, metadata labels).
pub fn default_job(job: &mut Job) {
    default_job_spec(&mut job.spec);
    if job.metadata.labels.is_empty() && !job.spec.template.metadata.labels.is_empty() {
        job.metadata.labels = job.spec.template.metadata.labels.clone();
    }
}

/// Applies the Job-level defaults to a Job spec, then the pod-level ones.
pub fn default_job_spec(spec: &mut JobSpec) {
    if spec.completions.is_none() && spec.parallelism.is_none() {
        spec.completions = Some(1);
        spec.parallelism = Some(1);
    }
    if spec.parallelism.is_none() {
        spec.parallelism = Some(1);
    }
    if spec.backoff_limit.is_none() {
        spec.backoff_limit = Some(if spec.backoff_limit_per_index.is_some() {
            i32::MAX
        } else {
            DEFAULT_BACKOFF_LIMIT
        });
    }
    if spec.completion_mode.is_none() {
        spec.completion_mode = Some(CompletionMode::NonIndexed);
    }
    if spec.suspend.is_none() {
        spec.suspend = Some(false);
    }
    if spec.pod_replacement_policy.is_none() {
        spec.pod_replacement_policy = Some(if spec.pod_failure_policy.is_some() {
            PodReplacementPolicy::Failed
        } else {
            PodReplacementPolicy::TerminatingOrFailed
        });
    }
    if spec.manual_selector.is_none() {
        spec.manual_selector = Some(false);
    }
    default_nested_job_spec(spec);
}

/// The defaults that reach a Job spec wherever it appears (also inside a CronJob's
/// `jobTemplate`): pod-failure-policy patterns and the pod template.
fn default_nested_job_spec(spec: &mut JobSpec) {
    if let Some(policy) = &mut spec.pod_failure_policy {
        default_pod_failure_policy(policy);
    }
    default_pod_template(&mut spec.template);
}

fn default_pod_failure_policy(policy: &mut PodFailurePolicy) {
    for rule in &mut policy.rules {
        for pattern in &mut rule.on_pod_conditions {
            if pattern.status.as_str().is_empty() {
                pattern.status = ConditionStatus::True;
            }
        }
    }
}

/// Applies the pod defaults batch relies on to a pod template.
pub fn default_pod_template(template: &mut PodTemplateSpec) {
    let spec = &mut template.spec;
    if spec.restart_policy.as_str().is_empty() {
        spec.restart_policy = RestartPolicy::Always;
    }
    if spec.termination_grace_period_seconds.is_none() {
        spec.termination_grace_period_seconds = Some(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS);
    }
    for container in spec
        .init_containers
        .iter_mut()
        .chain(spec.containers.iter_mut())
    {
        default_container(container);
    }
}

fn default_container(container: &mut Container) {
    if container.image_pull_policy.is_none() {
        container.image_pull_policy = Some(default_pull_policy(&container.image));
    }
}

/// The pull policy Kubernetes chooses for an image without one: `Always` when the image has
/// no tag or the tag `latest` (and no digest), else `IfNotPresent`.
pub fn default_pull_policy(image: &str) -> PullPolicy {
    if image.contains('@') {
        return PullPolicy::IfNotPresent;
    }
    // The tag follows the last ':' after the last '/' (a ':' before a '/' is a registry port).
    let last_segment = image.rsplit('/').next().unwrap_or(image);
    match last_segment.rsplit_once(':') {
        Some((_, tag)) if tag != "latest" => PullPolicy::IfNotPresent,
        _ => PullPolicy::Always,
    }
}

/// Applies the API server's defaults to a CronJob.
pub fn default_cron_job(cron_job: &mut CronJob) {
    let spec = &mut cron_job.spec;
    if spec.concurrency_policy.as_str().is_empty() {
        spec.concurrency_policy = ConcurrencyPolicy::Allow;
    }
    if spec.suspend.is_none() {
        spec.suspend = Some(false);
    }
    if spec.successful_jobs_history_limit.is_none() {
        spec.successful_jobs_history_limit = Some(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT);
    }
    if spec.failed_jobs_history_limit.is_none() {
        spec.failed_jobs_history_limit = Some(DEFAULT_FAILED_JOBS_HISTORY_LIMIT);
    }
    default_nested_job_spec(&mut spec.job_template.spec);
}

/// Generates the Job's selector and pod-template labels from its UID and name, as the API
/// server does just before it validates a create (unless `spec.manualSelector` is true).
///
/// Adds `batch.kubernetes.io/controller-uid`, `controller-uid`, `batch.kubernetes.io/job-name`
/// and `job-name` to the template's labels where the user has not set them (a conflicting
/// value set by the user is left for validation to reject), and
/// `batch.kubernetes.io/controller-uid: <uid>` to `spec.selector.matchLabels`.
pub fn generate_job_selector(job: &mut Job) {
    if job.spec.manual_selector == Some(true) {
        return;
    }
    let name = job.metadata.name.clone().unwrap_or_default();
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let labels = &mut job.spec.template.metadata.labels;
    for (key, value) in [
        (LEGACY_JOB_NAME_LABEL, &name),
        (JOB_NAME_LABEL, &name),
        (LEGACY_CONTROLLER_UID_LABEL, &uid),
        (CONTROLLER_UID_LABEL, &uid),
    ] {
        labels
            .entry(key.to_owned())
            .or_insert_with(|| value.clone());
    }
    let selector = job.spec.selector.get_or_insert_with(LabelSelector::default);
    selector
        .match_labels
        .entry(CONTROLLER_UID_LABEL.to_owned())
        .or_insert(uid);
}

/// Everything the API server does to a new Job before validating it: assigns `uid` when the
/// Job has none, applies the defaults, and generates the selector — giving the Job as it is
/// stored and read back (a Job without labels of its own then carries the generated ones).
/// Applying it twice changes nothing.
///
/// The API server assigns a random UID; batch-core is deterministic, so the caller passes
/// the UID to use (a Job that already has one keeps it).
pub fn prepare_job_for_create(job: &mut Job, uid: &str) {
    if job.metadata.uid.as_deref().is_none_or(str::is_empty) {
        job.metadata.uid = Some(uid.to_owned());
    }
    default_job(job);
    generate_job_selector(job);
    // The stored Job is defaulted again whenever it is read back, which copies the
    // generated template labels into a label-less Job's own labels (as `kubectl get job`
    // shows). Doing it here gives that stored form, and makes this function idempotent.
    default_job(job);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_image_tag() {
        assert_eq!(default_pull_policy("busybox"), PullPolicy::Always);
        assert_eq!(default_pull_policy("busybox:latest"), PullPolicy::Always);
        assert_eq!(
            default_pull_policy("busybox:1.28"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            default_pull_policy("registry:5000/team/app"),
            PullPolicy::Always
        );
        assert_eq!(
            default_pull_policy("registry:5000/team/app:v2"),
            PullPolicy::IfNotPresent
        );
        assert_eq!(
            default_pull_policy("app@sha256:0123abcd"),
            PullPolicy::IfNotPresent
        );
    }
}
