//! [`SqliteStore`]: the durable store, one SQLite file (WAL mode), no server.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde::{Serialize, de::DeserializeOwned};

use super::{JobRecord, JobUpdate, StateStore, StoreError, StoredState};
use crate::model::{CronJob, Job};

/// The schema version this build writes (`PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    name     TEXT PRIMARY KEY,
    uid      TEXT NOT NULL,
    job      TEXT NOT NULL,
    memory   TEXT NOT NULL,
    starting TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counted (
    job_uid TEXT NOT NULL,
    pod     TEXT NOT NULL,
    PRIMARY KEY (job_uid, pod)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cron_jobs (
    name     TEXT PRIMARY KEY,
    uid      TEXT NOT NULL,
    cron_job TEXT NOT NULL
);
";

/// How hard a [`SqliteStore`] works to keep a write once it has returned.
///
/// Either way a write is atomic and the file is never left half-written: SQLite's
/// write-ahead log carries a checksum per frame and a torn or partial write is discarded
/// when the file is next opened, leaving the state of the last complete write. The
/// difference is what a *power loss or operating-system crash* can cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Durability {
    /// Every write is flushed to the disk (`fsync`) before it returns (SQLite
    /// `synchronous=FULL`). Survives a crash of the process and a power loss: what a write
    /// recorded (a counted pod, a CronJob's schedule time) is never lost. The default.
    #[default]
    Full,
    /// Writes reach the operating system before they return, and the disk at checkpoints
    /// (SQLite `synchronous=NORMAL`). Survives a crash or kill of the process exactly as
    /// `Full` does; a power loss or kernel crash may lose the most recent writes (the store
    /// then reads as it was a moment earlier: a Job continues from an earlier status, and a
    /// CronJob slot whose record was lost may run again). Several times faster per write.
    Process,
}

/// A store in one SQLite file, created when missing. `batch run` keeps it at
/// `<state-dir>/state.db`.
///
/// Opening checks the file (`PRAGMA quick_check`) before anything is written: a truncated
/// or overwritten file, or one that is not a batch store, is refused with
/// [`StoreError::Corrupt`] and left exactly as it was, so the last good state can still be
/// recovered from it or from a backup. Several processes may open the same file: writes are
/// serialized by SQLite's lock (waiting up to 10 s), and readers (such as `batch status`)
/// never block the writer.
///
/// ```
/// use batch_core::store::{JobRecord, SqliteStore, StateStore};
/// use batch_core::model::Job;
///
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("state.db");
/// let mut job = Job::default();
/// job.metadata.name = Some("demo".into());
/// job.metadata.uid = Some("u1".into());
/// SqliteStore::open(&path).unwrap().create_job(&JobRecord::new(job)).unwrap();
/// // Another process, later:
/// let state = SqliteStore::open(&path).unwrap().load().unwrap();
/// assert_eq!(state.jobs["demo"].uid(), "u1");
/// ```
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (or creates) the store at `path` with [`Durability::Full`].
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] when the file exists and is damaged or is not a store,
    /// [`StoreError::Version`] when a newer version wrote it, [`StoreError::Storage`] when
    /// it cannot be opened or created.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (or creates) the store at `path` with the given durability.
    ///
    /// # Errors
    ///
    /// As [`open`](SqliteStore::open).
    pub fn open_with(path: impl AsRef<Path>, durability: Durability) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let exists = path.exists();
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| error(&path, &e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| error(&path, &e))?;
        // Read-only checks first: nothing is written to a damaged file.
        let version = if exists { check(&conn, &path)? } else { 0 };
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| error(&path, &e))?;
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)
            .map_err(|e| error(&path, &e))?;
        if version < SCHEMA_VERSION {
            // A new (or empty) file: the schema is created. A store of this version is
            // left as it is (opening it writes nothing).
            conn.execute_batch(SCHEMA).map_err(|e| error(&path, &e))?;
            conn.pragma_update(None, "user_version", SCHEMA_VERSION)
                .map_err(|e| error(&path, &e))?;
        }
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// Opens an existing store for reading only (as `batch status` does while a runner
    /// writes): nothing is created or written.
    ///
    /// # Errors
    ///
    /// As [`open`](SqliteStore::open); [`StoreError::Storage`] when the file does not exist.
    /// Writing through the returned store fails with [`StoreError::Storage`].
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(|e| error(&path, &e))?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(|e| error(&path, &e))?;
        check(&conn, &path)?;
        Ok(SqliteStore {
            path,
            conn: Mutex::new(conn),
        })
    }

    /// The store's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in an immediate (write) transaction and commits it.
    fn write<T>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| error(&self.path, &e))?;
        let value = f(&tx)?;
        tx.commit().map_err(|e| error(&self.path, &e))?;
        Ok(value)
    }

    fn encode<T: Serialize>(&self, what: &str, value: &T) -> Result<String, StoreError> {
        serde_json::to_string(value).map_err(|e| StoreError::Storage {
            path: self.path.clone(),
            message: format!("cannot encode {what}"),
            source: Some(Box::new(e)),
        })
    }

    fn decode<T: DeserializeOwned>(&self, what: &str, text: &str) -> Result<T, StoreError> {
        serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            detail: format!("{what} does not decode: {e}"),
        })
    }
}

/// Checks an existing file without writing to it: a store of a version this build reads,
/// undamaged. Returns its schema version (0 for an empty file).
fn check(conn: &Connection, path: &Path) -> Result<i64, StoreError> {
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| error(path, &e))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Version {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    let problems: Vec<String> = {
        let mut stmt = conn
            .prepare("PRAGMA quick_check")
            .map_err(|e| error(path, &e))?;
        stmt.query_map([], |r| r.get::<_, String>(0))
            .and_then(Iterator::collect)
            .map_err(|e| error(path, &e))?
    };
    if problems.iter().any(|p| p != "ok") {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: problems.join("; "),
        });
    }
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN \
                 ('jobs', 'counted', 'cron_jobs')",
            [],
            |r| r.get(0),
        )
        .map_err(|e| error(path, &e))?;
    let any: i64 = conn
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(|e| error(path, &e))?;
    if any > 0 && (tables != 3 || version != SCHEMA_VERSION) {
        return Err(StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: "it is an SQLite database but not a batch state store".to_owned(),
        });
    }
    Ok(version)
}

/// Maps an SQLite error: damage (a damaged file, or a value of the wrong type or encoding
/// where the schema says otherwise) is [`StoreError::Corrupt`], the rest
/// [`StoreError::Storage`] (which may pass).
fn error(path: &Path, e: &rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    let damaged_value = matches!(
        e,
        rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
    );
    if damaged_value
        || matches!(
            code,
            Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase)
        )
    {
        return StoreError::Corrupt {
            path: path.to_path_buf(),
            detail: e.to_string(),
        };
    }
    StoreError::Storage {
        path: path.to_path_buf(),
        message: e.to_string(),
        source: None,
    }
}

fn job_uid(job: &Job) -> &str {
    job.metadata.uid.as_deref().unwrap_or_default()
}

fn cron_uid(c: &CronJob) -> &str {
    c.metadata.uid.as_deref().unwrap_or_default()
}

impl StateStore for SqliteStore {
    fn load(&self) -> Result<StoredState, StoreError> {
        let conn = self.conn();
        let path = &self.path;
        let mut state = StoredState::default();
        let rows: Vec<(String, String, String, String)> = {
            let mut stmt = conn
                .prepare("SELECT name, job, memory, starting FROM jobs ORDER BY name")
                .map_err(|e| error(path, &e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(Iterator::collect)
                .map_err(|e| error(path, &e))?
        };
        let mut counted_stmt = conn
            .prepare("SELECT pod FROM counted WHERE job_uid = ?1")
            .map_err(|e| error(path, &e))?;
        for (name, job, memory, starting) in rows {
            let job: Job = self.decode(&format!("job {name:?}"), &job)?;
            let memory = self.decode(&format!("the memory of job {name:?}"), &memory)?;
            let starting =
                self.decode(&format!("the pods job {name:?} was starting"), &starting)?;
            let counted: BTreeSet<String> = counted_stmt
                .query_map([job_uid(&job)], |r| r.get::<_, String>(0))
                .and_then(Iterator::collect)
                .map_err(|e| error(path, &e))?;
            state.jobs.insert(
                name,
                JobRecord {
                    job,
                    memory,
                    counted,
                    starting,
                },
            );
        }
        let crons: Vec<(String, String)> = {
            let mut stmt = conn
                .prepare("SELECT name, cron_job FROM cron_jobs ORDER BY name")
                .map_err(|e| error(path, &e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(Iterator::collect)
                .map_err(|e| error(path, &e))?
        };
        for (name, cron) in crons {
            let cron: CronJob = self.decode(&format!("cronjob {name:?}"), &cron)?;
            state.cron_jobs.insert(name, cron);
        }
        Ok(state)
    }

    fn create_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        let job = self.encode("the job", &record.job)?;
        let memory = self.encode("the job's memory", &record.memory)?;
        let starting = self.encode("the pods being started", &record.starting)?;
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row("SELECT 1 FROM jobs WHERE name = ?1", [record.name()], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(|e| error(&self.path, &e))?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind: "Job",
                    name: record.name().to_owned(),
                });
            }
            tx.execute(
                "INSERT INTO jobs (name, uid, job, memory, starting) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![record.name(), record.uid(), job, memory, starting],
            )
            .map_err(|e| error(&self.path, &e))?;
            // Leftovers of an earlier Job with the same UID cannot exist, but be exact.
            tx.execute("DELETE FROM counted WHERE job_uid = ?1", [record.uid()])
                .map_err(|e| error(&self.path, &e))?;
            let mut insert = tx
                .prepare("INSERT OR IGNORE INTO counted (job_uid, pod) VALUES (?1, ?2)")
                .map_err(|e| error(&self.path, &e))?;
            for pod in &record.counted {
                insert
                    .execute(params![record.uid(), pod])
                    .map_err(|e| error(&self.path, &e))?;
            }
            Ok(())
        })
    }

    fn update_job(&self, update: JobUpdate<'_>) -> Result<(), StoreError> {
        let job = self.encode("the job", update.job)?;
        let memory = self.encode("the job's memory", update.memory)?;
        let starting = self.encode("the pods being started", &update.starting)?;
        let name = update.job.name();
        let uid = job_uid(update.job);
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE jobs SET job = ?3, memory = ?4, starting = ?5 \
                     WHERE name = ?1 AND uid = ?2",
                    params![name, uid, job, memory, starting],
                )
                .map_err(|e| error(&self.path, &e))?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    kind: "Job",
                    name: name.to_owned(),
                    uid: uid.to_owned(),
                });
            }
            if !update.newly_counted.is_empty() {
                let mut insert = tx
                    .prepare_cached("INSERT OR IGNORE INTO counted (job_uid, pod) VALUES (?1, ?2)")
                    .map_err(|e| error(&self.path, &e))?;
                for pod in update.newly_counted {
                    insert
                        .execute(params![uid, pod])
                        .map_err(|e| error(&self.path, &e))?;
                }
            }
            Ok(())
        })
    }

    fn delete_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            let n = tx
                .execute(
                    "DELETE FROM jobs WHERE name = ?1 AND uid = ?2",
                    params![name, uid],
                )
                .map_err(|e| error(&self.path, &e))?;
            if n > 0 {
                tx.execute("DELETE FROM counted WHERE job_uid = ?1", [uid])
                    .map_err(|e| error(&self.path, &e))?;
            }
            Ok(())
        })
    }

    fn create_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        let text = self.encode("the cronjob", cron_job)?;
        self.write(|tx| {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM cron_jobs WHERE name = ?1",
                    [cron_job.name()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(|e| error(&self.path, &e))?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists {
                    kind: "CronJob",
                    name: cron_job.name().to_owned(),
                });
            }
            tx.execute(
                "INSERT INTO cron_jobs (name, uid, cron_job) VALUES (?1, ?2, ?3)",
                params![cron_job.name(), cron_uid(cron_job), text],
            )
            .map_err(|e| error(&self.path, &e))?;
            Ok(())
        })
    }

    fn update_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        let text = self.encode("the cronjob", cron_job)?;
        self.write(|tx| {
            let n = tx
                .execute(
                    "UPDATE cron_jobs SET cron_job = ?3 WHERE name = ?1 AND uid = ?2",
                    params![cron_job.name(), cron_uid(cron_job), text],
                )
                .map_err(|e| error(&self.path, &e))?;
            if n == 0 {
                return Err(StoreError::NotFound {
                    kind: "CronJob",
                    name: cron_job.name().to_owned(),
                    uid: cron_uid(cron_job).to_owned(),
                });
            }
            Ok(())
        })
    }

    fn delete_cron_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        self.write(|tx| {
            tx.execute(
                "DELETE FROM cron_jobs WHERE name = ?1 AND uid = ?2",
                params![name, uid],
            )
            .map_err(|e| error(&self.path, &e))?;
            Ok(())
        })
    }
}
