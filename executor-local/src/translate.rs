//! Pure translation: a [`PodRequest`] → what to run (argv after `$(VAR)` expansion, env,
//! working directory, memory limit) and the template check of
//! [`Executor::check_template`](batch_core::executor::Executor::check_template).
//!
//! Nothing here touches the filesystem or starts a process.

use std::path::{Path, PathBuf};

use batch_core::executor::{ContainerKind, PodRequest, expand_vars};
use batch_core::model::{Container, ContainerRestartPolicy, PodTemplateSpec, RestartPolicy};
use batch_core::validation::{FieldError, FieldPath, ValidationErrors};

/// Exit code reported when a container's executable does not exist (as a shell reports it).
pub(crate) const EXIT_NOT_FOUND: i32 = 127;
/// Exit code reported when a container's executable cannot be executed.
pub(crate) const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code reported for any other failure to start (as containerd reports `StartError`).
pub(crate) const EXIT_START_FAILED: i32 = 128;

/// Everything needed to run one pod.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PodPlan {
    /// Init containers (regular and sidecars), in template order.
    pub(crate) init: Vec<ContainerPlan>,
    /// App containers, in template order.
    pub(crate) apps: Vec<ContainerPlan>,
    /// The pod's `restartPolicy`.
    pub(crate) restart_policy: RestartPolicy,
    /// `activeDeadlineSeconds`.
    pub(crate) active_deadline: Option<chrono::Duration>,
    /// Volumes to materialise before the first container starts.
    pub(crate) volumes: Vec<VolumePlan>,
}

impl PodPlan {
    /// The index of the `i`th init container in [`PodObservation::containers`]
    /// (app containers come first).
    ///
    /// [`PodObservation::containers`]: batch_core::executor::PodObservation::containers
    pub(crate) fn init_slot(&self, i: usize) -> usize {
        self.apps.len() + i
    }

    /// Every container with its slot in the observation: apps, then init containers.
    pub(crate) fn slots(&self) -> impl Iterator<Item = &ContainerPlan> {
        self.apps.iter().chain(self.init.iter())
    }
}

/// One container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ContainerPlan {
    /// Its name.
    pub(crate) name: String,
    /// App, init or sidecar.
    pub(crate) kind: ContainerKind,
    /// How to start it, or why it cannot start.
    pub(crate) launch: Result<Launch, StartProblem>,
}

/// A process to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// Program and arguments (never empty).
    pub(crate) argv: Vec<String>,
    /// Variables set on top of the executor's own environment, in order.
    pub(crate) env: Vec<(String, String)>,
    /// The working directory.
    pub(crate) working_dir: PathBuf,
    /// `resources.limits.memory` in bytes.
    pub(crate) memory_limit: Option<u64>,
}

/// Why a container cannot start: it ends as `StartError` with this exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StartProblem {
    /// The exit code to report.
    pub(crate) exit_code: i32,
    /// The message to report.
    pub(crate) message: String,
}

/// A volume to create in the pod's directory (or on the host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumePlan {
    /// An empty directory.
    Dir(PathBuf),
    /// A directory holding downward API files (relative path, content).
    Files(PathBuf, Vec<(PathBuf, String)>),
    /// A host directory to create (`hostPath` of type `DirectoryOrCreate`).
    HostDir(PathBuf),
}

/// Translates a request. `pod_dir` is the pod's directory: the scratch directory (the
/// default working directory) is `pod_dir/scratch`, volumes are under `pod_dir/volumes`.
pub(crate) fn plan(pod: &PodRequest, pod_dir: &Path) -> PodPlan {
    let scratch = pod_dir.join("scratch");
    let hostname = pod.hostname.clone().unwrap_or_else(|| pod.name.clone());
    let container = |c: &Container, kind: ContainerKind| ContainerPlan {
        name: c.name.clone(),
        kind,
        launch: launch(pod, c, &scratch, &hostname),
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
        .filter_map(|v| {
            let dir = pod_dir.join("volumes").join(&v.name);
            if let Some(d) = &v.downward_api {
                let files = d
                    .items
                    .iter()
                    .filter_map(|item| {
                        let f = item.field_ref.as_ref()?;
                        let value = pod.field_ref(&f.field_path).ok()?;
                        Some((PathBuf::from(&item.path), value))
                    })
                    .collect();
                Some(VolumePlan::Files(dir, files))
            } else if let Some(h) = &v.host_path {
                (h.type_.as_deref() == Some("DirectoryOrCreate"))
                    .then(|| VolumePlan::HostDir(PathBuf::from(&h.path)))
            } else {
                Some(VolumePlan::Dir(dir))
            }
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
        volumes,
    }
}

fn launch(
    pod: &PodRequest,
    c: &Container,
    scratch: &Path,
    hostname: &str,
) -> Result<Launch, StartProblem> {
    let vars = pod.container_env(c).map_err(|message| StartProblem {
        exit_code: EXIT_START_FAILED,
        message: format!("container {:?}: {message}", c.name),
    })?;
    let lookup = |name: &str| {
        vars.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let argv: Vec<String> = c
        .command
        .iter()
        .chain(c.args.iter())
        .map(|s| expand_vars(s, lookup))
        .collect();
    if c.command.is_empty() {
        return Err(StartProblem {
            exit_code: EXIT_NOT_FOUND,
            message: format!(
                "container {:?} has no command: the local executor runs command and args \
                 directly and has no image entrypoint to fall back on (image {:?} is not used)",
                c.name, c.image
            ),
        });
    }
    let memory_limit = match c.resources.as_ref().and_then(|r| r.limits.get("memory")) {
        Some(q) => Some(q.value().map_err(|e| StartProblem {
            exit_code: EXIT_START_FAILED,
            message: format!("container {:?}: memory limit {:?}: {e}", c.name, q.0),
        })?),
        None => None,
    };
    let working_dir = match c.working_dir.as_deref() {
        Some(wd) if !wd.is_empty() => scratch.join(wd),
        _ => scratch.to_path_buf(),
    };
    let mut env = Vec::with_capacity(vars.len() + 1);
    env.push(("HOSTNAME".to_owned(), hostname.to_owned()));
    env.extend(vars);
    Ok(Launch {
        argv,
        env,
        working_dir,
        memory_limit,
    })
}

/// Resource limits the local executor accepts (`cpu` and `ephemeral-storage` are accepted
/// and not enforced).
const KNOWN_LIMITS: &[&str] = &["cpu", "memory", "ephemeral-storage"];

/// Why a volume mount is refused.
const NO_MOUNTS: &str = "local pods share the host filesystem (there is no mount namespace): \
     only a hostPath volume mounted at its own path, without subPath or readOnly, can be \
     honoured";

/// The template check: every field the local executor cannot honour.
pub(crate) fn check_template(template: &PodTemplateSpec) -> Result<(), ValidationErrors> {
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
                    "volume {:?}: the local executor supports only emptyDir, hostPath and \
                     downwardAPI volumes",
                    v.name
                ),
            ));
        }
        if let Some(d) = &v.downward_api {
            for (j, item) in d.items.iter().enumerate() {
                let item_path = path.child("downwardAPI").child("items").index(j);
                match &item.field_ref {
                    Some(f) => check_field_ref(&f.field_path, &item_path, &mut errors),
                    None => errors.push(FieldError::forbidden(
                        item_path,
                        "only fieldRef items are supported by the local executor",
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
            check_container(template, c, &path, &mut errors);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationErrors(errors))
    }
}

fn check_container(
    template: &PodTemplateSpec,
    c: &Container,
    path: &FieldPath,
    errors: &mut Vec<FieldError>,
) {
    for (j, e) in c.env.iter().enumerate() {
        let Some(from) = &e.value_from else { continue };
        if e.value.as_deref().is_some_and(|v| !v.is_empty()) {
            continue;
        }
        let from_path = path.child("env").index(j).child("valueFrom");
        match &from.field_ref {
            Some(f) if from.extra.is_empty() => {
                check_field_ref(&f.field_path, &from_path.child("fieldRef"), errors);
            }
            _ => errors.push(FieldError::forbidden(
                from_path,
                "the local executor resolves only valueFrom.fieldRef (no secrets, config \
                 maps or resource fields)",
            )),
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
            }
        }
    }
    for (j, m) in c.volume_mounts.iter().enumerate() {
        let identity = template.spec.volumes.iter().any(|v| {
            v.name == m.name
                && v.host_path
                    .as_ref()
                    .is_some_and(|h| same_path(&h.path, &m.mount_path))
        });
        let plain = m.sub_path.as_deref().is_none_or(str::is_empty) && m.read_only != Some(true);
        if !(identity && plain) {
            errors.push(FieldError::forbidden(
                path.child("volumeMounts").index(j),
                NO_MOUNTS,
            ));
        }
    }
}

fn same_path(a: &str, b: &str) -> bool {
    Path::new(a).components().eq(Path::new(b).components())
}

fn check_field_ref(field_path: &str, path: &FieldPath, errors: &mut Vec<FieldError>) {
    let probe = PodRequest {
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
    };
    if let Err(e) = probe.field_ref(field_path) {
        errors.push(FieldError::invalid(
            path.child("fieldPath"),
            field_path,
            format!("the local executor cannot resolve it: {e}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::collections::BTreeMap;

    fn pod(yaml: &str) -> PodRequest {
        let spec = spec_from_json(yaml);
        PodRequest {
            name: "p-1".into(),
            job: batch_core::executor::JobRef {
                namespace: "ns".into(),
                name: "p".into(),
                uid: "u".into(),
            },
            index: Some(3),
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([(
                "batch.kubernetes.io/job-completion-index".to_owned(),
                "3".to_owned(),
            )]),
            hostname: None,
            spec,
        }
    }

    fn spec_from_json(json: &str) -> batch_core::model::PodSpec {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn argv_and_env_are_expanded_in_order() {
        let p = pod(
            r#"{"restartPolicy": "Never", "containers": [{"name": "main", "image": "x",
            "command": ["sh", "-c"], "args": ["echo $(GREETING) $$(HOME) $(NOPE)"],
            "workingDir": "/tmp",
            "env": [{"name": "NAME", "value": "world"},
                    {"name": "GREETING", "value": "hello $(NAME)"},
                    {"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
                    {"name": "NAME", "value": "again"}]}]}"#,
        );
        let plan = plan(&p, Path::new("/pods/p-1"));
        let l = plan.apps[0].launch.as_ref().unwrap();
        assert_eq!(l.argv, ["sh", "-c", "echo hello world $(HOME) $(NOPE)"]);
        assert_eq!(
            l.env,
            [
                ("HOSTNAME".to_owned(), "p-1".to_owned()),
                ("NAME".to_owned(), "again".to_owned()),
                ("GREETING".to_owned(), "hello world".to_owned()),
                ("IDX".to_owned(), "3".to_owned()),
            ]
        );
        assert_eq!(l.working_dir, Path::new("/tmp"));
        assert_eq!(l.memory_limit, None);
    }

    #[test]
    fn default_working_dir_is_the_scratch_dir_and_limits_are_parsed() {
        let p = pod(r#"{"containers": [{"name": "main", "command": ["true"],
            "resources": {"limits": {"memory": "64Mi", "cpu": "1"}}}]}"#);
        let plan = plan(&p, Path::new("/pods/p-1"));
        let l = plan.apps[0].launch.as_ref().unwrap();
        assert_eq!(l.working_dir, Path::new("/pods/p-1/scratch"));
        assert_eq!(l.memory_limit, Some(64 << 20));
    }

    #[test]
    fn a_container_without_command_cannot_start() {
        let p = pod(r#"{"containers": [{"name": "main", "image": "busybox", "args": ["x"]}]}"#);
        let plan = plan(&p, Path::new("/p"));
        let e = plan.apps[0].launch.as_ref().unwrap_err();
        assert_eq!(e.exit_code, EXIT_NOT_FOUND);
        assert!(e.message.contains("no command"), "{}", e.message);
        assert!(e.message.contains("\"main\""), "{}", e.message);
    }

    #[test]
    fn init_containers_with_restart_policy_always_are_sidecars() {
        let p = pod(r#"{"initContainers": [
                {"name": "a", "command": ["true"]},
                {"name": "s", "command": ["sleep", "9"], "restartPolicy": "Always"}],
            "containers": [{"name": "main", "command": ["true"]}]}"#);
        let plan = plan(&p, Path::new("/p"));
        assert_eq!(plan.init[0].kind, ContainerKind::Init);
        assert_eq!(plan.init[1].kind, ContainerKind::Sidecar);
        assert_eq!(plan.init_slot(1), 2);
        let names: Vec<_> = plan.slots().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["main", "a", "s"]);
    }

    fn template(json: &str) -> PodTemplateSpec {
        serde_json::from_str(json).unwrap()
    }

    fn paths(r: Result<(), ValidationErrors>) -> Vec<String> {
        match r {
            Ok(()) => Vec::new(),
            Err(e) => e.iter().map(|e| e.path.to_string()).collect(),
        }
    }

    #[test]
    fn check_template_accepts_what_it_can_honour() {
        let t = template(
            r#"{"spec": {"restartPolicy": "Never",
            "volumes": [{"name": "s", "emptyDir": {}}, {"name": "h", "hostPath": {"path": "/tmp"}},
                        {"name": "d", "downwardAPI": {"items": [{"path": "l", "fieldRef": {"fieldPath": "metadata.labels"}}]}}],
            "containers": [{"name": "main", "command": ["true"],
                "resources": {"limits": {"memory": "1Gi", "cpu": "2"}},
                "volumeMounts": [{"name": "h", "mountPath": "/tmp/"}],
                "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}]}}"#,
        );
        assert_eq!(paths(check_template(&t)), Vec::<String>::new());
    }

    #[test]
    fn check_template_rejects_what_it_cannot_honour() {
        let t = template(
            r#"{"spec": {"restartPolicy": "Never",
            "volumes": [{"name": "n", "nfs": {"server": "x", "path": "/"}},
                        {"name": "e", "emptyDir": {}}],
            "initContainers": [{"name": "i", "command": ["true"],
                "env": [{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]}],
            "containers": [{"name": "main", "command": ["true"],
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
                "volumeMounts": [{"name": "e", "mountPath": "/data"}],
                "env": [{"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]}]}}"#,
        );
        assert_eq!(
            paths(check_template(&t)),
            [
                "template.spec.volumes[0]",
                "template.spec.initContainers[0].env[0].valueFrom",
                "template.spec.containers[0].env[0].valueFrom.fieldRef.fieldPath",
                "template.spec.containers[0].resources.limits[nvidia.com/gpu]",
                "template.spec.containers[0].volumeMounts[0]",
            ]
        );
    }
}
