//! Kubernetes-grade batch semantics as a library.
//!
//! `batch-core` holds the typed `batch/v1` [`model`] (reads real Kubernetes YAML and JSON),
//! the API server's [`defaults`] and [`validation`], the manifest [`loader`], the [`cron`]
//! evaluator, the pure state machines for Jobs ([`job`]) and CronJobs ([`cronjob`]), and the
//! [`simulate`] rehearsal. Everything there is deterministic: no I/O, no clock, no
//! randomness; time is always a parameter.
//!
//! The [`executor`] module defines the trait a backend implements to run pods (local
//! processes, Docker, Kubernetes, or your own), and [`clock`] the time source. With the
//! `runtime` feature, `runner` drives the machines against an executor for real.
//!
//! ```
//! use batch_core::{defaults, loader, validation};
//!
//! let yaml = r#"
//! apiVersion: batch/v1
//! kind: Job
//! metadata: {name: pi}
//! spec:
//!   template:
//!     spec:
//!       restartPolicy: Never
//!       containers: [{name: pi, image: perl, command: [perl, -le, "print 1"]}]
//! "#;
//! let docs = loader::load_str(yaml, "job.yaml").expect("valid YAML");
//! let Some(batch_core::model::Manifest::Job(mut job)) = docs[0].object.clone() else { panic!("a Job") };
//! defaults::prepare_job_for_create(&mut job, "example-uid");
//! validation::validate_job(&job).expect("a valid Job");
//! assert_eq!(job.spec.completions, Some(1));
//! assert_eq!(job.spec.backoff_limit, Some(6));
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `runtime` | no | `runner` (the async Job and CronJob runner), `store` (durable runner state: in memory or an SQLite file) and `clock::SystemClock`; pulls in tokio, tracing and rusqlite (SQLite compiled in) |
//! | `conformance` | no | the shared executor conformance suite (testing only, not semver-stable) |
//!
//! With no features the crate is pure: it has no async runtime and no I/O dependency.
//!
//! # Minimum supported Rust version
//!
//! The MSRV is the `rust-version` in `Cargo.toml` (currently 1.89). Raising it is a minor
//! version change and is noted in the changelog.
//!
//! # Guide
//!
//! The user guide lives in the repository's `docs/` folder; choices the Kubernetes sources
//! leave open are recorded in `docs/decisions/`.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
#[cfg(feature = "conformance")]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
pub mod conformance;
pub mod cron;
pub mod cronjob;
pub mod defaults;
pub mod executor;
pub mod job;
pub mod kubelet;
pub mod loader;
pub mod model;
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub mod runner;
pub mod simulate;
#[cfg(feature = "runtime")]
#[cfg_attr(docsrs, doc(cfg(feature = "runtime")))]
pub mod store;
pub mod validation;
