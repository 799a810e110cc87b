//! Durable runner state (feature `runtime`): what a restarted process needs to carry on
//! exactly where the previous one stopped (product decision 5).
//!
//! The [`Runner`](crate::runner::Runner) writes to a [`StateStore`]:
//!
//! - when a Job or CronJob is submitted, its record ([`StateStore::create_job`],
//!   [`StateStore::create_cron_job`]) — before any pod exists;
//! - before it asks the executor to start pods, the names of those pods and the machine's
//!   pod counter ([`JobUpdate::starting`]): an *intent*, so that a restarted runner never
//!   reuses a pod name and knows which pods may have been created just before a crash;
//! - after each machine step, the Job (its status and spec), the machine's
//!   [memory](crate::job::JobMemory) (pod counter, backoff record) and the pods whose outcome
//!   that status now counts, **in one atomic write** and before those pods are released;
//! - after each CronJob step that changed its status.
//!
//! [`Runner::resume`](crate::runner::Runner::resume) reads everything back and carries on:
//! the pods of each Job are listed by their labels and adopted (running ones kept, finished
//! ones counted unless already counted), so nothing is run twice that finished, and nothing
//! counted is counted again.
//!
//! Two implementations: [`MemoryStore`] (the runner's default: nothing survives the
//! process) and [`SqliteStore`], a single file that needs no server (SQLite, in WAL mode;
//! see its documentation for what a crash or a power loss can cost under each
//! [`Durability`]).
//!
//! The store is keyed by object name: one runner (or several cooperating ones that never
//! run the same Job) per store. Every write names the record's UID too, so a task whose
//! record was replaced or deleted meanwhile gets [`StoreError::NotFound`] instead of
//! overwriting its successor.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::job::JobMemory;
use crate::model::{CronJob, Job};

mod sqlite;

pub use sqlite::{Durability, SqliteStore};

/// What the store holds for one Job.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct JobRecord {
    /// The Job as last written: prepared for create (UID, defaults, selector), with its
    /// spec (including `suspend`) and the last persisted status; `deletionTimestamp` is
    /// set once its deletion has begun.
    pub job: Job,
    /// The machine's memory from the same step as the status.
    pub memory: JobMemory,
    /// The pods whose outcome the status counts (released pods).
    pub counted: BTreeSet<String>,
    /// Pods the runner was about to ask the executor to start when this was written
    /// (empty once the step that started them has been persisted).
    pub starting: Vec<String>,
}

impl JobRecord {
    /// A record for a Job that has not run yet.
    pub fn new(job: Job) -> Self {
        JobRecord {
            job,
            ..JobRecord::default()
        }
    }

    /// The Job's name.
    pub fn name(&self) -> &str {
        self.job.name()
    }

    /// The Job's UID (empty when it has none).
    pub fn uid(&self) -> &str {
        self.job.metadata.uid.as_deref().unwrap_or_default()
    }

    /// The CronJob that owns this Job (its controller owner reference's UID), if any.
    pub fn owner_uid(&self) -> Option<&str> {
        owner_uid(&self.job)
    }
}

/// The UID of a Job's controlling CronJob.
pub(crate) fn owner_uid(job: &Job) -> Option<&str> {
    job.metadata
        .owner_references
        .iter()
        .find(|o| o.kind == "CronJob" && o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

/// One write of a Job's state: the Job (status and spec), the memory, the pods newly counted
/// by this status (added to [`JobRecord::counted`]), and the pods about to be started
/// (replacing [`JobRecord::starting`]).
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct JobUpdate<'a> {
    /// The Job (its name and UID select the record).
    pub job: &'a Job,
    /// The machine's memory.
    pub memory: &'a JobMemory,
    /// Pods whose outcome is counted from now on.
    pub newly_counted: &'a [String],
    /// Pods about to be started (the intent), or empty.
    pub starting: &'a [String],
}

impl<'a> JobUpdate<'a> {
    /// An update of `job` and `memory`, counting no new pod and starting none.
    pub fn new(job: &'a Job, memory: &'a JobMemory) -> Self {
        JobUpdate {
            job,
            memory,
            newly_counted: &[],
            starting: &[],
        }
    }

    /// This update, also recording `names` as counted.
    #[must_use]
    pub fn counting(mut self, names: &'a [String]) -> Self {
        self.newly_counted = names;
        self
    }

    /// This update, also recording `names` as about to be started.
    #[must_use]
    pub fn starting(mut self, names: &'a [String]) -> Self {
        self.starting = names;
        self
    }
}

/// Everything a store holds.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct StoredState {
    /// The Jobs, by name.
    pub jobs: BTreeMap<String, JobRecord>,
    /// The CronJobs, by name.
    pub cron_jobs: BTreeMap<String, CronJob>,
}

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A record with this name exists already.
    #[error("{kind} {name:?} already exists in the state store")]
    AlreadyExists {
        /// `Job` or `CronJob`.
        kind: &'static str,
        /// The name.
        name: String,
    },
    /// No record with this name and UID: it was deleted or replaced.
    #[error("{kind} {name:?} (uid {uid}) is not in the state store (deleted or replaced)")]
    NotFound {
        /// `Job` or `CronJob`.
        kind: &'static str,
        /// The name.
        name: String,
        /// The UID the caller expected.
        uid: String,
    },
    /// The store's contents are damaged (a truncated or overwritten file, a record that
    /// does not decode). Nothing was changed: the file is left as it was found.
    #[error("the state store {path} is damaged: {detail} (the file was left untouched)")]
    Corrupt {
        /// The store's file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// The store was written by a newer version of this library.
    #[error(
        "the state store {path} has schema version {found}; this version of batch reads \
         versions up to {supported}"
    )]
    Version {
        /// The store's file.
        path: PathBuf,
        /// The version found.
        found: i64,
        /// The newest version this build reads.
        supported: i64,
    },
    /// The storage itself failed (I/O, a full disk, a lock held too long).
    #[error("state store {path}: {message}")]
    Storage {
        /// The store's file.
        path: PathBuf,
        /// What failed.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

/// Where a runner keeps the state that must survive a restart. See the
/// [module documentation](self) for when the runner writes what.
///
/// Every write is atomic: after a crash at any point, a store holds either the state before
/// a write or the state after it, never a mix. Methods block (briefly); the runner calls
/// them from its tasks.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Everything the store holds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when a record cannot be read, [`StoreError::Storage`].
    fn load(&self) -> Result<StoredState, StoreError>;

    /// Adds a Job.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] when a Job of that name is stored.
    fn create_job(&self, record: &JobRecord) -> Result<(), StoreError>;

    /// Writes a Job's state (see [`JobUpdate`]), atomically.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no Job with that name and UID is stored.
    fn update_job(&self, update: JobUpdate<'_>) -> Result<(), StoreError>;

    /// Removes a Job and everything stored with it. Removing one that is not there is not
    /// an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    fn delete_job(&self, name: &str, uid: &str) -> Result<(), StoreError>;

    /// Adds a CronJob.
    ///
    /// # Errors
    ///
    /// [`StoreError::AlreadyExists`] when a CronJob of that name is stored.
    fn create_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError>;

    /// Replaces a CronJob (its spec and status).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] when no CronJob with that name and UID is stored.
    fn update_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError>;

    /// Removes a CronJob. Removing one that is not there is not an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::Storage`].
    fn delete_cron_job(&self, name: &str, uid: &str) -> Result<(), StoreError>;
}

/// A store in memory: the runner's default. Nothing survives the process; useful for tests
/// and for programs that do not need to resume.
///
/// ```
/// use batch_core::store::{JobRecord, MemoryStore, StateStore};
/// use batch_core::model::Job;
///
/// let store = MemoryStore::new();
/// let mut job = Job::default();
/// job.metadata.name = Some("demo".into());
/// job.metadata.uid = Some("u1".into());
/// store.create_job(&JobRecord::new(job.clone())).unwrap();
/// assert!(store.create_job(&JobRecord::new(job)).is_err());
/// assert_eq!(store.load().unwrap().jobs.len(), 1);
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<StoredState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, StoredState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn cron_uid(c: &CronJob) -> &str {
    c.metadata.uid.as_deref().unwrap_or_default()
}

impl StateStore for MemoryStore {
    fn load(&self) -> Result<StoredState, StoreError> {
        Ok(self.state().clone())
    }

    fn create_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.jobs.contains_key(record.name()) {
            return Err(StoreError::AlreadyExists {
                kind: "Job",
                name: record.name().to_owned(),
            });
        }
        state.jobs.insert(record.name().to_owned(), record.clone());
        Ok(())
    }

    fn update_job(&self, update: JobUpdate<'_>) -> Result<(), StoreError> {
        let mut state = self.state();
        let name = update.job.name();
        let uid = update.job.metadata.uid.as_deref().unwrap_or_default();
        match state.jobs.get_mut(name) {
            Some(r) if r.uid() == uid => {
                r.job = update.job.clone();
                r.memory = update.memory.clone();
                r.counted.extend(update.newly_counted.iter().cloned());
                r.starting = update.starting.to_vec();
                Ok(())
            }
            _ => Err(StoreError::NotFound {
                kind: "Job",
                name: name.to_owned(),
                uid: uid.to_owned(),
            }),
        }
    }

    fn delete_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.jobs.get(name).is_some_and(|r| r.uid() == uid) {
            state.jobs.remove(name);
        }
        Ok(())
    }

    fn create_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        let mut state = self.state();
        if state.cron_jobs.contains_key(cron_job.name()) {
            return Err(StoreError::AlreadyExists {
                kind: "CronJob",
                name: cron_job.name().to_owned(),
            });
        }
        state
            .cron_jobs
            .insert(cron_job.name().to_owned(), cron_job.clone());
        Ok(())
    }

    fn update_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        let mut state = self.state();
        match state.cron_jobs.get_mut(cron_job.name()) {
            Some(c) if cron_uid(c) == cron_uid(cron_job) => {
                *c = cron_job.clone();
                Ok(())
            }
            _ => Err(StoreError::NotFound {
                kind: "CronJob",
                name: cron_job.name().to_owned(),
                uid: cron_uid(cron_job).to_owned(),
            }),
        }
    }

    fn delete_cron_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        if state
            .cron_jobs
            .get(name)
            .is_some_and(|c| cron_uid(c) == uid)
        {
            state.cron_jobs.remove(name);
        }
        Ok(())
    }
}

impl<S: StateStore + ?Sized> StateStore for std::sync::Arc<S> {
    fn load(&self) -> Result<StoredState, StoreError> {
        (**self).load()
    }
    fn create_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        (**self).create_job(record)
    }
    fn update_job(&self, update: JobUpdate<'_>) -> Result<(), StoreError> {
        (**self).update_job(update)
    }
    fn delete_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        (**self).delete_job(name, uid)
    }
    fn create_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        (**self).create_cron_job(cron_job)
    }
    fn update_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        (**self).update_cron_job(cron_job)
    }
    fn delete_cron_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        (**self).delete_cron_job(name, uid)
    }
}
