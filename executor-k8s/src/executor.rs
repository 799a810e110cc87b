//! Pod mode: [`K8sExecutor`], the [`Executor`] that runs the core's pods on a cluster.

use async_trait::async_trait;
use batch_core::executor::{
    Capabilities, Error, ErrorKind, Executor, LabelSelector, PodObservation, PodRequest, Result,
    WatchEvent, WatchStream,
};
use batch_core::model::PodTemplateSpec;
use batch_core::validation::{FieldError, FieldPath, ValidationErrors};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};

use crate::translate;

/// How the executor reaches the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K8sExecutorConfig {
    /// The namespace pods are created in; `None`: the kubeconfig context's (else `default`).
    pub namespace: Option<String>,
    /// The kubeconfig context; `None`: the current one (or the in-cluster config).
    pub context: Option<String>,
}

/// Runs pods on a Kubernetes cluster through its API server: create, delete with the grace
/// period, list and watch by labels, logs through `pods/log`.
#[derive(Clone)]
pub struct K8sExecutor {
    pods: Api<Pod>,
    namespace: String,
    capabilities: Capabilities,
    version: ServerVersion,
}

/// The API server's version (`major.minor`; a provider suffix such as `20+` is ignored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    /// The major version (1).
    pub major: u32,
    /// The minor version.
    pub minor: u32,
}

impl ServerVersion {
    /// The version an `/version` answer states (0.0 when it cannot be read).
    pub fn of(info: &k8s_openapi::apimachinery::pkg::version::Info) -> ServerVersion {
        let number = |s: &str| {
            s.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
                .parse()
                .unwrap_or(0)
        };
        ServerVersion {
            major: number(&info.major),
            minor: number(&info.minor),
        }
    }

    /// Native sidecars (init containers with `restartPolicy: Always`): on by default from
    /// 1.29 (the `SidecarContainers` gate was alpha, off, in 1.28). Older servers drop the
    /// field, and the sidecar would run as an init container that never ends.
    pub fn has_native_sidecars(self) -> bool {
        (self.major, self.minor) >= (1, 29)
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

impl std::fmt::Debug for K8sExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sExecutor")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// A client from kube's config inference (or the kubeconfig file at `path`) and the
/// configured context, and the namespace to use (the configured one, else the context's).
pub(crate) async fn connect_client(
    path: Option<&std::path::Path>,
    config: &K8sExecutorConfig,
) -> Result<(kube::Client, String, String)> {
    let unavailable = |what: String| Error::new(ErrorKind::Unavailable, "connect", what);
    let options = kube::config::KubeConfigOptions {
        context: config.context.clone(),
        ..Default::default()
    };
    let kube_config = match (path, &config.context) {
        (Some(path), _) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| unavailable(format!("kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                .await
                .map_err(|e| unavailable(format!("kubeconfig {}: {e}", path.display())))?
        }
        (None, None) => kube::Config::infer()
            .await
            .map_err(|e| unavailable(format!("no Kubernetes configuration: {e}")))?,
        (None, Some(context)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| unavailable(format!("kubeconfig context {context:?}: {e}")))?,
    };
    let namespace = config
        .namespace
        .clone()
        .unwrap_or_else(|| kube_config.default_namespace.clone());
    let server = kube_config.cluster_url.to_string();
    let client = kube::Client::try_from(kube_config)
        .map_err(|e| unavailable(format!("cannot build a client for {server}: {e}")))?;
    Ok((client, namespace, server))
}

/// A watch problem as an executor error: the API status's kind where the server answered
/// (403 is permission denied, 410 and 5xx retried, …), else unavailable and retried. The
/// watch itself goes on either way (kube's watcher retries with back-off).
pub(crate) fn watch_error(e: watcher::Error) -> Error {
    let (kind, transient) = match &e {
        watcher::Error::InitialListFailed(inner)
        | watcher::Error::WatchStartFailed(inner)
        | watcher::Error::WatchFailed(inner) => match inner {
            kube::Error::Api(status) => translate::error_kind(status.code),
            _ => (ErrorKind::Unavailable, true),
        },
        watcher::Error::WatchError(status) => translate::error_kind(status.code),
        watcher::Error::NoResourceVersion => (ErrorKind::Other, false),
    };
    Error::new(kind, "watch", e.to_string())
        .with_transient(transient)
        .with_source(e)
}

/// kube's `watcher`, except that a watch *request* answered with `410 Gone` lists again.
///
/// kube-runtime 5 re-lists when a running watch sends a `410` ERROR event (what a
/// kube-apiserver does), but when the watch request itself is answered with HTTP 410 (a
/// server reading etcd directly, a proxy, an aggregated API server) it retries the watch
/// from the same, expired, resource version for ever. client-go's reflector lists again in
/// both cases; so does this: the error is reported as an `Err` item as before, and the next
/// item comes from a new watcher, which starts with a list.
pub(crate) fn relisting_watcher<K>(
    api: Api<K>,
    config: watcher::Config,
) -> impl futures_util::Stream<Item = std::result::Result<watcher::Event<K>, watcher::Error>>
+ Send
+ 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let inner = watcher(api.clone(), config.clone()).boxed();
    futures_util::stream::unfold(
        (api, config, inner),
        |(api, config, mut inner)| async move {
            let item = inner.next().await?;
            if matches!(
                &item,
                Err(watcher::Error::WatchStartFailed(kube::Error::Api(status)))
                    if status.code == 410
            ) {
                inner = watcher(api.clone(), config.clone()).boxed();
            }
            Some((item, (api, config, inner)))
        },
    )
}

/// A connection error naming the server it was for.
pub(crate) fn at_server(e: Error, server: &str) -> Error {
    let transient = e.is_transient();
    let message = if e.kind() == ErrorKind::Unavailable {
        format!("cannot reach the API server at {server}: {}", e.message())
    } else {
        format!("{server}: {}", e.message())
    };
    Error::new(e.kind(), "connect", message).with_transient(transient)
}

/// An API error as an executor error of `operation`.
pub(crate) fn api_error(operation: &'static str, e: kube::Error) -> Error {
    let (kind, transient) = match &e {
        kube::Error::Api(status) => translate::error_kind(status.code),
        // Connection refused, TLS, timeouts: the server may come back.
        kube::Error::HyperError(_) | kube::Error::Service(_) => (ErrorKind::Unavailable, true),
        _ => (ErrorKind::Other, false),
    };
    // The server's own sentence (`namespaces "jobs" not found`) and its code, rather than
    // the whole Status structure.
    let message = match &e {
        kube::Error::Api(status) if !status.message.is_empty() => {
            format!("{} (HTTP {})", status.message, status.code)
        }
        _ => e.to_string(),
    };
    Error::new(kind, operation, message)
        .with_transient(transient)
        .with_source(e)
}

fn label_selector(selector: &LabelSelector) -> String {
    selector
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

impl K8sExecutor {
    /// Connects with kube's config inference (`KUBECONFIG` or `~/.kube/config`, else the
    /// in-cluster config), or the given context, and checks the server answers.
    ///
    /// # Errors
    ///
    /// No configuration, or the server cannot be reached (the message says which).
    pub async fn connect(config: K8sExecutorConfig) -> Result<K8sExecutor> {
        let (client, namespace, server) = connect_client(None, &config).await?;
        K8sExecutor::from_client(client, &namespace)
            .await
            .map_err(|e| at_server(e, &server))
    }

    /// Connects with the kubeconfig file at `path` (its current context, or the configured
    /// one), and checks the server answers.
    ///
    /// # Errors
    ///
    /// The file cannot be read or has no such context, or the server cannot be reached.
    pub async fn connect_with_kubeconfig(
        path: &std::path::Path,
        config: K8sExecutorConfig,
    ) -> Result<K8sExecutor> {
        let (client, namespace, server) = connect_client(Some(path), &config).await?;
        K8sExecutor::from_client(client, &namespace)
            .await
            .map_err(|e| at_server(e, &server))
    }

    /// Uses a client built by the caller (its own configuration, middleware or a mocked
    /// service), creating pods in `namespace`; asks the server's version first.
    ///
    /// # Errors
    ///
    /// The server cannot be reached.
    pub async fn from_client(client: kube::Client, namespace: &str) -> Result<K8sExecutor> {
        let info = client
            .apiserver_version()
            .await
            .map_err(|e| api_error("connect", e).with_transient(true))?;
        let version = ServerVersion::of(&info);
        // A namespace that does not exist would make every pod creation fail (and be
        // retried for ever): say so now. Without the right to read namespaces (least
        // privilege: pods only), pod creation will say it instead.
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
        if let Ok(None) = namespaces.get_opt(namespace).await {
            return Err(Error::new(
                ErrorKind::NotFound,
                "connect",
                format!("namespace {namespace:?} does not exist (create it first)"),
            ));
        }
        let mut capabilities = K8sExecutor::kubelet_capabilities();
        capabilities.sidecar_containers = version.has_native_sidecars();
        Ok(K8sExecutor {
            pods: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            capabilities,
            version,
        })
    }

    /// What a kubelet does, as [`Executor::capabilities`] reports it by default: everything
    /// but `signals` (a kubelet reports exit codes; the `signal` field is seldom set).
    pub fn kubelet_capabilities() -> Capabilities {
        let mut capabilities = Capabilities::all();
        capabilities.signals = false;
        capabilities
    }

    /// Declares what the cluster's nodes can do when it is less than a kubelet's (nodes
    /// without memory cgroups, older kubelets without native sidecars, the test kubelet):
    /// what [`Executor::capabilities`] reports, so the runner and the conformance suite do not
    /// count on the rest.
    #[must_use]
    pub fn with_capabilities(mut self, capabilities: Capabilities) -> K8sExecutor {
        self.capabilities = capabilities;
        self
    }

    /// The API server's version, as read when connecting.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// The namespace the pods are created in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }
}

#[async_trait]
impl Executor for K8sExecutor {
    fn name(&self) -> &str {
        "k8s"
    }

    /// [`K8sExecutor::kubelet_capabilities`], unless declared otherwise with
    /// [`K8sExecutor::with_capabilities`].
    fn capabilities(&self) -> Capabilities {
        self.capabilities
    }

    fn check_template(
        &self,
        template: &PodTemplateSpec,
    ) -> std::result::Result<(), ValidationErrors> {
        if !self.version.has_native_sidecars() {
            let sidecars: Vec<FieldError> = template
                .spec
                .init_containers
                .iter()
                .enumerate()
                .filter(|(_, c)| c.restart_policy.is_some())
                .map(|(i, _)| {
                    FieldError::forbidden(
                        FieldPath::new(&format!("template.spec.initContainers[{i}].restartPolicy")),
                        format!(
                            "the API server ({}) has no native sidecars (1.29 and later): it \
                             would drop this field and run the container as an init container \
                             that never ends",
                            self.version
                        ),
                    )
                })
                .collect();
            if !sidecars.is_empty() {
                return Err(ValidationErrors(sidecars));
            }
        }
        match translate::api_pod_spec(&template.spec, "template.spec") {
            Ok(_) => Ok(()),
            Err(translate::PodSpecMismatch::Unfit { path, message }) => {
                Err(ValidationErrors(vec![FieldError::invalid_without_value(
                    FieldPath::new(&path),
                    message,
                )]))
            }
            Err(translate::PodSpecMismatch::Unknown(paths)) => Err(ValidationErrors(
                paths
                    .iter()
                    .map(|p| {
                        FieldError::forbidden(
                            FieldPath::new(p),
                            "a field the Kubernetes API does not know",
                        )
                    })
                    .collect(),
            )),
        }
    }

    async fn start(&self, pod: PodRequest) -> Result<()> {
        let object = translate::pod_for(&pod, &self.namespace)
            .map_err(|e| Error::new(ErrorKind::InvalidRequest, "start", e))?;
        self.pods
            .create(&PostParams::default(), &object)
            .await
            .map(|_| ())
            .map_err(|e| api_error("start", e))
    }

    async fn delete(&self, name: &str, grace: Option<chrono::Duration>) -> Result<()> {
        let params = DeleteParams {
            grace_period_seconds: grace
                .map(|g| u32::try_from(g.num_seconds().max(0)).unwrap_or(u32::MAX)),
            ..DeleteParams::default()
        };
        self.pods
            .delete(name, &params)
            .await
            .map(|_| ())
            .map_err(|e| api_error("delete", e))
    }

    async fn list(&self, selector: &LabelSelector) -> Result<Vec<PodObservation>> {
        let params = ListParams::default().labels(&label_selector(selector));
        let pods = self
            .pods
            .list(&params)
            .await
            .map_err(|e| api_error("list", e))?;
        Ok(pods.items.iter().map(translate::observe).collect())
    }

    /// kube's `watcher`: it resumes after a disconnect from the last resource version and
    /// lists again on `410 Gone` (an ERROR event, or the watch request's answer:
    /// `relisting_watcher`); each of those problems is reported as an `Err` item (the
    /// stream goes on).
    async fn watch(&self, selector: &LabelSelector) -> Result<WatchStream> {
        let config = watcher::Config::default().labels(&label_selector(selector));
        let stream = relisting_watcher(self.pods.clone(), config)
            .default_backoff()
            .filter_map(|event| async move {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        Some(Ok(WatchEvent::Applied(Box::new(translate::observe(&pod)))))
                    }
                    Ok(watcher::Event::Delete(pod)) => Some(Ok(WatchEvent::Deleted {
                        name: pod.metadata.name.unwrap_or_default(),
                    })),
                    Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
                    Err(e) => Some(Err(watch_error(e))),
                }
            });
        Ok(Box::pin(stream))
    }

    async fn logs(&self, pod: &str, container: &str) -> Result<Vec<u8>> {
        let params = LogParams {
            container: Some(container.to_owned()),
            ..LogParams::default()
        };
        self.pods
            .logs(pod, &params)
            .await
            .map(String::into_bytes)
            .map_err(|e| api_error("logs", e))
    }
}
