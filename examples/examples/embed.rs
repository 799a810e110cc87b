//! Embedding batch in a tokio service: submit a Job, watch its status stream, and react when
//! it finishes.
//!
//! The Job is an Indexed fan-out of five shell pods on the local executor (real processes),
//! two at a time; index 3 fails on its first attempt and is retried after the pod-failure
//! backoff, exactly as the Kubernetes Job controller would do it.
//!
//! Run: `cargo run -p batch-examples --example embed`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use batch_core::clock::SystemClock;
use batch_core::model::{Job, JobConditionType};
use batch_core::runner::{RunEventKind, Runner};
use batch_executor_local::{LocalExecutor, LocalExecutorConfig};

const JOB: &str = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: embed-demo}
spec:
  completions: 5
  parallelism: 2
  completionMode: Indexed
  backoffLimit: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: work
        image: busybox
        env: [{name: MARKERS, value: "@MARKERS@"}]
        command: [sh, -c]
        args:
        - |
          marker="$MARKERS/index-$JOB_COMPLETION_INDEX"
          if [ "$JOB_COMPLETION_INDEX" = 3 ] && [ ! -e "$marker" ]; then
            touch "$marker"; echo "index 3: failing once"; exit 1
          fi
          echo "index $JOB_COMPLETION_INDEX done"
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Pods, their scratch directories and logs live under a directory of our choice.
    let root = std::env::temp_dir().join(format!("batch-embed-{}", std::process::id()));
    let executor = LocalExecutor::new(LocalExecutorConfig {
        root: root.join("local"),
        ..LocalExecutorConfig::default()
    })?;
    let runner = Runner::new(Arc::new(executor), Arc::new(SystemClock));

    // Index 3 remembers its first failure in a folder shared by its attempts.
    let markers = root.join("markers");
    std::fs::create_dir_all(&markers)?;
    let job: Job = serde_norway::from_str(&JOB.replace("@MARKERS@", &markers.to_string_lossy()))?;
    let handle = runner.submit_job(job)?;

    // Events: pod creations and exits as they happen.
    let mut events = handle.events();
    tokio::spawn(async move {
        while let Ok(event) = events.recv().await {
            match event.kind {
                RunEventKind::Create { pod, index } => {
                    println!("created {pod} for index {index:?}");
                }
                RunEventKind::Exit { pod, exit_code } => println!("{pod} exited {exit_code}"),
                _ => {}
            }
        }
    });

    // The status stream: react to every change.
    let mut status = handle.status_watch();
    let watcher = tokio::spawn(async move {
        while status.changed().await.is_ok() {
            let s = status.borrow_and_update().clone();
            println!(
                "status: active {} succeeded {} failed {} completed indexes {:?}",
                s.active, s.succeeded, s.failed, s.completed_indexes
            );
        }
    });

    let finished = handle.wait().await?;
    watcher.abort();
    match finished.condition(&JobConditionType::Complete) {
        Some(_) => println!("the Job completed: time to publish the results"),
        None => println!("the Job failed: time to page someone"),
    }
    let _ = std::fs::remove_dir_all(&root);
    Ok(())
}
