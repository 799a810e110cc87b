//! Runs the shared executor conformance suite against the Kubernetes executor in pod mode:
//! a real kube-apiserver (`KUBECONFIG`; the test command starts one, scripts/k8s.sh) and the
//! test kubelet (`testing::TestKubelet`: binds the pods, runs them as local processes,
//! reports their status, serves their logs, finishes graceful deletions), real time. Each
//! case gets a namespace and a kubelet of its own. Without `KUBECONFIG` every case prints
//! `SKIP`, unless `BATCH_TEST_REQUIRE_K8S=1` (the test command sets it): then they fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};

use batch_core::conformance::Subject;
use batch_core::executor::Executor;
use batch_executor_k8s::testing::TestKubelet;
use batch_executor_k8s::{K8sExecutor, K8sExecutorConfig};

static CASES: AtomicU32 = AtomicU32::new(0);

batch_core::conformance_tests! {
    executor: |_clock| async move {
        if !batch_executor_k8s::testing::cluster_configured("conformance") {
            return Subject::unavailable("no KUBECONFIG (scripts/k8s.sh start DIR)");
        }
        let namespace = format!(
            "conformance-{}-{}",
            std::process::id(),
            CASES.fetch_add(1, Ordering::Relaxed)
        );
        let client = kube::Client::try_default()
            .await
            .unwrap_or_else(|e| panic!("KUBECONFIG is set but unusable: {e}"));
        let kubelet = TestKubelet::start(client, &namespace)
            .await
            .unwrap_or_else(|e| panic!("the test kubelet cannot start: {e}"));
        let config = K8sExecutorConfig {
            namespace: Some(namespace),
            ..K8sExecutorConfig::default()
        };
        let executor = K8sExecutor::connect(config)
            .await
            .unwrap_or_else(|e| panic!("the API server answered, but the executor cannot connect: {e}"));
        // What the test kubelet can do, and the API server lets through (1.20: no native
        // sidecars).
        let mut capabilities = kubelet.capabilities();
        capabilities.sidecar_containers &= executor.capabilities().sidecar_containers;
        let executor = executor.with_capabilities(capabilities);
        Subject::new(executor).with_guard(kubelet)
    },
    clock: batch_core::conformance::ClockMode::System,
}
