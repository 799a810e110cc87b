//! The shim: the process that runs one pod in [shim mode](crate::Supervisor::Shim).
//!
//! A program becomes a shim by calling [`run`] with the pod's directory when it is started
//! as the [`ShimCommand`](crate::ShimCommand) says (`program args… <pod-dir>`); this crate's
//! `batch-local-shim <pod-dir>` binary does exactly that, and a program that embeds the
//! executor can do the same from a hidden subcommand:
//!
//! ```no_run
//! use batch_executor_local::{LocalExecutorConfig, ShimCommand, Supervisor, shim};
//!
//! fn main() -> std::process::ExitCode {
//!     let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
//!     if args.len() == 3 && args[1] == "__shim" {
//!         // Nothing else may run in this process: `run` owns it until the pod ends.
//!         return shim::run(std::path::Path::new(&args[2]));
//!     }
//!     let config = LocalExecutorConfig {
//!         supervisor: Supervisor::Shim(ShimCommand {
//!             program: std::env::current_exe().unwrap_or_else(|_| "my-program".into()),
//!             args: vec!["__shim".to_owned()],
//!         }),
//!         ..LocalExecutorConfig::default()
//!     };
//!     // ... LocalExecutor::new(config) and the runner ...
//! #   let _ = config;
//!     std::process::ExitCode::SUCCESS
//! }
//! ```
//!
//! The executor starts the shim in a process group of its own, standard input `/dev/null`,
//! standard output a pipe to the executor, standard error appended to `shim.log` in the pod
//! directory. The shim:
//!
//! 1. takes an exclusive `flock` on the pod directory for its whole life (a second shim for
//!    the same pod exits at once, status 3);
//! 2. reads the accepted pod from `pod.json` (a missing or malformed record: a message on
//!    standard error, status 2; the executor then reports the pod `Failed` with it);
//! 3. runs the pod with the in-process engine on the system clock, and for every change of
//!    the pod rewrites `pod.json` atomically (owner: the shim) and writes the observation
//!    as one JSON line to its standard output (if the executor that reads them is gone, the
//!    lines are dropped);
//! 4. on SIGTERM, stops the pod gracefully: with a stop request (`stop.json`, written by
//!    `delete`) it is a deletion: the grace period comes from the request, and the pod
//!    directory is removed once the pod has stopped; without one (someone else's SIGTERM,
//!    a system shutdown) the pod is stopped with its own grace period and its end is
//!    recorded (`Failed`, reason `Terminated`, unless it succeeded);
//! 5. exits once the pod's end is recorded or the pod is deleted (status 0).
//!
//! A shim whose pod directory disappears (removed behind the executors' back) kills the pod
//! and exits.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use batch_core::executor::{Executor as _, LabelSelector, WatchEvent};
use futures_util::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::executor::{LocalExecutor, STOP_FILE, StopCause, StopRequest};
use crate::store::{self, Owner};

/// The exit status of a shim that found another shim running its pod.
pub(crate) const EXIT_ANOTHER_SHIM: u8 = 3;

/// Runs the pod recorded in `pod_dir` (`<root>/pods/<pod>`) to its end: the shim's whole
/// `main`, see the [module documentation](self). It builds its own (current-thread) tokio
/// runtime, so call it from a plain `main`, not from inside a runtime, and let nothing else
/// run in the process.
///
/// Exit status: 0 the pod's end is recorded or the pod was deleted; 2 the pod directory
/// cannot be used (the message is on standard error); 3 another shim runs the pod.
pub fn run(pod_dir: &Path) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("batch shim: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(supervise(pod_dir)) {
        Ok(Outcome::Done) => ExitCode::SUCCESS,
        Ok(Outcome::AnotherShim) => {
            eprintln!(
                "batch shim: {}: another shim runs this pod",
                pod_dir.display()
            );
            ExitCode::from(EXIT_ANOTHER_SHIM)
        }
        Err(message) => {
            eprintln!("batch shim: {}: {message}", pod_dir.display());
            ExitCode::from(2)
        }
    }
}

/// How a shim ended, when it did not fail.
enum Outcome {
    /// The pod's end is recorded, or the pod was deleted.
    Done,
    /// Another shim holds the pod's lock.
    AnotherShim,
}

async fn supervise(dir: &Path) -> Result<Outcome, String> {
    // First, so that a deletion right after the start is not the default SIGTERM death.
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    let dir = &std::path::absolute(dir).map_err(|e| format!("not a usable path: {e}"))?;
    // The lock is on the pod directory itself (no extra file per pod; it goes with the
    // directory).
    let Some(_lock) = lock_pod(dir).await? else {
        return Ok(Outcome::AnotherShim);
    };
    let record = store::load_record(dir).map_err(|e| format!("no pod to run: {e}"))?;
    if dir.file_name() != Some(std::ffi::OsStr::new(&record.request.name)) {
        return Err(format!(
            "pod.json is the record of pod {:?}, not of this directory's pod",
            record.request.name
        ));
    }
    if record.observation.phase.is_terminal() {
        // Ran already.
        return Ok(Outcome::Done);
    }
    if dir.join(STOP_FILE).exists() {
        // Deleted before it started: removed as a deletion removes it.
        remove_pod_dir(dir, &record.request.name);
        return Ok(Outcome::Done);
    }
    let root = dir
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| "not a pod directory (<root>/pods/<pod>)".to_owned())?;
    let memory_limits = record
        .request
        .spec
        .init_containers
        .iter()
        .chain(&record.request.spec.containers)
        .any(|c| {
            c.resources
                .as_ref()
                .is_some_and(|r| r.limits.contains_key("memory"))
        });
    let executor = LocalExecutor::for_shim(root.to_path_buf(), memory_limits)
        .map_err(|e| format!("cannot start the pod: {e}"))?;
    let mut events = executor
        .watch(&LabelSelector::new())
        .await
        .map_err(|e| e.to_string())?;
    let request = record.request;
    let name = request.name.clone();
    executor
        .host(request.clone(), dir)
        .map_err(|e| format!("cannot start the pod: {e}"))?;
    let owner = Owner::current();
    // The first observation is the accepted pod, which the engine has just recorded.
    let mut accepted_seen = false;
    let mut out = std::io::stdout().lock();
    // A pod whose directory was removed behind the executors' back (by hand, or with the
    // temporary directory of a test) is stopped at once rather than left running.
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    let mut orphaned = false;
    loop {
        tokio::select! {
            _ = check.tick() => {
                if !orphaned && !dir.exists() {
                    orphaned = true;
                    executor.stop_hosted(
                        &name,
                        Some(chrono::Duration::zero()),
                        StopCause::Delete,
                    );
                }
            }
            event = events.next() => match event {
                Some(Ok(WatchEvent::Applied(obs))) => {
                    // Recorded first, then reported: whoever learns of a change from the line
                    // finds it on disk too. The engine has recorded the accepted pod itself.
                    // (The end is written again here: the engine's own write of it may have
                    // come before this loop wrote an older observation.) A deleted pod's
                    // directory is being removed: nothing is written to it (its name may be
                    // taken again meanwhile).
                    let recorded = !accepted_seen;
                    accepted_seen = true;
                    if !obs.deleting && !recorded {
                        let _ = store::write_record(dir, &store::PodRecordRef {
                            request: &request,
                            observation: &obs,
                            owner,
                            shim: true,
                            shim_mode: true,
                        });
                    }
                    // Failures are fine: the executor that reads the lines may be gone.
                    if let Ok(line) = serde_json::to_string(&*obs) {
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    }
                    if obs.phase.is_terminal() && !obs.deleting {
                        return Ok(Outcome::Done);
                    }
                }
                Some(Ok(WatchEvent::Deleted { .. })) | None => return Ok(Outcome::Done),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("watching the pod failed: {e}")),
            },
            _ = term.recv() => {
                // With a stop request, a deletion; without, only a stop (someone else's
                // SIGTERM, a system shutdown): the pod's end is recorded.
                match std::fs::read(dir.join(STOP_FILE)) {
                    Ok(bytes) => {
                        let grace = serde_json::from_slice::<StopRequest>(&bytes)
                            .ok()
                            .and_then(|s| s.grace_millis)
                            .map(chrono::Duration::milliseconds);
                        executor.stop_hosted(&name, grace, StopCause::Delete);
                    }
                    Err(_) => executor.stop_hosted(&name, None, StopCause::Shutdown),
                }
            }
        }
    }
}

/// Takes the pod's lock; `None` when another shim holds it. Executors hold it for a moment
/// too (to look whether a shim runs the pod, or to claim a pod whose shim never started):
/// a lock held by something that is not a shim recorded as alive is tried again, for up to
/// a second.
async fn lock_pod(dir: &Path) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, String> {
    for _ in 0..50 {
        if let Some(lock) =
            store::try_lock_pod(dir).map_err(|e| format!("cannot lock the pod directory: {e}"))?
        {
            return Ok(Some(lock));
        }
        if store::read_record(dir).is_some_and(|r| r.shim && r.owner.is_alive()) {
            return Ok(None);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(None)
}

/// Removes a pod directory as a deletion does: renamed to a hidden name first (it leaves
/// listings at once), then removed.
fn remove_pod_dir(dir: &Path, name: &str) {
    let doomed = dir.with_file_name(format!(".deleting-{name}-{}-shim", std::process::id()));
    if std::fs::rename(dir, &doomed).is_ok() {
        let _ = std::fs::remove_dir_all(&doomed);
    }
}
