//! Pod mode: what the executor sends and what it reads back.
//!
//! - [`pod_for`]: a core [`PodRequest`] as the Kubernetes Pod to create — the core's name,
//!   labels (job name, controller uid, completion index), annotations, env (the core has put
//!   `JOB_COMPLETION_INDEX` first in every container) and hostname, in the configured
//!   namespace. The template's fields arrive through [`convert`](crate::convert), so what
//!   batch-core only passes through (node selectors, tolerations, probes, …) reaches the
//!   cluster; a field the API types cannot hold is refused, naming it.
//! - [`observe`]: a Pod as the cluster reports it, as a [`PodObservation`]: phase, reason and
//!   message; each container's waiting/running/terminated state (exit code, signal, reason
//!   such as `OOMKilled`, times), previous termination, restart count and readiness; the
//!   conditions (`Ready`, `DisruptionTarget`, …); deletion; creation, start and finish times.
//! - [`error_kind`]: an API status code as an executor error kind, and whether retrying may
//!   help (409 conflict, 404, 410, 429 and 5xx).

use std::collections::BTreeMap;

use batch_core::executor::{
    ContainerKind, ContainerObservation, ContainerRunState, ErrorKind, PodObservation, PodRequest,
    Terminated,
};
use batch_core::job::{PodCondition, PodPhase};
use batch_core::model::{ConditionStatus, PodSpec, Timestamp};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

/// Why a batch-core pod spec is not a Kubernetes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PodSpecMismatch {
    /// A field whose value the API type cannot hold (its path, and why).
    Unfit { path: String, message: String },
    /// Fields the API types do not know, by path.
    Unknown(Vec<String>),
}

/// `spec` as the API's PodSpec, every field kept; paths in the error start with `prefix`.
pub(crate) fn api_pod_spec(spec: &PodSpec, prefix: &str) -> Result<core::PodSpec, PodSpecMismatch> {
    let unfit = |path: String, message: String| PodSpecMismatch::Unfit { path, message };
    let value = serde_json::to_value(spec).map_err(|e| unfit(prefix.to_owned(), e.to_string()))?;
    let api: core::PodSpec = serde_path_to_error::deserialize(value.clone())
        .map_err(|e| unfit(format!("{prefix}.{}", e.path()), e.inner().to_string()))?;
    let back = serde_json::to_value(&api).map_err(|e| unfit(prefix.to_owned(), e.to_string()))?;
    let mut dropped = Vec::new();
    crate::convert::missing_paths(&value, &back, prefix, &mut dropped);
    if dropped.is_empty() {
        Ok(api)
    } else {
        Err(PodSpecMismatch::Unknown(dropped))
    }
}

/// The Pod to create for `request` in `namespace`.
///
/// # Errors
///
/// The template has a field the API types cannot hold, or does not fit them (the message
/// names the field).
pub fn pod_for(request: &PodRequest, namespace: &str) -> Result<core::Pod, String> {
    let mut spec = api_pod_spec(&request.spec, "spec").map_err(|e| match e {
        PodSpecMismatch::Unfit { path, message } => format!("{path}: {message}"),
        PodSpecMismatch::Unknown(paths) => {
            format!(
                "fields the Kubernetes API does not know: {}",
                paths.join(", ")
            )
        }
    })?;
    if let Some(hostname) = &request.hostname {
        spec.hostname = Some(hostname.clone());
    }
    let map = |m: &BTreeMap<String, String>| (!m.is_empty()).then(|| m.clone());
    Ok(core::Pod {
        metadata: ObjectMeta {
            name: Some(request.name.clone()),
            namespace: Some(namespace.to_owned()),
            labels: map(&request.labels),
            annotations: map(&request.annotations),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}

fn time(t: Option<&Time>) -> Option<Timestamp> {
    let t = t?.0;
    chrono::DateTime::from_timestamp(t.as_second(), u32::try_from(t.subsec_nanosecond()).ok()?)
}

fn terminated(t: &core::ContainerStateTerminated) -> Terminated {
    Terminated {
        exit_code: t.exit_code,
        signal: t.signal,
        reason: t.reason.clone().unwrap_or_default(),
        message: t.message.clone().unwrap_or_default(),
        started_at: time(t.started_at.as_ref()),
        finished_at: time(t.finished_at.as_ref()),
    }
}

fn run_state(state: Option<&core::ContainerState>) -> ContainerRunState {
    let Some(state) = state else {
        return ContainerRunState::default();
    };
    if let Some(t) = &state.terminated {
        ContainerRunState::Terminated(terminated(t))
    } else if let Some(r) = &state.running {
        ContainerRunState::Running {
            started_at: time(r.started_at.as_ref()),
        }
    } else {
        let w = state.waiting.as_ref();
        ContainerRunState::Waiting {
            reason: w.and_then(|w| w.reason.clone()).unwrap_or_default(),
            message: w.and_then(|w| w.message.clone()).unwrap_or_default(),
        }
    }
}

fn container(
    name: &str,
    kind: ContainerKind,
    statuses: Option<&Vec<core::ContainerStatus>>,
) -> ContainerObservation {
    let status = statuses.and_then(|s| s.iter().find(|c| c.name == name));
    ContainerObservation {
        name: name.to_owned(),
        kind,
        state: run_state(status.and_then(|s| s.state.as_ref())),
        last_state: status
            .and_then(|s| s.last_state.as_ref())
            .and_then(|l| l.terminated.as_ref())
            .map(terminated),
        restart_count: status.map_or(0, |s| s.restart_count),
        ready: status.is_some_and(|s| s.ready),
    }
}

/// The observation of a Pod as the cluster reports it.
pub fn observe(pod: &core::Pod) -> PodObservation {
    let meta = &pod.metadata;
    let status = pod.status.as_ref();
    let spec = pod.spec.as_ref();
    let mut containers: Vec<ContainerObservation> = spec
        .map(|s| s.containers.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|c| {
            container(
                &c.name,
                ContainerKind::App,
                status.and_then(|s| s.container_statuses.as_ref()),
            )
        })
        .collect();
    for c in spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten()
    {
        let kind = if c.restart_policy.as_deref() == Some("Always") {
            ContainerKind::Sidecar
        } else {
            ContainerKind::Init
        };
        containers.push(container(
            &c.name,
            kind,
            status.and_then(|s| s.init_container_statuses.as_ref()),
        ));
    }
    let conditions: Vec<PodCondition> = status
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .map(|c| PodCondition {
            type_: c.type_.clone(),
            status: ConditionStatus::from(c.status.as_str()),
            reason: c.reason.clone().unwrap_or_default(),
            last_transition_time: time(c.last_transition_time.as_ref()),
        })
        .collect();
    let phase = match status.and_then(|s| s.phase.as_deref()) {
        Some("Running") => PodPhase::Running,
        Some("Succeeded") => PodPhase::Succeeded,
        Some("Failed") => PodPhase::Failed,
        Some("Unknown") => PodPhase::Unknown,
        _ => PodPhase::Pending,
    };
    let finished_at = matches!(phase, PodPhase::Succeeded | PodPhase::Failed)
        .then(|| {
            containers
                .iter()
                .filter_map(|c| c.terminated().and_then(|t| t.finished_at))
                .max()
        })
        .flatten();
    PodObservation {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        labels: meta.labels.clone().unwrap_or_default(),
        annotations: meta.annotations.clone().unwrap_or_default(),
        phase,
        reason: status.and_then(|s| s.reason.clone()).unwrap_or_default(),
        message: status.and_then(|s| s.message.clone()).unwrap_or_default(),
        ready: conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == ConditionStatus::True),
        containers,
        conditions,
        deleting: meta.deletion_timestamp.is_some(),
        // The API server sets deletionTimestamp to the end of the grace period (when the
        // kubelet may kill); the stop was asked for that grace period earlier.
        deletion_time: time(meta.deletion_timestamp.as_ref()).map(|at| {
            at - chrono::Duration::seconds(meta.deletion_grace_period_seconds.unwrap_or(0))
        }),
        created_at: time(meta.creation_timestamp.as_ref()),
        started_at: time(status.and_then(|s| s.start_time.as_ref())),
        finished_at,
    }
}

/// The executor error kind of an API response status, and whether retrying may help:
/// 404 not found, 409 conflict (already exists), 410 gone (the watch must re-list: retried),
/// 429 too many requests and 5xx retried, 401/403 permission denied, 400/422 invalid.
pub fn error_kind(status: u16) -> (ErrorKind, bool) {
    match status {
        404 => (ErrorKind::NotFound, false),
        409 => (ErrorKind::AlreadyExists, false),
        410 | 429 | 500..=599 => (ErrorKind::Unavailable, true),
        // kube reads any JSON error body as a Status; one without a `code` (a proxy's or
        // gateway's `{"message": …}`) reads as 0 and the HTTP status is lost: most likely an
        // overloaded or restarting server in front of the API, so retried.
        0 => (ErrorKind::Unavailable, true),
        401 | 403 => (ErrorKind::PermissionDenied, false),
        400 | 422 => (ErrorKind::InvalidRequest, false),
        _ => (ErrorKind::Other, false),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use batch_core::executor::JobRef;
    use serde_json::json;

    fn request() -> PodRequest {
        PodRequest {
            name: "pi-3-abcde".to_owned(),
            job: JobRef {
                namespace: String::new(),
                name: "pi".to_owned(),
                uid: "u1".to_owned(),
            },
            index: Some(3),
            labels: BTreeMap::from([
                ("batch.kubernetes.io/job-name".to_owned(), "pi".to_owned()),
                (
                    "batch.kubernetes.io/controller-uid".to_owned(),
                    "u1".to_owned(),
                ),
                (
                    "batch.kubernetes.io/job-completion-index".to_owned(),
                    "3".to_owned(),
                ),
            ]),
            annotations: BTreeMap::from([(
                "batch.kubernetes.io/job-completion-index".to_owned(),
                "3".to_owned(),
            )]),
            hostname: Some("pi-3".to_owned()),
            spec: serde_json::from_value(json!({
                "restartPolicy": "Never",
                "nodeSelector": {"disk": "ssd"},
                "containers": [{
                    "name": "c", "image": "busybox", "command": ["sh", "-c", "exit 3"],
                    "env": [{"name": "JOB_COMPLETION_INDEX", "value": "3"}],
                    "resources": {"limits": {"memory": "64Mi"}}
                }]
            }))
            .unwrap(),
        }
    }

    #[test]
    fn the_pod_carries_the_core_names_labels_env_hostname_and_passed_through_fields() {
        let pod = pod_for(&request(), "team-a").unwrap();
        assert_eq!(pod.metadata.name.as_deref(), Some("pi-3-abcde"));
        assert_eq!(pod.metadata.namespace.as_deref(), Some("team-a"));
        let labels = pod.metadata.labels.as_ref().unwrap();
        assert_eq!(labels["batch.kubernetes.io/controller-uid"], "u1");
        assert_eq!(labels["batch.kubernetes.io/job-completion-index"], "3");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.hostname.as_deref(), Some("pi-3"));
        assert_eq!(spec.node_selector.as_ref().unwrap()["disk"], "ssd");
        let env = spec.containers[0].env.as_ref().unwrap();
        assert_eq!(
            (env[0].name.as_str(), env[0].value.as_deref()),
            ("JOB_COMPLETION_INDEX", Some("3"))
        );
        assert_eq!(
            spec.containers[0]
                .resources
                .as_ref()
                .unwrap()
                .limits
                .as_ref()
                .unwrap()["memory"]
                .0,
            "64Mi"
        );
    }

    #[test]
    fn a_field_the_api_does_not_know_is_refused_by_name() {
        let mut r = request();
        r.spec = serde_json::from_value(json!({
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "bogus": 1}]
        }))
        .unwrap();
        let e = pod_for(&r, "default").unwrap_err();
        assert!(e.contains("spec.containers[0].bogus"), "{e}");
    }

    #[test]
    fn a_reported_pod_becomes_an_observation_with_every_fact() {
        let pod: core::Pod = serde_json::from_value(json!({
            "metadata": {
                "name": "p", "uid": "uid-1", "labels": {"a": "b"},
                "annotations": {"batch.kubernetes.io/job-completion-index": "2"},
                "creationTimestamp": "2026-01-01T00:00:00Z",
                "deletionTimestamp": "2026-01-01T00:00:39Z", "deletionGracePeriodSeconds": 30
            },
            "spec": {
                "restartPolicy": "OnFailure",
                "initContainers": [
                    {"name": "setup", "image": "i"},
                    {"name": "proxy", "image": "i", "restartPolicy": "Always"}
                ],
                "containers": [{"name": "main", "image": "i"}, {"name": "side", "image": "i"}]
            },
            "status": {
                "phase": "Failed",
                "reason": "DeadlineExceeded",
                "message": "too long",
                "startTime": "2026-01-01T00:00:01Z",
                "conditions": [
                    {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager",
                     "lastTransitionTime": "2026-01-01T00:00:08Z"},
                    {"type": "Ready", "status": "False"}
                ],
                "initContainerStatuses": [
                    {"name": "setup", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"terminated": {"exitCode": 0, "reason": "Completed",
                        "startedAt": "2026-01-01T00:00:01Z", "finishedAt": "2026-01-01T00:00:02Z"}}},
                    {"name": "proxy", "image": "i", "imageID": "", "ready": true, "restartCount": 0,
                     "state": {"running": {"startedAt": "2026-01-01T00:00:02Z"}}}
                ],
                "containerStatuses": [
                    {"name": "main", "image": "i", "imageID": "", "ready": false, "restartCount": 2,
                     "state": {"terminated": {"exitCode": 137, "signal": 9, "reason": "OOMKilled",
                        "startedAt": "2026-01-01T00:00:05Z", "finishedAt": "2026-01-01T00:00:07Z"}},
                     "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}},
                    {"name": "side", "image": "i", "imageID": "", "ready": false, "restartCount": 0,
                     "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}
                ]
            }
        }))
        .unwrap();
        let obs = observe(&pod);
        assert_eq!((obs.name.as_str(), obs.uid.as_str()), ("p", "uid-1"));
        assert_eq!(obs.phase, PodPhase::Failed);
        assert_eq!(obs.reason, "DeadlineExceeded");
        assert!(obs.deleting);
        assert_eq!(
            obs.deletion_time.unwrap().to_rfc3339(),
            "2026-01-01T00:00:09+00:00"
        );
        assert_eq!(
            obs.started_at.unwrap().to_rfc3339(),
            "2026-01-01T00:00:01+00:00"
        );
        assert_eq!(
            obs.finished_at.unwrap().to_rfc3339(),
            "2026-01-01T00:00:07+00:00"
        );
        let names: Vec<_> = obs
            .containers
            .iter()
            .map(|c| (c.name.as_str(), c.kind))
            .collect();
        assert_eq!(
            names,
            [
                ("main", ContainerKind::App),
                ("side", ContainerKind::App),
                ("setup", ContainerKind::Init),
                ("proxy", ContainerKind::Sidecar)
            ]
        );
        let main = &obs.containers[0];
        let t = main.terminated().unwrap();
        assert_eq!(
            (t.exit_code, t.signal, t.reason.as_str()),
            (137, Some(9), "OOMKilled")
        );
        assert_eq!(main.restart_count, 2);
        assert_eq!(main.last_state.as_ref().unwrap().exit_code, 1);
        assert_eq!(
            obs.containers[1].state,
            ContainerRunState::Waiting {
                reason: "CrashLoopBackOff".to_owned(),
                message: "back-off".to_owned()
            }
        );
        assert!(obs.containers[3].ready);
        assert!(!obs.ready);
        let disruption = &obs.conditions[0];
        assert_eq!(
            (
                disruption.type_.as_str(),
                disruption.status.clone(),
                disruption.reason.as_str()
            ),
            (
                "DisruptionTarget",
                ConditionStatus::True,
                "DeletionByTaintManager"
            )
        );
        // The Job machine reads the index from the annotation.
        assert_eq!(obs.to_observed_pod(false).index.as_deref(), Some("2"));
    }

    #[test]
    fn a_pod_with_no_status_yet_is_pending_with_waiting_containers() {
        let pod: core::Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "main", "image": "i"}]}
        }))
        .unwrap();
        let obs = observe(&pod);
        assert_eq!(obs.phase, PodPhase::Pending);
        assert_eq!(obs.containers[0].state, ContainerRunState::default());
        assert!(!obs.deleting && obs.finished_at.is_none());
    }

    #[test]
    fn api_statuses_map_to_error_kinds_and_retries() {
        assert_eq!(error_kind(404), (ErrorKind::NotFound, false));
        assert_eq!(error_kind(409), (ErrorKind::AlreadyExists, false));
        for retried in [410, 429, 500, 503, 504] {
            assert_eq!(
                error_kind(retried),
                (ErrorKind::Unavailable, true),
                "{retried}"
            );
        }
        assert_eq!(error_kind(403), (ErrorKind::PermissionDenied, false));
        assert_eq!(error_kind(422), (ErrorKind::InvalidRequest, false));
        assert_eq!(error_kind(418), (ErrorKind::Other, false));
    }
}
