//! Conversions between batch-core's model and the Kubernetes API types of `k8s-openapi`
//! (`batch/v1` Job and CronJob, their statuses).
//!
//! Both sides are the Kubernetes wire format, so a conversion goes through JSON: nothing is
//! hand-mapped field by field, and every field batch-core keeps — the typed ones and those
//! it only passes through in its `extra` maps — reaches the other side. What cannot reach
//! it is a field that `k8s-openapi` does not know (a field newer than the API version it
//! models, or a typo): such fields are **reported, never dropped silently** —
//! [`Converted::dropped`] lists each by its path (`spec.template.spec.containers[0].bogus`),
//! so the caller can refuse or warn.
//!
//! ```
//! use batch_core::model::Manifest;
//! use batch_executor_k8s::convert;
//!
//! let docs = batch_core::loader::load_str(
//!     "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      nodeSelector: {disk: ssd}\n      containers: [{name: pi, image: perl, bogus: 1}]\n",
//!     "pi.yaml",
//! )?;
//! let Some(Manifest::Job(job)) = &docs[0].object else { unreachable!() };
//! let converted = convert::job_to_k8s(job)?;
//! // nodeSelector is only passed through by batch-core, and it arrives:
//! let pod = converted.object.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
//! assert_eq!(pod.node_selector.as_ref().unwrap()["disk"], "ssd");
//! // the unknown field is named, not lost silently:
//! assert_eq!(converted.dropped, ["spec.template.spec.containers[0].bogus"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use batch_core::model::{CronJob, CronJobStatus, Job, JobStatus};
use k8s_openapi::api::batch::v1 as k8s;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The result of converting to a `k8s-openapi` type.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Converted<T> {
    /// The converted object.
    pub object: T,
    /// The paths of the fields of the input that the target type has no place for (empty
    /// for a lossless conversion), in document order.
    pub dropped: Vec<String>,
}

/// A conversion that failed: the input does not fit the target type (for example a
/// number out of range). The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot convert {what}: {message}")]
pub struct ConvertError {
    what: &'static str,
    message: String,
}

impl ConvertError {
    /// What was being converted (`Job`, `CronJob status`, …).
    pub fn what(&self) -> &'static str {
        self.what
    }

    /// The cause, naming the field where there is one.
    pub fn message(&self) -> &str {
        &self.message
    }
}

fn to_value<T: Serialize>(what: &'static str, value: &T) -> Result<Value, ConvertError> {
    serde_json::to_value(value).map_err(|e| ConvertError {
        what,
        message: e.to_string(),
    })
}

fn from_value<T: DeserializeOwned>(what: &'static str, value: Value) -> Result<T, ConvertError> {
    serde_path_to_error::deserialize(value).map_err(|e| ConvertError {
        what,
        message: if e.path().iter().next().is_some() {
            format!("{}: {}", e.path(), e.inner())
        } else {
            e.inner().to_string()
        },
    })
}

fn convert<S: Serialize, T: Serialize + DeserializeOwned>(
    what: &'static str,
    input: &S,
) -> Result<Converted<T>, ConvertError> {
    let mut source = to_value(what, input)?;
    // `batch/v1beta1` CronJobs (and Jobs) have the `batch/v1` schema: the conversion is the
    // version's, as the API server's own.
    if let Some(version) = source.get_mut("apiVersion")
        && version == "batch/v1beta1"
    {
        *version = Value::String("batch/v1".to_owned());
    }
    let object: T = from_value(what, source.clone())?;
    let target = to_value(what, &object)?;
    let mut dropped = Vec::new();
    missing_paths(&source, &target, "", &mut dropped);
    Ok(Converted { object, dropped })
}

/// Appends to `out` the path of every field of `source` that `target` lacks. A `null` in
/// the source is no loss (both sides read it as absent).
pub(crate) fn missing_paths(source: &Value, target: &Value, path: &str, out: &mut Vec<String>) {
    match (source, target) {
        (Value::Object(s), Value::Object(t)) => {
            for (key, value) in s {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match t.get(key) {
                    Some(other) => missing_paths(value, other, &child, out),
                    None if value.is_null() => {}
                    None => out.push(child),
                }
            }
        }
        (Value::Array(s), Value::Array(t)) => {
            for (i, value) in s.iter().enumerate() {
                let child = format!("{path}[{i}]");
                match t.get(i) {
                    Some(other) => missing_paths(value, other, &child, out),
                    None => out.push(child),
                }
            }
        }
        _ => {}
    }
}

/// A batch-core Job as a `batch/v1` Job.
///
/// # Errors
///
/// The Job does not fit the API type (the message names the field).
pub fn job_to_k8s(job: &Job) -> Result<Converted<k8s::Job>, ConvertError> {
    convert("Job", job)
}

/// A `batch/v1` Job as a batch-core Job (every field kept: what batch-core does not type
/// goes to its `extra` maps).
///
/// # Errors
///
/// The object does not fit batch-core's model (the message names the field).
pub fn job_from_k8s(job: &k8s::Job) -> Result<Job, ConvertError> {
    from_value("Job", with_type_meta(to_value("Job", job)?, "Job"))
}

/// A batch-core CronJob as a `batch/v1` CronJob (one loaded as `batch/v1beta1`, as older
/// documentation writes them, becomes `batch/v1`: the schema is the same).
///
/// # Errors
///
/// The CronJob does not fit the API type (the message names the field).
pub fn cron_job_to_k8s(cron_job: &CronJob) -> Result<Converted<k8s::CronJob>, ConvertError> {
    convert("CronJob", cron_job)
}

/// A `batch/v1` CronJob as a batch-core CronJob.
///
/// # Errors
///
/// The object does not fit batch-core's model (the message names the field).
pub fn cron_job_from_k8s(cron_job: &k8s::CronJob) -> Result<CronJob, ConvertError> {
    from_value(
        "CronJob",
        with_type_meta(to_value("CronJob", cron_job)?, "CronJob"),
    )
}

/// A Job status reported by a cluster, as batch-core's.
///
/// # Errors
///
/// The status does not fit batch-core's model (the message names the field).
pub fn job_status_from_k8s(status: &k8s::JobStatus) -> Result<JobStatus, ConvertError> {
    from_value("Job status", to_value("Job status", status)?)
}

/// A CronJob status reported by a cluster, as batch-core's.
///
/// # Errors
///
/// The status does not fit batch-core's model (the message names the field).
pub fn cron_job_status_from_k8s(
    status: &k8s::CronJobStatus,
) -> Result<CronJobStatus, ConvertError> {
    from_value("CronJob status", to_value("CronJob status", status)?)
}

/// batch-core's Job status as the API's.
///
/// # Errors
///
/// The status does not fit the API type (the message names the field).
pub fn job_status_to_k8s(status: &JobStatus) -> Result<Converted<k8s::JobStatus>, ConvertError> {
    convert("Job status", status)
}

/// batch-core's objects require `apiVersion` and `kind`; make sure they are there.
fn with_type_meta(mut value: Value, kind: &str) -> Value {
    if let Value::Object(map) = &mut value {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String("batch/v1".to_owned()));
        map.entry("kind")
            .or_insert_with(|| Value::String(kind.to_owned()));
    }
    value
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use serde_json::json;

    #[test]
    fn missing_paths_names_each_lost_field_and_ignores_nulls() {
        let source = json!({"a": 1, "b": {"c": [ {"d": 1, "e": 2}, {"f": null} ]}, "g": null});
        let target = json!({"a": 1, "b": {"c": [ {"d": 1} ]}});
        let mut out = Vec::new();
        missing_paths(&source, &target, "", &mut out);
        assert_eq!(out, ["b.c[0].e", "b.c[1]"]);
    }

    #[test]
    fn a_cluster_job_status_converts_with_every_field() {
        let status: k8s::JobStatus = serde_json::from_value(json!({
            "active": 1,
            "succeeded": 2,
            "failed": 3,
            "ready": 1,
            "terminating": 0,
            "completedIndexes": "0-1",
            "failedIndexes": "4",
            "startTime": "2026-01-01T00:00:00Z",
            "uncountedTerminatedPods": {"succeeded": ["u1"]},
            "conditions": [{
                "type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit",
                "lastProbeTime": "2026-01-01T00:01:00Z",
                "lastTransitionTime": "2026-01-01T00:01:00Z"
            }]
        }))
        .unwrap();
        let ours = job_status_from_k8s(&status).unwrap();
        assert_eq!((ours.active, ours.succeeded, ours.failed), (1, 2, 3));
        assert_eq!(ours.completed_indexes, "0-1");
        assert_eq!(ours.failed_indexes.as_deref(), Some("4"));
        assert_eq!(ours.conditions.len(), 1);
        // And back: nothing lost.
        let back = job_status_to_k8s(&ours).unwrap();
        assert!(back.dropped.is_empty(), "{:?}", back.dropped);
        assert_eq!(back.object, status);
    }
}
