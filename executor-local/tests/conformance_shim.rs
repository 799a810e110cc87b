//! Runs the shared executor conformance suite against the Local executor in shim mode:
//! every pod runs under its own shim process (`batch-local-shim`), real `sh` processes,
//! real time (a shim keeps its own timers on the system clock). One test per case:
//! `cargo test -p batch-executor-local --test conformance_shim`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::conformance::Subject;
use batch_executor_local::{LocalExecutor, LocalExecutorConfig, ShimCommand, Supervisor};

batch_core::conformance_tests! {
    executor: |clock| async move {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = LocalExecutorConfig {
            root: dir.path().to_owned(),
            supervisor: Supervisor::Shim(ShimCommand {
                program: env!("CARGO_BIN_EXE_batch-local-shim").into(),
                args: Vec::new(),
            }),
            ..LocalExecutorConfig::default()
        };
        let executor = LocalExecutor::with_clock(config, clock).expect("a local executor");
        Subject::new(executor).with_guard(dir)
    },
    clock: batch_core::conformance::ClockMode::System,
}
