//! The `batch sync cronjob` document (conformance-io §4): one reconcile step described as
//! data.
//!
//! A [`SyncInput`] holds the time, the stored CronJob and the child Jobs that exist now.
//! [`sync`] applies the API defaults to the CronJob (it does **not** validate: the CronJob
//! is already stored), runs [`reconcile`] and returns a [`SyncOutput`], which serializes to
//! the §4 output object. A schedule or zone that cannot be used is not an input error: the
//! output carries the Warning event and creates nothing.
//!
//! ```
//! use batch_core::cronjob::CronJobOptions;
//! use batch_core::cronjob::sync::{SyncInput, sync};
//!
//! let input = SyncInput::parse("
//! now: 2016-05-19T10:01:00Z
//! cronjob:
//!   metadata: {name: mycronjob, creationTimestamp: 2016-05-19T08:30:00Z}
//!   spec: {schedule: '0 * * * *', jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}}
//!   status: {lastScheduleTime: 2016-05-19T09:00:00Z}
//! jobs:
//!   - {name: mycronjob-24394140, scheduledTime: 2016-05-19T09:00:00Z, startTime: 2016-05-19T09:01:00Z,
//!      finished: Complete, completionTime: 2016-05-19T09:01:10Z}
//! ", "demo.yaml").unwrap();
//! let output = sync(&input, &CronJobOptions::default());
//! let json = serde_json::to_value(&output).unwrap();
//! assert_eq!(json["create"], serde_json::json!([{"name": "mycronjob-24394200", "scheduledTime": "2016-05-19T10:00:00Z"}]));
//! assert_eq!(json["status"]["lastSuccessfulTime"], "2016-05-19T09:01:10Z");
//! assert_eq!(json["requeueAfter"], 3540.1);
//!
//! // Malformed input is an error naming the place, never a panic.
//! let err = SyncInput::parse("now: 2016-05-19T10:01:00Z\ncronjob: {}\njobs:\n  - {name: a, finished: Done}\n", "bad.yaml")
//!     .unwrap_err();
//! assert_eq!(err.path.as_deref(), Some("jobs[0].finished"));
//! assert_eq!(err.line, Some(4));
//! ```

use serde::{Deserialize, Serialize};

use super::{ChildJob, CronJobDecision, CronJobOptions, reconcile};
use crate::job::Event;
use crate::loader::ParseError;
use crate::model::{CronJob, CronJobStatus, Timestamp};

/// The input of one `batch sync cronjob` step (conformance-io §4).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncInput {
    /// The time of the step.
    pub now: Timestamp,
    /// The CronJob as stored: metadata, spec and (optional) status. [`sync`] applies the
    /// API defaults to the spec.
    pub cronjob: CronJob,
    /// The child Jobs that exist now.
    #[serde(default)]
    pub jobs: Vec<ChildJob>,
}

impl SyncInput {
    /// Reads a sync document (YAML or JSON, one non-empty document).
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming `origin`, the line and column where known, and the field
    /// path, when the text is not YAML, holds no document or several, or does not have the
    /// §4 shape (a missing `now` or `cronjob`, an unknown field, a value of the wrong type).
    pub fn parse(src: &str, origin: &str) -> Result<Self, ParseError> {
        crate::loader::parse_single(src, origin, "an object with now, cronjob and jobs")
    }

    /// Reads a sync document given as bytes (as read from a file): checks the size limit
    /// and UTF-8 (skipping a UTF-8 byte-order mark), then [`SyncInput::parse`].
    ///
    /// # Errors
    ///
    /// As [`SyncInput::parse`], plus a [`ParseError`] when the bytes are not UTF-8.
    pub fn parse_bytes(bytes: &[u8], origin: &str) -> Result<Self, ParseError> {
        Self::parse(crate::loader::decode(bytes, origin)?, origin)
    }

    /// The CronJob with the API defaults applied, as [`sync`] reconciles it.
    pub fn defaulted_cron_job(&self) -> CronJob {
        let mut cron_job = self.cronjob.clone();
        crate::defaults::default_cron_job(&mut cron_job);
        cron_job
    }
}

/// One Job to create, in the §4 output: `{"name": …, "scheduledTime": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncCreate {
    /// The Job's (deterministic) name.
    pub name: String,
    /// Its scheduled time.
    pub scheduled_time: Timestamp,
}

/// The output of one `batch sync cronjob` step (conformance-io §4). Serializes with the §4
/// field names, in the §4 order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncOutput {
    /// Jobs to create (none or one).
    pub create: Vec<SyncCreate>,
    /// Names of child Jobs to delete, in order.
    pub delete: Vec<String>,
    /// The complete new CronJob status.
    pub status: CronJobStatus,
    /// Events.
    pub events: Vec<Event>,
    /// Seconds until the machine wants to run again (`requeue_at − now`, at least 0), or
    /// `None` (JSON `null`) when no timed wake-up is needed.
    pub requeue_after: Option<f64>,
}

impl SyncOutput {
    /// The §4 output of a decision taken at `now`.
    pub fn from_decision(decision: &CronJobDecision, now: Timestamp) -> Self {
        let requeue_after = decision.requeue_at.map(|at| {
            let seconds = (at - now).num_milliseconds() as f64 / 1000.0;
            seconds.max(0.0)
        });
        SyncOutput {
            create: decision
                .create
                .iter()
                .zip(decision.scheduled_time)
                .map(|(job, scheduled_time)| SyncCreate {
                    name: job.name().to_owned(),
                    scheduled_time,
                })
                .collect(),
            delete: decision.delete.clone(),
            status: decision.status.clone(),
            events: decision.events.clone(),
            requeue_after,
        }
    }
}

/// Runs one reconcile step on a sync document and returns the whole decision (the Job to
/// create included). [`sync`] gives the §4 output of the same step.
pub fn sync_decision(input: &SyncInput, options: &CronJobOptions) -> CronJobDecision {
    reconcile(&input.defaulted_cron_job(), &input.jobs, input.now, options)
}

/// Runs one reconcile step on a sync document: defaults the CronJob, reconciles, and
/// returns the §4 output.
pub fn sync(input: &SyncInput, options: &CronJobOptions) -> SyncOutput {
    SyncOutput::from_decision(&sync_decision(input, options), input.now)
}
