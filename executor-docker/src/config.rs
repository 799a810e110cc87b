//! The executor's settings.

use serde::{Deserialize, Serialize};

/// How the Docker executor connects and what it allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DockerExecutorConfig {
    /// The engine's address (`unix:///var/run/docker.sock`, `tcp://host:2375`); `None`:
    /// `DOCKER_HOST`, else the default socket.
    pub host: Option<String>,
    /// The network every container joins (`NetworkMode`): `none` (the default: no network,
    /// nothing leaves the host), `host`, `bridge` or a user-defined network.
    pub network: String,
    /// Allow `hostPath` volumes (bind mounts of host directories). Off by default: a
    /// manifest then cannot reach the host's files.
    pub allow_host_path: bool,
    /// `imagePullPolicy: Always` when the registry cannot be reached: run the local copy of
    /// the image if there is one (the default, see docs/decisions/0008) or fail the pod as
    /// the kubelet does (`false`).
    pub always_pull_falls_back_to_local: bool,
    /// A value for the `batch.executor` label of every container this executor creates:
    /// executors with different instance names never see each other's pods.
    pub instance: String,
    /// Run each container under the engine's init process (`docker run --init`). Off by
    /// default, as on Kubernetes: the container's program is its PID 1, so signals it does
    /// not handle are ignored (a stop then waits for the grace period), and a program that
    /// cannot be started is reported `StartError` by the runtime. With an init process,
    /// signals reach the program with their default actions, but a missing program is an
    /// ordinary exit with code 127.
    pub init: bool,
}

impl Default for DockerExecutorConfig {
    fn default() -> Self {
        DockerExecutorConfig {
            host: None,
            network: "none".to_owned(),
            allow_host_path: false,
            always_pull_falls_back_to_local: true,
            instance: "default".to_owned(),
            init: false,
        }
    }
}
