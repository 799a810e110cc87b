//! The pod template of a Job: typed where the core and the executors read it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{ObjectMeta, k8s_string_enum, k8s_struct};

k8s_struct! {
    /// Kubernetes `PodTemplateSpec`: the pods a Job creates.
    pub struct PodTemplateSpec {
        /// `metadata`: labels and annotations copied to every pod.
        metadata: ObjectMeta = "metadata",
        /// `spec`: the pod specification.
        spec: PodSpec = "spec",
    }
}

k8s_struct! {
    /// Kubernetes `PodSpec` (typed subset; scheduling and other fields are kept in `extra`).
    pub struct PodSpec {
        /// `initContainers`: run in order before the app containers. An init container with
        /// `restartPolicy: Always` is a native sidecar.
        init_containers: Vec<Container> = "initContainers",
        /// `containers`: the app containers (at least one).
        containers: Vec<Container> = "containers",
        /// `restartPolicy`: a Job accepts only `Never` or `OnFailure`. Empty defaults to
        /// `Always`, which Job validation then rejects (as Kubernetes does).
        restart_policy: RestartPolicy = "restartPolicy",
        /// `volumes`.
        volumes: Vec<Volume> = "volumes",
        /// `terminationGracePeriodSeconds`: time between the stop signal and the kill
        /// (default 30).
        termination_grace_period_seconds: Option<i64> = "terminationGracePeriodSeconds",
        /// `activeDeadlineSeconds`: per-pod deadline (not the Job's).
        active_deadline_seconds: Option<i64> = "activeDeadlineSeconds",
        /// `hostname`: set by the Job controller for Indexed Jobs.
        hostname: Option<String> = "hostname",
        /// `subdomain`.
        subdomain: Option<String> = "subdomain",
    }
}

k8s_string_enum! {
    /// Pod `restartPolicy`.
    pub enum RestartPolicy {
        /// `Always` (not allowed for Jobs).
        Always = "Always",
        /// `OnFailure`: failed containers restart inside the same pod.
        OnFailure = "OnFailure",
        /// `Never`: a failed container fails the pod.
        Never = "Never",
    }
}

k8s_string_enum! {
    /// Container-level `restartPolicy` (native sidecars).
    pub enum ContainerRestartPolicy {
        /// `Always`: on an init container, makes it a sidecar that runs alongside the app
        /// containers.
        Always = "Always",
    }
}

k8s_string_enum! {
    /// Container `imagePullPolicy`.
    pub enum PullPolicy {
        /// `Always` pull.
        Always = "Always",
        /// Pull only if the image is not present.
        IfNotPresent = "IfNotPresent",
        /// Never pull.
        Never = "Never",
    }
}

k8s_struct! {
    /// Kubernetes `Container` (typed subset; ports, probes and the rest are kept in `extra`).
    pub struct Container {
        /// `name`: a DNS-1123 label, unique within the pod.
        name: String = "name",
        /// `image`.
        image: String = "image",
        /// `imagePullPolicy`.
        image_pull_policy: Option<PullPolicy> = "imagePullPolicy",
        /// `command`: replaces the image's entrypoint.
        command: Vec<String> = "command",
        /// `args`: replace the image's default arguments.
        args: Vec<String> = "args",
        /// `workingDir`.
        working_dir: Option<String> = "workingDir",
        /// `env`.
        env: Vec<EnvVar> = "env",
        /// `resources`: requests and limits.
        resources: Option<ResourceRequirements> = "resources",
        /// `restartPolicy`: only on init containers, only `Always` (native sidecar).
        restart_policy: Option<ContainerRestartPolicy> = "restartPolicy",
        /// `volumeMounts`.
        volume_mounts: Vec<VolumeMount> = "volumeMounts",
    }
}

k8s_struct! {
    /// Kubernetes `EnvVar`.
    pub struct EnvVar {
        /// `name`.
        name: String = "name",
        /// `value`: literal value (may reference other variables as `$(VAR)`).
        value: Option<String> = "value",
        /// `valueFrom`: value taken from elsewhere.
        value_from: Option<EnvVarSource> = "valueFrom",
    }
}

k8s_struct! {
    /// Kubernetes `EnvVarSource`. `fieldRef` is typed; the other sources are kept in `extra`.
    pub struct EnvVarSource {
        /// `fieldRef`: a field of the pod (for example an annotation).
        field_ref: Option<ObjectFieldSelector> = "fieldRef",
    }
}

k8s_struct! {
    /// Kubernetes `ObjectFieldSelector`.
    pub struct ObjectFieldSelector {
        /// `apiVersion` of the field path's schema (default `v1`).
        api_version: Option<String> = "apiVersion",
        /// `fieldPath`, for example `metadata.annotations['batch.kubernetes.io/job-completion-index']`.
        field_path: String = "fieldPath",
    }
}

k8s_struct! {
    /// Kubernetes `ResourceRequirements`.
    pub struct ResourceRequirements {
        /// `limits`: resource name → quantity.
        limits: BTreeMap<String, Quantity> = "limits",
        /// `requests`: resource name → quantity.
        requests: BTreeMap<String, Quantity> = "requests",
    }
}

k8s_struct! {
    /// Kubernetes `VolumeMount`.
    pub struct VolumeMount {
        /// `name` of the volume.
        name: String = "name",
        /// `mountPath` inside the container.
        mount_path: String = "mountPath",
        /// `readOnly`.
        read_only: Option<bool> = "readOnly",
        /// `subPath` inside the volume.
        sub_path: Option<String> = "subPath",
    }
}

k8s_struct! {
    /// Kubernetes `Volume`: `emptyDir`, `hostPath` and `downwardAPI` are typed; every other
    /// source is kept in `extra`.
    pub struct Volume {
        /// `name`: a DNS-1123 label, unique within the pod.
        name: String = "name",
        /// `emptyDir`: scratch space that lives as long as the pod.
        empty_dir: Option<EmptyDirVolumeSource> = "emptyDir",
        /// `hostPath`: a directory of the host.
        host_path: Option<HostPathVolumeSource> = "hostPath",
        /// `downwardAPI`: files holding pod fields.
        downward_api: Option<DownwardApiVolumeSource> = "downwardAPI",
    }
}

k8s_struct! {
    /// Kubernetes `EmptyDirVolumeSource`.
    pub struct EmptyDirVolumeSource {
        /// `medium`: `""` or `Memory`.
        medium: Option<String> = "medium",
        /// `sizeLimit`.
        size_limit: Option<Quantity> = "sizeLimit",
    }
}

k8s_struct! {
    /// Kubernetes `HostPathVolumeSource`.
    pub struct HostPathVolumeSource {
        /// `path` on the host.
        path: String = "path",
        /// `type`: `DirectoryOrCreate`, `Directory`, `File`, ….
        type_: Option<String> = "type",
    }
}

k8s_struct! {
    /// Kubernetes `DownwardAPIVolumeSource`.
    pub struct DownwardApiVolumeSource {
        /// `items`: the files to create.
        items: Vec<DownwardApiVolumeFile> = "items",
        /// `defaultMode`: file mode bits.
        default_mode: Option<i32> = "defaultMode",
    }
}

k8s_struct! {
    /// Kubernetes `DownwardAPIVolumeFile`.
    pub struct DownwardApiVolumeFile {
        /// `path` of the file, relative to the mount point.
        path: String = "path",
        /// `fieldRef`: the pod field written to the file.
        field_ref: Option<ObjectFieldSelector> = "fieldRef",
        /// `mode`: file mode bits.
        mode: Option<i32> = "mode",
    }
}

/// A Kubernetes resource quantity (`500m`, `1Gi`, `2`), kept exactly as written.
///
/// Manifests may write a quantity as a string or as a bare number; both read into the same
/// textual form, and it is always written back as a string (as Kubernetes does).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Quantity(pub String);

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Quantity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Quantity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a quantity (a string such as \"500m\" or \"1Gi\", or a number)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Quantity, E> {
                Ok(Quantity(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Quantity, E> {
                Ok(Quantity(v.to_string()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Quantity, E> {
                if v.is_finite() {
                    Ok(Quantity(v.to_string()))
                } else {
                    Err(E::custom(format_args!(
                        "quantity {v} is not a finite number"
                    )))
                }
            }
        }
        d.deserialize_any(Visitor)
    }
}
