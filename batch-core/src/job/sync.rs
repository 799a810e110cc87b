//! The `batch sync job` document (conformance-io §3): one reconcile step described as data.
//!
//! A [`SyncInput`] holds the time, the stored Job, the controller memory of the previous
//! step and the pods an executor knows, in the small, executor-neutral shape of §3.
//! [`sync`] applies the API defaults to the Job (it does **not** validate: the Job is
//! already stored), runs [`reconcile`] and returns a [`SyncOutput`], which
//! serializes to the §3 output object.
//!
//! ```
//! use batch_core::job::sync::{SyncInput, sync};
//!
//! let input = SyncInput::parse("
//! now: 2026-01-01T00:00:10Z
//! job:
//!   metadata: {name: demo, uid: u1}
//!   spec: {completions: 5, parallelism: 2, completionMode: Indexed,
//!          template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
//! pods:
//!   - {name: demo-0-a, phase: Succeeded, index: 0, finishedAt: 2026-01-01T00:00:05Z}
//! ", "demo.yaml").unwrap();
//! let output = sync(&input);
//! let json = serde_json::to_value(&output).unwrap();
//! assert_eq!(json["create"], serde_json::json!([{"index": 1}, {"index": 2}]));
//! assert_eq!(json["release"], serde_json::json!(["demo-0-a"]));
//! assert_eq!(json["status"]["completedIndexes"], "0");
//! assert_eq!(json["requeueAfter"], serde_json::Value::Null);
//!
//! // Malformed input is an error naming the place, never a panic.
//! let err = SyncInput::parse("now: 2026-01-01T00:00:00Z\njob: {}\npods:\n  - {name: a, phase: Done}\n", "bad.yaml")
//!     .unwrap_err();
//! assert_eq!(err.path.as_deref(), Some("pods[0].phase"));
//! assert_eq!(err.line, Some(4));
//! ```

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{
    BackoffRecord, ContainerState, Event, JobDecision, JobMemory, ObservedPod, PodCondition,
    PodPhase, reconcile,
};
use crate::loader::ParseError;
use crate::model::{ConditionStatus, Job, JobStatus, Timestamp};

/// The input of one `batch sync job` step (conformance-io §3).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncInput {
    /// The time of the step.
    pub now: Timestamp,
    /// The Job as stored: metadata, spec and (optional) status. [`sync`] applies the API
    /// defaults to the spec.
    pub job: Job,
    /// The controller memory returned by the previous step (absent: a fresh controller).
    #[serde(default)]
    pub memory: SyncMemory,
    /// Every pod the executor currently knows for this Job.
    #[serde(default)]
    pub pods: Vec<SyncPod>,
}

/// Controller memory as written in a sync document: `{backoff: {failuresAfterLastSuccess,
/// lastFailureTime}}`, every field optional. Converts into [`JobMemory`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncMemory {
    /// The pod-failure backoff record (spec §2.5.2).
    #[serde(default)]
    pub backoff: SyncBackoff,
    /// How many pods the machine has asked to create so far (only affects pod names).
    #[serde(default)]
    pub pods_created: u64,
}

/// The backoff record as written in a sync document.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncBackoff {
    /// Failures counted since the last success.
    #[serde(default)]
    pub failures_after_last_success: i32,
    /// When the latest of those failures happened.
    #[serde(default)]
    pub last_failure_time: Option<Timestamp>,
}

impl From<&SyncMemory> for JobMemory {
    fn from(m: &SyncMemory) -> Self {
        JobMemory {
            backoff: BackoffRecord {
                failures_after_last_success: m.backoff.failures_after_last_success,
                last_failure_time: m.backoff.last_failure_time,
            },
            pods_created: m.pods_created,
        }
    }
}

impl From<&JobMemory> for SyncMemory {
    fn from(m: &JobMemory) -> Self {
        SyncMemory {
            backoff: SyncBackoff {
                failures_after_last_success: m.backoff.failures_after_last_success,
                last_failure_time: m.backoff.last_failure_time,
            },
            pods_created: m.pods_created,
        }
    }
}

/// One pod of a sync document: the facts an executor reports (conformance-io §3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncPod {
    /// The pod's name (also used as its UID).
    pub name: String,
    /// `Pending`, `Running`, `Succeeded`, `Failed` (or `Unknown`).
    pub phase: PodPhase,
    /// The completion-index annotation as written: an integer, or any string (a string that
    /// is not a non-negative integer, such as `"x"`, is an unparsable index). Absent: no
    /// annotation.
    #[serde(default, deserialize_with = "index_text")]
    pub index: Option<String>,
    /// Whether the pod's `Ready` condition is true.
    #[serde(default)]
    pub ready: bool,
    /// Whether deletion was requested and the pod is not terminal yet (terminating).
    #[serde(default)]
    pub deleting: bool,
    /// Whether its outcome is already recorded in the status (tracking finalizer removed).
    #[serde(default)]
    pub counted: bool,
    /// Total container restarts (restartPolicy `OnFailure`).
    #[serde(default)]
    pub restarts: i32,
    /// Container name → exit code, for terminated containers.
    #[serde(default)]
    pub exit_codes: BTreeMap<String, i32>,
    /// Pod conditions (such as `DisruptionTarget=True`).
    #[serde(default)]
    pub conditions: Vec<SyncPodCondition>,
    /// When the pod was created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// When the pod finished.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Pod annotations (not in conformance-io §3; used for the per-index failure counts
    /// `batch.kubernetes.io/job-index-failure-count` and
    /// `batch.kubernetes.io/job-index-ignored-failure-count`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// A pod condition in a sync document.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SyncPodCondition {
    /// The condition type (`DisruptionTarget`, `Ready`, …).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown` (a YAML boolean is read as `True` / `False`).
    #[serde(deserialize_with = "condition_status")]
    pub status: ConditionStatus,
    /// Machine-readable reason.
    #[serde(default)]
    pub reason: String,
}

impl SyncPod {
    /// The pod as the Job machine observes it.
    ///
    /// Each `exitCodes` entry becomes a terminated app container (finished at
    /// `finishedAt`); `restarts` is carried by the first of them, or by one unnamed
    /// container when there is none.
    pub fn to_observed(&self) -> ObservedPod {
        let mut containers: Vec<ContainerState> = self
            .exit_codes
            .iter()
            .map(|(name, code)| ContainerState {
                name: name.clone(),
                init: false,
                exit_code: Some(*code),
                finished_at: self.finished_at,
                restarts: 0,
            })
            .collect();
        if self.restarts != 0 {
            match containers.first_mut() {
                Some(first) => first.restarts = self.restarts,
                None => containers.push(ContainerState {
                    restarts: self.restarts,
                    ..ContainerState::default()
                }),
            }
        }
        ObservedPod {
            name: self.name.clone(),
            uid: String::new(),
            phase: self.phase,
            index: self.index.clone(),
            annotations: self.annotations.clone(),
            ready: self.ready,
            ready_since: None,
            scheduled: None,
            deleting: self.deleting,
            deletion_time: None,
            counted: self.counted,
            containers,
            conditions: self
                .conditions
                .iter()
                .map(|c| PodCondition {
                    type_: c.type_.clone(),
                    status: c.status.clone(),
                    reason: c.reason.clone(),
                    last_transition_time: None,
                })
                .collect(),
            created_at: self.created_at,
            finished_at: self.finished_at,
        }
    }
}

impl SyncInput {
    /// Reads a sync document (YAML or JSON, one non-empty document).
    ///
    /// # Errors
    ///
    /// A [`ParseError`] naming `origin`, the line and column where known, and the field
    /// path, when the text is not YAML, holds no document or several, or does not have the
    /// §3 shape (a missing `now` or `job`, an unknown field, a value of the wrong type).
    pub fn parse(src: &str, origin: &str) -> Result<Self, ParseError> {
        crate::loader::parse_single(src, origin, "an object with now, job and pods")
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

    /// The Job with the API defaults applied, as [`sync`] reconciles it.
    pub fn defaulted_job(&self) -> Job {
        let mut job = self.job.clone();
        crate::defaults::default_job(&mut job);
        job
    }

    /// The pods as the Job machine observes them.
    pub fn observed_pods(&self) -> Vec<ObservedPod> {
        self.pods.iter().map(SyncPod::to_observed).collect()
    }

    /// The memory as the Job machine takes it.
    pub fn job_memory(&self) -> JobMemory {
        JobMemory::from(&self.memory)
    }
}

/// One pod to create, in the §3 output: `{"index": 4}`, or `{}` for a NonIndexed Job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SyncCreate {
    /// The completion index (omitted for NonIndexed Jobs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
}

/// The output of one `batch sync job` step (conformance-io §3). Serializes with the §3
/// field names, in the §3 order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct SyncOutput {
    /// Pods to create.
    pub create: Vec<SyncCreate>,
    /// Names of pods to delete, in the order chosen.
    pub delete: Vec<String>,
    /// Names of terminal pods counted in the new status (to release once it is persisted).
    pub release: Vec<String>,
    /// The complete new Job status.
    pub status: JobStatus,
    /// The memory to feed into the next step.
    pub memory: JobMemory,
    /// Events.
    pub events: Vec<Event>,
    /// Seconds until the machine wants to run again (`requeue_at − now`), or `None`
    /// (JSON `null`) when no timed wake-up is needed.
    pub requeue_after: Option<f64>,
}

impl SyncOutput {
    /// The §3 output of a decision taken at `now`.
    pub fn from_decision(decision: &JobDecision, now: Timestamp) -> Self {
        let requeue_after = decision.requeue_at.map(|at| {
            let delta = at - now;
            let seconds = delta.num_milliseconds() as f64 / 1000.0;
            seconds.max(0.0)
        });
        SyncOutput {
            create: decision
                .create
                .iter()
                .map(|p| SyncCreate { index: p.index })
                .collect(),
            delete: decision.delete.clone(),
            release: decision.release.clone(),
            status: decision.status.clone(),
            memory: decision.memory.clone(),
            events: decision.events.clone(),
            requeue_after,
        }
    }
}

/// Runs one reconcile step on a sync document and returns the whole decision (pod names,
/// labels and annotations included). [`sync`] gives the §3 output of the same step.
pub fn sync_decision(input: &SyncInput) -> JobDecision {
    let job = input.defaulted_job();
    let pods = input.observed_pods();
    reconcile(&job, &pods, &input.job_memory(), input.now)
}

/// Runs one reconcile step on a sync document: defaults the Job, reconciles, and returns the
/// §3 output.
pub fn sync(input: &SyncInput) -> SyncOutput {
    SyncOutput::from_decision(&sync_decision(input), input.now)
}

/// Reads `index`: an integer or a string, kept as text.
fn index_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an integer or a string")
        }
        fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v.to_string()))
        }
        fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Some(v.to_owned()))
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }

    d.deserialize_any(Visitor)
}

/// Reads a condition status: `"True"`, `"False"`, `"Unknown"` or a boolean.
fn condition_status<'de, D: Deserializer<'de>>(d: D) -> Result<ConditionStatus, D::Error> {
    struct Visitor;

    impl<'de> serde::de::Visitor<'de> for Visitor {
        type Value = ConditionStatus;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("\"True\", \"False\" or \"Unknown\"")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(if v {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            })
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            let status = ConditionStatus::from(v);
            if status.is_known() {
                Ok(status)
            } else {
                Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }
    }

    d.deserialize_any(Visitor)
}
