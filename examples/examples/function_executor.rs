//! Shows how a third party builds an executor on the `Executor` trait: a `FunctionExecutor`
//! whose "containers" are async Rust functions registered by name, so a service gets
//! Kubernetes Job semantics (retries, back-off, indexes, deadlines, cron) for in-process
//! work. `main` runs an Indexed Job of in-process functions, one of which fails once and is
//! retried, and prints the Job's final status and each pod's outcome and logs.
//!
//! The executor passes the shared conformance suite
//! (`examples/tests/function_executor_conformance.rs`, with its own `Workloads` adapter).
//!
//! Run: `cargo run -p batch-examples --example function_executor`
//!
//! How pods map to functions:
//! - a container's `command[0]` names a registered function, `command[1..]` and `args` are
//!   its arguments; an unregistered name is a start failure (`StartError`, exit 128);
//! - the function gets a [`FunctionContext`]: its environment (with `$(VAR)` references and
//!   `fieldRef`s resolved as the kubelet does), arguments, hostname, a log writer, and a stop
//!   signal (the SIGTERM of a process); it returns its exit code;
//! - a stop (delete, `activeDeadlineSeconds`, the end of the app containers for sidecars)
//!   raises the stop signal; after the grace period the function's task is aborted and the
//!   container reports exit 137 with no signal;
//! - init containers run in order, native sidecars (`restartPolicy: Always`) run beside the
//!   app containers, `restartPolicy: OnFailure` restarts a failed container in place after a
//!   back-off of 10 s, 20 s, 40 s, … (at most 5 min) measured on the executor's clock;
//! - logs are kept in memory until the pod is deleted; list and watch select by labels.
//!
//! What it cannot do (its capabilities say so): report signals, enforce memory limits, or
//! let a restarted process adopt pods (everything lives in memory).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use batch_core::clock::{Clock, SystemClock};
use batch_core::conformance::{Behaviour, Workloads};
use batch_core::executor::{
    Capabilities, ContainerKind, ContainerObservation, ContainerRunState, Error, ErrorKind,
    Executor, LabelSelector, PodObservation, PodRequest, Result, Terminated, WatchEvent,
    WatchStream, selector_matches,
};
use batch_core::job::{PodCondition, PodPhase};
use batch_core::model::{
    ConditionStatus, Container, ContainerRestartPolicy, EnvVar, PodTemplateSpec, RestartPolicy,
    Timestamp,
};
use batch_core::validation::{FieldError, FieldPath, ValidationErrors};
use tokio::sync::{mpsc, oneshot, watch};

// ---------------------------------------------------------------------------------------
// Functions and their context
// ---------------------------------------------------------------------------------------

/// The future a registered function returns: its exit code.
pub(crate) type FunctionFuture = Pin<Box<dyn Future<Output = i32> + Send>>;

/// A registered function.
pub(crate) type Function = Arc<dyn Fn(FunctionContext) -> FunctionFuture + Send + Sync>;

/// What a function sees of its pod: the in-process equivalent of a container's environment.
#[derive(Clone)]
pub(crate) struct FunctionContext {
    /// The pod's name.
    pub(crate) pod: String,
    /// The container's name.
    pub(crate) container: String,
    /// `command[1..]` followed by `args`.
    pub(crate) args: Vec<String>,
    /// The environment, resolved.
    pub(crate) env: BTreeMap<String, String>,
    /// The pod's hostname (its name unless the pod sets one).
    pub(crate) hostname: String,
    log: Arc<Mutex<Vec<u8>>>,
    stop: watch::Receiver<bool>,
}

impl fmt::Debug for FunctionContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionContext")
            .field("pod", &self.pod)
            .field("container", &self.container)
            .field("args", &self.args)
            .field("env", &self.env)
            .field("hostname", &self.hostname)
            .finish_non_exhaustive()
    }
}

impl FunctionContext {
    /// An environment variable.
    pub(crate) fn env(&self, name: &str) -> Option<&str> {
        self.env.get(name).map(String::as_str)
    }

    /// An argument.
    pub(crate) fn arg(&self, i: usize) -> Option<&str> {
        self.args.get(i).map(String::as_str)
    }

    /// Appends raw bytes to the container's log.
    pub(crate) fn write(&self, bytes: &[u8]) {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
    }

    /// Appends a line to the container's log (its "stdout").
    pub(crate) fn println(&self, line: impl fmt::Display) {
        self.write(format!("{line}\n").as_bytes());
    }

    /// Appends a line to the container's log (its "stderr": one log holds both, as
    /// Kubernetes shows them).
    pub(crate) fn eprintln(&self, line: impl fmt::Display) {
        self.println(line);
    }

    /// Whether a stop was requested.
    pub(crate) fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Completes when a stop is requested (delete, deadline, sidecar shutdown): the
    /// function should return soon, before the grace period ends and its task is aborted.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.clone();
        wait_true(&mut stop).await;
    }
}

/// Functions by name.
#[derive(Clone, Default)]
pub(crate) struct Registry {
    functions: BTreeMap<String, Function>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.functions.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new() -> Self {
        Registry::default()
    }

    /// Registers `function` under `name` (replacing an earlier one).
    pub(crate) fn register<F, Fut>(mut self, name: &str, function: F) -> Self
    where
        F: Fn(FunctionContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = i32> + Send + 'static,
    {
        let f: Function = Arc::new(move |ctx| Box::pin(function(ctx)));
        self.functions.insert(name.to_owned(), f);
        self
    }

    /// The registered names.
    pub(crate) fn names(&self) -> Vec<&str> {
        self.functions.keys().map(String::as_str).collect()
    }
}

/// Completes once the flag is true (or its sender is gone: never).
async fn wait_true(rx: &mut watch::Receiver<bool>) {
    if rx.wait_for(|v| *v).await.is_err() {
        std::future::pending::<()>().await;
    }
}

// ---------------------------------------------------------------------------------------
// The executor
// ---------------------------------------------------------------------------------------

/// Runs pods whose containers are registered async functions, in this process.
#[derive(Debug, Clone)]
pub(crate) struct FunctionExecutor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    clock: Arc<dyn Clock>,
    registry: Registry,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    pods: BTreeMap<String, PodEntry>,
    watchers: Vec<(LabelSelector, mpsc::UnboundedSender<Result<WatchEvent>>)>,
}

#[derive(Debug)]
struct PodEntry {
    obs: PodObservation,
    logs: BTreeMap<String, Arc<Mutex<Vec<u8>>>>,
    /// The pod's own `terminationGracePeriodSeconds`.
    grace: chrono::Duration,
    /// A stop request: the grace period to give the functions.
    stop: watch::Sender<Option<chrono::Duration>>,
}

impl State {
    fn applied(&mut self, obs: &PodObservation) {
        self.emit(&obs.labels, &WatchEvent::Applied(Box::new(obs.clone())));
    }

    fn emit(&mut self, labels: &BTreeMap<String, String>, event: &WatchEvent) {
        self.watchers.retain(|(selector, tx)| {
            !selector_matches(selector, labels) || tx.send(Ok(event.clone())).is_ok()
        });
    }
}

impl FunctionExecutor {
    /// An executor running the functions of `registry`, timing back-offs, grace periods and
    /// deadlines with `clock`.
    pub(crate) fn new(registry: Registry, clock: Arc<dyn Clock>) -> Self {
        FunctionExecutor {
            shared: Arc::new(Shared {
                clock,
                registry,
                state: Mutex::new(State::default()),
            }),
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.state.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait::async_trait]
impl Executor for FunctionExecutor {
    fn name(&self) -> &str {
        "function"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::none();
        c.exit_codes = true;
        c.init_containers = true;
        c.sidecar_containers = true;
        c.restart_in_place = true;
        c.graceful_stop = true;
        c.pod_active_deadline = true;
        c.logs = true;
        c.hostname = true;
        // No signals (a function returns a code), no memory limits, and no adoption: every
        // pod lives in this process's memory.
        c
    }

    fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        let spec_path = FieldPath::new("template").child("spec");
        let mut errors = Vec::new();
        let names = self.shared.registry.names();
        let groups = [
            ("initContainers", &template.spec.init_containers),
            ("containers", &template.spec.containers),
        ];
        for (field, containers) in groups {
            for (i, c) in containers.iter().enumerate() {
                let path = spec_path.child(field).index(i);
                match c.command.first() {
                    None => errors.push(FieldError::required(
                        path.child("command"),
                        "command[0] must name a registered function",
                    )),
                    Some(f) if !names.contains(&f.as_str()) => {
                        errors.push(FieldError::not_supported(
                            path.child("command").index(0),
                            f.as_str(),
                            &names,
                        ))
                    }
                    Some(_) => {}
                }
                if c.resources.as_ref().is_some_and(|r| !r.limits.is_empty()) {
                    errors.push(FieldError::forbidden(
                        path.child("resources").child("limits"),
                        "the function executor cannot enforce resource limits",
                    ));
                }
                if !c.volume_mounts.is_empty() {
                    errors.push(FieldError::forbidden(
                        path.child("volumeMounts"),
                        "the function executor has no file system to mount",
                    ));
                }
            }
        }
        if !template.spec.volumes.is_empty() {
            errors.push(FieldError::forbidden(
                spec_path.child("volumes"),
                "the function executor has no volumes",
            ));
        }
        ValidationErrors(errors).into_result()
    }

    async fn start(&self, pod: PodRequest) -> Result<()> {
        let now = self.shared.clock.now();
        let (stop_tx, stop_rx) = watch::channel(None);
        {
            let mut st = lock(&self.shared);
            if st.pods.contains_key(&pod.name) {
                return Err(Error::new(
                    ErrorKind::AlreadyExists,
                    "start",
                    format!("pod {} exists", pod.name),
                ));
            }
            let has_inits = pod
                .spec
                .init_containers
                .iter()
                .any(|c| c.restart_policy.is_none());
            let mut containers = Vec::new();
            for c in &pod.spec.containers {
                containers.push(waiting(
                    &c.name,
                    ContainerKind::App,
                    if has_inits {
                        "PodInitializing"
                    } else {
                        "ContainerCreating"
                    },
                ));
            }
            for c in &pod.spec.init_containers {
                let kind = if c.restart_policy == Some(ContainerRestartPolicy::Always) {
                    ContainerKind::Sidecar
                } else {
                    ContainerKind::Init
                };
                containers.push(waiting(&c.name, kind, "PodInitializing"));
            }
            let logs = pod
                .spec
                .containers
                .iter()
                .chain(&pod.spec.init_containers)
                .map(|c| (c.name.clone(), Arc::new(Mutex::new(Vec::new()))))
                .collect();
            let obs = PodObservation {
                name: pod.name.clone(),
                uid: pod.name.clone(),
                labels: pod.labels.clone(),
                annotations: pod.annotations.clone(),
                phase: PodPhase::Pending,
                containers,
                created_at: Some(now),
                ..PodObservation::default()
            };
            st.emit(&obs.labels, &WatchEvent::Applied(Box::new(obs.clone())));
            st.pods.insert(
                pod.name.clone(),
                PodEntry {
                    obs,
                    logs,
                    grace: pod.termination_grace_period(),
                    stop: stop_tx,
                },
            );
        }
        let run = PodRun {
            shared: Arc::clone(&self.shared),
            pod: Arc::new(pod),
            stop_rx,
            term: Arc::new(watch::channel(false).0),
            kill: Arc::new(watch::channel(false).0),
        };
        tokio::spawn(run.run());
        Ok(())
    }

    async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> Result<()> {
        let now = self.shared.clock.now();
        let mut st = lock(&self.shared);
        let Some(entry) = st.pods.get_mut(name) else {
            return Err(Error::new(
                ErrorKind::NotFound,
                "delete",
                format!("no pod {name}"),
            ));
        };
        if entry.obs.phase.is_terminal() {
            let labels = entry.obs.labels.clone();
            st.pods.remove(name);
            st.emit(
                &labels,
                &WatchEvent::Deleted {
                    name: name.to_owned(),
                },
            );
            return Ok(());
        }
        let grace = grace.unwrap_or(entry.grace).max(chrono::Duration::zero());
        // A later delete may shorten the grace period, never lengthen it.
        entry.stop.send_if_modified(|current| match current {
            Some(g) if *g <= grace => false,
            _ => {
                *current = Some(grace);
                true
            }
        });
        if !entry.obs.deleting {
            entry.obs.deleting = true;
            entry.obs.deletion_time = Some(now);
            let obs = entry.obs.clone();
            st.applied(&obs);
        }
        Ok(())
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>> {
        let st = lock(&self.shared);
        Ok(st
            .pods
            .values()
            .filter(|p| selector_matches(selector, &p.obs.labels))
            .map(|p| p.obs.clone())
            .collect())
    }

    async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream> {
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&self.shared).watchers.push((selector.clone(), tx));
        Ok(Box::pin(futures_util::stream::poll_fn(move |cx| {
            rx.poll_recv(cx)
        })))
    }

    async fn logs(&self, pod: &str, container: &str) -> Result<Vec<u8>> {
        let st = lock(&self.shared);
        let entry = st
            .pods
            .get(pod)
            .ok_or_else(|| Error::new(ErrorKind::NotFound, "logs", format!("no pod {pod}")))?;
        let log = entry.logs.get(container).ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "logs",
                format!("pod {pod} has no container {container}"),
            )
        })?;
        Ok(log.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }
}

fn waiting(name: &str, kind: ContainerKind, reason: &str) -> ContainerObservation {
    ContainerObservation {
        name: name.to_owned(),
        kind,
        state: ContainerRunState::Waiting {
            reason: reason.to_owned(),
            message: String::new(),
        },
        ..ContainerObservation::default()
    }
}

// ---------------------------------------------------------------------------------------
// One pod's life
// ---------------------------------------------------------------------------------------

/// How a container is restarted when it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Restart {
    Never,
    OnFailure,
    Always,
}

/// The task that runs one pod.
#[derive(Debug, Clone)]
struct PodRun {
    shared: Arc<Shared>,
    pod: Arc<PodRequest>,
    stop_rx: watch::Receiver<Option<chrono::Duration>>,
    /// Raised to ask the running functions to stop (SIGTERM).
    term: Arc<watch::Sender<bool>>,
    /// Raised to abort the functions still running (SIGKILL).
    kill: Arc<watch::Sender<bool>>,
}

const BACKOFF_START: chrono::Duration = chrono::Duration::seconds(10);
const BACKOFF_CAP: chrono::Duration = chrono::Duration::minutes(5);

impl PodRun {
    fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Changes the pod's observation, recomputes its (non-terminal) phase, and tells the
    /// watchers.
    fn update(&self, change: impl FnOnce(&mut PodObservation)) {
        let now = self.now();
        let mut st = lock(&self.shared);
        let Some(entry) = st.pods.get_mut(&self.pod.name) else {
            return;
        };
        change(&mut entry.obs);
        if !entry.obs.phase.is_terminal() {
            let apps = self.pod.spec.containers.len();
            entry.obs.phase = running_phase(&entry.obs, apps);
            let ready = entry.obs.phase == PodPhase::Running
                && entry.obs.containers[..apps]
                    .iter()
                    .all(|c| matches!(c.state, ContainerRunState::Running { .. }));
            set_ready(&mut entry.obs, ready, now);
        }
        let obs = entry.obs.clone();
        st.applied(&obs);
    }

    fn update_container(&self, slot: usize, change: impl FnOnce(&mut ContainerObservation)) {
        self.update(|obs| {
            if let Some(c) = obs.containers.get_mut(slot) {
                change(c);
                c.ready = matches!(c.state, ContainerRunState::Running { .. });
            }
        });
    }

    fn log(&self, container: &str) -> Arc<Mutex<Vec<u8>>> {
        lock(&self.shared)
            .pods
            .get(&self.pod.name)
            .and_then(|p| p.logs.get(container).cloned())
            .unwrap_or_default()
    }

    fn stopping(&self) -> bool {
        *self.term.borrow()
    }

    async fn run(self) {
        let started = self.now();
        tokio::select! {
            () = self.lifecycle() => {}
            () = self.stopper(started) => {}
        }
        self.finish();
    }

    /// Waits for a stop (delete or deadline), raises `term`, then `kill` after the grace
    /// period. Never completes by itself: the lifecycle ends once the functions have.
    async fn stopper(&self, started: Timestamp) {
        let mut stop_rx = self.stop_rx.clone();
        let deadline = self
            .pod
            .spec
            .active_deadline_seconds
            .and_then(chrono::Duration::try_seconds)
            .map(|s| started + s);
        let own_grace = self.pod.termination_grace_period();
        let grace = tokio::select! {
            g = async { stop_rx.wait_for(Option::is_some).await.map(|g| *g) } => match g {
                Ok(g) => g.unwrap_or(own_grace),
                Err(_) => return std::future::pending().await,
            },
            () = sleep_until_opt(&*self.shared.clock, deadline) => {
                self.update(|obs| {
                    obs.reason = "DeadlineExceeded".to_owned();
                    obs.message =
                        "Pod was active on the node longer than the specified deadline".to_owned();
                });
                own_grace
            }
        };
        self.term.send_replace(true);
        let asked = self.now();
        let mut kill_at = asked + grace;
        loop {
            tokio::select! {
                () = self.shared.clock.sleep_until(kill_at) => break,
                r = stop_rx.changed() => match r {
                    Ok(()) => {
                        if let Some(g) = *stop_rx.borrow_and_update() {
                            kill_at = kill_at.min(asked + g);
                        }
                    }
                    Err(_) => break,
                },
            }
        }
        self.kill.send_replace(true);
        std::future::pending().await
    }

    /// Init containers, then the app containers beside the sidecars, then the sidecars'
    /// shutdown.
    async fn lifecycle(&self) {
        let policy = match self.pod.spec.restart_policy {
            RestartPolicy::OnFailure => Restart::OnFailure,
            RestartPolicy::Always => Restart::Always,
            _ => Restart::Never,
        };
        let apps = self.pod.spec.containers.len();
        let mut sidecars = Vec::new();
        for (j, c) in self.pod.spec.init_containers.iter().enumerate() {
            if self.stopping() {
                return self.stop_sidecars(sidecars).await;
            }
            let slot = apps + j;
            if c.restart_policy == Some(ContainerRestartPolicy::Always) {
                let (started_tx, started_rx) = oneshot::channel();
                sidecars.push(tokio::spawn(self.clone().run_container(
                    slot,
                    c.clone(),
                    Restart::Always,
                    Some(started_tx),
                )));
                let _ = started_rx.await;
            } else {
                let t = self
                    .clone()
                    .run_container(slot, c.clone(), policy, None)
                    .await;
                if t.exit_code != 0 {
                    return self.stop_sidecars(sidecars).await;
                }
            }
        }
        if self.stopping() {
            return self.stop_sidecars(sidecars).await;
        }
        let handles: Vec<_> = self
            .pod
            .spec
            .containers
            .iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(self.clone().run_container(i, c.clone(), policy, None)))
            .collect();
        futures_util::future::join_all(handles).await;
        self.stop_sidecars(sidecars).await;
    }

    /// Stops the sidecars: the stop signal, then abort after the grace period.
    async fn stop_sidecars(&self, sidecars: Vec<tokio::task::JoinHandle<Terminated>>) {
        if sidecars.is_empty() {
            return;
        }
        self.term.send_replace(true);
        let kill_at = self.now() + self.pod.termination_grace_period();
        let all = futures_util::future::join_all(sidecars);
        tokio::pin!(all);
        tokio::select! {
            _ = &mut all => return,
            () = self.shared.clock.sleep_until(kill_at) => {}
        }
        self.kill.send_replace(true);
        all.await;
    }

    /// Runs a container to its end, restarting it in place as `restart` says.
    async fn run_container(
        self,
        slot: usize,
        container: Container,
        restart: Restart,
        mut started: Option<oneshot::Sender<()>>,
    ) -> Terminated {
        let mut restarts = 0;
        loop {
            let t = self.run_once(slot, &container, &mut started).await;
            let again = !self.stopping()
                && match restart {
                    Restart::Always => true,
                    Restart::OnFailure => t.exit_code != 0,
                    Restart::Never => false,
                };
            if !again {
                self.update_container(slot, |c| {
                    c.state = ContainerRunState::Terminated(t.clone());
                });
                return t;
            }
            let delay =
                (BACKOFF_START * 2i32.saturating_pow(restarts.min(16) as u32)).min(BACKOFF_CAP);
            self.update_container(slot, |c| {
                c.state = ContainerRunState::Waiting {
                    reason: "CrashLoopBackOff".to_owned(),
                    message: format!(
                        "back-off {}s restarting failed container={}",
                        delay.num_seconds(),
                        container.name
                    ),
                };
                c.last_state = Some(t.clone());
            });
            let mut term = self.term.subscribe();
            tokio::select! {
                () = self.shared.clock.sleep_until(self.now() + delay) => {}
                () = wait_true(&mut term) => {
                    self.update_container(slot, |c| {
                        c.state = ContainerRunState::Terminated(t.clone());
                    });
                    return t;
                }
            }
            restarts += 1;
            self.update_container(slot, |c| c.restart_count = restarts);
        }
    }

    /// One run of a container's function.
    async fn run_once(
        &self,
        slot: usize,
        container: &Container,
        started: &mut Option<oneshot::Sender<()>>,
    ) -> Terminated {
        let now = self.now();
        let failed = |message: String| Terminated {
            exit_code: 128,
            reason: "StartError".to_owned(),
            message,
            finished_at: Some(now),
            ..Terminated::default()
        };
        let function = match container.command.first() {
            None => Err(failed(
                "command[0] must name a registered function".to_owned(),
            )),
            Some(name) => self
                .shared
                .registry
                .functions
                .get(name)
                .cloned()
                .ok_or_else(|| failed(format!("no function named {name:?} is registered"))),
        };
        let env = resolve_env(&self.pod, &container.env).map_err(failed);
        let (function, env) = match (function, env) {
            (Ok(f), Ok(env)) => (f, env),
            (Err(t), _) | (_, Err(t)) => {
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
                return t;
            }
        };
        let ctx = FunctionContext {
            pod: self.pod.name.clone(),
            container: container.name.clone(),
            args: container
                .command
                .iter()
                .skip(1)
                .chain(&container.args)
                .cloned()
                .collect(),
            env,
            hostname: self
                .pod
                .hostname
                .clone()
                .unwrap_or_else(|| self.pod.name.clone()),
            log: self.log(&container.name),
            stop: self.term.subscribe(),
        };
        self.update(|obs| {
            obs.started_at.get_or_insert(now);
            if let Some(c) = obs.containers.get_mut(slot) {
                c.state = ContainerRunState::Running {
                    started_at: Some(now),
                };
                c.ready = true;
            }
        });
        if let Some(tx) = started.take() {
            let _ = tx.send(());
        }
        let mut task = tokio::spawn(function(ctx));
        let mut kill = self.kill.subscribe();
        let (exit_code, message) = tokio::select! {
            r = &mut task => match r {
                Ok(code) => (code, String::new()),
                Err(e) if e.is_panic() => (101, "the function panicked".to_owned()),
                Err(_) => (137, "the function was cancelled".to_owned()),
            },
            () = wait_true(&mut kill) => {
                task.abort();
                (137, "killed after the grace period".to_owned())
            }
        };
        Terminated {
            exit_code,
            signal: None,
            reason: if exit_code == 0 { "Completed" } else { "Error" }.to_owned(),
            message,
            started_at: Some(now),
            finished_at: Some(self.now()),
        }
    }

    /// Sets the terminal phase, and removes the pod when a delete asked for it.
    fn finish(&self) {
        let now = self.now();
        let apps = self.pod.spec.containers.len();
        let mut st = lock(&self.shared);
        let Some(entry) = st.pods.get_mut(&self.pod.name) else {
            return;
        };
        let obs = &mut entry.obs;
        let init_failed = obs.containers[apps..].iter().any(|c| {
            c.kind == ContainerKind::Init && c.terminated().is_some_and(|t| t.exit_code != 0)
        });
        let apps_succeeded = obs.containers[..apps]
            .iter()
            .all(|c| c.terminated().is_some_and(|t| t.exit_code == 0));
        obs.phase = if obs.reason == "DeadlineExceeded" || init_failed || !apps_succeeded {
            PodPhase::Failed
        } else {
            PodPhase::Succeeded
        };
        obs.finished_at = Some(now);
        for c in &mut obs.containers {
            c.ready = false;
        }
        set_ready(obs, false, now);
        let obs = obs.clone();
        st.emit(&obs.labels, &WatchEvent::Applied(Box::new(obs.clone())));
        if obs.deleting {
            st.pods.remove(&obs.name);
            st.emit(
                &obs.labels,
                &WatchEvent::Deleted {
                    name: obs.name.clone(),
                },
            );
        }
    }
}

async fn sleep_until_opt(clock: &dyn Clock, at: Option<Timestamp>) {
    match at {
        Some(at) => clock.sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The phase of a pod that has not ended, as the kubelet derives it: `Pending` until the
/// init containers have succeeded, the sidecars have started and every app container has
/// started once; `Running` after that (also between in-place restarts).
fn running_phase(obs: &PodObservation, apps: usize) -> PodPhase {
    let started = |c: &ContainerObservation| {
        !matches!(c.state, ContainerRunState::Waiting { .. }) || c.last_state.is_some()
    };
    let inits_done = obs.containers[apps..].iter().all(|c| match c.kind {
        ContainerKind::Sidecar => started(c),
        _ => c.terminated().is_some_and(|t| t.exit_code == 0),
    });
    if inits_done && obs.containers[..apps].iter().all(started) {
        PodPhase::Running
    } else {
        PodPhase::Pending
    }
}

fn set_ready(obs: &mut PodObservation, ready: bool, now: Timestamp) {
    let status = if ready {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    match obs.conditions.iter_mut().find(|c| c.type_ == "Ready") {
        Some(c) if c.status == status => {}
        Some(c) => {
            c.status = status;
            c.last_transition_time = Some(now);
        }
        None => obs.conditions.push(PodCondition {
            type_: "Ready".to_owned(),
            status,
            reason: String::new(),
            last_transition_time: Some(now),
        }),
    }
    obs.ready = ready;
}

/// The environment of a container as the kubelet builds it: in order, `$(VAR)` replaced by
/// an earlier variable's value (`$$` escapes a `$`; unknown references stay as written), and
/// `fieldRef` sources resolved against the pod.
fn resolve_env(pod: &PodRequest, env: &[EnvVar]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for e in env {
        let value = match &e.value_from {
            Some(source) => match &source.field_ref {
                Some(f) => pod.field_ref(&f.field_path)?,
                None => {
                    return Err(format!(
                        "env {}: only fieldRef sources are supported",
                        e.name
                    ));
                }
            },
            None => expand(e.value.as_deref().unwrap_or_default(), &out),
        };
        out.insert(e.name.clone(), value);
    }
    Ok(out)
}

/// Kubernetes' `$(VAR)` expansion.
fn expand(s: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('(') {
            match body.find(')') {
                Some(end) => {
                    let name = &body[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => out.push_str(&rest[i..i + 3 + end]),
                    }
                    rest = &body[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

// ---------------------------------------------------------------------------------------
// The conformance suite's behaviours, as registered functions
// ---------------------------------------------------------------------------------------

/// Maps the suite's behaviours to the functions of [`conformance_functions`].
#[allow(dead_code)] // Used by tests/function_executor_conformance.rs, not by `main`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FunctionWorkloads;

impl Workloads for FunctionWorkloads {
    fn container(&self, name: &str, behaviour: &Behaviour) -> Container {
        let command: Vec<String> = match behaviour {
            Behaviour::Exit(code) => vec!["exit".into(), code.to_string()],
            Behaviour::SleepThenExit { seconds, code } => {
                vec!["sleep".into(), seconds.to_string(), code.to_string()]
            }
            Behaviour::Print { stdout, stderr } => {
                vec!["print".into(), stdout.clone(), stderr.clone()]
            }
            Behaviour::PrintEnv(names) => {
                let mut v = vec!["print-env".to_owned()];
                v.extend(names.iter().cloned());
                v
            }
            Behaviour::PrintHostname => vec!["print-hostname".into()],
            // A function cannot be signalled; the suite skips the signal case.
            Behaviour::KillSelf(signal) => vec!["exit".into(), (128 + signal).to_string()],
            Behaviour::RunUntilTerminated { code } => vec!["serve".into(), code.to_string()],
            Behaviour::IgnoreTerm => vec!["ignore-stop".into()],
            Behaviour::MissingBinary => vec!["no-such-function".into()],
            Behaviour::AllocateMemory(bytes) => vec!["allocate".into(), bytes.to_string()],
            other => vec!["unknown-behaviour".into(), format!("{other:?}")],
        };
        Container {
            name: name.to_owned(),
            image: "in-process".to_owned(),
            command,
            ..Container::default()
        }
    }
}

#[allow(dead_code)] // Used by tests/function_executor_conformance.rs, not by `main`.
fn int_arg(ctx: &FunctionContext, i: usize) -> i32 {
    ctx.arg(i).and_then(|a| a.parse().ok()).unwrap_or(0)
}

/// The functions [`FunctionWorkloads`] names.
#[allow(dead_code)] // Used by tests/function_executor_conformance.rs, not by `main`.
pub(crate) fn conformance_functions() -> Registry {
    Registry::new()
        .register("exit", |ctx| async move { int_arg(&ctx, 0) })
        .register("sleep", |ctx| async move {
            let seconds = u64::try_from(int_arg(&ctx, 0)).unwrap_or(0);
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(seconds)) => int_arg(&ctx, 1),
                () = ctx.stopped() => 143,
            }
        })
        .register("print", |ctx| async move {
            ctx.println(ctx.arg(0).unwrap_or_default());
            if let Some(err) = ctx.arg(1).filter(|e| !e.is_empty()) {
                ctx.eprintln(err);
            }
            0
        })
        .register("print-env", |ctx| async move {
            for name in &ctx.args {
                ctx.println(format_args!("{name}={}", ctx.env(name).unwrap_or_default()));
            }
            0
        })
        .register("print-hostname", |ctx| async move {
            ctx.println(&ctx.hostname);
            0
        })
        .register("serve", |ctx| async move {
            ctx.println("ready");
            ctx.stopped().await;
            int_arg(&ctx, 0)
        })
        .register("ignore-stop", |ctx| async move {
            ctx.println("ready");
            std::future::pending::<i32>().await
        })
        .register("allocate", |ctx| async move {
            let bytes = ctx.arg(0).and_then(|a| a.parse().ok()).unwrap_or(0usize);
            let block = vec![1u8; bytes];
            ctx.println(format_args!("allocated {} bytes", block.len()));
            0
        })
}

// ---------------------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------------------

const DEMO_JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: squares}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 3
  template:
    spec:
      restartPolicy: Never
      initContainers:
      - name: heartbeat          # a native sidecar: stopped once main has finished
        image: in-process
        command: [heartbeat]
        restartPolicy: Always
      containers:
      - name: main
        image: in-process
        command: [square, "square of"]
        env:
        - {name: GREETING, value: "index $(JOB_COMPLETION_INDEX)"}
"#;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    use std::sync::atomic::{AtomicBool, Ordering};

    use batch_core::loader;
    use batch_core::model::Manifest;
    use batch_core::runner::Runner;

    // Index 2 fails on its first attempt: the Job retries it (backoffLimit 3).
    let failed_once = Arc::new(AtomicBool::new(false));
    let registry = Registry::new()
        .register("square", move |ctx| {
            let failed_once = Arc::clone(&failed_once);
            async move {
                let index: i64 = ctx
                    .env("JOB_COMPLETION_INDEX")
                    .and_then(|i| i.parse().ok())
                    .unwrap_or(0);
                if index == 2 && !failed_once.swap(true, Ordering::SeqCst) {
                    ctx.eprintln("index 2: transient failure, exiting 1");
                    return 1;
                }
                ctx.println(format_args!(
                    "{} {}: {} (on {})",
                    ctx.arg(0).unwrap_or_default(),
                    ctx.env("GREETING").unwrap_or_default(),
                    index * index,
                    ctx.hostname
                ));
                0
            }
        })
        .register("heartbeat", |ctx| async move {
            let mut beats = 0;
            while !ctx.is_stopping() {
                beats += 1;
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(20)) => {}
                    () = ctx.stopped() => {}
                }
            }
            ctx.println(format_args!("stopped after {beats} beats"));
            0
        });
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let executor = Arc::new(FunctionExecutor::new(registry, Arc::clone(&clock)));

    let docs = loader::load_str(DEMO_JOB, "squares.yaml")?;
    let Some(Some(Manifest::Job(job))) = docs.into_iter().next().map(|d| d.object) else {
        anyhow::bail!("the demo manifest is a Job");
    };
    let runner = Runner::new(executor.clone(), clock);
    let handle = runner.submit_job(*job)?;
    let status = handle.wait().await?;
    println!(
        "Job {}: succeeded={} failed={} completedIndexes={:?}",
        handle.name(),
        status.succeeded,
        status.failed,
        status.completed_indexes
    );
    for c in &status.conditions {
        println!("  condition {}={:?} {}", c.type_, c.status, c.reason);
    }
    let mut pods = executor.list(&LabelSelector::new()).await?;
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    for pod in pods {
        let exit = pod
            .containers
            .first()
            .and_then(|c| c.terminated())
            .map(|t| t.exit_code);
        let logs = executor.logs(&pod.name, "main").await?;
        let heartbeat = executor.logs(&pod.name, "heartbeat").await?;
        println!(
            "  pod {}: {:?} exit={exit:?} logs={:?} sidecar={:?}",
            pod.name,
            pod.phase,
            String::from_utf8_lossy(&logs).trim_end(),
            String::from_utf8_lossy(&heartbeat).trim_end()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_kubernetes() {
        let vars = BTreeMap::from([("A".to_owned(), "1".to_owned())]);
        assert_eq!(
            expand("x-$(A)-$(B)-$$(A)-$-$(", &vars),
            "x-1-$(B)-$(A)-$-$("
        );
    }
}
