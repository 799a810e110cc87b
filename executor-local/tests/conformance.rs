//! Runs the shared executor conformance suite (`batch_core::conformance`) against the Local
//! executor: real `sh` processes, with a manual clock so that back-offs, grace periods and
//! deadlines pass without waiting. One test per case: `cargo test -p batch-executor-local
//! --test conformance`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::conformance::Subject;
use batch_executor_local::{LocalExecutor, LocalExecutorConfig};

batch_core::conformance_tests! {
    executor: |clock| async move {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = LocalExecutorConfig {
            root: dir.path().to_owned(),
            ..LocalExecutorConfig::default()
        };
        let executor = LocalExecutor::with_clock(config, clock).expect("a local executor");
        Subject::new(executor).with_guard(dir)
    },
}
