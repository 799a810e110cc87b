//! Runs the pods of batch Jobs on a Docker engine through the Docker Engine API (bollard).
//!
//! **Status: skeleton.** This crate reserves the name and layout of the Docker executor; the
//! `Executor` trait it will implement lands in batch-core with the runner, and the
//! implementation follows it. Nothing here starts pods yet.
//!
//! Planned layout (the same in every executor crate): `config.rs`, `executor.rs`,
//! `translate.rs`, `observe.rs`, `error.rs`, and `tests/conformance.rs` running the shared
//! conformance suite of `batch-core`.
#![cfg_attr(docsrs, feature(doc_cfg))]

/// Configuration of the Docker executor. It has no settings yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DockerExecutorConfig {}
