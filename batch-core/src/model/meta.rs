//! Object metadata (the subset batch-core reads; everything else is kept in `extra`).

use std::collections::BTreeMap;

use super::{Timestamp, k8s_struct};

k8s_struct! {
    /// Kubernetes `ObjectMeta`: the typed subset batch-core needs.
    pub struct ObjectMeta {
        /// `name`: unique within the namespace; a DNS-1123 subdomain.
        name: Option<String> = "name",
        /// `generateName`: prefix for a server-generated name when `name` is unset.
        generate_name: Option<String> = "generateName",
        /// `namespace`: empty means the caller's default namespace.
        namespace: Option<String> = "namespace",
        /// `uid`: set by the system when the object is created.
        uid: Option<String> = "uid",
        /// `labels`.
        labels: BTreeMap<String, String> = "labels",
        /// `annotations`.
        annotations: BTreeMap<String, String> = "annotations",
        /// `creationTimestamp`.
        creation_timestamp: Option<Timestamp> = "creationTimestamp",
        /// `deletionTimestamp`: set when deletion was requested.
        deletion_timestamp: Option<Timestamp> = "deletionTimestamp",
        /// `deletionGracePeriodSeconds`.
        deletion_grace_period_seconds: Option<i64> = "deletionGracePeriodSeconds",
        /// `ownerReferences`.
        owner_references: Vec<OwnerReference> = "ownerReferences",
        /// `finalizers`.
        finalizers: Vec<String> = "finalizers",
    }
}

k8s_struct! {
    /// Kubernetes `OwnerReference`: the object that owns this one.
    pub struct OwnerReference {
        /// `apiVersion` of the owner.
        api_version: String = "apiVersion",
        /// `kind` of the owner.
        kind: String = "kind",
        /// `name` of the owner.
        name: String = "name",
        /// `uid` of the owner.
        uid: String = "uid",
        /// `controller`: whether the owner is the managing controller.
        controller: Option<bool> = "controller",
        /// `blockOwnerDeletion`.
        block_owner_deletion: Option<bool> = "blockOwnerDeletion",
    }
}

k8s_struct! {
    /// Kubernetes `LabelSelector`.
    pub struct LabelSelector {
        /// `matchLabels`: every pair must be present.
        match_labels: BTreeMap<String, String> = "matchLabels",
        /// `matchExpressions`: every requirement must hold.
        match_expressions: Vec<LabelSelectorRequirement> = "matchExpressions",
    }
}

k8s_struct! {
    /// One requirement of a [`LabelSelector`].
    pub struct LabelSelectorRequirement {
        /// `key`: the label key.
        key: String = "key",
        /// `operator`: `In`, `NotIn`, `Exists` or `DoesNotExist`.
        operator: String = "operator",
        /// `values`.
        values: Vec<String> = "values",
    }
}

impl LabelSelector {
    /// Whether the selector matches a set of labels, as Kubernetes evaluates it.
    ///
    /// An unknown operator matches nothing (Kubernetes rejects such a selector).
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|req| {
                let value = labels.get(&req.key);
                match req.operator.as_str() {
                    "In" => value.is_some_and(|v| req.values.contains(v)),
                    "NotIn" => value.is_none_or(|v| !req.values.contains(v)),
                    "Exists" => value.is_some(),
                    "DoesNotExist" => value.is_none(),
                    _ => false,
                }
            })
    }

    /// Whether the selector has no requirement at all (Kubernetes: selects everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}
