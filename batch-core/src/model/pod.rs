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

impl Quantity {
    /// The quantity as a whole number, rounded up (Kubernetes' `Quantity.Value()`): bytes
    /// for `memory` (`64Mi` → 67108864), cores for `cpu` (`500m` → 1).
    ///
    /// ```
    /// use batch_core::model::Quantity;
    /// assert_eq!(Quantity("1.5Gi".into()).value(), Ok(3 << 29));
    /// assert!(Quantity("12Q".into()).value().is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// Not a quantity, negative, or larger than `u64` (the message says which).
    pub fn value(&self) -> Result<u64, String> {
        parse_quantity(&self.0, 0)
    }

    /// The quantity in thousandths, rounded up (Kubernetes' `Quantity.MilliValue()`):
    /// millicores for `cpu` (`500m` → 500, `2` → 2000).
    ///
    /// # Errors
    ///
    /// As [`value`](Quantity::value).
    pub fn milli_value(&self) -> Result<u64, String> {
        parse_quantity(&self.0, 3)
    }
}

/// Parses a Kubernetes quantity (`64Mi`, `1G`, `500M`, `1e9`, `1.5Gi`, `100m`) into a whole
/// number of units of `10^-extra_exp10`, rounding up as Kubernetes' `Quantity.Value()` and
/// `MilliValue()` do.
fn parse_quantity(text: &str, extra_exp10: i32) -> Result<u64, String> {
    let s = text.trim();
    let s = s.strip_prefix('+').unwrap_or(s);
    if s.starts_with('-') {
        return Err("a negative quantity is not allowed here".to_owned());
    }
    let number_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(number_end);
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return Err("not a quantity".to_owned());
    }
    let digits = format!("{int_part}{frac_part}");
    let mut mantissa: u128 = digits
        .parse()
        .map_err(|_| "not a quantity (too many digits)".to_owned())?;
    let mut exp10: i32 =
        extra_exp10 - i32::try_from(frac_part.len()).map_err(|_| "not a quantity")?;
    let binary: u32 = match suffix {
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        "Ti" => 40,
        "Pi" => 50,
        "Ei" => 60,
        _ => 0,
    };
    if binary == 0 {
        exp10 += match suffix {
            "" => 0,
            "n" => -9,
            "u" => -6,
            "m" => -3,
            "k" => 3,
            "M" => 6,
            "G" => 9,
            "T" => 12,
            "P" => 15,
            "E" => 18,
            _ => suffix
                .strip_prefix(['e', 'E'])
                .and_then(|e| e.parse::<i32>().ok())
                .filter(|e| e.abs() <= 40)
                .ok_or_else(|| format!("unknown suffix {suffix:?}"))?,
        };
    }
    mantissa = mantissa
        .checked_mul(1u128 << binary)
        .ok_or("quantity too large")?;
    let value = if exp10 >= 0 {
        10u128
            .checked_pow(exp10.unsigned_abs())
            .and_then(|p| mantissa.checked_mul(p))
            .ok_or("quantity too large")?
    } else {
        let p = 10u128
            .checked_pow(exp10.unsigned_abs())
            .ok_or("quantity too small")?;
        mantissa.div_ceil(p)
    };
    u64::try_from(value).map_err(|_| "quantity too large".to_owned())
}

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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn quantities_parse_as_kubernetes_values() {
        let q = |s: &str| Quantity(s.to_owned()).value();
        let milli = |s: &str| Quantity(s.to_owned()).milli_value();
        assert_eq!(milli("500m").unwrap(), 500);
        assert_eq!(milli("2").unwrap(), 2000);
        assert_eq!(milli("0.1").unwrap(), 100);
        assert_eq!(milli("1u").unwrap(), 1);
        assert_eq!(q("64Mi").unwrap(), 64 << 20);
        assert_eq!(q("1G").unwrap(), 1_000_000_000);
        assert_eq!(q("500M").unwrap(), 500_000_000);
        assert_eq!(q("1e9").unwrap(), 1_000_000_000);
        assert_eq!(q("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(q("100m").unwrap(), 1);
        assert_eq!(q("1024").unwrap(), 1024);
        assert_eq!(q("2k").unwrap(), 2000);
        assert!(q("-1Mi").is_err());
        assert!(q("12Q").is_err());
        assert!(q("").is_err());
    }
}
