//! Runs the shared executor conformance suite against the in-process `FunctionExecutor` of
//! `examples/function_executor.rs`, with its own `Workloads` adapter and a manual clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The example program, included as a module: its `main` is not used here.
#[allow(dead_code)]
#[path = "../examples/function_executor.rs"]
mod function_executor;

use function_executor::{FunctionExecutor, FunctionWorkloads, conformance_functions};

batch_core::conformance_tests! {
    executor: |clock| async move { FunctionExecutor::new(conformance_functions(), clock) },
    workloads: FunctionWorkloads,
}
