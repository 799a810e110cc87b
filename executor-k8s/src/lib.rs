//! Runs the pods of batch Jobs on a Kubernetes cluster (kube).
//!
//! **Status: in progress.** [`convert`] turns batch-core's Jobs, CronJobs and their
//! statuses into the Kubernetes API types of `k8s-openapi` and back, reporting any field
//! the API types cannot hold; [`translate`] builds the Pod of a core pod request, reads a
//! Pod's status as an observation, and maps API status codes to executor error kinds. The
//! executor itself (the API client, watch, logs) and cluster mode are not written yet:
//! nothing here talks to a cluster.
//!
//! Planned layout (the same in every executor crate): `config.rs`, `executor.rs`,
//! `translate.rs`, `observe.rs`, `error.rs`, and `tests/conformance.rs` running the shared
//! conformance suite of `batch-core`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod convert;
pub mod translate;

/// Configuration of the K8s executor. It has no settings yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct K8sExecutorConfig {}
