//! The test kubelet's eviction, seen through the pod-mode executor: a pod evicted under node
//! pressure gets the `DisruptionTarget` condition (what a Job's podFailurePolicy `Ignore`
//! rules match on), then ends `Failed` with reason `Evicted`. Against the real
//! kube-apiserver (`KUBECONFIG`); without it the test prints `SKIP`, unless
//! `BATCH_TEST_REQUIRE_K8S=1`: then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use batch_core::executor::{Executor, JobRef, PodObservation, PodRequest, WatchEvent};
use batch_core::job::PodPhase;
use batch_core::model::ConditionStatus;
use batch_executor_k8s::testing::TestKubelet;
use batch_executor_k8s::{K8sExecutor, K8sExecutorConfig};
use futures_util::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_pod_has_disruption_target_and_fails_evicted() {
    if !batch_executor_k8s::testing::cluster_configured("eviction") {
        return;
    }
    let namespace = format!("evict-{}", std::process::id());
    let client = kube::Client::try_default().await.unwrap();
    let kubelet = TestKubelet::start(client, &namespace).await.unwrap();
    let exec = K8sExecutor::connect(K8sExecutorConfig {
        namespace: Some(namespace),
        ..K8sExecutorConfig::default()
    })
    .await
    .unwrap();
    let selector = BTreeMap::from([("test".to_owned(), "evict".to_owned())]);
    let mut watch = exec.watch(&selector).await.unwrap();
    exec.start(PodRequest {
        name: "victim".to_owned(),
        job: JobRef {
            namespace: String::new(),
            name: "j".to_owned(),
            uid: "u".to_owned(),
        },
        index: None,
        labels: selector.clone(),
        annotations: BTreeMap::new(),
        hostname: None,
        spec: serde_json::from_value(serde_json::json!({
            "restartPolicy": "Never",
            "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "60"]}]
        }))
        .unwrap(),
    })
    .await
    .unwrap();

    let mut next_until = async |what: &str, done: &dyn Fn(&PodObservation) -> bool| {
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match watch.next().await {
                    Some(Ok(WatchEvent::Applied(obs))) if done(&obs) => break *obs,
                    Some(_) => {}
                    None => panic!("the watch ended"),
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no pod {what} within 30 s"))
    };
    next_until("running", &|o| o.phase == PodPhase::Running).await;
    kubelet
        .evict("victim", chrono::Duration::seconds(1))
        .await
        .unwrap();
    let disrupted = |o: &PodObservation| {
        o.conditions.iter().any(|c| {
            c.type_ == "DisruptionTarget"
                && c.status == ConditionStatus::True
                && c.reason == "TerminationByKubelet"
        })
    };
    let failed = next_until("failed", &|o| o.phase == PodPhase::Failed).await;
    assert!(disrupted(&failed), "{failed:?}");
    assert_eq!(failed.reason, "Evicted", "{failed:?}");
    // What the Job machine reads: a failed pod with the disruption condition.
    let observed = failed.to_observed_pod(false);
    assert_eq!(observed.phase, PodPhase::Failed);
    assert!(
        observed
            .conditions
            .iter()
            .any(|c| c.type_ == "DisruptionTarget" && c.status == ConditionStatus::True),
        "{observed:?}"
    );
}
