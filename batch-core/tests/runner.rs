//! The runner's semantics against in-test executors.
//!
//! These executors are test doubles, used here only because batch-core cannot depend on a
//! real executor crate (they depend on batch-core): `Scripted` holds pods in memory whose
//! fate the test decides (succeed, fail, vanish), so each runner rule can be shown
//! deterministically; `Failing` and the fault switches of `Scripted` inject executor errors
//! that a real backend produces only under outages. The same runner is tested against real
//! processes in `executor-local/tests/runner.rs`.
#![cfg(feature = "runtime")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use batch_core::clock::{Clock, ManualClock, SystemClock};
use batch_core::executor::{
    Capabilities, ContainerKind, ContainerObservation, ContainerRunState, Error, ErrorKind,
    Executor, LabelSelector, PodObservation, PodRequest, Result, Terminated, WatchEvent,
    WatchStream, selector_matches,
};
use batch_core::job::PodPhase;
use batch_core::model::{ConditionStatus, CronJob, Job, JobConditionType, PodTemplateSpec};
use batch_core::runner::{
    CronJobHandle, JobHandle, RunError, RunEvent, RunEventKind, Runner, RunnerOptions, SubmitError,
};
use batch_core::validation::{FieldError, FieldPath, ValidationErrors};
use chrono::{Duration, TimeZone, Utc};
use tokio::sync::{broadcast, mpsc};

// ---------------------------------------------------------------------------------------
// Test doubles
// ---------------------------------------------------------------------------------------

type Watcher = (LabelSelector, mpsc::UnboundedSender<Result<WatchEvent>>);

#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<String, PodObservation>,
    watchers: Vec<Watcher>,
    /// Fail this many of the next starts (transient).
    fail_starts: usize,
    /// Fail this many of the next deletes (transient).
    fail_deletes: usize,
    /// Every call fails (an outage).
    down: bool,
    starts: usize,
}

impl State {
    fn notify(&mut self, event: &WatchEvent, labels: &BTreeMap<String, String>) {
        self.watchers.retain(|(selector, tx)| {
            !selector_matches(selector, labels) || tx.send(Ok(event.clone())).is_ok()
        });
    }

    fn apply(&mut self, obs: PodObservation) {
        let labels = obs.labels.clone();
        self.pods.insert(obs.name.clone(), obs.clone());
        self.notify(&WatchEvent::Applied(Box::new(obs)), &labels);
    }

    fn remove(&mut self, name: &str) {
        if let Some(obs) = self.pods.remove(name) {
            self.notify(
                &WatchEvent::Deleted {
                    name: name.to_owned(),
                },
                &obs.labels,
            );
        }
    }
}

/// Pods held in memory: they run until the test ends them.
#[derive(Debug, Default)]
struct Scripted {
    state: Mutex<State>,
}

fn unavailable(operation: &'static str) -> Error {
    Error::new(ErrorKind::Unavailable, operation, "backend down")
}

fn terminated(code: i32) -> ContainerRunState {
    ContainerRunState::Terminated(Terminated {
        exit_code: code,
        reason: if code == 0 { "Completed" } else { "Error" }.to_owned(),
        ..Terminated::default()
    })
}

impl Scripted {
    fn new() -> Arc<Self> {
        Arc::new(Scripted::default())
    }

    /// The pods that have not ended, in name order.
    fn running(&self) -> Vec<String> {
        let s = self.state.lock().unwrap();
        s.pods
            .values()
            .filter(|p| !p.phase.is_terminal())
            .map(|p| p.name.clone())
            .collect()
    }

    fn pod(&self, name: &str) -> Option<PodObservation> {
        self.state.lock().unwrap().pods.get(name).cloned()
    }

    fn count(&self) -> usize {
        self.state.lock().unwrap().pods.len()
    }

    fn starts(&self) -> usize {
        self.state.lock().unwrap().starts
    }

    /// Ends a pod's only container with `code`.
    fn exit(&self, name: &str, code: i32) {
        let mut s = self.state.lock().unwrap();
        let Some(mut obs) = s.pods.get(name).cloned() else {
            panic!("no pod {name}")
        };
        obs.phase = if code == 0 {
            PodPhase::Succeeded
        } else {
            PodPhase::Failed
        };
        obs.ready = false;
        obs.containers[0].state = terminated(code);
        s.apply(obs);
    }

    /// The pod disappears without ever reporting an end.
    fn vanish(&self, name: &str) {
        self.state.lock().unwrap().remove(name);
    }

    fn fail_next_starts(&self, n: usize) {
        self.state.lock().unwrap().fail_starts = n;
    }

    fn fail_next_deletes(&self, n: usize) {
        self.state.lock().unwrap().fail_deletes = n;
    }

    /// An outage: every call fails and every watch ends.
    fn go_down(&self) {
        let mut s = self.state.lock().unwrap();
        s.down = true;
        s.watchers.clear();
    }

    /// Every watch reports an error (and goes on).
    fn break_watches(&self) {
        let s = self.state.lock().unwrap();
        for (_, tx) in &s.watchers {
            let _ = tx.send(Err(unavailable("watch")));
        }
    }

    fn come_back(&self) {
        self.state.lock().unwrap().down = false;
    }
}

#[async_trait::async_trait]
impl Executor for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        if template.spec.volumes.is_empty() {
            Ok(())
        } else {
            Err(ValidationErrors(vec![FieldError::forbidden(
                FieldPath::new("template").child("spec").child("volumes"),
                "volumes are not supported",
            )]))
        }
    }

    async fn start(&self, pod: PodRequest) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if s.down {
            return Err(unavailable("start"));
        }
        if s.fail_starts > 0 {
            s.fail_starts -= 1;
            return Err(unavailable("start"));
        }
        if s.pods.contains_key(&pod.name) {
            return Err(Error::new(ErrorKind::AlreadyExists, "start", "exists"));
        }
        s.starts += 1;
        let obs = PodObservation {
            name: pod.name.clone(),
            uid: pod.name.clone(),
            labels: pod.labels.clone(),
            annotations: pod.annotations.clone(),
            phase: PodPhase::Running,
            ready: true,
            containers: vec![ContainerObservation {
                name: pod.spec.containers[0].name.clone(),
                kind: ContainerKind::App,
                state: ContainerRunState::Running { started_at: None },
                ready: true,
                ..ContainerObservation::default()
            }],
            ..PodObservation::default()
        };
        s.apply(obs);
        Ok(())
    }

    /// Running pods are killed at once (as if the grace period ran out: exit 137), then
    /// removed.
    async fn delete(&self, name: &str, _grace: Option<chrono::Duration>) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        if s.down {
            return Err(unavailable("delete"));
        }
        if s.fail_deletes > 0 {
            s.fail_deletes -= 1;
            return Err(unavailable("delete"));
        }
        let Some(mut obs) = s.pods.get(name).cloned() else {
            return Err(Error::new(ErrorKind::NotFound, "delete", "no such pod"));
        };
        if !obs.phase.is_terminal() {
            obs.deleting = true;
            obs.phase = PodPhase::Failed;
            obs.containers[0].state = terminated(137);
            s.apply(obs);
        }
        s.remove(name);
        Ok(())
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>> {
        let s = self.state.lock().unwrap();
        if s.down {
            return Err(unavailable("list"));
        }
        Ok(s.pods
            .values()
            .filter(|p| selector_matches(selector, &p.labels))
            .cloned()
            .collect())
    }

    async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream> {
        let mut s = self.state.lock().unwrap();
        if s.down {
            return Err(unavailable("watch"));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        s.watchers.push((selector.clone(), tx));
        Ok(Box::pin(futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|e| (e, rx)) },
        )))
    }

    async fn logs(&self, _pod: &str, _container: &str) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }
}

/// Every call fails.
#[derive(Debug, Default)]
struct Failing {
    calls: Mutex<usize>,
}

#[async_trait::async_trait]
impl Executor for Failing {
    fn name(&self) -> &str {
        "failing"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }
    fn check_template(&self, _: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        Ok(())
    }
    async fn start(&self, _: PodRequest) -> Result<()> {
        *self.calls.lock().unwrap() += 1;
        Err(unavailable("start"))
    }
    async fn delete(&self, _: &str, _: Option<chrono::Duration>) -> Result<()> {
        *self.calls.lock().unwrap() += 1;
        Err(unavailable("delete"))
    }
    async fn list(&self, _: &LabelSelector) -> Result<Vec<PodObservation>> {
        *self.calls.lock().unwrap() += 1;
        Err(unavailable("list"))
    }
    async fn watch(&self, _: &LabelSelector) -> Result<WatchStream> {
        *self.calls.lock().unwrap() += 1;
        Err(unavailable("watch"))
    }
    async fn logs(&self, _: &str, _: &str) -> Result<Vec<u8>> {
        *self.calls.lock().unwrap() += 1;
        Err(unavailable("logs"))
    }
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn t0() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

fn job(yaml: &str) -> Job {
    serde_norway::from_str(yaml).unwrap()
}

fn runner(executor: Arc<dyn Executor>, clock: &ManualClock) -> Runner {
    Runner::new(executor, Arc::new(clock.clone()))
}

/// Waits (yielding to the runner) until `f` holds. The timeout only turns a hang into a
/// failure; nothing here depends on how long things take.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let done = tokio::time::timeout(StdDuration::from_secs(30), async {
        while !f() {
            tokio::time::sleep(StdDuration::from_millis(1)).await;
        }
    })
    .await;
    assert!(done.is_ok(), "timed out waiting for: {what}");
}

/// Every event received so far.
fn drain(rx: &mut broadcast::Receiver<RunEvent>, into: &mut Vec<RunEvent>) {
    while let Ok(e) = rx.try_recv() {
        into.push(e);
    }
}

/// Waits until an event matching `f` has been received.
async fn until_event(
    rx: &mut broadcast::Receiver<RunEvent>,
    seen: &mut Vec<RunEvent>,
    what: &str,
    f: impl Fn(&RunEvent) -> bool,
) {
    until(what, || {
        drain(rx, seen);
        seen.iter().any(&f)
    })
    .await;
}

/// The time the runner sleeps until, once it sleeps.
async fn next_wake(clock: &ManualClock) -> chrono::DateTime<Utc> {
    until("the runner sleeps", || clock.next_deadline().is_some()).await;
    clock.next_deadline().unwrap()
}

fn kinds(events: &[RunEvent]) -> Vec<&RunEventKind> {
    events.iter().map(|e| &e.kind).collect()
}

// ---------------------------------------------------------------------------------------
// Compile-time checks
// ---------------------------------------------------------------------------------------

fn assert_send_sync<T: Send + Sync>() {}
fn assert_send<T: Send>(_: &T) {}

#[test]
fn runner_handles_and_their_futures_are_send_and_sync() {
    assert_send_sync::<Runner>();
    assert_send_sync::<JobHandle>();
    assert_send_sync::<CronJobHandle>();
    assert_send_sync::<RunEvent>();
    assert_send_sync::<SubmitError>();
    assert_send_sync::<RunError>();
    // Never called: only compiled.
    fn _futures(job: &JobHandle, cron: &CronJobHandle) {
        assert_send(&job.wait());
        assert_send(&job.suspend());
        assert_send(&job.resume());
        assert_send(&job.delete());
        assert_send(&cron.suspend());
        assert_send(&cron.resume());
        assert_send(&cron.stop());
    }
    let _ = _futures as fn(&JobHandle, &CronJobHandle);
}

// ---------------------------------------------------------------------------------------
// Submitting
// ---------------------------------------------------------------------------------------

const SIMPLE: &str = "
metadata: {name: simple}
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";

#[test]
fn submitting_outside_a_runtime_is_an_error() {
    let clock = ManualClock::new(t0());
    let r = runner(Scripted::new(), &clock);
    assert!(matches!(
        r.submit_job(job(SIMPLE)),
        Err(SubmitError::NoRuntime)
    ));
}

#[tokio::test]
async fn invalid_jobs_and_unsupported_templates_are_refused_with_their_paths() {
    let clock = ManualClock::new(t0());
    let r = runner(Scripted::new(), &clock);
    let bad = job("
metadata: {name: bad}
spec:
  completions: -1
  template: {spec: {restartPolicy: Always, containers: [{name: main, image: busybox}]}}
");
    let Err(SubmitError::Invalid(errors)) = r.submit_job(bad) else {
        panic!("an invalid job is refused")
    };
    let text = SubmitError::Invalid(errors.clone()).to_string();
    assert!(text.contains("spec.completions"), "{text}");
    assert!(text.contains("spec.template.spec.restartPolicy"), "{text}");

    let volumes = job("
metadata: {name: volumes}
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}],
                    volumes: [{name: data, emptyDir: {}}]}}
");
    let Err(SubmitError::Unsupported { executor, errors }) = r.submit_job(volumes) else {
        panic!("the executor refuses volumes")
    };
    assert_eq!(executor, "scripted");
    assert_eq!(
        errors.iter().next().unwrap().path.as_str(),
        "spec.template.spec.volumes"
    );
}

#[tokio::test]
async fn a_submitted_job_gets_a_uid_creation_time_and_defaults() {
    let clock = ManualClock::new(t0());
    let r = runner(Scripted::new(), &clock);
    let a = r.submit_job(job(SIMPLE)).unwrap();
    // The name is taken while the Job is known, as on an API server.
    let Err(SubmitError::AlreadyExists { kind, name }) = r.submit_job(job(SIMPLE)) else {
        panic!("a second Job of the same name is refused")
    };
    assert_eq!((kind, name.as_str()), ("Job", "simple"));
    let mut other = job(SIMPLE);
    other.metadata.name = Some("simple-2".to_owned());
    let b = r.submit_job(other).unwrap();
    assert_ne!(a.uid(), b.uid());
    let j = a.job();
    assert_eq!(j.metadata.uid.as_deref(), Some(a.uid()));
    assert_eq!(j.metadata.creation_timestamp, Some(t0()));
    assert_eq!(j.spec.backoff_limit, Some(6));
    assert_eq!(a.name(), "simple");
}

// ---------------------------------------------------------------------------------------
// Jobs
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_indexed_job_runs_its_pods_and_completes() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: idx}
spec:
  completions: 3
  parallelism: 2
  completionMode: Indexed
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    until("two pods run", || exec.running().len() == 2).await;
    assert_eq!(h.status().active, 2);
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    until("the third pod runs", || exec.running().len() == 1).await;
    let last = exec.running().remove(0);
    assert_eq!(
        exec.pod(&last)
            .unwrap()
            .annotations
            .get(batch_core::job::COMPLETION_INDEX_ANNOTATION)
            .map(String::as_str),
        Some("2")
    );
    exec.exit(&last, 0);
    let status = h.wait().await.unwrap();
    assert_eq!(status.completed_indexes, "0-2");
    assert_eq!(status.succeeded, 3);
    assert_eq!(status.failed, 0);
    assert!(status.has_true_condition(&JobConditionType::Complete));
    assert!(h.is_finished());
    assert_eq!(h.job().status, status);

    let mut events = Vec::new();
    drain(&mut rx, &mut events);
    let creates: Vec<Option<i32>> = events
        .iter()
        .filter_map(|e| match &e.kind {
            RunEventKind::Create { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(creates, [Some(0), Some(1), Some(2)]);
    let exits = events
        .iter()
        .filter(|e| matches!(e.kind, RunEventKind::Exit { exit_code: 0, .. }))
        .count();
    assert_eq!(exits, 3);
    assert!(events.iter().all(|e| e.job == "idx"));
    assert!(kinds(&events).iter().any(|k| matches!(k,
        RunEventKind::Condition { type_, reason, .. } if type_ == "Complete" && reason == "CompletionsReached")));
    // The Condition line prints as `batch simulate` prints it.
    let line = events
        .iter()
        .find(|e| matches!(&e.kind, RunEventKind::Condition { type_, .. } if type_ == "Complete"))
        .and_then(RunEvent::to_sim_event)
        .unwrap()
        .to_string();
    assert_eq!(
        line,
        r#"{"t":"2026-01-01T00:00:00Z","event":"condition","type":"Complete","reason":"CompletionsReached"}"#
    );
}

#[tokio::test]
async fn failed_pods_are_counted_replaced_after_the_backoff_and_exhaust_the_limit() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: flaky}
spec:
  backoffLimit: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    for failures in 1..=3 {
        until("a pod runs", || exec.running().len() == 1).await;
        let pod = exec.running().remove(0);
        exec.exit(&pod, 2);
        until("the failure is counted", || h.status().failed == failures).await;
        if failures < 3 {
            // The replacement waits for the pod-failure backoff (10 s, then 20 s): no pod
            // until the clock moves.
            let wake = next_wake(&clock).await;
            assert!(wake > clock.now());
            assert!(exec.running().is_empty());
            clock.set(wake);
        }
    }
    let status = h.wait().await.unwrap();
    assert_eq!(status.failed, 3);
    let failed = status.condition(&JobConditionType::Failed).unwrap();
    assert_eq!(failed.status, ConditionStatus::True);
    assert_eq!(failed.reason, "BackoffLimitExceeded");
    until_event(&mut rx, &mut seen, "exit 2", |e| {
        matches!(e.kind, RunEventKind::Exit { exit_code: 2, .. })
    })
    .await;
    assert_eq!(exec.starts(), 3);
}

#[tokio::test]
async fn a_pod_that_vanishes_is_counted_as_failed() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: vanish}
spec:
  backoffLimit: 0
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    until("a pod runs", || exec.running().len() == 1).await;
    let pod = exec.running().remove(0);
    exec.vanish(&pod);
    let status = h.wait().await.unwrap();
    assert_eq!(status.failed, 1);
    assert_eq!(
        status.condition(&JobConditionType::Failed).unwrap().reason,
        "BackoffLimitExceeded"
    );
    let mut events = Vec::new();
    drain(&mut rx, &mut events);
    assert!(kinds(&events).contains(&&RunEventKind::Evict { pod }));
}

#[tokio::test]
async fn suspend_deletes_active_pods_without_counting_them_and_resume_starts_new_ones() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: pausable}
spec:
  completions: 2
  parallelism: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("two pods run", || exec.running().len() == 2).await;
    h.suspend().await.unwrap();
    until("the pods are gone", || exec.count() == 0).await;
    until("the Job is suspended", || {
        h.status().has_true_condition(&JobConditionType::Suspended)
    })
    .await;
    let status = h.status();
    assert_eq!(
        status.failed, 0,
        "pods deleted by suspension are not failures"
    );
    assert_eq!(status.active, 0);
    assert_eq!(h.job().spec.suspend, Some(true));
    until_event(&mut rx, &mut seen, "delete events", |e| {
        matches!(e.kind, RunEventKind::Delete { .. })
    })
    .await;

    h.resume().await.unwrap();
    until("two new pods run", || exec.running().len() == 2).await;
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 2);
    assert_eq!(status.failed, 0);
    assert_eq!(exec.starts(), 4);
}

#[tokio::test]
async fn ttl_after_finished_deletes_the_pods_at_the_expiry() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: ttl}
spec:
  ttlSecondsAfterFinished: 30
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("a pod runs", || exec.running().len() == 1).await;
    exec.exit(&exec.running()[0], 0);
    let status = h.wait().await.unwrap();
    assert!(status.has_true_condition(&JobConditionType::Complete));
    // The finished pod is kept (with its logs) until the TTL runs out.
    until("the runner sleeps until the expiry", || {
        clock.next_deadline() == Some(t0() + Duration::seconds(30))
    })
    .await;
    assert_eq!(exec.count(), 1);
    clock.advance(Duration::seconds(30));
    until_event(&mut rx, &mut seen, "jobDelete", |e| {
        e.kind
            == RunEventKind::JobDelete {
                job: "ttl".to_owned(),
            }
    })
    .await;
    assert_eq!(exec.count(), 0);
    // The Job finished before it was deleted: wait still gives the terminal status.
    assert_eq!(h.wait().await.unwrap(), status);
    assert!(h.job().metadata.deletion_timestamp.is_some());
    assert_eq!(h.suspend().await, Err(RunError::Deleted));
    assert_eq!(h.delete().await, Ok(()));
}

#[tokio::test]
async fn deleting_a_running_job_deletes_its_pods_and_wait_reports_it() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: doomed}
spec:
  parallelism: 3
  completions: 3
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    until("three pods run", || exec.running().len() == 3).await;
    let waiter = {
        let h = h.clone();
        tokio::spawn(async move { h.wait().await })
    };
    h.delete().await.unwrap();
    assert_eq!(exec.count(), 0);
    assert_eq!(waiter.await.unwrap(), Err(RunError::Deleted));
    assert_eq!(h.wait().await, Err(RunError::Deleted));
    let mut events = Vec::new();
    drain(&mut rx, &mut events);
    let deletes = events
        .iter()
        .filter(|e| matches!(e.kind, RunEventKind::Delete { .. }))
        .count();
    assert_eq!(deletes, 3);
    assert_eq!(
        events.last().map(|e| &e.kind),
        Some(&RunEventKind::JobDelete {
            job: "doomed".to_owned()
        })
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_suspension_whose_deletes_fail_is_retried_and_counts_no_failure() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: sticky}
spec:
  completions: 2
  parallelism: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    until("two pods run", || exec.running().len() == 2).await;
    exec.fail_next_deletes(2);
    h.suspend().await.unwrap();
    assert_eq!(exec.running().len(), 2, "the deletes failed");
    // The runner retries after its backoff; the pods still run, so it deletes them then.
    let at = next_wake(&clock).await;
    clock.set(at);
    until("the pods are gone", || exec.count() == 0).await;
    until("the Job is suspended with nothing active", || {
        let s = h.status();
        s.has_true_condition(&JobConditionType::Suspended) && s.active == 0
    })
    .await;
    assert_eq!(h.status().failed, 0, "deleted pods are not failures");
    // Resumed, the Job completes with fresh pods: nothing was lost or double-counted.
    h.resume().await.unwrap();
    until("two new pods run", || exec.running().len() == 2).await;
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    let status = h.wait().await.unwrap();
    assert_eq!((status.succeeded, status.failed), (2, 0));
}

#[tokio::test(flavor = "current_thread")]
async fn pods_a_deletion_could_not_remove_during_an_outage_are_removed_once_it_ends() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: stranded}
spec:
  parallelism: 2
  completions: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    until("two pods run", || exec.running().len() == 2).await;
    exec.go_down();
    // The caller gets its answer at once; the Job is deleted although its pods are not yet.
    h.delete().await.unwrap();
    assert_eq!(h.wait().await, Err(RunError::Deleted));
    assert_eq!(
        exec.running().len(),
        2,
        "the executor is down: nothing deleted yet"
    );
    // While it stays down, retries are reported with their next time.
    let mut events = Vec::new();
    let at = next_wake(&clock).await;
    clock.set(at);
    until_event(&mut rx, &mut events, "a retried deletion", |e| {
        matches!(
            &e.kind,
            RunEventKind::ExecutorError {
                retry_at: Some(_),
                ..
            }
        )
    })
    .await;
    assert_eq!(exec.running().len(), 2);
    exec.come_back();
    let at = next_wake(&clock).await;
    clock.set(at);
    until("the stranded pods are deleted", || exec.count() == 0).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_burst_of_pod_changes_costs_few_steps() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: burst}
spec:
  completions: 300
  parallelism: 300
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    until("300 pods run", || {
        exec.running().len() == 300 && h.status().active == 300
    })
    .await;
    // Forget the events of the start.
    drain(&mut rx, &mut Vec::new());
    // The runner cannot run while this loop does (one thread): it sees all 300 changes at
    // its next wake-up.
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 300);
    let mut events = Vec::new();
    drain(&mut rx, &mut events);
    let steps = events
        .iter()
        .filter(|e| e.kind == RunEventKind::Status)
        .count();
    assert!(steps <= 5, "{steps} status changes for one burst");
    let exits = events
        .iter()
        .filter(|e| matches!(e.kind, RunEventKind::Exit { .. }))
        .count();
    assert_eq!(exits, 300);
}

// ---------------------------------------------------------------------------------------
// Executor errors
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn an_executor_that_fails_every_call_is_reported_and_retried_with_backoff() {
    let clock = ManualClock::new(t0());
    let exec = Arc::new(Failing::default());
    let r = runner(exec.clone(), &clock).with_options(
        RunnerOptions::default().with_retry(StdDuration::from_secs(1), StdDuration::from_secs(8)),
    );
    let h = r
        .submit_job(job("
metadata: {name: unlucky}
spec:
  completions: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let before = h.status();
    let mut rx = h.events();
    let mut seen = Vec::new();
    let mut retries = Vec::new();
    for attempt in 1..=6 {
        until_event(&mut rx, &mut seen, "an executor error", |_| true).await;
        let e = seen.remove(0);
        let RunEventKind::ExecutorError {
            operation,
            message,
            retry_at: Some(at),
        } = e.kind
        else {
            panic!("attempt {attempt}: {e:?}")
        };
        assert_eq!(operation, "watch");
        assert!(message.contains("unavailable"), "{message}");
        retries.push((at - e.t).num_seconds());
        clock.set(at);
    }
    // Exponential backoff up to the cap.
    assert_eq!(retries, [1, 2, 4, 8, 8, 8]);
    assert_eq!(h.status(), before, "the counts never change");
    assert!(!h.is_finished());
    // The handle still answers.
    h.suspend().await.unwrap();
    h.delete().await.unwrap();
    assert_eq!(h.wait().await, Err(RunError::Deleted));
    let printed = RunEvent {
        t: t0(),
        job: "unlucky".to_owned(),
        kind: RunEventKind::ExecutorError {
            operation: "watch".to_owned(),
            message: "watch failed (unavailable): backend down".to_owned(),
            retry_at: None,
        },
    }
    .to_sim_event()
    .unwrap()
    .to_string();
    assert!(printed.contains(r#""event":"warning","reason":"ExecutorError""#));
}

#[tokio::test]
async fn failed_starts_are_retried_after_a_backoff_and_never_count_as_pod_failures() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    exec.fail_next_starts(2);
    let r = runner(exec.clone(), &clock);
    let h = r.submit_job(job(SIMPLE)).unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    for delay in [1, 2] {
        until_event(&mut rx, &mut seen, "a start error", |e| {
            matches!(e.kind, RunEventKind::ExecutorError { .. })
        })
        .await;
        let i = seen
            .iter()
            .position(|e| matches!(e.kind, RunEventKind::ExecutorError { .. }))
            .unwrap();
        let e = seen.remove(i);
        let RunEventKind::ExecutorError {
            operation,
            retry_at: Some(at),
            ..
        } = e.kind
        else {
            panic!("{e:?}")
        };
        assert_eq!(operation, "start");
        assert_eq!((at - e.t).num_seconds(), delay);
        // Nothing is started again before the retry is due.
        assert_eq!(exec.count(), 0);
        clock.set(at);
    }
    until("the pod runs", || exec.running().len() == 1).await;
    exec.exit(&exec.running()[0], 0);
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 1);
    assert_eq!(status.failed, 0);
}

#[tokio::test]
async fn an_outage_keeps_the_counts_and_the_job_resumes_when_the_executor_is_back() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: outage}
spec:
  completions: 4
  parallelism: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("two pods run", || exec.running().len() == 2).await;
    let first = exec.running().remove(0);
    exec.exit(&first, 0);
    until("one success is counted", || h.status().succeeded == 1).await;
    until("the replacement runs", || exec.running().len() == 2).await;

    exec.go_down();
    until_event(&mut rx, &mut seen, "the watch ends", |e| {
        matches!(e.kind, RunEventKind::ExecutorError { .. })
    })
    .await;
    // Retries fail for a while; the counts stay.
    for _ in 0..3 {
        seen.clear();
        let at = next_wake(&clock).await;
        clock.set(at);
        until_event(&mut rx, &mut seen, "another failed retry", |e| {
            matches!(e.kind, RunEventKind::ExecutorError { .. })
        })
        .await;
        assert_eq!(h.status().succeeded, 1);
        assert_eq!(h.status().failed, 0);
    }

    exec.come_back();
    // Pods went on while the runner could not see them.
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    let at = next_wake(&clock).await;
    clock.set(at);
    until("the last pod runs", || exec.running().len() == 1).await;
    exec.exit(&exec.running()[0], 0);
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 4);
    assert_eq!(status.failed, 0);
}

#[tokio::test]
async fn a_watch_error_makes_the_runner_list_again_and_miss_nothing() {
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let h = r
        .submit_job(job("
metadata: {name: relist}
spec:
  completions: 2
  parallelism: 2
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("two pods run", || h.status().active == 2).await;
    exec.break_watches();
    until_event(&mut rx, &mut seen, "the watch error", |e| {
        matches!(&e.kind, RunEventKind::ExecutorError { operation, retry_at: Some(_), .. } if operation == "watch")
    })
    .await;
    // Changes while the runner does not watch are found by the next list.
    for p in exec.running() {
        exec.exit(&p, 0);
    }
    let at = next_wake(&clock).await;
    clock.set(at);
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 2);
    assert_eq!(exec.starts(), 2);
}

// ---------------------------------------------------------------------------------------
// CronJobs
// ---------------------------------------------------------------------------------------

fn cron_job(yaml: &str) -> CronJob {
    serde_norway::from_str(yaml).unwrap()
}

#[tokio::test]
async fn a_replaced_child_job_passes_on_its_pod_deletions_before_it_is_reported_deleted() {
    let clock = ManualClock::new(t0() + Duration::seconds(30));
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let cj = r
        .submit_cron_job(cron_job(
            "
metadata: {name: swap}
spec:
  schedule: '* * * * *'
  concurrencyPolicy: Replace
  jobTemplate:
    spec:
      template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
",
        ))
        .unwrap();
    let mut rx = cj.events();
    let mut seen = Vec::new();
    clock.set(t0() + Duration::minutes(1) + Duration::milliseconds(100));
    let first = batch_core::cronjob::job_name("swap", t0() + Duration::minutes(1));
    until("the first child's pod runs", || exec.running().len() == 1).await;
    let pod = exec.running()[0].clone();
    // The next minute replaces the running child.
    clock.set(t0() + Duration::minutes(2) + Duration::milliseconds(100));
    until_event(&mut rx, &mut seen, "the first child's deletion", |e| {
        e.kind == RunEventKind::JobDelete { job: first.clone() }
    })
    .await;
    let delete_of_pod = seen
        .iter()
        .position(|e| e.kind == RunEventKind::Delete { pod: pod.clone() });
    let job_delete = seen
        .iter()
        .position(|e| e.kind == RunEventKind::JobDelete { job: first.clone() });
    assert!(
        delete_of_pod.is_some() && delete_of_pod < job_delete,
        "the pod's delete event comes first: {:?}",
        kinds(&seen)
    );
    cj.stop().await.unwrap();
}

/// With many pods, the child's forwarder uses up its scheduling budget passing their delete
/// events and yields behind the CronJob's task: the CronJob must still wait for the rest.
#[tokio::test]
async fn every_pod_deletion_of_a_replaced_or_stopped_child_comes_before_its_job_delete() {
    const PODS: usize = 300;
    let clock = ManualClock::new(t0() + Duration::seconds(30));
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let cj = r
        .submit_cron_job(cron_job(&format!(
            "
metadata: {{name: many}}
spec:
  schedule: '* * * * *'
  concurrencyPolicy: Replace
  jobTemplate:
    spec:
      parallelism: {PODS}
      completions: {PODS}
      template: {{spec: {{restartPolicy: Never, containers: [{{name: main, image: busybox}}]}}}}
"
        )))
        .unwrap();
    let mut rx = cj.events();
    let mut seen = Vec::new();
    let deletes_before_job_delete = |seen: &[RunEvent], job: &str| {
        let end = seen
            .iter()
            .position(|e| {
                e.kind
                    == RunEventKind::JobDelete {
                        job: job.to_owned(),
                    }
            })
            .expect("the JobDelete was seen");
        seen[..end]
            .iter()
            .filter(|e| e.job == job && matches!(e.kind, RunEventKind::Delete { .. }))
            .count()
    };
    // Replaced by the next minute's child.
    clock.set(t0() + Duration::minutes(1) + Duration::milliseconds(100));
    let first = batch_core::cronjob::job_name("many", t0() + Duration::minutes(1));
    until("the first child's pods run", || {
        exec.running().len() == PODS
    })
    .await;
    clock.set(t0() + Duration::minutes(2) + Duration::milliseconds(100));
    until_event(&mut rx, &mut seen, "the first child's deletion", |e| {
        e.kind == RunEventKind::JobDelete { job: first.clone() }
    })
    .await;
    assert_eq!(deletes_before_job_delete(&seen, &first), PODS);
    // Stopped: the same for the running child.
    let second = batch_core::cronjob::job_name("many", t0() + Duration::minutes(2));
    until("the second child's pods run", || {
        exec.running().len() == PODS
    })
    .await;
    cj.stop().await.unwrap();
    until_event(&mut rx, &mut seen, "the second child's deletion", |e| {
        e.kind
            == RunEventKind::JobDelete {
                job: second.clone(),
            }
    })
    .await;
    assert_eq!(deletes_before_job_delete(&seen, &second), PODS);
}

#[tokio::test]
async fn a_cron_job_creates_its_job_at_the_scheduled_time_and_sees_it_finish() {
    let clock = ManualClock::new(t0() + Duration::seconds(30));
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let cj = r
        .submit_cron_job(cron_job(
            "
metadata: {name: tick}
spec:
  schedule: '* * * * *'
  jobTemplate:
    spec:
      template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
",
        ))
        .unwrap();
    let mut rx = cj.events();
    let mut seen = Vec::new();
    // Nothing before the first minute.
    until("the runner sleeps until the schedule", || {
        clock.next_deadline() == Some(t0() + Duration::minutes(1) + Duration::milliseconds(100))
    })
    .await;
    assert!(cj.jobs().is_empty());
    clock.set(clock.next_deadline().unwrap());
    let scheduled = t0() + Duration::minutes(1);
    let name = batch_core::cronjob::job_name("tick", scheduled);
    until_event(&mut rx, &mut seen, "jobCreate", |e| {
        e.kind
            == RunEventKind::JobCreate {
                job: name.clone(),
                scheduled_time: Some(scheduled),
            }
    })
    .await;
    assert_eq!(cj.jobs().len(), 1);
    assert_eq!(cj.status().last_schedule_time, Some(scheduled));
    until("the child's pod runs", || exec.running().len() == 1).await;
    // The child's pod events reach the CronJob's channel.
    until_event(&mut rx, &mut seen, "the child's create", |e| {
        e.job == name && matches!(e.kind, RunEventKind::Create { .. })
    })
    .await;
    exec.exit(&exec.running()[0], 0);
    until_event(&mut rx, &mut seen, "jobFinish", |e| {
        matches!(&e.kind, RunEventKind::JobFinish { job, result }
            if *job == name && *result == batch_core::cronjob::ChildJobResult::Complete)
    })
    .await;
    until("lastSuccessfulTime", || {
        cj.status().last_successful_time.is_some()
    })
    .await;
    assert!(cj.status().active.is_empty());
    assert!(cj.jobs()[0].is_finished());

    // Suspended: no Job at the next minute.
    cj.suspend().await.unwrap();
    clock.set(t0() + Duration::minutes(2) + Duration::milliseconds(100));
    cj.resume().await.unwrap();
    let second = batch_core::cronjob::job_name("tick", t0() + Duration::minutes(2));
    until("the missed run starts on resume", || cj.jobs().len() == 2).await;
    assert_eq!(cj.jobs()[1].name(), second);
    until("its pod runs", || exec.running().len() == 1).await;

    // Stop deletes the running child, keeps the finished one.
    cj.stop().await.unwrap();
    assert!(cj.is_stopped());
    assert_eq!(exec.running().len(), 0);
    let jobs = cj.jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].name(), name);
    assert_eq!(cj.suspend().await, Err(RunError::Stopped));
    assert_eq!(cj.stop().await, Ok(()), "stopping twice is fine");
}

#[tokio::test]
async fn a_cron_job_deletes_children_beyond_its_history_limit() {
    let clock = ManualClock::new(t0() + Duration::seconds(30));
    let exec = Scripted::new();
    let r = runner(exec.clone(), &clock);
    let cj = r
        .submit_cron_job(cron_job(
            "
metadata: {name: hist}
spec:
  schedule: '* * * * *'
  successfulJobsHistoryLimit: 1
  jobTemplate:
    spec:
      template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
",
        ))
        .unwrap();
    let mut rx = cj.events();
    let mut seen = Vec::new();
    for minute in 1..=3 {
        let at = t0() + Duration::minutes(minute) + Duration::milliseconds(100);
        until("the runner sleeps until the schedule", || {
            clock.next_deadline().is_some_and(|d| d <= at)
        })
        .await;
        clock.set(at);
        until("a pod runs", || exec.running().len() == 1).await;
        exec.exit(&exec.running()[0], 0);
        until("the child finishes", || {
            cj.jobs().iter().all(JobHandle::is_finished) && cj.status().active.is_empty()
        })
        .await;
    }
    let first = batch_core::cronjob::job_name("hist", t0() + Duration::minutes(1));
    until_event(&mut rx, &mut seen, "the oldest Job is deleted", |e| {
        e.kind == RunEventKind::JobDelete { job: first.clone() }
    })
    .await;
    until("one Job is kept", || cj.jobs().len() == 1).await;
    until("older pods are gone", || exec.count() == 1).await;
    cj.stop().await.unwrap();
}

#[tokio::test]
async fn a_job_runs_on_the_system_clock_too() {
    let exec = Scripted::new();
    let r = Runner::new(exec.clone(), Arc::new(SystemClock));
    let h = r.submit_job(job(SIMPLE)).unwrap();
    until("a pod runs", || exec.running().len() == 1).await;
    exec.exit(&exec.running()[0], 0);
    let status = h.wait().await.unwrap();
    assert_eq!(status.succeeded, 1);
    assert!(status.start_time.is_some());
    assert!(status.completion_time.unwrap() <= SystemClock.now());
}

// ---------------------------------------------------------------------------------------
// State store: failed writes, resuming after a crash
// ---------------------------------------------------------------------------------------

/// A store whose `update_job` fails while `failures` is above zero (a full disk, say).
#[derive(Debug, Default)]
struct FlakyStore {
    inner: batch_core::store::MemoryStore,
    failures: std::sync::atomic::AtomicUsize,
}

impl batch_core::store::StateStore for FlakyStore {
    fn load(
        &self,
    ) -> std::result::Result<batch_core::store::StoredState, batch_core::store::StoreError> {
        self.inner.load()
    }
    fn create_job(
        &self,
        record: &batch_core::store::JobRecord,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        self.inner.create_job(record)
    }
    fn update_job(
        &self,
        update: batch_core::store::JobUpdate<'_>,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        use std::sync::atomic::Ordering;
        let left = self.failures.load(Ordering::SeqCst);
        if left > 0 {
            self.failures.store(left - 1, Ordering::SeqCst);
            return Err(batch_core::store::StoreError::Storage {
                path: "flaky".into(),
                message: "no space left on device".to_owned(),
                source: None,
            });
        }
        self.inner.update_job(update)
    }
    fn delete_job(
        &self,
        name: &str,
        uid: &str,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        self.inner.delete_job(name, uid)
    }
    fn create_cron_job(
        &self,
        cron_job: &CronJob,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        self.inner.create_cron_job(cron_job)
    }
    fn update_cron_job(
        &self,
        cron_job: &CronJob,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        self.inner.update_cron_job(cron_job)
    }
    fn delete_cron_job(
        &self,
        name: &str,
        uid: &str,
    ) -> std::result::Result<(), batch_core::store::StoreError> {
        self.inner.delete_cron_job(name, uid)
    }
}

#[tokio::test]
async fn a_store_that_fails_holds_the_step_back_and_loses_nothing() {
    use std::sync::atomic::Ordering;
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let store = Arc::new(FlakyStore::default());
    let r = runner(exec.clone(), &clock).with_store(store.clone());
    let h = r.submit_job(job(SIMPLE)).unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("the pod runs", || exec.running().len() == 1).await;
    store.failures.store(3, Ordering::SeqCst);
    exec.exit(&exec.running()[0], 0);
    until_event(&mut rx, &mut seen, "a store error", |e| {
        matches!(&e.kind, RunEventKind::StoreError { message, retry_at: Some(_), .. }
            if message.contains("no space left"))
    })
    .await;
    // Nothing the step decided is published while it cannot be recorded.
    assert_eq!(h.status().succeeded, 0);
    assert!(!h.is_finished());
    // The retries back off (1 s, 2 s, 4 s) and then succeed.
    for _ in 0..10 {
        if h.is_finished() {
            break;
        }
        let wake = next_wake(&clock).await;
        clock.set(wake);
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    let status = h.wait().await.unwrap();
    assert_eq!((status.succeeded, status.failed), (1, 0));
    assert_eq!(exec.starts(), 1, "no pod was started again");
    drain(&mut rx, &mut seen);
    let errors = seen
        .iter()
        .filter(|e| matches!(e.kind, RunEventKind::StoreError { .. }))
        .count();
    assert_eq!(errors, 3);
    // The store holds what the handle says.
    let stored = batch_core::store::StateStore::load(&*store).unwrap();
    assert_eq!(stored.jobs["simple"].job.status, status);
}

/// Runner A runs an Indexed Job until one index succeeded and one failed, then its runtime
/// is dropped (its tasks die at an await, as in a crash); runner B, with the same store and
/// the same executor, resumes it: no index runs again, the failure's backoff is still owed,
/// and the counts end as an uninterrupted run's.
#[test]
fn a_resumed_job_adopts_its_pods_keeps_its_backoff_and_counts_nothing_twice() {
    const IDX: &str = "
metadata: {name: idx}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let store: Arc<dyn batch_core::store::StateStore> =
        Arc::new(batch_core::store::MemoryStore::new());
    let rt = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let a = rt();
    a.block_on(async {
        let r = runner(exec.clone(), &clock).with_store(Arc::clone(&store));
        let h = r.submit_job(job(IDX)).unwrap();
        until("two pods run", || exec.running().len() == 2).await;
        let index_of = |p: &str| {
            exec.pod(p).unwrap().annotations[batch_core::job::COMPLETION_INDEX_ANNOTATION].clone()
        };
        let first = exec
            .running()
            .into_iter()
            .find(|p| index_of(p) == "0")
            .unwrap();
        exec.exit(&first, 0);
        until("index 2 starts", || exec.count() == 3).await;
        let second = exec
            .running()
            .into_iter()
            .find(|p| index_of(p) == "1")
            .unwrap();
        exec.exit(&second, 1);
        until("both outcomes are counted", || {
            let s = h.status();
            s.succeeded == 1 && s.failed == 1 && s.uncounted_terminated_pods.is_none()
        })
        .await;
        assert_eq!(exec.running().len(), 1, "index 2 runs at the crash");
    });
    a.shutdown_background();
    let created_before = exec.count();
    assert_eq!(created_before, 3);

    let b = rt();
    b.block_on(async {
        let r = runner(exec.clone(), &clock).with_store(Arc::clone(&store));
        let h = r.resume_job("idx").unwrap().expect("the Job is stored");
        assert_eq!((h.status().succeeded, h.status().failed), (1, 1));
        // The pod started by runner A is adopted, not replaced; the failed index waits for
        // its backoff (10 s from the failure), which runner B still owes.
        let wake = next_wake(&clock).await;
        assert_eq!(
            wake,
            t0() + Duration::seconds(10),
            "the backoff owed is kept"
        );
        assert_eq!(
            exec.count(),
            created_before,
            "nothing started before the backoff"
        );
        for _ in 0..20 {
            if h.is_finished() {
                break;
            }
            for p in exec.running() {
                exec.exit(&p, 0);
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
            if exec.running().is_empty()
                && !h.is_finished()
                && let Some(next) = clock.next_deadline()
            {
                clock.set(next);
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
        let status = h.wait().await.unwrap();
        assert_eq!(status.completed_indexes, "0-3");
        assert_eq!((status.succeeded, status.failed), (4, 1));
        assert_eq!(
            exec.count(),
            5,
            "4 successes and 1 failure: no pod ran twice"
        );
    });
    b.shutdown_background();
}
