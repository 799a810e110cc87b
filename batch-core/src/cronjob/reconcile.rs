//! One reconcile step of the CronJob machine (spec §4.5).

use std::cmp::Ordering;

use chrono::{DateTime, Duration, SecondsFormat, Utc};
use chrono_tz::Tz;

use super::{
    ChildJob, ChildJobResult, CronJobDecision, CronJobOptions, NEXT_SCHEDULE_DELTA,
    SCHEDULED_TIMESTAMP_ANNOTATION, job_name,
};
use crate::cron::{DstPolicy, SEARCH_YEARS, Schedule, parse_time_zone};
use crate::defaults::{DEFAULT_FAILED_JOBS_HISTORY_LIMIT, DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT};
use crate::job::Event;
use crate::model::{
    API_VERSION, ConcurrencyPolicy, CronJob, CronJobStatus, Job, ObjectMeta, ObjectReference,
    OwnerReference, Timestamp,
};

/// Runs one step of the CronJob controller (spec §4.5) on `cron_job` as stored, the child
/// Jobs that exist now (`jobs`: the Jobs this CronJob controls, matched by name), at `now`.
///
/// The CronJob need not be defaulted: absent history limits count as their defaults (3 and
/// 1, a negative one as 0), an absent or unknown concurrency policy as `Allow`. A schedule
/// or zone that cannot be used is not an error: the decision carries a Warning event
/// (`UnknownTimeZone`, `UnparseableSchedule`, `InvalidSchedule`) and creates nothing.
///
/// The earliest time considered is `status.lastScheduleTime`, else
/// `metadata.creationTimestamp`, else (neither set) the Unix epoch — so, as upstream with
/// its zero time, the most recent fire time is due with a `TooManyMissedTimes` warning.
pub fn reconcile(
    cron_job: &CronJob,
    jobs: &[ChildJob],
    now: Timestamp,
    options: &CronJobOptions,
) -> CronJobDecision {
    let mut d = CronJobDecision {
        create: None,
        scheduled_time: None,
        delete: Vec::new(),
        status: cron_job.status.clone(),
        events: Vec::new(),
        requeue_at: None,
    };
    // History cleanup comes before the sync proper (spec §4.5): a Job it deletes takes no
    // further part in this step.
    cleanup_history(cron_job, jobs, &mut d);
    let remaining: Vec<ChildJob> = jobs
        .iter()
        .filter(|j| !d.delete.contains(&j.name))
        .cloned()
        .collect();
    let jobs = remaining.as_slice();
    track_children(jobs, &mut d);

    if cron_job.metadata.deletion_timestamp.is_some() {
        return d;
    }
    // Step 4: an unloadable zone stops the step, with no requeue. `timeZone: ""` is UTC
    // (Go loads the empty name as UTC; validation rejects it on create).
    let tz = match cron_job.spec.time_zone.as_deref() {
        None | Some("") => chrono_tz::UTC,
        Some(name) => match parse_time_zone(name) {
            Ok(tz) => tz,
            Err(e) => {
                d.events.push(Event::warning(
                    "UnknownTimeZone",
                    format!("invalid timeZone: {name:?}: {}", e.message),
                ));
                return d;
            }
        },
    };
    if cron_job.spec.suspend == Some(true) {
        return d;
    }
    let text = cron_job.spec.schedule.as_str();
    if text.contains("TZ") {
        d.events.push(Event::warning(
            "UnsupportedSchedule",
            format!(
                "CRON_TZ or TZ used in schedule {text:?} is not officially supported, see \
                 https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/ for more details"
            ),
        ));
    }
    let schedule = match Schedule::parse(text) {
        Ok(s) => s,
        Err(e) => {
            d.events.push(Event::warning(
                "UnparseableSchedule",
                format!("unparseable schedule: {text:?} : {e}"),
            ));
            return d;
        }
    };
    let clock = Clock {
        schedule: &schedule,
        tz,
        policy: options.dst,
        now,
    };

    // Step 7: the most recent due time, exactly, within the starting deadline.
    let earliest = earliest(cron_job, &d.status);
    // Clamped to ±100 years rather than dropped when out of range, so that an (unvalidated)
    // i64::MIN behaves like any other negative deadline and i64::MAX like a very long one,
    // and the arithmetic below stays within chrono's range.
    const CENTURY_SECONDS: i64 = 100 * 365 * 24 * 3600;
    let deadline = cron_job
        .spec
        .starting_deadline_seconds
        .map(|secs| Duration::seconds(secs.clamp(-CENTURY_SECONDS, CENTURY_SECONDS)));
    let window_start = match deadline.and_then(|dl| now.checked_sub_signed(dl)) {
        Some(start) => start.max(earliest),
        None => earliest,
    };
    let Some(due) = schedule.most_recent(window_start, now, tz, options.dst) else {
        if schedule
            .next_fire(window_start.max(now), tz, options.dst)
            .is_none()
        {
            d.events.push(Event::warning(
                "InvalidSchedule",
                format!(
                    "invalid schedule: {text} : the schedule has no fire time within \
                     {SEARCH_YEARS} years"
                ),
            ));
            return d;
        }
        // Nothing due inside the window. A due time before the window is a start missed
        // because of startingDeadlineSeconds: reported (upstream drops it silently).
        if deadline.is_some()
            && let Some(missed) = schedule.most_recent(earliest, now, tz, options.dst)
        {
            d.events.push(miss_schedule(missed.time));
        }
        d.requeue_at = clock.requeue_at(cron_job, &d.status);
        return d;
    };
    if due.too_many_missed() {
        d.events.push(Event::warning(
            "TooManyMissedTimes",
            "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or \
             check clock skew",
        ));
    }
    let scheduled = due.time;

    // Step 8 (cannot happen with the exact search inside the window; kept as upstream).
    if let Some(dl) = deadline
        && scheduled
            .checked_add_signed(dl)
            .is_some_and(|latest| latest < now)
    {
        d.events.push(miss_schedule(scheduled));
        d.requeue_at = clock.requeue_at(cron_job, &d.status);
        return d;
    }

    // Step 9: already processed.
    let name = job_name(cron_job.name(), scheduled);
    if is_active(&d.status, &name) || d.status.last_schedule_time == Some(scheduled) {
        d.requeue_at = clock.requeue_at(cron_job, &d.status);
        return d;
    }
    match cron_job.spec.concurrency_policy {
        // Step 10: lastScheduleTime is not advanced, so the slot starts late once the
        // running Job ends (upstream behaviour, spec §9.5).
        ConcurrencyPolicy::Forbid if !d.status.active.is_empty() => {
            d.events.push(Event::normal(
                "JobAlreadyActive",
                "Not starting job because prior execution is running and concurrency policy is Forbid",
            ));
            d.requeue_at = clock.requeue_at(cron_job, &d.status);
            return d;
        }
        // Step 11.
        ConcurrencyPolicy::Replace => {
            for reference in std::mem::take(&mut d.status.active) {
                let old = reference.name.unwrap_or_default();
                d.events.push(Event::normal(
                    "SuccessfulDelete",
                    format!("Deleted job {old}"),
                ));
                d.delete.push(old);
            }
        }
        _ => {}
    }

    // Step 12, AlreadyExists: a child Job with the deterministic name exists but the
    // status does not record it (a restart between creating the Job and writing the
    // status). As upstream, it is treated as created — after Forbid and Replace had their
    // say — and never created twice.
    if jobs.iter().any(|j| j.name == name) {
        d.status.active.push(job_reference(cron_job, &name));
        d.status.last_schedule_time = Some(scheduled);
        d.requeue_at = clock.requeue_at(cron_job, &d.status);
        return d;
    }

    // Steps 12 and 13.
    d.events.push(Event::normal(
        "SuccessfulCreate",
        format!("Created job {name}"),
    ));
    d.status.active.push(job_reference(cron_job, &name));
    d.status.last_schedule_time = Some(scheduled);
    d.create = Some(job_from_template(cron_job, &name, scheduled, tz));
    d.scheduled_time = Some(scheduled);
    d.requeue_at = clock.requeue_at(cron_job, &d.status);
    d
}

/// The schedule in its zone and policy, at `now`.
struct Clock<'a> {
    schedule: &'a Schedule,
    tz: Tz,
    policy: DstPolicy,
    now: Timestamp,
}

impl Clock<'_> {
    /// Spec §4.4 "Requeue delay", on the new status and without the starting deadline: the
    /// next fire time after the most recent due time (or after the earliest time when
    /// nothing is due), plus 100 ms. After a clock jump backwards (now before
    /// lastScheduleTime) that is the fire time after lastScheduleTime.
    fn requeue_at(&self, cron_job: &CronJob, status: &CronJobStatus) -> Option<Timestamp> {
        let earliest = earliest(cron_job, status);
        let reference = self
            .schedule
            .most_recent(earliest, self.now, self.tz, self.policy)
            .map_or(earliest, |m| m.time);
        self.schedule
            .next_fire(reference, self.tz, self.policy)?
            .time
            .checked_add_signed(NEXT_SCHEDULE_DELTA)
    }
}

/// `lastScheduleTime`, else `creationTimestamp`, else the Unix epoch.
fn earliest(cron_job: &CronJob, status: &CronJobStatus) -> Timestamp {
    status
        .last_schedule_time
        .or(cron_job.metadata.creation_timestamp)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
}

fn miss_schedule(scheduled: Timestamp) -> Event {
    Event::warning(
        "MissSchedule",
        format!(
            "Missed scheduled time to start a job: {}",
            scheduled.format("%a, %d %b %Y %H:%M:%S %z")
        ),
    )
}

fn is_active(status: &CronJobStatus, name: &str) -> bool {
    status
        .active
        .iter()
        .any(|r| r.name.as_deref() == Some(name))
}

fn remove_active(status: &mut CronJobStatus, name: &str) {
    status.active.retain(|r| r.name.as_deref() != Some(name));
}

/// Before the sync proper: finished Jobs beyond the history limits, oldest first.
fn cleanup_history(cron_job: &CronJob, jobs: &[ChildJob], d: &mut CronJobDecision) {
    let spec = &cron_job.spec;
    let limits = [
        (
            ChildJobResult::Complete,
            spec.successful_jobs_history_limit
                .unwrap_or(DEFAULT_SUCCESSFUL_JOBS_HISTORY_LIMIT),
        ),
        (
            ChildJobResult::Failed,
            spec.failed_jobs_history_limit
                .unwrap_or(DEFAULT_FAILED_JOBS_HISTORY_LIMIT),
        ),
    ];
    for (result, limit) in limits {
        let mut group: Vec<&ChildJob> =
            jobs.iter().filter(|j| j.finished == Some(result)).collect();
        let keep = usize::try_from(limit.max(0)).unwrap_or(0);
        let excess = group.len().saturating_sub(keep);
        if excess == 0 {
            continue;
        }
        group.sort_by(|a, b| by_start_time(a, b));
        for job in group.into_iter().take(excess) {
            remove_active(&mut d.status, &job.name);
            d.events.push(Event::normal(
                "SuccessfulDelete",
                format!("Deleted job {}", job.name),
            ));
            d.delete.push(job.name.clone());
        }
    }
}

/// Upstream `byJobStartTime`: by start time, Jobs without one last, equal times by name.
fn by_start_time(a: &ChildJob, b: &ChildJob) -> Ordering {
    match (a.start_time, b.start_time) {
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (x, y) if x == y => a.name.cmp(&b.name),
        (x, y) => x.cmp(&y),
    }
}

/// Sync step 1 (child Jobs against `active`) and step 2 (active entries gone missing).
fn track_children(jobs: &[ChildJob], d: &mut CronJobDecision) {
    for job in jobs {
        let in_active = is_active(&d.status, &job.name);
        match (in_active, job.finished) {
            (false, None) => d.events.push(Event::warning(
                "UnexpectedJob",
                format!(
                    "Saw a job that the controller did not create or forgot: {}",
                    job.name
                ),
            )),
            (true, Some(result)) => {
                remove_active(&mut d.status, &job.name);
                d.events.push(Event::normal(
                    "SawCompletedJob",
                    format!(
                        "Saw completed job: {}, status: {}",
                        job.name,
                        result.as_str()
                    ),
                ));
            }
            // The else-chain of upstream: a Job that leaves `active` in this step updates
            // lastSuccessfulTime in the next one (spec §9.7).
            (_, Some(ChildJobResult::Complete)) => {
                let last = &mut d.status.last_successful_time;
                match (*last, job.completion_time) {
                    (None, t) => *last = t,
                    (Some(cur), Some(t)) if t > cur => *last = Some(t),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let missing: Vec<String> = d
        .status
        .active
        .iter()
        .map(|r| r.name.clone().unwrap_or_default())
        .filter(|name| !jobs.iter().any(|j| &j.name == name))
        .collect();
    for name in missing {
        remove_active(&mut d.status, &name);
        d.events.push(Event::normal(
            "MissingJob",
            format!("Active job went missing: {name}"),
        ));
    }
}

/// The `active` entry of a Job created by this CronJob.
fn job_reference(cron_job: &CronJob, name: &str) -> ObjectReference {
    ObjectReference {
        api_version: Some(API_VERSION.to_owned()),
        kind: Some("Job".to_owned()),
        name: Some(name.to_owned()),
        namespace: cron_job.metadata.namespace.clone(),
        ..ObjectReference::default()
    }
}

/// Spec §4.7: the Job for `scheduled`.
fn job_from_template(cron_job: &CronJob, name: &str, scheduled: Timestamp, tz: Tz) -> Job {
    let template = &cron_job.spec.job_template;
    let mut annotations = template.metadata.annotations.clone();
    annotations.insert(
        SCHEDULED_TIMESTAMP_ANNOTATION.to_owned(),
        scheduled
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, true),
    );
    Job {
        api_version: API_VERSION.to_owned(),
        kind: "Job".to_owned(),
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: cron_job.metadata.namespace.clone(),
            labels: template.metadata.labels.clone(),
            annotations,
            owner_references: vec![OwnerReference {
                api_version: API_VERSION.to_owned(),
                kind: "CronJob".to_owned(),
                name: cron_job.name().to_owned(),
                uid: cron_job.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
                ..OwnerReference::default()
            }],
            ..ObjectMeta::default()
        },
        spec: template.spec.clone(),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn child(name: &str, start: Option<i64>) -> ChildJob {
        ChildJob {
            name: name.to_owned(),
            start_time: start.and_then(|s| DateTime::from_timestamp(s, 0)),
            ..ChildJob::default()
        }
    }

    #[test]
    fn start_time_order_puts_missing_start_last_and_ties_by_name() {
        let mut v = [
            child("d", None),
            child("c", Some(5)),
            child("b", Some(5)),
            child("a", Some(9)),
        ];
        v.sort_by(by_start_time);
        let names: Vec<_> = v.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "a", "d"]);
    }
}
