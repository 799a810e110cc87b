//! Pods created per second for one Job at parallelism 100: pod mode (batch-core's Job
//! controller in this process, creating pods through the API server with `K8sExecutor`)
//! against cluster mode (the same Job applied with `K8sCluster`, pods created by the cluster's
//! own Job controller, kube-controller-manager). Both follow the Job controller's slow start
//! (batches of 1, 2, 4, 8, …), as Kubernetes specifies.
//!
//! Measured from submitting/applying the Job until a watch on the API server has seen all
//! 100 pods; no kubelet runs, so the pods stay Pending and only creation is timed. Needs an
//! API server with the Job controller (`KUBECONFIG`; scripts/k8s.sh start DIR).
//!
//! `cargo bench -p batch-executor-k8s --bench pods_per_second`: 3 rounds of each mode, the
//! median reported. Under `cargo test` (no `--bench`) one small round (10 pods) of each
//! checks that the benchmark works.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use batch_core::clock::SystemClock;
use batch_core::model::Job;
use batch_core::runner::Runner;
use batch_executor_k8s::{K8sCluster, K8sExecutor};
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, PostParams};
use kube::runtime::watcher;

fn job(name: &str, pods: usize) -> Job {
    let yaml = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  \
         completions: {pods}\n  parallelism: {pods}\n  template:\n    spec:\n      \
         restartPolicy: Never\n      containers:\n      - {{name: main, image: busybox, \
         command: [sleep, '60']}}\n"
    );
    match batch_core::loader::load_str(&yaml, "bench.yaml").unwrap()[0]
        .object
        .clone()
    {
        Some(batch_core::model::Manifest::Job(j)) => *j,
        other => panic!("{other:?}"),
    }
}

async fn namespace(client: &kube::Client, name: &str) {
    let ns: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    let _ = Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await;
}

/// Waits until `count` distinct pods of Job `job` exist in `namespace`; the time it took
/// from `start`.
async fn all_pods_seen(
    client: &kube::Client,
    namespace: &str,
    job: &str,
    count: usize,
    start: Instant,
) -> Duration {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let config = watcher::Config::default().labels(&format!("job-name={job}"));
    let mut stream = Box::pin(watcher(pods, config));
    let mut seen = BTreeSet::new();
    let wait = async {
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Apply(p) | watcher::Event::InitApply(p)) = event {
                seen.insert(p.metadata.name.unwrap_or_default());
                if seen.len() >= count {
                    return start.elapsed();
                }
            }
        }
        panic!("the watch ended");
    };
    tokio::time::timeout(Duration::from_secs(300), wait)
        .await
        .unwrap_or_else(|_| panic!("{job}: not all {count} pods within 300 s"))
}

async fn pod_mode(client: &kube::Client, ns: &str, name: &str, pods: usize) -> Duration {
    namespace(client, ns).await;
    let executor = K8sExecutor::from_client(client.clone(), ns).await.unwrap();
    let runner = Runner::new(Arc::new(executor), Arc::new(SystemClock));
    // The watch is polled only once the Job is submitted; its clock starts at submission.
    let start = Instant::now();
    let handle = runner.submit_job(job(name, pods)).unwrap();
    let took = all_pods_seen(client, ns, name, pods, start).await;
    let _ = handle.delete().await;
    took
}

async fn cluster_mode(client: &kube::Client, ns: &str, name: &str, pods: usize) -> Duration {
    namespace(client, ns).await;
    let cluster = K8sCluster::from_client(client.clone(), ns).await.unwrap();
    let start = Instant::now();
    let applied = cluster.apply_job(&job(name, pods)).await.unwrap();
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    let took = all_pods_seen(client, ns, name, pods, start).await;
    let _ = cluster.delete_job(name).await;
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (pods, rounds) = if bench { (100, 3) } else { (10, 1) };
    if !batch_executor_k8s::testing::cluster_configured("pods_per_second") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = kube::Client::try_default().await.unwrap();
        let id = std::process::id();
        let mut pod_times = Vec::new();
        let mut cluster_times = Vec::new();
        for round in 0..rounds {
            let t = pod_mode(&client, &format!("bench-pod-{id}-{round}"), "fan", pods).await;
            println!("round {round}: pod mode     {pods} pods in {t:?}");
            pod_times.push(t);
            let t =
                cluster_mode(&client, &format!("bench-cluster-{id}-{round}"), "fan", pods).await;
            println!("round {round}: cluster mode {pods} pods in {t:?}");
            cluster_times.push(t);
        }
        let (p, c) = (median(pod_times), median(cluster_times));
        let rate = |d: Duration| pods as f64 / d.as_secs_f64();
        println!(
            "pods_per_second (parallelism {pods}, median of {rounds}): pod mode {:.1} pods/s \
             ({p:?}), cluster mode (kube-controller-manager) {:.1} pods/s ({c:?}); pod mode / \
             cluster mode = {:.2}x",
            rate(p),
            rate(c),
            rate(p) / rate(c)
        );
    });
}
