//! Fault test: kube-apiserver dies (SIGKILL) under a running `batch run --executor k8s`
//! (pod mode) and is started again 6 s later, on the same port and etcd.
//!
//! While it is down, pods keep running on their (test) kubelet and some end: the kubelet
//! reports their end once the server is back, the executor's watch resumes (kube's watcher,
//! with back-off; re-listing when its resource version is gone) and the runner must learn of
//! every end — none lost, none counted twice, no pod created twice. Asserted from the JSON
//! lines and the server's own pods: every created pod has exactly one `exit`, the Job
//! completes with every index succeeded once (6 of 6, none failed) and the server holds
//! exactly the 6 pods, all Succeeded.
//!
//! Uses a private control plane of its own (`scripts/k8s.sh start`, the cached binaries),
//! never the shared one. Without `KUBECONFIG` (no control plane was built) the test prints
//! `SKIP`; it fails instead when `BATCH_TEST_REQUIRE_K8S=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use batch_executor_k8s::testing::TestKubelet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};
use serde_json::Value;

/// Pods run 4 s, two at a time: some are running at the kill and end during the outage.
const MANIFEST: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: outage}
spec:
  completions: 6
  parallelism: 2
  completionMode: Indexed
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'sleep 4; echo index $JOB_COMPLETION_INDEX']
";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/k8s.sh")
}

fn k8s(command: &str, dir: &Path) {
    let out = Command::new("bash")
        .arg(script())
        .arg(command)
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/k8s.sh {command} {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The private control plane, stopped on drop.
struct ControlPlane {
    dir: PathBuf,
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn the_job_completes_across_an_api_server_outage_with_every_pod_counted_once() {
    if !batch_executor_k8s::testing::cluster_configured("api-server outage") {
        return;
    }
    let dir = PathBuf::from(format!("/tmp/batch-k8s-outage-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let plane = ControlPlane { dir: dir.clone() };
    k8s("start", &plane.dir);
    let kubeconfig = dir.join("kubeconfig");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let namespace = "outage";
    let client = runtime.block_on(async {
        let config = kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).unwrap(),
            &kube::config::KubeConfigOptions::default(),
        )
        .await
        .unwrap();
        kube::Client::try_from(config).unwrap()
    });
    let _kubelet = runtime
        .block_on(TestKubelet::start(client.clone(), namespace))
        .unwrap();

    let work = tempfile::tempdir().unwrap();
    let manifest = work.path().join("outage.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .arg("run")
        .arg(&manifest)
        .args(["--executor", "k8s", "--namespace", namespace, "-o", "json"])
        .arg("--state-dir")
        .arg(work.path().join("state"))
        .env("KUBECONFIG", &kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<Value>();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                let _ = tx.send(v);
            }
        }
    });

    // Kill once the first two pods run (they end during the outage), restart 6 s later.
    let mut lines = Vec::new();
    let start = Instant::now();
    while lines
        .iter()
        .filter(|l: &&Value| l["event"] == "create")
        .count()
        < 2
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pods: {lines:?}"
        );
        if let Ok(v) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(v);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    k8s("kill-apiserver", &dir);
    std::thread::sleep(Duration::from_secs(6));
    k8s("start-apiserver", &dir);

    let deadline = Instant::now() + Duration::from_secs(180);
    let status = loop {
        if let Some(code) = child.try_wait().unwrap() {
            break code;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("batch run did not finish within 180 s after the restart: {lines:#?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(0), "{lines:#?}\n{stderr}");

    // Every pod created once and seen ending once.
    let mut ends: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let created: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "create")
        .map(|l| l["pod"].as_str().unwrap().to_owned())
        .collect();
    for l in lines.iter().filter(|l| l["event"] == "exit") {
        ends.entry(l["pod"].as_str().unwrap().to_owned())
            .or_default()
            .push(l["exitCode"].as_i64().unwrap_or(-1));
    }
    assert_eq!(created.len(), 6, "one pod per index: {lines:#?}");
    for pod in &created {
        assert_eq!(
            ends.get(pod),
            Some(&vec![0]),
            "{pod} ends once, with 0: {lines:#?}"
        );
    }
    let last = &lines.last().unwrap()["final"]["status"];
    assert_eq!(last["succeeded"], 6, "{last}");
    assert_eq!(last["failed"].as_i64().unwrap_or(0), 0, "{last}");
    assert_eq!(last["completedIndexes"], "0-5", "{last}");

    // The server agrees: six pods, all Succeeded.
    let pods = runtime.block_on(async {
        Api::<Pod>::namespaced(client, namespace)
            .list(&ListParams::default().labels("batch.kubernetes.io/job-name=outage"))
            .await
            .unwrap()
    });
    let phases: Vec<String> = pods
        .items
        .iter()
        .map(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.phase.clone())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(phases, vec!["Succeeded"; 6], "{phases:?}");
    // The outage was seen: the executor's errors are reported as warnings.
    let warnings: Vec<&Value> = lines.iter().filter(|l| l["event"] == "warning").collect();
    assert!(
        !warnings.is_empty(),
        "the outage shows as warnings: {lines:#?}"
    );
    println!(
        "api-server outage: {} pods created, {} ends seen, {} warnings, wall {:?}: {:?}",
        created.len(),
        ends.len(),
        warnings.len(),
        start.elapsed(),
        warnings.first()
    );
}
