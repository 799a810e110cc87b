//! TTL after finished (spec §6): when a finished Job with `ttlSecondsAfterFinished` may be
//! deleted. A pure decision usable for any Job, whether a CronJob created it or not.
//!
//! The finish time is the `lastTransitionTime` of the Job's `Complete=True` or
//! `Failed=True` condition; the Job expires `ttlSecondsAfterFinished` seconds later (0:
//! immediately). The caller re-reads the Job before deleting it (the TTL is mutable:
//! extending it postpones the deletion) and deletes it with foreground propagation, so
//! its pods go first.
//!
//! ```
//! use batch_core::cronjob::ttl::{ttl_decision, TtlDecision};
//! use batch_core::model::Job;
//! use chrono::{TimeZone, Utc};
//!
//! let job: Job = serde_norway::from_str("
//! metadata: {name: pi}
//! spec: {ttlSecondsAfterFinished: 100, template: {spec: {containers: []}}}
//! status:
//!   conditions: [{type: Complete, status: 'True', lastTransitionTime: 2026-01-01T00:00:00Z}]
//! ").unwrap();
//! let at = |s| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, s).unwrap();
//! assert_eq!(ttl_decision(&job, at(10)), TtlDecision::WaitUntil(at(0) + chrono::Duration::seconds(100)));
//! assert_eq!(ttl_decision(&job, at(0) + chrono::Duration::seconds(100)), TtlDecision::DeleteNow);
//! ```

use chrono::Duration;

use crate::model::{ConditionStatus, Job, JobConditionType, JobStatus, Timestamp};

/// What to do about a Job's TTL after finished at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TtlDecision {
    /// The TTL does not apply: no `ttlSecondsAfterFinished`, the Job is not finished, its
    /// finish time is unknown, or it is already being deleted (`deletionTimestamp` set).
    NotApplicable,
    /// The Job expires at this time: run again then. A finish time in the future (clock
    /// skew) also waits, as upstream.
    WaitUntil(Timestamp),
    /// The Job has expired: delete it now.
    DeleteNow,
}

/// When a finished Job finished: the `lastTransitionTime` of its first `Complete=True` or
/// `Failed=True` condition (`None` when it is not finished or the time is unset).
pub fn finish_time(status: &JobStatus) -> Option<Timestamp> {
    status
        .conditions
        .iter()
        .find(|c| {
            c.status == ConditionStatus::True
                && matches!(
                    c.type_,
                    JobConditionType::Complete | JobConditionType::Failed
                )
        })?
        .last_transition_time
}

/// When a Job with `ttl_seconds_after_finished` and `status` expires: the finish time plus
/// the TTL. `None` when there is no TTL or the Job is not finished.
pub fn expiry(ttl_seconds_after_finished: Option<i32>, status: &JobStatus) -> Option<Timestamp> {
    let ttl = ttl_seconds_after_finished?;
    finish_time(status)?.checked_add_signed(Duration::seconds(i64::from(ttl)))
}

/// When `job` may be deleted (spec §6): its finish time plus `ttlSecondsAfterFinished`, or
/// `None` when the TTL does not apply (see [`TtlDecision::NotApplicable`]).
pub fn ttl_expiry(job: &Job) -> Option<Timestamp> {
    if job.metadata.deletion_timestamp.is_some() {
        return None;
    }
    expiry(job.spec.ttl_seconds_after_finished, &job.status)
}

/// What to do about `job`'s TTL at `now`: nothing, wait until its expiry, or delete it.
pub fn ttl_decision(job: &Job, now: Timestamp) -> TtlDecision {
    match ttl_expiry(job) {
        None => TtlDecision::NotApplicable,
        Some(at) if at <= now => TtlDecision::DeleteNow,
        Some(at) => TtlDecision::WaitUntil(at),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn job(yaml: &str) -> Job {
        serde_norway::from_str(yaml).unwrap()
    }

    #[test]
    fn running_or_ttl_less_or_deleting_jobs_are_not_applicable() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let running = job("spec: {ttlSecondsAfterFinished: 0}");
        assert_eq!(ttl_decision(&running, now), TtlDecision::NotApplicable);
        let no_ttl = job(
            "status: {conditions: [{type: Failed, status: 'True', lastTransitionTime: 2026-01-01T00:00:00Z}]}",
        );
        assert_eq!(ttl_decision(&no_ttl, now), TtlDecision::NotApplicable);
        let deleting = job(
            "metadata: {deletionTimestamp: 2026-01-01T00:00:00Z}\nspec: {ttlSecondsAfterFinished: 0}\nstatus: {conditions: [{type: Failed, status: 'True', lastTransitionTime: 2026-01-01T00:00:00Z}]}",
        );
        assert_eq!(ttl_decision(&deleting, now), TtlDecision::NotApplicable);
        let done = job(
            "spec: {ttlSecondsAfterFinished: 0}\nstatus: {conditions: [{type: Failed, status: 'True', lastTransitionTime: 2026-01-01T00:00:00Z}]}",
        );
        assert_eq!(ttl_decision(&done, now), TtlDecision::DeleteNow);
    }

    #[test]
    fn finish_time_in_the_future_waits() {
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let skewed = job(
            "spec: {ttlSecondsAfterFinished: 0}\nstatus: {conditions: [{type: Complete, status: 'True', lastTransitionTime: 2026-01-01T00:01:00Z}]}",
        );
        assert_eq!(
            ttl_decision(&skewed, now),
            TtlDecision::WaitUntil(now + Duration::minutes(1))
        );
    }
}
