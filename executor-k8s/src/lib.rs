//! Runs the pods of batch Jobs on a Kubernetes cluster (kube).
//!
//! **Status: skeleton.** This crate reserves the name and layout of the K8s executor; the
//! `Executor` trait it will implement lands in batch-core with the runner, and the
//! implementation follows it. Nothing here starts pods yet.
//!
//! Planned layout (the same in every executor crate): `config.rs`, `executor.rs`,
//! `translate.rs`, `observe.rs`, `error.rs`, and `tests/conformance.rs` running the shared
//! conformance suite of `batch-core`.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Configuration of the K8s executor. It has no settings yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct K8sExecutorConfig {}
