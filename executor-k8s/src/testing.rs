//! Test support (feature `testing`): [`TestKubelet`], the kubelet of one pretend node, for
//! tests against an API server that has no kubelets (such as the one `scripts/k8s.sh`
//! starts). **Not for production, and not covered by semver.**
//!
//! A real cluster needs a kubelet on a node to run a pod: without one a pod is never
//! scheduled (and one deleted while bound to a node stays `Terminating` for ever). The test
//! kubelet does what a kubelet and the scheduler do for the pods of one namespace:
//!
//! - registers a `Node` (address 127.0.0.1, its kubelet port) and **binds** every unscheduled
//!   pod of the namespace to it (the `binding` subresource, as the scheduler does);
//! - **runs** each bound pod with the local executor (`batch-executor-local`: real processes;
//!   the image is not used, the `command` runs on this machine);
//! - **reports** every change the local executor observes through the pod's `status`
//!   subresource, as a kubelet does: phase, reason, conditions, start time, and each
//!   container's waiting/running/terminated state (exit code, signal, reason such as
//!   `OOMKilled`, times), last state, restart count and readiness;
//! - serves **logs** to the API server (`GET /containerLogs/<namespace>/<pod>/<container>`,
//!   over HTTPS with a self-signed certificate: an API server started without
//!   `--kubelet-certificate-authority` does not verify it), so `pods/log` works;
//! - finishes **graceful deletions**: a pod marked for deletion is stopped with its grace
//!   period (SIGTERM, then SIGKILL), its terminal status is reported, then it is deleted with
//!   grace 0 (its UID as a precondition);
//! - can **evict** a pod as the kubelet does under node pressure ([`TestKubelet::evict`]):
//!   condition `DisruptionTarget`, then the pod stopped and reported `Failed`.
//!
//! It does what the local executor can: [`TestKubelet::capabilities`] says which (no
//! `hostname`: there is no UTS namespace; `memory_limit` where a cgroup can be made).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use batch_core::clock::{Clock, SystemClock};
use batch_core::executor::{
    CONTROLLER_UID_LABEL, Capabilities, ContainerKind, ContainerRunState, Executor, JOB_NAME_LABEL,
    JobRef, PodObservation, PodRequest, Terminated, WatchEvent,
};
use batch_core::model::Timestamp;
use batch_executor_local::{LocalExecutor, LocalExecutorConfig};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Whether the Kubernetes tests can run here: `KUBECONFIG` names an API server (the test
/// command starts one with scripts/k8s.sh). Without it this prints `SKIP <test>: …` and
/// returns false — or panics when `BATCH_TEST_REQUIRE_K8S=1` (the test command sets it), so
/// that a missing server fails the run instead of skipping it.
///
/// # Panics
///
/// `BATCH_TEST_REQUIRE_K8S=1` and no `KUBECONFIG`.
#[allow(clippy::panic)]
pub fn cluster_configured(test: &str) -> bool {
    if std::env::var_os("KUBECONFIG").is_some() {
        return true;
    }
    if std::env::var("BATCH_TEST_REQUIRE_K8S").as_deref() == Ok("1") {
        panic!(
            "{test}: BATCH_TEST_REQUIRE_K8S=1 but KUBECONFIG is not set (scripts/k8s.sh start DIR)"
        );
    }
    eprintln!("SKIP {test}: no KUBECONFIG (scripts/k8s.sh start DIR)");
    false
}

/// The completion index annotation (the local executor reads the index from it).
const INDEX_ANNOTATION: &str = "batch.kubernetes.io/job-completion-index";

/// The kubelet of one pretend node, serving the pods of one namespace (see the module docs).
/// Dropping it stops it (the pods it runs are left to the test's own cleanup).
pub struct TestKubelet {
    node: String,
    namespace: String,
    capabilities: Capabilities,
    pods: Api<Pod>,
    state: Arc<Mutex<HashMap<String, Tracked>>>,
    local: LocalExecutor,
    tasks: Vec<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestKubelet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKubelet")
            .field("node", &self.node)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// What the kubelet knows of one pod it runs.
#[derive(Debug, Default)]
struct Tracked {
    uid: String,
    /// The container images by name (a container status names its image).
    images: BTreeMap<String, String>,
    started: bool,
    local_terminal: bool,
    local_gone: bool,
    stop_asked: bool,
    api_deleting: bool,
    finished: bool,
    /// The latest status the server has not accepted yet (it was down): sent again.
    unreported: Option<Value>,
    /// Conditions the kubelet adds on its own (`DisruptionTarget` of an eviction).
    extra_conditions: Vec<Value>,
    evicted: Option<String>,
}

fn api_code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

fn time(t: Option<Timestamp>) -> Value {
    t.map_or(Value::Null, |t| {
        Value::String(t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    })
}

fn non_empty(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        Value::String(s.to_owned())
    }
}

fn terminated(t: &Terminated) -> Value {
    json!({
        "exitCode": t.exit_code,
        "signal": t.signal,
        "reason": non_empty(&t.reason),
        "message": non_empty(&t.message),
        "startedAt": time(t.started_at),
        "finishedAt": time(t.finished_at),
    })
}

/// The `status` a kubelet would report for what the local executor observed.
fn status_of(obs: &PodObservation, tracked: &Tracked) -> Value {
    let container = |c: &batch_core::executor::ContainerObservation| {
        let state = match &c.state {
            ContainerRunState::Waiting { reason, message } => {
                json!({"waiting": {"reason": non_empty(reason), "message": non_empty(message)}})
            }
            ContainerRunState::Running { started_at } => {
                json!({"running": {"startedAt": time(*started_at)}})
            }
            ContainerRunState::Terminated(t) => json!({"terminated": terminated(t)}),
            _ => json!({"waiting": {}}),
        };
        let last = c
            .last_state
            .as_ref()
            .map_or(json!({}), |t| json!({"terminated": terminated(t)}));
        json!({
            "name": c.name,
            "image": tracked.images.get(&c.name).cloned().unwrap_or_default(),
            "imageID": "",
            "ready": c.ready,
            "started": matches!(c.state, ContainerRunState::Running { .. }),
            "restartCount": c.restart_count,
            "state": state,
            "lastState": last,
        })
    };
    let app: Vec<Value> = obs
        .containers
        .iter()
        .filter(|c| c.kind == ContainerKind::App)
        .map(container)
        .collect();
    let init: Vec<Value> = obs
        .containers
        .iter()
        .filter(|c| c.kind != ContainerKind::App)
        .map(container)
        .collect();
    let mut conditions: Vec<Value> = obs
        .conditions
        .iter()
        .filter(|c| {
            !tracked
                .extra_conditions
                .iter()
                .any(|e| e["type"] == c.type_.as_str())
        })
        .map(|c| {
            json!({
                "type": c.type_,
                "status": serde_json::to_value(&c.status).unwrap_or(Value::Null),
                "reason": non_empty(&c.reason),
                "lastTransitionTime": time(c.last_transition_time),
            })
        })
        .collect();
    conditions.extend(tracked.extra_conditions.iter().cloned());
    let (reason, message) = match &tracked.evicted {
        Some(message) if obs.phase.is_terminal() => ("Evicted".to_owned(), message.clone()),
        _ => (obs.reason.clone(), obs.message.clone()),
    };
    json!({
        "phase": serde_json::to_value(obs.phase).unwrap_or(Value::Null),
        "reason": non_empty(&reason),
        "message": non_empty(&message),
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": time(obs.started_at.or(obs.created_at)),
        "conditions": conditions,
        "containerStatuses": app,
        "initContainerStatuses": init,
    })
}

/// The local executor's request for a bound pod.
fn request_for(pod: &Pod) -> Result<PodRequest, String> {
    let meta = &pod.metadata;
    let labels = meta.labels.clone().unwrap_or_default();
    let annotations = meta.annotations.clone().unwrap_or_default();
    let spec = pod.spec.as_ref().ok_or("the pod has no spec")?;
    let value = serde_json::to_value(spec).map_err(|e| e.to_string())?;
    let core_spec = serde_path_to_error::deserialize(value)
        .map_err(|e| format!("spec.{}: {}", e.path(), e.inner()))?;
    Ok(PodRequest {
        name: meta.name.clone().unwrap_or_default(),
        job: JobRef {
            namespace: meta.namespace.clone().unwrap_or_default(),
            name: labels.get(JOB_NAME_LABEL).cloned().unwrap_or_default(),
            uid: labels
                .get(CONTROLLER_UID_LABEL)
                .cloned()
                .unwrap_or_default(),
        },
        index: annotations
            .get(INDEX_ANNOTATION)
            .and_then(|i| i.parse().ok()),
        labels,
        annotations,
        hostname: spec.hostname.clone(),
        spec: core_spec,
    })
}

impl TestKubelet {
    /// Starts a kubelet for the pods of `namespace` (created if missing) on a node of its
    /// own, `batch-test-kubelet-<namespace>`.
    ///
    /// # Errors
    ///
    /// The namespace or the node cannot be created, the local executor or the log server
    /// cannot start, or the pod watch cannot begin.
    pub async fn start(client: kube::Client, namespace: &str) -> Result<TestKubelet, String> {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(namespace.to_owned()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(e) if api_code(&e) == Some(409) => {}
            Err(e) => return Err(format!("cannot create namespace {namespace}: {e}")),
        }

        let dir = tempfile::tempdir().map_err(|e| format!("temporary directory: {e}"))?;
        let local = LocalExecutor::new(LocalExecutorConfig {
            root: dir.path().to_owned(),
            ..LocalExecutorConfig::default()
        })
        .map_err(|e| format!("local executor: {e}"))?;
        let mut capabilities = local.capabilities();
        capabilities.hostname = false;

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("log server: {e}"))?;
        let port = listener
            .local_addr()
            .map_err(|e| format!("log server: {e}"))?
            .port();
        let tls = tls_acceptor()?;
        let logs_task = tokio::spawn(serve_logs(listener, tls, local.clone()));

        let node = format!("batch-test-kubelet-{namespace}");
        register_node(&client, &node, port).await?;

        let pods: Api<Pod> = Api::namespaced(client, namespace);
        let local_watch = local
            .watch(&BTreeMap::new())
            .await
            .map_err(|e| format!("local watch: {e}"))?;
        let state = Arc::new(Mutex::new(HashMap::new()));
        let kubelet = Kubelet {
            pods: pods.clone(),
            local: local.clone(),
            node: node.clone(),
            state: state.clone(),
        };
        let run_task = tokio::spawn(kubelet.run(local_watch));
        Ok(TestKubelet {
            node,
            namespace: namespace.to_owned(),
            capabilities,
            pods,
            state,
            local,
            tasks: vec![logs_task, run_task],
            _dir: dir,
        })
    }

    /// What the pods it runs can do (the local executor's capabilities, without hostname).
    pub fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    /// Its node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Its namespace.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Evicts `pod` as the kubelet does under node pressure: condition `DisruptionTarget`
    /// (reason `TerminationByKubelet`) first, then the pod is stopped with `grace` and
    /// reported `Failed` with reason `Evicted`.
    ///
    /// # Errors
    ///
    /// The pod is not one this kubelet runs, or the status cannot be written.
    pub async fn evict(&self, pod: &str, grace: chrono::Duration) -> Result<(), String> {
        let now = SystemClock.now();
        let message = "The node was low on resource: memory.".to_owned();
        {
            let mut state = self.state.lock().await;
            let tracked = state
                .get_mut(pod)
                .ok_or_else(|| format!("pod {pod} does not run on {}", self.node))?;
            tracked.extra_conditions.push(json!({
                "type": "DisruptionTarget",
                "status": "True",
                "reason": "TerminationByKubelet",
                "message": message,
                "lastTransitionTime": time(Some(now)),
            }));
            tracked.evicted = Some(message);
            tracked.stop_asked = true;
            let conditions = tracked.extra_conditions.clone();
            self.pods
                .patch_status(
                    pod,
                    &PatchParams::default(),
                    &Patch::Strategic(json!({"status": {"conditions": conditions}})),
                )
                .await
                .map_err(|e| format!("status of {pod}: {e}"))?;
        }
        self.local
            .delete(pod, Some(grace))
            .await
            .map_err(|e| format!("stop {pod}: {e}"))
    }
}

async fn register_node(client: &kube::Client, node: &str, port: u16) -> Result<(), String> {
    let nodes: Api<Node> = Api::all(client.clone());
    let object: Node = serde_json::from_value(json!({
        "metadata": {"name": node, "labels": {"kubernetes.io/hostname": node}},
    }))
    .map_err(|e| e.to_string())?;
    match nodes.create(&PostParams::default(), &object).await {
        Ok(_) => {}
        Err(e) if api_code(&e) == Some(409) => {}
        Err(e) => return Err(format!("cannot register node {node}: {e}")),
    }
    let now = time(Some(SystemClock.now()));
    let status = json!({"status": {
        "addresses": [
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": "127.0.0.1"},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "KubeletReady",
            "lastHeartbeatTime": now, "lastTransitionTime": now,
        }],
    }});
    nodes
        .patch_status(node, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(|e| format!("cannot report node {node}: {e}"))?;
    Ok(())
}

/// TLS for the log endpoint: a self-signed certificate for 127.0.0.1 made now.
fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor, String> {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()])
        .map_err(|e| format!("log server certificate: {e}"))?;
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("log server TLS: {e}"))?
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .map_err(|e| format!("log server TLS: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// `GET /containerLogs/<namespace>/<pod>/<container>` (what the API server asks a kubelet
/// for `pods/log`), HTTP/1.1 over TLS, one request per connection. Test support only.
async fn serve_logs(listener: TcpListener, tls: tokio_rustls::TlsAcceptor, local: LocalExecutor) {
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let local = local.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Ok(mut stream) = tls.accept(tcp).await else {
                return;
            };
            let mut head = Vec::new();
            let mut chunk = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let text = String::from_utf8_lossy(&head);
            let target = text.split_whitespace().nth(1).unwrap_or("");
            let path = target.split('?').next().unwrap_or("");
            let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
            let (status, body) = match parts.as_slice() {
                ["containerLogs", _namespace, pod, container] => {
                    match local.logs(pod, container).await {
                        Ok(bytes) => ("200 OK", bytes),
                        Err(e) => ("404 Not Found", e.to_string().into_bytes()),
                    }
                }
                _ => ("404 Not Found", b"not found".to_vec()),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes()).await;
            let _ = stream.write_all(&body).await;
            let _ = stream.shutdown().await;
        });
    }
}

/// The kubelet's loop: API pod events and local observations, one at a time.
struct Kubelet {
    pods: Api<Pod>,
    local: LocalExecutor,
    node: String,
    state: Arc<Mutex<HashMap<String, Tracked>>>,
}

impl Kubelet {
    async fn run(self, mut local_watch: batch_core::executor::WatchStream) {
        let mut api = watcher(self.pods.clone(), watcher::Config::default())
            .default_backoff()
            .boxed();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => self.resync().await,
                event = api.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                        self.on_pod(&pod).await;
                    }
                    Some(Ok(watcher::Event::Delete(pod))) => self.on_pod_gone(&pod).await,
                    Some(Ok(_) | Err(_)) => {}
                    None => return,
                },
                event = local_watch.next() => match event {
                    Some(Ok(WatchEvent::Applied(obs))) => self.on_local(&obs).await,
                    Some(Ok(WatchEvent::Deleted { name })) => self.on_local_gone(&name).await,
                    Some(Ok(_) | Err(_)) => {}
                    None => return,
                },
            }
        }
    }

    async fn on_pod(&self, pod: &Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let spec = pod.spec.as_ref();
        let bound_to = spec.and_then(|s| s.node_name.as_deref());
        let deleting = pod.metadata.deletion_timestamp.is_some();
        match bound_to {
            None if !deleting => {
                // The scheduler's part: bind it here.
                let binding = json!({
                    "apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": name},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": self.node},
                });
                let _ = self
                    .pods
                    .create_subresource::<_, Value>(
                        "binding",
                        &name,
                        &PostParams::default(),
                        &binding,
                    )
                    .await;
                return;
            }
            Some(node) if node == self.node => {}
            _ => return,
        }
        let mut state = self.state.lock().await;
        let tracked = state.entry(name.clone()).or_default();
        if tracked.uid != uid {
            *tracked = Tracked {
                uid: uid.clone(),
                images: spec
                    .into_iter()
                    .flat_map(|s| {
                        s.containers
                            .iter()
                            .chain(s.init_containers.iter().flatten())
                    })
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect(),
                ..Tracked::default()
            };
        }
        let terminal = matches!(
            pod.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        );
        if !tracked.started && !deleting && !terminal {
            tracked.started = true;
            let checked = request_for(pod).and_then(|request| {
                let template = batch_core::model::PodTemplateSpec {
                    spec: request.spec.clone(),
                    ..batch_core::model::PodTemplateSpec::default()
                };
                self.local
                    .check_template(&template)
                    .map(|()| request)
                    .map_err(|e| e.to_string())
            });
            match checked {
                Ok(request) => {
                    if let Err(e) = self.local.start(request).await {
                        self.fail(&name, &format!("the test kubelet cannot run it: {e}"))
                            .await;
                        tracked.local_terminal = true;
                    }
                }
                Err(e) => {
                    self.fail(&name, &format!("the test kubelet cannot read it: {e}"))
                        .await;
                    tracked.local_terminal = true;
                }
            }
        }
        if deleting {
            tracked.api_deleting = true;
            if tracked.started && !tracked.local_terminal && !tracked.stop_asked {
                tracked.stop_asked = true;
                let grace = pod
                    .metadata
                    .deletion_grace_period_seconds
                    .unwrap_or(30)
                    .max(0);
                let _ = self
                    .local
                    .delete(&name, Some(chrono::Duration::seconds(grace)))
                    .await;
            }
            if !tracked.started || tracked.local_terminal || tracked.local_gone {
                self.finish(&name, tracked).await;
            }
        }
    }

    /// A pod the kubelet cannot run: `Failed`, the reason in the message.
    async fn fail(&self, name: &str, message: &str) {
        let patch =
            json!({"status": {"phase": "Failed", "reason": "TestKubelet", "message": message}});
        let _ = self
            .pods
            .patch_status(name, &PatchParams::default(), &Patch::Merge(patch))
            .await;
    }

    /// Ends a graceful deletion: delete with grace 0, this UID only.
    async fn finish(&self, name: &str, tracked: &mut Tracked) {
        if tracked.finished {
            return;
        }
        let params = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(tracked.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match self.pods.delete(name, &params).await {
            Ok(_) => tracked.finished = true,
            // Gone already, or another pod by that name now: nothing left to finish.
            Err(e) if matches!(api_code(&e), Some(404 | 409)) => tracked.finished = true,
            // The server is down: `resync` tries again.
            Err(_) => {}
        }
    }

    /// Sends the status the server has not accepted yet.
    async fn report(&self, name: &str, tracked: &mut Tracked) {
        let Some(status) = &tracked.unreported else {
            return;
        };
        match self
            .pods
            .patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
        {
            Ok(_) => tracked.unreported = None,
            Err(e) if api_code(&e) == Some(404) => tracked.unreported = None,
            Err(_) => {}
        }
    }

    /// Level-triggered catch-up (every second): statuses and deletions the server could not
    /// take while it was down.
    async fn resync(&self) {
        let mut state = self.state.lock().await;
        for (name, tracked) in state.iter_mut() {
            self.report(name, tracked).await;
            if tracked.api_deleting
                && !tracked.finished
                && (!tracked.started || tracked.local_terminal || tracked.local_gone)
            {
                self.finish(name, tracked).await;
            }
        }
    }

    async fn on_pod_gone(&self, pod: &Pod) {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let mut state = self.state.lock().await;
        if state.get(&name).is_some_and(|t| t.uid == uid)
            && let Some(tracked) = state.remove(&name)
            && tracked.started
            && !tracked.local_gone
        {
            // The record and logs go with the pod.
            let _ = self
                .local
                .delete(&name, Some(chrono::Duration::zero()))
                .await;
        }
    }

    async fn on_local(&self, obs: &PodObservation) {
        let mut state = self.state.lock().await;
        let Some(tracked) = state.get_mut(&obs.name) else {
            return;
        };
        tracked.unreported = Some(status_of(obs, tracked));
        self.report(&obs.name, tracked).await;
        if obs.phase.is_terminal() {
            tracked.local_terminal = true;
            if tracked.api_deleting {
                self.finish(&obs.name, tracked).await;
            }
        }
    }

    async fn on_local_gone(&self, name: &str) {
        let mut state = self.state.lock().await;
        let Some(tracked) = state.get_mut(name) else {
            return;
        };
        tracked.local_gone = true;
        if tracked.api_deleting {
            self.finish(name, tracked).await;
        }
    }
}
