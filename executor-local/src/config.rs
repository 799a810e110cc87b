//! [`LocalExecutorConfig`]: where the executor keeps its pods and how it limits memory.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Configuration of a [`LocalExecutor`](crate::LocalExecutor).
///
/// ```
/// use batch_executor_local::LocalExecutorConfig;
///
/// let config = LocalExecutorConfig {
///     root: "/var/lib/my-app/pods".into(),
///     ..LocalExecutorConfig::default()
/// };
/// assert!(config.root.ends_with("pods"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocalExecutorConfig {
    /// The directory holding `pods/<pod-name>/` (the pod record `pod.json`, `logs/`, the
    /// scratch directory). Executors in other processes that use the same root see the same
    /// pods (for example `batch logs`).
    ///
    /// Default: `$XDG_DATA_HOME/batch/local`, else `$HOME/.local/share/batch/local`, else
    /// `batch-local` in the system's temporary directory.
    pub root: PathBuf,
    /// How `resources.limits.memory` is enforced.
    pub memory_enforcement: MemoryEnforcement,
    /// Which process runs the pods: this one, or a shim per pod that outlives it.
    pub supervisor: Supervisor,
}

impl Default for LocalExecutorConfig {
    fn default() -> Self {
        LocalExecutorConfig {
            root: default_root(),
            memory_enforcement: MemoryEnforcement::default(),
            supervisor: Supervisor::default(),
        }
    }
}

/// Which process owns a pod's processes (see the crate documentation, *Shim mode*).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum Supervisor {
    /// The executor's own process (tokio tasks): the cheapest, and the only mode whose
    /// timers follow an injected [`Clock`](batch_core::clock::Clock). If the process dies,
    /// the pods' processes keep running but their exit status is lost (`ExecutorLost`).
    #[default]
    InProcess,
    /// A shim process per pod ([`crate::shim::run`]) that owns the pod's processes, records
    /// every change in the pod directory and outlives the executor: a later executor on the
    /// same root adopts the pod and learns how it ended. Timers use the system clock.
    Shim(ShimCommand),
}

/// How to start a shim: `program args… <pod-dir>`. The program must call
/// [`crate::shim::run`] with the directory and exit with its status: this crate's
/// `batch-local-shim` binary does (`program: "batch-local-shim"`, no `args`), and so can a
/// hidden subcommand of the program that embeds the executor (`program: current_exe()`,
/// `args: ["__shim"]`; see the [`shim`](crate::shim) module).
///
/// ```
/// use batch_executor_local::{LocalExecutorConfig, ShimCommand, Supervisor};
///
/// let config = LocalExecutorConfig {
///     supervisor: Supervisor::Shim(ShimCommand {
///         program: "/usr/local/bin/batch-local-shim".into(),
///         args: Vec::new(),
///     }),
///     ..LocalExecutorConfig::default()
/// };
/// let json = serde_json::to_value(&config.supervisor).unwrap();
/// assert_eq!(json["shim"]["program"], "/usr/local/bin/batch-local-shim");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimCommand {
    /// The program.
    pub program: PathBuf,
    /// Arguments before the pod directory.
    pub args: Vec<String>,
}

/// How a container's memory limit is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum MemoryEnforcement {
    /// A memory cgroup per container where one can be created (cgroup v1 or v2, writable),
    /// reporting out-of-memory kills as `OOMKilled`; otherwise as [`AddressSpace`].
    ///
    /// [`AddressSpace`]: MemoryEnforcement::AddressSpace
    #[default]
    Auto,
    /// `RLIMIT_AS` (the address-space limit) set on the container's first process. Coarser
    /// than a cgroup: it limits virtual memory, allocations fail instead of the process being
    /// killed, and `OOMKilled` is never reported.
    AddressSpace,
}

fn default_root() -> PathBuf {
    let absolute = |v: std::ffi::OsString| {
        let p = PathBuf::from(v);
        p.is_absolute().then_some(p)
    };
    if let Some(data) = std::env::var_os("XDG_DATA_HOME").and_then(absolute) {
        return data.join("batch").join("local");
    }
    if let Some(home) = std::env::var_os("HOME").and_then(absolute) {
        return home
            .join(".local")
            .join("share")
            .join("batch")
            .join("local");
    }
    std::env::temp_dir().join("batch-local")
}
