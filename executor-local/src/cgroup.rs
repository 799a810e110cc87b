//! Memory limits: one memory cgroup per container run (v1 or v2), or `RLIMIT_AS` where no
//! cgroup can be created.
//!
//! The cgroups are created under the executor process's own memory cgroup, named
//! `batch-local-<executor pid>-<n>`, and removed as soon as the run ends. The process is
//! moved into its cgroup right after it starts (the executor cannot run code in the child
//! before `exec` without `unsafe`), so there is a short window, before the move, in which the
//! limit does not yet apply.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Which cgroup hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Version {
    /// cgroup v1 (`memory` controller hierarchy).
    V1,
    /// cgroup v2 (unified hierarchy).
    V2,
}

/// Where this executor creates its cgroups.
#[derive(Debug)]
pub(crate) struct CgroupParent {
    version: Version,
    dir: PathBuf,
    next: AtomicU64,
}

/// A container run's cgroup.
#[derive(Debug)]
pub(crate) struct Group {
    version: Version,
    dir: PathBuf,
}

const PREFIX: &str = "batch-local-";

impl CgroupParent {
    /// The executor's own memory cgroup, if it can hold child cgroups with memory limits.
    pub(crate) fn detect() -> Option<CgroupParent> {
        let table = fs::read_to_string("/proc/self/cgroup").ok()?;
        let found = v1_dir(&table).or_else(|| v2_dir(&table))?;
        let parent = CgroupParent {
            version: found.0,
            dir: found.1,
            next: AtomicU64::new(0),
        };
        parent.remove_stale();
        let probe = parent
            .dir
            .join(format!("{PREFIX}probe-{}", std::process::id()));
        fs::create_dir(&probe).ok()?;
        let limit_file = match parent.version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        let usable = probe.join(limit_file).exists();
        let _ = fs::remove_dir(&probe);
        usable.then_some(parent)
    }

    /// Creates a cgroup limited to `limit` bytes (without swap).
    pub(crate) fn create(&self, limit: u64) -> io::Result<Group> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let dir = self.dir.join(format!("{PREFIX}{}-{n}", std::process::id()));
        fs::create_dir(&dir)?;
        let group = Group {
            version: self.version,
            dir,
        };
        let result = match self.version {
            Version::V1 => fs::write(group.dir.join("memory.limit_in_bytes"), limit.to_string())
                .map(|()| {
                    // Without swap accounting this file does not exist; the machine has no
                    // swap to escape into then.
                    let _ = fs::write(
                        group.dir.join("memory.memsw.limit_in_bytes"),
                        limit.to_string(),
                    );
                }),
            Version::V2 => fs::write(group.dir.join("memory.max"), limit.to_string()).map(|()| {
                let _ = fs::write(group.dir.join("memory.swap.max"), "0");
            }),
        };
        match result {
            Ok(()) => Ok(group),
            Err(e) => {
                let _ = fs::remove_dir(&group.dir);
                Err(e)
            }
        }
    }

    /// Removes empty cgroups left by executors that are gone.
    fn remove_stale(&self) {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(PREFIX)) else {
                continue;
            };
            let owner = rest.split('-').next().and_then(|p| p.parse::<i32>().ok());
            let alive = owner.is_some_and(|p| kill(Pid::from_raw(p), None).is_ok());
            if !alive {
                let _ = fs::remove_dir(entry.path());
            }
        }
    }
}

/// `(V1, dir)` from the `memory` line of `/proc/self/cgroup`.
fn v1_dir(table: &str) -> Option<(Version, PathBuf)> {
    let path = table.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let _id = parts.next()?;
        let controllers = parts.next()?;
        let path = parts.next()?;
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then_some(path)
    })?;
    let root = Path::new("/sys/fs/cgroup/memory");
    root.join("memory.limit_in_bytes")
        .exists()
        .then(|| (Version::V1, root.join(path.trim_start_matches('/'))))
}

/// `(V2, dir)` from the `0::` line of `/proc/self/cgroup`, when the unified hierarchy has
/// the memory controller enabled for children of that cgroup.
fn v2_dir(table: &str) -> Option<(Version, PathBuf)> {
    let path = table.lines().find_map(|l| l.strip_prefix("0::"))?;
    let root = Path::new("/sys/fs/cgroup");
    let controllers = fs::read_to_string(root.join("cgroup.controllers")).ok()?;
    if !controllers.split_whitespace().any(|c| c == "memory") {
        return None;
    }
    let dir = root.join(path.trim_start_matches('/'));
    let subtree = dir.join("cgroup.subtree_control");
    let enabled = |s: &str| s.split_whitespace().any(|c| c == "memory");
    if !fs::read_to_string(&subtree).is_ok_and(|s| enabled(&s)) {
        // Fails while this cgroup holds processes ("no internal processes"): no cgroups then.
        fs::write(&subtree, "+memory").ok()?;
    }
    Some((Version::V2, dir))
}

impl Group {
    /// The cgroup's directory.
    pub(crate) fn path(&self) -> &Path {
        &self.dir
    }

    /// Moves a process into the cgroup.
    pub(crate) fn add(&self, pid: u32) -> io::Result<()> {
        let pid = pid.to_string();
        match fs::write(self.dir.join("cgroup.procs"), &pid) {
            Ok(()) => Ok(()),
            Err(e) if self.version == Version::V1 => {
                fs::write(self.dir.join("tasks"), &pid).map_err(|_| e)
            }
            Err(e) => Err(e),
        }
    }

    /// Whether the kernel killed a process of this cgroup for lack of memory.
    pub(crate) fn oom_killed(&self) -> bool {
        let (file, key) = match self.version {
            Version::V1 => ("memory.oom_control", "oom_kill"),
            Version::V2 => ("memory.events", "oom_kill"),
        };
        let Ok(text) = fs::read_to_string(self.dir.join(file)) else {
            return false;
        };
        text.lines().any(|l| {
            let mut parts = l.split_whitespace();
            parts.next() == Some(key) && parts.next().and_then(|n| n.parse::<u64>().ok()) > Some(0)
        })
    }

    /// Kills whatever is left in the cgroup and removes it.
    pub(crate) async fn remove(self) {
        for attempt in 0..100u32 {
            if let Ok(procs) = fs::read_to_string(self.dir.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            match fs::remove_dir(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(_) => {
                    // Killed processes take a moment to leave; this is housekeeping, not a
                    // pod timer, so it uses real time.
                    tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)) * 5)).await;
                }
            }
        }
        tracing::warn!(cgroup = %self.dir.display(), "could not remove a container cgroup");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_memory_line_of_proc_self_cgroup_names_the_v1_parent() {
        let table = "9:name=systemd:/\n4:memory:/process_api/abc\n0::/\n";
        if Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
            let (v, dir) = v1_dir(table).unwrap();
            assert_eq!(v, Version::V1);
            assert_eq!(dir, Path::new("/sys/fs/cgroup/memory/process_api/abc"));
        }
        assert!(v1_dir("0::/user.slice\n").is_none());
    }
}
