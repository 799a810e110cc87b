//! Cluster mode: [`K8sCluster`] hands Jobs and CronJobs to the cluster's own controllers.
//!
//! The object is converted losslessly to `batch/v1` (the [`convert`] module) and applied
//! with server-side apply under the field manager `batch` (applying again updates what
//! `batch` set and leaves other managers' fields alone). The cluster's status comes back as
//! batch-core's [`JobStatus`] / [`CronJobStatus`], once ([`K8sCluster::job`]) or as a
//! stream of changes ([`K8sCluster::watch_job`]), with the controller's events
//! ([`K8sCluster::job_events`]).
//!
//! **Fields the cluster does not keep are reported, never dropped silently.** An API server
//! prunes the fields its version does not know (1.20 drops `suspend`, `completionMode`,
//! `podFailurePolicy`, `successPolicy`, `managedBy`, `backoffLimitPerIndex`,
//! `ttlSecondsAfterFinished` without its alpha gate, …): after applying, the object the
//! server stored is compared with the one sent, and every field missing from it is named in
//! [`Applied::warnings`], with what that means (the cluster's controller will not honour
//! it). Fields `k8s-openapi` itself cannot hold are named the same way.
//!
//! CronJobs: servers before 1.21 serve them only as `batch/v1beta1` (same schema, without
//! `timeZone`); the version the server offers is found by discovery and used, and the
//! status read back through it.

use batch_core::executor::{Error, ErrorKind, Result};
use batch_core::model::{CronJob, CronJobStatus, Job, JobStatus};
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1::Event;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use std::sync::{Arc, Mutex};

use crate::K8sExecutorConfig;
use crate::convert::{self, missing_paths};
use crate::executor::{
    ServerVersion, api_error, at_server, connect_client, relisting_watcher, watch_error,
};

/// The field manager of every apply.
pub const FIELD_MANAGER: &str = "batch";

/// What an apply stored.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Applied<T> {
    /// The object as the server stored it (defaults filled in, unknown fields pruned),
    /// converted back to batch-core's model.
    pub object: T,
    /// One line per field that did not reach the cluster, naming it and saying why.
    pub warnings: Vec<String>,
}

/// An event the cluster recorded about an object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClusterEvent {
    /// `Normal` or `Warning`.
    pub type_: String,
    /// Why (`SuccessfulCreate`, `Completed`, `BackoffLimitExceeded`, …).
    pub reason: String,
    /// What happened.
    pub message: String,
    /// How many times it happened.
    pub count: i32,
}

/// Jobs and CronJobs applied to a cluster and followed there (see the module docs).
#[derive(Clone)]
pub struct K8sCluster {
    client: kube::Client,
    namespace: String,
    version: ServerVersion,
    /// The server's OpenAPI v2 definitions, fetched on first use.
    schema: Arc<Mutex<Option<Arc<Value>>>>,
}

impl std::fmt::Debug for K8sCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("K8sCluster")
            .field("namespace", &self.namespace)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

fn invalid(operation: &'static str, message: String) -> Error {
    Error::new(ErrorKind::InvalidRequest, operation, message)
}

/// The JSON to apply: the object without what the server owns (status, uid, resource
/// version, creation time, managed fields).
fn apply_body(mut value: Value) -> Value {
    if let Value::Object(map) = &mut value {
        map.remove("status");
        if let Some(Value::Object(meta)) = map.get_mut("metadata") {
            for owned in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
                "selfLink",
            ] {
                meta.remove(owned);
            }
        }
    }
    value
}

/// The warnings for the fields of `sent` that `stored` lacks.
fn pruned(sent: &Value, stored: &Value, version: ServerVersion, kind: &str) -> Vec<String> {
    let mut paths = Vec::new();
    missing_paths(sent, stored, "", &mut paths);
    paths
        .into_iter()
        .filter(|p| !p.starts_with("metadata.") && p != "status" && !p.starts_with("status."))
        .map(|p| {
            format!(
                "{p}: the API server ({version}) does not keep this field; the cluster's \
                 {kind} controller will not apply it"
            )
        })
        .collect()
}

impl K8sCluster {
    /// Connects with kube's config inference (or the configured kubeconfig context) and
    /// reads the server's version.
    ///
    /// # Errors
    ///
    /// No configuration, or the server cannot be reached.
    pub async fn connect(config: K8sExecutorConfig) -> Result<K8sCluster> {
        let (client, namespace, server) = connect_client(None, &config).await?;
        K8sCluster::from_client(client, &namespace)
            .await
            .map_err(|e| at_server(e, &server))
    }

    /// Connects with the kubeconfig file at `path`.
    ///
    /// # Errors
    ///
    /// The file cannot be read or has no such context, or the server cannot be reached.
    pub async fn connect_with_kubeconfig(
        path: &std::path::Path,
        config: K8sExecutorConfig,
    ) -> Result<K8sCluster> {
        let (client, namespace, server) = connect_client(Some(path), &config).await?;
        K8sCluster::from_client(client, &namespace)
            .await
            .map_err(|e| at_server(e, &server))
    }

    /// Uses a client built by the caller; objects go to `namespace`.
    ///
    /// # Errors
    ///
    /// The server cannot be reached.
    pub async fn from_client(client: kube::Client, namespace: &str) -> Result<K8sCluster> {
        let info = client
            .apiserver_version()
            .await
            .map_err(|e| api_error("connect", e).with_transient(true))?;
        Ok(K8sCluster {
            client,
            namespace: namespace.to_owned(),
            version: ServerVersion::of(&info),
            schema: Arc::default(),
        })
    }

    /// The namespace objects are applied in.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The API server's version.
    pub fn server_version(&self) -> ServerVersion {
        self.version
    }

    /// The server's OpenAPI v2 `definitions` (fetched once).
    async fn definitions(&self) -> Result<Arc<Value>> {
        if let Some(cached) = self.schema.lock().ok().and_then(|s| s.clone()) {
            return Ok(cached);
        }
        let request = http::Request::get("/openapi/v2")
            .body(Vec::new())
            .map_err(|e| invalid("schema", e.to_string()))?;
        let text = self
            .client
            .request_text(request)
            .await
            .map_err(|e| api_error("schema", e))?;
        let mut document: Value = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorKind::Other,
                "schema",
                format!("the server's /openapi/v2 is not JSON: {e}"),
            )
        })?;
        let definitions = Arc::new(document["definitions"].take());
        if let Ok(mut slot) = self.schema.lock() {
            *slot = Some(definitions.clone());
        }
        Ok(definitions)
    }

    /// Removes from `object` (of `group/version` `kind`) every field the server's schema
    /// does not declare (servers before 1.21 refuse to apply them), returning a warning for
    /// each. A server without a schema for the kind is left to decide alone.
    async fn prune_unknown(
        &self,
        object: &mut Value,
        api_version: &str,
        kind: &str,
    ) -> Result<Vec<String>> {
        let definitions = self.definitions().await?;
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let Some(root) = definitions.as_object().and_then(|defs| {
            defs.values().find(|d| {
                d["x-kubernetes-group-version-kind"]
                    .as_array()
                    .is_some_and(|gvks| {
                        gvks.iter().any(|g| {
                            g["group"] == group && g["version"] == version && g["kind"] == kind
                        })
                    })
            })
        }) else {
            return Ok(Vec::new());
        };
        let mut removed = Vec::new();
        prune(object, root, &definitions, "", &mut removed);
        Ok(removed
            .into_iter()
            .map(|p| {
                format!(
                    "{p}: the API server ({}) does not know this field (not in its schema); \
                     not sent, the cluster's {kind} controller will not apply it",
                    self.version
                )
            })
            .collect())
    }

    /// Applies `sent` (server-side apply, field manager `batch`, conflicts forced: `batch`
    /// owns what it applies) without what the server owns and without the fields outside its
    /// schema; returns what the server stored and a warning for every field that did not
    /// reach it (`dropped`: those the API types could not hold).
    async fn apply<K>(
        &self,
        api: &Api<K>,
        name: &str,
        sent: Value,
        dropped: &[String],
        kind: &str,
    ) -> Result<(K, Vec<String>)>
    where
        K: Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
    {
        let mut warnings: Vec<String> = dropped
            .iter()
            .map(|p| format!("{p}: not a field of the Kubernetes API; not sent"))
            .collect();
        let mut sent = apply_body(sent);
        let api_version = sent["apiVersion"].as_str().unwrap_or_default().to_owned();
        warnings.extend(self.prune_unknown(&mut sent, &api_version, kind).await?);
        let params = PatchParams::apply(FIELD_MANAGER).force();
        let stored = api
            .patch(name, &params, &Patch::Apply(&sent))
            .await
            .map_err(|e| api_error("apply", e))?;
        let stored_value =
            serde_json::to_value(&stored).map_err(|e| invalid("apply", e.to_string()))?;
        warnings.extend(pruned(&sent, &stored_value, self.version, kind));
        Ok((stored, warnings))
    }

    fn jobs(&self) -> Api<batch::Job> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies `job` (server-side apply, field manager `batch`, conflicts forced: `batch`
    /// owns what it applies) and returns what the server stored, with a warning for every
    /// field that did not reach it.
    ///
    /// # Errors
    ///
    /// The Job does not fit the API types, the server refuses it (invalid: the message
    /// names the field), or it cannot be reached.
    pub async fn apply_job(&self, job: &Job) -> Result<Applied<Job>> {
        let name = required_name(job.metadata.name.as_deref())?;
        let converted = convert::job_to_k8s(job).map_err(|e| invalid("apply", e.to_string()))?;
        let mut object = converted.object;
        object.metadata.namespace = Some(self.namespace.clone());
        let sent = serde_json::to_value(&object).map_err(|e| invalid("apply", e.to_string()))?;
        let (stored, warnings) = self
            .apply(&self.jobs(), &name, sent, &converted.dropped, "Job")
            .await?;
        let object = convert::job_from_k8s(&stored).map_err(|e| invalid("apply", e.to_string()))?;
        Ok(Applied { object, warnings })
    }

    /// The Job as the cluster has it now (`None`: there is none by that name).
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or what it returns does not fit batch-core's model.
    pub async fn job(&self, name: &str) -> Result<Option<Job>> {
        let found = self
            .jobs()
            .get_opt(name)
            .await
            .map_err(|e| api_error("get", e))?;
        found
            .map(|j| convert::job_from_k8s(&j).map_err(|e| invalid("get", e.to_string())))
            .transpose()
    }

    /// The Job's status each time the cluster changes it (the first item: its status now).
    /// The watch resumes after disconnects and lists again after `410 Gone` (kube's
    /// watcher, with back-off); a problem is an `Err` item and the stream goes on. A
    /// deleted Job ends the stream.
    pub fn watch_job(&self, name: &str) -> impl Stream<Item = Result<JobStatus>> + Send + 'static {
        status_stream(self.jobs(), name, |job: batch::Job| {
            convert::job_status_from_k8s(&job.status.unwrap_or_default())
                .map_err(|e| invalid("watch", e.to_string()))
        })
    }

    /// The events the cluster recorded about the Job `name` (its controller's), oldest
    /// first.
    ///
    /// # Errors
    ///
    /// The server cannot be reached.
    pub async fn job_events(&self, name: &str) -> Result<Vec<ClusterEvent>> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = ListParams::default().fields(&format!(
            "involvedObject.kind=Job,involvedObject.name={name}"
        ));
        let mut list = events
            .list(&params)
            .await
            .map_err(|e| api_error("events", e))?
            .items;
        list.sort_by(|a, b| {
            let at = |e: &Event| {
                e.first_timestamp
                    .as_ref()
                    .map(|t| t.0)
                    .or(e.event_time.as_ref().map(|t| t.0))
            };
            at(a).cmp(&at(b))
        });
        Ok(list
            .into_iter()
            .map(|e| ClusterEvent {
                type_: e.type_.unwrap_or_default(),
                reason: e.reason.unwrap_or_default(),
                message: e.message.unwrap_or_default(),
                count: e.count.unwrap_or(1),
            })
            .collect())
    }

    /// Deletes the Job and (in the background) its pods.
    ///
    /// # Errors
    ///
    /// There is no such Job, or the server cannot be reached.
    pub async fn delete_job(&self, name: &str) -> Result<()> {
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        self.jobs()
            .delete(name, &params)
            .await
            .map(|_| ())
            .map_err(|e| api_error("delete", e))
    }

    /// The CronJob API of the version the server serves, and that version.
    async fn cron_jobs(&self) -> Result<(Api<DynamicObject>, ApiResource)> {
        let resource = self.cron_job_resource().await?;
        let api = Api::namespaced_with(self.client.clone(), &self.namespace, &resource);
        Ok((api, resource))
    }

    /// The API version the server serves CronJobs under (`batch/v1`, or `batch/v1beta1`
    /// before 1.21), found by discovery.
    async fn cron_job_resource(&self) -> Result<ApiResource> {
        for version in ["v1", "v1beta1"] {
            let group_version = format!("batch/{version}");
            match self.client.list_api_group_resources(&group_version).await {
                Ok(list) if list.resources.iter().any(|r| r.name == "cronjobs") => {
                    return Ok(ApiResource {
                        group: "batch".to_owned(),
                        version: version.to_owned(),
                        api_version: group_version,
                        kind: "CronJob".to_owned(),
                        plural: "cronjobs".to_owned(),
                    });
                }
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(api_error("discovery", e)),
            }
        }
        Err(Error::new(
            ErrorKind::Unsupported,
            "discovery",
            format!(
                "the API server ({}) serves no CronJob resource (batch/v1 or batch/v1beta1)",
                self.version
            ),
        ))
    }

    /// Applies `cron_job` under the CronJob version the server serves (server-side apply,
    /// field manager `batch`), with a warning for every field that did not reach it
    /// (`timeZone` on a `batch/v1beta1` server, …).
    ///
    /// # Errors
    ///
    /// As [`K8sCluster::apply_job`]; also a server that serves no CronJobs.
    pub async fn apply_cron_job(&self, cron_job: &CronJob) -> Result<Applied<CronJob>> {
        let name = required_name(cron_job.metadata.name.as_deref())?;
        let converted =
            convert::cron_job_to_k8s(cron_job).map_err(|e| invalid("apply", e.to_string()))?;
        let (api, resource) = self.cron_jobs().await?;
        let mut sent =
            serde_json::to_value(&converted.object).map_err(|e| invalid("apply", e.to_string()))?;
        sent["apiVersion"] = Value::String(resource.api_version.clone());
        sent["metadata"]["namespace"] = Value::String(self.namespace.clone());
        let (stored, warnings) = self
            .apply(&api, &name, sent, &converted.dropped, "CronJob")
            .await?;
        let object = cron_job_from_value(
            serde_json::to_value(&stored).map_err(|e| invalid("apply", e.to_string()))?,
            "apply",
        )?;
        Ok(Applied { object, warnings })
    }

    /// The CronJob as the cluster has it now (`None`: there is none by that name).
    ///
    /// # Errors
    ///
    /// The server cannot be reached, or serves no CronJobs.
    pub async fn cron_job(&self, name: &str) -> Result<Option<CronJob>> {
        let (api, _) = self.cron_jobs().await?;
        let found = api.get_opt(name).await.map_err(|e| api_error("get", e))?;
        found
            .map(|o| {
                cron_job_from_value(
                    serde_json::to_value(&o).map_err(|e| invalid("get", e.to_string()))?,
                    "get",
                )
            })
            .transpose()
    }

    /// The CronJob's status now (`None`: no such CronJob).
    ///
    /// # Errors
    ///
    /// As [`K8sCluster::cron_job`].
    pub async fn cron_job_status(&self, name: &str) -> Result<Option<CronJobStatus>> {
        Ok(self.cron_job(name).await?.map(|c| c.status))
    }

    /// The CronJob's status each time the cluster changes it (the first item: its status
    /// now), through the CronJob version the server serves. As [`K8sCluster::watch_job`]:
    /// problems are `Err` items and the stream goes on; a deleted CronJob ends it.
    ///
    /// # Errors
    ///
    /// The server serves no CronJobs, or cannot be reached for discovery.
    pub async fn watch_cron_job(
        &self,
        name: &str,
    ) -> Result<impl Stream<Item = Result<CronJobStatus>> + Send + 'static> {
        let (api, _) = self.cron_jobs().await?;
        Ok(status_stream(api, name, |object: DynamicObject| {
            let value =
                serde_json::to_value(&object).map_err(|e| invalid("watch", e.to_string()))?;
            cron_job_from_value(value, "watch").map(|c| c.status)
        }))
    }

    /// Deletes the CronJob and (in the background) its Jobs.
    ///
    /// # Errors
    ///
    /// There is no such CronJob, or the server cannot be reached.
    pub async fn delete_cron_job(&self, name: &str) -> Result<()> {
        let (api, _) = self.cron_jobs().await?;
        let params = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..DeleteParams::default()
        };
        api.delete(name, &params)
            .await
            .map(|_| ())
            .map_err(|e| api_error("delete", e))
    }
}

/// The schema `$ref` points at, or `schema` itself.
fn resolve<'a>(schema: &'a Value, definitions: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/definitions/");
            &definitions[name]
        }
        None => schema,
    }
}

/// Removes the fields of `value` that `schema` does not declare, recording their paths.
/// Maps (`additionalProperties`) and free-form objects (no `properties`) are kept whole.
fn prune(
    value: &mut Value,
    schema: &Value,
    definitions: &Value,
    path: &str,
    out: &mut Vec<String>,
) {
    let schema = resolve(schema, definitions);
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                let keys: Vec<String> = map.keys().cloned().collect();
                for key in keys {
                    let child = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    match properties.get(&key) {
                        Some(property) => {
                            if let Some(v) = map.get_mut(&key) {
                                prune(v, property, definitions, &child, out);
                            }
                        }
                        // apiVersion and kind are declared; anything else unknown goes.
                        None => {
                            if map.get(&key).is_some_and(|v| !v.is_null()) {
                                out.push(child);
                            }
                            map.remove(&key);
                        }
                    }
                }
            } else if let Some(values) = schema.get("additionalProperties") {
                for (key, v) in map.iter_mut() {
                    prune(v, values, definitions, &format!("{path}.{key}"), out);
                }
            }
        }
        Value::Array(items) => {
            let item_schema = &schema["items"];
            if !item_schema.is_null() {
                for (i, v) in items.iter_mut().enumerate() {
                    prune(v, item_schema, definitions, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

/// The status (`status_of`) of the object `name` each time it changes: its status now first,
/// then each change (an unchanged status is not repeated). Watch problems are `Err` items and
/// the stream goes on (kube's watcher, with back-off); the object's deletion ends it.
fn status_stream<K, S>(
    api: Api<K>,
    name: &str,
    status_of: impl Fn(K) -> Result<S> + Send + 'static,
) -> impl Stream<Item = Result<S>> + Send + 'static
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
    S: PartialEq + Clone + Send + 'static,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut last: Option<S> = None;
    relisting_watcher(api, config)
        .default_backoff()
        .take_while(|event| std::future::ready(!matches!(event, Ok(watcher::Event::Delete(_)))))
        .filter_map(move |event| {
            let item = match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    match status_of(object) {
                        Ok(status) if last.as_ref() == Some(&status) => None,
                        Ok(status) => {
                            last = Some(status.clone());
                            Some(Ok(status))
                        }
                        Err(e) => Some(Err(e)),
                    }
                }
                Ok(_) => None,
                Err(e) => Some(Err(watch_error(e))),
            };
            std::future::ready(item)
        })
}

/// The object's name; applying needs one (`generateName` is for creating).
fn required_name(name: Option<&str>) -> Result<String> {
    match name {
        Some(name) if !name.is_empty() => Ok(name.to_owned()),
        _ => Err(invalid(
            "apply",
            "metadata.name: Required value: server-side apply needs a name".to_owned(),
        )),
    }
}

/// A CronJob object of either version as batch-core's (through the `batch/v1` type).
fn cron_job_from_value(mut value: Value, operation: &'static str) -> Result<CronJob> {
    value["apiVersion"] = Value::String("batch/v1".to_owned());
    let object: batch::CronJob =
        serde_json::from_value(value).map_err(|e| invalid(operation, e.to_string()))?;
    convert::cron_job_from_k8s(&object).map_err(|e| invalid(operation, e.to_string()))
}
