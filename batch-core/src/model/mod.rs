//! The typed Kubernetes `batch/v1` model: [`Job`], [`CronJob`] and the pod template they carry.
//!
//! Every type reads and writes the exact JSON names of Kubernetes `batch/v1`, so real
//! manifests load unchanged. Fields that batch-core itself reads are typed; **every other
//! field is kept** in the `extra` map of the object it appears in and written back on
//! serialization, so parse → serialize → parse gives an equal value for any manifest.
//!
//! Conventions:
//! - A field Kubernetes declares as a pointer is an `Option`; `null` and an absent field are
//!   the same thing (as in Kubernetes).
//! - A field Kubernetes declares as a value (a string, list or struct) uses its zero value
//!   when absent; it is omitted on output when it holds that zero value.
//! - String enumerations (`completionMode`, `restartPolicy`, …) keep unknown values in an
//!   `Other` variant so that validation can report them, never a parse error.
//! - No defaults are applied while parsing: see [`crate::defaults`].
//!
//! ```
//! use batch_core::model::Job;
//!
//! let job: Job = serde_json::from_str(r#"{
//!     "apiVersion": "batch/v1", "kind": "Job",
//!     "metadata": {"name": "pi"},
//!     "spec": {"completions": 3, "template": {"spec": {
//!         "restartPolicy": "Never",
//!         "nodeSelector": {"disk": "ssd"},
//!         "containers": [{"name": "pi", "image": "perl", "ports": [{"containerPort": 80}]}]
//!     }}}
//! }"#).unwrap();
//! assert_eq!(job.spec.completions, Some(3));
//! // Fields batch-core does not model are kept verbatim.
//! assert!(job.spec.template.spec.extra.contains_key("nodeSelector"));
//! let again: Job = serde_json::from_value(serde_json::to_value(&job).unwrap()).unwrap();
//! assert_eq!(job, again);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

mod cronjob;
mod job;
mod meta;
mod pod;

pub use cronjob::{
    ConcurrencyPolicy, CronJob, CronJobSpec, CronJobStatus, JobTemplateSpec, ObjectReference,
};
pub use job::{
    CompletionMode, Job, JobCondition, JobConditionType, JobSpec, JobStatus, PodFailurePolicy,
    PodFailurePolicyAction, PodFailurePolicyOnExitCodesOperator,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule, PodReplacementPolicy, SuccessPolicy, SuccessPolicyRule,
    UncountedTerminatedPods,
};
pub use meta::{LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference};
pub use pod::{
    Container, ContainerRestartPolicy, DownwardApiVolumeFile, DownwardApiVolumeSource,
    EmptyDirVolumeSource, EnvVar, EnvVarSource, HostPathVolumeSource, ObjectFieldSelector, PodSpec,
    PodTemplateSpec, PullPolicy, Quantity, ResourceRequirements, RestartPolicy, Volume,
    VolumeMount,
};

/// A point in time, as Kubernetes `metav1.Time` (RFC 3339, always normalised to UTC).
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Fields of an object that batch-core does not model, kept verbatim (JSON name → value).
pub type Extra = BTreeMap<String, serde_json::Value>;

/// `True`, `False` or `Unknown`, as in Kubernetes condition statuses.
pub use job::ConditionStatus;

/// The API version every object here uses.
pub const API_VERSION: &str = "batch/v1";

/// Whether a field holds the value that Kubernetes omits on output.
///
/// Implemented for the field types of the model; used by the serializers generated for
/// every model struct.
pub(crate) trait Omit {
    /// True when the field is omitted on output.
    fn omit(&self) -> bool;
}

impl<T> Omit for Option<T> {
    fn omit(&self) -> bool {
        self.is_none()
    }
}
impl<T> Omit for Vec<T> {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}
impl<K, V> Omit for BTreeMap<K, V> {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}
impl Omit for String {
    fn omit(&self) -> bool {
        self.is_empty()
    }
}
impl Omit for i32 {
    fn omit(&self) -> bool {
        *self == 0
    }
}

/// Reads a field whose `null` means its zero value, as Kubernetes' JSON decoding does.
pub(crate) struct OrNull<T>(pub(crate) T);

impl<'de, T: Deserialize<'de> + Default> Deserialize<'de> for OrNull<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(|v| OrNull(v.unwrap_or_default()))
    }
}

/// Declares a model struct with typed fields plus an `extra` map for every other field,
/// and generates its (lossless) `Serialize` and `Deserialize` implementations.
///
/// Each field is written `name: Type = "jsonName"`. Unknown fields go to `extra`; a field
/// given twice in one object is an error (as `kubectl` reports for duplicate YAML keys).
macro_rules! k8s_struct {
    (
        $(#[$smeta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $field:ident : $ty:ty = $json:literal
            ),* $(,)?
        }
    ) => {
        $(#[$smeta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                pub $field: $ty,
            )*
            /// Every other field of this object, kept verbatim so that it round-trips.
            pub extra: $crate::model::Extra,
        }

        impl $crate::model::Omit for $name {
            fn omit(&self) -> bool {
                *self == Self::default()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(None)?;
                $(
                    if !$crate::model::Omit::omit(&self.$field) {
                        map.serialize_entry($json, &self.$field)?;
                    }
                )*
                for (key, value) in &self.extra {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visitor;

                impl<'de> serde::de::Visitor<'de> for Visitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str(concat!("a ", stringify!($name), " object"))
                    }

                    fn visit_map<A: serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $( let mut $field: Option<$ty> = None; )*
                        let mut extra = $crate::model::Extra::new();
                        while let Some(key) = map.next_key::<String>()? {
                            match key.as_str() {
                                $(
                                    $json => {
                                        if $field.is_some() {
                                            return Err(<A::Error as serde::de::Error>::duplicate_field($json));
                                        }
                                        $field = Some(map.next_value::<$crate::model::OrNull<$ty>>()?.0);
                                    }
                                )*
                                _ => {
                                    if extra.contains_key(&key) {
                                        return Err(<A::Error as serde::de::Error>::custom(
                                            format_args!("duplicate field `{key}`"),
                                        ));
                                    }
                                    let value = map.next_value::<serde_json::Value>()?;
                                    extra.insert(key, value);
                                }
                            }
                        }
                        Ok($name {
                            $( $field: $field.unwrap_or_default(), )*
                            extra,
                        })
                    }
                }
                d.deserialize_map(Visitor)
            }
        }
    };
}

/// Declares a Kubernetes string enumeration: known values as variants, anything else kept in
/// `Other` (the empty string, too: it is what an absent required value reads as).
macro_rules! k8s_string_enum {
    (
        $(#[$emeta:meta])*
        pub enum $name:ident {
            $(
                $(#[$vmeta:meta])*
                $variant:ident = $json:literal
            ),* $(,)?
        }
    ) => {
        $(#[$emeta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $(
                $(#[$vmeta])*
                $variant,
            )*
            /// A value Kubernetes does not define here (kept so validation can report it).
            Other(String),
        }

        impl $name {
            /// Every value Kubernetes defines, in declaration order.
            pub const KNOWN: &'static [&'static str] = &[$($json),*];

            /// The value as written in a manifest.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $json, )*
                    Self::Other(s) => s,
                }
            }

            /// Whether this is one of the values Kubernetes defines.
            pub fn is_known(&self) -> bool {
                !matches!(self, Self::Other(_))
            }
        }

        impl Default for $name {
            /// The empty string: what an absent value reads as before defaulting.
            fn default() -> Self {
                Self::Other(String::new())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s {
                    $( $json => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl $crate::model::Omit for $name {
            fn omit(&self) -> bool {
                self.as_str().is_empty()
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok(Self::from(s.as_str()))
            }
        }
    };
}

pub(crate) use k8s_string_enum;
pub(crate) use k8s_struct;

/// One object of a manifest that batch-core understands.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Manifest {
    /// A `batch/v1` Job.
    Job(Box<Job>),
    /// A `batch/v1` CronJob.
    CronJob(Box<CronJob>),
}

impl Manifest {
    /// The object's kind: `Job` or `CronJob`.
    pub fn kind(&self) -> &'static str {
        match self {
            Manifest::Job(_) => "Job",
            Manifest::CronJob(_) => "CronJob",
        }
    }

    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            Manifest::Job(job) => &job.metadata,
            Manifest::CronJob(cron_job) => &cron_job.metadata,
        }
    }
}

impl serde::Serialize for Manifest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Manifest::Job(job) => job.serialize(s),
            Manifest::CronJob(cron_job) => cron_job.serialize(s),
        }
    }
}
