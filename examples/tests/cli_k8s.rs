//! End-to-end on Kubernetes: `batch run --executor k8s` (pod mode: this program is the Job
//! controller, the cluster runs the pods) and `--executor k8s-cluster` (the cluster's own
//! controllers run the Job) on the Kubernetes documentation's examples, and `batch logs
//! --executor k8s` on what they left.
//!
//! Needs an API server (`KUBECONFIG`; the test command starts a real kube-apiserver 1.20 and
//! kube-controller-manager with scripts/k8s.sh). Each test runs a test kubelet
//! (`batch_executor_k8s::testing`) for a namespace of its own, which runs the pods as local
//! processes. Without `KUBECONFIG` each test prints `SKIP`, unless `BATCH_TEST_REQUIRE_K8S=1`:
//! then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use batch_executor_k8s::testing::TestKubelet;
use serde_json::Value;

fn corpus(name: &str) -> String {
    format!(
        "{}/../../shared/corpus/k8s-website/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A runtime holding a test kubelet for a fresh namespace, or None after printing why not.
struct Cluster {
    _runtime: tokio::runtime::Runtime,
    _kubelet: TestKubelet,
    namespace: String,
}

fn cluster(test: &str) -> Option<Cluster> {
    if !batch_executor_k8s::testing::cluster_configured(test) {
        return None;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let namespace = format!("cli-{test}-{}", std::process::id());
    let kubelet = runtime.block_on(async {
        let client = kube::Client::try_default().await.unwrap();
        TestKubelet::start(client, &namespace).await.unwrap()
    });
    Some(Cluster {
        _runtime: runtime,
        _kubelet: kubelet,
        namespace,
    })
}

struct Run {
    code: Option<i32>,
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
}

fn batch(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    Run {
        code: out.status.code(),
        lines: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn final_status(run: &Run) -> &Value {
    &run.lines.last().expect("a final line")["final"]["status"]
}

/// An Indexed Job (the test kubelet runs pods as local processes: no volumes).
const INDEXED: &str = "apiVersion: batch/v1
kind: Job
metadata: {name: fan-out}
spec:
  completions: 5
  parallelism: 3
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: worker
        image: busybox
        command: [sh, -c, 'echo worker $JOB_COMPLETION_INDEX of $(JOB)']
        env: [{name: JOB, value: fan-out}]
";

#[test]
fn pod_mode_runs_an_indexed_job_to_completion_and_reads_its_logs() {
    let Some(cluster) = cluster("pods") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    let manifest = dir.path().join("fan-out.yaml");
    std::fs::write(&manifest, INDEXED).unwrap();
    // Indexed Jobs are batch-core's to run here: the 1.20 API server only holds the pods.
    let run = batch(&[
        "run",
        manifest.to_str().unwrap(),
        "--executor",
        "k8s",
        "--namespace",
        &cluster.namespace,
        "--state-dir",
        state,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let status = final_status(&run);
    assert_eq!(status["succeeded"], 5, "{status}");
    assert_eq!(status["completedIndexes"], "0-4", "{status}");
    let creates = run.lines.iter().filter(|l| l["event"] == "create").count();
    assert_eq!(creates, 5, "{}", run.stdout);

    // Each worker printed its index; the logs come through pods/log.
    let logs = batch(&[
        "logs",
        "fan-out",
        "--executor",
        "k8s",
        "--namespace",
        &cluster.namespace,
        "--state-dir",
        state,
    ]);
    assert_eq!(logs.code, Some(0), "{}", logs.stderr);
    for i in 0..5 {
        let line = format!("worker {i} of fan-out");
        assert!(logs.stdout.contains(&line), "{line} in {}", logs.stdout);
    }
}

#[test]
fn cluster_mode_runs_pi_through_the_cluster_job_controller() {
    let Some(cluster) = cluster("cluster") else {
        return;
    };
    let run = batch(&[
        "run",
        &corpus("job.yaml"),
        "--executor",
        "k8s-cluster",
        "--namespace",
        &cluster.namespace,
        "-o",
        "json",
    ]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    let status = final_status(&run);
    assert_eq!(status["succeeded"], 1, "{status}");
    let conditions: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    assert_eq!(conditions, ["Complete"], "{status}");
    assert!(
        run.lines
            .iter()
            .any(|l| l["event"] == "condition" && l["type"] == "Complete"),
        "{}",
        run.stdout
    );
}

#[test]
fn cluster_mode_warns_of_each_field_the_server_does_not_keep() {
    let Some(cluster) = cluster("warn") else {
        return;
    };
    // Text output: warnings on stderr, naming the field; the Job still runs (as NonIndexed
    // on 1.20, which is what the warning says). Only the warnings are checked here.
    let file = tempfile::NamedTempFile::new().unwrap();
    let text = std::fs::read_to_string(corpus("job-pod-failure-policy-failjob.yaml")).unwrap();
    // Make it quick to end: the container exits 42 at once, and the first failure ends the
    // Job (1.20's back-off would take minutes).
    std::fs::write(
        file.path(),
        text.replace("sleep 30", "sleep 0")
            .replace("backoffLimit: 6", "backoffLimit: 0"),
    )
    .unwrap();
    let run = batch(&[
        "run",
        file.path().to_str().unwrap(),
        "--executor",
        "k8s-cluster",
        "--namespace",
        &cluster.namespace,
    ]);
    assert!(
        run.stderr.lines().any(|l| l
            .starts_with("warning: job/job-pod-failure-policy-failjob: spec.podFailurePolicy:")
            && l.contains("1.20")),
        "{}",
        run.stderr
    );
    // Without its podFailurePolicy (FailJob on exit code 42) the 1.20 controller counts the
    // failure against backoffLimit: Failed with BackoffLimitExceeded, not PodFailurePolicy.
    assert_eq!(run.code, Some(1), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("BackoffLimitExceeded"),
        "{}",
        run.stdout
    );
}

#[test]
fn an_unreachable_cluster_is_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("kubeconfig");
    std::fs::write(
        &config,
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n\
         contexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n\
         users: [{name: u, user: {token: t}}]\n",
    )
    .unwrap();
    for executor in ["k8s", "k8s-cluster"] {
        let out = Command::new(env!("CARGO_BIN_EXE_batch"))
            .args([
                "run",
                &corpus("job.yaml"),
                "--executor",
                executor,
                "--state-dir",
            ])
            .arg(dir.path().join("state"))
            .env("KUBECONFIG", &config)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{executor}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{executor}: {stderr}");
        assert!(stderr.starts_with("error: "), "{executor}: {stderr}");
        assert!(stderr.contains("127.0.0.1:9"), "{executor}: {stderr}");
    }
}
