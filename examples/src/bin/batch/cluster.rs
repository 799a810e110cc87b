//! `batch run FILE --executor k8s-cluster`: hand the Jobs and CronJobs to a cluster's own
//! controllers (server-side apply, field manager `batch`) and follow the Jobs there.

use batch_core::clock::{Clock, SystemClock};
use batch_core::model::{CronJob, Job, JobStatus};
use batch_executor_k8s::{K8sCluster, K8sExecutorConfig};
use futures_util::StreamExt;

use crate::run::{INTERRUPTED, completed, failed, final_line};

fn now() -> String {
    SystemClock
        .now()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Applies every object, then follows the Jobs until each is Complete or Failed. Exit
/// statuses as `batch run`: 0 every Job completed, 1 one failed, 2 the cluster cannot be
/// reached or refused an object, 130 interrupted (the Jobs go on in the cluster).
pub(crate) async fn run(
    config: K8sExecutorConfig,
    json: bool,
    jobs: Vec<Job>,
    cron_jobs: Vec<CronJob>,
) -> u8 {
    let cluster = match K8sCluster::connect(config).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: k8s-cluster executor: {}", e.message());
            return 2;
        }
    };
    let warn = |kind: &str, name: &str, warning: &str| {
        if json {
            let line = serde_json::json!({
                "t": now(), "event": "warning", kind: name,
                "reason": "FieldNotKept", "message": warning,
            });
            println!("{line}");
        } else {
            eprintln!("warning: {kind}/{name}: {warning}");
        }
    };
    let mut names = Vec::new();
    for job in &jobs {
        let name = job.name().to_owned();
        match cluster.apply_job(job).await {
            Ok(applied) => {
                for w in &applied.warnings {
                    warn("job", &name, w);
                }
                if !json {
                    eprintln!(
                        "job/{name}: applied to namespace {} (API server {})",
                        cluster.namespace(),
                        cluster.server_version()
                    );
                }
                names.push(name);
            }
            Err(e) => {
                eprintln!("error: job {name}: {}", e.message());
                return 2;
            }
        }
    }
    for cron_job in &cron_jobs {
        let name = cron_job.name().to_owned();
        match cluster.apply_cron_job(cron_job).await {
            Ok(applied) => {
                for w in &applied.warnings {
                    warn("cronJob", &name, w);
                }
                eprintln!(
                    "cronjob/{name}: applied to namespace {} (API server {}); the cluster's \
                     CronJob controller runs it from now on",
                    cluster.namespace(),
                    cluster.server_version()
                );
            }
            Err(e) => {
                eprintln!("error: cronjob {name}: {}", e.message());
                return 2;
            }
        }
    }

    let named = names.len() > 1;
    let follow_all = futures_util::future::join_all(
        names
            .iter()
            .map(|name| follow(&cluster, name.clone(), json, named)),
    );
    let outcomes = tokio::select! {
        outcomes = follow_all => outcomes,
        _ = tokio::signal::ctrl_c() => {
            eprintln!(
                "interrupted: the Jobs go on in the cluster (delete them there to stop them)"
            );
            return INTERRUPTED;
        }
    };
    if outcomes.iter().all(|ok| *ok) { 0 } else { 1 }
}

/// Prints the Job's conditions as they appear and its final status; true when it completed.
async fn follow(cluster: &K8sCluster, name: String, json: bool, named: bool) -> bool {
    let mut stream = Box::pin(cluster.watch_job(&name));
    let mut seen_conditions = 0usize;
    let mut last = JobStatus::default();
    while let Some(item) = stream.next().await {
        let status = match item {
            Ok(status) => status,
            Err(e) => {
                eprintln!("warning: job/{name}: {} (the watch goes on)", e.message());
                continue;
            }
        };
        for c in status.conditions.iter().skip(seen_conditions) {
            if json {
                let line = serde_json::json!({
                    "t": now(), "event": "condition", "job": name,
                    "type": c.type_, "reason": c.reason,
                });
                println!("{line}");
            } else {
                println!(
                    "job/{name}: condition {} ({}) {}",
                    c.type_.as_str(),
                    c.reason,
                    c.message
                );
            }
        }
        seen_conditions = status.conditions.len();
        last = status;
        if completed(&last) || failed(&last) {
            break;
        }
    }
    println!("{}", final_line(json, &name, &last, named));
    completed(&last)
}
