//! The `batch/v1` CronJob.

use super::{JobSpec, ObjectMeta, Timestamp, k8s_string_enum, k8s_struct};

k8s_struct! {
    /// A Kubernetes `batch/v1` CronJob: creates Jobs on a cron schedule.
    pub struct CronJob {
        /// `apiVersion`: `batch/v1`.
        api_version: String = "apiVersion",
        /// `kind`: `CronJob`.
        kind: String = "kind",
        /// `metadata`.
        metadata: ObjectMeta = "metadata",
        /// `spec`.
        spec: CronJobSpec = "spec",
        /// `status`.
        status: CronJobStatus = "status",
    }
}

k8s_struct! {
    /// Kubernetes `CronJobSpec`.
    pub struct CronJobSpec {
        /// `schedule`: a five-field cron expression, a macro such as `@daily`, or
        /// `@every <duration>`.
        schedule: String = "schedule",
        /// `timeZone`: an IANA zone name. Unset means **UTC** here (upstream: the controller's
        /// local zone).
        time_zone: Option<String> = "timeZone",
        /// `startingDeadlineSeconds`: how late a scheduled run may still start.
        starting_deadline_seconds: Option<i64> = "startingDeadlineSeconds",
        /// `concurrencyPolicy`: `Allow` (default), `Forbid` or `Replace`.
        concurrency_policy: ConcurrencyPolicy = "concurrencyPolicy",
        /// `suspend`: while true, no new Jobs are created (default false).
        suspend: Option<bool> = "suspend",
        /// `jobTemplate`: the Jobs to create.
        job_template: JobTemplateSpec = "jobTemplate",
        /// `successfulJobsHistoryLimit`: finished successful Jobs kept (default 3).
        successful_jobs_history_limit: Option<i32> = "successfulJobsHistoryLimit",
        /// `failedJobsHistoryLimit`: finished failed Jobs kept (default 1).
        failed_jobs_history_limit: Option<i32> = "failedJobsHistoryLimit",
    }
}

k8s_string_enum! {
    /// `spec.concurrencyPolicy`.
    pub enum ConcurrencyPolicy {
        /// Start new Jobs even while earlier ones run.
        Allow = "Allow",
        /// Skip a run while an earlier Job still runs.
        Forbid = "Forbid",
        /// Delete the running Job and start the new one.
        Replace = "Replace",
    }
}

k8s_struct! {
    /// Kubernetes `JobTemplateSpec`.
    pub struct JobTemplateSpec {
        /// `metadata`: labels and annotations copied to each Job.
        metadata: ObjectMeta = "metadata",
        /// `spec` of each Job.
        spec: JobSpec = "spec",
    }
}

k8s_struct! {
    /// Kubernetes `CronJobStatus`.
    pub struct CronJobStatus {
        /// `active`: Jobs believed to be running.
        active: Vec<ObjectReference> = "active",
        /// `lastScheduleTime`: the last scheduled time a Job was created for.
        last_schedule_time: Option<Timestamp> = "lastScheduleTime",
        /// `lastSuccessfulTime`: when a Job last completed successfully.
        last_successful_time: Option<Timestamp> = "lastSuccessfulTime",
    }
}

k8s_struct! {
    /// Kubernetes `ObjectReference` (as used in `CronJobStatus.active`).
    pub struct ObjectReference {
        /// `apiVersion`.
        api_version: Option<String> = "apiVersion",
        /// `kind`.
        kind: Option<String> = "kind",
        /// `name`.
        name: Option<String> = "name",
        /// `namespace`.
        namespace: Option<String> = "namespace",
        /// `uid`.
        uid: Option<String> = "uid",
        /// `resourceVersion`.
        resource_version: Option<String> = "resourceVersion",
    }
}

impl CronJob {
    /// The CronJob's name, or `""` when it has none.
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }
}
