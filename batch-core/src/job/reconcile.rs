//! One reconcile step of the Job machine (spec §2).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use chrono::Duration;

use super::{
    BACKOFF_BASE, BACKOFF_CAP, BackoffRecord, COMPLETION_INDEX_ANNOTATION, COMPLETION_INDEX_ENV,
    Event, INDEX_FAILURE_COUNT_ANNOTATION, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION, IndexSet,
    JOB_CONTROLLER_NAME, JobDecision, JobMemory, MAX_POD_CREATE_DELETE_BATCH, MAX_UNCOUNTED_PODS,
    ObservedPod, PodCreate, PodPhase,
};
use crate::defaults::{
    CONTROLLER_UID_LABEL, JOB_NAME_LABEL, LEGACY_CONTROLLER_UID_LABEL, LEGACY_JOB_NAME_LABEL,
};
use crate::model::{
    CompletionMode, ConditionStatus, Job, JobCondition, JobConditionType, JobStatus,
    PodFailurePolicyAction, PodFailurePolicyOnExitCodesOperator, PodReplacementPolicy,
    RestartPolicy, Timestamp,
};

/// Runs one step of the Job controller.
///
/// `job` is the stored Job (defaults applied) with its current status; `pods` every pod that
/// exists for it; `memory` what the previous step returned (or the default for a new Job);
/// `now` the current time. See the [module documentation](super) for how to apply the
/// decision.
pub fn reconcile(
    job: &Job,
    pods: &[ObservedPod],
    memory: &JobMemory,
    now: Timestamp,
) -> JobDecision {
    let mut decision = JobDecision {
        create: Vec::new(),
        delete: Vec::new(),
        release: Vec::new(),
        status: job.status.clone(),
        memory: memory.clone(),
        events: Vec::new(),
        requeue_at: None,
        delete_job_at: None,
        skipped: false,
    };
    let spec = &job.spec;

    // §2.1 entry conditions.
    if spec
        .managed_by
        .as_deref()
        .is_some_and(|m| m != JOB_CONTROLLER_NAME)
    {
        decision.skipped = true;
        return decision;
    }
    if job.status.is_finished() {
        // Drop the backoff record; pods still holding an uncounted outcome are let go.
        decision.memory.backoff = BackoffRecord::default();
        decision.release = pods
            .iter()
            .filter(|p| !p.counted && p.phase.is_terminal())
            .map(|p| p.name.clone())
            .collect();
        decision.delete_job_at = ttl_expiry(job, &job.status);
        decision.requeue_at = decision.delete_job_at.filter(|t| *t > now);
        decision.skipped = true;
        return decision;
    }
    if let Some(CompletionMode::Other(_)) = &spec.completion_mode {
        decision.events.push(Event::warning(
            "UnknownCompletionMode",
            "Skipped Job sync because completion mode is unknown",
        ));
        decision.skipped = true;
        return decision;
    }

    let mut step = Step::new(job, pods, memory, now);
    step.run(&mut decision);
    decision
}

/// What a pod-failure-policy rule decided for one failed pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyOutcome {
    /// No rule matched, or a `Count` rule: count as usual.
    Count,
    /// An `Ignore` rule matched.
    Ignore,
    /// A `FailIndex` rule matched.
    FailIndex,
    /// A `FailJob` rule (0-based rule index) matched, with its message.
    FailJob,
}

/// A terminal condition being worked towards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Finish {
    success: bool,
    reason: String,
    message: String,
}

struct Step<'a> {
    job: &'a Job,
    pods: &'a [ObservedPod],
    memory: &'a JobMemory,
    now: Timestamp,
    indexed: bool,
    completions: Option<i32>,
    parallelism: i32,
    suspended: bool,
    replace_only_failed: bool,
    per_index: Option<i32>,
}

impl<'a> Step<'a> {
    fn new(job: &'a Job, pods: &'a [ObservedPod], memory: &'a JobMemory, now: Timestamp) -> Self {
        let spec = &job.spec;
        Step {
            job,
            pods,
            memory,
            now,
            indexed: spec.completion_mode == Some(CompletionMode::Indexed),
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            suspended: spec.suspend == Some(true),
            replace_only_failed: spec.pod_failure_policy.is_some()
                || spec.pod_replacement_policy == Some(PodReplacementPolicy::Failed),
            per_index: spec
                .backoff_limit_per_index
                .filter(|_| spec.completion_mode == Some(CompletionMode::Indexed)),
        }
    }

    fn name(&self) -> &str {
        self.job.name()
    }

    /// The pod's index if it is valid for this Job (`0 <= ix < completions`).
    fn valid_index(&self, pod: &ObservedPod) -> Option<i32> {
        let ix = pod.parsed_index()?;
        (ix < self.completions.unwrap_or(0)).then_some(ix)
    }

    /// Spec §2.2 `isPodFailed`.
    fn is_pod_failed(&self, pod: &ObservedPod) -> bool {
        if pod.phase == PodPhase::Failed {
            return true;
        }
        if self.replace_only_failed {
            return false;
        }
        pod.deleting && pod.phase != PodPhase::Succeeded
    }

    /// Spec §2.6: the first matching rule for a failed pod, and its message for `FailJob`.
    fn policy(&self, pod: &ObservedPod) -> (PolicyOutcome, Option<String>) {
        let Some(policy) = &self.job.spec.pod_failure_policy else {
            return (PolicyOutcome::Count, None);
        };
        let namespace = self.job.metadata.namespace.as_deref().unwrap_or("default");
        for (i, rule) in policy.rules.iter().enumerate() {
            let outcome = match &rule.action {
                PodFailurePolicyAction::FailJob => PolicyOutcome::FailJob,
                PodFailurePolicyAction::Ignore => PolicyOutcome::Ignore,
                PodFailurePolicyAction::Count => PolicyOutcome::Count,
                // Modern mode has per-index support on, so FailIndex always applies; without
                // backoffLimitPerIndex (which validation forbids) it just counts.
                PodFailurePolicyAction::FailIndex => PolicyOutcome::FailIndex,
                // Unknown actions are skipped.
                _ => continue,
            };
            if let Some(req) = &rule.on_exit_codes {
                let matched = pod
                    .containers
                    .iter()
                    .filter(|c| !c.init)
                    .chain(pod.containers.iter().filter(|c| c.init))
                    .filter(|c| {
                        req.container_name
                            .as_deref()
                            .is_none_or(|want| want == c.name)
                    })
                    .find_map(|c| {
                        let code = c.exit_code.filter(|code| *code != 0)?;
                        let listed = req.values.contains(&code);
                        let hit = match req.operator {
                            PodFailurePolicyOnExitCodesOperator::In => listed,
                            PodFailurePolicyOnExitCodesOperator::NotIn => !listed,
                            _ => false,
                        };
                        hit.then(|| (c.name.clone(), code))
                    });
                if let Some((container, code)) = matched {
                    let message = format!(
                        "Container {container} for pod {namespace}/{} failed with exit code {code} matching FailJob rule at index {i}",
                        pod.name
                    );
                    return (outcome, Some(message));
                }
            } else if !rule.on_pod_conditions.is_empty() {
                // The pod's conditions in order, each against every pattern (upstream order).
                let matched = pod.conditions.iter().find_map(|c| {
                    rule.on_pod_conditions
                        .iter()
                        .any(|pattern| c.type_ == pattern.type_ && c.status == pattern.status)
                        .then(|| c.type_.clone())
                });
                if let Some(condition) = matched {
                    let message = format!(
                        "Pod {namespace}/{} has condition {condition} matching FailJob rule at index {i}",
                        pod.name
                    );
                    return (outcome, Some(message));
                }
            }
        }
        (PolicyOutcome::Count, None)
    }

    fn run(&mut self, d: &mut JobDecision) {
        let now = self.now;
        let pods = self.pods;
        let status_in = &self.job.status;
        let mut status = status_in.clone();

        // Classification (§2.2).
        let active: Vec<&ObservedPod> = pods
            .iter()
            .filter(|p| !p.phase.is_terminal() && !p.deleting)
            .collect();
        let mut terminating = pods
            .iter()
            .filter(|p| p.deleting && !p.phase.is_terminal())
            .count();
        let uncounted = status.uncounted_terminated_pods.clone().unwrap_or_default();
        let uncounted_succeeded: BTreeSet<&str> =
            uncounted.succeeded.iter().map(String::as_str).collect();
        let uncounted_failed: BTreeSet<&str> =
            uncounted.failed.iter().map(String::as_str).collect();

        // Start time (§2.3); modern: cleared by the suspension (§1.3, §2.7) — in the step
        // that suspends pods below, so that a Job finishing while suspended keeps it.
        let was_suspended = status_in.has_true_condition(&JobConditionType::Suspended);
        let being_deleted = self.job.metadata.deletion_timestamp.is_some();
        if !self.suspended && (status.start_time.is_none() || was_suspended) {
            status.start_time = Some(now);
        }

        // Failed pods and their policy outcome.
        let outcomes: BTreeMap<&str, (PolicyOutcome, Option<String>)> = pods
            .iter()
            .filter(|p| self.is_pod_failed(p))
            .map(|p| (p.name.as_str(), self.policy(p)))
            .collect();
        let outcome = |p: &ObservedPod| {
            outcomes
                .get(p.name.as_str())
                .map_or(PolicyOutcome::Count, |o| o.0)
        };

        // New finished pods: not yet counted, not already in uncounted, valid index.
        let is_new = |p: &&ObservedPod| {
            !p.counted
                && !uncounted_succeeded.contains(p.uid())
                && !uncounted_failed.contains(p.uid())
                && (!self.indexed || self.valid_index(p).is_some())
        };
        let new_succeeded: Vec<&ObservedPod> = pods
            .iter()
            .filter(is_new)
            .filter(|p| p.phase == PodPhase::Succeeded)
            .collect();
        let new_failed: Vec<&ObservedPod> = pods
            .iter()
            .filter(is_new)
            .filter(|p| p.phase != PodPhase::Succeeded && self.is_pod_failed(p))
            .collect();

        // Per-index bookkeeping (§2.5.4, §2.8).
        let completions = self.completions.unwrap_or(0);
        let mut succeeded_indexes = if self.indexed {
            IndexSet::parse_lenient(&status_in.completed_indexes, completions)
        } else {
            IndexSet::new()
        };
        let previously_failed_indexes = match (&status_in.failed_indexes, self.per_index) {
            (Some(s), Some(_)) => IndexSet::parse_lenient(s, completions),
            _ => IndexSet::new(),
        };
        let mut failed_indexes = previously_failed_indexes.clone();
        if self.indexed {
            for p in pods.iter().filter(|p| !p.counted) {
                if p.phase == PodPhase::Succeeded
                    && let Some(ix) = self.valid_index(p)
                {
                    succeeded_indexes.insert(ix);
                }
            }
        }
        if let Some(limit) = self.per_index {
            for p in pods
                .iter()
                .filter(|p| !p.counted && p.phase != PodPhase::Succeeded && self.is_pod_failed(p))
            {
                let Some(ix) = self.valid_index(p) else {
                    continue;
                };
                let o = outcome(p);
                let counted_failures = annotation_count(p, INDEX_FAILURE_COUNT_ANNOTATION);
                if (o == PolicyOutcome::FailIndex
                    || (o != PolicyOutcome::Ignore && counted_failures >= i64::from(limit)))
                    && !succeeded_indexes.contains(ix)
                {
                    failed_indexes.insert(ix);
                }
            }
        }

        // Pods of a pending index whose release waits for a replacement (§2.5.4).
        let delayed = self.delayed_release_pods(&active, &succeeded_indexes, &failed_indexes);

        // Backoff record (§2.5.2), from the new finished pods. A failed pod whose release
        // waits for its replacement (per-index) is new again at every step until then; it
        // enters the record once, in the step that releases it, so that the same inputs
        // always give the same memory.
        let failed_for_backoff: Vec<&ObservedPod> = new_failed
            .iter()
            .copied()
            .filter(|p| !delayed.contains(p.name.as_str()))
            .collect();
        d.memory.backoff = update_backoff(self.memory.backoff, &new_succeeded, &failed_for_backoff);

        // Counts (§2.2).
        let new_failed_counted = new_failed
            .iter()
            .filter(|p| outcome(p) != PolicyOutcome::Ignore)
            .count();

        // Terminal criteria (§2.4).
        let mut finished: Option<Finish> = None;
        let has_true = |t: &JobConditionType| status_in.has_true_condition(t);
        if has_true(&JobConditionType::SuccessCriteriaMet) {
            let c = status_in.condition(&JobConditionType::SuccessCriteriaMet);
            finished = Some(Finish {
                success: true,
                reason: c.map(|c| c.reason.clone()).unwrap_or_default(),
                message: c.map(|c| c.message.clone()).unwrap_or_default(),
            });
        } else if has_true(&JobConditionType::FailureTarget) {
            let c = status_in.condition(&JobConditionType::FailureTarget);
            finished = Some(Finish {
                success: false,
                reason: c.map(|c| c.reason.clone()).unwrap_or_default(),
                message: c.map(|c| c.message.clone()).unwrap_or_default(),
            });
        } else if let Some(message) = pods.iter().find_map(|p| {
            outcomes
                .get(p.name.as_str())
                .filter(|o| o.0 == PolicyOutcome::FailJob)
                .and_then(|o| o.1.clone())
        }) {
            finished = Some(Finish {
                success: false,
                reason: "PodFailurePolicy".to_owned(),
                message,
            });
        }
        let failed_total = i64::from(status_in.failed)
            + i64::try_from(new_failed_counted).unwrap_or(i64::MAX)
            + i64::try_from(uncounted.failed.len()).unwrap_or(i64::MAX);
        if finished.is_none() {
            let backoff_limit = i64::from(self.job.spec.backoff_limit.unwrap_or(6));
            if failed_total > backoff_limit || self.past_backoff_limit_on_failure() {
                finished = Some(Finish {
                    success: false,
                    reason: "BackoffLimitExceeded".to_owned(),
                    message: "Job has reached the specified backoff limit".to_owned(),
                });
            } else if self.past_active_deadline(status.start_time) {
                finished = Some(Finish {
                    success: false,
                    reason: "DeadlineExceeded".to_owned(),
                    message: "Job was active longer than specified deadline".to_owned(),
                });
            } else if let (Some(secs), Some(start), false) = (
                self.job.spec.active_deadline_seconds,
                status.start_time,
                self.suspended,
            ) {
                merge_requeue(d, start.checked_add_signed(Duration::seconds(secs)));
            }
        }
        if self.indexed && finished.is_none() {
            if let Some(_limit) = self.per_index {
                let max_failed = self.job.spec.max_failed_indexes;
                if max_failed.is_some_and(|m| failed_indexes.len() > i64::from(m)) {
                    finished = Some(Finish {
                        success: false,
                        reason: "MaxFailedIndexesExceeded".to_owned(),
                        message: "Job has exceeded the specified maximal number of failed indexes"
                            .to_owned(),
                    });
                } else if !failed_indexes.is_empty()
                    && failed_indexes.len() + succeeded_indexes.len() >= i64::from(completions)
                {
                    finished = Some(Finish {
                        success: false,
                        reason: "FailedIndexes".to_owned(),
                        message: "Job has failed indexes".to_owned(),
                    });
                }
            }
            if finished.is_none()
                && let Some(rule) = self.success_policy_met(&succeeded_indexes)
            {
                finished = Some(Finish {
                    success: true,
                    reason: "SuccessPolicy".to_owned(),
                    message: format!("Matched rules at index {rule}"),
                });
            }
        }

        // Counted succeeded pods.
        let mut succeeded_total = if self.indexed {
            succeeded_indexes.len()
        } else {
            i64::from(status_in.succeeded)
                + i64::try_from(new_succeeded.len()).unwrap_or(i64::MAX)
                + i64::try_from(uncounted.succeeded.len()).unwrap_or(i64::MAX)
        };

        // Deletions and creations (§2.10 step 1, §2.12).
        let mut active_count = i64::try_from(active.len()).unwrap_or(i64::MAX);
        let mut removed_by_controller: BTreeSet<&str> = BTreeSet::new();
        let mut deleted_on_finish: BTreeSet<&str> = BTreeSet::new();
        let mut manage_called = false;
        match &finished {
            Some(f) => {
                // Failure: running pods are deleted and counted as failed. Success policy:
                // deleted and not counted.
                let mut victims: Vec<&ObservedPod> = active.clone();
                victims.sort_by(|a, b| deletion_order(a, b));
                // Every active pod (spec §2.10 step 1; the 500 cap is manageJob's).
                for p in &victims {
                    d.delete.push(p.name.clone());
                    d.events.push(deleted_event(p));
                    deleted_on_finish.insert(p.name.as_str());
                    if f.success {
                        removed_by_controller.insert(p.name.as_str());
                    }
                }
                let n = victims.len();
                active_count -= i64::try_from(n).unwrap_or(0);
                terminating += n;
            }
            // §2.12/§2.13: a Job being deleted creates, deletes and suspends nothing.
            None if being_deleted => {}
            None if self.suspended => {
                // §2.12 step 1: every active pod goes, in removal order; released first,
                // never counted.
                manage_called = true;
                let victims = self.pods_for_removal(&active, active.len());
                for p in victims.iter().take(MAX_POD_CREATE_DELETE_BATCH) {
                    d.delete.push(p.name.clone());
                    d.events.push(deleted_event(p));
                    removed_by_controller.insert(p.name.as_str());
                }
                let n = victims.len().min(MAX_POD_CREATE_DELETE_BATCH);
                active_count -= i64::try_from(n).unwrap_or(0);
                terminating += n;
            }
            None => {
                manage_called = true;
                self.manage(
                    d,
                    &active,
                    terminating,
                    succeeded_total,
                    &succeeded_indexes,
                    &failed_indexes,
                    &mut removed_by_controller,
                );
                active_count -= i64::try_from(d.delete.len()).unwrap_or(0);
                terminating += d.delete.len();
                active_count += i64::try_from(d.create.len()).unwrap_or(0);
            }
        }

        // Completion rule (§2.10), when nothing else decided.
        if finished.is_none() {
            let complete = match self.completions {
                None => succeeded_total > 0 && active_count == 0,
                Some(c) => succeeded_total >= i64::from(c) && active_count == 0,
            };
            if complete {
                finished = Some(Finish {
                    success: true,
                    reason: "CompletionsReached".to_owned(),
                    message: "Reached expected number of succeeded pods".to_owned(),
                });
            } else if manage_called {
                // §2.13: the Suspended condition moves only in a step that managed pods and
                // did not complete the Job; so does the clearing of startTime (a finished Job
                // always has one).
                if self.suspended {
                    status.start_time = None;
                    if ensure_condition(
                        &mut status.conditions,
                        JobConditionType::Suspended,
                        ConditionStatus::True,
                        "JobSuspended",
                        "Job suspended",
                        now,
                    ) {
                        d.events.push(Event::normal("Suspended", "Job suspended"));
                    }
                } else if ensure_condition(
                    &mut status.conditions,
                    JobConditionType::Suspended,
                    ConditionStatus::False,
                    "JobResumed",
                    "Job resumed",
                    now,
                ) {
                    d.events.push(Event::normal("Resumed", "Job resumed"));
                }
            }
        }

        // Status accounting (§2.9): count terminal pods exactly once, then release them.
        let failing = finished.as_ref().is_some_and(|f| !f.success);
        // The cap counts the entries already uncounted too (spec §2.9).
        let mut new_uncounted = uncounted.succeeded.len() + uncounted.failed.len();
        let mut hit_cap = false;
        let mut succeeded_delta = 0i64;
        let mut failed_delta = 0i64;
        for p in pods.iter().filter(|p| !p.counted) {
            if removed_by_controller.contains(p.name.as_str()) {
                // Deleted by the controller itself (suspension, surplus, success policy):
                // the outcome is released without being counted.
                d.release.push(p.name.clone());
                continue;
            }
            let already =
                uncounted_succeeded.contains(p.uid()) || uncounted_failed.contains(p.uid());
            let considered_failed = self.is_pod_failed(p);
            let can_release = finished.is_some()
                || being_deleted
                || p.phase == PodPhase::Succeeded
                || (considered_failed && !delayed.contains(p.name.as_str()));
            if !can_release {
                continue;
            }
            if !already && new_uncounted >= MAX_UNCOUNTED_PODS {
                hit_cap = true;
                break;
            }
            if p.phase == PodPhase::Succeeded {
                if !already {
                    if self.indexed {
                        // Already part of succeeded_indexes; an invalid index is not counted.
                    } else {
                        succeeded_delta += 1;
                    }
                    new_uncounted += 1;
                }
            } else if considered_failed || failing || deleted_on_finish.contains(p.name.as_str()) {
                if !already {
                    let counts = outcome(p) != PolicyOutcome::Ignore
                        && (!self.indexed || self.valid_index(p).is_some());
                    if counts && (considered_failed || failing) {
                        failed_delta += 1;
                    }
                    new_uncounted += 1;
                }
            } else if finished.as_ref().is_some_and(|f| f.success) {
                // A non-failed pod when success is pending: released, not counted.
            }
            d.release.push(p.name.clone());
        }
        // Pods already listed as uncounted (from an earlier partial write) are counted now.
        let carried_succeeded = i64::try_from(uncounted.succeeded.len()).unwrap_or(0);
        let carried_failed = i64::try_from(uncounted.failed.len()).unwrap_or(0);
        if !self.indexed {
            succeeded_total = i64::from(status_in.succeeded) + succeeded_delta + carried_succeeded;
        }
        let failed_now = i64::from(status_in.failed) + failed_delta + carried_failed;
        status.uncounted_terminated_pods = None;
        status.succeeded = clamp_i32(succeeded_total);
        status.failed = clamp_i32(failed_now.max(i64::from(status_in.failed)));
        if self.indexed {
            status.completed_indexes = succeeded_indexes.to_string();
        }
        if self.per_index.is_some() {
            status.failed_indexes = Some(failed_indexes.to_string());
        }

        // Counts of pods.
        status.active = clamp_i32(active_count.max(0));
        let ready = active
            .iter()
            .filter(|p| p.ready && !d.delete.contains(&p.name))
            .count();
        status.ready = Some(clamp_i32(i64::try_from(ready).unwrap_or(0)));
        status.terminating = Some(clamp_i32(i64::try_from(terminating).unwrap_or(0)));

        // Terminal conditions (§2.10): the target first, the final condition once every pod
        // is gone and counted.
        if let Some(f) = &finished {
            let target = if f.success {
                JobConditionType::SuccessCriteriaMet
            } else {
                JobConditionType::FailureTarget
            };
            ensure_condition(
                &mut status.conditions,
                target,
                ConditionStatus::True,
                &f.reason,
                &f.message,
                now,
            );
            // Not declared finished in a step that hit the counting cap (spec §2.9).
            if terminating == 0 && status.active == 0 && !hit_cap {
                let final_type = if f.success {
                    JobConditionType::Complete
                } else {
                    JobConditionType::Failed
                };
                ensure_condition(
                    &mut status.conditions,
                    final_type,
                    ConditionStatus::True,
                    &f.reason,
                    &f.message,
                    now,
                );
                if f.success {
                    status.completion_time = Some(now);
                    // Upstream records the warning first, then `Completed`.
                    if let Some(c) = self.completions
                        && !self.indexed
                        && succeeded_total > i64::from(c)
                    {
                        d.events.push(Event::warning(
                            "TooManySucceededPods",
                            "Too many succeeded pods running after completion count reached",
                        ));
                    }
                    d.events.push(Event::normal("Completed", "Job completed"));
                } else {
                    d.events.push(Event::warning(&f.reason, f.message.clone()));
                }
                d.memory.backoff = BackoffRecord::default();
                d.delete_job_at = ttl_expiry(self.job, &status);
                merge_requeue(d, d.delete_job_at.filter(|t| *t > now));
            }
        }
        d.status = status;
    }

    /// Spec §2.5.3: OnFailure restarts counted against the backoff limit.
    /// Every pod in phase `Pending` or `Running` counts, terminating ones included.
    fn past_backoff_limit_on_failure(&self) -> bool {
        if self.job.spec.template.spec.restart_policy != RestartPolicy::OnFailure {
            return false;
        }
        let restarts: i64 = self
            .pods
            .iter()
            .filter(|p| matches!(p.phase, PodPhase::Pending | PodPhase::Running))
            .map(|p| p.restarts())
            .sum();
        let limit = i64::from(self.job.spec.backoff_limit.unwrap_or(6));
        if limit == 0 {
            restarts > 0
        } else {
            restarts >= limit
        }
    }

    /// Spec §2.7.
    fn past_active_deadline(&self, start: Option<Timestamp>) -> bool {
        let (Some(secs), Some(start)) = (self.job.spec.active_deadline_seconds, start) else {
            return false;
        };
        !self.suspended && (self.now - start) >= Duration::seconds(secs)
    }

    /// Spec §2.11: the index of the first success-policy rule that is met.
    fn success_policy_met(&self, succeeded: &IndexSet) -> Option<usize> {
        let policy = self.job.spec.success_policy.as_ref()?;
        if succeeded.is_empty() {
            return None;
        }
        let completions = self.completions.unwrap_or(0);
        policy
            .rules
            .iter()
            .position(|rule| match &rule.succeeded_indexes {
                Some(text) => {
                    let wanted = IndexSet::parse_lenient(text, completions);
                    if wanted.is_empty() {
                        return false;
                    }
                    let k = wanted.count_in(succeeded);
                    k == wanted.len() || rule.succeeded_count.is_some_and(|c| k >= i64::from(c))
                }
                None => rule
                    .succeeded_count
                    .is_some_and(|c| succeeded.len() >= i64::from(c)),
            })
    }

    /// Spec §2.5.4: for each index still to run, the last failed pod whose release waits
    /// until a replacement exists.
    fn delayed_release_pods(
        &self,
        active: &[&ObservedPod],
        succeeded: &IndexSet,
        failed: &IndexSet,
    ) -> BTreeSet<&'a str> {
        if self.per_index.is_none() {
            return BTreeSet::new();
        }
        let held: BTreeSet<i32> = active.iter().filter_map(|p| self.valid_index(p)).collect();
        let pending =
            |ix: i32| !(succeeded.contains(ix) || failed.contains(ix) || held.contains(&ix));
        self.last_failed_by_index(|p| !p.counted)
            .into_iter()
            .filter(|(ix, _)| pending(*ix))
            .map(|(_, p)| p.name.as_str())
            .collect()
    }

    /// Spec §2.5.4: for each index, the failed pod (among those `candidate` accepts) with the
    /// highest failure + ignored count, the later finish breaking ties in its favour; scanned
    /// in pod-list order, a later pod replaces the one kept only if neither is lower.
    fn last_failed_by_index(
        &self,
        candidate: impl Fn(&ObservedPod) -> bool,
    ) -> BTreeMap<i32, &'a ObservedPod> {
        let mut kept: BTreeMap<i32, &'a ObservedPod> = BTreeMap::new();
        for p in self
            .pods
            .iter()
            .filter(|p| p.phase != PodPhase::Succeeded && self.is_pod_failed(p) && candidate(p))
        {
            let Some(ix) = self.valid_index(p) else {
                continue;
            };
            let replaces = kept.get(&ix).is_none_or(|current| {
                attempt_count(p) >= attempt_count(current) && finish_time(p) >= finish_time(current)
            });
            if replaces {
                kept.insert(ix, p);
            }
        }
        kept
    }

    /// Spec §2.12 step 3: the active pods to delete when at least `rm_at_least` must go.
    ///
    /// Indexed: first the pods with no index, then, index by index, all but the most
    /// advanced pod of each index held more than once, then the pods with an index beyond
    /// completions (upstream's order); then, if still too few, more in deletion order.
    /// NonIndexed: the first `rm_at_least` in deletion order.
    fn pods_for_removal(
        &self,
        active: &[&'a ObservedPod],
        rm_at_least: usize,
    ) -> Vec<&'a ObservedPod> {
        let mut sorted: Vec<&'a ObservedPod> = active.to_vec();
        sorted.sort_by(|a, b| deletion_order(a, b));
        let mut to_delete: Vec<&'a ObservedPod> = Vec::new();
        let mut left: Vec<&'a ObservedPod> = Vec::new();
        if self.indexed {
            let completions = self.completions.unwrap_or(0);
            let mut no_index = Vec::new();
            let mut beyond: Vec<&'a ObservedPod> = Vec::new();
            let mut by_index: BTreeMap<i32, Vec<&'a ObservedPod>> = BTreeMap::new();
            for p in sorted {
                match p.parsed_index() {
                    None => no_index.push(p),
                    Some(ix) if ix >= completions => beyond.push(p),
                    Some(ix) => by_index.entry(ix).or_default().push(p),
                }
            }
            beyond.sort_by_key(|p| p.parsed_index());
            to_delete.extend(no_index);
            for pods in by_index.into_values() {
                // In deletion order: the last one is the most advanced and stays.
                if let Some((keep, rest)) = pods.split_last() {
                    to_delete.extend(rest.iter().copied());
                    left.push(keep);
                }
            }
            to_delete.extend(beyond);
            left.sort_by(|a, b| deletion_order(a, b));
        } else {
            left = sorted;
        }
        if to_delete.len() < rm_at_least {
            let more = rm_at_least - to_delete.len();
            to_delete.extend(left.iter().take(more));
        }
        to_delete
    }

    /// Spec §2.12: deletions of surplus pods, or creations.
    #[allow(clippy::too_many_arguments)]
    fn manage(
        &self,
        d: &mut JobDecision,
        active: &[&'a ObservedPod],
        terminating: usize,
        succeeded: i64,
        succeeded_indexes: &IndexSet,
        failed_indexes: &IndexSet,
        removed: &mut BTreeSet<&'a str>,
    ) {
        let active_n = i64::try_from(active.len()).unwrap_or(i64::MAX);
        let parallelism = i64::from(self.parallelism);
        let want_active = match self.completions {
            None => {
                if succeeded > 0 {
                    active_n
                } else {
                    parallelism
                }
            }
            Some(c) => (i64::from(c) - succeeded).clamp(0, parallelism),
        };

        // Deletions.
        let rm_at_least = usize::try_from((active_n - want_active).max(0)).unwrap_or(0);
        let mut to_delete = self.pods_for_removal(active, rm_at_least);
        to_delete.truncate(MAX_POD_CREATE_DELETE_BATCH);
        if !to_delete.is_empty() {
            for p in to_delete {
                d.delete.push(p.name.clone());
                removed.insert(p.name.as_str());
                d.events.push(deleted_event(p));
            }
            return;
        }

        // Creations.
        let budget = if self.replace_only_failed {
            i64::try_from(terminating).unwrap_or(i64::MAX)
        } else {
            0
        };
        let diff = want_active - budget - active_n;
        if diff <= 0 {
            return;
        }
        if self.per_index.is_none() {
            let remaining = backoff_remaining(d.memory.backoff, self.now);
            if remaining > Duration::zero() {
                merge_requeue(
                    d,
                    self.now
                        .checked_add_signed(remaining.max(Duration::seconds(1))),
                );
                return;
            }
        }
        let diff = usize::try_from(diff)
            .unwrap_or(usize::MAX)
            .min(MAX_POD_CREATE_DELETE_BATCH);
        let mut counter = d.memory.pods_created;
        if self.indexed {
            for (ix, counts) in
                self.indexes_to_create(diff, active, succeeded_indexes, failed_indexes, d)
            {
                let pod = self.pod_create(Some(ix), counts, counter);
                counter += 1;
                d.events.push(Event::normal(
                    "SuccessfulCreate",
                    format!("Created pod: {}", pod.name),
                ));
                d.create.push(pod);
            }
        } else {
            for _ in 0..diff {
                let pod = self.pod_create(None, (0, 0), counter);
                counter += 1;
                d.events.push(Event::normal(
                    "SuccessfulCreate",
                    format!("Created pod: {}", pod.name),
                ));
                d.create.push(pod);
            }
        }
        d.memory.pods_created = counter;
    }

    /// The smallest free indexes to create, with the per-index failure counts their pods
    /// carry, after per-index backoff.
    fn indexes_to_create(
        &self,
        diff: usize,
        active: &[&ObservedPod],
        succeeded: &IndexSet,
        failed: &IndexSet,
        d: &mut JobDecision,
    ) -> Vec<(i32, (i64, i64))> {
        let completions = self.completions.unwrap_or(0);
        let mut held: IndexSet = active.iter().filter_map(|p| self.valid_index(p)).collect();
        if self.replace_only_failed {
            for p in self
                .pods
                .iter()
                .filter(|p| p.deleting && !p.phase.is_terminal())
            {
                if let Some(ix) = self.valid_index(p) {
                    held.insert(ix);
                }
            }
        }
        let mut taken = succeeded.clone();
        taken.extend(failed);
        taken.extend(&held);

        // The last failed pod of each index (for counts and per-index backoff).
        let last_failed = if self.per_index.is_some() {
            self.last_failed_by_index(|_| true)
        } else {
            BTreeMap::new()
        };

        // First the `diff` smallest pending indexes, then per-index backoff filters them
        // (upstream: an index in backoff is not replaced by a later one).
        let mut candidates: Vec<i32> = Vec::new();
        let mut next = 0i32;
        'outer: for &(a, b) in taken
            .ranges()
            .iter()
            .chain(std::iter::once(&(completions, completions)))
        {
            while next < a && next < completions {
                candidates.push(next);
                next += 1;
                if candidates.len() >= diff {
                    break 'outer;
                }
            }
            next = next.max(b.saturating_add(1));
            if next >= completions {
                break;
            }
        }
        let mut chosen = Vec::new();
        let mut soonest: Option<Timestamp> = None;
        for ix in candidates {
            let counts = match last_failed.get(&ix) {
                None => (0, 0),
                Some(p) => {
                    let failures = annotation_count(p, INDEX_FAILURE_COUNT_ANNOTATION);
                    let ignored = annotation_count(p, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION);
                    let ignored_now = self.policy(p).0 == PolicyOutcome::Ignore;
                    // Per-index backoff: n = failures + ignored + 1 since that pod's end.
                    let n = failures.saturating_add(ignored).saturating_add(1);
                    let record = BackoffRecord {
                        failures_after_last_success: clamp_i32(n),
                        last_failure_time: finish_time(p),
                    };
                    let remaining = backoff_remaining(record, self.now);
                    if remaining > Duration::zero() {
                        let at = self
                            .now
                            .checked_add_signed(remaining.max(Duration::seconds(1)));
                        soonest = match (soonest, at) {
                            (Some(s), Some(a)) => Some(s.min(a)),
                            (s, a) => s.or(a),
                        };
                        continue;
                    }
                    if ignored_now {
                        (failures, ignored + 1)
                    } else {
                        (failures + 1, ignored)
                    }
                }
            };
            chosen.push((ix, counts));
        }
        if chosen.is_empty() {
            merge_requeue(d, soonest);
        }
        chosen
    }

    /// The pod to create for `index`, with deterministic name.
    fn pod_create(&self, index: Option<i32>, counts: (i64, i64), counter: u64) -> PodCreate {
        let job_name = self.name();
        let template = &self.job.spec.template;
        let mut labels = template.metadata.labels.clone();
        let mut annotations = template.metadata.annotations.clone();
        if let Some(uid) = self.job.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
            labels
                .entry(CONTROLLER_UID_LABEL.to_owned())
                .or_insert_with(|| uid.to_owned());
            labels
                .entry(LEGACY_CONTROLLER_UID_LABEL.to_owned())
                .or_insert_with(|| uid.to_owned());
        }
        labels
            .entry(JOB_NAME_LABEL.to_owned())
            .or_insert_with(|| job_name.to_owned());
        labels
            .entry(LEGACY_JOB_NAME_LABEL.to_owned())
            .or_insert_with(|| job_name.to_owned());
        let mut env = Vec::new();
        let mut hostname = None;
        let prefix = match index {
            Some(ix) => {
                labels.insert(COMPLETION_INDEX_ANNOTATION.to_owned(), ix.to_string());
                annotations.insert(COMPLETION_INDEX_ANNOTATION.to_owned(), ix.to_string());
                if self.per_index.is_some() {
                    annotations.insert(
                        INDEX_FAILURE_COUNT_ANNOTATION.to_owned(),
                        counts.0.to_string(),
                    );
                    if counts.1 > 0 {
                        annotations.insert(
                            INDEX_IGNORED_FAILURE_COUNT_ANNOTATION.to_owned(),
                            counts.1.to_string(),
                        );
                    }
                }
                env.push((COMPLETION_INDEX_ENV.to_owned(), ix.to_string()));
                hostname = Some(format!("{job_name}-{ix}"));
                indexed_prefix(job_name, ix)
            }
            None => truncate_prefix(&format!("{job_name}-"), 58),
        };
        let uid = self.job.metadata.uid.as_deref().unwrap_or(job_name);
        PodCreate {
            name: format!("{prefix}{}", name_suffix(uid, counter)),
            index,
            labels,
            annotations,
            env,
            hostname,
        }
    }
}

/// The `SuccessfulDelete` event every deletion by the controller records.
fn deleted_event(p: &ObservedPod) -> Event {
    Event::normal("SuccessfulDelete", format!("Deleted pod: {}", p.name))
}

/// `<job>-<index>-`, with the job name shortened so that the prefix is at most 58 characters.
fn indexed_prefix(job_name: &str, index: i32) -> String {
    let tail = format!("-{index}-");
    let room = 58usize.saturating_sub(tail.len());
    let head: String = job_name.chars().take(room).collect();
    format!("{head}{tail}")
}

fn truncate_prefix(prefix: &str, max: usize) -> String {
    prefix.chars().take(max).collect()
}

/// Five characters from Kubernetes' name alphabet, derived from the Job UID and a counter.
///
/// The 27^5 = 3^15 five-character suffixes are walked as `start + counter * STRIDE`
/// (mod 3^15), with `start` a hash of the UID and `STRIDE` prime to 3: the first 14,348,907
/// pods of a Job all get different names, and the names look scattered.
fn name_suffix(uid: &str, counter: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    const SPACE: u64 = 14_348_907; // 27^5
    const STRIDE: u64 = 5_882_353; // not a multiple of 3
    // FNV-1a over the UID: stable across platforms and releases.
    let mut start: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in uid.bytes() {
        start ^= u64::from(byte);
        start = start.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let step = (counter % SPACE) * STRIDE % SPACE;
    let mut value = (start % SPACE + step) % SPACE;
    let len = ALPHABET.len() as u64;
    (0..5)
        .map(|_| {
            let c = ALPHABET[usize::try_from(value % len).unwrap_or(0)];
            value /= len;
            char::from(c)
        })
        .collect()
}

/// Deletion order (spec §2.12 step 3): the pod to delete first sorts first.
fn deletion_order(a: &ObservedPod, b: &ObservedPod) -> Ordering {
    let scheduled = |p: &ObservedPod| p.scheduled.unwrap_or(p.phase != PodPhase::Pending);
    let phase_rank = |p: &ObservedPod| match p.phase {
        PodPhase::Pending => 0,
        PodPhase::Unknown => 1,
        PodPhase::Running => 2,
        _ => 3,
    };
    let max_restarts = |p: &ObservedPod| {
        p.containers
            .iter()
            .filter(|c| !c.init)
            .map(|c| c.restarts)
            .max()
            .unwrap_or(0)
    };
    scheduled(a)
        .cmp(&scheduled(b))
        .then(phase_rank(a).cmp(&phase_rank(b)))
        .then(a.ready.cmp(&b.ready))
        .then_with(|| {
            if a.ready && b.ready {
                // Zero ready time first, then more recently ready first.
                match (a.ready_since, b.ready_since) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => y.cmp(&x),
                }
            } else {
                Ordering::Equal
            }
        })
        .then(max_restarts(b).cmp(&max_restarts(a)))
        .then_with(|| match (a.created_at, b.created_at) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => y.cmp(&x),
        })
        .then_with(|| a.name.cmp(&b.name))
}

/// Spec §2.5.5: a pod's finish time.
fn finish_time(p: &ObservedPod) -> Option<Timestamp> {
    if let Some(t) = p.finished_at {
        return Some(t);
    }
    if !p.containers.is_empty() && p.containers.iter().all(|c| c.finished_at.is_some()) {
        return p.containers.iter().filter_map(|c| c.finished_at).max();
    }
    if let Some(t) = p
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready" && c.status == ConditionStatus::False)
        .and_then(|c| c.last_transition_time)
    {
        return Some(t);
    }
    p.deletion_time.or(p.created_at)
}

/// Spec §2.5.2: the backoff record after this step's newly finished pods.
fn update_backoff(
    record: BackoffRecord,
    succeeded: &[&ObservedPod],
    failed: &[&ObservedPod],
) -> BackoffRecord {
    if succeeded.is_empty() && failed.is_empty() {
        return record;
    }
    if succeeded.is_empty() {
        let n = i32::try_from(failed.len()).unwrap_or(i32::MAX);
        let latest = failed.iter().filter_map(|p| finish_time(p)).max();
        return BackoffRecord {
            failures_after_last_success: record.failures_after_last_success.saturating_add(n),
            last_failure_time: latest.or(record.last_failure_time),
        };
    }
    let last_success = succeeded.iter().filter_map(|p| finish_time(p)).max();
    let mut times: Vec<Timestamp> = failed.iter().filter_map(|p| finish_time(p)).collect();
    times.sort();
    let mut count = 0;
    let mut latest = None;
    for t in times.iter().rev() {
        if last_success.is_none_or(|s| *t > s) {
            count += 1;
            latest = latest.max(Some(*t));
        } else {
            break;
        }
    }
    BackoffRecord {
        failures_after_last_success: count,
        last_failure_time: latest,
    }
}

/// The delay still owed before creating pods: `min(10s * 2^(n-1), 10min) - (now - last)`.
fn backoff_remaining(record: BackoffRecord, now: Timestamp) -> Duration {
    let n = record.failures_after_last_success;
    let Some(last) = record.last_failure_time else {
        return Duration::zero();
    };
    if n <= 0 {
        return Duration::zero();
    }
    let exponent = u32::try_from(n - 1).unwrap_or(0).min(20);
    let delay = BACKOFF_BASE
        .checked_mul(1 << exponent)
        .unwrap_or(BACKOFF_CAP)
        .min(BACKOFF_CAP);
    let elapsed = now - last;
    (delay - elapsed).max(Duration::zero())
}

/// A per-index count annotation (missing, unparsable, negative or beyond int32 reads as 0).
fn annotation_count(p: &ObservedPod, key: &str) -> i64 {
    p.annotations
        .get(key)
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|v| *v >= 0)
        .map_or(0, i64::from)
}

fn attempt_count(p: &ObservedPod) -> i64 {
    annotation_count(p, INDEX_FAILURE_COUNT_ANNOTATION)
        + annotation_count(p, INDEX_IGNORED_FAILURE_COUNT_ANNOTATION)
}

/// Spec §6: when a finished Job may be deleted.
fn ttl_expiry(job: &Job, status: &JobStatus) -> Option<Timestamp> {
    crate::cronjob::ttl::expiry(job.spec.ttl_seconds_after_finished, status)
}

/// Conditions are added with "ensure" semantics (spec §2.10): an existing condition of the
/// type is updated in place when anything differs; a missing one is appended, except that a
/// `False` condition is never appended. Returns whether anything changed.
fn ensure_condition(
    conditions: &mut Vec<JobCondition>,
    type_: JobConditionType,
    status: ConditionStatus,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> bool {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status == status && c.reason == reason && c.message == message {
            return false;
        }
        c.status = status;
        c.reason = reason.to_owned();
        c.message = message.to_owned();
        c.last_probe_time = Some(now);
        c.last_transition_time = Some(now);
        return true;
    }
    if status == ConditionStatus::False {
        return false;
    }
    conditions.push(JobCondition {
        type_,
        status,
        last_probe_time: Some(now),
        last_transition_time: Some(now),
        reason: reason.to_owned(),
        message: message.to_owned(),
        extra: Default::default(),
    });
    true
}

fn merge_requeue(d: &mut JobDecision, at: Option<Timestamp>) {
    if let Some(at) = at {
        d.requeue_at = Some(d.requeue_at.map_or(at, |cur| cur.min(at)));
    }
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v.clamp(i64::from(i32::MIN), i64::from(i32::MAX))).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod name_tests {
    use super::name_suffix;

    #[test]
    fn pod_name_suffixes_never_repeat_within_a_job() {
        let mut seen = std::collections::HashSet::new();
        for counter in 0..200_000u64 {
            assert!(
                seen.insert(name_suffix("3f1c-uid", counter)),
                "repeat at {counter}"
            );
        }
    }
}
