//! Runs the pods of batch Jobs as local processes (tokio).
//!
//! [`LocalExecutor`] implements batch-core's [`Executor`](batch_core::executor::Executor): a
//! pod is a set of OS processes, one per container run, each in its own process group. The
//! `command` and `args` of a container run directly (the image is recorded but not used);
//! the pod's init containers run in order, native sidecars start with them and stop after
//! the app containers, failed containers restart in place under `restartPolicy: OnFailure`
//! with the kubelet's back-off, and the pod phase is derived from the containers as the
//! kubelet derives it.
//!
//! ```no_run
//! use std::collections::BTreeMap;
//!
//! use batch_core::executor::{Executor, ExecutorExt, PodRequest};
//! use batch_core::{defaults, job, model::Job};
//! use batch_executor_local::{LocalExecutor, LocalExecutorConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut job: Job = serde_json::from_str(r#"{"metadata": {"name": "hello"},
//!     "spec": {"template": {"spec": {"restartPolicy": "Never",
//!         "containers": [{"name": "main", "image": "none", "command": ["echo", "hi"]}]}}}}"#)?;
//! defaults::prepare_job_for_create(&mut job, "uid-1");
//! let executor = LocalExecutor::new(LocalExecutorConfig::default())?;
//! executor.check_template(&job.spec.template)?;
//! let now = chrono::DateTime::<chrono::Utc>::from(std::time::SystemTime::now());
//! let step = job::reconcile(&job, &[], &job::JobMemory::default(), now);
//! let pod = PodRequest::new(&job, &step.create[0]);
//! let name = pod.name.clone();
//! executor.start(pod).await?;
//! // ... watch until the pod is terminal, then:
//! println!("{}", executor.logs_text(&name, "main").await?);
//! let pods = executor.list(&BTreeMap::new()).await?;
//! # let _ = pods;
//! # Ok(())
//! # }
//! ```
//!
//! # Capabilities
//!
//! | capability | supported | notes |
//! |---|---|---|
//! | `exit_codes` | yes | the process's exit code |
//! | `signals` | yes | killed by a signal: exit code 128 + signal, `signal: Some(n)` |
//! | `init_containers` | yes | in order, each to completion, before the app containers |
//! | `sidecar_containers` | yes | started in order with the init containers (the next one starts once the sidecar's process runs; one that cannot start is retried with the restart back-off, and the next waits); stopped in reverse order, SIGTERM then SIGKILL after the grace period, once the app containers end; their exit codes never fail the pod |
//! | `restart_in_place` | yes | `OnFailure` (and sidecars): back-off 10 s, doubling, at most 5 min, reset after a 10 min run; `restart_count` and `last_state` reported |
//! | `graceful_stop` | yes | SIGTERM to the process group, SIGKILL at the end of the grace period |
//! | `pod_active_deadline` | yes | pod `Failed`, reason `DeadlineExceeded` |
//! | `memory_limit` | where a memory cgroup can be created | see *Memory limits* |
//! | `logs` | yes | stdout and stderr of every run of a container, appended to one file |
//! | `adoption` | yes | pods recorded on disk by another executor or an earlier process are listed (and, in shim mode, followed to their real end) |
//! | `hostname` | no | there is no UTS namespace; `HOSTNAME` is set in the environment instead |
//!
//! In-process (the default [`Supervisor`]), all timers (restart back-off, grace periods,
//! `activeDeadlineSeconds`) and every timestamp in an observation come from the
//! [`Clock`](batch_core::clock::Clock) given to [`LocalExecutor::with_clock`], so tests can
//! drive them with a `ManualClock`. In shim mode the shims use the system clock; every
//! capability above is the same in both modes.
//!
//! # What a container gets
//!
//! - **argv**: `command` followed by `args`, after Kubernetes' `$(VAR)` expansion (`$$` is a
//!   literal `$`; unknown references stay as written). A container without `command` cannot
//!   start: there is no image entrypoint to fall back on (`StartError`, exit code 127).
//! - **environment**: the executor process's own environment (so `PATH` works), then
//!   `HOSTNAME` (the pod's hostname, else its name), then the container's `env` in order:
//!   literal values may refer to earlier variables as `$(VAR)`; `valueFrom.fieldRef` is
//!   resolved against the pod (`metadata.name`, `metadata.namespace`, `metadata.uid`,
//!   labels, annotations such as the completion index, `spec.hostname`).
//! - **working directory**: `workingDir` (created if missing, as container runtimes do;
//!   relative to the scratch directory when relative), else the pod's private scratch
//!   directory `pods/<pod>/scratch`, shared by the pod's containers.
//! - **stdin** is `/dev/null`; **stdout and stderr** go to `pods/<pod>/logs/<container>.log`.
//! - When the container's main process ends, what is left of its process group is killed
//!   (a container ends with its main process).
//!
//! A binary that does not exist or cannot be executed fails the pod, not the executor: the
//! container terminates with reason `StartError`, exit code 127 (not found) or 126 (no
//! permission) and a message naming the binary and the container.
//!
//! # Memory limits
//!
//! `resources.limits.memory` (any Kubernetes quantity: `64Mi`, `1G`, `500M`, `1e9`) is
//! enforced with a memory cgroup per container run, created under the executor's own cgroup
//! (cgroup v1 `memory.limit_in_bytes`, or v2 `memory.max` where the memory controller can be
//! delegated), with swap disallowed. A kill by the kernel's out-of-memory killer is reported
//! as reason `OOMKilled`, exit code 137, signal 9. The process is moved into its cgroup right
//! after it starts (running code in the child before `exec` would need `unsafe`), so there
//! is a short window at the very start of a process in which the limit does not apply yet,
//! and children it forks within that window are not limited. The cgroups are removed when
//! the run ends.
//!
//! Where no cgroup can be created (or with [`MemoryEnforcement::AddressSpace`]), the limit
//! becomes `RLIMIT_AS` on the container's process: allocations beyond it fail instead of
//! the process being killed, and `OOMKilled` is never reported, so the `memory_limit`
//! capability is `false` then. CPU and ephemeral-storage limits are accepted and not
//! enforced.
//!
//! # On disk
//!
//! The executor's [root](LocalExecutorConfig::root) holds `pods/<pod>/` for each pod:
//! `pod.json` (the request, the latest recorded observation and the process that runs the
//! pod, written atomically: in-process when the pod is accepted and when it ends, nothing in
//! between; in shim mode on every change), `pids` (the process groups started),
//! `logs/<container>.log`, `scratch/`, and `volumes/<volume>/`; in shim mode also
//! `shim.log` (the shim's standard error) and, once the pod is deleted, `stop.json`.
//! Another executor on the same root (another process, such as `batch logs JOB`) lists
//! these pods and reads their logs. A recorded pod that is not finished is reported as
//! recorded while its executor (or shim) or processes live (`Running` while processes of it
//! run); once they are all gone it is reported `Failed` with reason `ExecutorLost`, its
//! unfinished containers as `ContainerStatusUnknown` with exit code 137. Deleting a pod
//! removes its directory.
//!
//! # Shim mode
//!
//! With [`Supervisor::Shim`] each pod runs under a **shim**: a small process of its own
//! ([`shim::run`], for example this crate's `batch-local-shim <pod-dir>` binary, or a
//! hidden subcommand of the program embedding the executor, as `batch run` does with
//! `batch __shim <pod-dir>`) that owns the pod's processes, as a container engine's shim
//! does. The executor behaves as in-process for its user —
//! `start`, `delete`, `list`, `watch` and `logs` report the same things, and the shared
//! conformance suite passes in both modes — but the pod no longer depends on the
//! executor's process:
//!
//! ```text
//! executor (runner) ──spawn, own process group──▶ shim ──▶ container process groups
//!      ▲    │                                      │  flock on pods/<pod>/
//!      │    └── delete: stop.json + SIGTERM ──────▶│  every change: pod.json (atomic)
//!      └──────────── one JSON line per change ─────┘  (stdout, a pipe)
//! ```
//!
//! - **Starting** a pod reserves its directory, records it in `pod.json` (`Pending`) and
//!   starts `program args… <pod-dir>` (see [`ShimCommand`]) in its own process group, with
//!   standard input `/dev/null`, standard output a pipe to the executor and standard error
//!   appended to `shim.log`. That is the whole cost: one more process per pod, no polling
//!   for the executor's own pods (its watchers get the shim's lines as they come). The shim
//!   takes an exclusive `flock` on the pod directory for its whole life, runs the pod with
//!   the in-process engine (on the system clock) and records every change in `pod.json`
//!   (owner: the shim) before reporting it on its standard output; it exits once the pod's
//!   end is recorded.
//! - **The runner dies** (SIGKILL of it or of its process group, Ctrl-C, OOM, a crash):
//!   the shims go on, run their pods to the end (restarts, sidecars, deadlines included)
//!   and record every change and the final exit codes. A new executor on the same root
//!   lists the pods with their real state (`Running`, then `Succeeded`/`Failed` with the
//!   containers' exit codes), its `watch` follows them (while it has watchers, it reads the
//!   `pod.json` of other processes' pods that changed, every 100 ms: `Applied` on change,
//!   `Deleted` when a directory disappears), and its `delete` reaches their shims.
//! - **A pod accepted just before the runner died** (recorded, its shim never started) is
//!   not reported failed: the next executor in shim mode that lists or watches it takes the
//!   pod's lock, claims the pod in `pod.json` and starts its shim. The lock (a shim that
//!   finds it held by another shim exits, status 3) keeps two shims from running one pod.
//! - **Deletion**: the executor writes the grace period to `stop.json` and sends SIGTERM to
//!   the shim (only while it is the recorded process: same pid and start time); the shim
//!   stops the pod gracefully (SIGTERM to its processes, SIGKILL at the end of the grace
//!   period), removes the pod directory and exits; watchers get `Deleted`. If no shim runs
//!   the pod, the executor stops what is left of its processes and removes the directory
//!   itself.
//! - **A SIGTERM to the shim without a deletion** (someone's `kill`, a system shutdown)
//!   stops the pod with its own grace period and records its end: `Failed`, reason
//!   `Terminated` (unless every container succeeded); the record stays.
//! - **The shim dies** (killed on its own, or it cannot read `pod.json`): its pod's outcome
//!   is lost, as with a container engine whose shim is killed. The executor that started
//!   the shim kills what is left of the pod at once and reports the pod `Failed`, reason
//!   `ExecutorLost`, with a message that says the shim exited, how, and the last line of
//!   `shim.log` (for example why `pod.json` could not be used); it records that end. Another
//!   executor reports such a pod `Running` while processes of it are left, then `Failed`
//!   (`ExecutorLost`) — only after reading `pod.json` again once the shim is known to be
//!   gone: a shim records the pod's end just before it exits, and a record read a moment
//!   earlier must not turn a pod that succeeded into a lost one.
//! - A shim whose pod directory disappears (removed by hand) kills the pod and exits.
//!
//! Limits: timers (restart back-off, grace periods, `activeDeadlineSeconds`) are on the
//! system clock, measured by the shim (an injected [`Clock`](batch_core::clock::Clock) only
//! drives in-process pods), and the pod's `created_at` is when its shim started it. Other
//! processes see changes of a pod up to 100 ms late, and do not see that it is being
//! deleted (`deleting`) until its directory is gone. The executor's process and the shims
//! must be able to signal each other (the same user). An in-process executor on the same
//! root reports a pod whose shim never started as lost (it cannot start shims).
//!
//! # Differences from Kubernetes
//!
//! - No isolation: no namespaces, no image, no network setup, no hostname. Processes run as
//!   the executor's user and see the host filesystem.
//! - **Volumes**: `emptyDir` volumes are directories under `pods/<pod>/volumes/`,
//!   `downwardAPI` volumes are written there, and `hostPath` volumes of type
//!   `DirectoryOrCreate` are created; other volume sources are rejected by `check_template`.
//!   Without a mount namespace a volume cannot appear at an arbitrary `mountPath`, so
//!   **`volumeMounts` are rejected** (path `template.spec.containers[i].volumeMounts[j]`),
//!   except a `hostPath` volume mounted at its own path without `subPath` or `readOnly`,
//!   which is exactly what a local process sees anyway.
//! - `env[].valueFrom` supports `fieldRef` only; secrets, config maps and resource fields are
//!   rejected by `check_template`, as are resource limits other than cpu, memory and
//!   ephemeral-storage.
//! - No probes: a running container is ready; a sidecar counts as started once its process
//!   runs.
//! - A container's log file keeps every run (Kubernetes keeps the current and previous).
//! - In-process mode only: if the executor's process dies, its pods' processes keep running
//!   unobserved (they are in their own process groups); a later executor reports them
//!   `Running` while they last, then `Failed` (`ExecutorLost`), and can delete them. Shim
//!   mode (above) keeps their outcome.
//! - Processes are signalled by process-group id. For the pods it runs, the executor signals
//!   a group only while the group's leader (the container's main process) is unreaped, so
//!   the id cannot have been reused: when the main process exits, what is left of its group
//!   is killed before the main process is reaped. Pods of another executor or an earlier
//!   process are not its children: their recorded groups are signalled while the leader is
//!   the recorded process (same start time) or, once the leader is gone, while a group with
//!   that id exists; in that last case, if every member had ended and the system had
//!   reused the id for an unrelated group, the signal would reach that group. There is no
//!   race-free group handle on Linux without `unsafe` code (pidfds name processes, not
//!   groups).
//!
//! # Support tier
//!
//! Linux only. Tested in CI on Linux (x86-64) with cgroup v1 memory limits; the cgroup v2
//! and `RLIMIT_AS` paths are expected to work. Other Unix systems are not supported
//! (`/proc` is read for process identity).
//!
//! # Tests
//!
//! `cargo test -p batch-executor-local` runs this crate's behaviour tests
//! (`tests/local.rs`, real `sh`, `true`, `false`, `sleep` processes), the shared
//! conformance suite of batch-core in-process on a manual clock (`tests/conformance.rs`,
//! one test per case; `cargo test -p batch-executor-local --test conformance`) and in shim
//! mode on the system clock (`--test conformance_shim`, about 35 s: restart back-offs take
//! real time), and the shim-mode tests (`tests/shim.rs`: a runner process killed with
//! SIGKILL and its pods adopted by a new executor, a shim that never started, a corrupt
//! `pod.json`, a killed shim). Cases needing a capability this machine lacks (for example a
//! writable memory cgroup) print `SKIP`.
//!
//! # Minimum supported Rust version
//!
//! The workspace's `rust-version` (currently 1.89); raising it is a minor version change.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod cgroup;
mod config;
mod error;
mod executor;
mod observe;
mod process;
pub mod shim;
mod store;
mod translate;

pub use config::{LocalExecutorConfig, MemoryEnforcement, ShimCommand, Supervisor};
pub use executor::LocalExecutor;
