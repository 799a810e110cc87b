//! The executor: the [`Executor`] trait on the Docker Engine API, one supervising task per
//! pod, and the engine's event stream that wakes them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use batch_core::executor::{
    self, Capabilities, ContainerKind, ContainerObservation, ContainerRunState, Error, ErrorKind,
    Executor, LabelSelector, PodObservation, PodRequest, WatchEvent, WatchStream, selector_matches,
};
use batch_core::job::PodPhase;
use batch_core::model::{PodTemplateSpec, PullPolicy, Timestamp};
use batch_core::validation::ValidationErrors;
use bollard::Docker;
use bollard::errors::Error as EngineError;
use bollard::models::VolumeCreateOptions;
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, ListContainersOptions,
    ListVolumesOptions, LogsOptions, RemoveContainerOptions, RemoveVolumeOptions,
    StopContainerOptions, UploadToContainerOptions,
};
use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};

use crate::config::DockerExecutorConfig;
use crate::observe::{self, Action, Run, RunState, Snapshot, Stopping};
use crate::translate::{
    self, ATTEMPT_LABEL, CONTAINER_LABEL, CREATED_LABEL, EXECUTOR_LABEL, GRACE_LABEL, POD_LABEL,
    PodPlan, REQUEST_LABEL, ROLE_LABEL,
};

/// How often a pod that is not finished is looked at without an engine event.
const POLL: Duration = Duration::from_secs(5);
/// The longest wait between retries after the engine failed to answer.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Runs pods as Docker containers. See the [crate docs](crate) for what a pod becomes.
#[derive(Clone)]
pub struct DockerExecutor {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for DockerExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerExecutor")
            .field("host", &self.inner.host)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    docker: Docker,
    config: DockerExecutorConfig,
    /// The engine's address, for messages.
    host: String,
    /// Whether the engine enforces memory limits.
    memory_limit: bool,
    /// The pods this executor supervises.
    pods: Mutex<HashMap<String, Arc<PodHandle>>>,
    watchers: Mutex<Vec<Watcher>>,
    /// The engine event task runs.
    following: AtomicBool,
}

struct Watcher {
    selector: LabelSelector,
    tx: mpsc::UnboundedSender<executor::Result<WatchEvent>>,
}

/// A pod this executor supervises.
struct PodHandle {
    request: PodRequest,
    plan: PodPlan,
    created_at: Timestamp,
    /// Wakes the pod's task (an engine event, a deletion).
    notify: Notify,
    shared: Mutex<Shared>,
}

struct Shared {
    obs: PodObservation,
    /// Deletion requested, with its grace period (`None`: the pod's).
    delete: Option<Option<chrono::Duration>>,
    /// Removed from the engine and reported `Deleted`: the task ends.
    gone: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now() -> Timestamp {
    chrono::Utc::now()
}

/// The engine's answer to a request it refused, if it answered.
fn status_of(e: &EngineError) -> Option<u16> {
    match e {
        EngineError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Whether the engine answered at all (anything else: it could not be reached).
fn answered(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError { .. } | EngineError::DockerStreamError { .. }
    )
}

impl Inner {
    /// An executor error for an engine error.
    fn error(&self, operation: &'static str, what: &str, e: &EngineError) -> Error {
        let kind = match status_of(e) {
            Some(404) => ErrorKind::NotFound,
            Some(409) => ErrorKind::AlreadyExists,
            Some(400) => ErrorKind::InvalidRequest,
            Some(401 | 403) => ErrorKind::PermissionDenied,
            Some(_) => ErrorKind::Other,
            None if answered(e) => ErrorKind::Other,
            None => ErrorKind::Unavailable,
        };
        let message = if kind == ErrorKind::Unavailable {
            format!(
                "{what}: cannot reach the Docker engine at {}: {e}",
                self.host
            )
        } else {
            format!("{what}: the Docker engine at {} said: {e}", self.host)
        };
        Error::new(kind, operation, message)
    }

    fn label_filter(&self, extra: &[(&str, &str)]) -> HashMap<String, Vec<String>> {
        let mut labels = vec![format!("{EXECUTOR_LABEL}={}", self.config.instance)];
        labels.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
        HashMap::from([("label".to_owned(), labels)])
    }

    fn publish(&self, obs: &PodObservation) {
        self.broadcast(&obs.labels, || WatchEvent::Applied(Box::new(obs.clone())));
    }

    fn broadcast(&self, labels: &BTreeMap<String, String>, event: impl Fn() -> WatchEvent) {
        lock(&self.watchers).retain(|w| {
            if !selector_matches(&w.selector, labels) {
                return !w.tx.is_closed();
            }
            w.tx.send(Ok(event())).is_ok()
        });
    }

    /// Tells every watcher that events may have been missed.
    fn broadcast_error(&self, e: &Error) {
        lock(&self.watchers).retain(|w| w.tx.send(Err(e.clone())).is_ok());
    }

    /// What the engine holds of a pod's containers.
    async fn snapshot(&self, pod: &str) -> Result<Snapshot, EngineError> {
        let list = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(self.label_filter(&[(POD_LABEL, pod)])),
                ..ListContainersOptions::default()
            }))
            .await?;
        let mut snapshot = Snapshot::default();
        for summary in list {
            let labels = summary.labels.unwrap_or_default();
            let (Some(name), Some(attempt), Some(id)) = (
                labels.get(CONTAINER_LABEL),
                labels
                    .get(ATTEMPT_LABEL)
                    .and_then(|a| a.parse::<u32>().ok()),
                summary.id,
            ) else {
                continue;
            };
            let inspect = match self
                .docker
                .inspect_container(
                    &id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
            {
                Ok(i) => i,
                // Removed meanwhile.
                Err(e) if status_of(&e) == Some(404) => continue,
                Err(e) => return Err(e),
            };
            snapshot.runs.entry(name.clone()).or_default().push(Run {
                attempt,
                id,
                state: observe::settled(observe::run_state(&inspect), &inspect, chrono::Utc::now()),
            });
        }
        for runs in snapshot.runs.values_mut() {
            runs.sort_by_key(|r| r.attempt);
        }
        Ok(snapshot)
    }

    /// Makes the image of a container available as its pull policy says. `Err(Some(msg))`:
    /// it cannot be had (the pod's container fails with `ErrImagePull`); `Err(None)`: the
    /// engine could not be reached (try again).
    async fn ensure_image(
        &self,
        image: &str,
        policy: &PullPolicy,
    ) -> Result<(), Result<String, EngineError>> {
        let present = match self.docker.inspect_image(image).await {
            Ok(_) => true,
            Err(e) if status_of(&e) == Some(404) => false,
            Err(e) => return Err(Err(e)),
        };
        match policy {
            PullPolicy::Never if present => Ok(()),
            PullPolicy::Never => Err(Ok(format!(
                "image {image:?} is not present and its imagePullPolicy is Never"
            ))),
            PullPolicy::IfNotPresent if present => Ok(()),
            _ => match self.pull(image).await {
                Ok(()) => Ok(()),
                Err(Err(e)) => Err(Err(e)),
                Err(Ok(why)) if present && self.config.always_pull_falls_back_to_local => {
                    tracing::debug!(%image, reason = %why, "pull failed; the local image is used");
                    Ok(())
                }
                Err(Ok(why)) => Err(Ok(why)),
            },
        }
    }

    async fn pull(&self, image: &str) -> Result<(), Result<String, EngineError>> {
        let (from_image, tag) = split_reference(image);
        let mut stream = self.docker.create_image(
            Some(CreateImageOptions {
                from_image: Some(from_image),
                tag,
                ..CreateImageOptions::default()
            }),
            None,
            None,
        );
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        return Err(Ok(format!("cannot pull image {image:?}: {e}")));
                    }
                }
                Err(e) if answered(&e) => {
                    return Err(Ok(format!("cannot pull image {image:?}: {e}")));
                }
                Err(e) => return Err(Err(e)),
            }
        }
        Ok(())
    }

    /// Creates the pod's record and volumes.
    async fn create_pod_objects(
        &self,
        request: &PodRequest,
        plan: &PodPlan,
    ) -> executor::Result<()> {
        let json = serde_json::to_string(request).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                "start",
                format!("cannot encode the pod: {e}"),
            )
        })?;
        let record = VolumeCreateOptions {
            name: Some(translate::record_volume(&request.name)),
            labels: Some(HashMap::from([
                (EXECUTOR_LABEL.to_owned(), self.config.instance.clone()),
                (POD_LABEL.to_owned(), request.name.clone()),
                (ROLE_LABEL.to_owned(), "record".to_owned()),
                (REQUEST_LABEL.to_owned(), json),
                (CREATED_LABEL.to_owned(), now().to_rfc3339()),
            ])),
            ..VolumeCreateOptions::default()
        };
        self.docker
            .create_volume(record)
            .await
            .map_err(|e| self.error("start", "create the pod's record", &e))?;
        for v in &plan.volumes {
            let options = VolumeCreateOptions {
                name: Some(v.name.clone()),
                labels: Some(HashMap::from([
                    (EXECUTOR_LABEL.to_owned(), self.config.instance.clone()),
                    (POD_LABEL.to_owned(), request.name.clone()),
                    (ROLE_LABEL.to_owned(), "volume".to_owned()),
                ])),
                ..VolumeCreateOptions::default()
            };
            self.docker
                .create_volume(options)
                .await
                .map_err(|e| self.error("start", "create a volume of the pod", &e))?;
        }
        Ok(())
    }

    /// Creates and starts run `attempt` of the container in `slot`. `Ok(Some(run))`: it
    /// cannot run (the run to report); `Err`: the engine could not be reached.
    async fn create_run(
        &self,
        pod: &PodHandle,
        slot: usize,
        attempt: u32,
    ) -> Result<Option<Run>, EngineError> {
        let Some(c) = pod.plan.slots().nth(slot) else {
            return Ok(None);
        };
        let failed = |reason: &str, message: String| {
            Ok(Some(Run {
                attempt,
                id: String::new(),
                state: RunState::Ended(executor::Terminated {
                    exit_code: 128,
                    signal: None,
                    reason: reason.to_owned(),
                    message,
                    started_at: None,
                    finished_at: Some(now()),
                }),
            }))
        };
        let mut body = match &c.body {
            Ok(b) => b.clone(),
            Err(why) => return failed("StartError", why.clone()),
        };
        match self.ensure_image(&c.image, &c.pull).await {
            Ok(()) => {}
            Err(Ok(why)) => return failed(observe::PULL_FAILED, why),
            Err(Err(e)) => return Err(e),
        }
        let name = translate::container_name(&pod.request.name, &c.name, attempt);
        body.labels = Some(translate::container_labels(
            &self.config.instance,
            &pod.request.name,
            &c.name,
            attempt,
        ));
        let created = self
            .docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..CreateContainerOptions::default()
                }),
                body,
            )
            .await;
        let id = match created {
            Ok(r) => r.id,
            // Created by another executor adopting the same pod: it is started below.
            Err(e) if status_of(&e) == Some(409) => name.clone(),
            Err(e) if answered(&e) => {
                return failed("StartError", format!("cannot create the container: {e}"));
            }
            Err(e) => return Err(e),
        };
        for (volume, mount_path) in &c.downward_mounts {
            let Some(files) = pod
                .plan
                .volumes
                .iter()
                .find(|v| &v.name == volume)
                .and_then(|v| v.files.as_ref())
            else {
                continue;
            };
            let archive =
                translate::files_archive(files).map_err(|e| EngineError::IOError { err: e })?;
            let upload = self
                .docker
                .upload_to_container(
                    &id,
                    Some(UploadToContainerOptions {
                        path: mount_path.clone(),
                        ..UploadToContainerOptions::default()
                    }),
                    bollard::body_full(archive.into()),
                )
                .await;
            if let Err(e) = upload {
                if !answered(&e) {
                    return Err(e);
                }
                return failed(
                    "StartError",
                    format!("cannot write the downward API files to {mount_path}: {e}"),
                );
            }
        }
        match self
            .docker
            .start_container(
                &id,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
        {
            // A failure to start (no such executable, …) is in the container's state.
            Ok(()) => Ok(None),
            Err(e) if answered(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes every engine object of a pod.
    async fn remove_pod_objects(&self, pod: &str) -> Result<(), EngineError> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(self.label_filter(&[(POD_LABEL, pod)])),
                ..ListContainersOptions::default()
            }))
            .await?;
        for c in containers {
            let Some(id) = c.id else { continue };
            match self
                .docker
                .remove_container(
                    &id,
                    Some(RemoveContainerOptions {
                        force: true,
                        ..RemoveContainerOptions::default()
                    }),
                )
                .await
            {
                Ok(()) => {}
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(self.label_filter(&[(POD_LABEL, pod)])),
            }))
            .await?;
        // The record last: a pod whose removal was cut short is still listed (deleting).
        let mut names: Vec<String> = volumes
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        let record = translate::record_volume(pod);
        names.sort_by_key(|n| *n == record);
        for name in names {
            match self
                .docker
                .remove_volume(&name, Some(RemoveVolumeOptions { force: true }))
                .await
            {
                Ok(()) => {}
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Starts (once) the task that follows the engine's events and wakes pods.
    fn follow_events(self: &Arc<Self>) {
        if self.following.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut delay = Duration::from_millis(200);
            let mut first = true;
            loop {
                let Some(me) = inner.upgrade() else { return };
                let filters = HashMap::from([
                    ("type".to_owned(), vec!["container".to_owned()]),
                    (
                        "label".to_owned(),
                        vec![format!("{EXECUTOR_LABEL}={}", me.config.instance)],
                    ),
                ]);
                let mut events = me.docker.events(Some(EventsOptions {
                    filters: Some(filters),
                    ..EventsOptions::default()
                }));
                if !first {
                    // Events may have been missed: every pod looks again.
                    me.wake_all();
                }
                first = false;
                drop(me);
                let failure = loop {
                    match events.next().await {
                        Some(Ok(event)) => {
                            delay = Duration::from_millis(200);
                            let Some(me) = inner.upgrade() else { return };
                            let pod = event
                                .actor
                                .and_then(|a| a.attributes)
                                .and_then(|a| a.get(POD_LABEL).cloned());
                            if let Some(pod) = pod
                                && let Some(h) = lock(&me.pods).get(&pod)
                            {
                                h.notify.notify_one();
                            }
                        }
                        Some(Err(e)) => break e.to_string(),
                        None => break "the engine closed the event stream".to_owned(),
                    }
                };
                let Some(me) = inner.upgrade() else { return };
                let e = Error::new(
                    ErrorKind::Unavailable,
                    "watch",
                    format!(
                        "lost the event stream of the Docker engine at {}: {failure}",
                        me.host
                    ),
                );
                tracing::warn!(error = %e, "Docker engine event stream lost; reconnecting");
                me.broadcast_error(&e);
                drop(me);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(RETRY_MAX);
            }
        });
    }

    fn wake_all(&self) {
        for h in lock(&self.pods).values() {
            h.notify.notify_one();
        }
    }

    /// Starts supervising a pod (new, or adopted from the engine).
    fn supervise(self: &Arc<Self>, handle: Arc<PodHandle>) {
        self.follow_events();
        tokio::spawn(Arc::clone(self).run_pod(handle));
    }

    /// The pod's task: look, decide, act, wait; until it is deleted.
    async fn run_pod(self: Arc<Self>, pod: Arc<PodHandle>) {
        let name = pod.request.name.clone();
        let mut failures: HashMap<String, Run> = HashMap::new();
        let mut stops: HashSet<String> = HashSet::new();
        let mut retry = Duration::from_millis(250);
        loop {
            let (delete, gone) = {
                let shared = lock(&pod.shared);
                (shared.delete, shared.gone)
            };
            if gone {
                return;
            }
            let mut snapshot = match self.snapshot(&name).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(pod = %name, error = %e, "cannot look at the pod; retrying");
                    tokio::select! {
                        () = pod.notify.notified() => {}
                        () = tokio::time::sleep(retry) => {}
                    }
                    retry = (retry * 2).min(RETRY_MAX);
                    continue;
                }
            };
            retry = Duration::from_millis(250);
            for (container, run) in &failures {
                let runs = snapshot.runs.entry(container.clone()).or_default();
                if runs.last().is_none_or(|r| r.attempt < run.attempt) {
                    runs.push(run.clone());
                }
            }
            let now = now();
            let finished_before = lock(&pod.shared).obs.phase.is_terminal();
            let stopping = Stopping {
                deleting: delete.is_some(),
                deadline: !finished_before
                    && pod
                        .plan
                        .active_deadline
                        .is_some_and(|d| now >= pod.created_at + d),
            };
            let step = observe::step(&pod.plan, &snapshot, stopping, now);
            {
                let mut shared = lock(&pod.shared);
                let before = shared.obs.clone();
                observe::apply(&mut shared.obs, &step, &pod.plan, stopping, now);
                if shared.obs != before {
                    self.publish(&shared.obs);
                }
            }
            if delete.is_some() && step.finished.is_some() {
                match self.remove_pod_objects(&name).await {
                    Ok(()) => {
                        self.forget(&pod);
                        return;
                    }
                    Err(e) => {
                        tracing::debug!(pod = %name, error = %e, "cannot remove the pod yet");
                        tokio::time::sleep(retry).await;
                        retry = (retry * 2).min(RETRY_MAX);
                        continue;
                    }
                }
            }
            let mut acted = false;
            for action in step.actions {
                match action {
                    Action::Create { slot, attempt } => {
                        if attempt > 0 && self.deleted_elsewhere(&name).await {
                            lock(&pod.shared).delete.get_or_insert(None);
                            acted = true;
                            break;
                        }
                        match self.create_run(&pod, slot, attempt).await {
                            Ok(Some(run)) => {
                                if let Some(c) = pod.plan.slots().nth(slot) {
                                    failures.insert(c.name.clone(), run);
                                }
                            }
                            Ok(None) => {}
                            Err(e) => {
                                tracing::debug!(pod = %name, error = %e, "cannot start a container yet");
                                tokio::time::sleep(retry).await;
                                retry = (retry * 2).min(RETRY_MAX);
                            }
                        }
                        acted = true;
                    }
                    Action::Start { id } => {
                        let _ = self
                            .docker
                            .start_container(
                                &id,
                                None::<bollard::query_parameters::StartContainerOptions>,
                            )
                            .await;
                        acted = true;
                    }
                    Action::Stop { id } => {
                        if !stops.insert(id.clone()) {
                            continue;
                        }
                        let grace = match delete {
                            Some(Some(g)) => g,
                            _ => pod.plan.grace,
                        };
                        let secs = i32::try_from((grace.num_milliseconds().max(0) + 999) / 1000)
                            .unwrap_or(i32::MAX);
                        let (me, pod) = (Arc::clone(&self), Arc::clone(&pod));
                        tokio::spawn(async move {
                            let r = me
                                .docker
                                .stop_container(
                                    &id,
                                    Some(StopContainerOptions {
                                        t: Some(secs),
                                        ..StopContainerOptions::default()
                                    }),
                                )
                                .await;
                            if let Err(e) = r {
                                tracing::debug!(container = %id, error = %e, "stop failed");
                            }
                            pod.notify.notify_one();
                        });
                    }
                }
            }
            if lock(&pod.shared).gone {
                // Removed while a container was being created: it goes too.
                let _ = self.remove_pod_objects(&name).await;
                return;
            }
            if acted {
                continue;
            }
            let finished = lock(&pod.shared).obs.phase.is_terminal();
            let wait = match step.wake_at {
                Some(at) => (at - now).to_std().unwrap_or(Duration::ZERO).min(POLL),
                None => POLL,
            };
            if finished && delete.is_none() {
                pod.notify.notified().await;
            } else {
                tokio::select! {
                    () = pod.notify.notified() => {}
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// After its removal from the engine: the pod is forgotten and reported `Deleted`
    /// (once).
    fn forget(&self, pod: &PodHandle) {
        {
            let mut shared = lock(&pod.shared);
            if shared.gone {
                return;
            }
            shared.gone = true;
        }
        let name = &pod.request.name;
        let mut pods = lock(&self.pods);
        if pods
            .get(name)
            .is_some_and(|h| std::ptr::eq(Arc::as_ptr(h), pod))
        {
            pods.remove(name);
        }
        drop(pods);
        self.broadcast(&pod.request.labels, || WatchEvent::Deleted {
            name: name.clone(),
        });
        pod.notify.notify_one();
    }

    /// Whether another executor marked the pod deleted.
    async fn deleted_elsewhere(&self, pod: &str) -> bool {
        self.docker
            .inspect_volume(&translate::deleting_volume(pod))
            .await
            .is_ok()
    }

    /// Takes over a pod recorded in the engine (started by an earlier or another process).
    async fn adopt(self: &Arc<Self>, record: &bollard::models::Volume) -> Option<Arc<PodHandle>> {
        let labels = &record.labels;
        let request: PodRequest = serde_json::from_str(labels.get(REQUEST_LABEL)?).ok()?;
        if let Some(h) = lock(&self.pods).get(&request.name) {
            return Some(Arc::clone(h));
        }
        let created_at = labels
            .get(CREATED_LABEL)
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(now, |t| t.with_timezone(&chrono::Utc));
        let plan = translate::plan(&request, &self.config);
        let mut obs = initial(&request, &plan, created_at);
        let deleting = self
            .docker
            .inspect_volume(&translate::deleting_volume(&request.name))
            .await
            .ok();
        let delete = deleting.map(|v| {
            v.labels
                .get(GRACE_LABEL)
                .and_then(|g| g.parse::<i64>().ok())
                .map(chrono::Duration::milliseconds)
        });
        if let Ok(snapshot) = self.snapshot(&request.name).await {
            let now = now();
            let stopping = Stopping {
                deleting: delete.is_some(),
                deadline: plan.active_deadline.is_some_and(|d| now >= created_at + d),
            };
            let step = observe::step(&plan, &snapshot, stopping, now);
            observe::apply(&mut obs, &step, &plan, stopping, now);
        }
        if delete.is_some() {
            obs.deleting = true;
            obs.deletion_time.get_or_insert(now());
        }
        let handle = Arc::new(PodHandle {
            request,
            plan,
            created_at,
            notify: Notify::new(),
            shared: Mutex::new(Shared {
                obs,
                delete,
                gone: false,
            }),
        });
        {
            let mut pods = lock(&self.pods);
            if let Some(h) = pods.get(&handle.request.name) {
                return Some(Arc::clone(h));
            }
            pods.insert(handle.request.name.clone(), Arc::clone(&handle));
        }
        self.supervise(Arc::clone(&handle));
        Some(handle)
    }

    /// The pod records of this executor's instance in the engine.
    async fn records(
        &self,
        operation: &'static str,
    ) -> executor::Result<Vec<bollard::models::Volume>> {
        let list = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(self.label_filter(&[(ROLE_LABEL, "record")])),
            }))
            .await
            .map_err(|e| self.error(operation, "list pods", &e))?;
        Ok(list.volumes.unwrap_or_default())
    }
}

/// The observation of a pod just accepted: every container waiting.
fn initial(request: &PodRequest, plan: &PodPlan, created_at: Timestamp) -> PodObservation {
    let initializing = !plan.init.is_empty();
    let containers = plan
        .slots()
        .map(|c| ContainerObservation {
            name: c.name.clone(),
            kind: c.kind,
            state: ContainerRunState::Waiting {
                reason: if initializing && c.kind == ContainerKind::App {
                    "PodInitializing".to_owned()
                } else {
                    "ContainerCreating".to_owned()
                },
                message: String::new(),
            },
            ..ContainerObservation::default()
        })
        .collect();
    let mut obs = PodObservation {
        name: request.name.clone(),
        uid: request.name.clone(),
        labels: request.labels.clone(),
        annotations: request.annotations.clone(),
        phase: PodPhase::Pending,
        containers,
        created_at: Some(created_at),
        ..PodObservation::default()
    };
    batch_core::kubelet::set_condition(&mut obs.conditions, "PodScheduled", true, created_at);
    batch_core::kubelet::refresh(&mut obs, &plan.restart_policy, created_at);
    obs
}

/// Splits an image reference into the `fromImage` and `tag` of a pull (`latest` when it
/// names none; a digest stays in the image).
fn split_reference(image: &str) -> (String, Option<String>) {
    if image.contains('@') {
        return (image.to_owned(), None);
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.rsplit_once(':') {
        Some((_, tag)) => {
            let repo = &image[..image.len() - tag.len() - 1];
            (repo.to_owned(), Some(tag.to_owned()))
        }
        None => (image.to_owned(), Some("latest".to_owned())),
    }
}

impl DockerExecutor {
    /// Connects to the engine (negotiating the API version: the engine may speak an older
    /// one than bollard's default) and checks it answers.
    ///
    /// # Errors
    ///
    /// `Unavailable` when the engine cannot be reached (the message names the address).
    pub async fn connect(config: DockerExecutorConfig) -> executor::Result<DockerExecutor> {
        let host = config
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .unwrap_or_else(|| "unix:///var/run/docker.sock".to_owned());
        let unreachable = |e: &dyn std::fmt::Display| {
            Error::new(
                ErrorKind::Unavailable,
                "connect",
                format!("cannot reach the Docker engine at {host}: {e}"),
            )
        };
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            Docker::connect_with_unix(path, 120, bollard::API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(&host, 120, bollard::API_DEFAULT_VERSION)
        } else {
            return Err(Error::new(
                ErrorKind::InvalidRequest,
                "connect",
                format!("unsupported Docker host {host:?} (use unix:// or tcp://)"),
            ));
        }
        .map_err(|e| unreachable(&e))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(&e))?;
        let info = docker.info().await.map_err(|e| unreachable(&e))?;
        Ok(DockerExecutor {
            inner: Arc::new(Inner {
                docker,
                memory_limit: info.memory_limit.unwrap_or(false),
                config,
                host,
                pods: Mutex::new(HashMap::new()),
                watchers: Mutex::new(Vec::new()),
                following: AtomicBool::new(false),
            }),
        })
    }

    /// The engine connection.
    pub fn docker(&self) -> &Docker {
        &self.inner.docker
    }

    /// The configuration.
    pub fn config(&self) -> &DockerExecutorConfig {
        &self.inner.config
    }

    /// The engine's address.
    pub fn host(&self) -> &str {
        &self.inner.host
    }
}

#[async_trait]
impl Executor for DockerExecutor {
    fn name(&self) -> &str {
        "docker"
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::all();
        // The engine reports exit codes only (128 + n after a signal), not the signal.
        caps.signals = false;
        caps.memory_limit = self.inner.memory_limit;
        caps
    }

    fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        translate::check_template(template, &self.inner.config)
    }

    async fn start(&self, pod: PodRequest) -> executor::Result<()> {
        let inner = &self.inner;
        let template = PodTemplateSpec {
            spec: pod.spec.clone(),
            ..PodTemplateSpec::default()
        };
        translate::check_template(&template, &inner.config).map_err(|e| {
            Error::new(
                ErrorKind::InvalidRequest,
                "start",
                format!("pod {}: {e}", pod.name),
            )
        })?;
        let taken = |name: &str| {
            Error::new(
                ErrorKind::AlreadyExists,
                "start",
                format!("a pod named {name:?} exists"),
            )
        };
        if lock(&inner.pods).contains_key(&pod.name) {
            return Err(taken(&pod.name));
        }
        match inner
            .docker
            .inspect_volume(&translate::record_volume(&pod.name))
            .await
        {
            Ok(_) => return Err(taken(&pod.name)),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(inner.error("start", "look for the pod", &e)),
        }
        let plan = translate::plan(&pod, &inner.config);
        inner.create_pod_objects(&pod, &plan).await?;
        let created_at = now();
        let obs = initial(&pod, &plan, created_at);
        let handle = Arc::new(PodHandle {
            request: pod,
            plan,
            created_at,
            notify: Notify::new(),
            shared: Mutex::new(Shared {
                obs: obs.clone(),
                delete: None,
                gone: false,
            }),
        });
        {
            let mut pods = lock(&inner.pods);
            if pods.contains_key(&handle.request.name) {
                return Err(taken(&handle.request.name));
            }
            pods.insert(handle.request.name.clone(), Arc::clone(&handle));
            inner.publish(&obs);
        }
        inner.supervise(handle);
        Ok(())
    }

    async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> executor::Result<()> {
        let inner = &self.inner;
        let mut handle = lock(&inner.pods).get(name).cloned();
        if handle.is_none() {
            let record = match inner
                .docker
                .inspect_volume(&translate::record_volume(name))
                .await
            {
                Ok(v) if v.labels.get(EXECUTOR_LABEL) == Some(&inner.config.instance) => v,
                // Another instance's pod: not this executor's to delete.
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        "delete",
                        format!("no pod named {name:?}"),
                    ));
                }
                Err(e) if status_of(&e) == Some(404) => {
                    return Err(Error::new(
                        ErrorKind::NotFound,
                        "delete",
                        format!("no pod named {name:?}"),
                    ));
                }
                Err(e) => return Err(inner.error("delete", "look for the pod", &e)),
            };
            handle = inner.adopt(&record).await;
        }
        let Some(handle) = handle else {
            return Err(Error::new(
                ErrorKind::NotFound,
                "delete",
                format!("no pod named {name:?} (its record cannot be read)"),
            ));
        };
        let first = {
            let mut shared = lock(&handle.shared);
            let first = shared.delete.is_none();
            if first {
                shared.delete = Some(grace);
                shared.obs.deleting = true;
                shared.obs.deletion_time = Some(now());
                inner.publish(&shared.obs);
            }
            first
        };
        if first {
            let mut labels = HashMap::from([
                (EXECUTOR_LABEL.to_owned(), inner.config.instance.clone()),
                (POD_LABEL.to_owned(), name.to_owned()),
                (ROLE_LABEL.to_owned(), "deleting".to_owned()),
            ]);
            if let Some(g) = grace {
                labels.insert(GRACE_LABEL.to_owned(), g.num_milliseconds().to_string());
            }
            let marker = VolumeCreateOptions {
                name: Some(translate::deleting_volume(name)),
                labels: Some(labels),
                ..VolumeCreateOptions::default()
            };
            if let Err(e) = inner.docker.create_volume(marker).await {
                // The deletion goes on in this process; only other executors miss it.
                tracing::debug!(pod = %name, error = %e, "cannot record the deletion");
            }
        }
        if grace.is_some_and(|g| g <= chrono::Duration::zero()) {
            // No grace: the containers are killed and removed now (the engine does it in
            // one call each), so nothing is left if this process ends right after.
            match inner.remove_pod_objects(name).await {
                Ok(()) => inner.forget(&handle),
                Err(e) => {
                    tracing::debug!(pod = %name, error = %e, "removal left to the pod's task")
                }
            }
        }
        handle.notify.notify_one();
        Ok(())
    }

    async fn list(&self, selector: &LabelSelector) -> executor::Result<Vec<PodObservation>> {
        let inner = &self.inner;
        let records = inner.records("list").await?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for record in &records {
            let Some(pod) = record.labels.get(POD_LABEL) else {
                continue;
            };
            let known = lock(&inner.pods).get(pod).cloned();
            let handle = match known {
                Some(h) => Some(h),
                None => {
                    let request: Option<PodRequest> = record
                        .labels
                        .get(REQUEST_LABEL)
                        .and_then(|r| serde_json::from_str(r).ok());
                    if !request.is_some_and(|r| selector_matches(selector, &r.labels)) {
                        continue;
                    }
                    inner.adopt(record).await
                }
            };
            if let Some(h) = handle
                && selector_matches(selector, &h.request.labels)
                && seen.insert(h.request.name.clone())
            {
                out.push(lock(&h.shared).obs.clone());
            }
        }
        Ok(out)
    }

    async fn watch(&self, selector: &LabelSelector) -> executor::Result<WatchStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.watchers).push(Watcher {
            selector: selector.clone(),
            tx,
        });
        self.inner.follow_events();
        Ok(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        ))
    }

    async fn logs(&self, pod: &str, container: &str) -> executor::Result<Vec<u8>> {
        let inner = &self.inner;
        let list = inner
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(
                    inner.label_filter(&[(POD_LABEL, pod), (CONTAINER_LABEL, container)]),
                ),
                ..ListContainersOptions::default()
            }))
            .await
            .map_err(|e| inner.error("logs", "list the pod's containers", &e))?;
        let latest = list
            .into_iter()
            .filter_map(|c| {
                let attempt = c.labels.as_ref()?.get(ATTEMPT_LABEL)?.parse::<u32>().ok()?;
                Some((attempt, c.id?))
            })
            .max();
        let Some((_, id)) = latest else {
            // Not started yet, or no such pod or container.
            let known = lock(&inner.pods)
                .get(pod)
                .map(|h| h.plan.slots().any(|c| c.name == container));
            let known = match known {
                Some(k) => k,
                None => inner
                    .docker
                    .inspect_volume(&translate::record_volume(pod))
                    .await
                    .ok()
                    .filter(|v| v.labels.get(EXECUTOR_LABEL) == Some(&inner.config.instance))
                    .and_then(|v| {
                        let r: PodRequest =
                            serde_json::from_str(v.labels.get(REQUEST_LABEL)?).ok()?;
                        Some(
                            r.spec
                                .containers
                                .iter()
                                .chain(&r.spec.init_containers)
                                .any(|c| c.name == container),
                        )
                    })
                    .unwrap_or(false),
            };
            return if known {
                Ok(Vec::new())
            } else {
                Err(Error::new(
                    ErrorKind::NotFound,
                    "logs",
                    format!("no container {container:?} in a pod named {pod:?}"),
                ))
            };
        };
        let mut stream = inner.docker.logs(
            &id,
            Some(LogsOptions {
                stdout: true,
                stderr: true,
                ..LogsOptions::default()
            }),
        );
        let mut out = Vec::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => out.extend_from_slice(&chunk.into_bytes()),
                Err(e) if status_of(&e) == Some(404) => break,
                Err(e) => return Err(inner.error("logs", "read the container's logs", &e)),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn references_split_into_image_and_tag() {
        let s = |r: &str| split_reference(r);
        assert_eq!(
            s("busybox"),
            ("busybox".to_owned(), Some("latest".to_owned()))
        );
        assert_eq!(s("bash:5"), ("bash".to_owned(), Some("5".to_owned())));
        assert_eq!(
            s("docker.io/library/bash"),
            (
                "docker.io/library/bash".to_owned(),
                Some("latest".to_owned())
            )
        );
        assert_eq!(
            s("registry:5000/team/app:v2"),
            ("registry:5000/team/app".to_owned(), Some("v2".to_owned()))
        );
        assert_eq!(
            s("registry:5000/team/app"),
            (
                "registry:5000/team/app".to_owned(),
                Some("latest".to_owned())
            )
        );
        assert_eq!(s("app@sha256:0123"), ("app@sha256:0123".to_owned(), None));
    }
}
