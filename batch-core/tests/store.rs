//! The durable state store: `SqliteStore` on real files (round trips, damaged files, a
//! process killed in the middle of its writes) and the runner on top of it (resuming a
//! crashed runner's Jobs and CronJobs, names held by the store, writes that fail).
//!
//! `Scripted` below is a test double of an executor, copied from `tests/runner.rs`: it
//! holds pods in memory whose fate the test decides (succeed, fail), because these pure
//! runner tests need exact control of pod outcomes and of when they happen (batch-core
//! cannot depend on a real executor crate; the runner is tested against real processes in
//! `executor-local/tests/runner.rs`). `Faulty` is a store wrapper that fails chosen writes,
//! as a full disk would. Everything else here is real: SQLite files in temporary
//! directories, and for the torn-write test a real child process killed with `SIGKILL`.
#![cfg(feature = "runtime")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use batch_core::clock::{Clock, ManualClock};
use batch_core::executor::{
    Capabilities, ContainerKind, ContainerObservation, ContainerRunState, Error, ErrorKind,
    Executor, LabelSelector, PodObservation, PodRequest, Result, Terminated, WatchEvent,
    WatchStream, selector_matches,
};
use batch_core::job::{BackoffRecord, COMPLETION_INDEX_ANNOTATION, JobMemory, PodPhase};
use batch_core::model::{CronJob, Job, JobConditionType, JobStatus, PodTemplateSpec};
use batch_core::runner::{JobHandle, RunEvent, RunEventKind, Runner, SubmitError};
use batch_core::store::{
    Durability, JobRecord, JobUpdate, MemoryStore, SqliteStore, StateStore, StoreError, StoredState,
};
use batch_core::validation::ValidationErrors;
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
    starts: usize,
    hang: Hang,
}

/// Whether `start` calls never return (the runner is stuck in them when it crashes).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Hang {
    #[default]
    No,
    /// Before the pod is created.
    BeforeCreate,
    /// After the pod is created.
    AfterCreate,
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

/// Pods held in memory: they run until the test ends them. Shared by the runners of one
/// test, as a real backend's pods outlive the process that started them.
#[derive(Debug, Default)]
struct Scripted {
    state: Mutex<State>,
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

    /// Every pod that exists (running or ended).
    fn pods(&self) -> Vec<PodObservation> {
        self.state.lock().unwrap().pods.values().cloned().collect()
    }

    fn count(&self) -> usize {
        self.state.lock().unwrap().pods.len()
    }

    /// How many pods were really started (a start of an existing name is refused).
    fn starts(&self) -> usize {
        self.state.lock().unwrap().starts
    }

    /// The running pod of a completion index.
    fn running_index(&self, index: &str) -> String {
        let s = self.state.lock().unwrap();
        let found: Vec<String> = s
            .pods
            .values()
            .filter(|p| !p.phase.is_terminal())
            .filter(|p| {
                p.annotations
                    .get(COMPLETION_INDEX_ANNOTATION)
                    .map(String::as_str)
                    == Some(index)
            })
            .map(|p| p.name.clone())
            .collect();
        assert_eq!(
            found.len(),
            1,
            "one running pod for index {index}: {found:?}"
        );
        found.into_iter().next().unwrap()
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
}

#[async_trait::async_trait]
impl Executor for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities::none()
    }

    fn check_template(&self, _template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
        Ok(())
    }

    async fn start(&self, pod: PodRequest) -> Result<()> {
        let hang = self.start_now(pod)?;
        if hang != Hang::No {
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    /// Running pods are killed at once (exit 137), then removed.
    async fn delete(&self, name: &str, _grace: Option<chrono::Duration>) -> Result<()> {
        self.delete_now(name)
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>> {
        let s = self.state.lock().unwrap();
        Ok(s.pods
            .values()
            .filter(|p| selector_matches(selector, &p.labels))
            .cloned()
            .collect())
    }

    async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream> {
        let mut s = self.state.lock().unwrap();
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

impl Scripted {
    fn set_hang(&self, hang: Hang) {
        self.state.lock().unwrap().hang = hang;
    }

    /// Creates the pod (unless told to hang first); returns whether to hang.
    fn start_now(&self, pod: PodRequest) -> Result<Hang> {
        let mut s = self.state.lock().unwrap();
        if s.hang == Hang::BeforeCreate {
            return Ok(Hang::BeforeCreate);
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
        Ok(s.hang)
    }

    fn delete_now(&self, name: &str) -> Result<()> {
        let mut s = self.state.lock().unwrap();
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
}

/// A store that fails chosen writes with [`StoreError::Storage`] (a full disk) and passes
/// everything else to the store it wraps.
#[derive(Debug)]
struct Faulty {
    inner: Arc<dyn StateStore>,
    /// The next this many `update_job` calls fail.
    fail_job_updates: AtomicUsize,
    /// The next this many `update_cron_job` calls fail.
    fail_cron_updates: AtomicUsize,
}

impl Faulty {
    fn new(inner: Arc<dyn StateStore>) -> Arc<Self> {
        Arc::new(Faulty {
            inner,
            fail_job_updates: AtomicUsize::new(0),
            fail_cron_updates: AtomicUsize::new(0),
        })
    }

    /// Whether this call fails (and one failure fewer is left).
    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn full() -> StoreError {
        StoreError::Storage {
            path: "faulty".into(),
            message: "no space left on device".to_owned(),
            source: None,
        }
    }
}

impl StateStore for Faulty {
    fn load(&self) -> std::result::Result<StoredState, StoreError> {
        self.inner.load()
    }
    fn create_job(&self, record: &JobRecord) -> std::result::Result<(), StoreError> {
        self.inner.create_job(record)
    }
    fn update_job(&self, update: JobUpdate<'_>) -> std::result::Result<(), StoreError> {
        if Faulty::take(&self.fail_job_updates) {
            return Err(Faulty::full());
        }
        self.inner.update_job(update)
    }
    fn delete_job(&self, name: &str, uid: &str) -> std::result::Result<(), StoreError> {
        self.inner.delete_job(name, uid)
    }
    fn create_cron_job(&self, cron_job: &CronJob) -> std::result::Result<(), StoreError> {
        self.inner.create_cron_job(cron_job)
    }
    fn update_cron_job(&self, cron_job: &CronJob) -> std::result::Result<(), StoreError> {
        if Faulty::take(&self.fail_cron_updates) {
            return Err(Faulty::full());
        }
        self.inner.update_cron_job(cron_job)
    }
    fn delete_cron_job(&self, name: &str, uid: &str) -> std::result::Result<(), StoreError> {
        self.inner.delete_cron_job(name, uid)
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

fn cron_job(yaml: &str) -> CronJob {
    serde_norway::from_str(yaml).unwrap()
}

/// A bare Job with the name and UID a stored record is keyed by.
fn named_job(name: &str, uid: &str) -> Job {
    let mut job = Job::default();
    job.metadata.name = Some(name.to_owned());
    job.metadata.uid = Some(uid.to_owned());
    job
}

/// A bare CronJob with a name, a UID and a schedule.
fn named_cron(name: &str, uid: &str) -> CronJob {
    let mut c = CronJob::default();
    c.metadata.name = Some(name.to_owned());
    c.metadata.uid = Some(uid.to_owned());
    c.spec.schedule = "*/5 * * * *".to_owned();
    c
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn runner(executor: Arc<dyn Executor>, clock: &ManualClock, store: Arc<dyn StateStore>) -> Runner {
    Runner::new(executor, Arc::new(clock.clone())).with_store(store)
}

/// A runtime of its own for one "process": dropping it kills its tasks at their next
/// await, as a crash does.
fn process() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Waits (yielding to the runner) until `f` holds. The timeout only turns a hang into a
/// failure; nothing here depends on how long things take.
async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let done = tokio::time::timeout(StdDuration::from_secs(20), async {
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

fn store_errors(seen: &[RunEvent]) -> usize {
    seen.iter()
        .filter(|e| matches!(e.kind, RunEventKind::StoreError { .. }))
        .count()
}

fn index_of(pod: &PodObservation) -> Option<&str> {
    pod.annotations
        .get(COMPLETION_INDEX_ANNOTATION)
        .map(String::as_str)
}

/// Runs SQL on a store file behind the store's back.
fn sql(path: &Path, statements: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(statements).unwrap();
}

/// The files in a directory, by name.
fn files_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Fails, naming the first differing offsets, unless the file holds `before`.
fn assert_untouched(path: &Path, before: &[u8]) {
    let after = std::fs::read(path).unwrap();
    let differ: Vec<usize> = (0..before.len().max(after.len()))
        .filter(|i| before.get(*i) != after.get(*i))
        .collect();
    assert!(
        differ.is_empty(),
        "{} was modified: {} of {} bytes (now {}) differ, at {:?}…",
        path.display(),
        differ.len(),
        before.len(),
        after.len(),
        &differ[..differ.len().min(16)]
    );
}

/// A deterministic stream of pseudo-random bytes (xorshift64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// SqliteStore: round trips
// ---------------------------------------------------------------------------------------

/// Writes a store with Jobs `a` (status, memory, counted pods, an intent replaced) and `b`,
/// and CronJob `c` (updated once). Returns what it should hold.
fn write_store(store: &SqliteStore) -> StoredState {
    store
        .create_job(&JobRecord::new(named_job("a", "ua")))
        .unwrap();
    store
        .create_job(&JobRecord::new(named_job("b", "ub")))
        .unwrap();
    let mut a = named_job("a", "ua");
    a.status.succeeded = 1;
    a.status.failed = 1;
    a.status.active = 1;
    a.status.start_time = Some(t0());
    let memory = JobMemory {
        backoff: BackoffRecord {
            failures_after_last_success: 1,
            last_failure_time: Some(t0() + Duration::seconds(7)),
        },
        pods_created: 3,
    };
    // The intent, then the step that started those pods: it replaces the intent.
    let intent = strings(&["a-0", "a-1"]);
    store
        .update_job(JobUpdate::new(&a, &memory).starting(&intent))
        .unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.jobs["a"].starting, intent);
    assert!(loaded.jobs["a"].counted.is_empty());
    store
        .update_job(JobUpdate::new(&a, &memory).counting(&strings(&["a-0"])))
        .unwrap();
    let intent = strings(&["a-2"]);
    store
        .update_job(
            JobUpdate::new(&a, &memory)
                .counting(&strings(&["a-1", "a-0"]))
                .starting(&intent),
        )
        .unwrap();
    let mut c = named_cron("c", "uc");
    store.create_cron_job(&c).unwrap();
    c.status.last_schedule_time = Some(t0() + Duration::minutes(5));
    store.update_cron_job(&c).unwrap();

    let mut expected = StoredState::default();
    let mut record_a = JobRecord::new(a);
    record_a.memory = memory;
    record_a.counted = set(&["a-0", "a-1"]);
    record_a.starting = intent;
    expected.jobs.insert("a".to_owned(), record_a);
    expected
        .jobs
        .insert("b".to_owned(), JobRecord::new(named_job("b", "ub")));
    expected.cron_jobs.insert("c".to_owned(), c);
    expected
}

#[test]
fn a_sqlite_store_round_trips_every_record_and_a_reopened_store_sees_it() {
    for durability in [Durability::Full, Durability::Process] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let expected = {
            let store = SqliteStore::open_with(&path, durability).unwrap();
            assert_eq!(store.path(), path);
            assert_eq!(store.load().unwrap(), StoredState::default());
            let expected = write_store(&store);
            assert_eq!(store.load().unwrap(), expected, "{durability:?}");
            // The counted set only grows; the intent is replaced (here: emptied).
            let a = expected.jobs["a"].job.clone();
            let memory = expected.jobs["a"].memory.clone();
            store.update_job(JobUpdate::new(&a, &memory)).unwrap();
            let loaded = store.load().unwrap();
            assert_eq!(loaded.jobs["a"].counted, set(&["a-0", "a-1"]));
            assert!(loaded.jobs["a"].starting.is_empty());
            store
                .update_job(
                    JobUpdate::new(&a, &memory)
                        .counting(
                            &expected.jobs["a"]
                                .counted
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>(),
                        )
                        .starting(&expected.jobs["a"].starting),
                )
                .unwrap();
            assert_eq!(store.load().unwrap(), expected);
            expected
        };
        // Another instance (another process, later) sees everything, in either durability.
        for reopen in [Durability::Full, Durability::Process] {
            let store = SqliteStore::open_with(&path, reopen).unwrap();
            assert_eq!(
                store.load().unwrap(),
                expected,
                "{durability:?} → {reopen:?}"
            );
        }
        // While the first instance is still open, too.
        let first = SqliteStore::open_with(&path, durability).unwrap();
        let second = SqliteStore::open(&path).unwrap();
        second.delete_job("b", "ub").unwrap();
        assert!(!first.load().unwrap().jobs.contains_key("b"));
    }
}

#[test]
fn names_are_unique_writes_need_the_uid_and_deletion_takes_the_counted_pods() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let store = SqliteStore::open(&path).unwrap();
    store
        .create_job(&JobRecord::new(named_job("a", "u1")))
        .unwrap();
    // Same name, whatever the UID: refused, and the stored record is untouched.
    for uid in ["u1", "u2"] {
        let err = store
            .create_job(&JobRecord::new(named_job("a", uid)))
            .unwrap_err();
        let StoreError::AlreadyExists { kind, name } = &err else {
            panic!("AlreadyExists, got {err}")
        };
        assert_eq!((*kind, name.as_str()), ("Job", "a"));
    }
    assert_eq!(store.load().unwrap().jobs["a"].uid(), "u1");
    // An update with another UID (a replaced record) or of an unknown name: NotFound.
    for (name, uid) in [("a", "u2"), ("zz", "u1")] {
        let j = named_job(name, uid);
        let err = store
            .update_job(JobUpdate::new(&j, &JobMemory::default()))
            .unwrap_err();
        let StoreError::NotFound {
            kind,
            name: n,
            uid: u,
        } = &err
        else {
            panic!("NotFound, got {err}")
        };
        assert_eq!((*kind, n.as_str(), u.as_str()), ("Job", name, uid));
    }
    let mut j = named_job("a", "u1");
    j.status.succeeded = 2;
    store
        .update_job(JobUpdate::new(&j, &JobMemory::default()).counting(&strings(&["p0", "p1"])))
        .unwrap();
    // Deleting with the wrong UID does nothing; with the right one, everything goes,
    // counted pods included: the same name and UID again start from nothing.
    store.delete_job("a", "u2").unwrap();
    assert_eq!(store.load().unwrap().jobs["a"].counted, set(&["p0", "p1"]));
    store.delete_job("a", "u1").unwrap();
    store.delete_job("a", "u1").unwrap();
    assert!(store.load().unwrap().jobs.is_empty());
    store
        .create_job(&JobRecord::new(named_job("a", "u1")))
        .unwrap();
    let reloaded = SqliteStore::open(&path).unwrap().load().unwrap();
    assert!(reloaded.jobs["a"].counted.is_empty());
    assert_eq!(reloaded.jobs["a"].job.status.succeeded, 0);

    // CronJobs: create, refuse a duplicate, update (by UID), delete (by UID).
    let mut c = named_cron("c", "uc");
    store.create_cron_job(&c).unwrap();
    assert!(matches!(
        store.create_cron_job(&named_cron("c", "other")),
        Err(StoreError::AlreadyExists {
            kind: "CronJob",
            ..
        })
    ));
    c.status.last_schedule_time = Some(t0());
    c.spec.suspend = Some(true);
    store.update_cron_job(&c).unwrap();
    assert!(matches!(
        store.update_cron_job(&named_cron("c", "other")),
        Err(StoreError::NotFound {
            kind: "CronJob",
            ..
        })
    ));
    assert_eq!(
        SqliteStore::open(&path).unwrap().load().unwrap().cron_jobs["c"],
        c
    );
    store.delete_cron_job("c", "other").unwrap();
    assert!(store.load().unwrap().cron_jobs.contains_key("c"));
    store.delete_cron_job("c", "uc").unwrap();
    assert!(store.load().unwrap().cron_jobs.is_empty());
    // A Job's name and a CronJob's are separate.
    store.create_cron_job(&named_cron("a", "uc")).unwrap();
    assert_eq!(store.load().unwrap().jobs.len(), 1);
}

// ---------------------------------------------------------------------------------------
// SqliteStore: damage
// ---------------------------------------------------------------------------------------

/// Opening and loading `path` fails; the file's bytes are as they were. Returns the error.
fn refused(path: &Path) -> StoreError {
    let before = std::fs::read(path).unwrap();
    let err = SqliteStore::open(path)
        .and_then(|s| s.load())
        .expect_err("a damaged store is refused");
    assert_untouched(path, &before);
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error names the file: {err}"
    );
    err
}

#[test]
fn a_file_of_garbage_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    for (i, len) in [100usize, 4096, 65_536].into_iter().enumerate() {
        let path = dir.path().join(format!("state-{i}.db"));
        std::fs::write(&path, noise(0x9E37_79B9 + i as u64, len)).unwrap();
        let err = refused(&path);
        assert!(
            matches!(err, StoreError::Corrupt { .. }),
            "{len} bytes: {err}"
        );
        // Read-only opening says the same.
        assert!(matches!(
            SqliteStore::open_read_only(&path).and_then(|s| s.load()),
            Err(StoreError::Corrupt { .. })
        ));
    }
}

/// A store with `n` Jobs (some with counted pods) and a CronJob, closed. Returns its state.
fn big_store(path: &Path, n: usize) -> StoredState {
    let store = SqliteStore::open(path).unwrap();
    for i in 0..n {
        let mut j = named_job(&format!("job-{i:03}"), &format!("uid-{i}"));
        j.metadata
            .annotations
            .insert("note".to_owned(), format!("{i}-").repeat(200));
        store.create_job(&JobRecord::new(j.clone())).unwrap();
        j.status.succeeded = i as i32;
        let counted: Vec<String> = (0..i % 7).map(|k| format!("job-{i:03}-pod-{k}")).collect();
        store
            .update_job(JobUpdate::new(&j, &JobMemory::default()).counting(&counted))
            .unwrap();
    }
    store.create_cron_job(&named_cron("cron", "uc")).unwrap();
    store.load().unwrap()
}

#[test]
fn a_truncated_store_is_corrupt_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    big_store(&path, 60);
    // The last connection closed: SQLite checkpointed the log into the file and removed
    // it, so the file alone is the store.
    assert_eq!(files_in(dir.path()), set(&["state.db"]));
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len >= 16 * 4096, "several pages: {len}");
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 2).unwrap();
    drop(f);
    let err = refused(&path);
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
}

/// 64 bytes of noise at 24 places from the first quarter of the file to the last: each
/// store is refused at open (`Corrupt`, the file untouched), or opens and then either loads
/// exactly what was stored (the noise hit unused space) or fails with `Corrupt`. Never a
/// panic, another error, or different data.
#[test]
fn overwritten_bytes_are_refused_or_harmless_never_silently_different() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    let state = big_store(&good, 40);
    let bytes = std::fs::read(&good).unwrap();
    let mut outcomes = BTreeMap::<&str, usize>::new();
    let mut wrong = Vec::new();
    for k in 0..24usize {
        let at = bytes.len() / 4 + k * (bytes.len() / 2) / 24;
        let mut damaged = bytes.clone();
        damaged[at..at + 64].copy_from_slice(&noise(k as u64 + 1, 64));
        let path = dir.path().join(format!("damaged-{k}.db"));
        std::fs::write(&path, &damaged).unwrap();
        let store = match SqliteStore::open(&path) {
            Ok(store) => store,
            Err(StoreError::Corrupt { .. }) => {
                if std::fs::read(&path).unwrap() != damaged {
                    wrong.push(format!("offset {at}: refused, but the file was modified"));
                }
                *outcomes.entry("refused at open").or_default() += 1;
                continue;
            }
            Err(e) => {
                wrong.push(format!("offset {at}: open: not Corrupt: {e}"));
                continue;
            }
        };
        match store.load() {
            Ok(loaded) if loaded == state => *outcomes.entry("unused space").or_default() += 1,
            Ok(_) => wrong.push(format!("offset {at}: loads different data")),
            Err(StoreError::Corrupt { .. }) => *outcomes.entry("refused at load").or_default() += 1,
            Err(e) => wrong.push(format!("offset {at}: load: not Corrupt: {e}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?} (the others: {outcomes:?})");
    assert!(
        outcomes.len() > 1,
        "the damage hit different places: {outcomes:?}"
    );
}

#[test]
fn an_sqlite_database_that_is_not_a_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    sql(
        &path,
        "CREATE TABLE foo (x INTEGER); INSERT INTO foo VALUES (1);",
    );
    let err = refused(&path);
    let StoreError::Corrupt { detail, .. } = &err else {
        panic!("Corrupt, got {err}")
    };
    assert!(detail.contains("not a batch state store"), "{err}");
    // Nothing of the store's was added to it.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(tables, ["foo"]);
}

#[test]
fn a_record_that_does_not_decode_is_corrupt_and_names_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    big_store(&path, 3);
    sql(&path, "UPDATE jobs SET job = '{' WHERE name = 'job-001'");
    let store = SqliteStore::open(&path).unwrap();
    let err = store.load().unwrap_err();
    let StoreError::Corrupt { detail, .. } = &err else {
        panic!("Corrupt, got {err}")
    };
    assert!(detail.contains("job \"job-001\""), "{err}");
    drop(store);
    // A runner refuses to resume from it, and starts nothing.
    let rt = process();
    rt.block_on(async {
        let clock = ManualClock::new(t0());
        let exec = Scripted::new();
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let err = r.resume().unwrap_err();
        assert!(
            matches!(err, SubmitError::Store(StoreError::Corrupt { .. })),
            "{err}"
        );
        assert_eq!(exec.count(), 0);
    });
}

/// A record that is not text, or not UTF-8, is damage as much as one that is not JSON.
#[test]
fn a_record_of_the_wrong_type_or_not_utf8_is_corrupt() {
    let mut wrong = Vec::new();
    for (what, value) in [
        ("an integer", "5"),
        ("a blob", "X'7B7D'"),
        ("text that is not UTF-8", "CAST(X'7BFF7D' AS TEXT)"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        big_store(&path, 3);
        sql(
            &path,
            &format!("UPDATE jobs SET memory = {value} WHERE name = 'job-002'"),
        );
        match SqliteStore::open(&path).unwrap().load() {
            Err(StoreError::Corrupt { .. }) => {}
            other => wrong.push(format!("{what}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "Corrupt expected: {wrong:#?}");
}

/// `StoreError::Corrupt` says the file was left untouched, also when the damage is found by
/// `load` (a record that does not decode: SQLite's own check cannot see it) rather than by
/// `open`.
#[test]
fn a_store_found_damaged_by_load_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    big_store(&path, 3);
    sql(&path, "UPDATE jobs SET job = '{' WHERE name = 'job-001'");
    assert_eq!(files_in(dir.path()), set(&["state.db"]));
    let before = std::fs::read(&path).unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let err = store.load().unwrap_err();
    assert!(err.to_string().contains("left untouched"), "{err}");
    drop(store);
    assert_untouched(&path, &before);
}

// ---------------------------------------------------------------------------------------
// SqliteStore: a process killed in the middle of its writes
// ---------------------------------------------------------------------------------------

/// Set (to `<durability>:<path>`) in the child process of
/// `a_process_killed_while_writing_leaves_the_last_complete_write`.
const TORN_WRITER: &str = "BATCH_STORE_TEST_TORN_WRITER";
const TORN_PAD: usize = 20_000;

/// Not a test of its own: the child process of
/// `a_process_killed_while_writing_leaves_the_last_complete_write`, selected by the
/// `TORN_WRITER` environment variable (without it, it does nothing). It writes updates of
/// Job `torn` as fast as it can until it is killed: update `i` sets `status.succeeded` and
/// `pods_created` to `i`, counts pod `p-i`, and rewrites a large annotation (several
/// pages), so each write touches many pages.
#[test]
fn torn_write_child_process() {
    let Ok(spec) = std::env::var(TORN_WRITER) else {
        return;
    };
    let (durability, path) = spec.split_once(':').unwrap();
    let durability = match durability {
        "full" => Durability::Full,
        _ => Durability::Process,
    };
    let store = SqliteStore::open_with(path, durability).unwrap();
    let mut job = named_job("torn", "ut");
    let ready = format!("{path}.ready");
    for i in 1.. {
        job.status.succeeded = i;
        job.metadata.annotations.insert(
            "pad".to_owned(),
            char::from(b'a' + (i % 26) as u8)
                .to_string()
                .repeat(TORN_PAD),
        );
        let memory = JobMemory {
            pods_created: i as u64,
            ..JobMemory::default()
        };
        let pod = [format!("p-{i}")];
        store
            .update_job(JobUpdate::new(&job, &memory).counting(&pod))
            .unwrap();
        if i == 20 {
            std::fs::write(&ready, b"").unwrap();
        }
    }
}

#[test]
fn a_process_killed_while_writing_leaves_the_last_complete_write() {
    for durability in ["full", "process"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        SqliteStore::open(&path)
            .unwrap()
            .create_job(&JobRecord::new(named_job("torn", "ut")))
            .unwrap();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "torn_write_child_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(TORN_WRITER, format!("{durability}:{}", path.display()))
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ready = PathBuf::from(format!("{}.ready", path.display()));
        // Up to 20 s (4,000 × 5 ms) for the writer to get going.
        for attempt in 0.. {
            if ready.exists() {
                break;
            }
            assert!(attempt < 4_000, "the writer did not start");
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the writer ended early: {status}");
            }
            std::thread::sleep(StdDuration::from_millis(5));
        }
        std::thread::sleep(StdDuration::from_millis(300));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "the writer was killed: {status}");

        // The killed process left its log behind; opening recovers the last complete
        // write from it.
        let state = SqliteStore::open(&path).unwrap().load().unwrap();
        let record = &state.jobs["torn"];
        let n = record.job.status.succeeded;
        assert!(
            n >= 20,
            "{durability}: at least the writes before `ready`: {n}"
        );
        let expected: BTreeSet<String> = (1..=n).map(|i| format!("p-{i}")).collect();
        assert_eq!(
            record.counted, expected,
            "{durability}: the counted pods are those of the same write as the status"
        );
        assert_eq!(record.memory.pods_created, n as u64);
        assert_eq!(
            record.job.metadata.annotations["pad"],
            char::from(b'a' + (n % 26) as u8)
                .to_string()
                .repeat(TORN_PAD)
        );
        assert!(record.starting.is_empty());
        // And the store works on.
        let store = SqliteStore::open(&path).unwrap();
        let mut j = record.job.clone();
        j.status.succeeded = n + 1;
        store
            .update_job(JobUpdate::new(&j, &record.memory).counting(&[format!("p-{}", n + 1)]))
            .unwrap();
        assert_eq!(
            store.load().unwrap().jobs["torn"].counted.len(),
            n as usize + 1
        );
    }
}

// ---------------------------------------------------------------------------------------
// The runner: resuming a crashed runner's Job
// ---------------------------------------------------------------------------------------

const INDEXED: &str = "
metadata: {name: idx}
spec:
  completions: 4
  parallelism: 2
  completionMode: Indexed
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";

/// The first part of the script, on runner A: indexes 0 and 1 run; 0 succeeds (2 starts);
/// 1 fails, which owes a 10 s backoff before any new pod.
async fn indexed_first_part(h: &JobHandle, exec: &Scripted) {
    until("two pods run", || exec.running().len() == 2).await;
    exec.exit(&exec.running_index("0"), 0);
    until("index 2 starts", || {
        exec.count() == 3 && h.status().succeeded == 1
    })
    .await;
    exec.exit(&exec.running_index("1"), 1);
    until("the failure is counted", || {
        let s = h.status();
        s.failed == 1 && s.uncounted_terminated_pods.is_none()
    })
    .await;
}

/// The rest of the script, on whichever runner runs the Job at t0 + 1 s: nothing starts
/// before the backoff ends at t0 + 10 s; then index 1 again, 2 succeeds, 3 starts, and the
/// remaining pods succeed one by one.
async fn indexed_second_part(h: &JobHandle, exec: &Scripted, clock: &ManualClock) -> JobStatus {
    assert_eq!(clock.now(), t0() + Duration::seconds(1));
    assert_eq!(
        next_wake(clock).await,
        t0() + Duration::seconds(10),
        "the backoff owed for the failure"
    );
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    assert_eq!(exec.count(), 3, "nothing starts before the backoff");
    assert_eq!(exec.running().len(), 1);
    assert_eq!((h.status().succeeded, h.status().failed), (1, 1));
    clock.set(t0() + Duration::seconds(10));
    until("index 1 runs again", || exec.count() == 4).await;
    let again = exec.running_index("1");
    exec.exit(&exec.running_index("2"), 0);
    until("index 3 starts", || {
        exec.count() == 5 && h.status().succeeded == 2
    })
    .await;
    exec.exit(&again, 0);
    until("index 1 is counted", || h.status().succeeded == 3).await;
    exec.exit(&exec.running_index("3"), 0);
    h.wait().await.unwrap()
}

/// Checks that the executor's pods are exactly those the final status counts.
fn assert_counted_once(status: &JobStatus, exec: &Scripted) {
    let pods = exec.pods();
    let failed = pods.iter().filter(|p| p.phase == PodPhase::Failed).count();
    let succeeded = pods
        .iter()
        .filter(|p| p.phase == PodPhase::Succeeded)
        .count();
    assert_eq!((succeeded, failed), (4, 1), "{pods:#?}");
    assert_eq!(status.succeeded, 4);
    assert_eq!(
        status.failed as usize, failed,
        "every failed pod counted once"
    );
    assert_eq!(exec.starts(), 5, "every pod started once, no name reused");
    let mut indexes: Vec<&str> = pods
        .iter()
        .filter(|p| p.phase == PodPhase::Succeeded)
        .filter_map(index_of)
        .collect();
    indexes.sort_unstable();
    assert_eq!(indexes, ["0", "1", "2", "3"], "no index succeeded twice");
}

#[test]
fn a_resumed_indexed_job_adopts_its_pods_keeps_its_backoff_and_ends_as_an_uninterrupted_run() {
    // Uninterrupted: one runner from start to end.
    let uninterrupted = {
        let dir = tempfile::tempdir().unwrap();
        let exec = Scripted::new();
        let clock = ManualClock::new(t0());
        let store = Arc::new(SqliteStore::open(dir.path().join("state.db")).unwrap());
        let rt = process();
        let status = rt.block_on(async {
            let r = runner(exec.clone(), &clock, store);
            let h = r.submit_job(job(INDEXED)).unwrap();
            indexed_first_part(&h, &exec).await;
            clock.set(t0() + Duration::seconds(1));
            indexed_second_part(&h, &exec, &clock).await
        });
        assert_counted_once(&status, &exec);
        status
    };

    // Interrupted: runner A crashes after the failure; runner B (a new runtime, a new
    // store instance on the same file, a new clock a second later) resumes the Job.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let exec = Scripted::new();
    let a = process();
    a.block_on(async {
        let clock = ManualClock::new(t0());
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let h = r.submit_job(job(INDEXED)).unwrap();
        indexed_first_part(&h, &exec).await;
        // Let the step end (the task sleeps until the backoff's end): the crash comes
        // between steps, as it usually does.
        until("runner A sleeps", || clock.next_deadline().is_some()).await;
    });
    drop(a);
    // What survived: the counts, the counted pods, the backoff record, the pod counter.
    let stored = SqliteStore::open_read_only(&path).unwrap().load().unwrap();
    let record = &stored.jobs["idx"];
    assert_eq!(
        (record.job.status.succeeded, record.job.status.failed),
        (1, 1)
    );
    assert_eq!(record.counted.len(), 2);
    assert_eq!(record.memory.pods_created, 3);
    assert_eq!(record.memory.backoff.failures_after_last_success, 1);
    assert_eq!(record.memory.backoff.last_failure_time, Some(t0()));
    assert!(record.starting.is_empty());
    assert_eq!(exec.running().len(), 1, "index 2 runs through the crash");

    let b = process();
    let resumed = b.block_on(async {
        let clock = ManualClock::new(t0() + Duration::seconds(1));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let resumed = r.resume().unwrap();
        assert!(resumed.cron_jobs.is_empty());
        assert_eq!(resumed.jobs.len(), 1);
        let h = resumed.jobs[0].clone();
        assert_eq!(h.name(), "idx");
        assert_eq!(h.uid(), record.uid());
        assert_eq!(h.status(), record.job.status);
        // Submitting the same name again is refused: the resumed Job holds it.
        assert!(matches!(
            r.submit_job(job(INDEXED)),
            Err(SubmitError::AlreadyExists { kind: "Job", .. })
        ));
        indexed_second_part(&h, &exec, &clock).await
    });
    drop(b);
    assert_counted_once(&resumed, &exec);
    assert_eq!(
        resumed, uninterrupted,
        "the same status as without the crash"
    );
    let stored = SqliteStore::open(&path).unwrap().load().unwrap();
    assert_eq!(stored.jobs["idx"].job.status, resumed);
    assert_eq!(stored.jobs["idx"].counted.len(), 5);
}

/// Runner A records its intent to start two pods and is stuck in the executor's `start`
/// calls when it crashes: `hang` says whether the pods were created before that. Runner B
/// resumes: pods that exist are adopted (not started again), and pods that do not are
/// started under new names (the pod counter was recorded with the intent).
fn crash_while_starting_pods(hang: Hang) {
    const TWO: &str = "
metadata: {name: two}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let exec = Scripted::new();
    exec.set_hang(hang);
    let a = process();
    a.block_on(async {
        let clock = ManualClock::new(t0());
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        r.submit_job(job(TWO)).unwrap();
        until("the intent is recorded", || {
            r.store().load().unwrap().jobs["two"].starting.len() == 2
        })
        .await;
        if hang == Hang::AfterCreate {
            until("the pods exist", || exec.count() == 2).await;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    });
    drop(a);
    let record = SqliteStore::open(&path).unwrap().load().unwrap().jobs["two"].clone();
    assert_eq!(record.memory.pods_created, 2);
    assert_eq!(record.job.status.active, 0, "the step was not recorded");
    let intended: BTreeSet<String> = record.starting.iter().cloned().collect();
    let existing: BTreeSet<String> = exec.pods().into_iter().map(|p| p.name).collect();
    match hang {
        Hang::AfterCreate => assert_eq!(existing, intended),
        _ => assert!(existing.is_empty()),
    }

    exec.set_hang(Hang::No);
    let b = process();
    b.block_on(async {
        let clock = ManualClock::new(t0() + Duration::seconds(1));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let h = r.resume_job("two").unwrap().expect("the Job is stored");
        until("two pods run", || {
            exec.running().len() == 2 && h.status().active == 2
        })
        .await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        let running: BTreeSet<String> = exec.running().into_iter().collect();
        assert_eq!(exec.count(), 2, "one pod per index: {running:?}");
        if hang == Hang::AfterCreate {
            assert_eq!(running, intended, "the pods A started are adopted");
            assert_eq!(exec.starts(), 2, "nothing started again");
        } else {
            assert!(
                running.is_disjoint(&intended),
                "new names: {running:?} vs {intended:?}"
            );
        }
        for p in exec.running() {
            exec.exit(&p, 0);
        }
        let status = h.wait().await.unwrap();
        assert_eq!((status.succeeded, status.failed), (2, 0));
        assert_eq!(exec.starts(), 2);
        let stored = r.store().load().unwrap();
        assert!(stored.jobs["two"].starting.is_empty());
        assert_eq!(stored.jobs["two"].counted, running);
    });
    drop(b);
}

#[test]
fn pods_created_just_before_a_crash_are_adopted_not_started_again() {
    crash_while_starting_pods(Hang::AfterCreate);
}

#[test]
fn pods_intended_but_not_created_before_a_crash_are_started_under_new_names() {
    crash_while_starting_pods(Hang::BeforeCreate);
}

// ---------------------------------------------------------------------------------------
// The runner: names, failing writes
// ---------------------------------------------------------------------------------------

const SIMPLE: &str = "
metadata: {name: simple}
spec:
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";

#[tokio::test]
async fn a_name_in_the_store_is_taken_until_its_job_is_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    let r = runner(exec.clone(), &clock, store.clone());
    let first = r.submit_job(job(SIMPLE)).unwrap();
    until("the pod runs", || exec.running().len() == 1).await;
    let err = r.submit_job(job(SIMPLE)).unwrap_err();
    let SubmitError::AlreadyExists { kind, name } = &err else {
        panic!("AlreadyExists, got {err}")
    };
    assert_eq!((*kind, name.as_str()), ("Job", "simple"));
    // Another runner (another process) on the same file is refused as well.
    let other = runner(
        exec.clone(),
        &clock,
        Arc::new(SqliteStore::open(&path).unwrap()),
    );
    assert!(matches!(
        other.submit_job(job(SIMPLE)),
        Err(SubmitError::AlreadyExists { .. })
    ));
    assert_eq!(exec.starts(), 1, "a refused Job starts nothing");
    assert_eq!(store.load().unwrap().jobs["simple"].uid(), first.uid());

    first.delete().await.unwrap();
    assert_eq!(exec.count(), 0);
    assert!(
        store.load().unwrap().jobs.is_empty(),
        "deleted from the store"
    );
    let second = r.submit_job(job(SIMPLE)).unwrap();
    assert_ne!(second.uid(), first.uid());
    assert_eq!(store.load().unwrap().jobs["simple"].uid(), second.uid());
    until("the new pod runs", || exec.running().len() == 1).await;
    exec.exit(&exec.running()[0], 0);
    let status = second.wait().await.unwrap();
    assert_eq!((status.succeeded, status.failed), (1, 0));
}

#[tokio::test]
async fn failing_store_writes_hold_the_status_back_and_change_no_count() {
    const FAILURES: usize = 3;
    let clock = ManualClock::new(t0());
    let exec = Scripted::new();
    let memory = Arc::new(MemoryStore::new());
    let store = Faulty::new(memory.clone());
    let r = runner(exec.clone(), &clock, store.clone());
    let h = r
        .submit_job(job("
metadata: {name: flaky}
spec:
  completions: 2
  parallelism: 2
  completionMode: Indexed
  template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
"))
        .unwrap();
    let mut rx = h.events();
    let mut seen = Vec::new();
    until("two pods run", || exec.running().len() == 2).await;
    until("the running pods are recorded", || {
        memory.load().unwrap().jobs["flaky"].job.status.active == 2 && h.status().active == 2
    })
    .await;
    let before = h.status();
    let mut status_rx = h.status_watch();
    status_rx.borrow_and_update();

    store.fail_job_updates.store(FAILURES, Ordering::SeqCst);
    exec.exit(&exec.running_index("0"), 1);
    exec.exit(&exec.running_index("1"), 0);
    for k in 1..=FAILURES {
        until("a store error", || {
            drain(&mut rx, &mut seen);
            store_errors(&seen) == k
        })
        .await;
        // Nothing the step decided is published, or recorded, while it cannot be.
        assert_eq!(h.status(), before, "after {k} failed writes");
        assert!(!status_rx.has_changed().unwrap());
        assert_eq!(memory.load().unwrap().jobs["flaky"].job.status, before);
        let wake = next_wake(&clock).await;
        assert!(wake > clock.now(), "the retry waits");
        clock.set(wake);
    }
    // The write went through: both outcomes are counted, once.
    until("both outcomes are counted", || {
        let s = h.status();
        (s.succeeded, s.failed) == (1, 1)
    })
    .await;
    // The rest: index 0 again (after its backoff), and it succeeds.
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
    assert_eq!((status.succeeded, status.failed), (2, 1));
    assert_eq!(status.completed_indexes, "0,1");
    assert_eq!(
        exec.starts(),
        3,
        "no pod started again because of the failures"
    );
    drain(&mut rx, &mut seen);
    let errors: Vec<&RunEvent> = seen
        .iter()
        .filter(|e| matches!(e.kind, RunEventKind::StoreError { .. }))
        .collect();
    assert_eq!(errors.len(), FAILURES, "one event per failed write");
    for e in &errors {
        let RunEventKind::StoreError {
            message, retry_at, ..
        } = &e.kind
        else {
            unreachable!()
        };
        assert!(message.contains("no space left on device"), "{message}");
        assert!(retry_at.is_some_and(|t| t > e.t), "{e:?}");
    }
    let stored = memory.load().unwrap();
    assert_eq!(stored.jobs["flaky"].job.status, status);
    assert_eq!(stored.jobs["flaky"].counted.len(), 3);
}

// ---------------------------------------------------------------------------------------
// The runner: resuming CronJobs
// ---------------------------------------------------------------------------------------

const TICK: &str = "
metadata: {name: tick}
spec:
  schedule: '* * * * *'
  jobTemplate:
    spec:
      template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";

/// Runner A creates the Job of the 00:01 slot and crashes; runner B resumes. With
/// `lose_status`, A's write of the CronJob's status after creating the Job fails, so the
/// store holds the Job but a CronJob that does not know it (a crash between the two writes).
fn crash_after_creating_a_child(lose_status: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let exec = Scripted::new();
    let slot = t0() + Duration::minutes(1);
    let name = batch_core::cronjob::job_name("tick", slot);
    let a = process();
    a.block_on(async {
        let clock = ManualClock::new(t0() + Duration::seconds(30));
        let store = Faulty::new(Arc::new(SqliteStore::open(&path).unwrap()));
        if lose_status {
            store.fail_cron_updates.store(usize::MAX, Ordering::SeqCst);
        }
        let r = runner(exec.clone(), &clock, store);
        let cj = r.submit_cron_job(cron_job(TICK)).unwrap();
        let mut rx = cj.events();
        let mut seen = Vec::new();
        let due = slot + Duration::milliseconds(100);
        until("A sleeps until the slot", || {
            clock.next_deadline() == Some(due)
        })
        .await;
        clock.set(due);
        until_event(&mut rx, &mut seen, "jobCreate", |e| {
            e.kind
                == RunEventKind::JobCreate {
                    job: name.clone(),
                    scheduled_time: Some(slot),
                }
        })
        .await;
        until("the child's pod runs", || exec.running().len() == 1).await;
        if lose_status {
            until_event(&mut rx, &mut seen, "the status write fails", |e| {
                matches!(e.kind, RunEventKind::StoreError { .. })
            })
            .await;
        } else {
            until("the status is recorded", || {
                cj.status().last_schedule_time == Some(slot)
            })
            .await;
        }
    });
    drop(a);
    let stored = SqliteStore::open_read_only(&path).unwrap().load().unwrap();
    assert_eq!(
        stored.jobs.keys().collect::<Vec<_>>(),
        [&name],
        "the child is recorded"
    );
    let uid = stored.cron_jobs["tick"].metadata.uid.clone().unwrap();
    assert_eq!(stored.jobs[&name].owner_uid(), Some(uid.as_str()));
    let recorded_slot = stored.cron_jobs["tick"].status.last_schedule_time;
    assert_eq!(recorded_slot, (!lose_status).then_some(slot));

    let b = process();
    b.block_on(async {
        let clock = ManualClock::new(slot + Duration::seconds(5));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let resumed = r.resume().unwrap();
        assert!(
            resumed.jobs.is_empty(),
            "the child is resumed with its CronJob"
        );
        assert_eq!(resumed.cron_jobs.len(), 1);
        let cj = resumed.cron_jobs[0].clone();
        let mut rx = cj.events();
        let mut seen = Vec::new();
        assert_eq!(cj.jobs().len(), 1);
        assert_eq!(cj.jobs()[0].name(), name);
        until("B knows the slot's Job", || {
            let s = cj.status();
            s.last_schedule_time == Some(slot) && s.active.len() == 1
        })
        .await;
        let next = t0() + Duration::minutes(2) + Duration::milliseconds(100);
        until("B sleeps until the next slot", || {
            clock.next_deadline() == Some(next)
        })
        .await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        drain(&mut rx, &mut seen);
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e.kind, RunEventKind::JobCreate { .. })),
            "no second Job for the slot: {seen:?}"
        );
        assert_eq!(cj.jobs().len(), 1);
        assert_eq!(
            exec.count(),
            1,
            "the child's pod is adopted, not started again"
        );
        assert_eq!(exec.starts(), 1);
        let stored = r.store().load().unwrap();
        assert_eq!(stored.jobs.len(), 1);
        assert_eq!(
            stored.cron_jobs["tick"].status.last_schedule_time,
            Some(slot)
        );
        // The adopted child goes on as usual.
        exec.exit(&exec.running()[0], 0);
        until_event(
            &mut rx,
            &mut seen,
            "jobFinish",
            |e| matches!(&e.kind, RunEventKind::JobFinish { job, .. } if *job == name),
        )
        .await;
        assert!(
            cj.jobs()[0]
                .status()
                .has_true_condition(&JobConditionType::Complete)
        );
        cj.stop().await.unwrap();
    });
    drop(b);
}

#[test]
fn a_cron_job_resumed_after_a_crash_never_creates_a_slot_twice() {
    crash_after_creating_a_child(false);
}

#[test]
fn a_cron_job_whose_status_write_was_lost_adopts_the_slots_job() {
    crash_after_creating_a_child(true);
}

const HOURLY: &str = "
metadata: {name: hourly}
spec:
  schedule: '0 * * * *'
  startingDeadlineSeconds: DEADLINE
  jobTemplate:
    spec:
      template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}
";

/// Runner A records the CronJob at 00:30 and stops before 01:00. Returns the store's path.
fn hourly_recorded(dir: &Path, exec: &Arc<Scripted>, deadline: i64) -> PathBuf {
    let path = dir.join("state.db");
    let a = process();
    a.block_on(async {
        let clock = ManualClock::new(t0() + Duration::minutes(30));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        r.submit_cron_job(cron_job(&HOURLY.replace("DEADLINE", &deadline.to_string())))
            .unwrap();
        let due = t0() + Duration::hours(1) + Duration::milliseconds(100);
        until("A sleeps until 01:00", || {
            clock.next_deadline() == Some(due)
        })
        .await;
    });
    drop(a);
    path
}

#[test]
fn a_slot_missed_while_no_runner_ran_starts_once_within_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Scripted::new();
    let path = hourly_recorded(dir.path(), &exec, 3600);
    let slot = t0() + Duration::hours(1);
    let name = batch_core::cronjob::job_name("hourly", slot);
    let next = t0() + Duration::hours(2) + Duration::milliseconds(100);
    // Resumed at 01:20: the 01:00 slot is 20 minutes late, within the hour allowed.
    let b = process();
    b.block_on(async {
        let clock = ManualClock::new(slot + Duration::minutes(20));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let cj = r.resume().unwrap().cron_jobs.remove(0);
        let mut rx = cj.events();
        let mut seen = Vec::new();
        until_event(&mut rx, &mut seen, "jobCreate", |e| {
            e.kind
                == RunEventKind::JobCreate {
                    job: name.clone(),
                    scheduled_time: Some(slot),
                }
        })
        .await;
        until("its pod runs", || exec.running().len() == 1).await;
        until("B sleeps until 02:00", || {
            clock.next_deadline() == Some(next)
        })
        .await;
        until("the slot is recorded", || {
            r.store().load().unwrap().cron_jobs["hourly"]
                .status
                .last_schedule_time
                == Some(slot)
        })
        .await;
    });
    drop(b);
    // Resumed again, later in the same hour: the slot is done, nothing is created.
    let c = process();
    c.block_on(async {
        let clock = ManualClock::new(slot + Duration::minutes(25));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let cj = r.resume().unwrap().cron_jobs.remove(0);
        let mut rx = cj.events();
        let mut seen = Vec::new();
        until("C sleeps until 02:00", || {
            clock.next_deadline() == Some(next)
        })
        .await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        drain(&mut rx, &mut seen);
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e.kind, RunEventKind::JobCreate { .. })),
            "{seen:?}"
        );
        assert_eq!(cj.jobs().len(), 1);
        assert_eq!(cj.jobs()[0].name(), name);
        assert_eq!(exec.starts(), 1, "the slot ran once");
        assert_eq!(cj.status().last_schedule_time, Some(slot));
        cj.stop().await.unwrap();
    });
    drop(c);
}

#[test]
fn a_slot_missed_beyond_its_deadline_is_reported_and_not_started() {
    let dir = tempfile::tempdir().unwrap();
    let exec = Scripted::new();
    let path = hourly_recorded(dir.path(), &exec, 600);
    let slot = t0() + Duration::hours(1);
    let b = process();
    b.block_on(async {
        // Resumed at 01:20: the 01:00 slot is 20 minutes late, the deadline 10 minutes.
        let clock = ManualClock::new(slot + Duration::minutes(20));
        let r = runner(
            exec.clone(),
            &clock,
            Arc::new(SqliteStore::open(&path).unwrap()),
        );
        let cj = r.resume().unwrap().cron_jobs.remove(0);
        let mut rx = cj.events();
        let mut seen = Vec::new();
        until_event(&mut rx, &mut seen, "MissSchedule", |e| {
            e.kind
                == RunEventKind::Warning {
                    reason: "MissSchedule".to_owned(),
                    message:
                        "Missed scheduled time to start a job: Thu, 01 Jan 2026 01:00:00 +0000"
                            .to_owned(),
                }
        })
        .await;
        let next = t0() + Duration::hours(2);
        until("B sleeps until 02:00", || {
            clock.next_deadline() == Some(next + Duration::milliseconds(100))
        })
        .await;
        tokio::time::sleep(StdDuration::from_millis(20)).await;
        drain(&mut rx, &mut seen);
        assert!(
            !seen
                .iter()
                .any(|e| matches!(e.kind, RunEventKind::JobCreate { .. })),
            "{seen:?}"
        );
        assert!(cj.jobs().is_empty());
        assert_eq!(exec.count(), 0);
        assert_eq!(cj.status().last_schedule_time, None);
        assert_eq!(
            r.store().load().unwrap().cron_jobs["hourly"]
                .status
                .last_schedule_time,
            None
        );
        // The next slot starts on time.
        clock.set(next + Duration::milliseconds(100));
        let name = batch_core::cronjob::job_name("hourly", next);
        until_event(&mut rx, &mut seen, "jobCreate", |e| {
            e.kind
                == RunEventKind::JobCreate {
                    job: name.clone(),
                    scheduled_time: Some(next),
                }
        })
        .await;
        until("its pod runs", || exec.running().len() == 1).await;
        cj.stop().await.unwrap();
    });
    drop(b);
}
