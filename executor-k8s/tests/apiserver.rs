//! The pod-mode executor against a real kube-apiserver (`KUBECONFIG`; `scripts/k8s.sh start`
//! starts one built from Debian's source). There is no kubelet here yet, so these tests
//! cover what the API server itself decides: creation with the core's names and labels,
//! listing and watching by labels, conflicts, not-found, and deletion (a pod bound to no
//! node is deleted at once). Without `KUBECONFIG` each test prints `SKIP`, unless
//! `BATCH_TEST_REQUIRE_K8S=1`: then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use batch_core::executor::{ErrorKind, Executor, JobRef, PodRequest, WatchEvent};
use batch_core::job::PodPhase;
use batch_executor_k8s::{K8sExecutor, K8sExecutorConfig};
use futures_util::StreamExt;

async fn executor(test: &str) -> Option<K8sExecutor> {
    if !batch_executor_k8s::testing::cluster_configured(test) {
        return None;
    }
    Some(
        K8sExecutor::connect(K8sExecutorConfig::default())
            .await
            .unwrap_or_else(|e| panic!("{test}: cannot connect: {e}")),
    )
}

fn request(name: &str) -> PodRequest {
    PodRequest {
        name: name.to_owned(),
        job: JobRef {
            namespace: String::new(),
            name: "j".to_owned(),
            uid: format!("{name}-uid"),
        },
        index: Some(1),
        labels: BTreeMap::from([
            ("test".to_owned(), name.to_owned()),
            (
                "batch.kubernetes.io/job-completion-index".to_owned(),
                "1".to_owned(),
            ),
        ]),
        annotations: BTreeMap::from([(
            "batch.kubernetes.io/job-completion-index".to_owned(),
            "1".to_owned(),
        )]),
        hostname: Some("j-1".to_owned()),
        spec: serde_json::from_value(serde_json::json!({
            "restartPolicy": "Never",
            "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]
        }))
        .unwrap(),
    }
}

fn unique(name: &str) -> String {
    format!("{name}-{}", std::process::id())
}

#[tokio::test]
async fn a_pod_is_created_listed_watched_and_deleted_by_labels() {
    let Some(exec) = executor("create-list-watch-delete").await else {
        return;
    };
    let name = unique("p1");
    let selector = BTreeMap::from([("test".to_owned(), name.clone())]);
    let mut watch = exec.watch(&selector).await.unwrap();
    exec.start(request(&name)).await.unwrap();

    let listed = exec.list(&selector).await.unwrap();
    assert_eq!(listed.len(), 1);
    let pod = &listed[0];
    assert_eq!(pod.name, name);
    assert!(!pod.uid.is_empty());
    assert_eq!(pod.phase, PodPhase::Pending, "no kubelet: never scheduled");
    assert_eq!(
        pod.annotations["batch.kubernetes.io/job-completion-index"],
        "1"
    );
    assert!(pod.created_at.is_some());
    assert_eq!(pod.to_observed_pod(false).index.as_deref(), Some("1"));

    let applied = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::Applied(obs))) if obs.name == name => break obs,
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await
    .expect("the watch reports the new pod");
    assert_eq!(applied.uid, pod.uid);

    // The same name again: a conflict.
    let again = exec.start(request(&name)).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::AlreadyExists, "{again}");

    exec.delete(&name, Some(chrono::Duration::seconds(30)))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match watch.next().await {
                Some(Ok(WatchEvent::Deleted { name: gone })) if gone == name => break,
                Some(_) => {}
                None => panic!("the watch ended"),
            }
        }
    })
    .await
    .expect("an unbound pod is deleted at once");
    assert!(exec.list(&selector).await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_pods_are_not_found() {
    let Some(exec) = executor("not-found").await else {
        return;
    };
    let e = exec.delete(&unique("nope"), None).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn an_unreachable_server_is_an_unavailable_error() {
    // A kubeconfig pointing at a port nothing listens on.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n\
         users: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    let options = K8sExecutorConfig {
        context: Some("c".to_owned()),
        ..K8sExecutorConfig::default()
    };
    let e = K8sExecutor::connect_with_kubeconfig(&path, options)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_transient());
}
