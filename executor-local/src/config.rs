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
}

impl Default for LocalExecutorConfig {
    fn default() -> Self {
        LocalExecutorConfig {
            root: default_root(),
            memory_enforcement: MemoryEnforcement::default(),
        }
    }
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
