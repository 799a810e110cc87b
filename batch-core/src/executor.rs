//! The [`Executor`] trait: what a backend (local processes, Docker, Kubernetes, your own)
//! must do to run the pods the Job machine decides on.
//!
//! Executors **report facts and make no decisions** (decisions §7): they start a pod from a
//! [`PodRequest`], stop one, list the pods they hold, stream [`PodObservation`]s, and return
//! logs. Retries, backoff, indexes, deadlines and policies belong to the runner and the
//! machines. A pod that fails is an observation, never an `Err`; an `Err` ([`Error`]) means
//! the executor could not do or see what was asked.
//!
//! The trait is object-safe; the runner holds an `Arc<dyn Executor>`.
//!
//! ```
//! use batch_core::executor::PodRequest;
//! use batch_core::{defaults, job, model::Job};
//! use chrono::{TimeZone, Utc};
//!
//! let mut job: Job = serde_norway::from_str("
//! metadata: {name: demo}
//! spec: {completions: 2, completionMode: Indexed,
//!        template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox, command: [env]}]}}}
//! ").unwrap();
//! defaults::prepare_job_for_create(&mut job, "uid-1");
//! let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
//! let step = job::reconcile(&job, &[], &job::JobMemory::default(), now);
//! let pod = PodRequest::new(&job, &step.create[0]);
//! assert_eq!(pod.hostname.as_deref(), Some("demo-0"));
//! assert_eq!(pod.spec.containers[0].env[0].name, "JOB_COMPLETION_INDEX");
//! assert_eq!(pod.spec.containers[0].env[0].value.as_deref(), Some("0"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::job::{ContainerState, ObservedPod, PodCondition, PodCreate, PodPhase};
use crate::model::{ConditionStatus, Container, EnvVar, Job, PodSpec, PodTemplateSpec, Timestamp};
use crate::validation::ValidationErrors;

/// Label on every pod: the owning Job's name.
pub const JOB_NAME_LABEL: &str = crate::defaults::JOB_NAME_LABEL;
/// Label on every pod: the owning Job's UID.
pub const CONTROLLER_UID_LABEL: &str = crate::defaults::CONTROLLER_UID_LABEL;

/// The Job a pod belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRef {
    /// The Job's namespace (empty: the executor's default).
    #[serde(default)]
    pub namespace: String,
    /// The Job's name.
    pub name: String,
    /// The Job's UID.
    pub uid: String,
}

/// A pod to start: the Job's pod template after the core's substitutions.
///
/// [`PodRequest::new`] builds it from a Job and a [`PodCreate`] decision: the template's
/// labels and annotations merged with the machine's (job name, controller UID, completion
/// index, failure counts), `JOB_COMPLETION_INDEX` added to every container and init container
/// that does not define it, and the hostname of Indexed Jobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodRequest {
    /// The pod's name, unique among the executor's pods.
    pub name: String,
    /// The owning Job.
    pub job: JobRef,
    /// The completion index (Indexed Jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    /// Labels (selectable with [`Executor::list`] and [`Executor::watch`]).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The hostname the pod's containers should see, when the backend can set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The pod specification, with env substitutions applied.
    pub spec: PodSpec,
}

impl PodRequest {
    /// The request for a pod the Job machine decided to create.
    pub fn new(job: &Job, create: &PodCreate) -> Self {
        let mut spec = job.spec.template.spec.clone();
        for c in spec
            .init_containers
            .iter_mut()
            .chain(spec.containers.iter_mut())
        {
            let mut added = Vec::new();
            for (name, value) in &create.env {
                if !c.env.iter().any(|e| &e.name == name) {
                    added.push(EnvVar {
                        name: name.clone(),
                        value: Some(value.clone()),
                        ..EnvVar::default()
                    });
                }
            }
            // The machine's variables come first, so `$(JOB_COMPLETION_INDEX)` in the
            // template's own variables can refer to them.
            if !added.is_empty() {
                added.append(&mut c.env);
                c.env = added;
            }
        }
        if create.hostname.is_some() {
            spec.hostname.clone_from(&create.hostname);
        }
        PodRequest {
            name: create.name.clone(),
            job: JobRef {
                namespace: job.metadata.namespace.clone().unwrap_or_default(),
                name: job.metadata.name.clone().unwrap_or_default(),
                uid: job.metadata.uid.clone().unwrap_or_default(),
            },
            index: create.index,
            labels: create.labels.clone(),
            annotations: create.annotations.clone(),
            hostname: spec.hostname.clone(),
            spec,
        }
    }

    /// `terminationGracePeriodSeconds`, defaulting to 30 s as Kubernetes does.
    pub fn termination_grace_period(&self) -> chrono::Duration {
        self.spec
            .termination_grace_period_seconds
            .and_then(|s| chrono::Duration::try_seconds(s.max(0)))
            .unwrap_or(chrono::Duration::seconds(30))
    }

    /// Resolves a `fieldRef` path (`metadata.name`, `metadata.namespace`, `metadata.uid`,
    /// `metadata.labels['k']`, `metadata.annotations['k']`, `spec.hostname`) against this pod,
    /// as the kubelet does for `env[].valueFrom.fieldRef` and downward API files.
    ///
    /// # Errors
    ///
    /// The path is not one a pod can resolve (the message names it).
    pub fn field_ref(&self, path: &str) -> Result<String, String> {
        let keyed = |prefix: &str, map: &BTreeMap<String, String>| -> Option<String> {
            let rest = path.strip_prefix(prefix)?;
            let key = rest
                .strip_prefix("['")
                .and_then(|r| r.strip_suffix("']"))
                .or_else(|| rest.strip_prefix("[\"").and_then(|r| r.strip_suffix("\"]")))?;
            Some(map.get(key).cloned().unwrap_or_default())
        };
        match path {
            "metadata.name" => Ok(self.name.clone()),
            "metadata.namespace" => Ok(self.job.namespace.clone()),
            "metadata.uid" => Ok(self.name.clone()),
            "spec.hostname" => Ok(self.hostname.clone().unwrap_or_else(|| self.name.clone())),
            "metadata.labels" | "metadata.annotations" => {
                let map = if path == "metadata.labels" {
                    &self.labels
                } else {
                    &self.annotations
                };
                Ok(map
                    .iter()
                    .map(|(k, v)| format!("{k}={v:?}"))
                    .collect::<Vec<_>>()
                    .join("\n"))
            }
            _ => keyed("metadata.labels", &self.labels)
                .or_else(|| keyed("metadata.annotations", &self.annotations))
                .ok_or_else(|| format!("unsupported fieldRef path {path:?}")),
        }
    }

    /// The container's variables in order, as the kubelet computes them: a literal value may
    /// refer to variables defined before it as `$(NAME)`; `fieldRef` values are resolved against
    /// the pod. A later definition of a name replaces an earlier one.
    ///
    /// # Errors
    ///
    /// A `valueFrom` other than a `fieldRef` this pod can resolve (the message names the
    /// variable).
    pub fn container_env(&self, c: &Container) -> Result<Vec<(String, String)>, String> {
        let mut vars: Vec<(String, String)> = Vec::with_capacity(c.env.len());
        for e in &c.env {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) if !v.is_empty() => {
                    let found =
                        |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
                    expand_vars(v, found)
                }
                (_, Some(from)) => match &from.field_ref {
                    Some(f) => self
                        .field_ref(&f.field_path)
                        .map_err(|err| format!("env {:?}: {err}", e.name))?,
                    None => {
                        return Err(format!(
                            "env {:?}: only valueFrom.fieldRef is supported",
                            e.name
                        ));
                    }
                },
                _ => String::new(),
            };
            match vars.iter_mut().find(|(k, _)| *k == e.name) {
                Some(slot) => slot.1 = value,
                None => vars.push((e.name.clone(), value)),
            }
        }
        Ok(vars)
    }
}

/// Expands `$(VAR)` references the way Kubernetes does (`third_party/forked/golang/expansion`):
/// `$$` is a literal `$`, a reference to an unknown variable is left as written, and an
/// unterminated `$(` is kept. Executors apply it to `command`, `args` and `env` values.
///
/// ```
/// use batch_core::executor::expand_vars;
/// let vars = |name: &str| (name == "N").then(|| "3".to_owned());
/// assert_eq!(expand_vars("n=$(N) $(X) $$(N)", vars), "n=3 $(X) $(N)");
/// ```
pub fn expand_vars(input: &str, mapping: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.extend_from_slice(&bytes[checkpoint..cursor]);
            let rest = &bytes[cursor + 1..];
            let advance = match rest[0] {
                b'$' => {
                    out.push(b'$');
                    1
                }
                b'(' => match rest.iter().position(|&b| b == b')') {
                    Some(close) => {
                        let name = String::from_utf8_lossy(&rest[1..close]);
                        match mapping(&name) {
                            Some(v) => out.extend_from_slice(v.as_bytes()),
                            None => {
                                out.extend_from_slice(b"$(");
                                out.extend_from_slice(name.as_bytes());
                                out.push(b')');
                            }
                        }
                        close + 1
                    }
                    None => {
                        out.extend_from_slice(b"$(");
                        1
                    }
                },
                other => {
                    out.push(b'$');
                    out.push(other);
                    1
                }
            };
            cursor += advance;
            checkpoint = cursor + 1;
        }
        cursor += 1;
    }
    out.extend_from_slice(&bytes[checkpoint.min(bytes.len())..]);
    String::from_utf8_lossy(&out).into_owned()
}

/// How a container took part in its pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[non_exhaustive]
pub enum ContainerKind {
    /// An app container (`spec.containers`).
    #[default]
    App,
    /// A regular init container: runs to completion before the app containers.
    Init,
    /// A native sidecar (init container with `restartPolicy: Always`).
    Sidecar,
}

/// A container that has terminated.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Terminated {
    /// The exit code (128 + signal number when killed by a signal, as container runtimes
    /// report it).
    pub exit_code: i32,
    /// The signal that ended it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// Why: `Completed`, `Error`, `OOMKilled`, `StartError`, `DeadlineExceeded`, …
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Human-readable detail.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

/// The current state of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ContainerRunState {
    /// Not running yet, or waiting to restart (`reason` such as `PodInitializing`,
    /// `CrashLoopBackOff`).
    Waiting {
        /// Why it waits.
        #[serde(default)]
        reason: String,
        /// Detail.
        #[serde(default)]
        message: String,
    },
    /// Running since `started_at`.
    Running {
        /// When it started.
        #[serde(default)]
        started_at: Option<Timestamp>,
    },
    /// Ended.
    Terminated(Terminated),
}

impl Default for ContainerRunState {
    fn default() -> Self {
        ContainerRunState::Waiting {
            reason: String::new(),
            message: String::new(),
        }
    }
}

/// One container of an observed pod.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerObservation {
    /// The container's name.
    pub name: String,
    /// App, init or sidecar.
    #[serde(default)]
    pub kind: ContainerKind,
    /// Its state now.
    #[serde(default)]
    pub state: ContainerRunState,
    /// The previous run's end, after an in-place restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_state: Option<Terminated>,
    /// In-place restarts so far.
    #[serde(default)]
    pub restart_count: i32,
    /// Whether it is ready (running, for executors without probes).
    #[serde(default)]
    pub ready: bool,
}

impl ContainerObservation {
    /// The termination, when the container has ended.
    pub fn terminated(&self) -> Option<&Terminated> {
        match &self.state {
            ContainerRunState::Terminated(t) => Some(t),
            _ => None,
        }
    }
}

/// Everything an executor knows about one pod at one moment: facts only.
///
/// Observations are snapshots: a later one replaces an earlier one of the same pod.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodObservation {
    /// The pod's name.
    pub name: String,
    /// The backend's UID for it (may equal the name).
    #[serde(default)]
    pub uid: String,
    /// Its labels (as requested).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Its annotations (as requested).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// The phase, derived from the containers as the kubelet does.
    pub phase: PodPhase,
    /// Pod-level reason (`DeadlineExceeded`, `Evicted`, …).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    /// Pod-level message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// App containers in template order, then init containers (including sidecars) in
    /// template order.
    #[serde(default)]
    pub containers: Vec<ContainerObservation>,
    /// Conditions (`Ready`, `DisruptionTarget`, …).
    #[serde(default)]
    pub conditions: Vec<PodCondition>,
    /// Whether the pod is ready.
    #[serde(default)]
    pub ready: bool,
    /// Whether a stop (deletion) was requested.
    #[serde(default)]
    pub deleting: bool,
    /// When the stop was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_time: Option<Timestamp>,
    /// When the executor accepted the pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<Timestamp>,
    /// When its first container started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When it reached a terminal phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
}

impl PodObservation {
    /// The observation as the Job machine reads it. `counted` says whether the runner has
    /// already recorded this pod's outcome in the status.
    pub fn to_observed_pod(&self, counted: bool) -> ObservedPod {
        let ready_since = self
            .conditions
            .iter()
            .find(|c| c.type_ == "Ready" && c.status == ConditionStatus::True)
            .and_then(|c| c.last_transition_time);
        ObservedPod {
            name: self.name.clone(),
            uid: self.uid.clone(),
            phase: self.phase,
            index: self
                .annotations
                .get(crate::job::COMPLETION_INDEX_ANNOTATION)
                .or_else(|| self.labels.get(crate::job::COMPLETION_INDEX_ANNOTATION))
                .cloned(),
            annotations: self.annotations.clone(),
            ready: self.ready,
            ready_since: if self.ready { ready_since } else { None },
            scheduled: Some(true),
            deleting: self.deleting,
            deletion_time: self.deletion_time,
            counted,
            containers: self
                .containers
                .iter()
                .map(|c| {
                    let t = c.terminated();
                    ContainerState {
                        name: c.name.clone(),
                        init: c.kind != ContainerKind::App,
                        exit_code: t.map(|t| t.exit_code),
                        finished_at: t.and_then(|t| t.finished_at),
                        restarts: c.restart_count,
                    }
                })
                .collect(),
            conditions: self.conditions.clone(),
            created_at: self.created_at,
            finished_at: self.finished_at,
        }
    }
}

/// A change to the pods a watch selects.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum WatchEvent {
    /// A pod was created or changed: its full current state.
    Applied(Box<PodObservation>),
    /// A pod is gone (deleted and its processes ended).
    Deleted {
        /// The pod's name.
        name: String,
    },
}

/// The stream [`Executor::watch`] returns. An `Err` item reports a problem with the watch
/// (the caller should list again); the stream may continue after it.
pub type WatchStream = Pin<Box<dyn futures_core::Stream<Item = Result<WatchEvent>> + Send>>;

/// Label equality selector: a pod matches when it has every label with the given value.
pub type LabelSelector = BTreeMap<String, String>;

/// Whether `labels` has every key of `selector` with the same value.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// What an executor can do. Conformance cases that need a capability check it first and
/// report a skip naming it when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Capabilities {
    /// Reports each container's exit code.
    pub exit_codes: bool,
    /// Reports the signal that killed a container.
    pub signals: bool,
    /// Runs init containers in order before the app containers.
    pub init_containers: bool,
    /// Runs native sidecars (init containers with `restartPolicy: Always`).
    pub sidecar_containers: bool,
    /// Restarts failed containers in place (`restartPolicy: OnFailure`).
    pub restart_in_place: bool,
    /// Stops a pod with a grace period before killing it.
    pub graceful_stop: bool,
    /// Enforces the pod's `activeDeadlineSeconds`.
    pub pod_active_deadline: bool,
    /// Enforces memory limits and reports `OOMKilled`.
    pub memory_limit: bool,
    /// Returns container logs.
    pub logs: bool,
    /// Lists pods started by an earlier process (a restarted runner can adopt them).
    pub adoption: bool,
    /// Sets the pod's hostname.
    pub hostname: bool,
}

impl Capabilities {
    /// Nothing beyond starting, stopping and observing pods.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Every capability.
    pub fn all() -> Self {
        Capabilities {
            exit_codes: true,
            signals: true,
            init_containers: true,
            sidecar_containers: true,
            restart_in_place: true,
            graceful_stop: true,
            pod_active_deadline: true,
            memory_limit: true,
            logs: true,
            adoption: true,
            hostname: true,
        }
    }
}

/// The kind of an [`Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The pod (or Job) does not exist.
    NotFound,
    /// A pod with that name exists already.
    AlreadyExists,
    /// The backend cannot be reached or is overloaded; retrying may help.
    Unavailable,
    /// The request cannot be honoured as given.
    InvalidRequest,
    /// The executor does not support what was asked.
    Unsupported,
    /// The backend refused: permissions.
    PermissionDenied,
    /// Anything else.
    Other,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::AlreadyExists => "already exists",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Other => "error",
        })
    }
}

/// An executor could not do or see what was asked.
///
/// Carries a portable [`ErrorKind`], the operation (`start`, `delete`, `list`, …), a message
/// about this layer, and the backend's error as [`source`](std::error::Error::source).
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    operation: &'static str,
    message: String,
    transient: bool,
    source: Option<Arc<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// A new error. `Unavailable` errors are transient; others are not unless
    /// [`with_transient`](Error::with_transient) says so.
    pub fn new(kind: ErrorKind, operation: &'static str, message: impl Into<String>) -> Self {
        Error {
            kind,
            operation,
            message: message.into(),
            transient: kind == ErrorKind::Unavailable,
            source: None,
        }
    }

    /// Attaches the backend's error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Marks the error as worth retrying (or not).
    #[must_use]
    pub fn with_transient(mut self, transient: bool) -> Self {
        self.transient = transient;
        self
    }

    /// The portable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// The operation that failed.
    pub fn operation(&self) -> &'static str {
        self.operation
    }

    /// The message (without the source's text).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed ({}): {}",
            self.operation, self.kind, self.message
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// `Result` with an executor [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A backend that runs pods.
///
/// Contract (the conformance suite checks it):
/// - [`start`](Executor::start) returns once the pod is accepted; its containers run in the
///   background. A container that cannot start (missing binary, no permission, image that
///   cannot be pulled) is an observed failure of the pod, not an `Err`. Starting a name that
///   exists is [`ErrorKind::AlreadyExists`].
/// - Every change of a pod is delivered to the [`watch`](Executor::watch) streams that select
///   it, as a full [`PodObservation`]; a pod that is gone as [`WatchEvent::Deleted`].
/// - [`delete`](Executor::delete) stops a pod: the stop signal, then a kill after the grace
///   period; the pod is observed `deleting` and then terminal, and then it is gone. Deleting
///   a terminal pod removes it at once (with its logs). Unknown names are `NotFound`.
/// - [`list`](Executor::list) returns every pod the executor holds that matches, including
///   pods started by an earlier process when [`Capabilities::adoption`] is set.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + fmt::Debug + 'static {
    /// A short name for messages and capability tables (`local`, `docker`, `k8s`).
    fn name(&self) -> &str;

    /// What this executor can do.
    fn capabilities(&self) -> Capabilities;

    /// Checks a Job's pod template before its first pod starts, so that fields this executor
    /// cannot honour are rejected early instead of ignored. Paths start at `template`
    /// (`template.spec.volumes[0].nfs`); callers prefix them.
    ///
    /// # Errors
    ///
    /// Every field that this executor cannot honour, with its path.
    fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors>;

    /// Starts a pod.
    async fn start(&self, pod: PodRequest) -> Result<()>;

    /// Stops and removes a pod: stop signal, kill after `grace` (the pod's own
    /// `terminationGracePeriodSeconds` when `None`).
    async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> Result<()>;

    /// The pods whose labels match `selector`.
    async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>>;

    /// A stream of changes to the pods whose labels match `selector`, from now on. Callers
    /// list after subscribing to learn the current state.
    async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream>;

    /// The captured output (stdout and stderr, interleaved as written where the backend
    /// keeps them together) of one container of a pod.
    async fn logs(&self, pod: &str, container: &str) -> Result<Vec<u8>>;
}

macro_rules! forward_executor {
    ($ty:ty) => {
        #[deny(clippy::missing_trait_methods)]
        #[async_trait::async_trait]
        impl<E: Executor + ?Sized> Executor for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
                (**self).check_template(template)
            }
            async fn start(&self, pod: PodRequest) -> Result<()> {
                (**self).start(pod).await
            }
            async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> Result<()> {
                (**self).delete(name, grace).await
            }
            async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>> {
                (**self).list(selector).await
            }
            async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream> {
                (**self).watch(selector).await
            }
            async fn logs(&self, pod: &str, container: &str) -> Result<Vec<u8>> {
                (**self).logs(pod, container).await
            }
        }
    };
}

forward_executor!(Arc<E>);
forward_executor!(Box<E>);

/// Helpers on every [`Executor`]; implementors never implement this.
#[async_trait::async_trait]
pub trait ExecutorExt: Executor {
    /// The pods of one Job (by its UID label).
    ///
    /// # Errors
    ///
    /// As [`Executor::list`].
    async fn list_job_pods(&self, job_uid: &str) -> Result<Vec<PodObservation>> {
        let selector = LabelSelector::from([(CONTROLLER_UID_LABEL.to_owned(), job_uid.to_owned())]);
        self.list(&selector).await
    }

    /// The logs of a container as text (invalid UTF-8 replaced).
    ///
    /// # Errors
    ///
    /// As [`Executor::logs`].
    async fn logs_text(&self, pod: &str, container: &str) -> Result<String> {
        let bytes = self.logs(pod, container).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }
}

impl<E: Executor + ?Sized> ExecutorExt for E {}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn expansion_follows_kubernetes_rules() {
        let m = lookup(&[("A", "1"), ("B", "two")]);
        assert_eq!(expand_vars("$(A)-$(B)", &m), "1-two");
        assert_eq!(expand_vars("$$(A)", &m), "$(A)");
        assert_eq!(expand_vars("$$$(A)", &m), "$1");
        assert_eq!(expand_vars("$(MISSING)", &m), "$(MISSING)");
        assert_eq!(expand_vars("$(A", &m), "$(A");
        assert_eq!(expand_vars("a$", &m), "a$");
        assert_eq!(expand_vars("$x$(A)", &m), "$x1");
        assert_eq!(expand_vars("é$(B)ü", &m), "étwoü");
        assert_eq!(expand_vars("", &m), "");
        assert_eq!(expand_vars("$()", &m), "$()");
        assert_eq!(expand_vars("kill -9 $$$$; exit", &m), "kill -9 $$; exit");
        assert_eq!(expand_vars("$$$$", &m), "$$");
    }

    fn assert_object_safe(_: &dyn Executor) {}

    #[test]
    fn executor_is_object_safe_and_errors_are_send_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Error>();
        send_sync::<Arc<dyn Executor>>();
        let _ = assert_object_safe;
    }

    #[test]
    fn unavailable_errors_are_transient_by_default() {
        assert!(Error::new(ErrorKind::Unavailable, "start", "daemon down").is_transient());
        assert!(!Error::new(ErrorKind::NotFound, "delete", "no pod").is_transient());
        let e = Error::new(ErrorKind::Other, "list", "boom").with_transient(true);
        assert!(e.is_transient());
        assert_eq!(e.to_string(), "list failed (error): boom");
    }
}
