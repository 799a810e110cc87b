//! A whole Job run on a virtual clock: the real [`reconcile`](crate::job::reconcile) against
//! simulated pods (conformance-io.md §5, `batch simulate`); or a whole CronJob run: the real
//! [`cronjob::reconcile`](crate::cronjob::reconcile) against simulated child Jobs (see
//! [CronJob runs](#cronjob-runs) below).
//!
//! The input says when the run starts, the Job, and how its pods behave: a list of
//! [`PodRule`]s, the first matching one deciding how long a pod runs and how it ends. The
//! simulator applies every decision of the machine the way a runner would (creates pods,
//! deletes them, persists status and memory, frees counted pods) and moves the clock straight
//! to the next thing that happens: a pod ending, or the time the machine asked to be woken
//! at. The result is the list of [`SimEvent`]s in time order and the final Job status.
//!
//! Deterministic and pure, like the rest of the crate: no clock, no I/O, no randomness. The
//! same input always gives the same [`Simulation`], and [`Simulation::json_lines`] the same
//! bytes.
//!
//! ```
//! use batch_core::simulate::{parse_input, simulate_job};
//!
//! let input = parse_input(r#"
//! start: 2026-01-01T00:00:00Z
//! job:
//!   metadata: {name: demo}
//!   spec:
//!     completions: 3
//!     parallelism: 2
//!     completionMode: Indexed
//!     template:
//!       spec:
//!         restartPolicy: Never
//!         containers: [{name: main, image: busybox}]
//! pods:
//!   - match: {index: 1, attempt: 0}
//!     runFor: 5s
//!     exitCode: 1
//!   - runFor: 10s
//! "#, "demo.yaml").unwrap();
//! let run = simulate_job(&input).unwrap();
//! assert!(run.finished);
//! assert_eq!(run.status.completed_indexes, "0-2");
//! assert_eq!(run.status.failed, 1);
//! let lines = run.json_lines();
//! assert!(lines.starts_with(r#"{"t":"2026-01-01T00:00:00Z","event":"create","pod":"demo-0-"#));
//! assert!(lines.ends_with("}}\n"));
//! ```
//!
//! # How simulated pods behave
//!
//! - **Numbering.** `ordinal` is the 0-based creation order over the whole run; `attempt` is
//!   the 0-based count of earlier pods of the same index (NonIndexed Jobs: of all earlier
//!   pods, so it equals `ordinal`).
//! - **Rules.** The first rule whose `match` holds decides (every field given in `match` must
//!   hold; a rule without `match` always matches). `match.index` is an index or an interval
//!   string such as `"0,2,4-6"`. **A pod no rule matches succeeds at once** (it runs for 0 s
//!   and every container exits 0), as does a rule that gives neither `runFor` nor an outcome.
//! - **Creation.** A created pod is running and ready at once (`create` event); it ends
//!   `runFor` later.
//! - **Ending.** `exitCode: N` ends every app container with `N`; `exitCodes: {c: N}` sets the
//!   code per container (unlisted app containers exit 0; init containers, native sidecars
//!   included, are reported only when listed). The pod succeeds when every app container and
//!   every listed non-sidecar init container exits 0, and fails otherwise. `evicted: true` makes
//!   the pod fail with condition `DisruptionTarget=True` (reason `EvictionByEvictionAPI`) and
//!   no exit code. `conditions: [{type: ConfigIssue}]` adds pod conditions (status defaults to
//!   `True`); given without an exit code, the pod fails with those conditions and no exit
//!   code (as when an outside controller marks a pod and deletes it). The event is `exit` with
//!   the first non-zero code (app containers in template order, then init containers; `0` when
//!   all succeeded), or `evict` for a pod that ends without an exit code.
//! - **restartPolicy OnFailure.** A run that exits non-zero restarts its failing containers
//!   inside the same pod (an `exit` event, the pod stays active, restart counts go up) after
//!   the kubelet's crash-loop back-off (10 s, doubling, at most 5 min); the next run follows
//!   the same rule. An eviction or a conditions-only failure fails the whole pod.
//! - **Deletion.** A pod the machine deletes becomes terminating (`delete` event). It ends at
//!   its natural end if that comes within the pod's `terminationGracePeriodSeconds` (default
//!   30 s; the program finished despite the stop signal), else it is killed when the grace
//!   period runs out: phase `Failed`, every running container with exit code 137 (an `exit`
//!   event with 137). This models a program that ignores SIGTERM, which is what a shell
//!   running as PID 1 does.
//! - **Pod deadline.** A pod template with `activeDeadlineSeconds` is killed the same way
//!   (exit code 137) that long after its creation.
//! - **Release.** Once the machine counts a terminal pod (its `release` list), the pod is
//!   forgotten, as a runner frees its resources; until then it stays visible to the machine.
//!
//! # How the clock moves
//!
//! The run starts at `start`. At each instant: pods due to change change (all of them at
//! that instant, in creation order, as one batch); then the machine runs and its decision is
//! applied; while a step changes anything (pods created, deleted or released, status or
//! memory), the machine runs again at the same instant (upstream re-syncs on the resulting
//! pod events). Then the clock jumps to the earliest of the next pod change and the
//! decision's `requeue_at`. The run ends when the Job is finished (`Complete` or `Failed`),
//! when nothing is left that could happen (no running pod, no wake-up requested: a
//! suspended Job, for instance), or after `until` (default: `start` + 30 days); instants
//! after `until` are not simulated.
//!
//! Before the run the Job is prepared as the API server prepares a create
//! ([`prepare_job_for_create`](crate::defaults::prepare_job_for_create), with
//! [`SIMULATED_UID`] when it has no UID, `creationTimestamp` = `start` when absent) and
//! validated: an invalid Job is an error, as it could never be created.
//!
//! Events: `create` (pod, index), `exit` (pod, exitCode), `evict` (pod), `delete` (pod),
//! `condition` (type, reason; each Job condition when it first appears or changes), and
//! `warning` (reason, message; the machine's Warning events). Within one step they come in
//! the order delete, create, condition, warning.
//!
//! # CronJob runs
//!
//! A document with `cronjob:` instead of `job:` ([`parse_document`], [`simulate_cron_job`])
//! runs the CronJob machine. Its child Jobs are black boxes, not simulated pod by pod: a
//! created Job starts at once (`startTime` = its creation) and, `runFor` later, ends with
//! its `result` (`Complete` or `Failed`) and `completionTime`. `jobs:` holds [`JobRule`]s:
//! the first whose `match` holds decides (`match.ordinal` is the 0-based creation order of
//! the Job over the run; a rule without `match` always matches). **A Job no rule matches
//! completes at once** (0 s, `Complete`), as a pod no rule matches succeeds at once.
//!
//! ```
//! use batch_core::simulate::{parse_document, simulate_cron_job, SimulationDocument};
//!
//! let doc = parse_document(r#"
//! start: 2024-03-04T00:00:00Z        # a Monday
//! until: 2024-03-11T00:00:00Z
//! cronjob:
//!   metadata: {name: report}
//!   spec:
//!     schedule: "0 9 * * 1-5"
//!     timeZone: Europe/Berlin
//!     jobTemplate:
//!       spec:
//!         template:
//!           spec:
//!             restartPolicy: Never
//!             containers: [{name: main, image: busybox}]
//! jobs:
//!   - runFor: 90s
//!     result: Complete
//! "#, "report.yaml").unwrap();
//! let SimulationDocument::CronJob(input) = doc else { unreachable!() };
//! let run = simulate_cron_job(&input).unwrap();
//! assert_eq!(run.jobs_created, 5);
//! assert!(run.json_lines().starts_with(
//!     r#"{"t":"2024-03-04T08:00:00.100Z","event":"jobCreate","job":"report-28492320","scheduledTime":"2024-03-04T08:00:00Z"}"#
//! ));
//! ```
//!
//! - **Preparation.** The CronJob is defaulted as the API server does
//!   ([`default_cron_job`](crate::defaults::default_cron_job)), given [`SIMULATED_UID`] when
//!   it has no UID and `creationTimestamp` = `start` when absent (so the first scheduled
//!   time is the first one strictly after `start`), and validated: an invalid CronJob is
//!   [`SimulateError::InvalidCronJob`]. A `status` in the input is the starting status.
//! - **DST.** The document's top-level `dst:` (`run-once`, the default, or `kubernetes`) is
//!   the machine's [`DstPolicy`], as `batch schedule --dst`.
//! - **The clock.** At each instant: child Jobs due to end end (`jobFinish`, in creation
//!   order); then the machine runs with the Jobs that exist and its decision is applied:
//!   Jobs in `delete` disappear at once, running or not (`jobDelete`; a Job deleted by
//!   `Replace` never finishes), the Job in `create` starts (`jobCreate`), the status is
//!   kept. While a step changes anything (a Job created or deleted, the status), the machine
//!   runs again at the same instant (upstream re-syncs on every Job and CronJob update:
//!   this is how `lastSuccessfulTime` catches up at once). Then the clock jumps to the
//!   earliest of the next Job end and the decision's `requeue_at` — the next fire time plus
//!   100 ms, as upstream wakes up, so a Job is created 100 ms after its scheduled time
//!   (but at once when a Job's end is what lets it start: `Forbid`'s late start).
//! - **The end.** A CronJob never finishes: the run goes to `until` (default: `start` +
//!   [`DEFAULT_HORIZON`], 30 days, the same bound as a Job run), or ends earlier when
//!   nothing is left that could happen (no running Job and no wake-up: a suspended
//!   CronJob).
//! - **Events.** `jobCreate` (job, scheduledTime), `jobFinish` (job, result), `jobDelete`
//!   (job), and `warning` (reason, message) for the machine's Warning events
//!   (`TooManyMissedTimes`, `MissSchedule`, …). Normal events (`SuccessfulCreate`,
//!   `JobAlreadyActive`, `SawCompletedJob`, …) are not printed: each is already visible as a
//!   `jobCreate`, `jobDelete` or `jobFinish` line, or (`JobAlreadyActive`) as the absence of
//!   one. Within one step they come in the order jobDelete, jobCreate, warning. The final
//!   line holds the [`CronJobStatus`].

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;

use crate::cron::DstPolicy;
use crate::job::IndexSet;
use crate::loader::ParseError;
use crate::model::{
    ConditionStatus, CronJob, CronJobStatus, Job, JobConditionType, JobStatus, Timestamp,
};
use crate::validation::ValidationErrors;

mod cron_engine;
mod engine;
mod input;
mod output;

/// UID given to a Job without one (pod names derive from it, so it is fixed).
pub const SIMULATED_UID: &str = "00000000-0000-0000-0000-000000000000";
/// How far a run goes without `until`.
pub const DEFAULT_HORIZON: Duration = Duration::days(30);

/// The last instant of a run: `until`, or `start` + [`DEFAULT_HORIZON`] when unset.
fn horizon(start: Timestamp, until: Option<Timestamp>) -> Result<Timestamp, SimulateError> {
    match until {
        Some(until) if until < start => Err(SimulateError::InvalidHorizon { start, until }),
        Some(until) => Ok(until),
        None => Ok(start.checked_add_signed(DEFAULT_HORIZON).unwrap_or(start)),
    }
}
/// `terminationGracePeriodSeconds` when the pod template does not set it.
pub const DEFAULT_TERMINATION_GRACE_PERIOD: Duration = Duration::seconds(30);
/// The exit code of a container killed at the end of its grace period (SIGKILL).
pub const KILLED_EXIT_CODE: i32 = 137;
/// First crash-loop back-off delay of a restarting container (kubelet).
pub const CRASH_LOOP_BASE: Duration = Duration::seconds(10);
/// Largest crash-loop back-off delay (kubelet).
pub const CRASH_LOOP_CAP: Duration = Duration::minutes(5);
/// If the machine keeps changing something this many times at one instant, the run stops
/// with [`SimulateError::Stalled`] (it would be a bug in the machine).
pub const MAX_STEPS_PER_INSTANT: usize = 10_000;

/// What to simulate: the `batch simulate` input document.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SimulationInput {
    /// When the run starts.
    pub start: Timestamp,
    /// The last instant simulated (default: `start` + [`DEFAULT_HORIZON`]).
    pub until: Option<Timestamp>,
    /// The Job, as submitted (defaults are applied by the simulator).
    pub job: Job,
    /// How pods behave: the first matching rule wins.
    pub pods: Vec<PodRule>,
}

impl SimulationInput {
    /// A simulation of `job` from `start`, with no pod rules (every pod succeeds at once).
    pub fn new(start: Timestamp, job: Job) -> Self {
        SimulationInput {
            start,
            until: None,
            job,
            pods: Vec::new(),
        }
    }
}

/// Which pods a [`PodRule`] applies to: every field given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PodMatch {
    /// The pod's completion index is one of these (never holds for NonIndexed pods).
    pub index: Option<IndexSet>,
    /// The 0-based count of earlier pods of the same index (NonIndexed: of all earlier pods).
    pub attempt: Option<u32>,
    /// The 0-based creation order of the pod.
    pub ordinal: Option<u64>,
}

impl PodMatch {
    /// Matches every pod.
    pub fn any() -> Self {
        PodMatch::default()
    }

    /// Only pods with one of these completion indexes.
    pub fn with_indexes(mut self, indexes: impl IntoIterator<Item = i32>) -> Self {
        self.index = Some(indexes.into_iter().collect());
        self
    }

    /// Only the pod with this attempt number (0 = the first pod of its index).
    pub fn with_attempt(mut self, attempt: u32) -> Self {
        self.attempt = Some(attempt);
        self
    }

    /// Only the pod with this creation ordinal.
    pub fn with_ordinal(mut self, ordinal: u64) -> Self {
        self.ordinal = Some(ordinal);
        self
    }

    /// Whether a pod with this index, attempt and ordinal matches.
    pub fn matches(&self, index: Option<i32>, attempt: u32, ordinal: u64) -> bool {
        self.index
            .as_ref()
            .is_none_or(|set| index.is_some_and(|ix| set.contains(ix)))
            && self.attempt.is_none_or(|a| a == attempt)
            && self.ordinal.is_none_or(|o| o == ordinal)
    }
}

/// A pod condition a [`PodRule`] puts on the pod when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RuleCondition {
    /// The condition type (`ConfigIssue`).
    pub type_: String,
    /// Its status (default `True`).
    pub status: ConditionStatus,
    /// Its reason (may be empty).
    pub reason: String,
}

impl RuleCondition {
    /// A `True` condition of this type.
    pub fn new(type_: impl Into<String>) -> Self {
        RuleCondition {
            type_: type_.into(),
            status: ConditionStatus::True,
            reason: String::new(),
        }
    }
}

/// How the pods a rule matches behave (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PodRule {
    /// Which pods this rule is for (the default matches every pod).
    pub matcher: PodMatch,
    /// How long the pod (or, with restartPolicy OnFailure, each run) runs.
    pub run_for: Duration,
    /// Every app container exits with this code.
    pub exit_code: Option<i32>,
    /// Exit code per container name (unlisted app containers exit 0).
    pub exit_codes: BTreeMap<String, i32>,
    /// The pod is evicted: it fails with `DisruptionTarget=True` and no exit code.
    pub evicted: bool,
    /// Conditions the pod has when it ends.
    pub conditions: Vec<RuleCondition>,
}

impl PodRule {
    /// A rule for every pod: run for `run_for`, then exit with `exit_code`.
    pub fn exit(run_for: Duration, exit_code: i32) -> Self {
        PodRule {
            run_for,
            exit_code: Some(exit_code),
            ..PodRule::default()
        }
    }

    /// A rule for every pod: run for `run_for`, then get evicted.
    pub fn evicted(run_for: Duration) -> Self {
        PodRule {
            run_for,
            evicted: true,
            ..PodRule::default()
        }
    }

    /// The same rule, restricted to the pods `matcher` matches.
    pub fn when(mut self, matcher: PodMatch) -> Self {
        self.matcher = matcher;
        self
    }
}

/// The result of a simulation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Simulation {
    /// Everything that happened, in time order.
    pub events: Vec<SimEvent>,
    /// The Job status at the end.
    pub status: JobStatus,
    /// Whether the Job finished (`Complete` or `Failed`).
    pub finished: bool,
    /// The last instant simulated.
    pub end: Timestamp,
}

/// One thing that happened, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimEvent {
    /// When.
    pub t: Timestamp,
    /// What.
    pub kind: SimEventKind,
}

/// What happened (the `event` field of the output line).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SimEventKind {
    /// `create`: the machine created a pod.
    Create {
        /// The pod's name.
        pod: String,
        /// Its completion index (Indexed Jobs).
        index: Option<i32>,
    },
    /// `exit`: a pod's run ended with an exit code (the pod may restart under OnFailure).
    Exit {
        /// The pod's name.
        pod: String,
        /// The first non-zero exit code, or 0.
        exit_code: i32,
    },
    /// `evict`: a pod failed without an exit code (evicted or marked from outside).
    Evict {
        /// The pod's name.
        pod: String,
    },
    /// `delete`: the machine deleted a pod (it is terminating).
    Delete {
        /// The pod's name.
        pod: String,
    },
    /// `condition`: a Job condition appeared or changed.
    Condition {
        /// The condition type.
        type_: JobConditionType,
        /// Its reason.
        reason: String,
    },
    /// `jobCreate`: the CronJob machine created a child Job (CronJob runs).
    JobCreate {
        /// The Job's name.
        job: String,
        /// The scheduled time it was created for.
        scheduled_time: Option<Timestamp>,
    },
    /// `jobFinish`: a child Job ended (CronJob runs).
    JobFinish {
        /// The Job's name.
        job: String,
        /// How it ended.
        result: JobResult,
    },
    /// `jobDelete`: the CronJob machine deleted a child Job (history limit, or `Replace`);
    /// it is gone at once (CronJob runs).
    JobDelete {
        /// The Job's name.
        job: String,
    },
    /// `warning`: the machine recorded a Warning event.
    Warning {
        /// The event reason.
        reason: String,
        /// The event message.
        message: String,
    },
}

/// Why a simulation could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SimulateError {
    /// The input could not be read (bad YAML, a field of the wrong type, a bad duration).
    #[error("{0}")]
    Parse(ParseError),
    /// The input asks for something this function does not do ([`parse_input`] given a
    /// CronJob document: read it with [`parse_document`]).
    #[error("{0}")]
    Unsupported(String),
    /// A pod rule is contradictory or names a container the pod template does not have.
    #[error("pods[{rule}]: {message}")]
    InvalidRule {
        /// 0-based position of the rule in `pods`.
        rule: usize,
        /// What is wrong.
        message: String,
    },
    /// The Job fails validation: the API server would refuse to create it.
    #[error("the job is invalid: {}", join_errors(.0))]
    InvalidJob(ValidationErrors),
    /// The CronJob fails validation: the API server would refuse to create it.
    #[error("the cronjob is invalid: {}", join_errors(.0))]
    InvalidCronJob(ValidationErrors),
    /// `until` is before `start`.
    #[error("until ({until}) is before start ({start})")]
    InvalidHorizon {
        /// The start.
        start: Timestamp,
        /// The horizon.
        until: Timestamp,
    },
    /// The machine kept changing its decision at one instant (a bug in the machine).
    #[error("the machine did not settle at {at} after {MAX_STEPS_PER_INSTANT} steps")]
    Stalled {
        /// The instant.
        at: Timestamp,
    },
}

fn join_errors(errors: &ValidationErrors) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl fmt::Display for SimEvent {
    /// The event as one JSON line of conformance-io.md §5 (without the newline).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        output::write_event(f, self)
    }
}

impl Simulation {
    /// The output of `batch simulate`: one JSON line per event, then the final line
    /// `{"final":{"status":{...}}}`, each ending with a newline.
    pub fn json_lines(&self) -> String {
        json_lines(&self.events, &self.final_line())
    }

    /// The final line: `{"final":{"status":{...}}}` (without the newline).
    pub fn final_line(&self) -> String {
        output::final_line(&self.status)
    }
}

fn json_lines(events: &[SimEvent], final_line: &str) -> String {
    use fmt::Write as _;
    let mut out = String::new();
    for event in events {
        let _ = writeln!(out, "{event}");
    }
    let _ = writeln!(out, "{final_line}");
    out
}

/// What to simulate for a CronJob: the `batch simulate` input document with `cronjob:`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronJobSimulationInput {
    /// When the run starts.
    pub start: Timestamp,
    /// The last instant simulated (default: `start` + [`DEFAULT_HORIZON`]).
    pub until: Option<Timestamp>,
    /// The CronJob, as submitted (defaults are applied by the simulator).
    pub cron_job: CronJob,
    /// How child Jobs behave: the first matching rule wins.
    pub jobs: Vec<JobRule>,
    /// What daylight saving time does to scheduled times (document key `dst`).
    pub dst: DstPolicy,
}

impl CronJobSimulationInput {
    /// A simulation of `cron_job` from `start`, with no Job rules (every Job completes at
    /// once) and the default DST policy ([`DstPolicy::RunOnce`]).
    pub fn new(start: Timestamp, cron_job: CronJob) -> Self {
        CronJobSimulationInput {
            start,
            until: None,
            cron_job,
            jobs: Vec::new(),
            dst: DstPolicy::default(),
        }
    }
}

/// Which child Jobs a [`JobRule`] applies to: every field given must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobMatch {
    /// The 0-based creation order of the Job over the whole run.
    pub ordinal: Option<u64>,
}

impl JobMatch {
    /// Matches every Job.
    pub fn any() -> Self {
        JobMatch::default()
    }

    /// Only the Job with this creation ordinal.
    pub fn with_ordinal(mut self, ordinal: u64) -> Self {
        self.ordinal = Some(ordinal);
        self
    }

    /// Whether the Job with this creation ordinal matches.
    pub fn matches(&self, ordinal: u64) -> bool {
        self.ordinal.is_none_or(|o| o == ordinal)
    }
}

/// How a simulated child Job ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JobResult {
    /// Condition `Complete=True`.
    #[default]
    Complete,
    /// Condition `Failed=True`.
    Failed,
}

impl JobResult {
    /// `Complete` or `Failed`, as in the input and the output.
    pub fn as_str(self) -> &'static str {
        match self {
            JobResult::Complete => "Complete",
            JobResult::Failed => "Failed",
        }
    }
}

impl fmt::Display for JobResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the child Jobs a rule matches behave: a black box that starts when it is created,
/// runs for `run_for` and then ends with `result` (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct JobRule {
    /// Which Jobs this rule is for (the default matches every Job).
    pub matcher: JobMatch,
    /// How long the Job runs, from its creation to its end.
    pub run_for: Duration,
    /// How it ends.
    pub result: JobResult,
}

impl JobRule {
    /// A rule for every Job: run for `run_for`, then end with `result`.
    pub fn new(run_for: Duration, result: JobResult) -> Self {
        JobRule {
            matcher: JobMatch::default(),
            run_for,
            result,
        }
    }

    /// The same rule, restricted to the Jobs `matcher` matches.
    pub fn when(mut self, matcher: JobMatch) -> Self {
        self.matcher = matcher;
        self
    }
}

/// A `batch simulate` input document: a Job run or a CronJob run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// One per run, read once: unboxed variants keep matching on it plain.
#[allow(clippy::large_enum_variant)]
pub enum SimulationDocument {
    /// `job:` with `pods:` rules.
    Job(SimulationInput),
    /// `cronjob:` with `jobs:` rules.
    CronJob(CronJobSimulationInput),
}

/// The result of a CronJob simulation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CronJobSimulation {
    /// Everything that happened, in time order.
    pub events: Vec<SimEvent>,
    /// The CronJob status at the end.
    pub status: CronJobStatus,
    /// How many Jobs the CronJob created.
    pub jobs_created: u64,
    /// The last instant simulated.
    pub end: Timestamp,
}

impl CronJobSimulation {
    /// The output of `batch simulate`: one JSON line per event, then the final line
    /// `{"final":{"status":{...}}}` with the CronJob status, each ending with a newline.
    pub fn json_lines(&self) -> String {
        json_lines(&self.events, &self.final_line())
    }

    /// The final line: `{"final":{"status":{...}}}` (without the newline).
    pub fn final_line(&self) -> String {
        output::final_line(&self.status)
    }
}

/// Reads a `batch simulate` input document with a Job (YAML or JSON). `origin` names the
/// source in errors (a file name). [`parse_document`] reads CronJob documents too.
///
/// # Errors
///
/// [`SimulateError::Parse`] when the document is not readable (with line and column when
/// known), [`SimulateError::Unsupported`] for a CronJob document, and
/// [`SimulateError::InvalidRule`] for a contradictory pod rule.
pub fn parse_input(src: &str, origin: &str) -> Result<SimulationInput, SimulateError> {
    match input::parse(src, origin)? {
        SimulationDocument::Job(input) => Ok(input),
        SimulationDocument::CronJob(_) => Err(SimulateError::Unsupported(
            "this is a CronJob document (`cronjob:`): read it with parse_document and run it with simulate_cron_job"
                .to_owned(),
        )),
    }
}

/// Reads a `batch simulate` input document (YAML or JSON): a Job (`job:` and `pods:`) or a
/// CronJob (`cronjob:`, `jobs:` and optionally `dst:`). `origin` names the source in errors.
///
/// # Errors
///
/// [`SimulateError::Parse`] when the document is not readable (with line and column when
/// known) or mixes the two kinds, and [`SimulateError::InvalidRule`] for a contradictory pod
/// rule.
pub fn parse_document(src: &str, origin: &str) -> Result<SimulationDocument, SimulateError> {
    input::parse(src, origin)
}

/// Runs the Job machine on a virtual clock against simulated pods.
///
/// # Errors
///
/// [`SimulateError::InvalidJob`] when the Job fails validation,
/// [`SimulateError::InvalidRule`] when a rule names a container the pod template lacks,
/// [`SimulateError::InvalidHorizon`] when `until` is before `start`, and
/// [`SimulateError::Stalled`] if the machine never settles at one instant.
pub fn simulate_job(input: &SimulationInput) -> Result<Simulation, SimulateError> {
    engine::run(input)
}

/// Runs the CronJob machine on a virtual clock; child Jobs behave as the `jobs` rules say.
///
/// # Errors
///
/// [`SimulateError::InvalidCronJob`] when the CronJob fails validation,
/// [`SimulateError::InvalidHorizon`] when `until` is before `start`, and
/// [`SimulateError::Stalled`] if the machine never settles at one instant.
pub fn simulate_cron_job(
    input: &CronJobSimulationInput,
) -> Result<CronJobSimulation, SimulateError> {
    cron_engine::run(input)
}
