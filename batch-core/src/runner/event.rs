//! What a running Job or CronJob reports: [`RunEvent`]s.

use crate::cronjob::ChildJobResult;
use crate::model::{JobConditionType, Timestamp};
use crate::simulate::{JobResult, SimEvent, SimEventKind};

/// Something that happened to a running Job or CronJob, and when (by the runner's clock).
///
/// Received from [`JobHandle::events`](super::JobHandle::events) and
/// [`CronJobHandle::events`](super::CronJobHandle::events).
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    /// When it happened (the runner's [`Clock`](crate::clock::Clock)).
    pub t: Timestamp,
    /// The Job it concerns (for a CronJob's own events: the CronJob's name; for events of
    /// its child Jobs, forwarded to the CronJob's channel: the child Job's name).
    pub job: String,
    /// What happened.
    pub kind: RunEventKind,
}

/// What happened (see [`RunEvent`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEventKind {
    /// The runner started a pod the machine decided to create.
    Create {
        /// The pod's name.
        pod: String,
        /// Its completion index (Indexed Jobs).
        index: Option<i32>,
    },
    /// A pod's run ended with an exit code: the first non-zero exit code of its app
    /// containers, else of its init containers, else 0. Reported when the pod is first
    /// observed terminal, and for each in-place container restart (`restartPolicy:
    /// OnFailure`).
    Exit {
        /// The pod's name.
        pod: String,
        /// The exit code.
        exit_code: i32,
    },
    /// A pod failed without any exit code: evicted (`DisruptionTarget=True`), or gone
    /// before it ended.
    Evict {
        /// The pod's name.
        pod: String,
    },
    /// The runner deleted a pod (it is terminating).
    Delete {
        /// The pod's name.
        pod: String,
    },
    /// A Job condition appeared or changed.
    Condition {
        /// The condition type (`Complete`, `Failed`, `Suspended`, …).
        type_: String,
        /// Its reason.
        reason: String,
        /// Its message.
        message: String,
    },
    /// The machine recorded a Warning event.
    Warning {
        /// The event reason.
        reason: String,
        /// The event message.
        message: String,
    },
    /// The CronJob created a child Job.
    JobCreate {
        /// The child Job's name.
        job: String,
        /// The scheduled time it was created for.
        scheduled_time: Option<Timestamp>,
    },
    /// A child Job of the CronJob finished.
    JobFinish {
        /// The child Job's name.
        job: String,
        /// How it finished.
        result: ChildJobResult,
    },
    /// A Job was deleted: by its TTL, by [`JobHandle::delete`](super::JobHandle::delete), or
    /// (for a CronJob's child) by the CronJob's history limits or `Replace`.
    JobDelete {
        /// The Job's name.
        job: String,
    },
    /// The executor could not do or see what was asked. The runner goes on: transient
    /// problems are retried with backoff.
    ExecutorError {
        /// The operation (`start`, `delete`, `list`, `watch`, …).
        operation: String,
        /// The error, with its sources.
        message: String,
        /// When the runner tries again, if it does.
        retry_at: Option<Timestamp>,
    },
    /// The state store could not record a step. Nothing the step decided is released or
    /// published until a write succeeds: the step is retried with backoff.
    StoreError {
        /// What was being recorded.
        operation: String,
        /// The error, with its sources.
        message: String,
        /// When the runner tries again, if it does.
        retry_at: Option<Timestamp>,
    },
    /// The status changed; read it from the handle.
    Status,
}

impl RunEvent {
    /// The event as a line of `batch simulate` output ([`SimEvent`]'s `Display`), so a real
    /// run prints the same JSON-lines format as a simulated one.
    ///
    /// [`RunEventKind::ExecutorError`] becomes a `warning` with reason `ExecutorError`,
    /// [`RunEventKind::StoreError`] one with reason `StoreError`;
    /// [`RunEventKind::Status`] has no line (`None`).
    ///
    /// ```
    /// use batch_core::runner::{RunEvent, RunEventKind};
    /// use chrono::{TimeZone, Utc};
    ///
    /// let event = RunEvent {
    ///     t: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
    ///     job: "demo".into(),
    ///     kind: RunEventKind::Exit { pod: "demo-0-abcde".into(), exit_code: 1 },
    /// };
    /// assert_eq!(
    ///     event.to_sim_event().unwrap().to_string(),
    ///     r#"{"t":"2026-01-01T00:00:00Z","event":"exit","pod":"demo-0-abcde","exitCode":1}"#
    /// );
    /// ```
    pub fn to_sim_event(&self) -> Option<SimEvent> {
        let kind = match &self.kind {
            RunEventKind::Create { pod, index } => SimEventKind::Create {
                pod: pod.clone(),
                index: *index,
            },
            RunEventKind::Exit { pod, exit_code } => SimEventKind::Exit {
                pod: pod.clone(),
                exit_code: *exit_code,
            },
            RunEventKind::Evict { pod } => SimEventKind::Evict { pod: pod.clone() },
            RunEventKind::Delete { pod } => SimEventKind::Delete { pod: pod.clone() },
            RunEventKind::Condition { type_, reason, .. } => SimEventKind::Condition {
                type_: JobConditionType::from(type_.as_str()),
                reason: reason.clone(),
            },
            RunEventKind::Warning { reason, message } => SimEventKind::Warning {
                reason: reason.clone(),
                message: message.clone(),
            },
            RunEventKind::JobCreate {
                job,
                scheduled_time,
            } => SimEventKind::JobCreate {
                job: job.clone(),
                scheduled_time: *scheduled_time,
            },
            RunEventKind::JobFinish { job, result } => SimEventKind::JobFinish {
                job: job.clone(),
                result: match result {
                    ChildJobResult::Complete => JobResult::Complete,
                    ChildJobResult::Failed => JobResult::Failed,
                },
            },
            RunEventKind::JobDelete { job } => SimEventKind::JobDelete { job: job.clone() },
            RunEventKind::ExecutorError {
                operation,
                message,
                retry_at,
            }
            | RunEventKind::StoreError {
                operation,
                message,
                retry_at,
            } => SimEventKind::Warning {
                reason: match self.kind {
                    RunEventKind::StoreError { .. } => "StoreError",
                    _ => "ExecutorError",
                }
                .to_owned(),
                message: match retry_at {
                    Some(at) => format!(
                        "{operation}: {message} (retrying at {})",
                        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                    ),
                    None => format!("{operation}: {message}"),
                },
            },
            RunEventKind::Status => return None,
        };
        Some(SimEvent { t: self.t, kind })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn at(kind: RunEventKind) -> RunEvent {
        RunEvent {
            t: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            job: "demo".to_owned(),
            kind,
        }
    }

    #[test]
    fn executor_errors_print_as_warnings_and_status_changes_do_not_print() {
        let e = at(RunEventKind::ExecutorError {
            operation: "start".to_owned(),
            message: "start failed (unavailable): down".to_owned(),
            retry_at: None,
        });
        assert_eq!(
            e.to_sim_event().unwrap().to_string(),
            r#"{"t":"2026-01-01T00:00:00Z","event":"warning","reason":"ExecutorError","message":"start: start failed (unavailable): down"}"#
        );
        assert_eq!(at(RunEventKind::Status).to_sim_event(), None);
    }

    #[test]
    fn conditions_and_job_results_map_to_the_simulate_format() {
        let c = at(RunEventKind::Condition {
            type_: "Complete".to_owned(),
            reason: "CompletionsReached".to_owned(),
            message: "done".to_owned(),
        });
        assert_eq!(
            c.to_sim_event().unwrap().to_string(),
            r#"{"t":"2026-01-01T00:00:00Z","event":"condition","type":"Complete","reason":"CompletionsReached"}"#
        );
        let f = at(RunEventKind::JobFinish {
            job: "cj-1".to_owned(),
            result: ChildJobResult::Failed,
        });
        assert_eq!(
            f.to_sim_event().unwrap().to_string(),
            r#"{"t":"2026-01-01T00:00:00Z","event":"jobFinish","job":"cj-1","result":"Failed"}"#
        );
    }
}
