//! Starting one run of a container as a process in its own process group, signalling the
//! group, and collecting the result.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Stdio;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;
use tokio::signal::unix::{SignalKind, signal};

use crate::cgroup::{CgroupParent, Group};
use crate::translate::{
    EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_START_FAILED, Launch, StartProblem,
};

/// How memory limits are applied.
#[derive(Debug)]
pub(crate) enum MemoryControl {
    /// A cgroup per container run.
    Cgroup(CgroupParent),
    /// `RLIMIT_AS` on the container's process.
    AddressSpace,
}

/// A started container process.
#[derive(Debug)]
pub(crate) struct Started {
    /// The process (its own process group leader).
    pub(crate) child: tokio::process::Child,
    /// The process group (the leader's pid).
    pub(crate) pgid: i32,
    group: Option<Group>,
    /// [`exited`](Started::exited) saw the leader exit and it is not reaped yet.
    unreaped: bool,
}

/// What a run ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ended {
    /// The exit code, when it exited.
    pub(crate) code: Option<i32>,
    /// The signal, when a signal ended it.
    pub(crate) signal: Option<i32>,
    /// Whether its cgroup saw an out-of-memory kill.
    pub(crate) oom: bool,
}

/// Starts `launch` with stdout and stderr appended to `log`.
pub(crate) fn spawn(
    container: &str,
    launch: &Launch,
    log: &Path,
    memory: &MemoryControl,
) -> Result<Started, StartProblem> {
    let problem = |message: String| StartProblem {
        exit_code: EXIT_START_FAILED,
        message,
    };
    let out = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| {
            problem(format!(
                "container {container:?}: cannot open its log file: {e}"
            ))
        })?;
    let err = out.try_clone().map_err(|e| {
        problem(format!(
            "container {container:?}: cannot open its log file: {e}"
        ))
    })?;
    if !launch.working_dir.is_dir() {
        // Container runtimes create a missing workingDir; so does this executor.
        fs::create_dir_all(&launch.working_dir).map_err(|e| {
            problem(format!(
                "container {container:?}: cannot create working directory {}: {e}",
                launch.working_dir.display()
            ))
        })?;
    }
    let group = match (launch.memory_limit, memory) {
        (Some(limit), MemoryControl::Cgroup(parent)) => match parent.create(limit) {
            Ok(g) => Some(g),
            Err(e) => {
                return Err(problem(format!(
                    "container {container:?}: cannot create a memory cgroup for its limit: {e}"
                )));
            }
        },
        _ => None,
    };
    let (program, args) = launch
        .argv
        .split_first()
        .ok_or_else(|| problem(format!("container {container:?} has no command")))?;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&launch.working_dir)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .kill_on_drop(false);
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            if let Some(g) = group {
                // Nothing ran in it: removing it needs no waiting.
                let _ = fs::remove_dir(g.path());
            }
            return Err(spawn_problem(container, program, &e));
        }
    };
    let pid = child.id().unwrap_or(0);
    let pgid = i32::try_from(pid).unwrap_or(0);
    if let Some(limit) = launch.memory_limit {
        let in_group = group.as_ref().map(|g| g.add(pid));
        if !matches!(in_group, Some(Ok(()))) {
            if let Some(Err(e)) = in_group {
                tracing::warn!(container, error = %e,
                    "cannot move the process into its memory cgroup; using RLIMIT_AS instead");
            }
            if let Err(e) = rlimit::prlimit(pgid, rlimit::Resource::AS, Some((limit, limit)), None)
            {
                tracing::warn!(container, error = %e, "cannot set RLIMIT_AS on the process");
            }
        }
    }
    Ok(Started {
        child,
        pgid,
        group,
        unreaped: false,
    })
}

fn spawn_problem(container: &str, program: &str, e: &io::Error) -> StartProblem {
    match e.kind() {
        io::ErrorKind::NotFound => StartProblem {
            exit_code: EXIT_NOT_FOUND,
            message: format!(
                "container {container:?}: executable {program:?} not found (in $PATH or as a \
                 path)"
            ),
        },
        io::ErrorKind::PermissionDenied => StartProblem {
            exit_code: EXIT_NOT_EXECUTABLE,
            message: format!("container {container:?}: permission denied executing {program:?}"),
        },
        _ => StartProblem {
            exit_code: EXIT_START_FAILED,
            message: format!("container {container:?}: cannot execute {program:?}: {e}"),
        },
    }
}

/// Sends `signal` to a process group; a group that is gone is not an error.
pub(crate) fn signal_group(pgid: i32, signal: Signal) {
    if pgid > 0 {
        let _ = killpg(Pid::from_raw(pgid), signal);
    }
}

impl Started {
    /// Waits until the leader (the container's main process) has exited, without reaping
    /// it. While it is an unreaped zombie its pid, and so the group's id, cannot be given to
    /// another process, so the group can still be signalled safely (see
    /// [`finish`](Started::finish)).
    pub(crate) async fn exited(&mut self) {
        if self.pgid <= 0 {
            return;
        }
        let pid = Pid::from_raw(self.pgid);
        // Subscribed before the first check, so an exit after it wakes the loop.
        let mut sigchld = signal(SignalKind::child());
        loop {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT | WaitPidFlag::WNOHANG;
            match waitid(Id::Pid(pid), flags) {
                Ok(WaitStatus::StillAlive) | Err(Errno::EINTR) => {}
                Ok(_) => {
                    self.unreaped = true;
                    return;
                }
                // Not this process's child any more (reaped elsewhere): `finish` waits
                // for it the ordinary way.
                Err(_) => return,
            }
            match &mut sigchld {
                Ok(s) => {
                    let _ = s.recv().await;
                }
                // No SIGCHLD stream: look again shortly.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    }

    /// After the leader exited (see [`exited`](Started::exited)): kills what is left of the
    /// group (a container ends with its main process, as in a container runtime), reaps the
    /// leader, reads the cgroup's OOM record and removes the cgroup.
    ///
    /// The group is killed before the leader is reaped, so its id cannot have been reused.
    /// Only when `exited` could not tell (the leader was not this process's child to wait
    /// for) is it killed after reaping, as a last resort.
    pub(crate) async fn finish(mut self) -> Ended {
        if self.unreaped {
            signal_group(self.pgid, Signal::SIGKILL);
        }
        let status = self.child.wait().await;
        if !self.unreaped {
            signal_group(self.pgid, Signal::SIGKILL);
        }
        let (code, signal) = match status {
            Ok(s) => (s.code(), s.signal()),
            Err(e) => {
                tracing::warn!(error = %e, "cannot wait for a container process");
                (None, None)
            }
        };
        let oom = match self.group {
            Some(g) => {
                let oom = g.oom_killed();
                g.remove().await;
                oom
            }
            None => false,
        };
        Ended { code, signal, oom }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The state letter of a process (`Z`: zombie), when it exists.
    fn state(pid: i32) -> Option<char> {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..].trim_start().chars().next()
    }

    #[tokio::test]
    async fn the_group_is_killed_while_its_exited_leader_is_not_yet_reaped() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch {
            argv: ["sh", "-c", "sleep 300 & echo $! > bg; exit 3"]
                .map(str::to_owned)
                .to_vec(),
            env: Vec::new(),
            working_dir: dir.path().to_path_buf(),
            memory_limit: None,
        };
        let log = dir.path().join("log");
        let mut proc = spawn("c", &launch, &log, &MemoryControl::AddressSpace).unwrap();
        proc.exited().await;
        // The leader has exited but still holds its pid (and so the group's id).
        assert_eq!(state(proc.pgid), Some('Z'));
        let bg: i32 = fs::read_to_string(dir.path().join("bg"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(state(bg).is_some_and(|s| s != 'Z'), "the group member runs");
        let pgid = proc.pgid;
        let ended = proc.finish().await;
        assert_eq!((ended.code, ended.signal), (Some(3), None));
        assert_eq!(state(pgid), None, "the leader is reaped");
        // SIGKILL went to the group: its member is gone (or a zombie not reaped yet).
        for _ in 0..200 {
            if state(bg).is_none_or(|s| s == 'Z') {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("the group member {bg} survived");
    }
}
