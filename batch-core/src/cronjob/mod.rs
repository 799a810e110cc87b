//! The CronJob state machine: everything the Kubernetes CronJob controller decides, as a
//! pure function (spec §4.5), plus the TTL-after-finished decision for any Job ([`ttl`]).
//!
//! [`reconcile`] takes the CronJob (spec and current status), the child Jobs that exist
//! now (as [`ChildJob`] facts), the time and the [`CronJobOptions`], and returns a
//! [`CronJobDecision`]: the Job to create (if any) with its scheduled time, the child Jobs
//! to delete (history limits, `Replace`), the complete new status, events, and when to run
//! again. No I/O, no clock: the same inputs always give the same decision.
//!
//! One step does, in order: history cleanup (finished Jobs beyond
//! `successfulJobsHistoryLimit` / `failedJobsHistoryLimit`, oldest first), the child-Job
//! bookkeeping (`UnexpectedJob`, `SawCompletedJob`, `lastSuccessfulTime`, `MissingJob`),
//! then — unless the CronJob is being deleted, suspended, or its zone or schedule cannot be
//! used — the most recent due time, computed **exactly** (never by upstream's estimate),
//! the concurrency policy, and the creation of the Job for that time.
//!
//! Differences from upstream (see `docs/cronjobs.md`): no time zone means UTC; DST follows
//! [`CronJobOptions::dst`] (run once by default); a slot missed because of
//! `startingDeadlineSeconds` is reported (`MissSchedule`) rather than silently dropped;
//! a child Job that already carries the deterministic name of the due slot is recorded as
//! that slot's Job, never created twice; child Jobs are matched by name (there are no UIDs).
//!
//! The caller applies the decision: deletes the named Jobs, creates [`CronJobDecision::create`],
//! persists the status, and runs the next step at [`CronJobDecision::requeue_at`] **or**
//! as soon as a child Job changes (starts, finishes, disappears) — a slot held back by
//! `Forbid` starts when the running Job ends, as upstream.
//!
//! ```
//! use batch_core::cronjob::{reconcile, CronJobOptions};
//! use batch_core::model::CronJob;
//! use chrono::{TimeZone, Utc};
//!
//! let cron_job: CronJob = serde_norway::from_str("
//! metadata: {name: hello, namespace: default, uid: c1, creationTimestamp: 2016-05-19T09:30:00Z}
//! spec:
//!   schedule: '0 * * * *'
//!   jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}}
//! ").unwrap();
//! let now = Utc.with_ymd_and_hms(2016, 5, 19, 10, 1, 0).unwrap();
//!
//! let step = reconcile(&cron_job, &[], now, &CronJobOptions::default());
//! let job = step.create.unwrap();
//! assert_eq!(job.name(), "hello-24394200");
//! assert_eq!(step.scheduled_time, Some(Utc.with_ymd_and_hms(2016, 5, 19, 10, 0, 0).unwrap()));
//! assert_eq!(step.status.last_schedule_time, step.scheduled_time);
//! assert_eq!(step.status.active[0].name.as_deref(), Some("hello-24394200"));
//! assert_eq!(step.events[0].message, "Created job hello-24394200");
//! // The next run is at 11:00; the machine wants to run again 100 ms after it.
//! assert_eq!(step.requeue_at, Some(Utc.with_ymd_and_hms(2016, 5, 19, 11, 0, 0).unwrap()
//!     + chrono::Duration::milliseconds(100)));
//! ```

use serde::{Deserialize, Serialize};

use crate::cron::DstPolicy;
use crate::job::Event;
use crate::model::{CronJobStatus, Job, Timestamp};

mod reconcile;
pub mod sync;
pub mod ttl;

pub use reconcile::reconcile;

/// Annotation on a Job created by a CronJob: its scheduled time, RFC 3339 in the CronJob's
/// `timeZone` (UTC, `Z`, when unset).
pub const SCHEDULED_TIMESTAMP_ANNOTATION: &str = "batch.kubernetes.io/cronjob-scheduled-timestamp";

/// The delay added to the next fire time when asking to run again (upstream
/// `nextScheduleDelta`), so that the step runs just after the fire time.
pub const NEXT_SCHEDULE_DELTA: chrono::Duration = chrono::Duration::milliseconds(100);

/// A Job created by the CronJob, as the machine needs to know it: the facts an executor
/// reports about it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChildJob {
    /// The Job's name.
    pub name: String,
    /// Its scheduled time (the `batch.kubernetes.io/cronjob-scheduled-timestamp`
    /// annotation), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_time: Option<Timestamp>,
    /// When it was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// Its `status.startTime` (orders the history cleanup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<Timestamp>,
    /// How it finished (`Complete=True` or `Failed=True`); `None` while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<ChildJobResult>,
    /// Its `status.completionTime` (set when it completed successfully).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<Timestamp>,
}

impl ChildJob {
    /// The facts of a stored Job: name, scheduled-timestamp annotation, creation time,
    /// start time, terminal condition and completion time.
    pub fn from_job(job: &Job) -> Self {
        use crate::model::JobConditionType;
        let finished = if job.status.has_true_condition(&JobConditionType::Complete) {
            Some(ChildJobResult::Complete)
        } else if job.status.has_true_condition(&JobConditionType::Failed) {
            Some(ChildJobResult::Failed)
        } else {
            None
        };
        ChildJob {
            name: job.name().to_owned(),
            scheduled_time: job
                .metadata
                .annotations
                .get(SCHEDULED_TIMESTAMP_ANNOTATION)
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&chrono::Utc)),
            created_at: job.metadata.creation_timestamp,
            start_time: job.status.start_time,
            finished,
            completion_time: job.status.completion_time,
        }
    }
}

/// How a child Job finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChildJobResult {
    /// `Complete=True`.
    Complete,
    /// `Failed=True`.
    Failed,
}

impl ChildJobResult {
    /// `"Complete"` or `"Failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChildJobResult::Complete => "Complete",
            ChildJobResult::Failed => "Failed",
        }
    }
}

/// Choices of the CronJob machine that upstream does not offer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct CronJobOptions {
    /// What daylight saving time does to a scheduled wall time that happens zero or two
    /// times (default: [`DstPolicy::RunOnce`]; upstream is [`DstPolicy::Kubernetes`]).
    pub dst: DstPolicy,
}

impl CronJobOptions {
    /// The default options: [`DstPolicy::RunOnce`].
    pub fn new() -> Self {
        Self::default()
    }

    /// These options with another DST policy.
    #[must_use]
    pub fn with_dst(mut self, dst: DstPolicy) -> Self {
        self.dst = dst;
        self
    }
}

/// What one CronJob reconcile step decided.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronJobDecision {
    /// The Job to create, complete (name, labels, annotations, owner reference, spec).
    pub create: Option<Job>,
    /// The scheduled time of [`CronJobDecision::create`].
    pub scheduled_time: Option<Timestamp>,
    /// Names of child Jobs to delete (history cleanup first, then `Replace`), in order.
    pub delete: Vec<String>,
    /// The complete new status.
    pub status: CronJobStatus,
    /// Events, in order.
    pub events: Vec<Event>,
    /// When to run again at the latest (the next fire time + 100 ms), if a timed wake-up is
    /// needed. Any change of a child Job also warrants a step.
    pub requeue_at: Option<Timestamp>,
}

/// The deterministic name of the Job for a scheduled time:
/// `<cronjob-name>-<floor(unix seconds / 60)>` (spec §4.7).
///
/// ```
/// use chrono::{TimeZone, Utc};
/// let t = Utc.with_ymd_and_hms(2016, 5, 19, 10, 0, 0).unwrap();
/// assert_eq!(batch_core::cronjob::job_name("hello", t), "hello-24394200");
/// ```
pub fn job_name(cron_job_name: &str, scheduled: Timestamp) -> String {
    format!("{cron_job_name}-{}", scheduled.timestamp().div_euclid(60))
}
