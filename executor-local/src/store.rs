//! The executor's root directory: `pods/<pod-name>/` with `pod.json` (the request and the
//! latest recorded observation, written atomically), `pids` (the process groups started for
//! the pod), `logs/<container>.log`, `scratch/` and `volumes/`.
//!
//! In-process, `pod.json` is written when the pod is accepted and when it reaches a terminal
//! phase, nothing in between, to keep the cost per pod low. In shim mode the shim rewrites it
//! on every change of the pod (it is the only way others learn them), and the pod directory
//! also holds `shim.log` (the shim's standard error) and, once the pod is deleted,
//! `stop.json` (the grace period the shim stops it with).

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use batch_core::executor::{ContainerRunState, PodObservation, PodRequest, Terminated};
use batch_core::job::PodPhase;
use batch_core::model::Timestamp;
use nix::sys::signal::killpg;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::error::LocalError;
use crate::observe::EXECUTOR_LOST;

/// What `pod.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodRecord {
    /// The request the pod was started with.
    pub(crate) request: PodRequest,
    /// The latest recorded observation.
    pub(crate) observation: PodObservation,
    /// The process that runs the pod.
    pub(crate) owner: Owner,
    /// The owner is the pod's shim (not the executor that accepted the pod, before its
    /// shim started).
    #[serde(default)]
    pub(crate) shim: bool,
    /// The pod was accepted in shim mode: a shim runs it (or is to run it). A pod accepted
    /// in shim mode whose shim never started is started by the next executor that lists
    /// it; an in-process pod never is.
    #[serde(default)]
    pub(crate) shim_mode: bool,
}

/// `pod.json` as written (borrowing, so writing needs no copy of the request).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PodRecordRef<'a> {
    /// The request the pod was started with.
    pub(crate) request: &'a PodRequest,
    /// The latest observation.
    pub(crate) observation: &'a PodObservation,
    /// The process that runs the pod.
    pub(crate) owner: Owner,
    /// The owner is the pod's shim.
    pub(crate) shim: bool,
    /// The pod was accepted in shim mode.
    pub(crate) shim_mode: bool,
}

/// A process, identified across pid reuse by its start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Owner {
    /// Its pid.
    pub(crate) pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub(crate) start_time: u64,
}

impl Owner {
    /// This process.
    pub(crate) fn current() -> Owner {
        let pid = std::process::id();
        Owner {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the process still runs (and is the same process). A process that has exited
    /// and not been reaped yet (a zombie) does not run.
    pub(crate) fn is_alive(&self) -> bool {
        proc_stat(self.pid).is_some_and(|s| s.start_time == self.start_time && s.runs())
    }
}

/// The fields of `/proc/<pid>/stat` this crate uses.
#[derive(Debug, Clone, Copy)]
struct ProcStat {
    /// The state letter (`R`, `S`, `Z`, …).
    state: char,
    /// The process group.
    pgid: i64,
    /// The start time in clock ticks since boot.
    start_time: u64,
}

impl ProcStat {
    /// Not a zombie (exited, not reaped) nor dead.
    fn runs(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn parse_stat(stat: &str) -> Option<ProcStat> {
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The start time of a process, from `/proc/<pid>/stat`.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    proc_stat(pid).map(|s| s.start_time)
}

/// Whether a process group has a member that runs (not a zombie): a scan of `/proc`.
fn group_runs(pgid: i32) -> bool {
    let Ok(entries) = fs::read_dir("/proc") else {
        // No /proc to look in: only the group's existence can be checked.
        return killpg(Pid::from_raw(pgid), None).is_ok();
    };
    entries.flatten().any(|e| {
        e.file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .and_then(proc_stat)
            .is_some_and(|s| s.pgid == i64::from(pgid) && s.runs())
    })
}

/// The pod directories under `root`.
pub(crate) fn pods_dir(root: &Path) -> PathBuf {
    root.join("pods")
}

/// Writes `pod.json` atomically (temporary file, then rename).
pub(crate) fn write_record(dir: &Path, record: &PodRecordRef<'_>) -> Result<(), LocalError> {
    let bytes = serde_json::to_vec(record).map_err(|source| LocalError::Encode {
        pod: record.request.name.clone(),
        source,
    })?;
    let tmp = dir.join(".pod.json.tmp");
    fs::write(&tmp, bytes).map_err(|e| LocalError::io("write", &tmp, e))?;
    let path = dir.join("pod.json");
    fs::rename(&tmp, &path).map_err(|e| LocalError::io("replace", &path, e))
}

/// Reads `pod.json`; `None` when it is missing or unreadable (a pod being created, or a
/// directory that is not a pod).
pub(crate) fn read_record(dir: &Path) -> Option<PodRecord> {
    load_record(dir).ok()
}

/// Reads `pod.json`, saying what is wrong with it when it cannot be used.
pub(crate) fn load_record(dir: &Path) -> Result<PodRecord, String> {
    let path = dir.join("pod.json");
    let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not a pod record: {e}", path.display()))
}

/// Takes the exclusive lock that the shim of a pod holds for its whole life (a `flock` on
/// the pod directory itself), without waiting: `Ok(None)` when another process holds it.
pub(crate) fn try_lock_pod(dir: &Path) -> io::Result<Option<nix::fcntl::Flock<fs::File>>> {
    let file = fs::File::open(dir)?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(io::Error::from(e)),
    }
}

/// Appends a started process group to the pod's `pids` file.
pub(crate) fn record_group(dir: &Path, pgid: u32) -> io::Result<()> {
    let start = start_time(pgid).unwrap_or(0);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("pids"))?;
    f.write_all(format!("{pgid} {start}\n").as_bytes())
}

/// The process groups recorded for a pod that still exist.
pub(crate) fn live_groups(dir: &Path) -> Vec<i32> {
    let Ok(text) = fs::read_to_string(dir.join("pids")) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let pgid: u32 = parts.next()?.parse().ok()?;
            let start: u64 = parts.next()?.parse().ok()?;
            let pgid_i = i32::try_from(pgid).ok()?;
            // The leader may be gone (or a zombie nobody reaps) while other members live:
            // then the group's members are looked for. (A pid is not reused while a group
            // of that id exists: a leader's pid that names another process means the group
            // is gone.)
            let alive = match proc_stat(pgid) {
                Some(s) if s.start_time != start => false,
                Some(s) if s.runs() => true,
                _ => group_runs(pgid_i),
            };
            alive.then_some(pgid_i)
        })
        .collect()
}

/// The observation of a pod recorded by another executor (or an earlier process), brought
/// up to date: a pod whose executor and processes are gone without a recorded end is
/// reported `Failed`. The second value says whether the result can no longer change.
pub(crate) fn foreign_observation(
    dir: &Path,
    record: &PodRecord,
    now: Timestamp,
) -> (PodObservation, bool) {
    let mut record = std::borrow::Cow::Borrowed(record);
    // A few rounds at most: each one follows a record its owner wrote before exiting.
    for _ in 0..3 {
        let obs = record.observation.clone();
        if obs.phase.is_terminal() {
            return (obs, true);
        }
        if record.shim && record.owner.is_alive() {
            // The pod's shim records every change: the record is current.
            return (obs, false);
        }
        if !live_groups(dir).is_empty() {
            let mut obs = obs;
            obs.phase = PodPhase::Running;
            return (obs, false);
        }
        if record.owner.is_alive() {
            return (obs, false);
        }
        // The owner is gone and so are the pod's processes. It may have recorded the pod's
        // end (a shim writes it just before it exits) after `record` was read: the record
        // read now, once the owner is known to be gone, is its last word. Only if that says
        // nothing new is the outcome lost.
        match read_record(dir) {
            Some(fresh)
                if fresh.observation != record.observation
                    || fresh.owner != record.owner
                    || fresh.shim != record.shim =>
            {
                record = std::borrow::Cow::Owned(fresh);
            }
            _ => break,
        }
    }
    let why = if record.shim {
        format!(
            "the pod's shim (pid {}) exited before recording how the pod ended, and none of \
             its processes remain; the containers' exit status is unknown",
            record.owner.pid
        )
    } else {
        format!(
            "the executor process (pid {}) that ran this pod exited before recording how it \
             ended, and none of its processes remain; the containers' exit status is unknown",
            record.owner.pid
        )
    };
    let mut obs = record.observation.clone();
    mark_lost(&mut obs, &why, now);
    (obs, true)
}

/// Marks an unfinished pod `Failed` with reason `ExecutorLost` (its processes gone, its
/// outcome unknown), its unfinished containers as the kubelet reports containers lost with
/// their node.
pub(crate) fn mark_lost(obs: &mut PodObservation, why: &str, now: Timestamp) {
    obs.phase = PodPhase::Failed;
    obs.ready = false;
    obs.reason = EXECUTOR_LOST.to_owned();
    obs.message = why.to_owned();
    obs.finished_at = Some(now);
    for c in &mut obs.containers {
        c.ready = false;
        if c.terminated().is_none() {
            c.state = ContainerRunState::Terminated(Terminated {
                exit_code: 137,
                signal: None,
                reason: "ContainerStatusUnknown".to_owned(),
                message: "The container could not be located when the pod was terminated"
                    .to_owned(),
                started_at: None,
                finished_at: Some(now),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn this_process_is_alive_and_a_made_up_one_is_not() {
        let me = Owner::current();
        assert!(me.start_time > 0);
        assert!(me.is_alive());
        let other = Owner {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        assert!(!other.is_alive());
    }

    fn record(phase: PodPhase, owner: Owner) -> PodRecord {
        let request: PodRequest = serde_json::from_value(serde_json::json!({
            "name": "pi-0",
            "job": {"name": "pi", "uid": "u"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}]}
        }))
        .unwrap();
        PodRecord {
            observation: PodObservation {
                name: request.name.clone(),
                phase,
                ..PodObservation::default()
            },
            request,
            owner,
            shim: true,
            shim_mode: true,
        }
    }

    fn write(dir: &Path, r: &PodRecord) {
        write_record(
            dir,
            &PodRecordRef {
                request: &r.request,
                observation: &r.observation,
                owner: r.owner,
                shim: r.shim,
                shim_mode: r.shim_mode,
            },
        )
        .unwrap();
    }

    #[test]
    fn a_gone_shim_whose_record_was_read_before_its_last_write_is_not_taken_as_lost() {
        // The race seen by the crash tests: a record read while the shim was running (not
        // yet terminal), the shim writing the pod's end and exiting, then the liveness
        // check: the record on disk now is what counts.
        let me = Owner::current();
        let gone = Owner {
            pid: me.pid,
            start_time: me.start_time + 1,
        };
        let dir = tempfile::tempdir().unwrap();
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let stale = record(PodPhase::Running, gone);
        write(dir.path(), &record(PodPhase::Succeeded, gone));
        let (obs, settled) = foreign_observation(dir.path(), &stale, now);
        assert_eq!((obs.phase, settled), (PodPhase::Succeeded, true));
        assert_eq!(obs.reason, "");

        // Nothing newer on disk: the outcome is lost.
        write(dir.path(), &stale);
        let (obs, settled) = foreign_observation(dir.path(), &stale, now);
        assert_eq!((obs.phase, settled), (PodPhase::Failed, true));
        assert_eq!(obs.reason, EXECUTOR_LOST);
    }

    #[test]
    fn stat_lines_give_state_group_and_start_time_and_zombies_do_not_run() {
        let line = "4242 (a (weird) name) Z 1 4240 4240 0 -1 4194564 0 0 0 0 0 0 0 0 20 0 1 0 \
                    987654 0 0";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.pgid, s.start_time), ('Z', 4240, 987_654));
        assert!(!s.runs());
        assert!(parse_stat(&line.replace(" Z ", " S ")).unwrap().runs());
        assert!(parse_stat("garbage").is_none());
    }
}
