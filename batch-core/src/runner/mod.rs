//! The async runner: drives the [Job](crate::job) and [CronJob](crate::cronjob) machines
//! against an [`Executor`] and a [`Clock`] (feature `runtime`).
//!
//! [`Runner::submit_job`] prepares a Job as the API server would (UID, defaults, selector,
//! `creationTimestamp`), validates it, asks the executor whether it can run the pod template,
//! and spawns a tokio task that runs it to the end:
//!
//! - it watches the Job's pods (`watch`, then `list`, adopting pods that already exist), and
//!   after every wake-up takes in **every** change that is ready before it runs one machine
//!   step, so a thousand pod changes cost a few steps;
//! - it applies each [`JobDecision`](crate::job::JobDecision) as the
//!   [machine's contract](crate::job) says: deletes and starts pods (concurrently, at most
//!   [`RunnerOptions::max_concurrent_calls`] executor calls at a time), persists the status
//!   and memory, and only then releases the counted pods; pods it has asked to start are
//!   passed to the next step as `Pending` until the executor reports them;
//! - it steps again on pod changes, at the machine's `requeue_at`, on control commands
//!   ([`JobHandle::suspend`], [`JobHandle::resume`], [`JobHandle::delete`]) and when a retry
//!   is due;
//! - once the Job is finished it waits for `ttlSecondsAfterFinished`, if set, and then
//!   deletes the Job's pods ([`RunEventKind::JobDelete`]).
//!
//! A failed pod is never an error: it is an observation that ends up in the Job's status.
//! An executor error is reported ([`RunEventKind::ExecutorError`] and a `tracing` warning)
//! and retried with exponential backoff ([`RunnerOptions::retry_base`] doubling up to
//! [`RunnerOptions::retry_cap`]; errors that are not
//! [transient](crate::executor::Error::is_transient) wait the cap at once). It never stops
//! the runner and never changes the Job's counts: the machine only steps on a view of the
//! pods that the executor has confirmed, and a pod that disappears before its outcome was
//! recorded is counted as a failure, never lost. Every applied decision is a `tracing`
//! event carrying the Job's name (`job`) and its counts.
//!
//! [`Runner::submit_cron_job`] runs a CronJob the same way: its child Jobs are submitted
//! through the Job runner, it steps at the machine's `requeue_at` and whenever a child Job's
//! status changes, and the children's own events are forwarded to the CronJob's channel.
//!
//! Time comes only from the [`Clock`]: with a [`ManualClock`](crate::clock::ManualClock)
//! nothing happens until the test moves it.
//!
//! # Example
//!
//! An executor whose pods succeed as soon as they start (a real program uses
//! `batch-executor-local`, `batch-executor-docker` or `batch-executor-k8s`):
//!
//! ```
//! use std::sync::{Arc, Mutex};
//!
//! use batch_core::clock::SystemClock;
//! use batch_core::executor::{
//!     Capabilities, Executor, LabelSelector, PodObservation, PodRequest, Result, WatchEvent,
//!     WatchStream,
//! };
//! use batch_core::job::PodPhase;
//! use batch_core::model::{Job, PodTemplateSpec};
//! use batch_core::runner::Runner;
//! use batch_core::validation::ValidationErrors;
//! use tokio::sync::mpsc;
//!
//! /// Every pod succeeds at once.
//! #[derive(Debug, Default)]
//! struct Instant {
//!     watchers: Mutex<Vec<mpsc::UnboundedSender<Result<WatchEvent>>>>,
//! }
//!
//! #[async_trait::async_trait]
//! impl Executor for Instant {
//!     fn name(&self) -> &str { "instant" }
//!     fn capabilities(&self) -> Capabilities { Capabilities::none() }
//!     fn check_template(&self, _: &PodTemplateSpec) -> Result<(), ValidationErrors> { Ok(()) }
//!     async fn start(&self, pod: PodRequest) -> Result<()> {
//!         let done = PodObservation {
//!             name: pod.name, labels: pod.labels, annotations: pod.annotations,
//!             phase: PodPhase::Succeeded, ..PodObservation::default()
//!         };
//!         for w in self.watchers.lock().unwrap().iter() {
//!             let _ = w.send(Ok(WatchEvent::Applied(Box::new(done.clone()))));
//!         }
//!         Ok(())
//!     }
//!     async fn delete(&self, _: &str, _: Option<chrono::Duration>) -> Result<()> { Ok(()) }
//!     async fn list(&self, _: &LabelSelector) -> Result<Vec<PodObservation>> { Ok(vec![]) }
//!     async fn watch(&self, _: &LabelSelector) -> Result<WatchStream> {
//!         let (tx, rx) = mpsc::unbounded_channel();
//!         self.watchers.lock().unwrap().push(tx);
//!         Ok(Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
//!             rx.recv().await.map(|e| (e, rx))
//!         })))
//!     }
//!     async fn logs(&self, _: &str, _: &str) -> Result<Vec<u8>> { Ok(vec![]) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let job: Job = serde_norway::from_str("
//! metadata: {name: demo}
//! spec: {completions: 3, parallelism: 2, completionMode: Indexed,
//!        template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}
//! ").unwrap();
//! let runner = Runner::new(Arc::new(Instant::default()), Arc::new(SystemClock));
//! let handle = runner.submit_job(job).unwrap();
//! let status = handle.wait().await.unwrap();
//! assert_eq!(status.completed_indexes, "0-2");
//! assert_eq!(status.succeeded, 3);
//! # }
//! ```
//!
//! # Persistence and restarts
//!
//! Everything a Job or CronJob needs to carry on is written to the runner's
//! [`StateStore`] ([`Runner::with_store`]; in memory by default):
//! the object when it is submitted, the pods about to be started before they are, and the
//! status, the machine's memory and the newly counted pods together, atomically, after each
//! step and before those pods are released (see [`crate::store`]). A write that fails is
//! reported ([`RunEventKind::StoreError`]) and the step is retried with backoff; nothing it
//! decided is published or released meanwhile.
//!
//! A new process with the same durable store calls [`Runner::resume`] (or
//! [`Runner::resume_job`], [`Runner::resume_cron_job`]): each unfinished Job lists its pods
//! by label and adopts them — running pods are kept, finished pods are counted unless the
//! store says they already are, pods started just before the crash are found by their
//! labels — and CronJobs continue from their stored status (a missed schedule time is
//! started, once, as the machine decides; its Job name is deterministic, so a Job already
//! created for a slot is never created again). Product decision 5 and `docs/durability.md`
//! state the guarantees.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Clock;
use crate::cronjob::CronJobOptions;
use crate::executor::Executor;
use crate::model::{CronJob, Job, Timestamp};
use crate::store::{MemoryStore, StateStore, StoreError};
use crate::validation::{FieldError, FieldPath, ValidationErrors};

mod cronjob;
mod event;
mod job;

pub use cronjob::CronJobHandle;
pub use event::{RunEvent, RunEventKind};
pub use job::JobHandle;

/// Runs Jobs and CronJobs on an executor, with a clock.
///
/// Cheap to clone (the state is shared). [`submit_job`](Runner::submit_job) and
/// [`submit_cron_job`](Runner::submit_cron_job) must be called inside a tokio runtime: each
/// Job and CronJob runs in its own task.
#[derive(Debug, Clone)]
pub struct Runner {
    inner: Arc<RunnerInner>,
}

#[derive(Debug)]
struct RunnerInner {
    executor: Arc<dyn Executor>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn StateStore>,
    options: RunnerOptions,
}

/// How the runner behaves.
///
/// ```
/// use batch_core::runner::RunnerOptions;
/// use std::time::Duration;
///
/// let options = RunnerOptions::default().with_retry(Duration::from_millis(500), Duration::from_secs(30));
/// assert_eq!(options.retry_cap, Duration::from_secs(30));
/// assert_eq!(options.max_concurrent_calls, 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunnerOptions {
    /// The CronJob machine's options (DST policy).
    pub cron: CronJobOptions,
    /// The first delay before retrying a failed executor call (default 1 s).
    pub retry_base: std::time::Duration,
    /// The longest delay between retries (default 60 s); errors that are not transient
    /// wait this long at once.
    pub retry_cap: std::time::Duration,
    /// How many executor calls (starts, deletes) one Job has in flight at most (default 64).
    pub max_concurrent_calls: usize,
    /// How many events each Job's and CronJob's event channel holds for a receiver that
    /// falls behind (default 65,536). The channel's slots are allocated up front.
    pub event_capacity: usize,
}

impl Default for RunnerOptions {
    fn default() -> Self {
        RunnerOptions {
            cron: CronJobOptions::default(),
            retry_base: std::time::Duration::from_secs(1),
            retry_cap: std::time::Duration::from_secs(60),
            max_concurrent_calls: 64,
            event_capacity: 65_536,
        }
    }
}

impl RunnerOptions {
    /// These options with other CronJob machine options.
    #[must_use]
    pub fn with_cron(mut self, cron: CronJobOptions) -> Self {
        self.cron = cron;
        self
    }

    /// These options with another retry backoff: `base`, doubling up to `cap`.
    #[must_use]
    pub fn with_retry(mut self, base: std::time::Duration, cap: std::time::Duration) -> Self {
        self.retry_base = base;
        self.retry_cap = cap;
        self
    }

    /// These options with another bound on executor calls in flight per Job (at least 1).
    #[must_use]
    pub fn with_max_concurrent_calls(mut self, n: usize) -> Self {
        self.max_concurrent_calls = n;
        self
    }

    /// These options with another event channel capacity (at least 1).
    #[must_use]
    pub fn with_event_capacity(mut self, n: usize) -> Self {
        self.event_capacity = n;
        self
    }
}

/// Why a Job or CronJob could not be submitted.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The object fails validation: the API server would refuse to create it.
    #[error("validation failed: {}", join_errors(.0))]
    Invalid(ValidationErrors),
    /// The executor cannot honour some fields of the pod template.
    #[error("the {executor} executor cannot run this: {}", join_errors(.errors))]
    Unsupported {
        /// The executor's name.
        executor: String,
        /// The fields it cannot honour (paths from the object's root).
        errors: ValidationErrors,
    },
    /// No tokio runtime is running: submit from inside one.
    #[error("no tokio runtime is running")]
    NoRuntime,
    /// A Job (or CronJob) of that name is in the runner's store already: running, finished
    /// and kept, or left by an earlier process (see [`Runner::resume_job`]).
    #[error("{kind} {name:?} already exists")]
    AlreadyExists {
        /// `Job` or `CronJob`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// The state store could not record the object (nothing was started).
    #[error("cannot record it in the state store: {0}")]
    Store(#[source] StoreError),
}

impl From<StoreError> for SubmitError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AlreadyExists { kind, name } => SubmitError::AlreadyExists { kind, name },
            other => SubmitError::Store(other),
        }
    }
}

/// What [`Runner::resume`] restarted.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Resumed {
    /// The Jobs not owned by a stored CronJob, in name order (finished ones too: they wait
    /// for their TTL).
    pub jobs: Vec<JobHandle>,
    /// The CronJobs, in name order (their Jobs are in [`CronJobHandle::jobs`]).
    pub cron_jobs: Vec<CronJobHandle>,
}

/// Why a handle's operation did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The Job was deleted (by its TTL or by [`JobHandle::delete`]) before the operation.
    #[error("the job was deleted")]
    Deleted,
    /// The runner's task is gone: the CronJob was stopped, or the runtime shut down.
    #[error("the runner task has stopped")]
    Stopped,
}

fn join_errors(errors: &ValidationErrors) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Runner {
    /// A runner that starts pods on `executor` and reads time from `clock`.
    pub fn new(executor: Arc<dyn Executor>, clock: Arc<dyn Clock>) -> Self {
        Runner {
            inner: Arc::new(RunnerInner {
                executor,
                clock,
                store: Arc::new(MemoryStore::new()),
                options: RunnerOptions::default(),
            }),
        }
    }

    /// This runner with other options (for Jobs submitted from now on).
    #[must_use]
    pub fn with_options(self, options: RunnerOptions) -> Self {
        Runner {
            inner: Arc::new(RunnerInner {
                executor: Arc::clone(&self.inner.executor),
                clock: Arc::clone(&self.inner.clock),
                store: Arc::clone(&self.inner.store),
                options,
            }),
        }
    }

    /// This runner with another state store (for Jobs submitted or resumed from now on).
    /// The default is a [`MemoryStore`]; a [`SqliteStore`](crate::store::SqliteStore) makes
    /// runs survive a restart of the process ([`resume`](Runner::resume)).
    #[must_use]
    pub fn with_store(self, store: Arc<dyn StateStore>) -> Self {
        Runner {
            inner: Arc::new(RunnerInner {
                executor: Arc::clone(&self.inner.executor),
                clock: Arc::clone(&self.inner.clock),
                store,
                options: self.inner.options.clone(),
            }),
        }
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn StateStore> {
        &self.inner.store
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// The options.
    pub fn options(&self) -> &RunnerOptions {
        &self.inner.options
    }

    /// Starts running a Job.
    ///
    /// The Job is prepared as the API server prepares a create
    /// ([`prepare_job_for_create`](crate::defaults::prepare_job_for_create), with a fresh
    /// UID when `metadata.uid` is unset, and `creationTimestamp` = now when unset), then
    /// validated ([`validate_job`](crate::validation::validate_job)) and checked by the
    /// executor ([`Executor::check_template`]). A `status` already on the Job is kept (the
    /// machine resumes from it). The Job then runs in a new tokio task; the returned
    /// [`JobHandle`] follows and controls it.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Invalid`] when the Job fails validation, [`SubmitError::Unsupported`]
    /// when the executor cannot honour its pod template, [`SubmitError::NoRuntime`] when
    /// called outside a tokio runtime.
    pub fn submit_job(&self, job: Job) -> Result<JobHandle, SubmitError> {
        job::submit(self, job)
    }

    /// Starts running a CronJob: it creates its Jobs through this runner, on schedule,
    /// until [`CronJobHandle::stop`].
    ///
    /// The CronJob is defaulted ([`default_cron_job`](crate::defaults::default_cron_job)),
    /// given a fresh UID when it has none and `creationTimestamp` = now when unset (so its
    /// first scheduled time is the first one after now), validated
    /// ([`validate_cron_job`](crate::validation::validate_cron_job)), and its Job template
    /// is checked by the executor.
    ///
    /// # Errors
    ///
    /// [`SubmitError::Invalid`] when the CronJob fails validation,
    /// [`SubmitError::Unsupported`] when the executor cannot honour its pod template,
    /// [`SubmitError::NoRuntime`] when called outside a tokio runtime.
    pub fn submit_cron_job(&self, cron_job: CronJob) -> Result<CronJobHandle, SubmitError> {
        cronjob::submit(self, cron_job)
    }

    /// Carries on with everything the store holds, as a new process does after the last
    /// one stopped or crashed: every stored CronJob (with its Jobs), and every other Job.
    /// See [Persistence and restarts](self#persistence-and-restarts).
    ///
    /// Call it once, before submitting anything, on a store no other live runner uses.
    ///
    /// # Errors
    ///
    /// The store cannot be read ([`SubmitError::Store`], for example a damaged file), or a
    /// stored object can no longer run here ([`SubmitError::Invalid`],
    /// [`SubmitError::Unsupported`] for an executor that cannot run its pod template,
    /// [`SubmitError::NoRuntime`]). Nothing is started then.
    pub fn resume(&self) -> Result<Resumed, SubmitError> {
        let state = self.inner.store.load()?;
        let plan = resume_plan(state, |_| true, |_| true);
        plan.check(self)?;
        plan.start(self)
    }

    /// Carries on with one stored Job (not owned by a stored CronJob), as
    /// [`resume`](Runner::resume) does. `None` when the store has no such Job.
    ///
    /// # Errors
    ///
    /// As [`resume`](Runner::resume).
    pub fn resume_job(&self, name: &str) -> Result<Option<JobHandle>, SubmitError> {
        let state = self.inner.store.load()?;
        let plan = resume_plan(state, |n| n == name, |_| false);
        plan.check(self)?;
        Ok(plan.start(self)?.jobs.pop())
    }

    /// Carries on with one stored CronJob and its Jobs, as [`resume`](Runner::resume)
    /// does. `None` when the store has no such CronJob.
    ///
    /// # Errors
    ///
    /// As [`resume`](Runner::resume).
    pub fn resume_cron_job(&self, name: &str) -> Result<Option<CronJobHandle>, SubmitError> {
        let state = self.inner.store.load()?;
        let plan = resume_plan(state, |_| false, |n| n == name);
        plan.check(self)?;
        Ok(plan.start(self)?.cron_jobs.pop())
    }
}

/// The stored objects to resume: CronJobs with their Jobs, and standalone Jobs.
struct ResumePlan {
    cron_jobs: Vec<(CronJob, Vec<crate::store::JobRecord>)>,
    jobs: Vec<crate::store::JobRecord>,
}

/// Sorts the stored state into what to resume: a Job belongs to a stored CronJob when its
/// controller owner reference names that CronJob's UID; other Jobs stand alone.
fn resume_plan(
    state: crate::store::StoredState,
    want_job: impl Fn(&str) -> bool,
    want_cron: impl Fn(&str) -> bool,
) -> ResumePlan {
    let mut jobs = state.jobs;
    let mut cron_jobs = Vec::new();
    for (name, cron) in state.cron_jobs {
        let uid = cron.metadata.uid.clone().unwrap_or_default();
        let children: Vec<String> = jobs
            .iter()
            .filter(|(_, r)| r.owner_uid() == Some(uid.as_str()))
            .map(|(n, _)| n.clone())
            .collect();
        let children: Vec<crate::store::JobRecord> =
            children.iter().filter_map(|n| jobs.remove(n)).collect();
        if want_cron(&name) {
            cron_jobs.push((cron, children));
        }
    }
    let jobs = jobs
        .into_iter()
        .filter(|(n, _)| want_job(n))
        .map(|(_, r)| r)
        .collect();
    ResumePlan { cron_jobs, jobs }
}

impl ResumePlan {
    /// Checks everything before anything starts.
    fn check(&self, runner: &Runner) -> Result<(), SubmitError> {
        runtime()?;
        for (cron, children) in &self.cron_jobs {
            crate::validation::validate_cron_job(cron).map_err(SubmitError::Invalid)?;
            check_template(
                runner.inner.executor.as_ref(),
                &cron.spec.job_template.spec.template,
                "spec.jobTemplate.spec.",
            )?;
            for r in children {
                job::check_resumable(runner, r)?;
            }
        }
        for r in &self.jobs {
            job::check_resumable(runner, r)?;
        }
        Ok(())
    }

    fn start(self, runner: &Runner) -> Result<Resumed, SubmitError> {
        let mut resumed = Resumed::default();
        for (cron, children) in self.cron_jobs {
            resumed
                .cron_jobs
                .push(cronjob::resume(runner, cron, children)?);
        }
        for r in self.jobs {
            resumed.jobs.push(job::resume(runner, r)?);
        }
        Ok(resumed)
    }
}

/// A fresh UID, shaped like a Kubernetes one: a hash of the name, the time, the process and
/// a process-wide counter (unique enough without a random number generator).
fn generate_uid(name: &str, now: Timestamp) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut h = DefaultHasher::new();
    (name, now.timestamp(), now.timestamp_subsec_nanos(), n).hash(&mut h);
    std::process::id().hash(&mut h);
    let a = h.finish();
    let mut h = DefaultHasher::new();
    (a, n, name.len()).hash(&mut h);
    let b = h.finish();
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

/// Asks the executor about a pod template; paths are prefixed with `prefix` (`spec.`).
fn check_template(
    executor: &dyn Executor,
    template: &crate::model::PodTemplateSpec,
    prefix: &str,
) -> Result<(), SubmitError> {
    executor.check_template(template).map_err(|errors| {
        let errors = ValidationErrors(
            errors
                .0
                .into_iter()
                .map(|e| FieldError {
                    path: FieldPath::new(&format!("{prefix}{}", e.path)),
                    ..e
                })
                .collect(),
        );
        SubmitError::Unsupported {
            executor: executor.name().to_owned(),
            errors,
        }
    })
}

/// The tokio runtime to spawn on.
fn runtime() -> Result<tokio::runtime::Handle, SubmitError> {
    tokio::runtime::Handle::try_current().map_err(|_| SubmitError::NoRuntime)
}

/// Exponential backoff for executor calls.
#[derive(Debug, Clone)]
struct Backoff {
    base: chrono::Duration,
    cap: chrono::Duration,
    attempts: u32,
}

impl Backoff {
    fn new(options: &RunnerOptions) -> Self {
        let cap = chrono::Duration::from_std(options.retry_cap)
            .unwrap_or(chrono::Duration::seconds(60))
            .max(chrono::Duration::milliseconds(1));
        let base = chrono::Duration::from_std(options.retry_base)
            .unwrap_or(chrono::Duration::seconds(1))
            .clamp(chrono::Duration::milliseconds(1), cap);
        Backoff {
            base,
            cap,
            attempts: 0,
        }
    }

    /// The delay before the next retry; transient errors back off exponentially, others
    /// wait the cap.
    fn next_delay(&mut self, transient: bool) -> chrono::Duration {
        let exponent = self.attempts.min(30);
        self.attempts = self.attempts.saturating_add(1);
        if !transient {
            return self.cap;
        }
        self.base
            .checked_mul(1 << exponent)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    /// The delay the next transient retry would wait, without counting an attempt.
    fn peek_delay(&self) -> chrono::Duration {
        let exponent = self.attempts.min(30);
        self.base
            .checked_mul(1 << exponent)
            .unwrap_or(self.cap)
            .min(self.cap)
    }

    fn reset(&mut self) {
        self.attempts = 0;
    }
}

/// The text of an error with its sources, for events and logs. A source whose text is
/// already said (an error that quotes its cause, as many wrappers do) is not repeated.
fn error_text(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let said = s.to_string();
        if !said.is_empty() && !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = s.source();
    }
    text
}

/// A delay before retrying a failed store write: the runner's retry backoff.
fn store_retry(backoff: &mut Backoff, error: &StoreError) -> chrono::Duration {
    // A full disk or a lock held by another process can pass; damage or a replaced record
    // will not, but the step is not lost by waiting.
    backoff.next_delay(matches!(error, StoreError::Storage { .. }))
}

/// Whether the task behind a handle still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Running,
    /// The Job was deleted; the task has ended.
    Deleted,
    /// The task ended otherwise (CronJob stopped, runtime shut down).
    Stopped,
}

impl fmt::Display for Life {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Life::Running => "running",
            Life::Deleted => "deleted",
            Life::Stopped => "stopped",
        })
    }
}

/// A cached sleep until a deadline, so a loop that wakes often does not create a new timer
/// at every turn.
struct Sleep {
    deadline: Option<Timestamp>,
    sleep: Option<crate::clock::BoxFuture<'static, ()>>,
}

impl Sleep {
    fn new() -> Self {
        Sleep {
            deadline: None,
            sleep: None,
        }
    }

    fn set(&mut self, clock: &dyn Clock, deadline: Option<Timestamp>) {
        if deadline != self.deadline || self.sleep.is_none() {
            self.deadline = deadline;
            self.sleep = deadline.map(|d| clock.sleep_until(d));
        }
    }

    /// Completes at the deadline (never when there is none).
    async fn wait(&mut self) {
        match &mut self.sleep {
            Some(s) => {
                s.await;
                self.sleep = None;
                self.deadline = None;
            }
            None => std::future::pending().await,
        }
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The earliest of some optional times.
fn earliest(times: impl IntoIterator<Item = Option<Timestamp>>) -> Option<Timestamp> {
    times.into_iter().flatten().min()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[derive(Debug)]
    struct Link(&'static str, Option<Box<Link>>);

    impl std::fmt::Display for Link {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Link {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1
                .as_deref()
                .map(|l| l as &(dyn std::error::Error + 'static))
        }
    }

    #[test]
    fn error_text_follows_sources_without_repeating_what_was_said() {
        let chain = Link(
            "watch failed (unavailable): failed to start watching: client error (Connect)",
            Some(Box::new(Link(
                "failed to start watching: client error (Connect)",
                Some(Box::new(Link(
                    "client error (Connect)",
                    Some(Box::new(Link("connection refused", None))),
                ))),
            ))),
        );
        assert_eq!(
            error_text(&chain),
            "watch failed (unavailable): failed to start watching: client error (Connect): \
             connection refused"
        );
        let plain = Link("create failed", Some(Box::new(Link("disk full", None))));
        assert_eq!(error_text(&plain), "create failed: disk full");
    }

    #[test]
    fn generated_uids_differ_and_look_like_uuids() {
        let now = chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let a = generate_uid("demo", now);
        let b = generate_uid("demo", now);
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn backoff_doubles_to_the_cap_and_permanent_errors_wait_the_cap() {
        let options = RunnerOptions::default().with_retry(
            std::time::Duration::from_secs(1),
            std::time::Duration::from_secs(5),
        );
        let mut b = Backoff::new(&options);
        let delays: Vec<i64> = (0..5).map(|_| b.next_delay(true).num_seconds()).collect();
        assert_eq!(delays, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_delay(true).num_seconds(), 1);
        assert_eq!(b.next_delay(false).num_seconds(), 5);
    }
}
