//! The shim: the process that runs one pod in [shim mode](crate::Supervisor::Shim).
//!
//! A program becomes a shim by calling [`run`] with the pod's directory when it is started
//! as the [`ShimCommand`](crate::ShimCommand) says; `batch __shim <dir>` and this crate's
//! `batch-local-shim <dir>` do exactly that.
//!
//! The shim takes an exclusive lock on the pod directory itself (a second shim for the same
//! pod exits at once), reads the accepted pod from `pod.json`, runs it with the
//! in-process executor on the system clock, and for every change of the pod rewrites
//! `pod.json` atomically (owner: the shim) and writes the observation as one JSON line to
//! its standard output (the executor that started it reads them; if that executor is gone
//! the lines are dropped). On SIGTERM it reads the grace period from `stop.json` and stops
//! the pod gracefully, then removes the pod directory, as a deletion does. It exits once
//! the pod's end is recorded (or the pod is deleted).

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

use batch_core::executor::{Executor as _, LabelSelector, WatchEvent};
use futures_util::StreamExt as _;
use tokio::signal::unix::{SignalKind, signal};

use crate::executor::{LocalExecutor, STOP_FILE, StopRequest};
use crate::store::{self, Owner};

/// Runs the pod recorded in `pod_dir` to its end; the shim's whole `main`.
///
/// Exit status: 0 the pod's end is recorded, it was deleted, or another shim runs it;
/// 2 the pod directory cannot be used (the message is on standard error).
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
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("batch shim: {}: {message}", pod_dir.display());
            ExitCode::from(2)
        }
    }
}

async fn supervise(dir: &Path) -> Result<(), String> {
    // First, so that a deletion right after the start is not the default SIGTERM death.
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot handle SIGTERM: {e}"))?;
    // The lock is on the pod directory itself (no extra file per pod).
    let lock_path = dir;
    let file = std::fs::File::open(lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    let _lock = match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        // Another shim runs this pod.
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => return Ok(()),
        Err((_, e)) => return Err(format!("cannot lock {}: {e}", lock_path.display())),
    };
    let record = store::read_record(dir)
        .ok_or_else(|| "pod.json is missing or unreadable: no pod to run".to_owned())?;
    if record.observation.phase.is_terminal() || dir.join(STOP_FILE).exists() {
        // Ran already, or deleted before it started.
        return Ok(());
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
    let executor =
        LocalExecutor::for_shim(root.to_path_buf(), memory_limits).map_err(|e| e.to_string())?;
    let mut events = executor
        .watch(&LabelSelector::new())
        .await
        .map_err(|e| e.to_string())?;
    let request = record.request;
    let name = request.name.clone();
    executor
        .host(request.clone(), dir)
        .map_err(|e| e.to_string())?;
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
                    executor.stop_hosted(&name, Some(chrono::Duration::zero()));
                }
            }
            event = events.next() => match event {
                Some(Ok(WatchEvent::Applied(obs))) => {
                    // Failures are fine: the executor that reads the lines may be gone, and
                    // the directory is gone once the pod is deleted.
                    if let Ok(line) = serde_json::to_string(&*obs) {
                        let _ = writeln!(out, "{line}");
                        let _ = out.flush();
                    }
                    // The engine has just recorded the accepted pod. (Its end is written
                    // again here: the engine's own write of it may have come before this
                    // loop wrote an older observation.)
                    let recorded = !accepted_seen;
                    accepted_seen = true;
                    if !obs.deleting && !recorded {
                        let _ = store::write_record(dir, &store::PodRecordRef {
                            request: &request,
                            observation: &obs,
                            owner,
                            shim: true,
                        });
                    }
                    if obs.phase.is_terminal() && !obs.deleting {
                        return Ok(());
                    }
                }
                Some(Ok(WatchEvent::Deleted { .. })) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(format!("watching the pod failed: {e}")),
            },
            _ = term.recv() => {
                let grace = std::fs::read(dir.join(STOP_FILE))
                    .ok()
                    .and_then(|b| serde_json::from_slice::<StopRequest>(&b).ok())
                    .and_then(|s| s.grace_millis)
                    .map(chrono::Duration::milliseconds);
                executor.stop_hosted(&name, grace);
            }
        }
    }
}
