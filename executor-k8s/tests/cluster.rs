//! Cluster mode against a real kube-apiserver 1.20 and its own Job and CronJob controllers
//! (`KUBECONFIG`; the test command starts them with scripts/k8s.sh), the test kubelet
//! running the pods they create. The corpus Jobs 1.20 understands run to completion through
//! the real Job controller, and what batch-core reads back matches the cluster's object;
//! every corpus Job using fields 1.20 does not keep gets a warning naming each of them.
//! Without `KUBECONFIG` each test prints `SKIP`, unless `BATCH_TEST_REQUIRE_K8S=1`: then it
//! fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use batch_core::executor::ErrorKind;
use batch_core::model::{ConditionStatus, CronJob, Job, JobStatus, Manifest};
use batch_executor_k8s::testing::TestKubelet;
use batch_executor_k8s::{K8sCluster, K8sExecutorConfig, convert};
use futures_util::StreamExt;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams};

const CORPUS: &str = "../../shared/corpus/k8s-website";

static NAMESPACES: AtomicU32 = AtomicU32::new(0);

/// A namespace with its own test kubelet, and the cluster client for it.
async fn cluster(test: &str) -> Option<(K8sCluster, TestKubelet, kube::Client)> {
    if !batch_executor_k8s::testing::cluster_configured(test) {
        return None;
    }
    let namespace = format!(
        "cluster-{}-{}",
        std::process::id(),
        NAMESPACES.fetch_add(1, Ordering::Relaxed)
    );
    let client = kube::Client::try_default().await.unwrap();
    let kubelet = TestKubelet::start(client.clone(), &namespace)
        .await
        .unwrap_or_else(|e| panic!("{test}: the test kubelet cannot start: {e}"));
    let cluster = K8sCluster::connect(K8sExecutorConfig {
        namespace: Some(namespace),
        ..K8sExecutorConfig::default()
    })
    .await
    .unwrap_or_else(|e| panic!("{test}: cannot connect: {e}"));
    Some((cluster, kubelet, client))
}

fn corpus_jobs(file: &str) -> Vec<Job> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (the corpus must be present)", path.display()));
    batch_core::loader::load_str(&text, file)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
        .into_iter()
        .filter_map(|doc| match doc.object {
            Some(Manifest::Job(job)) => Some(*job),
            _ => None,
        })
        .collect()
}

fn finished(status: &JobStatus) -> Option<&str> {
    status
        .conditions
        .iter()
        .find(|c| {
            (c.type_.as_str() == "Complete" || c.type_.as_str() == "Failed")
                && c.status == ConditionStatus::True
        })
        .map(|c| c.type_.as_str())
}

/// Follows the Job's status until it is Complete or Failed.
async fn until_finished(cluster: &K8sCluster, name: &str, within: Duration) -> Vec<JobStatus> {
    let mut seen = Vec::new();
    let mut stream = Box::pin(cluster.watch_job(name));
    let outcome = tokio::time::timeout(within, async {
        while let Some(item) = stream.next().await {
            match item {
                Ok(status) => {
                    let done = finished(&status).is_some();
                    seen.push(status);
                    if done {
                        return;
                    }
                }
                Err(e) => eprintln!("watch problem (the stream goes on): {e}"),
            }
        }
        panic!("the watch of {name} ended before the Job finished");
    })
    .await;
    assert!(
        outcome.is_ok(),
        "{name} did not finish within {within:?}; statuses seen: {seen:#?}"
    );
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pi_job_runs_to_completion_through_the_real_job_controller() {
    let Some((cluster, _kubelet, client)) = cluster("pi").await else {
        return;
    };
    let jobs = corpus_jobs("job.yaml");
    assert_eq!(jobs.len(), 1);
    let applied = cluster.apply_job(&jobs[0]).await.unwrap();
    assert!(
        applied.warnings.is_empty(),
        "1.20 keeps every field of job.yaml: {:?}",
        applied.warnings
    );
    // What the server stored, read back through batch-core: its defaults are there.
    assert_eq!(applied.object.spec.backoff_limit, Some(4));
    assert!(applied.object.metadata.uid.is_some());

    let seen = until_finished(&cluster, "pi", Duration::from_secs(120)).await;
    let last = seen.last().unwrap();
    assert_eq!(finished(last), Some("Complete"), "{last:#?}");
    assert_eq!((last.succeeded, last.failed, last.active), (1, 0, 0));
    assert!(last.start_time.is_some() && last.completion_time.is_some());
    // Statuses only move forward.
    for pair in seen.windows(2) {
        assert!(pair[1].succeeded >= pair[0].succeeded, "{seen:#?}");
    }

    // The status seen through batch-core is the cluster's, field for field.
    let raw: Api<batch::Job> = Api::namespaced(client.clone(), cluster.namespace());
    let raw = raw.get("pi").await.unwrap();
    let cluster_status = convert::job_status_from_k8s(raw.status.as_ref().unwrap()).unwrap();
    assert_eq!(&cluster_status, last);
    let through_get = cluster.job("pi").await.unwrap().unwrap();
    assert_eq!(&through_get.status, last);

    // One pod, run by the test kubelet, succeeded with pi's digits in its log.
    let pods: Api<Pod> = Api::namespaced(client, cluster.namespace());
    let listed = pods
        .list(&ListParams::default().labels("job-name=pi"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    let pod = &listed.items[0];
    assert_eq!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded")
    );
    let log = pods
        .logs(pod.metadata.name.as_deref().unwrap(), &Default::default())
        .await
        .unwrap();
    assert!(log.starts_with("3.14159"), "{log}");

    // The controller's events (recorded asynchronously: they may trail the status).
    let mut events = Vec::new();
    for _ in 0..60 {
        events = cluster.job_events("pi").await.unwrap();
        if events.iter().any(|e| e.reason == "Completed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let reasons: Vec<&str> = events.iter().map(|e| e.reason.as_str()).collect();
    assert!(reasons.contains(&"SuccessfulCreate"), "{events:?}");
    assert!(reasons.contains(&"Completed"), "{events:?}");
    assert!(events.iter().all(|e| e.type_ == "Normal"), "{events:?}");

    // Applying again changes nothing and warns of nothing; deleting removes it.
    let again = cluster.apply_job(&jobs[0]).await.unwrap();
    assert!(again.warnings.is_empty(), "{:?}", again.warnings);
    assert_eq!(again.object.metadata.uid, applied.object.metadata.uid);
    cluster.delete_job("pi").await.unwrap();
    let gone = cluster.delete_job("pi").await;
    assert!(
        gone.is_ok() || gone.as_ref().unwrap_err().kind() == ErrorKind::NotFound,
        "{gone:?}"
    );
}

/// Each corpus Job using a field newer than 1.20, and the field the warning must name.
const NEWER: &[(&str, &[&str])] = &[
    ("indexed-job.yaml", &["spec.completionMode"]),
    ("indexed-job-vol.yaml", &["spec.completionMode"]),
    (
        "job-backoff-limit-per-index-example.yaml",
        &[
            "spec.completionMode",
            "spec.backoffLimitPerIndex",
            "spec.maxFailedIndexes",
        ],
    ),
    (
        "job-backoff-limit-per-index-failindex.yaml",
        &["spec.backoffLimitPerIndex", "spec.podFailurePolicy"],
    ),
    (
        "job-pod-failure-policy-example.yaml",
        &["spec.podFailurePolicy"],
    ),
    (
        "job-pod-failure-policy-failjob.yaml",
        &["spec.podFailurePolicy"],
    ),
    (
        "job-pod-failure-policy-config-issue.yaml",
        &["spec.podFailurePolicy"],
    ),
    (
        "job-success-policy.yaml",
        &["spec.successPolicy", "spec.completionMode"],
    ),
    (
        "job-sidecar.yaml",
        &["spec.template.spec.initContainers[0].restartPolicy"],
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_the_server_does_not_keep_are_warned_about_by_name() {
    let Some((cluster, _kubelet, _client)) = cluster("newer-fields").await else {
        return;
    };
    for (file, fields) in NEWER {
        for job in corpus_jobs(file) {
            let name = job.metadata.name.clone().unwrap();
            let applied = cluster
                .apply_job(&job)
                .await
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            for field in *fields {
                assert!(
                    applied
                        .warnings
                        .iter()
                        .any(|w| w.starts_with(&format!("{field}:"))
                            && (w.contains("does not keep") || w.contains("does not know"))
                            && w.contains("1.20")),
                    "{file}: a warning naming {field}: {:?}",
                    applied.warnings
                );
            }
            // Every warning names a field that really is missing from the stored object.
            let stored = serde_json::to_value(&applied.object).unwrap();
            for w in &applied.warnings {
                let path = w.split(':').next().unwrap();
                let mut node = &stored;
                let mut present = true;
                for part in path.split('.') {
                    let (key, index) = match part.split_once('[') {
                        Some((k, i)) => (k, i.trim_end_matches(']').parse::<usize>().ok()),
                        None => (part, None),
                    };
                    node = match (node.get(key), index) {
                        (Some(v), Some(i)) => match v.get(i) {
                            Some(v) => v,
                            None => {
                                present = false;
                                break;
                            }
                        },
                        (Some(v), None) => v,
                        (None, _) => {
                            present = false;
                            break;
                        }
                    };
                }
                assert!(!present, "{file}: {path} is stored, yet warned about");
            }
            cluster.delete_job(&name).await.unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_corpus_jobs_are_refused_naming_the_field() {
    let Some((cluster, _kubelet, _client)) = cluster("invalid").await else {
        return;
    };
    // A template whose name holds `$ITEM`: the server refuses the name.
    let tmpl = corpus_jobs("job-tmpl.yaml");
    let e = cluster.apply_job(&tmpl[0]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("metadata.name"), "{e}");
    // No name at all: refused before asking the server.
    let unnamed = corpus_jobs("job-success-policy-example.yaml");
    let e = cluster.apply_job(&unnamed[0]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{e}");
    assert!(e.to_string().contains("metadata.name"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_corpus_cronjob_runs_through_the_real_cronjob_controller_as_v1beta1() {
    let Some((cluster, _kubelet, client)) = cluster("cronjob").await else {
        return;
    };
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join("cronjob.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let docs = batch_core::loader::load_str(&text, "cronjob.yaml").unwrap();
    let cron_job: CronJob = match docs.into_iter().next().and_then(|d| d.object) {
        Some(Manifest::CronJob(c)) => *c,
        other => panic!("cronjob.yaml holds a CronJob: {other:?}"),
    };
    let name = cron_job.metadata.name.clone().unwrap();
    let applied = cluster.apply_cron_job(&cron_job).await.unwrap();
    assert!(applied.warnings.is_empty(), "{:?}", applied.warnings);
    assert_eq!(applied.object.spec.schedule, cron_job.spec.schedule);

    // Within a minute and the controller's 10 s poll, the first Job exists and completes.
    let jobs: Api<batch::Job> = Api::namespaced(client, cluster.namespace());
    let job = tokio::time::timeout(Duration::from_secs(100), async {
        loop {
            let list = jobs.list(&ListParams::default()).await.unwrap();
            if let Some(j) = list.items.into_iter().find(|j| {
                j.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with(&format!("{name}-")))
            }) {
                break j;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    })
    .await
    .expect("the CronJob controller creates a Job within 100 s");
    let job_name = job.metadata.name.clone().unwrap();
    let seen = until_finished(&cluster, &job_name, Duration::from_secs(60)).await;
    assert_eq!(
        finished(seen.last().unwrap()),
        Some("Complete"),
        "{seen:#?}"
    );

    // The CronJob's status, streamed: it records the schedule (and, on 1.20, keeps the
    // finished Job out of `active`).
    let mut statuses = Box::pin(cluster.watch_cron_job(&name).await.unwrap());
    let status = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match statuses.next().await {
                Some(Ok(status)) if status.last_schedule_time.is_some() => break status,
                Some(_) => {}
                None => panic!("the CronJob's watch ended"),
            }
        }
    })
    .await
    .expect("the CronJob's status records the schedule");
    let polled = cluster.cron_job_status(&name).await.unwrap().unwrap();
    assert_eq!(polled.last_schedule_time, status.last_schedule_time);
    assert!(status.last_schedule_time.is_some(), "{status:?}");
    cluster.delete_cron_job(&name).await.unwrap();
    assert!(cluster.cron_job(&name).await.unwrap().is_none());
}
