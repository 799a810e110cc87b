//! Runs the pods of batch Jobs on a Kubernetes cluster (kube).
//!
//! **Status: in progress.** [`convert`] turns batch-core's Jobs, CronJobs and their
//! statuses into the Kubernetes API types of `k8s-openapi` and back, reporting any field
//! the API types cannot hold; [`translate`] builds the Pod of a core pod request, reads a
//! Pod's status as an observation, and maps API status codes to executor error kinds;
//! [`K8sExecutor`] (pod mode) creates, deletes, lists and watches pods by labels and reads
//! their logs through kube. Tested against a real kube-apiserver so far without a kubelet
//! (pods are never scheduled): the test kubelet, the shared conformance suite, cluster mode
//! (`k8s-cluster`) and the CLI are not written yet.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod convert;
mod executor;
pub mod translate;

pub use executor::{K8sExecutor, K8sExecutorConfig};
