//! Runs the shared executor conformance suite against the Docker executor on a real engine
//! (`DOCKER_HOST`; the test command starts one), real time. One test per case:
//! `cargo test -p batch-executor-docker --test conformance`. Without an engine every case
//! prints `SKIP`, unless `BATCH_TEST_REQUIRE_DOCKER=1` (the test command sets it): then
//! they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::conformance::Subject;
use batch_executor_docker::{DockerExecutor, DockerExecutorConfig, testing};

batch_core::conformance_tests! {
    executor: |_clock| async move {
        if testing::test_engine().await.is_none() {
            return Subject::unavailable("no Docker engine (set DOCKER_HOST)");
        }
        match DockerExecutor::connect(DockerExecutorConfig::default()).await {
            Ok(executor) => Subject::new(executor),
            Err(e) => panic!("the test engine answered, but the executor cannot connect: {e}"),
        }
    },
    clock: batch_core::conformance::ClockMode::System,
}
