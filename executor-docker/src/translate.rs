//! Pure translation: a [`PodRequest`] → the engine objects of its pod (container bodies,
//! volumes, downward API files), their names and labels, and the template check of
//! [`Executor::check_template`](batch_core::executor::Executor::check_template).
//!
//! Nothing here talks to the engine.

use std::collections::HashMap;

use batch_core::executor::{ContainerKind, PodRequest, expand_vars};
use batch_core::model::{
    Container, ContainerRestartPolicy, PodTemplateSpec, PullPolicy, RestartPolicy,
};
use batch_core::validation::{FieldError, FieldPath, ValidationErrors};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountTypeEnum};

use crate::config::DockerExecutorConfig;

/// Label on every object of the executor: its [instance](DockerExecutorConfig::instance).
pub(crate) const EXECUTOR_LABEL: &str = "batch.executor";
/// Label on every object of a pod: the pod's name.
pub(crate) const POD_LABEL: &str = "batch.pod";
/// Label on a container: the pod's container name.
pub(crate) const CONTAINER_LABEL: &str = "batch.container";
/// Label on a container: its run (0 for the first, +1 for each in-place restart).
pub(crate) const ATTEMPT_LABEL: &str = "batch.attempt";
/// Label on the pod's record volume: what it is (`record`, `deleting`, `volume`).
pub(crate) const ROLE_LABEL: &str = "batch.role";
/// Label on the pod's record volume: the request (JSON).
pub(crate) const REQUEST_LABEL: &str = "batch.request";
/// Label on the pod's record volume: when the pod was accepted (RFC 3339).
pub(crate) const CREATED_LABEL: &str = "batch.created";
/// Label on the deletion marker: the grace period in milliseconds (empty: the pod's).
pub(crate) const GRACE_LABEL: &str = "batch.grace-millis";

/// The pod's record: a volume holding nothing, whose labels hold the request.
pub(crate) fn record_volume(pod: &str) -> String {
    format!("{pod}_pod")
}

/// The marker of a deletion (so that every executor on the engine sees it).
pub(crate) fn deleting_volume(pod: &str) -> String {
    format!("{pod}_deleting")
}

/// The engine volume of a pod volume.
pub(crate) fn pod_volume(pod: &str, volume: &str) -> String {
    format!("{pod}_v_{volume}")
}

/// The engine container of a pod container's run `attempt`. `_` is not allowed in pod or
/// container names, so names never collide.
pub(crate) fn container_name(pod: &str, container: &str, attempt: u32) -> String {
    format!("{pod}_{container}_{attempt}")
}

/// Everything needed to run one pod.
#[derive(Debug, Clone)]
pub(crate) struct PodPlan {
    /// Init containers (regular and sidecars), in template order.
    pub(crate) init: Vec<ContainerPlan>,
    /// App containers, in template order.
    pub(crate) apps: Vec<ContainerPlan>,
    /// The pod's `restartPolicy`.
    pub(crate) restart_policy: RestartPolicy,
    /// `activeDeadlineSeconds`.
    pub(crate) active_deadline: Option<chrono::Duration>,
    /// `terminationGracePeriodSeconds` (30 s by default).
    pub(crate) grace: chrono::Duration,
    /// The engine volumes to create before the first container.
    pub(crate) volumes: Vec<VolumePlan>,
}

impl PodPlan {
    /// Every container with its slot in the observation: apps, then init containers.
    pub(crate) fn slots(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.apps.iter().chain(self.init.iter())
    }
}

/// One container of the pod.
#[derive(Debug, Clone)]
pub(crate) struct ContainerPlan {
    /// Its name in the pod.
    pub(crate) name: String,
    /// App, init or sidecar.
    pub(crate) kind: ContainerKind,
    /// The image.
    pub(crate) image: String,
    /// `imagePullPolicy` (defaulted from the tag when absent).
    pub(crate) pull: PullPolicy,
    /// The engine container to create (without name and run label), or why it cannot
    /// start.
    pub(crate) body: Result<ContainerCreateBody, String>,
    /// Downward API volumes it mounts: (engine volume, mount path).
    pub(crate) downward_mounts: Vec<(String, String)>,
}

/// An engine volume of the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VolumePlan {
    /// The engine volume's name.
    pub(crate) name: String,
    /// For a downward API volume, its files (relative path, content).
    pub(crate) files: Option<Vec<(String, String)>>,
}

/// Translates a request.
pub(crate) fn plan(pod: &PodRequest, config: &DockerExecutorConfig) -> PodPlan {
    let hostname = pod.hostname.clone().unwrap_or_else(|| pod.name.clone());
    let container = |c: &Container, kind: ContainerKind| {
        let downward_mounts = c
            .volume_mounts
            .iter()
            .filter(|m| {
                pod.spec
                    .volumes
                    .iter()
                    .any(|v| v.name == m.name && v.downward_api.is_some())
            })
            .map(|m| (pod_volume(&pod.name, &m.name), m.mount_path.clone()))
            .collect();
        ContainerPlan {
            name: c.name.clone(),
            kind,
            image: c.image.clone(),
            pull: c
                .image_pull_policy
                .clone()
                .unwrap_or_else(|| batch_core::defaults::default_pull_policy(&c.image)),
            body: body(pod, c, &hostname, config),
            downward_mounts,
        }
    };
    let init = pod
        .spec
        .init_containers
        .iter()
        .map(|c| {
            let kind = if c.restart_policy == Some(ContainerRestartPolicy::Always) {
                ContainerKind::Sidecar
            } else {
                ContainerKind::Init
            };
            container(c, kind)
        })
        .collect();
    let apps = pod
        .spec
        .containers
        .iter()
        .map(|c| container(c, ContainerKind::App))
        .collect();
    let volumes = pod
        .spec
        .volumes
        .iter()
        .filter(|v| v.host_path.is_none())
        .map(|v| VolumePlan {
            name: pod_volume(&pod.name, &v.name),
            files: v.downward_api.as_ref().map(|d| {
                d.items
                    .iter()
                    .filter_map(|item| {
                        let f = item.field_ref.as_ref()?;
                        let value = pod.field_ref(&f.field_path).ok()?;
                        Some((item.path.clone(), value))
                    })
                    .collect()
            }),
        })
        .collect();
    PodPlan {
        init,
        apps,
        restart_policy: pod.spec.restart_policy.clone(),
        active_deadline: pod
            .spec
            .active_deadline_seconds
            .and_then(|s| chrono::Duration::try_seconds(s.max(0))),
        grace: pod.termination_grace_period(),
        volumes,
    }
}

/// The engine container of one pod container: `command` replaces the image's entrypoint
/// and `args` its cmd, as Kubernetes does (a `command` without `args` runs without the
/// image's cmd).
fn body(
    pod: &PodRequest,
    c: &Container,
    hostname: &str,
    config: &DockerExecutorConfig,
) -> Result<ContainerCreateBody, String> {
    let vars = pod
        .container_env(c)
        .map_err(|message| format!("container {:?}: {message}", c.name))?;
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let expand = |list: &[String]| -> Option<Vec<String>> {
        (!list.is_empty()).then(|| list.iter().map(|s| expand_vars(s, lookup)).collect())
    };
    let entrypoint = expand(&c.command);
    // With an entrypoint set and no cmd, the engine runs the entrypoint alone (the image's
    // cmd is dropped), as the kubelet does.
    let cmd = expand(&c.args);
    let limits = c.resources.as_ref().map(|r| &r.limits);
    let memory = match limits.and_then(|l| l.get("memory")) {
        Some(q) => Some(
            q.value()
                .ok()
                .and_then(|v| i64::try_from(v).ok())
                .ok_or_else(|| format!("container {:?}: memory limit {:?}", c.name, q.0))?,
        ),
        None => None,
    };
    let nano_cpus = match limits.and_then(|l| l.get("cpu")) {
        Some(q) => Some(
            q.milli_value()
                .ok()
                .and_then(|v| i64::try_from(v).ok())
                .and_then(|v| v.checked_mul(1_000_000))
                .ok_or_else(|| format!("container {:?}: cpu limit {:?}", c.name, q.0))?,
        ),
        None => None,
    };
    let mut mounts = Vec::new();
    for m in &c.volume_mounts {
        let Some(v) = pod.spec.volumes.iter().find(|v| v.name == m.name) else {
            return Err(format!(
                "container {:?}: volume mount {:?}: no volume of that name",
                c.name, m.name
            ));
        };
        let (typ, source) = match &v.host_path {
            Some(h) => (MountTypeEnum::BIND, h.path.clone()),
            None => (MountTypeEnum::VOLUME, pod_volume(&pod.name, &v.name)),
        };
        mounts.push(Mount {
            target: Some(m.mount_path.clone()),
            source: Some(source),
            typ: Some(typ),
            // Downward API files are written into the volume through the container after it
            // is created (the engine refuses that on a read-only mount).
            read_only: Some(m.read_only == Some(true) && v.downward_api.is_none()),
            ..Mount::default()
        });
    }
    // `none`: the container gets a network namespace with only its loopback, made by the
    // runtime, and the engine's network stack is not involved at all (no sandbox, no
    // endpoint). Besides costing less per container, that keeps clear of a deadlock in the
    // network stack of Docker 20.10 before 20.10.27 (Debian 12 ships 20.10.24): two
    // containers on one network that end at the same moment can hang the whole engine
    // (moby/moby#46661). See docs/decisions/0008.
    let no_network = config.network == "none";
    Ok(ContainerCreateBody {
        hostname: Some(hostname.chars().take(63).collect()),
        network_disabled: no_network.then_some(true),
        image: Some(c.image.clone()),
        entrypoint,
        cmd,
        env: Some(vars.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        working_dir: c.working_dir.clone().filter(|w| !w.is_empty()),
        host_config: Some(HostConfig {
            memory,
            // No swap: the limit is the container's memory, as on a node without swap.
            memory_swap: memory,
            nano_cpus,
            network_mode: Some(config.network.clone()),
            init: Some(config.init),
            mounts: Some(mounts),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    })
}

/// The labels of a container of `pod`.
pub(crate) fn container_labels(
    instance: &str,
    pod: &str,
    container: &str,
    attempt: u32,
) -> HashMap<String, String> {
    HashMap::from([
        (EXECUTOR_LABEL.to_owned(), instance.to_owned()),
        (POD_LABEL.to_owned(), pod.to_owned()),
        (CONTAINER_LABEL.to_owned(), container.to_owned()),
        (ATTEMPT_LABEL.to_owned(), attempt.to_string()),
    ])
}

/// A tar archive of downward API files, to unpack at the mount point.
pub(crate) fn files_archive(files: &[(String, String)]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        builder.append_data(&mut header, path, content.as_bytes())?;
    }
    builder.into_inner()
}

/// Resource limits the Docker executor honours (`ephemeral-storage` is accepted and not
/// enforced).
const KNOWN_LIMITS: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// The template check: every field the Docker executor cannot honour.
pub(crate) fn check_template(
    template: &PodTemplateSpec,
    config: &DockerExecutorConfig,
) -> Result<(), ValidationErrors> {
    let mut errors = Vec::new();
    let spec_path = FieldPath::new("template").child("spec");
    let spec = &template.spec;
    for (i, v) in spec.volumes.iter().enumerate() {
        let path = spec_path.child("volumes").index(i);
        let typed = v.empty_dir.is_some() || v.host_path.is_some() || v.downward_api.is_some();
        if !typed || !v.extra.is_empty() {
            errors.push(FieldError::forbidden(
                path.clone(),
                format!(
                    "volume {:?}: the Docker executor supports only emptyDir, downwardAPI and \
                     (when its configuration allows them) hostPath volumes",
                    v.name
                ),
            ));
        }
        if v.host_path.is_some() && !config.allow_host_path {
            errors.push(FieldError::forbidden(
                path.child("hostPath"),
                "hostPath volumes are not allowed by the Docker executor's configuration \
                 (DockerExecutorConfig::allow_host_path)",
            ));
        }
        if let Some(d) = &v.downward_api {
            for (j, item) in d.items.iter().enumerate() {
                let item_path = path.child("downwardAPI").child("items").index(j);
                match &item.field_ref {
                    Some(f) if probe().field_ref(&f.field_path).is_err() => {
                        errors.push(FieldError::forbidden(
                            item_path.child("fieldRef").child("fieldPath"),
                            format!("unsupported fieldRef path {:?}", f.field_path),
                        ));
                    }
                    Some(_) => {}
                    None => errors.push(FieldError::forbidden(
                        item_path,
                        "only fieldRef items are supported by the Docker executor",
                    )),
                }
            }
        }
    }
    let lists = [
        ("initContainers", &spec.init_containers),
        ("containers", &spec.containers),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            let path = spec_path.child(list).index(i);
            check_container(c, &path, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

/// A pod to resolve field paths against (only whether a path resolves matters).
fn probe() -> PodRequest {
    PodRequest {
        name: String::new(),
        job: batch_core::executor::JobRef {
            namespace: String::new(),
            name: String::new(),
            uid: String::new(),
        },
        index: None,
        labels: Default::default(),
        annotations: Default::default(),
        hostname: None,
        spec: Default::default(),
    }
}

fn check_container(c: &Container, path: &FieldPath, errors: &mut Vec<FieldError>) {
    for (j, e) in c.env.iter().enumerate() {
        let Some(from) = &e.value_from else { continue };
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            continue;
        }
        let from_path = path.child("env").index(j).child("valueFrom");
        let resolvable = from.extra.is_empty()
            && from
                .field_ref
                .as_ref()
                .is_some_and(|f| probe().field_ref(&f.field_path).is_ok());
        if !resolvable {
            errors.push(FieldError::forbidden(
                from_path,
                "the Docker executor resolves only valueFrom.fieldRef of the pod's name, \
                 namespace, uid, labels and annotations (no secrets, config maps or resource \
                 fields)",
            ));
        }
    }
    if let Some(r) = &c.resources {
        for (name, q) in &r.limits {
            let limit_path = path.child("resources").child("limits").key(name);
            if !KNOWN_LIMITS.contains(&name.as_str()) {
                errors.push(FieldError::not_supported(
                    limit_path,
                    name.as_str(),
                    KNOWN_LIMITS,
                ));
            } else if name == "memory"
                && let Err(e) = q.value()
            {
                errors.push(FieldError::invalid(limit_path, q.0.as_str(), e));
            } else if name == "cpu"
                && let Err(e) = q.milli_value()
            {
                errors.push(FieldError::invalid(limit_path, q.0.as_str(), e));
            }
        }
    }
    for (j, m) in c.volume_mounts.iter().enumerate() {
        if m.sub_path.as_deref().is_some_and(|s| !s.is_empty()) {
            errors.push(FieldError::forbidden(
                path.child("volumeMounts").index(j).child("subPath"),
                "subPath needs Docker Engine API 1.45; the Docker executor mounts whole \
                 volumes",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn request(yaml: &str) -> PodRequest {
        PodRequest {
            name: "pod-1".to_owned(),
            job: batch_core::executor::JobRef {
                namespace: String::new(),
                name: "j".to_owned(),
                uid: "u".to_owned(),
            },
            index: Some(2),
            labels: Default::default(),
            annotations: [(
                "batch.kubernetes.io/job-completion-index".to_owned(),
                "2".to_owned(),
            )]
            .into(),
            hostname: Some("j-2".to_owned()),
            spec: serde_norway::from_str(yaml).unwrap(),
        }
    }

    fn template(yaml: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            spec: serde_norway::from_str(yaml).unwrap(),
            ..PodTemplateSpec::default()
        }
    }

    #[test]
    fn command_replaces_the_entrypoint_and_args_the_cmd_after_expansion() {
        let r = request(
            "containers:
- name: a
  image: busybox
  command: [sh, -c, 'echo $$HOME $(N)']
  env: [{name: N, value: n1}]
  resources: {limits: {memory: 64Mi, cpu: 500m}}
- name: b
  image: busybox
  args: [x, $(MISSING)]",
        );
        let p = plan(&r, &DockerExecutorConfig::default());
        let a = p.apps[0].body.as_ref().unwrap();
        assert_eq!(
            a.entrypoint.as_deref(),
            Some(&["sh".to_owned(), "-c".to_owned(), "echo $HOME n1".to_owned()][..])
        );
        assert_eq!(a.cmd, None, "a command alone drops the image's cmd");
        assert_eq!(a.hostname.as_deref(), Some("j-2"));
        let host = a.host_config.as_ref().unwrap();
        assert_eq!(
            (host.memory, host.memory_swap),
            (Some(64 << 20), Some(64 << 20))
        );
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.network_mode.as_deref(), Some("none"));
        assert_eq!(
            a.network_disabled,
            Some(true),
            "no engine network stack for `none`"
        );
        assert!(a.env.as_ref().unwrap().contains(&"N=n1".to_owned()));
        let b = p.apps[1].body.as_ref().unwrap();
        assert_eq!(b.entrypoint, None, "the image's entrypoint stays");
        assert_eq!(b.cmd, Some(vec!["x".to_owned(), "$(MISSING)".to_owned()]));
        assert_eq!(p.apps[1].pull, PullPolicy::Always, "defaulted from the tag");
    }

    #[test]
    fn volumes_become_engine_volumes_and_downward_files() {
        let r = request(
            "volumes:
- {name: scratch, emptyDir: {}}
- name: info
  downwardAPI: {items: [{path: idx, fieldRef: {fieldPath: \"metadata.annotations['batch.kubernetes.io/job-completion-index']\"}}]}
containers:
- name: a
  image: busybox
  volumeMounts: [{name: scratch, mountPath: /s}, {name: info, mountPath: /info, readOnly: true}]",
        );
        let p = plan(&r, &DockerExecutorConfig::default());
        assert_eq!(
            p.volumes,
            vec![
                VolumePlan {
                    name: "pod-1_v_scratch".to_owned(),
                    files: None
                },
                VolumePlan {
                    name: "pod-1_v_info".to_owned(),
                    files: Some(vec![("idx".to_owned(), "2".to_owned())]),
                },
            ]
        );
        assert_eq!(
            p.apps[0].downward_mounts,
            vec![("pod-1_v_info".to_owned(), "/info".to_owned())]
        );
        let mounts = p.apps[0]
            .body
            .as_ref()
            .unwrap()
            .host_config
            .as_ref()
            .unwrap()
            .mounts
            .clone()
            .unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("pod-1_v_scratch"));
        assert_eq!(
            mounts[1].read_only,
            Some(false),
            "written through the container"
        );
        let archive = files_archive(&[("idx".to_owned(), "2".to_owned())]).unwrap();
        let mut tar = tar::Archive::new(&archive[..]);
        let entry = tar.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("idx"));
    }

    #[test]
    fn check_template_names_every_field_it_cannot_honour() {
        let bad = template(
            "volumes:
- {name: cfg, configMap: {name: x}}
- {name: host, hostPath: {path: /etc}}
containers:
- name: a
  image: busybox
  env: [{name: S, valueFrom: {secretKeyRef: {name: s, key: k}}}]
  resources: {limits: {nvidia.com/gpu: 1, memory: lots}}
  volumeMounts: [{name: host, mountPath: /h, subPath: x}]",
        );
        let errors = check_template(&bad, &DockerExecutorConfig::default()).unwrap_err();
        let paths: Vec<String> = errors.0.iter().map(|e| e.path.to_string()).collect();
        for want in [
            "template.spec.volumes[0]",
            "template.spec.volumes[1].hostPath",
            "template.spec.containers[0].env[0].valueFrom",
            "template.spec.containers[0].resources.limits[nvidia.com/gpu]",
            "template.spec.containers[0].resources.limits[memory]",
            "template.spec.containers[0].volumeMounts[0].subPath",
        ] {
            assert!(
                paths.iter().any(|p| p == want),
                "{want} missing from {paths:?}"
            );
        }
        let allowed = DockerExecutorConfig {
            allow_host_path: true,
            ..DockerExecutorConfig::default()
        };
        let host = template(
            "volumes: [{name: h, hostPath: {path: /tmp}}]\ncontainers: [{name: a, image: busybox, volumeMounts: [{name: h, mountPath: /h}]}]",
        );
        assert!(check_template(&host, &allowed).is_ok());
        assert!(check_template(&host, &DockerExecutorConfig::default()).is_err());
    }
}
