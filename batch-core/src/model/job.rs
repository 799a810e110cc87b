//! The `batch/v1` Job.

use super::{LabelSelector, ObjectMeta, PodTemplateSpec, Timestamp, k8s_string_enum, k8s_struct};

k8s_struct! {
    /// A Kubernetes `batch/v1` Job: runs pods until a number of them succeed.
    pub struct Job {
        /// `apiVersion`: `batch/v1`.
        api_version: String = "apiVersion",
        /// `kind`: `Job`.
        kind: String = "kind",
        /// `metadata`.
        metadata: ObjectMeta = "metadata",
        /// `spec`: what the Job should do.
        spec: JobSpec = "spec",
        /// `status`: what it has done so far.
        status: JobStatus = "status",
    }
}

k8s_struct! {
    /// Kubernetes `JobSpec`.
    pub struct JobSpec {
        /// `parallelism`: the most pods running at once (default 1; 0 pauses progress).
        parallelism: Option<i32> = "parallelism",
        /// `completions`: successes needed. `None` after defaulting makes a work-queue Job
        /// (any success, once nothing runs, completes it). Defaults to 1 only when
        /// `parallelism` is unset too.
        completions: Option<i32> = "completions",
        /// `activeDeadlineSeconds`: time allowed since `status.startTime`.
        active_deadline_seconds: Option<i64> = "activeDeadlineSeconds",
        /// `podFailurePolicy`: how pod failures are treated (requires `restartPolicy: Never`).
        pod_failure_policy: Option<PodFailurePolicy> = "podFailurePolicy",
        /// `successPolicy`: when an Indexed Job counts as succeeded early.
        success_policy: Option<SuccessPolicy> = "successPolicy",
        /// `backoffLimit`: counted pod failures allowed (default 6, or `i32::MAX` with
        /// `backoffLimitPerIndex`).
        backoff_limit: Option<i32> = "backoffLimit",
        /// `backoffLimitPerIndex`: failures allowed per index (Indexed only).
        backoff_limit_per_index: Option<i32> = "backoffLimitPerIndex",
        /// `maxFailedIndexes`: failed indexes allowed before the Job fails.
        max_failed_indexes: Option<i32> = "maxFailedIndexes",
        /// `selector`: selects the Job's pods; generated unless `manualSelector` is true.
        selector: Option<LabelSelector> = "selector",
        /// `manualSelector`: the user manages `selector` (default false).
        manual_selector: Option<bool> = "manualSelector",
        /// `template`: the pods to run.
        template: PodTemplateSpec = "template",
        /// `ttlSecondsAfterFinished`: delete the Job this long after it finishes.
        ttl_seconds_after_finished: Option<i32> = "ttlSecondsAfterFinished",
        /// `completionMode`: `NonIndexed` (default) or `Indexed`.
        completion_mode: Option<CompletionMode> = "completionMode",
        /// `suspend`: while true, no pods run (default false).
        suspend: Option<bool> = "suspend",
        /// `podReplacementPolicy`: when a replacement pod may start.
        pod_replacement_policy: Option<PodReplacementPolicy> = "podReplacementPolicy",
        /// `managedBy`: the controller in charge; any value but
        /// `kubernetes.io/job-controller` makes the built-in logic leave the Job alone.
        managed_by: Option<String> = "managedBy",
    }
}

k8s_string_enum! {
    /// `spec.completionMode`.
    pub enum CompletionMode {
        /// Pods are interchangeable; the Job completes after `completions` successes.
        NonIndexed = "NonIndexed",
        /// Each pod gets an index in `0..completions`; the Job completes when every index
        /// has succeeded.
        Indexed = "Indexed",
    }
}

k8s_string_enum! {
    /// `spec.podReplacementPolicy`.
    pub enum PodReplacementPolicy {
        /// Replace a pod as soon as it is terminating or failed.
        TerminatingOrFailed = "TerminatingOrFailed",
        /// Replace a pod only once it has fully failed.
        Failed = "Failed",
    }
}

k8s_struct! {
    /// Kubernetes `PodFailurePolicy`.
    pub struct PodFailurePolicy {
        /// `rules`: evaluated in order; the first match decides (at most 20).
        rules: Vec<PodFailurePolicyRule> = "rules",
    }
}

k8s_struct! {
    /// One rule of a [`PodFailurePolicy`]: exactly one of `onExitCodes` / `onPodConditions`.
    pub struct PodFailurePolicyRule {
        /// `action` taken when the rule matches.
        action: PodFailurePolicyAction = "action",
        /// `onExitCodes`: match on container exit codes.
        on_exit_codes: Option<PodFailurePolicyOnExitCodesRequirement> = "onExitCodes",
        /// `onPodConditions`: match on pod conditions.
        on_pod_conditions: Vec<PodFailurePolicyOnPodConditionsPattern> = "onPodConditions",
    }
}

k8s_string_enum! {
    /// `podFailurePolicy.rules[].action`.
    pub enum PodFailurePolicyAction {
        /// Fail the whole Job.
        FailJob = "FailJob",
        /// Fail the pod's index (requires `backoffLimitPerIndex`).
        FailIndex = "FailIndex",
        /// Do not count the failure; replace the pod.
        Ignore = "Ignore",
        /// Count the failure as usual.
        Count = "Count",
    }
}

k8s_struct! {
    /// Kubernetes `PodFailurePolicyOnExitCodesRequirement`.
    pub struct PodFailurePolicyOnExitCodesRequirement {
        /// `containerName`: restrict the check to one container.
        container_name: Option<String> = "containerName",
        /// `operator`: `In` or `NotIn`.
        operator: PodFailurePolicyOnExitCodesOperator = "operator",
        /// `values`: exit codes, ascending, no duplicates, at most 255.
        values: Vec<i32> = "values",
    }
}

k8s_string_enum! {
    /// `onExitCodes.operator`.
    pub enum PodFailurePolicyOnExitCodesOperator {
        /// The exit code is one of `values`.
        In = "In",
        /// The exit code is none of `values`.
        NotIn = "NotIn",
    }
}

k8s_struct! {
    /// Kubernetes `PodFailurePolicyOnPodConditionsPattern`.
    pub struct PodFailurePolicyOnPodConditionsPattern {
        /// `type`: the pod condition type, for example `DisruptionTarget`.
        type_: String = "type",
        /// `status` the condition must have (default `True`).
        status: ConditionStatus = "status",
    }
}

k8s_string_enum! {
    /// A condition status.
    pub enum ConditionStatus {
        /// `True`.
        True = "True",
        /// `False`.
        False = "False",
        /// `Unknown`.
        Unknown = "Unknown",
    }
}

k8s_struct! {
    /// Kubernetes `SuccessPolicy` (Indexed Jobs only).
    pub struct SuccessPolicy {
        /// `rules`: the first rule met declares success (1 to 20 rules).
        rules: Vec<SuccessPolicyRule> = "rules",
    }
}

k8s_struct! {
    /// One rule of a [`SuccessPolicy`]: at least one field is set.
    pub struct SuccessPolicyRule {
        /// `succeededIndexes`: an interval string such as `0,2-4`.
        succeeded_indexes: Option<String> = "succeededIndexes",
        /// `succeededCount`: how many of those indexes (or of all indexes) must succeed.
        succeeded_count: Option<i32> = "succeededCount",
    }
}

k8s_struct! {
    /// Kubernetes `JobStatus`.
    pub struct JobStatus {
        /// `conditions`: `Suspended`, `FailureTarget`, `SuccessCriteriaMet`, `Complete`,
        /// `Failed`.
        conditions: Vec<JobCondition> = "conditions",
        /// `startTime`: when the Job (last) started running.
        start_time: Option<Timestamp> = "startTime",
        /// `completionTime`: set only when the Job completes successfully.
        completion_time: Option<Timestamp> = "completionTime",
        /// `active`: pods running or pending (not terminating).
        active: i32 = "active",
        /// `succeeded`: counted succeeded pods (Indexed: succeeded indexes).
        succeeded: i32 = "succeeded",
        /// `failed`: counted failed pods.
        failed: i32 = "failed",
        /// `terminating`: pods being deleted.
        terminating: Option<i32> = "terminating",
        /// `ready`: active pods that are ready.
        ready: Option<i32> = "ready",
        /// `completedIndexes`: interval string of succeeded indexes (Indexed only).
        completed_indexes: String = "completedIndexes",
        /// `failedIndexes`: interval string of failed indexes (with `backoffLimitPerIndex`).
        failed_indexes: Option<String> = "failedIndexes",
        /// `uncountedTerminatedPods`: finished pods not yet in the counters.
        uncounted_terminated_pods: Option<UncountedTerminatedPods> = "uncountedTerminatedPods",
    }
}

k8s_struct! {
    /// Kubernetes `UncountedTerminatedPods`: UIDs of finished pods being counted.
    pub struct UncountedTerminatedPods {
        /// `succeeded` pod UIDs.
        succeeded: Vec<String> = "succeeded",
        /// `failed` pod UIDs.
        failed: Vec<String> = "failed",
    }
}

k8s_struct! {
    /// Kubernetes `JobCondition`.
    pub struct JobCondition {
        /// `type`.
        type_: JobConditionType = "type",
        /// `status`.
        status: ConditionStatus = "status",
        /// `lastProbeTime`.
        last_probe_time: Option<Timestamp> = "lastProbeTime",
        /// `lastTransitionTime`.
        last_transition_time: Option<Timestamp> = "lastTransitionTime",
        /// `reason`: a CamelCase reason such as `BackoffLimitExceeded`.
        reason: String = "reason",
        /// `message`: human-readable detail.
        message: String = "message",
    }
}

k8s_string_enum! {
    /// `status.conditions[].type` of a Job.
    pub enum JobConditionType {
        /// The Job is suspended (or was: status `False` after a resume).
        Suspended = "Suspended",
        /// The Job completed successfully (terminal).
        Complete = "Complete",
        /// The Job failed (terminal).
        Failed = "Failed",
        /// The Job will fail once its pods are gone.
        FailureTarget = "FailureTarget",
        /// The Job will complete once its pods are gone.
        SuccessCriteriaMet = "SuccessCriteriaMet",
    }
}

impl Job {
    /// The Job's name, or `""` when it has none.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// Whether the Job is Indexed (after defaulting, an absent mode is `NonIndexed`).
    pub fn is_indexed(&self) -> bool {
        self.spec.completion_mode == Some(CompletionMode::Indexed)
    }
}

impl JobStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &JobConditionType) -> Option<&JobCondition> {
        self.conditions.iter().find(|c| &c.type_ == type_)
    }

    /// Whether the condition of the given type is present with status `True`.
    pub fn has_true_condition(&self, type_: &JobConditionType) -> bool {
        self.condition(type_)
            .is_some_and(|c| c.status == ConditionStatus::True)
    }

    /// Whether the Job is finished: `Complete=True` or `Failed=True`. Nothing else counts.
    pub fn is_finished(&self) -> bool {
        self.has_true_condition(&JobConditionType::Complete)
            || self.has_true_condition(&JobConditionType::Failed)
    }
}
