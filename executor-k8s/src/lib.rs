//! Runs the pods of batch Jobs on a Kubernetes cluster (kube).
//!
//! Two modes (see the guide's `docs/kubernetes.md`, with the RBAC each needs):
//!
//! - **Pod mode** — [`K8sExecutor`] implements batch-core's `Executor`: batch-core is the Job
//!   controller and the cluster runs the pods ([`translate`] builds them and reads their
//!   status back). Creates, deletes with the grace period, lists and watches pods by labels
//!   (kube's watcher: resumes, re-lists on `410 Gone`), reads logs through `pods/log`; API
//!   errors become executor error kinds (409, 404, 410/429/5xx retried).
//! - **Cluster mode** — [`K8sCluster`] applies the Job or CronJob itself (server-side apply,
//!   field manager `batch`) for the cluster's own controllers, warns of every field the
//!   server does not keep, and streams the status back as batch-core's.
//!
//! [`convert`] turns batch-core's Jobs, CronJobs and statuses into the `k8s-openapi` types
//! and back without losing a field. The feature `testing` adds the test kubelet.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cluster;
pub mod convert;
mod executor;
pub mod translate;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

pub use cluster::{Applied, ClusterEvent, K8sCluster};
pub use executor::{K8sExecutor, K8sExecutorConfig, ServerVersion};
