//! The CronJob task: one per submitted CronJob; its child Jobs run as Job tasks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::{
    Backoff, JobHandle, Life, RunError, RunEvent, RunEventKind, Runner, Sleep, SubmitError,
    earliest,
};
use crate::cronjob::{ChildJob, CronJobDecision};
use crate::job::EventType;
use crate::model::{CronJob, CronJobStatus, Timestamp};

/// At most this many CronJob steps run back to back while each one changes something.
const MAX_STEPS_PER_WAKE: usize = 100;

/// Follows and controls one running CronJob. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CronJobHandle {
    shared: Arc<CronShared>,
}

#[derive(Debug)]
struct CronShared {
    name: String,
    cron_job: Mutex<CronJob>,
    status: watch::Sender<CronJobStatus>,
    events: broadcast::Sender<RunEvent>,
    /// Subscribed before the task started: the first [`CronJobHandle::events`] call takes it.
    first_events: Mutex<Option<broadcast::Receiver<RunEvent>>>,
    children: Mutex<Vec<JobHandle>>,
    life: watch::Sender<Life>,
    commands: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
enum Command {
    Suspend(bool, oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

impl CronJobHandle {
    /// The CronJob's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The CronJob as the runner holds it now (after defaulting, with the latest status).
    pub fn cron_job(&self) -> CronJob {
        self.shared
            .cron_job
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The latest status.
    pub fn status(&self) -> CronJobStatus {
        self.shared.status.borrow().clone()
    }

    /// A receiver that sees every status change.
    pub fn status_watch(&self) -> watch::Receiver<CronJobStatus> {
        self.shared.status.subscribe()
    }

    /// A receiver of the CronJob's events: its own (`jobCreate`, `jobFinish`,
    /// `jobDelete`, warnings; `job` is the CronJob's name, except in `JobDelete` and
    /// `JobFinish` which name the child) and those of its child Jobs (pod events,
    /// conditions, executor errors; `job` is the child's name). Children's
    /// [`RunEventKind::Status`] events are not forwarded.
    ///
    /// As for [`JobHandle::events`], the first call receives every event since the
    /// CronJob was submitted, later calls the events from then on, and lag behaves the
    /// same.
    pub fn events(&self) -> broadcast::Receiver<RunEvent> {
        self.shared
            .first_events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .unwrap_or_else(|| self.shared.events.subscribe())
    }

    /// The child Jobs that exist now, in creation order.
    pub fn jobs(&self) -> Vec<JobHandle> {
        self.shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Suspends the CronJob (`spec.suspend: true`): no new Job is created; running ones go
    /// on. Returns once the runner has applied the change.
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] when the CronJob was stopped (or its task ended).
    pub async fn suspend(&self) -> Result<(), RunError> {
        self.set_suspend(true).await
    }

    /// Resumes a suspended CronJob (`spec.suspend: false`).
    ///
    /// # Errors
    ///
    /// As [`suspend`](CronJobHandle::suspend).
    pub async fn resume(&self) -> Result<(), RunError> {
        self.set_suspend(false).await
    }

    async fn set_suspend(&self, suspend: bool) -> Result<(), RunError> {
        let (tx, rx) = oneshot::channel();
        self.shared
            .commands
            .send(Command::Suspend(suspend, tx))
            .map_err(|_| RunError::Stopped)?;
        rx.await.map_err(|_| RunError::Stopped)
    }

    /// Stops the CronJob: no more Jobs are scheduled, and the child Jobs still running are
    /// deleted (their pods deleted gracefully). Finished child Jobs are kept. Stopping a
    /// stopped CronJob does nothing.
    ///
    /// # Errors
    ///
    /// [`RunError::Stopped`] when the task ended without being stopped (the runtime shut
    /// down).
    pub async fn stop(&self) -> Result<(), RunError> {
        let (tx, rx) = oneshot::channel();
        if self.shared.commands.send(Command::Stop(tx)).is_err() {
            return self.stopped();
        }
        match rx.await {
            Ok(()) => Ok(()),
            Err(_) => self.stopped(),
        }
    }

    fn stopped(&self) -> Result<(), RunError> {
        match *self.shared.life.borrow() {
            Life::Deleted => Ok(()),
            Life::Running | Life::Stopped => Err(RunError::Stopped),
        }
    }

    /// Whether the CronJob has been stopped.
    pub fn is_stopped(&self) -> bool {
        *self.shared.life.borrow() != Life::Running
    }
}

pub(super) fn submit(runner: &Runner, mut cron_job: CronJob) -> Result<CronJobHandle, SubmitError> {
    let inner = &runner.inner;
    let now = inner.clock.now();
    crate::defaults::default_cron_job(&mut cron_job);
    if cron_job.metadata.uid.as_deref().is_none_or(str::is_empty) {
        cron_job.metadata.uid = Some(super::generate_uid(cron_job.name(), now));
    }
    if cron_job.metadata.creation_timestamp.is_none() {
        cron_job.metadata.creation_timestamp = Some(now);
    }
    crate::validation::validate_cron_job(&cron_job).map_err(SubmitError::Invalid)?;
    super::check_template(
        inner.executor.as_ref(),
        &cron_job.spec.job_template.spec.template,
        "spec.jobTemplate.spec.",
    )?;
    super::runtime()?;
    inner.store.create_cron_job(&cron_job)?;
    spawn(runner, cron_job, Vec::new())
}

/// Carries on with a stored CronJob and its stored Jobs.
pub(super) fn resume(
    runner: &Runner,
    cron_job: CronJob,
    children: Vec<crate::store::JobRecord>,
) -> Result<CronJobHandle, SubmitError> {
    tracing::info!(cron_job = %cron_job.name(), jobs = children.len(),
        last_schedule_time = ?cron_job.status.last_schedule_time, "resuming cronjob");
    let handles = children
        .into_iter()
        .map(|r| super::job::resume(runner, r))
        .collect::<Result<Vec<_>, _>>()?;
    spawn(runner, cron_job, handles)
}

/// Spawns the task of a recorded CronJob that has these Jobs already.
fn spawn(
    runner: &Runner,
    cron_job: CronJob,
    children: Vec<JobHandle>,
) -> Result<CronJobHandle, SubmitError> {
    let rt = super::runtime()?;
    let inner = &runner.inner;
    let (commands, commands_rx) = mpsc::unbounded_channel();
    let (events, first_events) = broadcast::channel(inner.options.event_capacity.max(1));
    let shared = Arc::new(CronShared {
        name: cron_job.name().to_owned(),
        cron_job: Mutex::new(cron_job.clone()),
        status: watch::Sender::new(cron_job.status.clone()),
        events,
        first_events: Mutex::new(Some(first_events)),
        children: Mutex::new(Vec::new()),
        life: watch::Sender::new(Life::Running),
        commands,
    });
    let backoff = Backoff::new(&inner.options);
    let mut task = CronTask {
        shared: Arc::clone(&shared),
        runner: runner.clone(),
        commands: commands_rx,
        cron_job,
        children: Vec::new(),
        notify: Arc::new(Notify::new()),
        requeue_at: None,
        backoff,
        retry_at: None,
        acks: Vec::new(),
        sleep: Sleep::new(),
        spec_dirty: false,
    };
    for handle in children {
        let events = handle.events();
        let finished = handle.is_finished();
        task.adopt(handle, events);
        if let Some(c) = task.children.last_mut() {
            // Reported by the process that saw it finish.
            c.finish_reported = finished;
        }
    }
    task.publish_children();
    rt.spawn(task.run());
    Ok(CronJobHandle { shared })
}

/// A child Job, with the task forwarding its events and status changes.
struct Child {
    handle: JobHandle,
    forwarder: JoinHandle<()>,
    /// Tells the forwarder to pass on what is queued and stop.
    drain: Arc<Notify>,
    /// Set when the CronJob deletes the child itself (it reports the `JobDelete`).
    muted: Arc<AtomicBool>,
    finish_reported: bool,
}

enum Wake {
    Command(Option<Command>),
    Child,
    Timer,
}

struct LifeGuard(Arc<CronShared>);

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

struct CronTask {
    shared: Arc<CronShared>,
    runner: Runner,
    commands: mpsc::UnboundedReceiver<Command>,
    cron_job: CronJob,
    children: Vec<Child>,
    /// Woken by the forwarders whenever a child's status changes or its task ends.
    notify: Arc<Notify>,
    requeue_at: Option<Timestamp>,
    backoff: Backoff,
    /// While set and in the future, a Job the machine wants created waits.
    retry_at: Option<Timestamp>,
    acks: Vec<oneshot::Sender<()>>,
    sleep: Sleep,
    /// The spec changed (suspend) since the last store write.
    spec_dirty: bool,
}

impl CronTask {
    fn now(&self) -> Timestamp {
        self.runner.inner.clock.now()
    }

    fn emit(&self, kind: RunEventKind) {
        let _ = self.shared.events.send(RunEvent {
            t: self.now(),
            job: self.shared.name.clone(),
            kind,
        });
    }

    async fn run(mut self) {
        let _guard = LifeGuard(Arc::clone(&self.shared));
        let mut dirty = true;
        let mut handled_due: Option<Timestamp> = None;
        loop {
            if dirty {
                dirty = false;
                for _ in 0..MAX_STEPS_PER_WAKE {
                    if !self.step().await {
                        break;
                    }
                }
            }
            for ack in self.acks.drain(..) {
                let _ = ack.send(());
            }
            let now = self.now();
            if self.retry_at.is_some_and(|t| t <= now) {
                self.retry_at = None;
            }
            // A schedule time that came due while the step was applied is acted on now, once.
            if let Some(due) = self.requeue_at.filter(|t| *t <= now)
                && handled_due != Some(due)
            {
                handled_due = Some(due);
                dirty = true;
                continue;
            }
            let deadline =
                earliest([self.requeue_at, self.retry_at].map(|t| t.filter(|t| *t > now)));
            self.sleep.set(self.runner.inner.clock.as_ref(), deadline);
            let notify = Arc::clone(&self.notify);
            let wake = tokio::select! {
                biased;
                c = self.commands.recv() => Wake::Command(c),
                () = notify.notified() => Wake::Child,
                () = self.sleep.wait() => Wake::Timer,
            };
            match wake {
                Wake::Command(Some(Command::Stop(ack))) => {
                    self.stop().await;
                    let _ = ack.send(());
                    return;
                }
                Wake::Command(Some(Command::Suspend(suspend, ack))) => {
                    self.cron_job.spec.suspend = Some(suspend);
                    self.spec_dirty = true;
                    self.publish();
                    self.acks.push(ack);
                    dirty = true;
                }
                Wake::Command(None) => {}
                Wake::Child | Wake::Timer => dirty = true,
            }
        }
    }

    /// One machine step, applied. Returns whether it changed anything.
    async fn step(&mut self) -> bool {
        let now = self.now();
        // Children deleted from elsewhere (their TTL) no longer exist.
        let before = self.children.len();
        self.children.retain(|c| {
            let deleted = c.handle.is_deleted();
            if deleted {
                c.forwarder.abort();
            }
            !deleted
        });
        if self.children.len() != before {
            self.publish_children();
        }
        let mut facts = Vec::with_capacity(self.children.len());
        let mut finished = Vec::new();
        for c in &mut self.children {
            let fact = ChildJob::from_job(&c.handle.job());
            if let Some(result) = fact.finished
                && !c.finish_reported
            {
                c.finish_reported = true;
                finished.push(RunEventKind::JobFinish {
                    job: fact.name.clone(),
                    result,
                });
            }
            facts.push(fact);
        }
        for kind in finished {
            self.emit(kind);
        }
        let d =
            crate::cronjob::reconcile(&self.cron_job, &facts, now, &self.runner.inner.options.cron);
        self.apply(d, now).await
    }

    async fn apply(&mut self, d: CronJobDecision, now: Timestamp) -> bool {
        let mut changed = false;
        for name in &d.delete {
            if let Some(i) = self.children.iter().position(|c| c.handle.name() == name) {
                let child = self.children.remove(i);
                child.muted.store(true, Ordering::SeqCst);
                // A Job deleted already is fine.
                let _ = child.handle.delete().await;
                // Once deleted, the child's task has sent its last events (its pods'
                // deletions): the forwarder passes on what is queued and stops. Told to, so
                // that the wait is bounded even if the child's task could not be reached.
                child.drain.notify_one();
                let _ = child.forwarder.await;
                self.publish_children();
                self.emit(RunEventKind::JobDelete { job: name.clone() });
                changed = true;
            }
        }
        let mut persist = true;
        if let Some(job) = d.create {
            let exists = self.children.iter().any(|c| c.handle.name() == job.name());
            if !exists {
                if self.retry_at.is_some_and(|t| t > now) {
                    // Backing off after a failed create: keep the old status, so the same
                    // slot is asked for again when the retry is due.
                    persist = false;
                } else {
                    let name = job.name().to_owned();
                    match super::job::submit(&self.runner, job) {
                        Ok(handle) => {
                            // The first receiver: every event since the child was submitted.
                            let events = handle.events();
                            self.backoff.reset();
                            self.emit(RunEventKind::JobCreate {
                                job: name,
                                scheduled_time: d.scheduled_time,
                            });
                            self.adopt(handle, events);
                            changed = true;
                        }
                        Err(e) => {
                            persist = false;
                            let at = now + self.backoff.next_delay(false);
                            self.retry_at = Some(at);
                            let message = format!("Error creating job: {e}");
                            tracing::warn!(cron_job = %self.shared.name, job = %name, error = %e, retry_at = %at, "failed to create job");
                            self.emit(RunEventKind::Warning {
                                reason: "FailedCreate".to_owned(),
                                message,
                            });
                        }
                    }
                }
            }
        }
        for e in &d.events {
            match e.type_ {
                EventType::Warning => {
                    tracing::warn!(cron_job = %self.shared.name, reason = %e.reason, message = %e.message, "cronjob event");
                    self.emit(RunEventKind::Warning {
                        reason: e.reason.clone(),
                        message: e.message.clone(),
                    });
                }
                _ => {
                    tracing::info!(cron_job = %self.shared.name, reason = %e.reason, message = %e.message, "cronjob event");
                }
            }
        }
        if persist && (d.status != self.cron_job.status || self.spec_dirty) {
            // Recorded before it is published. A Job created above is recorded already
            // (as the CronJob's), so a crash between the two writes finds it on restart and
            // the slot is not created twice.
            let old = std::mem::replace(&mut self.cron_job.status, d.status);
            if let Err(e) = self.runner.inner.store.update_cron_job(&self.cron_job) {
                self.cron_job.status = old;
                let at = now + self.backoff.next_delay(true);
                self.retry_at = Some(at);
                let message = e.to_string();
                tracing::warn!(cron_job = %self.shared.name, error = %message, retry_at = %at,
                    "cannot record the cronjob's status");
                self.emit(RunEventKind::StoreError {
                    operation: "record the cronjob's status".to_owned(),
                    message,
                    retry_at: Some(at),
                });
            } else {
                self.spec_dirty = false;
                if self.cron_job.status != old {
                    self.publish();
                    self.shared
                        .status
                        .send_replace(self.cron_job.status.clone());
                    self.emit(RunEventKind::Status);
                    changed = true;
                }
            }
        }
        self.requeue_at = d.requeue_at.filter(|t| *t > now);
        tracing::debug!(
            cron_job = %self.shared.name,
            deleted = d.delete.len(),
            active = self.cron_job.status.active.len(),
            requeue_at = ?self.requeue_at,
            changed,
            "cronjob step"
        );
        changed
    }

    /// Starts following a new child Job.
    fn adopt(&mut self, handle: JobHandle, events: broadcast::Receiver<RunEvent>) {
        let muted = Arc::new(AtomicBool::new(false));
        let drain = Arc::new(Notify::new());
        let forwarder = tokio::spawn(forward(
            handle.clone(),
            events,
            Arc::clone(&self.shared),
            Arc::clone(&self.notify),
            Arc::clone(&muted),
            Arc::clone(&drain),
        ));
        self.children.push(Child {
            handle,
            forwarder,
            drain,
            muted,
            finish_reported: false,
        });
        self.publish_children();
    }

    fn publish(&self) {
        *self
            .shared
            .cron_job
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.cron_job.clone();
    }

    fn publish_children(&self) {
        *self
            .shared
            .children
            .lock()
            .unwrap_or_else(PoisonError::into_inner) =
            self.children.iter().map(|c| c.handle.clone()).collect();
    }

    /// Deletes the running children and ends.
    async fn stop(&mut self) {
        let mut deleted = 0;
        for c in std::mem::take(&mut self.children) {
            if c.handle.is_finished() {
                c.forwarder.abort();
                self.children.push(c);
                continue;
            }
            c.muted.store(true, Ordering::SeqCst);
            let _ = c.handle.delete().await;
            // As in `apply`: the child's last events come before its `JobDelete`.
            c.drain.notify_one();
            let _ = c.forwarder.await;
            deleted += 1;
            self.emit(RunEventKind::JobDelete {
                job: c.handle.name().to_owned(),
            });
        }
        self.publish_children();
        // The CronJob and its finished Jobs leave the store (the running ones removed
        // themselves once their pods were gone); their handles stay readable.
        let store = &self.runner.inner.store;
        for c in &self.children {
            if let Err(e) = store.delete_job(c.handle.name(), c.handle.uid()) {
                tracing::warn!(job = %c.handle.name(), error = %e, "cannot remove a job from the state store");
            }
        }
        let uid = self.cron_job.metadata.uid.clone().unwrap_or_default();
        if let Err(e) = store.delete_cron_job(&self.shared.name, &uid) {
            tracing::warn!(cron_job = %self.shared.name, error = %e, "cannot remove the cronjob from the state store");
        }
        tracing::info!(cron_job = %self.shared.name, deleted, "cronjob stopped");
        // Ended on purpose (as a deleted Job's task); `Stopped` means it ended otherwise.
        self.shared.life.send_replace(Life::Deleted);
    }
}

/// Forwards a child's events to the CronJob's channel and wakes the CronJob when the
/// child's status changes or its task ends. Stops, after passing on what is queued, when the
/// child's task ends or `drain` is notified.
async fn forward(
    handle: JobHandle,
    mut events: broadcast::Receiver<RunEvent>,
    cron: Arc<CronShared>,
    notify: Arc<Notify>,
    muted: Arc<AtomicBool>,
    drain: Arc<Notify>,
) {
    let mut status = handle.status_watch();
    let mut life = handle.life_watch();
    let pass = |event: RunEvent| {
        let skip = matches!(event.kind, RunEventKind::Status)
            || (matches!(event.kind, RunEventKind::JobDelete { .. })
                && muted.load(Ordering::SeqCst));
        if !skip {
            let _ = cron.events.send(event);
        }
    };
    let pass_queued = |events: &mut broadcast::Receiver<RunEvent>| loop {
        match events.try_recv() {
            Ok(event) => pass(event),
            Err(broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    };
    loop {
        tokio::select! {
            () = drain.notified() => {
                pass_queued(&mut events);
                break;
            }
            e = events.recv() => match e {
                Ok(event) => pass(event),
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            r = status.changed() => {
                if r.is_err() {
                    break;
                }
                notify.notify_one();
            }
            r = life.changed() => {
                if r.is_err() || *life.borrow_and_update() != Life::Running {
                    // The child's task has ended: pass on what it sent before, then stop.
                    pass_queued(&mut events);
                    notify.notify_one();
                    break;
                }
            }
        }
    }
}
