//! The Job state machine: everything the Kubernetes Job controller decides, as a pure
//! function (spec §2, modern mode).
//!
//! [`reconcile`] takes the Job (spec and current status), the pods that exist for it, the
//! controller memory from the previous step, and the time, and returns a [`JobDecision`]:
//! pods to create and delete, terminal pods whose outcome is now counted (and may be
//! released), the complete new status, the new memory, events, and when to run again.
//! No I/O, no clock, no randomness: pod names derive from the Job and the memory. Calling
//! it again with the same inputs gives the same decision.
//!
//! The caller (the runner) applies the decision: it creates and deletes pods, persists the
//! status and memory, and only then releases the counted pods. Pods it has asked to create
//! must be passed to the next step (as `Pending`) even before the backend reports them,
//! which replaces upstream's "expectations".
//!
//! ```
//! use batch_core::job::{reconcile, JobMemory, ObservedPod, PodPhase};
//! use batch_core::{defaults, model::Job};
//! use chrono::{TimeZone, Utc};
//!
//! let mut job: Job = serde_norway::from_str("
//! metadata: {name: demo, uid: u1}
//! spec: {completions: 5, parallelism: 2, completionMode: Indexed,
//!        template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
//! ").unwrap();
//! defaults::default_job(&mut job);
//! let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
//!
//! let step = reconcile(&job, &[], &JobMemory::default(), now);
//! assert_eq!(step.create.iter().map(|p| p.index).collect::<Vec<_>>(), [Some(0), Some(1)]);
//! assert_eq!(step.status.active, 2);
//! assert_eq!(step.status.start_time, Some(now));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{ConditionStatus, Timestamp};

mod indexes;
mod reconcile;
pub mod sync;

pub use indexes::IndexSet;
pub use reconcile::reconcile;

/// Annotation (and label) carrying a pod's completion index.
pub const COMPLETION_INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";
/// Pod annotation: counted failures of the pod's index before it was created.
pub const INDEX_FAILURE_COUNT_ANNOTATION: &str = "batch.kubernetes.io/job-index-failure-count";
/// Pod annotation: failures of the pod's index that an `Ignore` rule matched.
pub const INDEX_IGNORED_FAILURE_COUNT_ANNOTATION: &str =
    "batch.kubernetes.io/job-index-ignored-failure-count";
/// The finalizer that keeps a finished pod until its outcome is counted.
pub const TRACKING_FINALIZER: &str = "batch.kubernetes.io/job-tracking";
/// The environment variable holding the completion index in Indexed Jobs' containers.
pub const COMPLETION_INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The `managedBy` value of the built-in Job controller (the only one this machine obeys).
pub const JOB_CONTROLLER_NAME: &str = "kubernetes.io/job-controller";

/// At most this many terminal pods are counted in one step (upstream `MaxUncountedPods`).
pub const MAX_UNCOUNTED_PODS: usize = 500;
/// At most this many pods are created or deleted in one step.
pub const MAX_POD_CREATE_DELETE_BATCH: usize = 500;
/// First pod-failure backoff delay.
pub const BACKOFF_BASE: chrono::Duration = chrono::Duration::seconds(10);
/// Largest pod-failure backoff delay (upstream `MaxJobPodFailureBackOff`; decisions errata).
pub const BACKOFF_CAP: chrono::Duration = chrono::Duration::minutes(10);

/// The phase of a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum PodPhase {
    /// Accepted, not yet running.
    #[default]
    Pending,
    /// Running.
    Running,
    /// Every container ended successfully.
    Succeeded,
    /// A container failed, or the pod was killed.
    Failed,
    /// The state cannot be obtained.
    Unknown,
}

impl PodPhase {
    /// `Succeeded` or `Failed`.
    pub fn is_terminal(self) -> bool {
        matches!(self, PodPhase::Succeeded | PodPhase::Failed)
    }
}

/// A condition of a pod (such as `DisruptionTarget=True` or `Ready=True`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodCondition {
    /// The condition type.
    #[serde(rename = "type")]
    pub type_: String,
    /// Its status.
    pub status: ConditionStatus,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Timestamp>,
}

/// The state of one container of a pod, as far as the Job machine needs it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerState {
    /// The container's name.
    pub name: String,
    /// Whether it is an init container (including a native sidecar).
    #[serde(default)]
    pub init: bool,
    /// Exit code, once the container has terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// When it terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// How many times it was restarted in place (restartPolicy `OnFailure`).
    #[serde(default)]
    pub restarts: i32,
}

/// A pod of the Job as an executor observes it: facts only.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservedPod {
    /// The pod's name (unique within the Job).
    pub name: String,
    /// The pod's UID; the name when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// Its phase.
    pub phase: PodPhase,
    /// The raw completion-index annotation (`None` when absent). A value that is not a
    /// non-negative integer means "no index".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    /// Annotations that matter to the machine (per-index failure counts).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Whether the pod's `Ready` condition is true.
    #[serde(default)]
    pub ready: bool,
    /// When it last became ready (deletion order prefers deleting the most recently ready).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_since: Option<Timestamp>,
    /// Whether the pod has been placed somewhere to run (deletion order prefers deleting
    /// unscheduled pods). Defaults to true unless the pod is `Pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled: Option<bool>,
    /// Whether deletion of the pod has been requested (it is terminating until terminal).
    #[serde(default)]
    pub deleting: bool,
    /// When deletion was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<Timestamp>,
    /// Whether the pod's outcome is already recorded in the Job status (upstream: its
    /// tracking finalizer has been removed).
    #[serde(default)]
    pub counted: bool,
    /// Container states (app containers first, then init containers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerState>,
    /// Pod conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<PodCondition>,
    /// When the pod was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When the pod finished (terminal phase), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl ObservedPod {
    /// The UID, or the name when no UID is known.
    pub fn uid(&self) -> &str {
        if self.uid.is_empty() {
            &self.name
        } else {
            &self.uid
        }
    }

    /// The completion index, when the annotation is a non-negative integer.
    pub fn parsed_index(&self) -> Option<i32> {
        self.index
            .as_deref()
            .and_then(|s| s.parse::<i32>().ok())
            .filter(|i| *i >= 0)
    }

    /// Total container restarts (app and init containers).
    pub fn restarts(&self) -> i64 {
        self.containers.iter().map(|c| i64::from(c.restarts)).sum()
    }
}

/// The pod-failure backoff record (spec §2.5.2), kept between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackoffRecord {
    /// Failures counted since the last success.
    #[serde(default)]
    pub failures_after_last_success: i32,
    /// When the latest of those failures happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure_time: Option<Timestamp>,
}

/// Everything the machine carries from one step to the next besides the Job status.
///
/// Upstream keeps this in the controller process and loses it on restart; here it is
/// explicit and serializable, so the runner persists it with the status (decisions §5).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobMemory {
    /// The pod-failure backoff record.
    #[serde(default)]
    pub backoff: BackoffRecord,
    /// How many pods the machine has asked to create so far (makes pod names unique and
    /// deterministic).
    #[serde(default)]
    pub pods_created: u64,
}

/// A pod to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodCreate {
    /// Its name.
    pub name: String,
    /// Its completion index (Indexed Jobs).
    pub index: Option<i32>,
    /// Labels: the template's, plus the Job's selector labels and, for Indexed Jobs, the
    /// completion index.
    pub labels: BTreeMap<String, String>,
    /// Annotations: the template's, plus the completion index and per-index failure counts.
    pub annotations: BTreeMap<String, String>,
    /// Environment variables to add to every container and init container that does not
    /// already define them (`JOB_COMPLETION_INDEX`).
    pub env: Vec<(String, String)>,
    /// The pod's hostname (Indexed Jobs: `<job>-<index>`).
    pub hostname: Option<String>,
}

/// The type of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something the user should look at.
    Warning,
}

/// An event, as the Job controller records them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// The reason (`SuccessfulCreate`, `BackoffLimitExceeded`, …).
    pub reason: String,
    /// The message.
    pub message: String,
}

impl Event {
    pub(crate) fn normal(reason: &str, message: impl Into<String>) -> Self {
        Event {
            type_: EventType::Normal,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }

    pub(crate) fn warning(reason: &str, message: impl Into<String>) -> Self {
        Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            message: message.into(),
        }
    }
}

/// What one reconcile step decided.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobDecision {
    /// Pods to create.
    pub create: Vec<PodCreate>,
    /// Names of pods to delete, in the order chosen. Never non-empty together with `create`.
    pub delete: Vec<String>,
    /// Names of terminal pods whose outcome this step counts: they may be released (their
    /// resources freed) once the new status is persisted.
    pub release: Vec<String>,
    /// The complete new status.
    pub status: crate::model::JobStatus,
    /// The memory for the next step.
    pub memory: JobMemory,
    /// Events.
    pub events: Vec<Event>,
    /// When to run again at the latest, if a timed wake-up is needed (backoff, deadline,
    /// TTL). Any new observation also warrants a step.
    pub requeue_at: Option<Timestamp>,
    /// For a finished Job with `ttlSecondsAfterFinished`: when it may be deleted.
    pub delete_job_at: Option<Timestamp>,
    /// Whether the machine did nothing because the Job is not its to manage (`managedBy`) or
    /// already finished earlier.
    pub skipped: bool,
}
