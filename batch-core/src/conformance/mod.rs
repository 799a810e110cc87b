//! The shared executor conformance suite: one case per behaviour a pod executor must get
//! right, run by every executor crate against its own executor.
//!
//! **This module is for testing executors. It is not covered by semver and may change in any
//! release** (cases are added, tightened or renamed as the contract is clarified).
//!
//! # Running it
//!
//! An executor crate calls [`conformance_tests!`](crate::conformance_tests) once, in its
//! `tests/conformance.rs`, with a constructor; the macro expands to one `#[test]` per case
//! (named after the case), so every failure shows under its own name:
//!
//! ```no_run
//! //! Runs the shared conformance suite against my executor.
//! use std::sync::Arc;
//! use batch_core::clock::Clock;
//! use batch_core::conformance::{ClockMode, ShellWorkloads, Subject};
//! # use batch_core::executor::*;
//! # use batch_core::{model::PodTemplateSpec, validation::ValidationErrors};
//! # #[derive(Debug)]
//! # struct MyExecutor;
//! # impl MyExecutor {
//! #     fn with_clock(_root: &std::path::Path, _clock: Arc<dyn Clock>) -> Self { MyExecutor }
//! # }
//! # fn no<T>() -> Result<T> { Err(Error::new(ErrorKind::Unsupported, "test", "stub")) }
//! # #[async_trait::async_trait]
//! # impl Executor for MyExecutor {
//! #     fn name(&self) -> &str { "mine" }
//! #     fn capabilities(&self) -> Capabilities { Capabilities::none() }
//! #     fn check_template(&self, _: &PodTemplateSpec) -> Result<(), ValidationErrors> { Ok(()) }
//! #     async fn start(&self, _: PodRequest) -> Result<()> { no() }
//! #     async fn delete(&self, _: &str, _: Option<chrono::Duration>) -> Result<()> { no() }
//! #     async fn list(&self, _: &LabelSelector) -> Result<Vec<PodObservation>> { no() }
//! #     async fn watch(&self, _: &LabelSelector) -> Result<WatchStream> { no() }
//! #     async fn logs(&self, _: &str, _: &str) -> Result<Vec<u8>> { no() }
//! # }
//!
//! batch_core::conformance_tests! {
//!     // A closure taking the clock the executor must use (`Arc<dyn Clock>`) and returning
//!     // a future of anything `Into<Subject>`: the executor itself, or a `Subject` that also
//!     // keeps a guard (a temporary directory) alive, or `Subject::unavailable(reason)` when
//!     // the infrastructure is missing.
//!     executor: |clock: Arc<dyn Clock>| async move {
//!         let dir = std::env::temp_dir().join("my-executor-conformance");
//!         Subject::new(MyExecutor::with_clock(&dir, clock))
//!     },
//!     // Optional: how behaviours become containers (default `ShellWorkloads::new()`).
//!     workloads: ShellWorkloads::new(),
//!     // Optional: `ClockMode::Manual` (the default: cases advance a `ManualClock` to skip
//!     // back-offs, grace periods and deadlines) or `ClockMode::System` (real time; for
//!     // backends that keep their own timers, such as Docker and Kubernetes).
//!     clock: ClockMode::Manual,
//! }
//! # fn main() {}
//! ```
//!
//! The arguments come in this order; `workloads` and `clock` may be left out. The Local
//! executor's `tests/conformance.rs` is a complete example (it keeps a temporary directory
//! alive with [`Subject::with_guard`]).
//!
//! Each generated test is a plain `#[test]` that builds a multi-threaded tokio runtime with
//! two worker threads (see [`block_on`]), so the calling crate needs no tokio dependency of
//! its own. Each case gets a fresh executor from the constructor, a [`Context`] with a unique
//! name prefix, and a timeout for every wait ([`DEFAULT_TIMEOUT`], real time).
//!
//! Two environment variables tune a run without code: `BATCH_CONFORMANCE_TIMEOUT_SECS` (the
//! wait timeout) and `BATCH_CONFORMANCE_MANY_PODS` (the pod count of [`many_pods_at_once`]).
//!
//! A case can also be called directly (`conformance::exit_code_zero_succeeds_the_pod(&cx)`)
//! with a [`Context`] built by [`Context::new`].
//!
//! # Skips
//!
//! A case that needs a capability checks [`Executor::capabilities`] first. When it is
//! missing the case prints `SKIP <case>: <executor> lacks <capability>` and returns; the same
//! fact belongs in that executor's capability table. Cases that only partly depend on a
//! capability (exit codes, the killing signal) run and skip just those assertions, printing
//! `NOTE <case>: ...`. The only other skip is missing infrastructure: a constructor returning
//! [`Subject::unavailable`] makes every case print `SKIP <case>: <reason>`. Executor crates
//! decide when that must fail instead (`BATCH_TEST_REQUIRE_DOCKER=1`, …).
//!
//! # What a case does
//!
//! It builds [`PodRequest`]s directly (labels [`CONTROLLER_UID_LABEL`] and
//! [`JOB_NAME_LABEL`] set, plus [`CASE_LABEL`] so that one watch sees all of the case's
//! pods), subscribes a watch, starts the pods, waits for observations, asserts precisely
//! (phase, exit codes, signals, reasons, restart counts, logs) and deletes its pods.

// This module is test support: its assertions must panic, and its setup may too.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod cases;
mod workloads;

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;

pub use cases::*;
pub use workloads::{Behaviour, READY_MARKER, ShellWorkloads, Workloads};

use crate::clock::{Clock, ManualClock, SystemClock};
use crate::executor::{
    CONTROLLER_UID_LABEL, Capabilities, ContainerObservation, ContainerRunState, ErrorKind,
    Executor, JOB_NAME_LABEL, JobRef, LabelSelector, PodObservation, PodRequest, WatchEvent,
    WatchStream,
};
use crate::model::{Container, PodSpec, RestartPolicy, Timestamp};

/// Label the suite puts on every pod of a case (value: the case's prefix).
pub const CASE_LABEL: &str = "conformance.batch/case";

/// How long a case waits for any one expected observation (real time) by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// How many pods [`many_pods_at_once`] starts by default.
pub const DEFAULT_MANY_PODS: usize = 100;

/// Which clock the executor under test gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClockMode {
    /// A [`ManualClock`]: cases advance it to skip back-offs, grace periods and deadlines.
    #[default]
    Manual,
    /// The [`SystemClock`]: cases wait in real time.
    System,
}

/// How a case makes time pass for the executor under test.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ClockControl {
    /// Real time: passing time means sleeping.
    System,
    /// A manual clock the executor was given: passing time means advancing it.
    Manual(ManualClock),
}

impl ClockControl {
    /// The control for a mode (a manual clock starts at the current wall time).
    pub fn new(mode: ClockMode) -> Self {
        match mode {
            ClockMode::System => ClockControl::System,
            ClockMode::Manual => ClockControl::Manual(ManualClock::new(SystemClock.now())),
        }
    }

    /// The clock to give the executor.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            ClockControl::System => Arc::new(SystemClock),
            ClockControl::Manual(c) => Arc::new(c.clone()),
        }
    }

    /// The executor's current time.
    pub fn now(&self) -> Timestamp {
        match self {
            ClockControl::System => SystemClock.now(),
            ClockControl::Manual(c) => c.now(),
        }
    }

    /// Whether time passes only when a case advances it.
    pub fn is_manual(&self) -> bool {
        matches!(self, ClockControl::Manual(_))
    }

    /// Makes `by` pass: advances the manual clock, or sleeps in real time.
    pub async fn pass(&self, by: chrono::Duration) {
        match self {
            ClockControl::System => {
                tokio::time::sleep(by.to_std().unwrap_or(Duration::ZERO)).await;
            }
            ClockControl::Manual(c) => {
                c.advance(by);
                tokio::task::yield_now().await;
            }
        }
    }
}

/// The executor a constructor hands to the suite, with anything that must live as long as it.
pub struct Subject {
    executor: Result<Arc<dyn Executor>, String>,
    guards: Vec<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subject")
            .field("executor", &self.executor)
            .field("guards", &self.guards.len())
            .finish()
    }
}

impl Subject {
    /// The executor under test.
    pub fn new(executor: impl Executor) -> Self {
        Subject::from_arc(Arc::new(executor))
    }

    /// The executor under test, already shared.
    pub fn from_arc(executor: Arc<dyn Executor>) -> Self {
        Subject {
            executor: Ok(executor),
            guards: Vec::new(),
        }
    }

    /// The infrastructure is missing: every case prints `SKIP <case>: <reason>` and passes.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Subject {
            executor: Err(reason.into()),
            guards: Vec::new(),
        }
    }

    /// Keeps `guard` (a temporary directory, a server handle) alive until the case ends; it
    /// is dropped after the executor.
    #[must_use]
    pub fn with_guard(mut self, guard: impl Any + Send + Sync) -> Self {
        self.guards.push(Box::new(guard));
        self
    }
}

impl<E: Executor> From<E> for Subject {
    fn from(executor: E) -> Self {
        Subject::new(executor)
    }
}

/// Everything a case gets: the executor under test, time control, timeouts, a unique name
/// prefix and the workloads adapter.
#[non_exhaustive]
pub struct Context {
    /// The executor under test.
    pub executor: Arc<dyn Executor>,
    /// Makes time pass for the executor.
    pub clock: ClockControl,
    /// How long to wait (real time) for any one expected observation.
    pub timeout: Duration,
    /// A prefix unique to this case run: pod names, job names and UIDs start with it. A
    /// DNS-1123 label of at most 40 characters.
    pub prefix: String,
    /// Turns behaviours into containers.
    pub workloads: Arc<dyn Workloads>,
    /// How many pods [`many_pods_at_once`] starts.
    pub many_pods: usize,
    case: String,
    started: std::sync::Mutex<BTreeSet<String>>,
    // Dropped last, after the executor.
    _guards: Vec<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("executor", &self.executor)
            .field("clock", &self.clock)
            .field("timeout", &self.timeout)
            .field("prefix", &self.prefix)
            .field("workloads", &self.workloads)
            .field("many_pods", &self.many_pods)
            .finish_non_exhaustive()
    }
}

static NEXT_RUN: AtomicU32 = AtomicU32::new(0);

fn unique_prefix(case: &str) -> String {
    // The first three letters of each word: a DNS-1123 label whatever the case's name.
    let short: String = case
        .split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(|w| w.chars().take(3))
        .map(|c| c.to_ascii_lowercase())
        .take(24)
        .collect();
    let short = if short.is_empty() {
        "case".to_owned()
    } else {
        short
    };
    let n = NEXT_RUN.fetch_add(1, Ordering::Relaxed);
    format!("{short}-{:x}-{n:x}", std::process::id())
}

impl Context {
    /// A context for running `case` against `executor`, which must use `clock.clock()`. The
    /// timeout and pod count come from the environment variables of the
    /// [module docs](crate::conformance), else the defaults.
    pub fn new(
        case: &str,
        executor: Arc<dyn Executor>,
        clock: ClockControl,
        workloads: Arc<dyn Workloads>,
    ) -> Self {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        Context {
            executor,
            clock,
            timeout: env("BATCH_CONFORMANCE_TIMEOUT_SECS")
                .map_or(DEFAULT_TIMEOUT, Duration::from_secs),
            prefix: unique_prefix(case),
            workloads,
            many_pods: env("BATCH_CONFORMANCE_MANY_PODS")
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(DEFAULT_MANY_PODS),
            case: case.to_owned(),
            started: std::sync::Mutex::new(BTreeSet::new()),
            _guards: Vec::new(),
        }
    }

    /// Sets the wait timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many pods [`many_pods_at_once`] starts.
    #[must_use]
    pub fn with_many_pods(mut self, n: usize) -> Self {
        self.many_pods = n;
        self
    }

    /// Builds the executor with `make` (given the clock it must use) and the context for
    /// `case`; `None` (after printing `SKIP <case>: <reason>`) when the constructor says the
    /// infrastructure is missing. Used by [`conformance_tests!`](crate::conformance_tests).
    pub async fn build<F, Fut, S>(
        case: &str,
        mode: ClockMode,
        workloads: impl Workloads,
        make: F,
    ) -> Option<Context>
    where
        F: FnOnce(Arc<dyn Clock>) -> Fut,
        Fut: Future<Output = S>,
        S: Into<Subject>,
    {
        let clock = ClockControl::new(mode);
        let subject: Subject = make(clock.clock()).await.into();
        match subject.executor {
            Ok(executor) => {
                let mut cx = Context::new(case, executor, clock, Arc::new(workloads));
                cx._guards = subject.guards;
                Some(cx)
            }
            Err(reason) => {
                println!("SKIP {case}: {reason}");
                None
            }
        }
    }

    /// The case this context runs.
    pub fn case(&self) -> &str {
        &self.case
    }

    /// The executor's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.executor.capabilities()
    }

    /// Prints the skip line and returns `false` when `has` is false.
    pub fn require(&self, capability: &str, has: bool) -> bool {
        if !has {
            println!(
                "SKIP {}: {} lacks {capability}",
                self.case,
                self.executor.name()
            );
        }
        has
    }

    /// Prints a note that some assertions of this case do not apply.
    pub fn note(&self, text: &str) {
        println!("NOTE {}: {} {text}", self.case, self.executor.name());
    }

    /// The job UID of this case's default job.
    pub fn job_uid(&self) -> String {
        format!("{}-uid", self.prefix)
    }

    /// A container named `name` that behaves as `behaviour`.
    pub fn container(&self, name: &str, behaviour: Behaviour) -> Container {
        let mut c = self.workloads.container(name, &behaviour);
        c.name = name.to_owned();
        c
    }

    /// A pod request named `<prefix>-<suffix>` of this case's default job, `restartPolicy:
    /// Never`, with these app containers.
    pub fn pod(&self, suffix: &str, containers: Vec<Container>) -> PodRequest {
        self.pod_of_job(suffix, "", containers)
    }

    /// A pod request named `<prefix>-<suffix>` of job `<prefix><job>` (UID
    /// `<prefix><job>-uid`), `restartPolicy: Never`, with these app containers.
    pub fn pod_of_job(&self, suffix: &str, job: &str, containers: Vec<Container>) -> PodRequest {
        let job_name = format!("{}{job}", self.prefix);
        let uid = format!("{job_name}-uid");
        let labels = BTreeMap::from([
            (CONTROLLER_UID_LABEL.to_owned(), uid.clone()),
            (JOB_NAME_LABEL.to_owned(), job_name.clone()),
            (CASE_LABEL.to_owned(), self.prefix.clone()),
        ]);
        PodRequest {
            name: format!("{}-{suffix}", self.prefix),
            job: JobRef {
                namespace: String::new(),
                name: job_name,
                uid,
            },
            index: None,
            labels,
            annotations: BTreeMap::new(),
            hostname: None,
            spec: PodSpec {
                containers,
                restart_policy: RestartPolicy::Never,
                ..PodSpec::default()
            },
        }
    }

    /// The selector for every pod of this case.
    pub fn case_selector(&self) -> LabelSelector {
        LabelSelector::from([(CASE_LABEL.to_owned(), self.prefix.clone())])
    }

    /// Subscribes a watch on every pod of this case.
    pub async fn watch(&self) -> PodWatch<'_> {
        self.watch_selector(self.case_selector()).await
    }

    /// Subscribes a watch on the pods `selector` matches.
    pub async fn watch_selector(&self, selector: LabelSelector) -> PodWatch<'_> {
        let stream = match self.executor.watch(&selector).await {
            Ok(s) => s,
            Err(e) => panic!("{}: watch({selector:?}) failed: {e}", self.case),
        };
        PodWatch {
            cx: self,
            selector,
            stream,
            latest: BTreeMap::new(),
            history: BTreeMap::new(),
            gone: BTreeSet::new(),
            events: 0,
        }
    }

    /// Starts a pod, panicking when the executor returns an error; remembers it for
    /// [`cleanup`](Context::cleanup).
    pub async fn start(&self, pod: PodRequest) {
        let name = pod.name.clone();
        self.started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.clone());
        if let Err(e) = self.executor.start(pod).await {
            panic!(
                "{}: start({name}) returned an error (a pod that cannot run must be an observed \
                 failure, and a new name must be accepted): {e}",
                self.case
            );
        }
    }

    /// The logs of a container as text, panicking on an error.
    pub async fn logs(&self, pod: &str, container: &str) -> String {
        match self.executor.logs(pod, container).await {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => panic!("{}: logs({pod}, {container}) failed: {e}", self.case),
        }
    }

    /// Waits until the container's logs contain `text` (real time, up to the timeout).
    pub async fn wait_for_log(&self, pod: &str, container: &str, text: &str) {
        let give_up = tokio::time::Instant::now() + self.timeout;
        loop {
            let logs = self.logs(pod, container).await;
            if logs.contains(text) {
                return;
            }
            if tokio::time::Instant::now() >= give_up {
                panic!(
                    "{}: container {container} of pod {pod} did not log {text:?} within {:?}; \
                     logs so far: {logs:?}",
                    self.case, self.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until a container that prints [`READY_MARKER`] has printed it, so that a stop
    /// request reaches its handler: through the logs, or (without the `logs` capability) by
    /// waiting a second of real time.
    pub async fn wait_until_ready(&self, pod: &str, container: &str) {
        if self.capabilities().logs {
            self.wait_for_log(pod, container, READY_MARKER).await;
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Deletes every pod this case started that still exists (grace period zero), ignoring
    /// `NotFound`.
    pub async fn cleanup(&self) {
        let names: Vec<String> = self
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        let deletes = names.iter().map(|name| async move {
            match self
                .executor
                .delete(name, Some(chrono::Duration::zero()))
                .await
            {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => panic!("{}: cleanup: delete({name}) failed: {e}", self.case),
            }
        });
        futures_util::future::join_all(deletes).await;
        // Deleted pods go away: an executor whose pods outlive its process (an engine's
        // containers) must not leave them behind.
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let left: Vec<String> = match self.executor.list(&self.case_selector()).await {
                Ok(pods) => pods.into_iter().map(|p| p.name).collect(),
                Err(e) => panic!("{}: cleanup: list failed: {e}", self.case),
            };
            if left.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "{}: cleanup: pods still listed {:?} after being deleted: {left:?}",
                    self.case, self.timeout
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A watch on some pods, keeping the latest observation and the history of each.
pub struct PodWatch<'a> {
    cx: &'a Context,
    selector: LabelSelector,
    stream: WatchStream,
    latest: BTreeMap<String, PodObservation>,
    history: BTreeMap<String, Vec<PodObservation>>,
    gone: BTreeSet<String>,
    events: usize,
}

impl fmt::Debug for PodWatch<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodWatch")
            .field("selector", &self.selector)
            .field("latest", &self.latest)
            .field("gone", &self.gone)
            .finish_non_exhaustive()
    }
}

/// How long a manual-clock wait stays quiet before it advances the clock.
const QUIET: Duration = Duration::from_millis(50);

impl PodWatch<'_> {
    /// The latest observation of a pod, if any.
    pub fn latest(&self, pod: &str) -> Option<&PodObservation> {
        self.latest.get(pod)
    }

    /// Every observation of a pod received so far, in order.
    pub fn history(&self, pod: &str) -> &[PodObservation] {
        self.history.get(pod).map_or(&[], Vec::as_slice)
    }

    /// Whether the watch reported the pod gone.
    pub fn is_gone(&self, pod: &str) -> bool {
        self.gone.contains(pod)
    }

    /// How many events arrived so far.
    pub fn event_count(&self) -> usize {
        self.events
    }

    fn record(&mut self, event: WatchEvent) {
        self.events += 1;
        match event {
            WatchEvent::Applied(obs) => {
                let obs = *obs;
                assert!(
                    crate::executor::selector_matches(&self.selector, &obs.labels),
                    "{}: a watch on {:?} delivered pod {} whose labels {:?} do not match",
                    self.cx.case,
                    self.selector,
                    obs.name,
                    obs.labels
                );
                self.gone.remove(&obs.name);
                self.history
                    .entry(obs.name.clone())
                    .or_default()
                    .push(obs.clone());
                self.latest.insert(obs.name.clone(), obs);
            }
            WatchEvent::Deleted { name } => {
                self.latest.remove(&name);
                self.gone.insert(name);
            }
            // A later kind of event: nothing this suite waits for.
            #[allow(unreachable_patterns)]
            _ => {}
        }
    }

    async fn relist(&mut self) {
        match self.cx.executor.list(&self.selector).await {
            Ok(pods) => {
                for obs in pods {
                    self.record(WatchEvent::Applied(Box::new(obs)));
                }
            }
            Err(e) => panic!("{}: list after a watch error failed: {e}", self.cx.case),
        }
    }

    /// Receives one event, waiting at most `wait`; `false` when none came.
    async fn next(&mut self, wait: Duration) -> bool {
        match tokio::time::timeout(wait, self.stream.next()).await {
            Err(_) => false,
            Ok(Some(Ok(event))) => {
                self.record(event);
                true
            }
            Ok(Some(Err(e))) => {
                println!(
                    "NOTE {}: watch reported an error, listing again: {e}",
                    self.cx.case
                );
                self.relist().await;
                true
            }
            Ok(None) => panic!(
                "{}: the watch stream on {:?} ended while waiting",
                self.cx.case, self.selector
            ),
        }
    }

    /// Takes every event that is already waiting, without blocking for long.
    pub async fn drain(&mut self) {
        while self.next(Duration::from_millis(20)).await {}
    }

    /// Waits until `done` holds. With `pass_time`, time is made to pass while waiting: a
    /// manual clock is advanced by `pass_time` whenever no event arrived for a moment (a
    /// system clock passes on its own). Panics with `what` and the pods' latest states after
    /// the context's timeout.
    pub async fn until(
        &mut self,
        what: &str,
        pass_time: Option<chrono::Duration>,
        mut done: impl FnMut(&Self) -> bool,
    ) {
        let give_up = tokio::time::Instant::now() + self.cx.timeout;
        loop {
            if done(self) {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= give_up {
                panic!(
                    "{}: timed out after {:?} waiting for {what}; latest observations:\n{}",
                    self.cx.case,
                    self.cx.timeout,
                    self.describe_all()
                );
            }
            match (pass_time, &self.cx.clock) {
                (Some(step), ClockControl::Manual(clock)) => {
                    if !self.next(QUIET.min(give_up - now)).await {
                        clock.advance(step);
                    }
                }
                _ => {
                    self.next(give_up - now).await;
                }
            }
        }
    }

    /// Waits until the pod is observed in a terminal phase and returns that observation.
    pub async fn terminal(
        &mut self,
        pod: &str,
        pass_time: Option<chrono::Duration>,
    ) -> PodObservation {
        let what = format!("pod {pod} to reach a terminal phase");
        self.until(&what, pass_time, |w| {
            w.latest(pod).is_some_and(|o| o.phase.is_terminal())
        })
        .await;
        self.latest[pod].clone()
    }

    /// Waits until the watch reports the pod gone.
    pub async fn gone(&mut self, pod: &str, pass_time: Option<chrono::Duration>) {
        let what = format!("pod {pod} to be reported deleted (WatchEvent::Deleted)");
        self.until(&what, pass_time, |w| w.is_gone(pod)).await;
    }

    /// The latest state of every pod, one line each, for failure messages.
    pub fn describe_all(&self) -> String {
        let mut out = String::new();
        for obs in self.latest.values() {
            out.push_str("  ");
            out.push_str(&describe(obs));
            out.push('\n');
        }
        for name in &self.gone {
            out.push_str(&format!("  {name}: gone\n"));
        }
        if out.is_empty() {
            out.push_str("  (no pod observed)\n");
        }
        out
    }
}

/// A one-line description of an observation, for failure messages.
pub fn describe(obs: &PodObservation) -> String {
    let containers: Vec<String> = obs
        .containers
        .iter()
        .map(|c| {
            let state = match &c.state {
                ContainerRunState::Waiting { reason, .. } => format!("Waiting({reason})"),
                ContainerRunState::Running { .. } => "Running".to_owned(),
                ContainerRunState::Terminated(t) => format!(
                    "Terminated(exit {}, signal {:?}, reason {:?})",
                    t.exit_code, t.signal, t.reason
                ),
                #[allow(unreachable_patterns)]
                other => format!("{other:?}"),
            };
            let last = c
                .last_state
                .as_ref()
                .map(|t| format!(" last=exit {}", t.exit_code))
                .unwrap_or_default();
            format!(
                "{}[{:?}] {state} restarts={}{last}",
                c.name, c.kind, c.restart_count
            )
        })
        .collect();
    format!(
        "{}: phase={:?} reason={:?} deleting={} containers=[{}]",
        obs.name,
        obs.phase,
        obs.reason,
        obs.deleting,
        containers.join(", ")
    )
}

/// The named container of an observation, panicking (with the observation) when missing.
pub fn container<'o>(obs: &'o PodObservation, name: &str) -> &'o ContainerObservation {
    match obs.containers.iter().find(|c| c.name == name) {
        Some(c) => c,
        None => panic!(
            "pod {} has no container {name}: {}",
            obs.name,
            describe(obs)
        ),
    }
}

/// Runs a future to completion on a fresh multi-threaded tokio runtime with two worker
/// threads and every driver enabled. Each test that
/// [`conformance_tests!`](crate::conformance_tests) generates runs its case with this.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime for a conformance case");
    runtime.block_on(future)
}

/// Expands to one `#[test]` per conformance case, each running the case against a fresh
/// executor built by the given constructor:
/// `conformance_tests! { executor: <closure>, workloads: <adapter>, clock: <ClockMode> }`,
/// the last two optional. See the [module docs](crate::conformance) for an example.
///
/// Every case of the suite is listed here, so adding a case adds a test to every executor
/// crate (a generated test also checks that this list matches
/// [`CASES`](crate::conformance::CASES)).
#[macro_export]
macro_rules! conformance_tests {
    (
        executor: $make:expr
        $(, workloads: $workloads:expr)?
        $(, clock: $clock:expr)?
        $(,)?
    ) => {
        $crate::__conformance_tests! {
            make: ($make),
            workloads: ($crate::__conformance_or!($($workloads)?; $crate::conformance::ShellWorkloads::new())),
            clock: ($crate::__conformance_or!($($clock)?; $crate::conformance::ClockMode::Manual)),
            cases: [
                exit_code_zero_succeeds_the_pod,
                nonzero_exit_code_fails_the_pod_and_is_reported,
                a_container_killed_by_a_signal_reports_128_plus_the_signal,
                env_and_completion_index_reach_the_container,
                hostname_is_set,
                init_containers_run_in_order_before_app_containers,
                failed_init_container_fails_the_pod_with_restart_never,
                sidecar_starts_first_and_is_stopped_after_app_containers_finish,
                on_failure_restarts_the_container_in_place_and_counts_restarts,
                delete_sends_sigterm_then_kills_after_grace_period,
                delete_of_a_process_that_exits_on_sigterm_is_quick,
                pod_active_deadline_fails_the_pod,
                logs_hold_stdout_and_stderr,
                list_returns_pods_by_label_for_adoption,
                watch_reports_every_transition_to_terminal,
                start_failure_is_a_failed_pod_not_an_error,
                starting_an_existing_name_is_already_exists,
                deleting_an_unknown_pod_is_not_found,
                deleting_a_finished_pod_removes_it_and_its_logs,
                many_pods_at_once,
                memory_limit_is_enforced_and_reported_as_oomkilled,
            ],
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_or {
    (; $default:expr) => {
        $default
    };
    ($value:expr; $default:expr) => {
        $value
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    (
        make: ($make:expr),
        workloads: ($workloads:expr),
        clock: ($clock:expr),
        cases: [$($case:ident),* $(,)?],
    ) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::block_on(async {
                    let Some(cx) = $crate::conformance::Context::build(
                        stringify!($case),
                        $clock,
                        $workloads,
                        $make,
                    )
                    .await
                    else {
                        return;
                    };
                    $crate::conformance::$case(&cx).await;
                });
            }
        )*

        #[test]
        fn conformance_suite_lists_every_case() {
            let listed: &[&str] = &[$(stringify!($case)),*];
            assert_eq!(listed, $crate::conformance::CASES);
        }
    };
}

/// The name of every case, in the order the macro generates them.
pub const CASES: &[&str] = &[
    "exit_code_zero_succeeds_the_pod",
    "nonzero_exit_code_fails_the_pod_and_is_reported",
    "a_container_killed_by_a_signal_reports_128_plus_the_signal",
    "env_and_completion_index_reach_the_container",
    "hostname_is_set",
    "init_containers_run_in_order_before_app_containers",
    "failed_init_container_fails_the_pod_with_restart_never",
    "sidecar_starts_first_and_is_stopped_after_app_containers_finish",
    "on_failure_restarts_the_container_in_place_and_counts_restarts",
    "delete_sends_sigterm_then_kills_after_grace_period",
    "delete_of_a_process_that_exits_on_sigterm_is_quick",
    "pod_active_deadline_fails_the_pod",
    "logs_hold_stdout_and_stderr",
    "list_returns_pods_by_label_for_adoption",
    "watch_reports_every_transition_to_terminal",
    "start_failure_is_a_failed_pod_not_an_error",
    "starting_an_existing_name_is_already_exists",
    "deleting_an_unknown_pod_is_not_found",
    "deleting_a_finished_pod_removes_it_and_its_logs",
    "many_pods_at_once",
    "memory_limit_is_enforced_and_reported_as_oomkilled",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_short_unique_dns_labels() {
        let a = unique_prefix("sidecar_starts_first_and_is_stopped_after_app_containers_finish");
        let b = unique_prefix("sidecar_starts_first_and_is_stopped_after_app_containers_finish");
        assert_ne!(a, b);
        assert!(a.len() <= 40, "{a}");
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
    }
}
