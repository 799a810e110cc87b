//! The Job task: one per submitted Job.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::{
    Backoff, Life, RunError, RunEvent, RunEventKind, Runner, RunnerInner, Sleep, SubmitError,
    earliest, error_text,
};
use crate::executor::{
    CONTROLLER_UID_LABEL, ContainerKind, ErrorKind, LabelSelector, PodObservation, PodRequest,
    WatchEvent, WatchStream,
};
use crate::job::{COMPLETION_INDEX_ANNOTATION, EventType, JobMemory, ObservedPod, PodPhase};
use crate::model::{Job, JobStatus, Timestamp};
use crate::store::{JobRecord, JobUpdate};

/// At most this many machine steps run back to back while each one changes something; then
/// the task waits for the next event (a guard against a machine that never settles).
const MAX_STEPS_PER_WAKE: usize = 1_000;
/// At most this many ready watch events are taken in before a step.
const MAX_EVENTS_PER_BATCH: usize = 100_000;

/// Follows and controls one running Job. Cheap to clone; every clone sees the same Job.
///
/// Dropping every handle does not stop the Job: it runs to its end (and its TTL) in its
/// task, as a Kubernetes Job runs whether anyone watches it or not.
#[derive(Debug, Clone)]
pub struct JobHandle {
    shared: Arc<JobShared>,
}

#[derive(Debug)]
struct JobShared {
    name: String,
    uid: String,
    job: Mutex<Job>,
    status: watch::Sender<JobStatus>,
    events: broadcast::Sender<RunEvent>,
    /// Subscribed before the task started: the first [`JobHandle::events`] call takes it.
    first_events: Mutex<Option<broadcast::Receiver<RunEvent>>>,
    life: watch::Sender<Life>,
    commands: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
enum Command {
    Suspend(bool, oneshot::Sender<()>),
    Delete(oneshot::Sender<()>),
}

impl JobHandle {
    /// The Job's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The Job's UID.
    pub fn uid(&self) -> &str {
        &self.shared.uid
    }

    /// The Job as the runner holds it now: the submitted Job after defaulting, with the
    /// latest status (and `deletionTimestamp` once deleted).
    pub fn job(&self) -> Job {
        self.shared
            .job
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The latest status.
    pub fn status(&self) -> JobStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver that sees every status change (the latest value; intermediate ones may be
    /// skipped by a slow reader).
    pub fn status_watch(&self) -> watch::Receiver<JobStatus> {
        self.shared.status.subscribe()
    }

    /// A receiver of the Job's events.
    ///
    /// The first call (on any clone of the handle) receives every event since the Job was
    /// submitted, so nothing is missed however early the task runs; later calls receive the
    /// events from then on.
    ///
    /// The channel holds [`RunnerOptions::event_capacity`](super::RunnerOptions) events
    /// (65,536 by default). A receiver that falls further behind gets
    /// [`RecvError::Lagged`](broadcast::error::RecvError::Lagged) with the number of
    /// events it missed, and then continues with the oldest event still held; the runner
    /// itself never waits for receivers.
    pub fn events(&self) -> broadcast::Receiver<RunEvent> {
        self.shared
            .first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| self.shared.events.subscribe())
    }

    /// Whether the Job is finished (`Complete=True` or `Failed=True`).
    pub fn is_finished(&self) -> bool {
        self.shared.status.borrow().is_finished()
    }

    /// Waits until the Job is finished and returns its status. A Job deleted after it
    /// finished (its TTL) still returns the terminal status.
    ///
    /// # Errors
    ///
    /// [`RunError::Deleted`] when the Job was deleted before it finished,
    /// [`RunError::Stopped`] when the runner's task ended (the runtime shut down).
    pub async fn wait(&self) -> Result<JobStatus, RunError> {
        let mut status = self.shared.status.subscribe();
        let mut life = self.shared.life.subscribe();
        loop {
            {
                let s = status.borrow_and_update();
                if s.is_finished() {
                    return Ok(s.clone());
                }
            }
            match *life.borrow_and_update() {
                Life::Running => {}
                Life::Deleted => return Err(RunError::Deleted),
                Life::Stopped => return Err(RunError::Stopped),
            }
            tokio::select! {
                r = status.changed() => if r.is_err() { return Err(RunError::Stopped) },
                r = life.changed() => if r.is_err() { return Err(RunError::Stopped) },
                () = self.shared.commands.closed() => {
                    let s = status.borrow_and_update();
                    return if s.is_finished() { Ok(s.clone()) } else { Err(self.gone()) };
                }
            }
        }
    }

    /// Suspends the Job (`spec.suspend: true`): its active pods are deleted, not counted as
    /// failures, and none start until [`resume`](JobHandle::resume). Returns once the
    /// runner has applied the change (a step has run when the executor could be observed).
    ///
    /// # Errors
    ///
    /// [`RunError::Deleted`] when the Job was deleted, [`RunError::Stopped`] when the
    /// runner's task has ended.
    pub async fn suspend(&self) -> Result<(), RunError> {
        self.set_suspend(true).await
    }

    /// Resumes a suspended Job (`spec.suspend: false`).
    ///
    /// # Errors
    ///
    /// As [`suspend`](JobHandle::suspend).
    pub async fn resume(&self) -> Result<(), RunError> {
        self.set_suspend(false).await
    }

    async fn set_suspend(&self, suspend: bool) -> Result<(), RunError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Suspend(suspend, tx))
            .map_err(|_| self.gone())?;
        rx.await.map_err(|_| self.gone())
    }

    /// Deletes the Job: deletes its pods gracefully (each with its own
    /// `terminationGracePeriodSeconds`), reports [`RunEventKind::JobDelete`], and ends its
    /// task. Deleting a deleted Job does nothing.
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] when the runner's task ended without the Job being deleted.
    pub async fn delete(&self) -> Result<(), RunError> {
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::Delete(tx)).is_err() {
            return match self.gone() {
                RunError::Deleted => Ok(()),
                other => Err(other),
            };
        }
        match rx.await {
            Ok(()) => Ok(()),
            Err(_) => match self.gone() {
                RunError::Deleted => Ok(()),
                other => Err(other),
            },
        }
    }

    /// Why the task no longer answers.
    fn gone(&self) -> RunError {
        match *self.shared.life.borrow() {
            Life::Deleted => RunError::Deleted,
            Life::Running | Life::Stopped => RunError::Stopped,
        }
    }

    /// Whether the Job's task ended because the Job was deleted.
    pub(super) fn is_deleted(&self) -> bool {
        *self.shared.life.borrow() == Life::Deleted
    }

    /// A receiver of the task's end.
    pub(super) fn life_watch(&self) -> watch::Receiver<Life> {
        self.shared.life.subscribe()
    }
}

/// Prepares, validates, records and spawns a Job.
pub(super) fn submit(runner: &Runner, mut job: Job) -> Result<JobHandle, SubmitError> {
    super::runtime()?;
    let inner = &runner.inner;
    let now = inner.clock.now();
    let uid = match job.metadata.uid.as_deref() {
        Some(uid) if !uid.is_empty() => uid.to_owned(),
        _ => super::generate_uid(job.name(), now),
    };
    crate::defaults::prepare_job_for_create(&mut job, &uid);
    if job.metadata.creation_timestamp.is_none() {
        job.metadata.creation_timestamp = Some(now);
    }
    crate::validation::validate_job(&job).map_err(SubmitError::Invalid)?;
    super::check_template(inner.executor.as_ref(), &job.spec.template, "spec.")?;
    // Recorded before anything runs: a restarted process finds it.
    inner.store.create_job(&JobRecord::new(job.clone()))?;
    spawn(runner, JobRecord::new(job))
}

/// Checks that a stored Job can run here (it validates, and this executor can run its pods).
pub(super) fn check_resumable(runner: &Runner, record: &JobRecord) -> Result<(), SubmitError> {
    crate::validation::validate_job(&record.job).map_err(SubmitError::Invalid)?;
    super::check_template(
        runner.inner.executor.as_ref(),
        &record.job.spec.template,
        "spec.",
    )
}

/// Carries on with a stored Job.
pub(super) fn resume(runner: &Runner, record: JobRecord) -> Result<JobHandle, SubmitError> {
    if !record.starting.is_empty() {
        tracing::info!(
            job = %record.name(),
            pods = ?record.starting,
            "the previous process was starting these pods; those that exist are adopted"
        );
    }
    tracing::info!(
        job = %record.name(),
        succeeded = record.job.status.succeeded,
        failed = record.job.status.failed,
        counted = record.counted.len(),
        finished = record.job.status.is_finished(),
        "resuming job"
    );
    spawn(runner, record)
}

/// Spawns the task of a recorded Job.
fn spawn(runner: &Runner, record: JobRecord) -> Result<JobHandle, SubmitError> {
    let rt = super::runtime()?;
    let inner = &runner.inner;
    let JobRecord {
        job,
        memory,
        counted,
        ..
    } = record;
    let uid = job.metadata.uid.clone().unwrap_or_default();
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, events_rx) = broadcast::channel(inner.options.event_capacity.max(1));
    let shared = Arc::new(JobShared {
        name: job.name().to_owned(),
        uid: uid.clone(),
        job: Mutex::new(job.clone()),
        status: watch::Sender::new(job.status.clone()),
        events,
        first_events: Mutex::new(Some(events_rx)),
        life: watch::Sender::new(Life::Running),
        commands,
    });
    let mut task = JobTask::new(
        Arc::clone(&shared),
        Arc::clone(inner),
        commands_rx,
        job,
        uid,
    );
    task.memory = memory;
    task.counted = counted.into_iter().collect();
    rt.spawn(task.run());
    Ok(JobHandle { shared })
}

/// A pod the task knows about.
#[derive(Debug)]
struct Pod {
    /// Creation order (the order pods are shown to the machine).
    seq: u64,
    /// The latest observation (`None`: asked to start, not yet reported).
    obs: Option<PodObservation>,
    /// For a pod asked to start: its annotations and when it was asked for.
    requested: Option<(std::collections::BTreeMap<String, String>, Timestamp)>,
    /// The pod is gone from the executor.
    gone: bool,
    /// When the runner asked the executor to delete it.
    delete_requested: Option<Timestamp>,
    /// Its end (exit or evict) was reported.
    end_reported: bool,
    /// Container restarts seen so far.
    restarts: i64,
    /// When the runner first knew of the pod (stands in for a creation time the executor
    /// does not report).
    seen_at: Timestamp,
    /// When the runner first saw it terminal (stands in for a finish time the executor
    /// does not report).
    ended_at: Option<Timestamp>,
}

impl Pod {
    fn is_terminal(&self) -> bool {
        self.obs.as_ref().is_some_and(|o| o.phase.is_terminal())
    }
}

/// What woke the task.
enum Wake {
    Command(Option<Command>),
    Watch(Option<crate::executor::Result<WatchEvent>>),
    Timer,
}

/// Marks the handle's task as stopped if it ends without the Job being deleted (a panic,
/// or the runtime shutting down).
struct LifeGuard(Arc<JobShared>);

impl Drop for LifeGuard {
    fn drop(&mut self) {
        self.0.life.send_if_modified(|l| {
            if *l == Life::Running {
                *l = Life::Stopped;
                true
            } else {
                false
            }
        });
    }
}

struct JobTask {
    shared: Arc<JobShared>,
    ctx: Arc<RunnerInner>,
    commands: mpsc::UnboundedReceiver<Command>,
    job: Job,
    memory: JobMemory,
    selector: LabelSelector,
    pods: HashMap<String, Pod>,
    next_seq: u64,
    /// Pods whose outcome is recorded in the persisted status (released).
    counted: HashSet<String>,
    watch: Option<WatchStream>,
    /// The pods must be listed again (start, or after a watch error).
    needs_list: bool,
    sync_backoff: Backoff,
    sync_retry_at: Option<Timestamp>,
    call_backoff: Backoff,
    /// While set and in the future, steps that would start or delete pods wait.
    call_retry_at: Option<Timestamp>,
    requeue_at: Option<Timestamp>,
    delete_job_at: Option<Timestamp>,
    acks: Vec<oneshot::Sender<()>>,
    sleep: Sleep,
    store_backoff: Backoff,
    /// While set and in the future, no step runs (a store write failed).
    store_retry_at: Option<Timestamp>,
    /// The spec changed (suspend) since the last write.
    spec_dirty: bool,
    /// The store holds pods being started (an intent) that the next write clears.
    starting_recorded: bool,
    /// The store no longer has this Job (deleted or replaced by another process): the task
    /// ends without touching the pods.
    orphaned: bool,
}

impl JobTask {
    fn new(
        shared: Arc<JobShared>,
        ctx: Arc<RunnerInner>,
        commands: mpsc::UnboundedReceiver<Command>,
        job: Job,
        uid: String,
    ) -> Self {
        let sync_backoff = Backoff::new(&ctx.options);
        let call_backoff = Backoff::new(&ctx.options);
        let store_backoff = Backoff::new(&ctx.options);
        // A Job submitted finished only waits for its TTL.
        let delete_job_at = if job.status.is_finished() {
            crate::cronjob::ttl::ttl_expiry(&job)
        } else {
            None
        };
        JobTask {
            shared,
            ctx,
            commands,
            job,
            memory: JobMemory::default(),
            selector: LabelSelector::from([(CONTROLLER_UID_LABEL.to_owned(), uid)]),
            pods: HashMap::new(),
            next_seq: 0,
            counted: HashSet::new(),
            watch: None,
            needs_list: true,
            sync_backoff,
            sync_retry_at: None,
            call_backoff,
            call_retry_at: None,
            requeue_at: None,
            delete_job_at,
            acks: Vec::new(),
            sleep: Sleep::new(),
            store_backoff,
            store_retry_at: None,
            spec_dirty: false,
            starting_recorded: false,
            orphaned: false,
        }
    }

    fn now(&self) -> Timestamp {
        self.ctx.clock.now()
    }

    fn emit(&self, kind: RunEventKind) {
        // No receiver is fine: events are for whoever listens.
        let _ = self.shared.events.send(RunEvent {
            t: self.now(),
            job: self.shared.name.clone(),
            kind,
        });
    }

    fn report_error(
        &self,
        operation: &str,
        error: &crate::executor::Error,
        retry_at: Option<Timestamp>,
    ) {
        let message = error_text(error);
        tracing::warn!(
            job = %self.shared.name,
            operation,
            kind = %error.kind(),
            transient = error.is_transient(),
            retry_at = ?retry_at,
            error = %message,
            "executor error"
        );
        self.emit(RunEventKind::ExecutorError {
            operation: operation.to_owned(),
            message,
            retry_at,
        });
    }

    fn is_synced(&self) -> bool {
        self.watch.is_some() && !self.needs_list
    }

    async fn run(mut self) {
        let _guard = LifeGuard(Arc::clone(&self.shared));
        if self.job.metadata.deletion_timestamp.is_some() {
            // Resumed while being deleted: finish the deletion.
            let leftover = self.delete_job().await;
            self.finish_deletion(leftover).await;
            return;
        }
        let mut dirty = true;
        let mut handled_due: Option<Timestamp> = None;
        loop {
            if self.orphaned {
                return;
            }
            let finished = self.job.status.is_finished();
            if !finished {
                self.ensure_synced().await;
            }
            if dirty && self.is_synced() && !finished {
                dirty = false;
                for _ in 0..MAX_STEPS_PER_WAKE {
                    if !self.step().await {
                        break;
                    }
                    self.drain_watch();
                }
            }
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
            let now = self.now();
            if self.job.status.is_finished() {
                // Nothing more happens to the pods of a finished Job: stop watching them.
                self.watch = None;
                if self.delete_job_at.is_some_and(|t| t <= now) {
                    let leftover = self.delete_job().await;
                    self.finish_deletion(leftover).await;
                    return;
                }
            }
            if self.call_retry_at.is_some_and(|t| t <= now) {
                self.call_retry_at = None;
            }
            if self.store_retry_at.is_some_and(|t| t <= now) {
                self.store_retry_at = None;
                dirty = true;
            }
            // A wake-up the machine asked for that came due while the step was applied
            // (a backoff or deadline ending during slow executor calls) is acted on now, once:
            // sleeping would wait for the next unrelated event.
            if !self.job.status.is_finished()
                && self.is_synced()
                && let Some(due) = self.requeue_at.filter(|t| *t <= now)
                && handled_due != Some(due)
            {
                handled_due = Some(due);
                dirty = true;
                continue;
            }
            // Only future times: one that is due but cannot be acted on yet (a step waits
            // for the executor to be observed again) must not wake the task in a loop.
            let deadline = earliest(
                [
                    self.requeue_at,
                    self.call_retry_at,
                    self.store_retry_at,
                    self.delete_job_at,
                    self.sync_retry_at.filter(|_| !self.is_synced()),
                ]
                .map(|t| t.filter(|t| *t > now)),
            );
            self.sleep.set(self.ctx.clock.as_ref(), deadline);
            let wake = tokio::select! {
                biased;
                c = self.commands.recv() => Wake::Command(c),
                w = next_event(&mut self.watch) => Wake::Watch(w),
                () = self.sleep.wait() => Wake::Timer,
            };
            match wake {
                Wake::Command(Some(Command::Delete(ack))) => {
                    let leftover = self.delete_job().await;
                    if leftover.is_empty() {
                        // Every pod is being deleted: the name is free once this returns.
                        self.forget_job();
                    }
                    let _ = ack.send(());
                    // Pods the executor could not delete yet (an outage) are retried here,
                    // after the caller has its answer: a deleted Job leaves nothing running.
                    self.finish_deletion(leftover).await;
                    // Later commands find the channel closed and the Job deleted.
                    return;
                }
                Wake::Command(Some(Command::Suspend(suspend, ack))) => {
                    self.job.spec.suspend = Some(suspend);
                    self.spec_dirty = true;
                    self.publish_job();
                    self.acks.push(ack);
                    dirty = true;
                }
                Wake::Command(None) => {
                    // Every sender is gone, which cannot happen while the task holds the
                    // shared state; nothing to do.
                }
                Wake::Watch(item) => {
                    self.on_watch_item(item);
                    self.drain_watch();
                    dirty = true;
                }
                Wake::Timer => dirty = true,
            }
        }
    }

    /// Subscribes and lists when needed (and allowed by the retry timer).
    async fn ensure_synced(&mut self) {
        if self.is_synced() {
            return;
        }
        let now = self.now();
        if self.sync_retry_at.is_some_and(|t| t > now) {
            return;
        }
        if self.watch.is_none() {
            match self.ctx.executor.watch(&self.selector).await {
                Ok(stream) => {
                    self.watch = Some(stream);
                    self.needs_list = true;
                }
                Err(e) => {
                    self.sync_failed("watch", &e);
                    return;
                }
            }
        }
        match self.ctx.executor.list(&self.selector).await {
            Ok(pods) => {
                self.on_list(pods);
                self.needs_list = false;
                self.sync_backoff.reset();
                self.sync_retry_at = None;
            }
            Err(e) => self.sync_failed("list", &e),
        }
    }

    fn sync_failed(&mut self, operation: &str, error: &crate::executor::Error) {
        let at = self.now() + self.sync_backoff.next_delay(error.is_transient());
        self.sync_retry_at = Some(at);
        self.report_error(operation, error, Some(at));
    }

    /// Takes in every watch event that is ready now.
    fn drain_watch(&mut self) {
        for _ in 0..MAX_EVENTS_PER_BATCH {
            let Some(stream) = self.watch.as_mut() else {
                return;
            };
            match stream.next().now_or_never() {
                Some(item) => self.on_watch_item(item),
                None => return,
            }
        }
    }

    fn on_watch_item(&mut self, item: Option<crate::executor::Result<WatchEvent>>) {
        match item {
            Some(Ok(WatchEvent::Applied(obs))) => self.observe(*obs),
            Some(Ok(WatchEvent::Deleted { name })) => self.vanish(&name),
            Some(Err(e)) => {
                // Something may have been missed: subscribe and list again after a backoff
                // (a stream that keeps failing then costs one call per retry, not a loop).
                self.watch = None;
                self.needs_list = true;
                let at = self.now() + self.sync_backoff.next_delay(e.is_transient());
                self.sync_retry_at = Some(at);
                self.report_error("watch", &e, Some(at));
            }
            None => {
                self.watch = None;
                self.needs_list = true;
                let at = self.now() + self.sync_backoff.next_delay(true);
                self.sync_retry_at = Some(at);
                let e = crate::executor::Error::new(
                    ErrorKind::Unavailable,
                    "watch",
                    "the watch stream ended",
                );
                self.report_error("watch", &e, Some(at));
            }
        }
    }

    /// A full list of the Job's pods: observations for those listed, and every known pod
    /// that is not listed is gone.
    fn on_list(&mut self, mut listed: Vec<PodObservation>) {
        listed.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        let names: HashSet<String> = listed.iter().map(|p| p.name.clone()).collect();
        for obs in listed {
            self.observe(obs);
        }
        let missing: Vec<String> = self
            .pods
            .iter()
            .filter(|(name, p)| !p.gone && !names.contains(*name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in missing {
            self.vanish(&name);
        }
    }

    /// A new observation of a pod.
    fn observe(&mut self, obs: PodObservation) {
        let now = self.now();
        let name = obs.name.clone();
        if !self.pods.contains_key(&name) {
            if self.counted.contains(&name) {
                // Counted and forgotten: a stale or repeated report.
                return;
            }
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pods.insert(
                name.clone(),
                Pod {
                    seq,
                    obs: None,
                    requested: None,
                    gone: false,
                    delete_requested: None,
                    end_reported: false,
                    restarts: 0,
                    seen_at: now,
                    ended_at: None,
                },
            );
        }
        let mut events = Vec::new();
        if let Some(pod) = self.pods.get_mut(&name) {
            if pod.gone || (pod.is_terminal() && !obs.phase.is_terminal()) {
                // A pod never comes back, and a terminal pod stays terminal: this report
                // is older than what is known.
                return;
            }
            let restarts: i64 = obs
                .containers
                .iter()
                .map(|c| i64::from(c.restart_count))
                .sum();
            if restarts > pod.restarts && !obs.phase.is_terminal() {
                events.push(RunEventKind::Exit {
                    pod: name.clone(),
                    exit_code: restart_exit_code(&obs),
                });
            }
            pod.restarts = pod.restarts.max(restarts);
            if obs.phase.is_terminal() {
                pod.ended_at.get_or_insert(now);
            }
            if obs.phase.is_terminal() && !pod.end_reported {
                pod.end_reported = true;
                events.push(end_event(&obs));
            }
            pod.obs = Some(obs);
        }
        for kind in events {
            self.emit(kind);
        }
    }

    /// A pod is gone from the executor.
    fn vanish(&mut self, name: &str) {
        let now = self.now();
        let counted = self.counted.contains(name);
        let Some(pod) = self.pods.get_mut(name) else {
            return;
        };
        if counted {
            self.pods.remove(name);
            return;
        }
        pod.gone = true;
        if !pod.is_terminal() {
            pod.ended_at.get_or_insert(now);
        }
        if !pod.is_terminal() && !pod.end_reported {
            // Gone before it ended: it is shown to the machine as failed, so that it is
            // counted, never lost.
            pod.end_reported = true;
            self.emit(RunEventKind::Evict {
                pod: name.to_owned(),
            });
        }
    }

    /// The pods as the machine sees them, in creation order.
    fn observed_pods(&self, now: Timestamp) -> Vec<ObservedPod> {
        let mut pods: Vec<(&String, &Pod)> = self.pods.iter().collect();
        pods.sort_by_key(|(_, p)| p.seq);
        pods.into_iter()
            .map(|(name, p)| {
                let counted = self.counted.contains(name);
                let mut o = match &p.obs {
                    Some(obs) => obs.to_observed_pod(counted),
                    None => {
                        let (annotations, at) = p
                            .requested
                            .clone()
                            .unwrap_or_else(|| (std::collections::BTreeMap::new(), now));
                        ObservedPod {
                            name: name.clone(),
                            phase: PodPhase::Pending,
                            index: annotations.get(COMPLETION_INDEX_ANNOTATION).cloned(),
                            annotations,
                            created_at: Some(at),
                            counted,
                            ..ObservedPod::default()
                        }
                    }
                };
                o.created_at.get_or_insert(p.seen_at);
                if o.phase.is_terminal()
                    && let Some(t) = p.ended_at
                {
                    o.finished_at.get_or_insert(t);
                }
                if let Some(t) = p.delete_requested
                    && !o.deleting
                {
                    o.deleting = true;
                    o.deletion_time = Some(t);
                }
                if p.gone && !o.phase.is_terminal() {
                    let at = p.ended_at.unwrap_or(now);
                    o.phase = PodPhase::Failed;
                    o.ready = false;
                    o.deleting = true;
                    o.deletion_time.get_or_insert(at);
                    o.finished_at.get_or_insert(at);
                }
                o
            })
            .collect()
    }

    /// One machine step, applied. Returns whether it changed anything (then the machine
    /// runs again at once, as upstream re-syncs on the resulting updates).
    async fn step(&mut self) -> bool {
        let now = self.now();
        if self.store_retry_at.is_some_and(|t| t > now) {
            // A store write failed: nothing is decided until it can be recorded.
            return false;
        }
        let observed = self.observed_pods(now);
        let d = crate::job::reconcile(&self.job, &observed, &self.memory, now);
        if (!d.create.is_empty() || !d.delete.is_empty())
            && self.call_retry_at.is_some_and(|t| t > now)
        {
            // Backing off after a failed executor call. The machine is level-triggered:
            // the same decision comes again when the retry is due.
            tracing::debug!(job = %self.shared.name, retry_at = ?self.call_retry_at, "waiting to retry executor calls");
            return false;
        }
        let changed = !d.create.is_empty()
            || !d.delete.is_empty()
            || !d.release.is_empty()
            || d.status != self.job.status;

        // 0. The intent: the pods about to be started and the pod counter, recorded before
        // any is asked for, so a restarted runner never reuses their names.
        if !d.create.is_empty() {
            let names: Vec<String> = d.create.iter().map(|c| c.name.clone()).collect();
            let mut memory = self.memory.clone();
            memory.pods_created = d.memory.pods_created;
            let update = JobUpdate::new(&self.job, &memory).starting(&names);
            if let Err(e) = self.ctx.store.update_job(update) {
                self.store_failed("record the pods to start", &e);
                return false;
            }
            self.memory.pods_created = memory.pods_created;
            self.starting_recorded = true;
        }

        // 1. Pods: deletes, then starts (a step never has both).
        let (deleted, not_deleted) = self.delete_pods(&d.delete).await;
        let created = self.start_pods(&d.create).await;

        // 2. Persist status, memory and the newly counted pods, together; 3. only then
        // release. A running pod the machine deleted (and released uncounted) whose
        // deletion failed is not released: it still runs, so the next step sees it again
        // and deletes it again.
        let release: Vec<String> = d
            .release
            .iter()
            .filter(|name| {
                !not_deleted.contains(*name)
                    || self.pods.get(*name).is_some_and(|p| p.is_terminal())
            })
            .cloned()
            .collect();
        let Some(old) = self.persist(d.status, d.memory, &release) else {
            // Not recorded: nothing is published or released; the step runs again when the
            // retry is due (the pods it started are known, as pods being started).
            return false;
        };
        self.release(&release);

        for c in &self.job.status.conditions {
            let differs = old.condition(&c.type_).is_none_or(|o| {
                o.status != c.status || o.reason != c.reason || o.message != c.message
            });
            if differs {
                self.emit(RunEventKind::Condition {
                    type_: c.type_.as_str().to_owned(),
                    reason: c.reason.clone(),
                    message: c.message.clone(),
                });
            }
        }
        for e in &d.events {
            match e.type_ {
                EventType::Warning => {
                    tracing::warn!(job = %self.shared.name, reason = %e.reason, message = %e.message, "job event");
                    self.emit(RunEventKind::Warning {
                        reason: e.reason.clone(),
                        message: e.message.clone(),
                    });
                }
                _ => {
                    tracing::info!(job = %self.shared.name, reason = %e.reason, message = %e.message, "job event");
                }
            }
        }
        if self.job.status != old {
            self.emit(RunEventKind::Status);
        }
        self.requeue_at = d.requeue_at.filter(|t| *t > now);
        self.delete_job_at = d.delete_job_at;
        let s = &self.job.status;
        if changed {
            tracing::info!(
                job = %self.shared.name,
                created,
                deleted,
                released = release.len(),
                active = s.active,
                succeeded = s.succeeded,
                failed = s.failed,
                finished = s.is_finished(),
                requeue_at = ?self.requeue_at,
                "job step"
            );
        } else {
            tracing::debug!(
                job = %self.shared.name,
                created,
                deleted,
                active = s.active,
                succeeded = s.succeeded,
                failed = s.failed,
                requeue_at = ?self.requeue_at,
                "job step"
            );
        }
        changed
    }

    /// The one place where the status, the machine's memory and the newly counted pods are
    /// persisted, together (one atomic store write), before any pod is released; then the
    /// status is published to the handles. Returns the previous status, or `None` when the
    /// store could not record it (then nothing changed here).
    fn persist(
        &mut self,
        status: JobStatus,
        memory: JobMemory,
        counted: &[String],
    ) -> Option<JobStatus> {
        let old = std::mem::replace(&mut self.job.status, status);
        let write = self.job.status != old
            || memory != self.memory
            || !counted.is_empty()
            || self.spec_dirty
            || self.starting_recorded;
        if write {
            let update = JobUpdate::new(&self.job, &memory).counting(counted);
            if let Err(e) = self.ctx.store.update_job(update) {
                self.job.status = old;
                self.store_failed("record the job's status", &e);
                return None;
            }
            self.spec_dirty = false;
            self.starting_recorded = false;
            self.store_backoff.reset();
        }
        self.memory = memory;
        if self.job.status != old {
            self.publish_job();
            self.shared.status.send_replace(self.job.status.clone());
        }
        Some(old)
    }

    /// A store write failed: report it and wait (nothing is decided meanwhile). A record
    /// that is gone (deleted or replaced by another process) ends the task.
    fn store_failed(&mut self, operation: &str, error: &crate::store::StoreError) {
        let message = super::error_text(error);
        if matches!(error, crate::store::StoreError::NotFound { .. }) {
            tracing::error!(job = %self.shared.name, operation, error = %message,
                "the job is no longer in the state store; this runner stops following it");
            self.emit(RunEventKind::StoreError {
                operation: operation.to_owned(),
                message,
                retry_at: None,
            });
            self.orphaned = true;
            return;
        }
        let at = self.now() + super::store_retry(&mut self.store_backoff, error);
        self.store_retry_at = Some(at);
        tracing::warn!(job = %self.shared.name, operation, retry_at = %at, error = %message,
            "state store error");
        self.emit(RunEventKind::StoreError {
            operation: operation.to_owned(),
            message,
            retry_at: Some(at),
        });
    }

    fn publish_job(&self) {
        *self
            .shared
            .job
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.job.clone();
    }

    /// Records pods as counted (their outcome is persisted) and forgets those that have
    /// ended or are gone, so a Job with many completions stays cheap.
    fn release(&mut self, names: &[String]) {
        if names.is_empty() {
            return;
        }
        for name in names {
            self.counted.insert(name.clone());
        }
        let counted = &self.counted;
        self.pods
            .retain(|name, p| !(counted.contains(name) && (p.gone || p.is_terminal())));
    }

    /// Starts pods, at most `max_concurrent_calls` at a time. Returns how many started.
    async fn start_pods(&mut self, creates: &[crate::job::PodCreate]) -> usize {
        if creates.is_empty() {
            return 0;
        }
        let now = self.now();
        let mut requests = Vec::with_capacity(creates.len());
        for c in creates {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.pods.insert(
                c.name.clone(),
                Pod {
                    seq,
                    obs: None,
                    requested: Some((c.annotations.clone(), now)),
                    gone: false,
                    delete_requested: None,
                    end_reported: false,
                    restarts: 0,
                    seen_at: now,
                    ended_at: None,
                },
            );
            requests.push(PodRequest::new(&self.job, c));
        }
        let executor = Arc::clone(&self.ctx.executor);
        let results: Vec<(String, Option<i32>, crate::executor::Result<()>)> =
            futures_util::stream::iter(requests)
                .map(|request| {
                    let executor = Arc::clone(&executor);
                    async move {
                        let name = request.name.clone();
                        let index = request.index;
                        (name, index, executor.start(request).await)
                    }
                })
                .buffered(self.ctx.options.max_concurrent_calls.max(1))
                .collect()
                .await;
        let mut started = 0;
        let mut failure: Option<crate::executor::Error> = None;
        for (name, index, result) in results {
            match result {
                Ok(()) => {
                    started += 1;
                    self.emit(RunEventKind::Create { pod: name, index });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    // The pod exists: it will be observed.
                    started += 1;
                    self.emit(RunEventKind::Create { pod: name, index });
                }
                Err(e) => {
                    // Not started: forget it; the machine creates a replacement (with a new
                    // name) once the retry is due.
                    if self.pods.get(&name).is_some_and(|p| p.obs.is_none()) {
                        self.pods.remove(&name);
                    }
                    failure.get_or_insert(e);
                }
            }
        }
        self.after_calls("start", failure);
        started
    }

    /// Deletes pods gracefully, at most `max_concurrent_calls` at a time. Returns how many
    /// were deleted.
    /// Deletes pods; returns how many were deleted and the names whose deletion failed.
    async fn delete_pods(&mut self, names: &[String]) -> (usize, HashSet<String>) {
        let mut failed = HashSet::new();
        if names.is_empty() {
            return (0, failed);
        }
        let results = delete_calls(&self.ctx, names.to_vec()).await;
        let now = self.now();
        let mut deleted = 0;
        let mut failure: Option<crate::executor::Error> = None;
        for (name, result) in results {
            match result {
                Ok(()) => {
                    deleted += 1;
                    if let Some(p) = self.pods.get_mut(&name) {
                        p.delete_requested.get_or_insert(now);
                    }
                    self.emit(RunEventKind::Delete { pod: name });
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    deleted += 1;
                    self.emit(RunEventKind::Delete { pod: name.clone() });
                    self.vanish(&name);
                }
                Err(e) => {
                    failed.insert(name);
                    failure.get_or_insert(e);
                }
            }
        }
        self.after_calls("delete", failure);
        (deleted, failed)
    }

    /// Backoff bookkeeping after a batch of calls: the first failure is reported and sets
    /// the retry time; a batch without failure resets the backoff.
    fn after_calls(&mut self, operation: &str, failure: Option<crate::executor::Error>) {
        match failure {
            None => self.call_backoff.reset(),
            Some(e) => {
                let at = self.now() + self.call_backoff.next_delay(e.is_transient());
                self.call_retry_at = Some(at);
                self.report_error(operation, &e, Some(at));
            }
        }
    }

    /// Deletes the Job: every pod it has (known or listed), gracefully; then the Job.
    /// Deletes the Job: one attempt at deleting every pod, then the Job is marked deleted.
    /// Returns what is left to do (pods whose deletion failed, and whether the pods still
    /// have to be listed) for `finish_deletion`.
    async fn delete_job(&mut self) -> Leftover {
        let now = self.now();
        let mut leftover = Leftover::default();
        // Recorded first: a runner restarted during the deletion finishes it.
        self.job.metadata.deletion_timestamp = Some(now);
        let update = JobUpdate::new(&self.job, &self.memory);
        if let Err(e) = self.ctx.store.update_job(update) {
            tracing::warn!(job = %self.shared.name, error = %super::error_text(&e),
                "cannot record the job's deletion in the state store");
        }
        let mut names: BTreeSet<String> = self.pods.keys().cloned().collect();
        match self.ctx.executor.list(&self.selector).await {
            Ok(listed) => names.extend(listed.into_iter().map(|p| p.name)),
            Err(e) => {
                self.report_error("list", &e, None);
                leftover.relist = true;
            }
        }
        let results = delete_calls(&self.ctx, names.into_iter().collect()).await;
        for (name, result) in results {
            match result {
                Ok(()) => {
                    let running = self
                        .pods
                        .get(&name)
                        .is_some_and(|p| !p.gone && !p.is_terminal());
                    if running {
                        self.emit(RunEventKind::Delete { pod: name });
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => {
                    self.report_error("delete", &e, None);
                    leftover.names.insert(name);
                }
            }
        }
        self.job.metadata.deletion_timestamp = Some(now);
        self.publish_job();
        tracing::info!(job = %self.shared.name, "job deleted");
        self.emit(RunEventKind::JobDelete {
            job: self.shared.name.clone(),
        });
        self.shared.life.send_replace(Life::Deleted);
        self.watch = None;
        leftover
    }

    /// Retries, with backoff, the pod deletions `delete_job` could not do, until
    /// every pod of the deleted Job is gone or unknown to the executor.
    async fn finish_deletion(&mut self, leftover: Leftover) {
        self.delete_leftover_pods(leftover).await;
        // Every pod is being deleted: the Job goes from the store.
        self.forget_job();
    }

    /// Removes the deleted Job from the store (once; removing it again does nothing).
    fn forget_job(&self) {
        if let Err(e) = self
            .ctx
            .store
            .delete_job(&self.shared.name, &self.shared.uid)
        {
            tracing::warn!(job = %self.shared.name, error = %super::error_text(&e),
                "cannot remove the deleted job from the state store");
        }
    }

    async fn delete_leftover_pods(&mut self, mut leftover: Leftover) {
        self.call_backoff.reset();
        while leftover.relist || !leftover.names.is_empty() {
            let at = self.now() + self.call_backoff.next_delay(true);
            tracing::info!(job = %self.shared.name, retry_at = %at, pods = leftover.names.len(),
                "pods of a deleted job are left; retrying their deletion");
            self.ctx.clock.sleep_until(at).await;
            if leftover.relist {
                match self.ctx.executor.list(&self.selector).await {
                    Ok(listed) => {
                        leftover.names.extend(listed.into_iter().map(|p| p.name));
                        leftover.relist = false;
                    }
                    Err(e) => {
                        let next = self.now() + self.call_backoff.peek_delay();
                        self.report_error("list", &e, Some(next));
                        continue;
                    }
                }
            }
            let names: Vec<String> = std::mem::take(&mut leftover.names).into_iter().collect();
            for (name, result) in delete_calls(&self.ctx, names).await {
                match result {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => {
                        let next = self.now() + self.call_backoff.peek_delay();
                        self.report_error("delete", &e, Some(next));
                        leftover.names.insert(name);
                    }
                }
            }
        }
    }
}

/// Pod deletions a Job deletion could not complete at once.
#[derive(Debug, Default)]
struct Leftover {
    /// Pods whose deletion failed.
    names: BTreeSet<String>,
    /// Whether listing the Job's pods failed (so more pods may exist).
    relist: bool,
}

impl Leftover {
    fn is_empty(&self) -> bool {
        self.names.is_empty() && !self.relist
    }
}

/// Deletes pods gracefully, at most `max_concurrent_calls` at a time.
async fn delete_calls(
    ctx: &RunnerInner,
    names: Vec<String>,
) -> Vec<(String, crate::executor::Result<()>)> {
    let executor = Arc::clone(&ctx.executor);
    futures_util::stream::iter(names)
        .map(|name| {
            let executor = Arc::clone(&executor);
            async move {
                let result = executor.delete(&name, None).await;
                (name, result)
            }
        })
        .buffered(ctx.options.max_concurrent_calls.max(1))
        .collect()
        .await
}

/// The next watch event; never completes when there is no watch.
async fn next_event(
    watch: &mut Option<WatchStream>,
) -> Option<crate::executor::Result<WatchEvent>> {
    match watch {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The first non-zero exit code of the app containers, else of the init containers, else 0.
fn exit_code(obs: &PodObservation) -> Option<i32> {
    let codes = |kind_is_app: bool| {
        obs.containers
            .iter()
            .filter(move |c| (c.kind == ContainerKind::App) == kind_is_app)
            .filter_map(|c| c.terminated().map(|t| t.exit_code))
    };
    let mut any = false;
    for code in codes(true).chain(codes(false)) {
        any = true;
        if code != 0 {
            return Some(code);
        }
    }
    any.then_some(0)
}

/// How a terminal pod ended: `Exit` with its code, or `Evict` when it has none (evicted,
/// or failed without any container reporting an exit).
fn end_event(obs: &PodObservation) -> RunEventKind {
    let name = obs.name.clone();
    match (obs.phase, exit_code(obs)) {
        (PodPhase::Succeeded, code) => RunEventKind::Exit {
            pod: name,
            exit_code: code.unwrap_or(0),
        },
        (_, Some(code)) => RunEventKind::Exit {
            pod: name,
            exit_code: code,
        },
        // Evicted (`DisruptionTarget=True`) or failed from outside: no exit code.
        (_, None) => RunEventKind::Evict { pod: name },
    }
}

/// The exit code of the run that ended in an in-place restart: the first non-zero code of
/// the containers' previous runs.
fn restart_exit_code(obs: &PodObservation) -> i32 {
    obs.containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
        .chain(
            obs.containers
                .iter()
                .filter(|c| c.kind != ContainerKind::App),
        )
        .filter_map(|c| c.last_state.as_ref().map(|t| t.exit_code))
        .find(|c| *c != 0)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::{ContainerObservation, ContainerRunState, Terminated};

    fn container(kind: ContainerKind, code: i32) -> ContainerObservation {
        ContainerObservation {
            name: "c".to_owned(),
            kind,
            state: ContainerRunState::Terminated(Terminated {
                exit_code: code,
                ..Terminated::default()
            }),
            ..ContainerObservation::default()
        }
    }

    #[test]
    fn the_exit_code_is_the_first_failing_app_container_then_init() {
        let mut obs = PodObservation {
            name: "p".to_owned(),
            phase: PodPhase::Failed,
            containers: vec![
                container(ContainerKind::App, 0),
                container(ContainerKind::App, 3),
                container(ContainerKind::Init, 7),
            ],
            ..PodObservation::default()
        };
        assert_eq!(
            end_event(&obs),
            RunEventKind::Exit {
                pod: "p".to_owned(),
                exit_code: 3
            }
        );
        obs.containers[1] = container(ContainerKind::App, 0);
        assert_eq!(exit_code(&obs), Some(7));
        obs.containers.clear();
        assert_eq!(
            end_event(&obs),
            RunEventKind::Evict {
                pod: "p".to_owned()
            }
        );
        obs.phase = PodPhase::Succeeded;
        assert_eq!(
            end_event(&obs),
            RunEventKind::Exit {
                pod: "p".to_owned(),
                exit_code: 0
            }
        );
    }
}
