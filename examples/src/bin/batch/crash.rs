//! Fault injection for the crash tests (`examples/tests/cli_crash.rs`): with
//! `BATCH_CRASH_AT=<point>:<n>`, `batch run` kills itself with SIGKILL at the `n`-th time
//! (1-based) it reaches `point` in its state-store writes. Not for production use: it
//! exists so that a test can stop the runner at an exact place, as a power cut or the OOM
//! killer would, and check that a restart loses and duplicates nothing.
//!
//! | point | where |
//! |---|---|
//! | `create` | right after a Job is recorded at submission |
//! | `intent-before` / `intent-after` | before / after recording pods about to be started (after: before any is started) |
//! | `status-before` / `status-after` | before / after recording a step's status, memory and counted pods (after: before they are released) |
//! | `status-during` | a SIGKILL sent from another thread as a status write begins, so it lands while SQLite writes |
//! | `cron-before` / `cron-after` | before / after recording a CronJob's status (after a Job for a slot was created) |

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use batch_core::model::CronJob;
use batch_core::store::{JobRecord, JobUpdate, StateStore, StoreError, StoredState};

/// A store that kills the process at a configured point of its writes.
#[derive(Debug)]
pub(crate) struct CrashingStore {
    inner: Arc<dyn StateStore>,
    point: String,
    at: u64,
    seen: AtomicU64,
}

impl CrashingStore {
    /// Wraps `inner` when `BATCH_CRASH_AT` is set; an unusable value is an error message.
    pub(crate) fn from_env(inner: Arc<dyn StateStore>) -> Result<Arc<dyn StateStore>, String> {
        let Ok(spec) = std::env::var("BATCH_CRASH_AT") else {
            return Ok(inner);
        };
        let (point, n) = spec
            .split_once(':')
            .ok_or_else(|| format!("error: BATCH_CRASH_AT={spec:?}: expected <point>:<n>"))?;
        const POINTS: [&str; 9] = [
            "create",
            "intent-before",
            "intent-after",
            "status-before",
            "status-during",
            "status-after",
            "cron-before",
            "cron-after",
            "never",
        ];
        if !POINTS.contains(&point) {
            return Err(format!(
                "error: BATCH_CRASH_AT: unknown point {point:?} (one of {})",
                POINTS.join(", ")
            ));
        }
        let at: u64 = n
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("error: BATCH_CRASH_AT: {n:?} is not a positive count"))?;
        Ok(Arc::new(CrashingStore {
            inner,
            point: point.to_owned(),
            at,
            seen: AtomicU64::new(0),
        }))
    }

    /// Counts a pass at `point`; true when this is the one to crash at.
    fn hit(&self, point: &str) -> bool {
        point == self.point && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.at
    }

    fn crash_if(&self, point: &str) {
        if self.hit(point) {
            kill_self();
        }
    }
}

/// SIGKILL to this process; never returns.
fn kill_self() -> ! {
    let _ = nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::SIGKILL);
    loop {
        std::thread::park();
    }
}

impl StateStore for CrashingStore {
    fn load(&self) -> Result<StoredState, StoreError> {
        self.inner.load()
    }

    fn create_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        self.inner.create_job(record)?;
        self.crash_if("create");
        Ok(())
    }

    fn update_job(&self, update: JobUpdate<'_>) -> Result<(), StoreError> {
        let intent = !update.starting.is_empty();
        let (before, after) = if intent {
            ("intent-before", "intent-after")
        } else {
            ("status-before", "status-after")
        };
        self.crash_if(before);
        if !intent && self.hit("status-during") {
            std::thread::spawn(|| kill_self());
        }
        self.inner.update_job(update)?;
        self.crash_if(after);
        Ok(())
    }

    fn delete_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        self.inner.delete_job(name, uid)
    }

    fn create_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        self.inner.create_cron_job(cron_job)
    }

    fn update_cron_job(&self, cron_job: &CronJob) -> Result<(), StoreError> {
        self.crash_if("cron-before");
        self.inner.update_cron_job(cron_job)?;
        self.crash_if("cron-after");
        Ok(())
    }

    fn delete_cron_job(&self, name: &str, uid: &str) -> Result<(), StoreError> {
        self.inner.delete_cron_job(name, uid)
    }
}
