//! Shim mode with real processes: pods outlive the process of the executor that started
//! them, and a new executor learns how they ended.
//!
//! `pods_outlive_a_killed_runner_and_a_new_executor_learns_their_end` runs the first
//! executor in a child process (this test binary again, running the ignored
//! `runner_process` test) and kills that process's whole process group with SIGKILL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use batch_core::executor::{
    ContainerObservation, ContainerRunState, Executor, JobRef, PodObservation, PodRequest,
    WatchEvent, WatchStream,
};
use batch_core::job::PodPhase;
use batch_core::model::PodSpec;
use batch_executor_local::{LocalExecutor, LocalExecutorConfig, ShimCommand, Supervisor};
use futures_util::StreamExt;

const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const SHIM: &str = env!("CARGO_BIN_EXE_batch-local-shim");
/// Set for the runner process: the executor root it uses.
const RUNNER_ROOT: &str = "BATCH_SHIM_TEST_RUNNER_ROOT";
/// Container environment variable naming the test, to find leftover processes.
const MARKER: &str = "BATCH_SHIM_TEST_MARKER";

fn shim_command() -> ShimCommand {
    ShimCommand {
        program: SHIM.into(),
        args: Vec::new(),
    }
}

fn executor_with(root: &Path, supervisor: Supervisor) -> LocalExecutor {
    LocalExecutor::new(LocalExecutorConfig {
        root: root.to_path_buf(),
        supervisor,
        ..LocalExecutorConfig::default()
    })
    .unwrap()
}

fn shim_executor(root: &Path) -> LocalExecutor {
    executor_with(root, Supervisor::Shim(shim_command()))
}

/// A pod running `sh -c script`, with the marker in its environment.
fn pod(name: &str, script: &str, marker: &Path) -> PodRequest {
    let spec: PodSpec = serde_json::from_value(serde_json::json!({
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 20,
        "containers": [{"name": "main", "image": "none", "command": ["sh", "-c", script],
            "env": [{"name": MARKER, "value": marker.to_string_lossy()}]}]
    }))
    .unwrap();
    PodRequest {
        name: name.to_owned(),
        job: JobRef {
            namespace: "default".into(),
            name: "job".into(),
            uid: "uid-1".into(),
        },
        index: None,
        labels: BTreeMap::from([(JOB_NAME.to_owned(), "job".to_owned())]),
        annotations: BTreeMap::new(),
        hostname: None,
        spec,
    }
}

async fn list(exec: &LocalExecutor) -> BTreeMap<String, PodObservation> {
    exec.list(&BTreeMap::new())
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect()
}

/// Lists until `done` holds for the pods (30 s at most).
async fn list_until(
    exec: &LocalExecutor,
    what: &str,
    done: impl Fn(&BTreeMap<String, PodObservation>) -> bool,
) -> BTreeMap<String, PodObservation> {
    let give_up = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pods = list(exec).await;
        if done(&pods) {
            return pods;
        }
        assert!(
            std::time::Instant::now() < give_up,
            "timed out waiting for {what}: {pods:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn terminated(p: &PodObservation) -> (i32, String) {
    let t = p.containers[0]
        .terminated()
        .unwrap_or_else(|| panic!("main terminated: {p:#?}"));
    (t.exit_code, t.reason.clone())
}

/// Follows a watch until `done` holds for the latest observations (30 s at most).
struct Follow {
    stream: WatchStream,
    latest: BTreeMap<String, PodObservation>,
    history: Vec<WatchEvent>,
}

impl Follow {
    async fn new(exec: &LocalExecutor) -> Follow {
        Follow {
            stream: exec.watch(&BTreeMap::new()).await.unwrap(),
            latest: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    async fn until(&mut self, what: &str, done: impl Fn(&Self) -> bool) {
        let give_up = tokio::time::Instant::now() + Duration::from_secs(30);
        while !done(self) {
            let event = tokio::time::timeout_at(give_up, self.stream.next())
                .await
                .unwrap_or_else(|_| {
                    panic!("timed out waiting for {what}; latest: {:#?}", self.latest)
                })
                .expect("an open watch")
                .expect("no watch error");
            match &event {
                WatchEvent::Applied(obs) => {
                    self.latest.insert(obs.name.clone(), (**obs).clone());
                }
                WatchEvent::Deleted { name } => {
                    self.latest.remove(name);
                }
                _ => {}
            }
            self.history.push(event);
        }
    }

    fn deleted(&self, name: &str) -> bool {
        self.history
            .iter()
            .any(|e| matches!(e, WatchEvent::Deleted { name: n } if n == name))
    }
}

/// Processes (not zombies) whose command line or environment mentions `marker`.
fn processes_mentioning(marker: &Path) -> Vec<String> {
    let marker = marker.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.bytes().all(|b| b.is_ascii_digit()) || name == me {
            continue;
        }
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let state = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().next());
        if state == Some("Z") {
            continue;
        }
        let text = |f: &str| {
            String::from_utf8_lossy(&std::fs::read(path.join(f)).unwrap_or_default())
                .replace('\0', " ")
        };
        let (cmdline, environ) = (text("cmdline"), text("environ"));
        if cmdline.contains(&marker) || environ.contains(&marker) {
            found.push(format!("{name}: {cmdline}"));
        }
    }
    found
}

/// Waits until no process mentions `marker` (10 s at most).
async fn assert_no_process_left(marker: &Path) {
    for _ in 0..500 {
        if processes_mentioning(marker).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("processes left: {:#?}", processes_mentioning(marker));
}

/// The runner process of `pods_outlive_a_killed_runner_and_a_new_executor_learns_their_end`:
/// starts three pods in shim mode, says so, and waits to be killed.
#[test]
#[ignore = "the runner process of the adoption test, which starts it"]
fn runner_process() {
    let Some(root) = std::env::var_os(RUNNER_ROOT) else {
        panic!("{RUNNER_ROOT} is not set: this test is started by another");
    };
    let root = PathBuf::from(root);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let exec = shim_executor(&root);
        exec.start(pod("fails", "sleep 2; exit 3", &root))
            .await
            .unwrap();
        exec.start(pod("succeeds", "sleep 2", &root)).await.unwrap();
        exec.start(pod(
            "long",
            "trap 'echo stopping; exit 0' TERM; sleep 30 & wait",
            &root,
        ))
        .await
        .unwrap();
        println!("RUNNER READY");
        std::future::pending::<()>().await;
    });
}

#[tokio::test]
async fn pods_outlive_a_killed_runner_and_a_new_executor_learns_their_end() {
    use tokio::io::AsyncBufReadExt as _;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut runner = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "runner_process", "--nocapture"])
        .env(RUNNER_ROOT, &root)
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(runner.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("RUNNER READY") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap();
    assert!(ready, "the runner process ended before starting its pods");
    // The runner dies with its whole process group, as with a Ctrl-C or a service manager.
    let pgid = nix::unistd::Pid::from_raw(i32::try_from(runner.id().unwrap()).unwrap());
    nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
    let status = runner.wait().await.unwrap();
    assert!(!status.success());

    // A new executor (another process would do the same) adopts the pods.
    let exec = shim_executor(&root);
    let mut watch = Follow::new(&exec).await;
    let pods = list_until(&exec, "three running pods", |pods| {
        pods.len() == 3 && pods.values().all(|p| p.phase == PodPhase::Running)
    })
    .await;
    for p in pods.values() {
        assert!(
            matches!(p.containers[0].state, ContainerRunState::Running { .. }),
            "{p:#?}"
        );
    }
    watch
        .until("the two short pods' ends", |w| {
            ["fails", "succeeds"]
                .iter()
                .all(|n| w.latest.get(*n).is_some_and(|p| p.phase.is_terminal()))
        })
        .await;
    let fails = &watch.latest["fails"];
    assert_eq!(fails.phase, PodPhase::Failed, "{fails:#?}");
    assert_eq!(terminated(fails), (3, "Error".to_owned()));
    assert_ne!(fails.reason, "ExecutorLost");
    let succeeds = &watch.latest["succeeds"];
    assert_eq!(succeeds.phase, PodPhase::Succeeded, "{succeeds:#?}");
    assert_eq!(terminated(succeeds), (0, "Completed".to_owned()));
    // Listing says the same, and keeps saying it.
    let pods = list(&exec).await;
    assert_eq!(&pods["fails"], fails);
    assert_eq!(&pods["succeeds"], succeeds);
    assert_eq!(pods["long"].phase, PodPhase::Running);

    // The long one is deleted gracefully by the new executor: its shim stops it (the
    // container's TERM trap runs) and removes the pod.
    exec.delete("long", Some(chrono::Duration::seconds(10)))
        .await
        .unwrap();
    watch.until("long deleted", |w| w.deleted("long")).await;
    assert!(!root.join("pods").join("long").exists());
    let pods = list(&exec).await;
    assert!(!pods.contains_key("long"), "{pods:#?}");
    assert_no_process_left(&root).await;
    // Every shim has exited: the finished pods' too.
    for name in ["fails", "succeeds"] {
        exec.delete(name, None).await.unwrap();
    }
    watch
        .until("every pod deleted", |w| {
            w.deleted("fails") && w.deleted("succeeds")
        })
        .await;
    assert!(list(&exec).await.is_empty());
}

/// `pod.json` as an executor in shim mode writes it when it accepts a pod, with an owner
/// that is not alive: the executor died before starting the pod's shim.
fn record_unstarted_pod(root: &Path, request: &PodRequest) -> PathBuf {
    let dir = root.join("pods").join(&request.name);
    std::fs::create_dir_all(&dir).unwrap();
    let observation = PodObservation {
        name: request.name.clone(),
        labels: request.labels.clone(),
        phase: PodPhase::Pending,
        containers: vec![ContainerObservation {
            name: "main".into(),
            state: ContainerRunState::Waiting {
                reason: "ContainerCreating".into(),
                message: String::new(),
            },
            ..Default::default()
        }],
        ..Default::default()
    };
    // Pid 1 with a start time it does not have: not alive.
    let record = serde_json::json!({"request": request, "observation": observation,
        "owner": {"pid": 1, "startTime": 123_456_789_u64}, "shim": false, "shimMode": true});
    std::fs::write(dir.join("pod.json"), record.to_string()).unwrap();
    dir
}

#[tokio::test]
async fn a_pod_whose_shim_never_started_is_started_by_the_next_executor() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let runs = root.join("runs");
    let script = format!("echo run >> {}; sleep 1; exit 4", runs.display());
    let pod_dir = record_unstarted_pod(root, &pod("unstarted", &script, root));

    // An in-process executor does not start shims: for it the pod is lost.
    let in_process = executor_with(root, Supervisor::InProcess);
    let lost = &list(&in_process).await["unstarted"];
    assert_eq!(lost.phase, PodPhase::Failed);
    assert_eq!(lost.reason, "ExecutorLost");

    let exec = shim_executor(root);
    let mut watch = Follow::new(&exec).await;
    let first = &list(&exec).await["unstarted"];
    assert_eq!(first.phase, PodPhase::Pending, "not failed: {first:#?}");
    // Listing again while it runs starts nothing more.
    let pods = list_until(&exec, "the pod running", |pods| {
        pods["unstarted"].phase == PodPhase::Running
    })
    .await;
    assert_eq!(pods.len(), 1);
    list(&exec).await;
    watch
        .until("the pod's end", |w| {
            w.latest
                .get("unstarted")
                .is_some_and(|p| p.phase.is_terminal())
        })
        .await;
    let end = &watch.latest["unstarted"];
    assert_eq!(end.phase, PodPhase::Failed);
    assert_eq!(terminated(end), (4, "Error".to_owned()));
    assert_eq!(std::fs::read_to_string(&runs).unwrap(), "run\n");
    assert!(pod_dir.join("pod.json").exists());
    assert_no_process_left(root).await;
}

#[tokio::test]
async fn a_deletion_before_the_shim_started_removes_the_pod_without_running_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let runs = root.join("runs");
    let script = format!("echo run >> {}", runs.display());
    let pod_dir = record_unstarted_pod(root, &pod("doomed", &script, root));
    // What `delete` leaves for a shim.
    std::fs::write(pod_dir.join("stop.json"), r#"{"graceMillis":0}"#).unwrap();
    let status = std::process::Command::new(SHIM)
        .arg(&pod_dir)
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!pod_dir.exists());
    assert!(!runs.exists());
}

#[tokio::test]
async fn a_corrupt_pod_record_is_a_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The shim on its own: a message and status 2.
    let bad = root.join("pods").join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    std::fs::write(bad.join("pod.json"), "{not json").unwrap();
    let out = std::process::Command::new(SHIM).arg(&bad).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is not a pod record"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Without a directory to lock either.
    let out = std::process::Command::new(SHIM)
        .arg(root.join("pods").join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    // Listing skips a directory that holds no readable pod.
    let exec = shim_executor(root);
    assert!(list(&exec).await.is_empty());
    std::fs::remove_dir_all(&bad).unwrap();

    // A shim that finds the record corrupt (made so by a wrapper, just before it starts):
    // the pod fails with the shim's message, and its record is repaired to say so.
    let wrapped = LocalExecutor::new(LocalExecutorConfig {
        root: root.to_path_buf(),
        supervisor: Supervisor::Shim(ShimCommand {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                r#"printf '{not json' > "$1/pod.json"; exec "$0" "$1""#.into(),
                SHIM.into(),
            ],
        }),
        ..LocalExecutorConfig::default()
    })
    .unwrap();
    let mut watch = Follow::new(&wrapped).await;
    wrapped.start(pod("corrupt", "true", root)).await.unwrap();
    watch
        .until("the pod's end", |w| {
            w.latest
                .get("corrupt")
                .is_some_and(|p| p.phase.is_terminal())
        })
        .await;
    let p = &watch.latest["corrupt"];
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(p.reason, "ExecutorLost");
    assert!(p.message.contains("shim exited"), "{}", p.message);
    assert!(p.message.contains("is not a pod record"), "{}", p.message);
    let again = &list(&shim_executor(root)).await["corrupt"];
    assert_eq!(again.phase, PodPhase::Failed);
    assert_eq!(again.message, p.message);
}

/// The pid of a pod's shim, once the shim has recorded itself in `pod.json`.
async fn shim_pid(pod_dir: &Path) -> i32 {
    for _ in 0..1500 {
        if let Ok(bytes) = std::fs::read(pod_dir.join("pod.json")) {
            let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            if record["shim"] == true {
                return i32::try_from(record["owner"]["pid"].as_u64().unwrap()).unwrap();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("no shim recorded in {}", pod_dir.display());
}

#[tokio::test]
async fn a_sigterm_without_a_deletion_stops_the_pod_and_records_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exec = shim_executor(root);
    let mut watch = Follow::new(&exec).await;
    exec.start(pod("stopped", "sleep 30", root)).await.unwrap();
    let pid = shim_pid(&exec.pod_dir("stopped")).await;
    watch
        .until("the pod running", |w| {
            w.latest
                .get("stopped")
                .is_some_and(|p| p.phase == PodPhase::Running)
        })
        .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    watch
        .until("the pod's end", |w| {
            w.latest
                .get("stopped")
                .is_some_and(|p| p.phase.is_terminal())
        })
        .await;
    let p = &watch.latest["stopped"];
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(p.reason, "Terminated");
    assert_eq!(terminated(p).0, 143);
    // Recorded, not deleted.
    let listed = &list(&shim_executor(root)).await["stopped"];
    assert_eq!(listed.reason, "Terminated", "{listed:#?}");
    assert_no_process_left(root).await;
}

#[tokio::test]
async fn a_killed_shim_fails_its_pod_saying_so() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let exec = shim_executor(root);
    let mut watch = Follow::new(&exec).await;
    exec.start(pod("orphaned", "sleep 30", root)).await.unwrap();
    let pid = shim_pid(&exec.pod_dir("orphaned")).await;
    watch
        .until("the pod running", |w| {
            w.latest
                .get("orphaned")
                .is_some_and(|p| p.phase == PodPhase::Running)
        })
        .await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    watch
        .until("the pod's end", |w| {
            w.latest
                .get("orphaned")
                .is_some_and(|p| p.phase.is_terminal())
        })
        .await;
    let p = &watch.latest["orphaned"];
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(p.reason, "ExecutorLost");
    assert!(p.message.contains("shim exited"), "{}", p.message);
    assert_eq!(terminated(p), (137, "ContainerStatusUnknown".to_owned()));
    // Its processes do not outlive it unobserved.
    assert_no_process_left(root).await;
}
