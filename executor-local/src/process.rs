//! Starting one run of a container as a process in its own process group, signalling the
//! group, and collecting the result.

use std::fs;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

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
    Ok(Started { child, pgid, group })
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
    /// After the leader exited with `status`: kills what is left of the group (a container
    /// ends with its main process, as in a container runtime), reads the cgroup's OOM
    /// record and removes the cgroup.
    pub(crate) async fn finish(self, status: io::Result<ExitStatus>) -> Ended {
        signal_group(self.pgid, Signal::SIGKILL);
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
