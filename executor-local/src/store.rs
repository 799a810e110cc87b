//! The executor's root directory: `pods/<pod-name>/` with `pod.json` (the request and the
//! latest recorded observation, written atomically), `pids` (the process groups started for
//! the pod), `logs/<container>.log`, `scratch/` and `volumes/`.
//!
//! `pod.json` is written when the pod is accepted and when it reaches a terminal phase;
//! nothing in between, to keep the cost per pod low.

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

    /// Whether the process still runs (and is the same process).
    pub(crate) fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// The start time of a process, from `/proc/<pid>/stat`.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; the fields after it are plain.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
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
    let bytes = fs::read(dir.join("pod.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
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
            // The leader may be gone while other members live: then only the group's
            // existence can be checked.
            let alive = match start_time(pgid) {
                Some(s) => s == start,
                None => killpg(Pid::from_raw(pgid_i), None).is_ok(),
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
    let mut obs = record.observation.clone();
    if obs.phase.is_terminal() {
        return (obs, true);
    }
    if record.shim && record.owner.is_alive() {
        // The pod's shim records every change: the record is current.
        return (obs, false);
    }
    if !live_groups(dir).is_empty() {
        obs.phase = PodPhase::Running;
        return (obs, false);
    }
    if record.owner.is_alive() {
        return (obs, false);
    }
    let why = format!(
        "the executor process (pid {}) that ran this pod exited before recording how it \
         ended, and none of its processes remain; the containers' exit status is unknown",
        record.owner.pid
    );
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
}
