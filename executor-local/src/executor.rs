//! [`LocalExecutor`]: the [`Executor`] implementation.
//!
//! Each pod is one tokio task (no thread per pod) that runs the pod's init containers in
//! order, then its app containers together, restarting containers in place as the restart
//! policy says, and finally stops the sidecars. Container processes are reaped by tokio.
//! Every change is published to the watch streams as a full observation.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use batch_core::clock::{Clock, SystemClock};
use batch_core::executor::{
    self, Capabilities, ContainerKind, ContainerRunState, Executor, LabelSelector, PodObservation,
    PodRequest, Terminated, WatchEvent, WatchStream, selector_matches,
};
use batch_core::job::PodPhase;
use batch_core::model::{PodTemplateSpec, RestartPolicy, Timestamp};
use batch_core::validation::ValidationErrors;
use nix::sys::signal::Signal;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cgroup::CgroupParent;
use crate::config::{LocalExecutorConfig, MemoryEnforcement, ShimCommand, Supervisor};
use crate::error::{LocalError, check_name};
use crate::observe;
use crate::process::{self, MemoryControl};
use crate::store::{self, Owner, PodRecord};
use crate::translate::{self, ContainerPlan, PodPlan, VolumePlan};

/// Runs pods as local processes. See the [crate documentation](crate) for what it supports.
///
/// Cloning gives another handle to the same executor.
#[derive(Clone)]
pub struct LocalExecutor {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    pods_dir: PathBuf,
    clock: Arc<dyn Clock>,
    memory: MemoryControl,
    owner: Owner,
    pods: Mutex<HashMap<String, Arc<Pod>>>,
    watchers: Mutex<Vec<Watcher>>,
    /// Observations of other processes' pods that can no longer change, by name, with the
    /// inode of the `pod.json` they were read from.
    foreign: Mutex<HashMap<String, (u64, PodObservation)>>,
    /// Shim mode: how to start a pod's shim.
    shim: Option<ShimCommand>,
    /// This executor is a shim hosting one pod (its records say so).
    hosted: bool,
    /// Pods whose shims this executor started and still follows, with their latest
    /// observation.
    shims: Mutex<HashMap<String, ShimPod>>,
    /// Whether the poller of other processes' pods runs.
    polling: std::sync::atomic::AtomicBool,
    /// Pods this executor stopped following because another shim runs them (with their
    /// labels), for the poller's next pass: it has not seen them yet, so if their directory
    /// is already gone it reports them `Deleted` from here.
    handed_over: Mutex<HashMap<String, BTreeMap<String, String>>>,
}

/// A pod run by a shim this executor started.
#[derive(Debug)]
struct ShimPod {
    /// The accepted pod (to record its end if the shim cannot).
    request: PodRequest,
    /// The latest observation the shim reported.
    last: PodObservation,
    /// The shim process, signalled only while it is that process (same start time).
    process: Option<Owner>,
    /// `delete` asked the shim to stop the pod (`stop.json` is written).
    stop_requested: bool,
}

struct Watcher {
    selector: LabelSelector,
    tx: mpsc::UnboundedSender<executor::Result<WatchEvent>>,
}

/// A pod this executor runs.
#[derive(Debug)]
struct Pod {
    request: PodRequest,
    plan: PodPlan,
    dir: PathBuf,
    state: Mutex<PodState>,
    /// Set once to stop the pod; the value is when to kill what is still running.
    stop: watch::Sender<Option<Stop>>,
}

#[derive(Debug)]
struct PodState {
    obs: PodObservation,
    deadline_exceeded: bool,
    /// Stopped without being deleted (a shim that received SIGTERM without a stop request):
    /// the pod ends `Failed`, reason `Terminated`, unless it succeeded.
    shut_down: bool,
    /// The terminal observation has been published.
    announced: bool,
    /// The process groups of running app and init containers (sidecars are stopped by the
    /// pod's task, after the app containers).
    groups: Vec<i32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stop {
    kill_at: Timestamp,
}

/// Why a pod is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopCause {
    /// It is deleted: its directory is removed once it has stopped.
    Delete,
    /// Its `activeDeadlineSeconds` passed.
    Deadline,
    /// Its shim was told to stop without a deletion (SIGTERM without `stop.json`): it ends
    /// and its end is recorded.
    Shutdown,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl fmt::Debug for LocalExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalExecutor")
            .field("root", &self.inner.root)
            .field("memory", &self.inner.memory)
            .field("pods", &lock(&self.inner.pods).len())
            .finish_non_exhaustive()
    }
}

impl LocalExecutor {
    /// An executor on the system clock.
    ///
    /// # Errors
    ///
    /// The root directory cannot be created.
    pub fn new(config: LocalExecutorConfig) -> executor::Result<Self> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// An executor whose timestamps and timers (restart backoff, grace periods,
    /// `activeDeadlineSeconds`) come from `clock`.
    ///
    /// # Errors
    ///
    /// The root directory cannot be created.
    pub fn with_clock(
        config: LocalExecutorConfig,
        clock: Arc<dyn Clock>,
    ) -> executor::Result<Self> {
        Self::build(config, clock, false)
    }

    fn build(
        config: LocalExecutorConfig,
        clock: Arc<dyn Clock>,
        hosted: bool,
    ) -> executor::Result<Self> {
        let pods_dir = store::pods_dir(&config.root);
        fs::create_dir_all(&pods_dir)
            .map_err(|e| LocalError::io("create", &pods_dir, e).into_executor("new"))?;
        // Pod directories whose removal an earlier process did not finish (left to the
        // executors: a shim must start in constant time, however many pods exist).
        if let Some(entries) = (!hosted).then(|| fs::read_dir(&pods_dir).ok()).flatten() {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(".deleting-") {
                    remove_tree_in_background(entry.path());
                } else if name.starts_with(STAGING_PREFIX) && is_stale(&entry) {
                    // A pod whose start was interrupted before it was renamed into place.
                    remove_tree_in_background(entry.path());
                }
            }
        }
        let memory = match config.memory_enforcement {
            MemoryEnforcement::Auto => CgroupParent::detect()
                .map(MemoryControl::Cgroup)
                .unwrap_or(MemoryControl::AddressSpace),
            MemoryEnforcement::AddressSpace => MemoryControl::AddressSpace,
        };
        let shim = match config.supervisor {
            Supervisor::InProcess => None,
            Supervisor::Shim(command) => Some(command),
        };
        Ok(LocalExecutor {
            inner: Arc::new(Inner {
                root: config.root,
                pods_dir,
                clock,
                memory,
                owner: Owner::current(),
                pods: Mutex::new(HashMap::new()),
                watchers: Mutex::new(Vec::new()),
                foreign: Mutex::new(HashMap::new()),
                shim,
                hosted,
                shims: Mutex::new(HashMap::new()),
                polling: std::sync::atomic::AtomicBool::new(false),
                handed_over: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The executor a shim runs its one pod with: in-process, system clock, records marked
    /// as the shim's.
    /// `memory_limits`: whether the pod has any (a memory cgroup is only looked for then,
    /// which costs a probe cgroup).
    pub(crate) fn for_shim(root: PathBuf, memory_limits: bool) -> executor::Result<Self> {
        let config = LocalExecutorConfig {
            root,
            memory_enforcement: if memory_limits {
                MemoryEnforcement::Auto
            } else {
                MemoryEnforcement::AddressSpace
            },
            ..LocalExecutorConfig::default()
        };
        Self::build(config, Arc::new(SystemClock), true)
    }

    /// Runs an accepted pod whose directory exists already (the shim's side of
    /// [`Supervisor::Shim`]).
    pub(crate) fn host(&self, request: PodRequest, dir: &Path) -> executor::Result<()> {
        // The names become file names: checked again, the record may have been edited.
        let names = std::iter::once(("pod", &request.name)).chain(
            request
                .spec
                .init_containers
                .iter()
                .chain(&request.spec.containers)
                .map(|c| ("container", &c.name)),
        );
        for (what, name) in names {
            check_name(what, name).map_err(|e| e.into_executor("start"))?;
        }
        let (plan, obs) = self
            .inner
            .record(&request, dir, dir, false)
            .map_err(|e| e.into_executor("start"))?;
        self.inner.start_in(request, dir, plan, obs);
        Ok(())
    }

    /// Asks a hosted pod to stop (the shim received SIGTERM): deleted, or only stopped.
    pub(crate) fn stop_hosted(
        &self,
        name: &str,
        grace: Option<chrono::Duration>,
        cause: StopCause,
    ) {
        let pod = lock(&self.inner.pods).get(name).cloned();
        if let Some(pod) = pod
            && self.inner.request_stop(&pod, grace, cause)
            && cause == StopCause::Delete
        {
            self.inner.remove(name, &pod.dir, &pod.request.labels);
        }
    }

    /// The root directory (`pods/<pod-name>/` lives under it).
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The directory of a pod: `root/pods/<name>` (it exists while the pod does).
    pub fn pod_dir(&self, name: &str) -> PathBuf {
        self.inner.pods_dir.join(name)
    }
}

#[async_trait::async_trait]
impl Executor for LocalExecutor {
    fn name(&self) -> &str {
        "local"
    }

    fn capabilities(&self) -> Capabilities {
        let mut c = Capabilities::all();
        c.memory_limit = matches!(self.inner.memory, MemoryControl::Cgroup(_));
        c.hostname = false;
        c
    }

    fn check_template(&self, template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        translate::check_template(template)
    }

    async fn start(&self, pod: PodRequest) -> executor::Result<()> {
        self.inner.start(pod).map_err(|e| e.into_executor("start"))
    }

    async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> executor::Result<()> {
        self.inner
            .delete(name, grace)
            .map_err(|e| e.into_executor("delete"))
    }

    async fn list(&self, selector: &LabelSelector) -> executor::Result<Vec<PodObservation>> {
        self.inner
            .list(selector)
            .map_err(|e| e.into_executor("list"))
    }

    async fn watch(&self, selector: &LabelSelector) -> executor::Result<WatchStream> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.inner.watchers).push(Watcher {
            selector: selector.clone(),
            tx,
        });
        if self.inner.shim.is_some() {
            self.inner.ensure_poller();
        }
        Ok(Box::pin(
            tokio_stream::wrappers::UnboundedReceiverStream::new(rx),
        ))
    }

    async fn logs(&self, pod: &str, container: &str) -> executor::Result<Vec<u8>> {
        let path = self
            .inner
            .log_path(pod, container)
            .map_err(|e| e.into_executor("logs"))?;
        let read = tokio::task::spawn_blocking(move || match fs::read(&path) {
            Ok(bytes) => Ok(bytes),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(LocalError::io("read", path, e)),
        })
        .await
        .map_err(|e| {
            executor::Error::new(executor::ErrorKind::Other, "logs", "log reader failed")
                .with_source(e)
        })?;
        read.map_err(|e| e.into_executor("logs"))
    }
}

impl Inner {
    fn start(self: &Arc<Self>, request: PodRequest) -> Result<(), LocalError> {
        check_name("pod", &request.name)?;
        for c in request
            .spec
            .init_containers
            .iter()
            .chain(&request.spec.containers)
        {
            check_name("container", &c.name)?;
        }
        if lock(&self.pods).contains_key(&request.name) {
            return Err(LocalError::AlreadyExists(request.name));
        }
        let dir = self.pods_dir.join(&request.name);
        if dir.exists() {
            return Err(LocalError::AlreadyExists(request.name));
        }
        // The pod's directory is made complete (its record written) under a staging name,
        // then renamed into place: a process killed half-way leaves no record-less pod
        // directory behind (a staging one, removed by the next executor), and the rename
        // reserves the name across executors sharing the root (a directory cannot be renamed
        // onto a non-empty one).
        let staging = self.pods_dir.join(format!(
            "{STAGING_PREFIX}{}-{}-{}",
            std::process::id(),
            STAGING.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            request.name
        ));
        fs::create_dir(&staging).map_err(|e| LocalError::io("create", &staging, e))?;
        let prepared = self.record(&request, &staging, &dir, self.shim.is_some());
        let prepared = prepared.and_then(|prepared| match fs::rename(&staging, &dir) {
            Ok(()) => Ok(prepared),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::DirectoryNotEmpty
                ) =>
            {
                Err(LocalError::AlreadyExists(request.name.clone()))
            }
            Err(e) => Err(LocalError::io("create", &dir, e)),
        });
        let (plan, obs) = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                let _ = fs::remove_dir_all(&staging);
                return Err(e);
            }
        };
        let result = match &self.shim {
            Some(command) => self.spawn_shim(command, request, &dir, obs),
            None => {
                self.start_in(request, &dir, plan, obs);
                Ok(())
            }
        };
        if result.is_err() {
            let _ = fs::remove_dir_all(&dir);
        }
        result
    }

    /// Writes the record of a new pod into `into` (its directory to be, `dir`, is what the
    /// plan refers to; a shim hosting a pod records into `dir` itself): to run in this
    /// process (with its `logs` and `scratch` directories), or under a shim (which makes
    /// them).
    fn record(
        &self,
        request: &PodRequest,
        into: &Path,
        dir: &Path,
        under_shim: bool,
    ) -> Result<(translate::PodPlan, PodObservation), LocalError> {
        if !under_shim {
            for sub in ["logs", "scratch"] {
                let p = into.join(sub);
                // Not `create_dir_all`: a shim (which records into the pod's own directory)
                // must not bring back a pod directory removed meanwhile (the pod was deleted).
                match fs::create_dir(&p) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => {
                        return Err(LocalError::io("create", &p, e));
                    }
                    _ => {}
                }
            }
        }
        let plan = translate::plan(request, dir);
        let obs = observe::initial(request, &plan, self.clock.now());
        store::write_record(
            into,
            &store::PodRecordRef {
                request,
                observation: &obs,
                owner: self.owner,
                shim: !under_shim && self.hosted,
                shim_mode: under_shim || self.hosted,
            },
        )?;
        Ok((plan, obs))
    }

    /// Runs a recorded pod in this process.
    fn start_in(
        self: &Arc<Self>,
        request: PodRequest,
        dir: &Path,
        plan: translate::PodPlan,
        obs: PodObservation,
    ) {
        let pod = Arc::new(Pod {
            dir: dir.to_path_buf(),
            plan,
            state: Mutex::new(PodState {
                obs,
                deadline_exceeded: false,
                shut_down: false,
                announced: false,
                groups: Vec::new(),
            }),
            stop: watch::channel(None).0,
            request,
        });
        lock(&self.pods).insert(pod.request.name.clone(), Arc::clone(&pod));
        {
            let st = lock(&pod.state);
            self.publish(&st.obs);
        }
        tokio::spawn(run_pod(Arc::clone(self), pod));
    }

    /// Publishes a pod's current observation (call with the pod's state locked, so that
    /// watchers see a pod's observations in order).
    fn publish(&self, obs: &PodObservation) {
        self.broadcast(&obs.labels, || WatchEvent::Applied(Box::new(obs.clone())));
    }

    fn broadcast(&self, labels: &BTreeMap<String, String>, event: impl Fn() -> WatchEvent) {
        let mut watchers = lock(&self.watchers);
        watchers.retain(|w| !w.tx.is_closed());
        for w in watchers.iter() {
            if selector_matches(&w.selector, labels) {
                let _ = w.tx.send(Ok(event()));
            }
        }
    }

    /// Changes a pod's state, refreshes its derived fields and publishes it.
    fn update<R>(&self, pod: &Pod, change: impl FnOnce(&mut PodState) -> R) -> R {
        let now = self.clock.now();
        let mut st = lock(&pod.state);
        let result = change(&mut st);
        observe::refresh(&mut st.obs, &pod.plan.restart_policy, now);
        self.publish(&st.obs);
        result
    }

    /// Asks a pod to stop: SIGTERM now (SIGKILL when the grace period is zero), SIGKILL at
    /// `now + grace`. The signal goes out before this returns, so a stop takes effect even if
    /// the runtime ends right after. Returns `true` when the pod had already finished and
    /// published its end (nothing to stop).
    fn request_stop(&self, pod: &Pod, grace: Option<chrono::Duration>, cause: StopCause) -> bool {
        let now = self.clock.now();
        let grace = grace
            .unwrap_or_else(|| pod.request.termination_grace_period())
            .max(chrono::Duration::zero());
        let kill_at = now + grace;
        let mut st = lock(&pod.state);
        if st.announced {
            return true;
        }
        if cause == StopCause::Deadline {
            // Every app container has ended for good: only sidecars are left, being
            // stopped. The phase is already decided by the app containers (the kubelet
            // ignores sidecars), so the deadline no longer applies.
            let apps_done = st
                .obs
                .containers
                .iter()
                .filter(|c| c.kind == ContainerKind::App)
                .all(|c| c.terminated().is_some());
            if st.obs.phase.is_terminal() || apps_done {
                return false;
            }
            st.deadline_exceeded = true;
        } else if cause == StopCause::Shutdown {
            st.shut_down = true;
        } else if !st.obs.deleting {
            st.obs.deleting = true;
            st.obs.deletion_time = Some(now);
            self.publish(&st.obs);
        }
        let first = pod.stop.borrow().is_none();
        let sooner = pod.stop.borrow().is_none_or(|old| kill_at < old.kill_at);
        if sooner {
            pod.stop.send_replace(Some(Stop { kill_at }));
        }
        // Under the state lock: a container started concurrently either is in `groups` now
        // or sees the stop when it registers (see `run_container`).
        let signal = if grace.is_zero() {
            Some(Signal::SIGKILL)
        } else if first {
            Some(Signal::SIGTERM)
        } else {
            None
        };
        if let Some(signal) = signal {
            for g in &st.groups {
                process::signal_group(*g, signal);
            }
        }
        false
    }

    /// Removes a pod's directory and forgets it; publishes `Deleted`.
    fn remove(&self, name: &str, dir: &Path, labels: &BTreeMap<String, String>) {
        // Renaming is one quick call and makes the pod disappear from listings at once
        // (hidden names are skipped); the tree itself, which may be large (a scratch
        // directory), is removed on a blocking thread, never on the async runtime.
        static REMOVALS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = REMOVALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let doomed = dir.with_file_name(format!(".deleting-{name}-{}-{n}", std::process::id()));
        match fs::rename(dir, &doomed) {
            Ok(()) => remove_tree_in_background(doomed),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(pod = name, error = %e, "cannot remove the pod directory");
            }
        }
        lock(&self.pods).remove(name);
        lock(&self.foreign).remove(name);
        self.broadcast(labels, || WatchEvent::Deleted {
            name: name.to_owned(),
        });
    }

    fn delete(
        self: &Arc<Self>,
        name: &str,
        grace: Option<chrono::Duration>,
    ) -> Result<(), LocalError> {
        check_name("pod", name)?;
        let pod = lock(&self.pods).get(name).cloned();
        if let Some(pod) = pod {
            if self.request_stop(&pod, grace, StopCause::Delete) {
                self.remove(name, &pod.dir, &pod.request.labels);
            }
            return Ok(());
        }
        if self.stop_shim(name, grace)? {
            return Ok(());
        }
        self.delete_foreign(name, grace)
    }

    /// Deletes a pod recorded by another executor or an earlier process.
    fn delete_foreign(
        self: &Arc<Self>,
        name: &str,
        grace: Option<chrono::Duration>,
    ) -> Result<(), LocalError> {
        let dir = self.pods_dir.join(name);
        let Some(record) = store::read_record(&dir) else {
            return Err(LocalError::NotFound(name.to_owned()));
        };
        let labels = record.request.labels.clone();
        let now = self.clock.now();
        let groups = store::live_groups(&dir);
        if groups.is_empty() {
            self.remove(name, &dir, &labels);
            return Ok(());
        }
        let grace = grace
            .unwrap_or_else(|| record.request.termination_grace_period())
            .max(chrono::Duration::zero());
        let kill_at = now + grace;
        for g in &groups {
            process::signal_group(*g, Signal::SIGTERM);
        }
        let inner = Arc::clone(self);
        let name = name.to_owned();
        tokio::spawn(async move {
            let mut killed = false;
            loop {
                let live = store::live_groups(&dir);
                if live.is_empty() {
                    break;
                }
                if !killed && inner.clock.now() >= kill_at {
                    for g in &live {
                        process::signal_group(*g, Signal::SIGKILL);
                    }
                    killed = true;
                }
                // These processes are not this process's children: poll for them.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            inner.remove(&name, &dir, &labels);
        });
        Ok(())
    }

    fn list(self: &Arc<Self>, selector: &LabelSelector) -> Result<Vec<PodObservation>, LocalError> {
        let mut out = Vec::new();
        let mut mine: HashSet<String> = {
            let pods = lock(&self.pods);
            for pod in pods.values() {
                if selector_matches(selector, &pod.request.labels) {
                    out.push(lock(&pod.state).obs.clone());
                }
            }
            pods.keys().cloned().collect()
        };
        for (name, shim) in lock(&self.shims).iter() {
            if selector_matches(selector, &shim.request.labels) {
                out.push(shim.last.clone());
            }
            mine.insert(name.clone());
        }
        let entries = match fs::read_dir(&self.pods_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(LocalError::io("list", &self.pods_dir, e)),
        };
        let now = self.clock.now();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if mine.contains(&name) || name.starts_with('.') {
                continue;
            }
            let dir = entry.path();
            let Ok(meta) = fs::metadata(dir.join("pod.json")) else {
                continue;
            };
            let cached = lock(&self.foreign)
                .get(&name)
                .filter(|(ino, _)| *ino == meta.ino())
                .map(|(_, obs)| obs.clone());
            let obs = match cached {
                Some(obs) => obs,
                None => {
                    // Unreadable: not a pod (or one being created), skipped.
                    let Some(record) = store::read_record(&dir) else {
                        continue;
                    };
                    let (obs, settled) = self.adopt(&dir, record, now);
                    if settled {
                        lock(&self.foreign).insert(name, (meta.ino(), obs.clone()));
                    }
                    obs
                }
            };
            if selector_matches(selector, &obs.labels) {
                out.push(obs);
            }
        }
        Ok(out)
    }

    fn log_path(&self, pod: &str, container: &str) -> Result<PathBuf, LocalError> {
        check_name("pod", pod)?;
        check_name("container", container)?;
        let known = lock(&self.pods)
            .get(pod)
            .map(|p| p.plan.slots().any(|c| c.name == container));
        let has_container = match known {
            Some(has) => has,
            None => {
                let record: PodRecord = store::read_record(&self.pods_dir.join(pod))
                    .ok_or_else(|| LocalError::NotFound(pod.to_owned()))?;
                record
                    .request
                    .spec
                    .init_containers
                    .iter()
                    .chain(&record.request.spec.containers)
                    .any(|c| c.name == container)
            }
        };
        if !has_container {
            return Err(LocalError::NoContainer {
                pod: pod.to_owned(),
                container: container.to_owned(),
            });
        }
        Ok(self
            .pods_dir
            .join(pod)
            .join("logs")
            .join(format!("{container}.log")))
    }
}

/// Waits until a stop is requested.
async fn stopped(rx: &mut watch::Receiver<Option<Stop>>) -> Stop {
    loop {
        if let Some(s) = *rx.borrow_and_update() {
            return s;
        }
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// The whole life of a pod.
async fn run_pod(inner: Arc<Inner>, pod: Arc<Pod>) {
    let deadline = pod.plan.active_deadline.map(|d| {
        let created = lock(&pod.state)
            .obs
            .created_at
            .unwrap_or_else(|| inner.clock.now());
        let (inner, pod) = (Arc::clone(&inner), Arc::clone(&pod));
        tokio::spawn(async move {
            inner.clock.sleep_until(created + d).await;
            inner.request_stop(&pod, None, StopCause::Deadline);
        })
    });
    let mut sidecars = Vec::new();
    match make_volumes(&pod.plan.volumes) {
        Ok(()) => run_containers(&inner, &pod, &mut sidecars).await,
        Err(message) => {
            let now = inner.clock.now();
            let problem = translate::StartProblem {
                exit_code: translate::EXIT_START_FAILED,
                message,
            };
            inner.update(&pod, |st| {
                for c in &mut st.obs.containers {
                    c.state = ContainerRunState::Terminated(observe::start_error(&problem, now));
                }
            });
        }
    }
    // Sidecars stop last, in reverse order, within the pod's grace period.
    let kill_at = match *pod.stop.borrow() {
        Some(s) => s.kill_at,
        None => inner.clock.now() + pod.request.termination_grace_period(),
    };
    // A later deletion with a shorter grace period reaches the sidecars still stopping.
    let mut stops = pod.stop.subscribe();
    for (tx, mut handle) in sidecars.into_iter().rev() {
        let now_kill_at = stops
            .borrow_and_update()
            .map_or(kill_at, |s| s.kill_at.min(kill_at));
        let _ = tx.send(Some(Stop {
            kill_at: now_kill_at,
        }));
        loop {
            tokio::select! {
                _ = &mut handle => break,
                changed = stops.changed() => {
                    if changed.is_err() {
                        let _ = (&mut handle).await;
                        break;
                    }
                    if let Some(s) = *stops.borrow_and_update() {
                        let _ = tx.send(Some(s));
                    }
                }
            }
        }
    }
    if let Some(d) = deadline {
        d.abort();
    }
    finish_pod(&inner, &pod);
}

type Sidecar = (watch::Sender<Option<Stop>>, tokio::task::JoinHandle<()>);

/// Init containers in order (starting sidecars as they come), then the app containers.
async fn run_containers(inner: &Arc<Inner>, pod: &Arc<Pod>, sidecars: &mut Vec<Sidecar>) {
    let mut pod_stop = pod.stop.subscribe();
    for (i, c) in pod.plan.init.iter().enumerate() {
        if pod_stop.borrow().is_some() {
            return;
        }
        let slot = pod.plan.init_slot(i);
        if c.kind == ContainerKind::Sidecar {
            let (tx, rx) = watch::channel(None);
            let (started_tx, started_rx) = oneshot::channel();
            let (inner2, pod2) = (Arc::clone(inner), Arc::clone(pod));
            let handle = tokio::spawn(async move {
                let plan = &pod2.plan.init[i];
                run_container(&inner2, &pod2, slot, plan, rx, Some(started_tx)).await;
            });
            sidecars.push((tx, handle));
            tokio::select! {
                r = started_rx => {
                    // Dropped unsent: the sidecar ended (the pod was stopped) before it ever
                    // started.
                    if r.is_err() {
                        return;
                    }
                }
                _ = stopped(&mut pod_stop) => return,
            }
        } else {
            let ended = run_container(inner, pod, slot, c, pod.stop.subscribe(), None).await;
            if ended.is_none_or(|t| t.exit_code != 0) {
                return;
            }
        }
    }
    if pod_stop.borrow().is_some() {
        return;
    }
    futures_util::future::join_all(
        pod.plan
            .apps
            .iter()
            .enumerate()
            .map(|(slot, c)| run_container(inner, pod, slot, c, pod.stop.subscribe(), None)),
    )
    .await;
}

/// Runs one container until it ends for good (restarting it in place as its restart policy
/// says) or is stopped. Returns its last termination (`None`: it never ran).
async fn run_container(
    inner: &Inner,
    pod: &Pod,
    slot: usize,
    plan: &ContainerPlan,
    mut stop: watch::Receiver<Option<Stop>>,
    mut started: Option<oneshot::Sender<()>>,
) -> Option<Terminated> {
    let policy = &pod.plan.restart_policy;
    let always = plan.kind == ContainerKind::Sidecar || *policy == RestartPolicy::Always;
    let on_failure = *policy == RestartPolicy::OnFailure;
    let log = pod.dir.join("logs").join(format!("{}.log", plan.name));
    let mut backoff = None;
    let mut last: Option<Terminated> = None;
    let mut restarts = 0;
    loop {
        if stop.borrow_and_update().is_some() {
            break;
        }
        let started_at = inner.clock.now();
        let spawned = plan
            .launch
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|launch| process::spawn(&plan.name, launch, &log, &inner.memory));
        let (t, was_stopped) = match spawned {
            Err(problem) => (observe::start_error(&problem, started_at), false),
            Ok(proc) => {
                if let Ok(pid) = u32::try_from(proc.pgid)
                    && let Err(e) = store::record_group(&pod.dir, pid)
                {
                    tracing::warn!(pod = %pod.request.name, error = %e,
                        "cannot record a process group");
                }
                let pod_stopping = inner.update(pod, |st| {
                    let c = &mut st.obs.containers[slot];
                    c.state = ContainerRunState::Running {
                        started_at: Some(started_at),
                    };
                    c.ready = true;
                    c.restart_count = restarts;
                    st.obs.started_at.get_or_insert(started_at);
                    if plan.kind == ContainerKind::Sidecar {
                        return false;
                    }
                    st.groups.push(proc.pgid);
                    pod.stop.borrow().is_some()
                });
                // App and init containers get SIGTERM from `request_stop`; one that started
                // just as the stop came sends it here. Sidecars get it in `wait`.
                let term_sent = plan.kind != ContainerKind::Sidecar;
                if pod_stopping {
                    process::signal_group(proc.pgid, Signal::SIGTERM);
                }
                if let Some(tx) = started.take() {
                    let _ = tx.send(());
                }
                let mut proc = proc;
                let was_stopped = wait(&*inner.clock, &mut proc, &mut stop, term_sent).await;
                // Before the leader is reaped (`finish`): until then its group id cannot have
                // been reused, so `request_stop` signals only this container's group.
                lock(&pod.state).groups.retain(|g| *g != proc.pgid);
                let ended = proc.finish().await;
                let t = observe::terminated(
                    ended.code,
                    ended.signal,
                    ended.oom,
                    started_at,
                    inner.clock.now(),
                );
                (t, was_stopped)
            }
        };
        // A sidecar that could not start has not started: the next init container waits
        // while it is retried with the restart back-off, as the kubelet does.
        let restart = !was_stopped && (always || (on_failure && t.exit_code != 0));
        if !restart {
            inner.update(pod, |st| {
                let c = &mut st.obs.containers[slot];
                c.state = ContainerRunState::Terminated(t.clone());
                c.ready = false;
                c.restart_count = restarts;
            });
            return Some(t);
        }
        let finished_at = t.finished_at.unwrap_or(started_at);
        let delay = observe::next_backoff(backoff, finished_at - started_at);
        backoff = Some(delay);
        inner.update(pod, |st| {
            let c = &mut st.obs.containers[slot];
            c.state = ContainerRunState::Waiting {
                reason: "CrashLoopBackOff".to_owned(),
                message: format!(
                    "back-off {}s restarting failed container={} pod={}",
                    delay.num_seconds(),
                    plan.name,
                    pod.request.name
                ),
            };
            c.ready = false;
            c.last_state = Some(t.clone());
            c.restart_count = restarts;
        });
        last = Some(t);
        tokio::select! {
            () = inner.clock.sleep_until(finished_at + delay) => {}
            _ = stopped(&mut stop) => break,
        }
        restarts += 1;
    }
    let t = last?;
    inner.update(pod, |st| {
        st.obs.containers[slot].state = ContainerRunState::Terminated(t.clone());
    });
    Some(t)
}

/// Waits until a container's main process has exited (not yet reaped: see
/// [`process::Started::exited`]); on a stop request sends SIGTERM to its group (unless
/// `term_sent`: the stop's requester did), then SIGKILL when the kill time comes. Returns
/// whether a stop ended it.
async fn wait(
    clock: &dyn Clock,
    proc: &mut process::Started,
    stop: &mut watch::Receiver<Option<Stop>>,
    term_sent: bool,
) -> bool {
    let pgid = proc.pgid;
    let first = tokio::select! {
        () = proc.exited() => return false,
        s = stopped(stop) => s,
    };
    if !term_sent {
        process::signal_group(pgid, Signal::SIGTERM);
    }
    let mut kill_at = first.kill_at;
    loop {
        tokio::select! {
            () = proc.exited() => return true,
            () = clock.sleep_until(kill_at) => {
                process::signal_group(pgid, Signal::SIGKILL);
                proc.exited().await;
                return true;
            }
            changed = stop.changed() => {
                if changed.is_err() {
                    // No shorter deadline can come any more.
                    tokio::select! {
                        () = proc.exited() => return true,
                        () = clock.sleep_until(kill_at) => {
                            process::signal_group(pgid, Signal::SIGKILL);
                            proc.exited().await;
                            return true;
                        }
                    }
                }
                if let Some(s) = *stop.borrow_and_update() {
                    kill_at = kill_at.min(s.kill_at);
                }
            }
        }
    }
}

/// Publishes the pod's end, records it on disk, and removes the pod if it was deleted.
fn finish_pod(inner: &Inner, pod: &Pod) {
    let now = inner.clock.now();
    let (obs, deleting) = {
        let mut st = lock(&pod.state);
        let exceeded = st.deadline_exceeded;
        observe::finish(&mut st.obs, &pod.plan.restart_policy, exceeded, now);
        if st.shut_down && st.obs.phase == PodPhase::Failed && st.obs.reason.is_empty() {
            st.obs.reason = observe::SHUT_DOWN.to_owned();
            st.obs.message = observe::SHUT_DOWN_MESSAGE.to_owned();
        }
        (st.obs.clone(), st.obs.deleting)
    };
    if !deleting {
        let record = store::PodRecordRef {
            request: &pod.request,
            observation: &obs,
            owner: inner.owner,
            shim: inner.hosted,
            shim_mode: inner.hosted,
        };
        if let Err(e) = store::write_record(&pod.dir, &record) {
            tracing::warn!(pod = %pod.request.name, error = %e, "cannot record the pod's end");
        }
    }
    let deleting = {
        let mut st = lock(&pod.state);
        st.announced = true;
        inner.publish(&st.obs);
        st.obs.deleting
    };
    if deleting {
        inner.remove(&pod.request.name, &pod.dir, &pod.request.labels);
    }
}

/// Creates the pod's volumes: empty directories, downward API files, `DirectoryOrCreate`
/// host paths.
fn make_volumes(volumes: &[VolumePlan]) -> Result<(), String> {
    for v in volumes {
        let result = match v {
            VolumePlan::Dir(dir) | VolumePlan::HostDir(dir) => fs::create_dir_all(dir),
            VolumePlan::Files(dir, files) => fs::create_dir_all(dir).and_then(|()| {
                files.iter().try_for_each(|(rel, content)| {
                    let path = dir.join(rel);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent)?;
                    }
                    fs::write(path, content)
                })
            }),
        };
        if let Err(e) = result {
            let dir = match v {
                VolumePlan::Dir(d) | VolumePlan::HostDir(d) | VolumePlan::Files(d, _) => d,
            };
            return Err(format!("cannot create volume {}: {e}", dir.display()));
        }
    }
    Ok(())
}

/// The name prefix of a pod directory being prepared (renamed into place once its record
/// is written).
const STAGING_PREFIX: &str = ".creating-";

/// Makes staging names unique within this process.
static STAGING: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Whether a staging directory was abandoned: untouched for a minute (preparing one takes
/// milliseconds).
fn is_stale(entry: &fs::DirEntry) -> bool {
    entry
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age > std::time::Duration::from_secs(60))
}

/// Removes a directory tree on tokio's blocking pool (inline outside a runtime).
fn remove_tree_in_background(dir: PathBuf) {
    let remove = move || {
        if let Err(e) = fs::remove_dir_all(&dir)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot remove a pod directory");
        }
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn_blocking(remove);
        }
        Err(_) => remove(),
    }
}

/// What `delete` leaves for a pod's shim: the grace period to stop it with.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StopRequest {
    /// The grace period in milliseconds (`None`: the pod's own).
    pub(crate) grace_millis: Option<i64>,
}

/// The file a stop request is written to, in the pod directory.
pub(crate) const STOP_FILE: &str = "stop.json";

/// The file a shim's standard error is appended to, in the pod directory.
pub(crate) const SHIM_LOG: &str = "shim.log";

/// How often the pods of other processes are looked at for the watchers (shim mode).
const POLL_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Writes `stop.json` atomically.
fn write_stop_request(
    dir: &Path,
    name: &str,
    grace: Option<chrono::Duration>,
) -> Result<(), LocalError> {
    let request = StopRequest {
        grace_millis: grace.map(|g| g.num_milliseconds()),
    };
    let bytes = serde_json::to_vec(&request).map_err(|source| LocalError::Encode {
        pod: name.to_owned(),
        source,
    })?;
    let tmp = dir.join(".stop.json.tmp");
    fs::write(&tmp, bytes).map_err(|e| LocalError::io("write", &tmp, e))?;
    let path = dir.join(STOP_FILE);
    fs::rename(&tmp, &path).map_err(|e| LocalError::io("replace", &path, e))
}

/// Sends SIGTERM to a shim if it is still that process.
fn signal_shim(shim: Owner) {
    if shim.is_alive()
        && let Ok(pid) = i32::try_from(shim.pid)
    {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
    }
}

/// The last line a shim wrote to its log (its error, when it failed), shortened.
fn shim_log_tail(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(dir.join(SHIM_LOG)).ok()?;
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(match line.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    })
}

/// Shim mode, the executor's side: starting shims, following them, stopping them, and
/// following the pods of shims started by other executor processes.
impl Inner {
    /// Starts the shim of an accepted pod and follows it.
    fn spawn_shim(
        self: &Arc<Self>,
        command: &ShimCommand,
        request: PodRequest,
        dir: &Path,
        obs: PodObservation,
    ) -> Result<(), LocalError> {
        let log_path = dir.join(SHIM_LOG);
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| LocalError::io("create", &log_path, e))?;
        let mut cmd = tokio::process::Command::new(&command.program);
        cmd.args(&command.args)
            .arg(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(log)
            // Its own process group: a signal to the runner's group (Ctrl-C in a terminal,
            // a service manager stopping the runner) does not reach the pod.
            .process_group(0)
            // The shim outlives this executor: that is its purpose.
            .kill_on_drop(false);
        let mut child = cmd
            .spawn()
            .map_err(|e| LocalError::io("start the shim", &command.program, e))?;
        let stdout = child.stdout.take();
        // The child is not reaped before `follow_shim` waits for it: its pid is its own.
        let process = child.id().map(|pid| Owner {
            pid,
            start_time: store::start_time(pid).unwrap_or(0),
        });
        let name = request.name.clone();
        {
            let mut shims = lock(&self.shims);
            shims.insert(
                name.clone(),
                ShimPod {
                    request,
                    last: obs.clone(),
                    process,
                    stop_requested: false,
                },
            );
            self.publish(&obs);
        }
        tokio::spawn(Arc::clone(self).follow_shim(name, dir.to_path_buf(), child, stdout));
        Ok(())
    }

    /// Passes on what a shim reports, and the pod's end when the shim exits.
    async fn follow_shim(
        self: Arc<Self>,
        name: String,
        dir: PathBuf,
        mut child: tokio::process::Child,
        stdout: Option<tokio::process::ChildStdout>,
    ) {
        use tokio::io::AsyncBufReadExt as _;
        if let Some(stdout) = stdout {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match serde_json::from_str::<PodObservation>(&line) {
                    Ok(obs) => {
                        let mut shims = lock(&self.shims);
                        if let Some(s) = shims.get_mut(&name) {
                            s.last = obs.clone();
                        }
                        self.publish(&obs);
                    }
                    Err(e) => {
                        tracing::warn!(pod = %name, error = %e, "unreadable report from the pod's shim");
                    }
                }
            }
        }
        let status = child.wait().await;
        // Removed under the lock `stop_shim` writes the stop request under: either the stop
        // request is seen here, or `delete` finds no shim of this executor for the pod.
        let Some(shim) = lock(&self.shims).remove(&name) else {
            return;
        };
        let labels = &shim.request.labels;
        if !dir.exists() {
            // Deleted: the shim stopped the pod and removed its directory.
            self.broadcast(labels, || WatchEvent::Deleted { name: name.clone() });
            return;
        }
        let record = store::load_record(&dir);
        let other = match &record {
            Ok(r) if r.shim && r.owner.is_alive() => Some(r.owner),
            _ => None,
        };
        let locked_out = status
            .as_ref()
            .is_ok_and(|s| s.code() == Some(i32::from(crate::shim::EXIT_ANOTHER_SHIM)));
        if other.is_some() || locked_out {
            // Another shim runs the pod (started by another executor): it is followed as
            // another process's pod, and told to stop if this executor was. The poller has
            // not followed it so far: it is told, so that a pod whose directory goes (the
            // other shim acting on the stop request, at once if it had not started yet)
            // before its next pass is still reported `Deleted`.
            if shim.stop_requested
                && let Some(other) = other
            {
                signal_shim(other);
            }
            if self.polling.load(std::sync::atomic::Ordering::SeqCst) {
                lock(&self.handed_over).insert(name, shim.request.labels.clone());
            }
            return;
        }
        if shim.stop_requested {
            // Deleted, and the shim ended without removing the pod (it was killed before it
            // could act on the request): nothing of the pod may be left.
            for g in store::live_groups(&dir) {
                process::signal_group(g, Signal::SIGKILL);
            }
            self.remove(&name, &dir, labels);
            return;
        }
        if let Ok(r) = &record
            && r.observation.phase.is_terminal()
        {
            if r.observation != shim.last {
                self.publish(&r.observation);
            }
            return;
        }
        // The shim ended without recording how the pod ended.
        let now = self.clock.now();
        let mut why = match &status {
            Ok(s) => format!("the pod's shim exited ({s}) before recording how the pod ended"),
            Err(e) => format!("the pod's shim could not be waited for ({e})"),
        };
        if let Some(tail) = shim_log_tail(&dir) {
            why = format!("{why}: {tail}");
        }
        let mut obs = match record {
            Ok(r) => r.observation,
            Err(_) => shim.last.clone(),
        };
        // Its processes may live on, unobserved: their outcome is lost either way.
        for g in store::live_groups(&dir) {
            process::signal_group(g, Signal::SIGKILL);
        }
        store::mark_lost(&mut obs, &why, now);
        let written = store::write_record(
            &dir,
            &store::PodRecordRef {
                request: &shim.request,
                observation: &obs,
                owner: self.owner,
                shim: false,
                shim_mode: true,
            },
        );
        if let Err(e) = written {
            tracing::warn!(pod = %name, error = %e, "cannot record the pod's end");
        }
        tracing::warn!(pod = %name, reason = %why, "pod lost with its shim");
        self.publish(&obs);
    }

    /// Asks the shim of a pod (this executor's or another's) to stop it. `false` when no
    /// shim runs the pod.
    fn stop_shim(&self, name: &str, grace: Option<chrono::Duration>) -> Result<bool, LocalError> {
        let dir = self.pods_dir.join(name);
        {
            let mut shims = lock(&self.shims);
            if let Some(shim) = shims.get_mut(name) {
                // Under the lock: `follow_shim` sees the request if the shim has ended.
                write_stop_request(&dir, name, grace)?;
                shim.stop_requested = true;
                if let Some(process) = shim.process {
                    signal_shim(process);
                }
                return Ok(true);
            }
        }
        match store::read_record(&dir) {
            Some(r) if r.shim && r.owner.is_alive() && !r.observation.phase.is_terminal() => {
                write_stop_request(&dir, name, grace)?;
                signal_shim(r.owner);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// What to report for a pod this executor does not run nor follow, and whether that
    /// can no longer change.
    ///
    /// A pod accepted in shim mode by an executor that is gone, whose shim has not recorded
    /// itself: if a shim holds the pod's lock, it has just started and is reported as
    /// recorded; if none does, the shim never started (the executor died first), and an
    /// executor in shim mode starts one now (reported as recorded, `Pending`). Any other
    /// pod is reported as its record and processes say.
    fn adopt(
        self: &Arc<Self>,
        dir: &Path,
        record: PodRecord,
        now: Timestamp,
    ) -> (PodObservation, bool) {
        if self.unstarted(dir, &record) {
            match store::try_lock_pod(dir) {
                Ok(None) => return (record.observation, false),
                Ok(Some(pod_lock)) => {
                    if self.start_unstarted(dir, pod_lock) {
                        return (record.observation, false);
                    }
                }
                Err(_) => {}
            }
        }
        store::foreign_observation(dir, &record, now)
    }

    /// Whether a record is that of a pod accepted in shim mode by another executor, now
    /// gone, and not (yet) run by a shim.
    fn unstarted(&self, dir: &Path, r: &PodRecord) -> bool {
        r.shim_mode
            && !r.shim
            && r.owner != self.owner
            && !r.observation.phase.is_terminal()
            && !r.owner.is_alive()
            && !dir.join(STOP_FILE).exists()
    }

    /// Starts the shim of a pod accepted in shim mode by an executor that died before
    /// starting it, holding the pod's lock (so no shim runs it). Returns whether it did.
    fn start_unstarted(
        self: &Arc<Self>,
        dir: &Path,
        pod_lock: nix::fcntl::Flock<fs::File>,
    ) -> bool {
        let Some(command) = self.shim.clone() else {
            return false;
        };
        let record = match store::read_record(dir) {
            Some(r) if self.unstarted(dir, &r) => r,
            _ => return false,
        };
        if lock(&self.shims).contains_key(&record.request.name) {
            return true;
        }
        // Claimed under the lock: the record names this process (alive), so no other
        // executor starts a shim too; the lock is let go for the shim started here (a
        // shim retries a lock held this briefly).
        let claimed = store::write_record(
            dir,
            &store::PodRecordRef {
                request: &record.request,
                observation: &record.observation,
                owner: self.owner,
                shim: false,
                shim_mode: true,
            },
        );
        drop(pod_lock);
        if claimed.is_err() {
            return false;
        }
        let name = record.request.name.clone();
        tracing::info!(pod = %name, "starting the shim of a pod accepted by an executor that exited first");
        match self.spawn_shim(&command, record.request, dir, record.observation) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(pod = %name, error = %e, "cannot start the pod's shim");
                false
            }
        }
    }

    /// Starts (once) the task that follows pods run by other processes' shims, for the
    /// watchers; it ends when the last watcher is gone.
    fn ensure_poller(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        if self.polling.swap(true, Ordering::SeqCst) {
            return;
        }
        let inner = Arc::clone(self);
        tokio::spawn(async move {
            let mut known: HashMap<String, Polled> = HashMap::new();
            loop {
                {
                    let mut watchers = lock(&inner.watchers);
                    watchers.retain(|w| !w.tx.is_closed());
                    if watchers.is_empty() {
                        inner.polling.store(false, Ordering::SeqCst);
                        return;
                    }
                }
                inner.poll_once(&mut known);
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        });
    }

    /// One pass over the pods that neither this executor nor a shim it follows runs:
    /// `Applied` for those whose `pod.json` changed, `Deleted` for those gone.
    fn poll_once(self: &Arc<Self>, known: &mut HashMap<String, Polled>) {
        use std::os::unix::fs::DirEntryExt as _;
        // Taken before the directory is read: a pod handed over before this pass is either
        // in the listing below (and followed from now on) or gone.
        let handed_over = std::mem::take(&mut *lock(&self.handed_over));
        let Ok(entries) = fs::read_dir(&self.pods_dir) else {
            lock(&self.handed_over).extend(handed_over);
            return;
        };
        let mut seen = HashSet::new();
        let now = self.clock.now();
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            // Present, whoever follows it: only a pod whose directory is gone is deleted.
            seen.insert(name.clone());
            if lock(&self.pods).contains_key(&name) || lock(&self.shims).contains_key(&name) {
                continue;
            }
            // A pod whose outcome is settled changes no more, unless its directory is
            // replaced (deleted, and a pod of that name started again): no `stat` for it.
            let dir_ino = entry.ino();
            if known
                .get(&name)
                .is_some_and(|p| p.settled && p.dir_ino == dir_ino)
            {
                continue;
            }
            let dir = entry.path();
            let Ok(meta) = fs::metadata(dir.join("pod.json")) else {
                continue;
            };
            let key = (meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.len());
            // The record of a live shim is current while unchanged; without one, the pod's
            // processes are looked at every time.
            if known.get(&name).is_some_and(|p| {
                p.key == key && p.dir_ino == dir_ino && p.shim.is_some_and(|s| s.is_alive())
            }) {
                continue;
            }
            let Some(record) = store::read_record(&dir) else {
                continue;
            };
            let shim = (record.shim && record.owner.is_alive()).then_some(record.owner);
            let (obs, settled) = self.adopt(&dir, record, now);
            let changed = known.get(&name).is_none_or(|p| p.obs != obs);
            if changed {
                // Under the watchers' lock, after checking that the pod still exists: a
                // deletion (`remove`) renames the directory before it sends `Deleted` under
                // that lock, so `Applied` never follows `Deleted`.
                let watchers = lock(&self.watchers);
                if dir.exists() {
                    for w in watchers.iter() {
                        if selector_matches(&w.selector, &obs.labels) {
                            let _ = w.tx.send(Ok(WatchEvent::Applied(Box::new(obs.clone()))));
                        }
                    }
                }
            }
            known.insert(
                name,
                Polled {
                    dir_ino,
                    key,
                    settled,
                    shim,
                    obs,
                },
            );
        }
        for (name, labels) in handed_over {
            if !seen.contains(&name)
                && !known.contains_key(&name)
                && !lock(&self.shims).contains_key(&name)
                && !lock(&self.pods).contains_key(&name)
                && !self.pods_dir.join(&name).exists()
            {
                self.broadcast(&labels, || WatchEvent::Deleted { name: name.clone() });
            }
        }
        known.retain(|name, p| {
            if seen.contains(name) {
                return true;
            }
            // Gone (deleted), unless this executor follows it now.
            if !lock(&self.shims).contains_key(name)
                && !lock(&self.pods).contains_key(name)
                && !self.pods_dir.join(name).exists()
            {
                let labels = p.obs.labels.clone();
                self.broadcast(&labels, || WatchEvent::Deleted { name: name.clone() });
            }
            false
        });
    }
}

/// What the poller last saw of another process's pod.
#[derive(Debug)]
struct Polled {
    /// The pod directory's inode.
    dir_ino: u64,
    /// `pod.json`'s inode, modification time and length.
    key: (u64, i64, i64, u64),
    /// The observation can no longer change.
    settled: bool,
    /// The shim that wrote the record, alive when it was read: the record is current while
    /// it is unchanged and the shim lives.
    shim: Option<Owner>,
    obs: PodObservation,
}
