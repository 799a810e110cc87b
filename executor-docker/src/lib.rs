//! Runs the pods of batch Jobs on a Docker engine through the Docker Engine API (bollard).
//!
//! [`DockerExecutor`] implements [`batch_core::executor::Executor`]: the runner decides
//! (retries, back-off, indexes, policies), this crate only runs what it is given and reports
//! what the engine says.
//!
//! ```no_run
//! use std::sync::Arc;
//! use batch_core::clock::SystemClock;
//! use batch_core::runner::Runner;
//! use batch_executor_docker::{DockerExecutor, DockerExecutorConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! // DOCKER_HOST, else the default socket; the API version is negotiated.
//! let executor = DockerExecutor::connect(DockerExecutorConfig::default()).await?;
//! let runner = Runner::new(Arc::new(executor), Arc::new(SystemClock));
//! # let _ = runner; Ok(()) }
//! ```
//!
//! # What a pod becomes
//!
//! - **A record**: an engine volume `<pod>_pod` (empty) whose labels hold the pod request and
//!   its creation time. It is what [`list`](batch_core::executor::Executor::list) finds, so a
//!   pod exists (and its name is taken) from the moment `start` returns, before any image is
//!   pulled; a restarted runner (or another executor on the same engine and
//!   [instance](DockerExecutorConfig::instance)) adopts it from there.
//! - **One engine container per run of each container**: `<pod>_<container>_<run>`, labelled
//!   `batch.executor`, `batch.pod`, `batch.container`, `batch.attempt`. An in-place restart
//!   (`restartPolicy: OnFailure`, or a sidecar) creates the next run, so the previous run's
//!   exit code is kept (`last_state`) and the restart count is the run number, whoever
//!   restarts it.
//! - `command` replaces the image's entrypoint and `args` its cmd, as on Kubernetes (a
//!   `command` alone runs without the image's cmd); `$(VAR)` references are expanded as the
//!   kubelet does; `env` (with `fieldRef`s and `JOB_COMPLETION_INDEX`), `workingDir`, the
//!   pod's hostname (`<job>-<index>` for Indexed Jobs); `resources.limits.memory` becomes
//!   the engine's memory limit (no swap) and `cpu` its CPU quota.
//! - **Init containers** run one at a time, in order, before the app containers; **native
//!   sidecars** (init containers with `restartPolicy: Always`) start in their turn, are
//!   restarted whenever they exit, and are stopped (SIGTERM, then SIGKILL after the grace
//!   period) once the app containers are done — the pod's phase comes from its app
//!   containers only, as the kubelet derives it ([`batch_core::kubelet`]).
//! - **Volumes**: `emptyDir` is an engine volume `<pod>_v_<name>`, removed with the pod;
//!   `downwardAPI` is one too, its files (labels, annotations, the completion index, …)
//!   written into it through each container that mounts it before it starts (so the mount
//!   is writable, not read-only as on Kubernetes); `hostPath` is a bind mount, allowed only
//!   with [`DockerExecutorConfig::allow_host_path`]. `subPath` and every other volume type
//!   are rejected by [`check_template`](batch_core::executor::Executor::check_template)
//!   with the field's path.
//! - **How the containers of a pod reach each other**: through their shared volumes. Each
//!   container has its own network namespace on the configured
//!   [network](DockerExecutorConfig::network) (`none` by default: nothing leaves the host,
//!   each container has its loopback only, and the engine's network stack is not used, see
//!   docs/decisions/0008);
//!   with `network: "host"` they all share the host's, so `localhost` works between them as
//!   in a Kubernetes pod. There is no shared IPC or PID namespace.
//! - **Images** follow `imagePullPolicy` (`Always` by default for an untagged or `:latest`
//!   image, as Kubernetes defaults it): `Never` uses the local image, `IfNotPresent` pulls
//!   when it is missing, `Always` pulls every time. An image that cannot be had fails its
//!   pod: the container waits with reason `ErrImagePull` and the engine's message, the pod
//!   is `Failed` with that reason and a condition `ConfigIssue` (so a pod failure policy can
//!   match it, as in the Kubernetes documentation's example); under `restartPolicy:
//!   OnFailure` the pull is retried with the restart back-off (`ImagePullBackOff`). When
//!   an `Always` pull fails but the image is present, the local image is used (see
//!   `docs/decisions/0008-docker-images.md`; set
//!   [`always_pull_falls_back_to_local`](DockerExecutorConfig::always_pull_falls_back_to_local)
//!   to `false` for the kubelet's behaviour).
//! - **Deletion** marks the pod deleted (an engine volume `<pod>_deleting`, which other
//!   executors see), stops every running container with the grace period (the engine sends
//!   SIGTERM, then SIGKILL), then removes the containers, the volumes and the record;
//!   watchers then get `Deleted`.
//! - **Exit codes and OOM kills** are read from the engine's inspection of each container
//!   (`State.ExitCode`, `State.OOMKilled`), never from the wait endpoint (which reports any
//!   non-zero exit as an error). A container that cannot start (no such executable) is
//!   `StartError` with the runtime's exit code (127, 126) and message.
//!
//! # Supervision
//!
//! Each pod has a task in the executor that looks at the engine's containers of the pod,
//! derives the observation and the next actions (create the next run, start, stop) as a pure
//! function of what the engine holds and the time, acts, and waits for the engine's next
//! event about the pod (or a back-off timer, or at most 5 s). Nothing is remembered that the
//! engine does not hold, so:
//!
//! - **The runner dies**: the containers go on. A new executor lists the pods, adopts them
//!   and carries on (next init container, restarts, sidecar stops, deadlines) from the
//!   engine's state.
//! - **The engine dies** (or restarts): calls fail with [`Unavailable`] errors (transient;
//!   the runner reports them and retries), watches get an error (the runner lists again),
//!   and the tasks retry with back-off. When the engine is back, containers it killed are
//!   reported as they ended (non-zero exit codes: the pods fail, as pods lost with a node
//!   do on Kubernetes) and supervision resumes.
//!
//! [`Unavailable`]: batch_core::executor::ErrorKind::Unavailable
//!
//! # Capabilities
//!
//! | capability | | |
//! |---|---|---|
//! | `exit_codes`, `init_containers`, `sidecar_containers`, `restart_in_place`, `graceful_stop`, `pod_active_deadline`, `logs`, `adoption`, `hostname` | yes | |
//! | `memory_limit` | when the engine enforces memory limits (`docker info`) | `OOMKilled` from the engine |
//! | `signals` | no | the engine reports exit codes only (128 + n after signal n), not the signal |
//!
//! # Differences from Kubernetes
//!
//! - Timers (restart back-off, grace periods, `activeDeadlineSeconds`) run on the system
//!   clock; `activeDeadlineSeconds` counts from the pod's creation (the kubelet: from its
//!   start, a moment later).
//! - Probes, security contexts, ports and service accounts are ignored; `ephemeral-storage`
//!   limits are accepted and not enforced; `valueFrom` resolves only `fieldRef`s of the
//!   pod's own metadata.
//! - A container's program is its PID 1, as on Kubernetes, so a signal it does not handle
//!   is ignored; [`DockerExecutorConfig::init`] runs it under the engine's init process
//!   instead.
//!
//! # Tests
//!
//! `cargo test -p batch-executor-docker` runs the shared conformance suite
//! (`tests/conformance.rs`) and this crate's own tests against the engine at `DOCKER_HOST`.
//! The project's test command (`scripts/test.sh`) installs Debian's `docker.io`, starts a
//! private engine (`--iptables=false --bridge=none`) and builds the test images through the
//! API ([`testing`], feature `testing`); with `BATCH_TEST_REQUIRE_DOCKER=1` a missing engine
//! fails every Docker test instead of skipping it.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod executor;
mod observe;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
mod translate;

pub use config::DockerExecutorConfig;
pub use executor::DockerExecutor;
