//! Behaviour of the local executor with real processes (`sh`, `true`, `false`, `sleep`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use batch_core::clock::{Clock, ManualClock, SystemClock};
use batch_core::executor::{
    ContainerKind, ContainerRunState, ErrorKind, Executor, ExecutorExt, JobRef, PodObservation,
    PodRequest, WatchEvent, WatchStream,
};
use batch_core::job::PodPhase;
use batch_core::model::{PodSpec, PodTemplateSpec};
use batch_executor_local::{LocalExecutor, LocalExecutorConfig, MemoryEnforcement};
use chrono::TimeZone;
use futures_util::StreamExt;

const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const INDEX: &str = "batch.kubernetes.io/job-completion-index";

fn executor_with(root: &std::path::Path, clock: Arc<dyn Clock>) -> LocalExecutor {
    LocalExecutor::with_clock(
        LocalExecutorConfig {
            root: root.to_path_buf(),
            ..LocalExecutorConfig::default()
        },
        clock,
    )
    .unwrap()
}

fn executor(root: &std::path::Path) -> LocalExecutor {
    executor_with(root, Arc::new(SystemClock))
}

fn manual_clock() -> ManualClock {
    ManualClock::new(chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
}

fn pod(name: &str, spec: serde_json::Value) -> PodRequest {
    let spec: PodSpec = serde_json::from_value(spec).unwrap();
    PodRequest {
        name: name.to_owned(),
        job: JobRef {
            namespace: "default".into(),
            name: "job".into(),
            uid: "uid-1".into(),
        },
        index: Some(2),
        labels: BTreeMap::from([(JOB_NAME.to_owned(), "job".to_owned())]),
        annotations: BTreeMap::from([(INDEX.to_owned(), "2".to_owned())]),
        hostname: None,
        spec,
    }
}

fn one(command: serde_json::Value) -> serde_json::Value {
    serde_json::json!({"restartPolicy": "Never",
        "containers": [{"name": "main", "image": "none", "command": command}]})
}

async fn observe(exec: &LocalExecutor, name: &str) -> Option<PodObservation> {
    exec.list(&BTreeMap::new())
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.name == name)
}

/// Polls until `pred` holds for the pod (generous timeout; no timing assertion).
async fn wait_until(
    exec: &LocalExecutor,
    name: &str,
    what: &str,
    pred: impl Fn(&PodObservation) -> bool,
) -> PodObservation {
    for _ in 0..3000 {
        if let Some(p) = observe(exec, name).await
            && pred(&p)
        {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "pod {name} never became {what}: {:#?}",
        observe(exec, name).await
    );
}

async fn wait_terminal(exec: &LocalExecutor, name: &str) -> PodObservation {
    wait_until(exec, name, "terminal", |p| p.phase.is_terminal()).await
}

async fn wait_running(exec: &LocalExecutor, name: &str) -> PodObservation {
    wait_until(exec, name, "running", |p| p.phase == PodPhase::Running).await
}

async fn next_event(stream: &mut WatchStream) -> WatchEvent {
    tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("a watch event in time")
        .expect("an open stream")
        .expect("no watch error")
}

fn container<'a>(
    p: &'a PodObservation,
    name: &str,
) -> &'a batch_core::executor::ContainerObservation {
    p.containers.iter().find(|c| c.name == name).unwrap()
}

fn exit(p: &PodObservation, name: &str) -> (i32, Option<i32>, String) {
    let t = container(p, name)
        .terminated()
        .unwrap_or_else(|| panic!("{name} terminated: {p:#?}"));
    (t.exit_code, t.signal, t.reason.clone())
}

#[tokio::test]
async fn exit_codes_decide_the_phase() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    exec.start(pod("ok", one(serde_json::json!(["true"]))))
        .await
        .unwrap();
    exec.start(pod("bad", one(serde_json::json!(["sh", "-c", "exit 3"]))))
        .await
        .unwrap();
    let ok = wait_terminal(&exec, "ok").await;
    assert_eq!(ok.phase, PodPhase::Succeeded);
    assert_eq!(exit(&ok, "main"), (0, None, "Completed".to_owned()));
    assert!(ok.finished_at.is_some() && ok.started_at.is_some());
    let bad = wait_terminal(&exec, "bad").await;
    assert_eq!(bad.phase, PodPhase::Failed);
    assert_eq!(exit(&bad, "main"), (3, None, "Error".to_owned()));
    let err = exec
        .start(pod("ok", one(serde_json::json!(["true"]))))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
}

#[tokio::test]
async fn a_sigkill_from_outside_is_exit_137_with_signal_9() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    exec.start(pod("killed", one(serde_json::json!(["sleep", "600"]))))
        .await
        .unwrap();
    wait_running(&exec, "killed").await;
    let pids = std::fs::read_to_string(exec.pod_dir("killed").join("pids")).unwrap();
    let pid = pids.split_whitespace().next().unwrap();
    let status = std::process::Command::new("kill")
        .args(["-KILL", pid])
        .status()
        .unwrap();
    assert!(status.success());
    let p = wait_terminal(&exec, "killed").await;
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(exit(&p, "main"), (137, Some(9), "Error".to_owned()));
}

#[tokio::test]
async fn env_index_and_field_refs_reach_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let spec = serde_json::json!({"restartPolicy": "Never", "containers": [{
    "name": "main", "image": "none",
    "command": ["sh", "-c", "echo \"$IDX|$POD|$GREETING|$JOB_COMPLETION_INDEX|$HOSTNAME|$(POD)|\"'$$(POD)' && pwd"],
    "env": [
        {"name": "JOB_COMPLETION_INDEX", "value": "2"},
        {"name": "IDX", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "GREETING", "value": "hi-$(POD)-$(JOB_COMPLETION_INDEX)"}
    ]}]});
    exec.start(pod("envpod", spec)).await.unwrap();
    let p = wait_terminal(&exec, "envpod").await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    let out = exec.logs_text("envpod", "main").await.unwrap();
    let mut lines = out.lines();
    assert_eq!(
        lines.next().unwrap(),
        "2|envpod|hi-envpod-2|2|envpod|envpod|$(POD)"
    );
    // The default working directory is the pod's private scratch directory.
    let cwd = std::path::PathBuf::from(lines.next().unwrap());
    assert_eq!(
        cwd.canonicalize().unwrap(),
        exec.pod_dir("envpod")
            .join("scratch")
            .canonicalize()
            .unwrap()
    );
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let spec = serde_json::json!({"restartPolicy": "Never",
        "initContainers": [
            {"name": "first", "image": "none", "command": ["sh", "-c", "sleep 0.2; echo first >> order"]},
            {"name": "second", "image": "none", "command": ["sh", "-c", "echo second >> order"]}],
        "containers": [{"name": "main", "image": "none", "command": ["sh", "-c", "echo main >> order; cat order"]}]});
    exec.start(pod("inits", spec)).await.unwrap();
    let p = wait_terminal(&exec, "inits").await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    assert_eq!(
        exec.logs_text("inits", "main").await.unwrap(),
        "first\nsecond\nmain\n"
    );
    let names: Vec<_> = p
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("main", ContainerKind::App),
            ("first", ContainerKind::Init),
            ("second", ContainerKind::Init)
        ]
    );
}

#[tokio::test]
async fn a_failed_init_container_fails_a_never_pod_without_running_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let spec = serde_json::json!({"restartPolicy": "Never",
        "initContainers": [{"name": "init", "image": "none", "command": ["false"]}],
        "containers": [{"name": "main", "image": "none", "command": ["true"]}]});
    exec.start(pod("initfail", spec)).await.unwrap();
    let p = wait_terminal(&exec, "initfail").await;
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(exit(&p, "init"), (1, None, "Error".to_owned()));
    assert!(container(&p, "main").terminated().is_none());
}

#[tokio::test]
async fn sidecars_start_first_and_are_stopped_after_the_app_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let mut events = exec.watch(&BTreeMap::new()).await.unwrap();
    let spec = serde_json::json!({"restartPolicy": "Never",
        "initContainers": [
            {"name": "side", "image": "none", "restartPolicy": "Always",
             "command": ["sh", "-c", "echo side >> order; exec sleep 600"]},
            // The sidecar runs alongside the later init containers (its process was started
            // first; what it writes may take a moment).
            {"name": "init", "image": "none", "command": ["sh", "-c",
                "until grep -q side order 2>/dev/null; do sleep 0.02; done; echo init >> order"]}],
        "containers": [{"name": "main", "image": "none", "command": ["sh", "-c", "echo main >> order; cat order"]}]});
    exec.start(pod("sidecar", spec)).await.unwrap();
    let p = wait_terminal(&exec, "sidecar").await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    let out = exec.logs_text("sidecar", "main").await.unwrap();
    assert_eq!(out, "side\ninit\nmain\n");
    let (code, signal, _) = exit(&p, "side");
    assert_eq!((code, signal), (143, Some(15)));
    assert_eq!(container(&p, "side").kind, ContainerKind::Sidecar);
    // The watch saw the pod through to the same terminal observation.
    loop {
        if let WatchEvent::Applied(o) = next_event(&mut events).await
            && o.name == "sidecar"
            && o.phase.is_terminal()
        {
            assert_eq!(*o, p);
            break;
        }
    }
}

#[tokio::test]
async fn on_failure_restarts_in_place_with_the_kubelet_backoff() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let spec = serde_json::json!({"restartPolicy": "OnFailure", "containers": [{
        "name": "main", "image": "none",
        "command": ["sh", "-c", "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo run $n; [ $n -ge 3 ]"]}]});
    exec.start(pod("flaky", spec)).await.unwrap();
    let backing_off = |restarts: i32, delay: &'static str| {
        move |p: &PodObservation| {
            let c = &p.containers[0];
            c.restart_count == restarts
                && matches!(&c.state, ContainerRunState::Waiting { reason, message }
                    if reason == "CrashLoopBackOff" && message.contains(delay))
        }
    };
    let p = wait_until(
        &exec,
        "flaky",
        "backing off 10s",
        backing_off(0, "back-off 10s"),
    )
    .await;
    assert_eq!(p.phase, PodPhase::Running);
    assert_eq!(p.containers[0].last_state.as_ref().unwrap().exit_code, 1);
    clock.advance(chrono::Duration::seconds(10));
    let p = wait_until(
        &exec,
        "flaky",
        "backing off 20s",
        backing_off(1, "back-off 20s"),
    )
    .await;
    assert_eq!(p.phase, PodPhase::Running);
    clock.advance(chrono::Duration::seconds(20));
    let p = wait_terminal(&exec, "flaky").await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    assert_eq!(p.containers[0].restart_count, 2);
    assert_eq!(p.containers[0].last_state.as_ref().unwrap().exit_code, 1);
    let out = exec.logs_text("flaky", "main").await.unwrap();
    assert_eq!(out, "run 1\nrun 2\nrun 3\n");
}

#[tokio::test]
async fn delete_kills_a_process_that_ignores_sigterm_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let mut spec = one(serde_json::json!([
        "sh",
        "-c",
        "trap '' TERM; echo ready; while :; do sleep 0.05; done"
    ]));
    spec["terminationGracePeriodSeconds"] = serde_json::json!(45);
    exec.start(pod("stubborn", spec)).await.unwrap();
    wait_running(&exec, "stubborn").await;
    for _ in 0..3000 {
        if exec.logs_text("stubborn", "main").await.unwrap() == "ready\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut events = exec.watch(&BTreeMap::new()).await.unwrap();
    exec.delete("stubborn", None).await.unwrap();
    let p = wait_until(&exec, "stubborn", "deleting", |p| p.deleting).await;
    assert!(p.deletion_time.is_some());
    // SIGTERM is ignored; the kill comes only once the 45 s grace period has passed.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !observe(&exec, "stubborn")
            .await
            .unwrap()
            .phase
            .is_terminal()
    );
    clock.advance(chrono::Duration::seconds(45));
    let mut last = None;
    loop {
        match next_event(&mut events).await {
            WatchEvent::Applied(o) => last = Some(o),
            WatchEvent::Deleted { name } => {
                assert_eq!(name, "stubborn");
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let last = last.unwrap();
    assert_eq!(last.phase, PodPhase::Failed);
    assert!(last.deleting);
    assert_eq!(exit(&last, "main"), (137, Some(9), "Error".to_owned()));
    assert!(observe(&exec, "stubborn").await.is_none());
    assert!(!exec.pod_dir("stubborn").exists());
}

#[tokio::test]
async fn deleting_a_finished_pod_removes_it_and_unknown_names_are_not_found() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    exec.start(pod("done", one(serde_json::json!(["true"]))))
        .await
        .unwrap();
    wait_terminal(&exec, "done").await;
    exec.delete("done", None).await.unwrap();
    assert!(observe(&exec, "done").await.is_none());
    assert!(!exec.pod_dir("done").exists());
    let err = exec.delete("done", None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn active_deadline_fails_the_pod_with_deadline_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let mut spec = one(serde_json::json!(["sleep", "600"]));
    spec["activeDeadlineSeconds"] = serde_json::json!(5);
    exec.start(pod("slow", spec)).await.unwrap();
    wait_running(&exec, "slow").await;
    clock.advance(chrono::Duration::seconds(5));
    let p = wait_terminal(&exec, "slow").await;
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(p.reason, "DeadlineExceeded");
    assert_eq!(exit(&p, "main"), (143, Some(15), "Error".to_owned()));
}

#[tokio::test]
async fn logs_capture_stdout_and_stderr_per_container() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let spec = serde_json::json!({"restartPolicy": "Never", "containers": [
        {"name": "a", "image": "none", "command": ["sh", "-c", "echo out; echo err >&2"]},
        {"name": "b", "image": "none", "command": ["echo", "bee"]}]});
    exec.start(pod("logs", spec)).await.unwrap();
    wait_terminal(&exec, "logs").await;
    assert_eq!(exec.logs_text("logs", "a").await.unwrap(), "out\nerr\n");
    assert_eq!(exec.logs_text("logs", "b").await.unwrap(), "bee\n");
    let e = exec.logs("logs", "nope").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    let e = exec.logs("nopod", "a").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn a_second_executor_on_the_same_root_lists_pods_and_reads_logs() {
    let dir = tempfile::tempdir().unwrap();
    let first = executor(dir.path());
    first
        .start(pod("finished", one(serde_json::json!(["echo", "hello"]))))
        .await
        .unwrap();
    first
        .start(pod("running", one(serde_json::json!(["sleep", "600"]))))
        .await
        .unwrap();
    let done = wait_terminal(&first, "finished").await;
    wait_running(&first, "running").await;

    let second = executor(dir.path());
    let selector = BTreeMap::from([(JOB_NAME.to_owned(), "job".to_owned())]);
    let mut seen = second.list(&selector).await.unwrap();
    seen.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0], done);
    assert_eq!(seen[1].name, "running");
    assert_eq!(seen[1].phase, PodPhase::Running);
    assert_eq!(
        second.logs_text("finished", "main").await.unwrap(),
        "hello\n"
    );
    let other = BTreeMap::from([(JOB_NAME.to_owned(), "other".to_owned())]);
    assert!(second.list(&other).await.unwrap().is_empty());

    first
        .delete("running", Some(chrono::Duration::zero()))
        .await
        .unwrap();
    for _ in 0..3000 {
        if second.list(&selector).await.unwrap().len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(second.list(&selector).await.unwrap().len(), 1);
    // The second executor can delete what the first one recorded.
    second.delete("finished", None).await.unwrap();
    assert!(second.list(&selector).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_recorded_pod_whose_executor_is_gone_is_reported_failed() {
    let dir = tempfile::tempdir().unwrap();
    let pod_dir = dir.path().join("pods").join("orphan");
    std::fs::create_dir_all(&pod_dir).unwrap();
    let request = pod("orphan", one(serde_json::json!(["sleep", "600"])));
    let observation = PodObservation {
        name: "orphan".into(),
        labels: request.labels.clone(),
        phase: PodPhase::Running,
        containers: vec![batch_core::executor::ContainerObservation {
            name: "main".into(),
            ..Default::default()
        }],
        ..Default::default()
    };
    // An owner that cannot be alive: pid 1 with a start time it does not have.
    let record = serde_json::json!({"request": request, "observation": observation,
        "owner": {"pid": 1, "startTime": 123_456_789_u64}});
    std::fs::write(pod_dir.join("pod.json"), record.to_string()).unwrap();
    let exec = executor(dir.path());
    let p = observe(&exec, "orphan").await.unwrap();
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(p.reason, "ExecutorLost");
    assert!(p.message.contains("exited before"), "{}", p.message);
    assert_eq!(exit(&p, "main").0, 137);
}

#[tokio::test]
async fn a_missing_binary_or_one_without_permission_is_a_start_error() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    exec.start(pod(
        "missing",
        one(serde_json::json!(["no-such-binary-xyz", "a"])),
    ))
    .await
    .unwrap();
    let script = dir.path().join("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\ntrue\n").unwrap();
    exec.start(pod(
        "denied",
        one(serde_json::json!([script.to_str().unwrap()])),
    ))
    .await
    .unwrap();
    exec.start(pod(
        "nocommand",
        serde_json::json!({"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]}),
    ))
    .await
    .unwrap();

    let p = wait_terminal(&exec, "missing").await;
    assert_eq!(p.phase, PodPhase::Failed);
    let t = container(&p, "main").terminated().unwrap();
    assert_eq!((t.exit_code, t.reason.as_str()), (127, "StartError"));
    assert!(t.message.contains("no-such-binary-xyz") && t.message.contains("\"main\""));

    let p = wait_terminal(&exec, "denied").await;
    let t = container(&p, "main").terminated().unwrap();
    assert_eq!(
        (t.exit_code, t.reason.as_str()),
        (126, "StartError"),
        "{t:?}"
    );
    assert!(t.message.contains("not-executable.sh"));

    let p = wait_terminal(&exec, "nocommand").await;
    let t = container(&p, "main").terminated().unwrap();
    assert_eq!(t.reason, "StartError");
    assert!(t.message.contains("no command"), "{}", t.message);
}

fn python() -> Option<String> {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[tokio::test]
async fn exceeding_the_memory_limit_is_oom_killed_with_exit_137() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    if !exec.capabilities().memory_limit {
        println!("SKIP exceeding_the_memory_limit: this machine has no writable memory cgroup");
        return;
    }
    let Some(python) = python() else {
        println!("SKIP exceeding_the_memory_limit: python3 is not installed");
        return;
    };
    let spec = serde_json::json!({"restartPolicy": "Never", "containers": [{
        "name": "hog", "image": "none",
        "command": [python, "-c", "import time; time.sleep(0.2); x = bytearray(512*1024*1024)"],
        "resources": {"limits": {"memory": "64Mi"}}}]});
    exec.start(pod("hog", spec)).await.unwrap();
    let p = wait_terminal(&exec, "hog").await;
    assert_eq!(p.phase, PodPhase::Failed);
    assert_eq!(exit(&p, "hog"), (137, Some(9), "OOMKilled".to_owned()));
}

#[tokio::test]
async fn the_address_space_fallback_makes_large_allocations_fail() {
    let dir = tempfile::tempdir().unwrap();
    let exec = LocalExecutor::new(LocalExecutorConfig {
        root: dir.path().to_path_buf(),
        memory_enforcement: MemoryEnforcement::AddressSpace,
        ..LocalExecutorConfig::default()
    })
    .unwrap();
    assert!(!exec.capabilities().memory_limit);
    let Some(python) = python() else {
        println!("SKIP the_address_space_fallback: python3 is not installed");
        return;
    };
    let spec = serde_json::json!({"restartPolicy": "Never", "containers": [{
        "name": "hog", "image": "none",
        "command": [python, "-c", "x = bytearray(2*1024*1024*1024)"],
        "resources": {"limits": {"memory": "256Mi"}}}]});
    exec.start(pod("hog", spec)).await.unwrap();
    let p = wait_terminal(&exec, "hog").await;
    assert_eq!(p.phase, PodPhase::Failed);
    let log = exec.logs_text("hog", "hog").await.unwrap();
    assert!(log.contains("MemoryError"), "{log}");
}

#[tokio::test]
async fn check_template_rejects_mounts_it_cannot_provide() {
    let dir = tempfile::tempdir().unwrap();
    let exec = executor(dir.path());
    let template: PodTemplateSpec = serde_json::from_value(serde_json::json!({"spec": {
        "restartPolicy": "Never",
        "volumes": [{"name": "data", "emptyDir": {}}],
        "containers": [{"name": "main", "image": "none", "command": ["true"],
            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}}))
    .unwrap();
    let errors = exec.check_template(&template).unwrap_err();
    let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
    assert_eq!(paths, ["template.spec.containers[0].volumeMounts[0]"]);
    assert_eq!(exec.name(), "local");
    let caps = exec.capabilities();
    assert!(caps.exit_codes && caps.signals && caps.adoption && caps.restart_in_place);
    assert!(!caps.hostname);
}

#[tokio::test]
async fn a_sidecar_that_cannot_start_holds_back_the_next_init_containers() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let spec = serde_json::json!({"restartPolicy": "Never",
        "activeDeadlineSeconds": 60,
        "initContainers": [
            {"name": "side", "image": "none", "restartPolicy": "Always",
             "command": ["/no/such/sidecar-binary"]},
            {"name": "setup", "image": "none", "command": ["sh", "-c", "echo ran"]}],
        "containers": [{"name": "main", "image": "none", "command": ["true"]}]});
    exec.start(pod("stuck", spec)).await.unwrap();
    // The sidecar's start fails and waits for its restart back-off (the clock stands still).
    let p = wait_until(&exec, "stuck", "backing off its sidecar", |p| {
        container(p, "side").last_state.is_some()
    })
    .await;
    assert_eq!(
        container(&p, "side").last_state.as_ref().unwrap().reason,
        "StartError"
    );
    // The next init container has not run, and the pod is still initializing.
    assert!(
        matches!(
            container(&p, "setup").state,
            ContainerRunState::Waiting { .. }
        ),
        "{p:#?}"
    );
    assert_eq!(p.phase, PodPhase::Pending);
    // The sidecar is still retried when its back-off passes; the pod's deadline ends it.
    clock.advance(chrono::Duration::seconds(10));
    wait_until(&exec, "stuck", "retrying its sidecar", |p| {
        container(p, "side").restart_count >= 1
    })
    .await;
    clock.advance(chrono::Duration::seconds(50));
    let p = wait_terminal(&exec, "stuck").await;
    assert_eq!(p.phase, PodPhase::Failed, "{p:#?}");
    assert_eq!(p.reason, "DeadlineExceeded");
    assert_eq!(exit(&p, "side").2, "StartError");
    assert!(container(&p, "setup").terminated().is_none(), "{p:#?}");
    assert_eq!(exec.logs_text("stuck", "setup").await.unwrap(), "");
    exec.delete("stuck", None).await.unwrap();
}

#[tokio::test]
async fn a_shorter_grace_period_reaches_sidecars_already_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let spec = serde_json::json!({"restartPolicy": "Never",
        "terminationGracePeriodSeconds": 600,
        "initContainers": [
            {"name": "side", "image": "none", "restartPolicy": "Always",
             "command": ["sh", "-c", "trap '' TERM; echo up > ready; while :; do sleep 0.05; done"]}],
        "containers": [{"name": "main", "image": "none",
            "command": ["sh", "-c", "until [ -f ready ]; do sleep 0.02; done"]}]});
    exec.start(pod("hurry", spec)).await.unwrap();
    // The app container is done; the sidecar ignores SIGTERM and would get 600 s.
    wait_until(&exec, "hurry", "stopping its sidecar", |p| {
        container(p, "main").terminated().is_some()
    })
    .await;
    // A deletion with grace 0 kills it now, without the clock moving.
    let mut events = exec.watch(&BTreeMap::new()).await.unwrap();
    exec.delete("hurry", Some(chrono::Duration::zero()))
        .await
        .unwrap();
    let last = loop {
        match next_event(&mut events).await {
            WatchEvent::Applied(p) if p.name == "hurry" && p.phase.is_terminal() => break *p,
            _ => {}
        }
    };
    assert_eq!(exit(&last, "main"), (0, None, "Completed".to_owned()));
    assert_eq!(exit(&last, "side"), (137, Some(9), "Error".to_owned()));
}

#[tokio::test]
async fn a_deadline_passing_while_only_sidecars_are_stopping_does_not_fail_the_pod() {
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let spec = serde_json::json!({"restartPolicy": "Never",
        "activeDeadlineSeconds": 5,
        "terminationGracePeriodSeconds": 60,
        "initContainers": [
            {"name": "side", "image": "none", "restartPolicy": "Always",
             "command": ["sh", "-c", "trap '' TERM; echo up > ready; while :; do sleep 0.05; done"]}],
        "containers": [{"name": "main", "image": "none",
            "command": ["sh", "-c", "until [ -f ready ]; do sleep 0.02; done"]}]});
    exec.start(pod("late", spec)).await.unwrap();
    // The app container succeeded; the sidecar ignores SIGTERM and waits for its kill.
    wait_until(&exec, "late", "stopping its sidecar", |p| {
        container(p, "main").terminated().is_some()
    })
    .await;
    clock.advance(chrono::Duration::seconds(5));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!observe(&exec, "late").await.unwrap().phase.is_terminal());
    clock.advance(chrono::Duration::seconds(60));
    let p = wait_terminal(&exec, "late").await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    assert_eq!(p.reason, "");
    assert_eq!(exit(&p, "main"), (0, None, "Completed".to_owned()));
    assert_eq!(exit(&p, "side"), (137, Some(9), "Error".to_owned()));
}

#[tokio::test]
async fn a_never_pod_whose_init_container_failed_stays_pending_until_its_sidecars_stop_then_fails()
{
    let dir = tempfile::tempdir().unwrap();
    let clock = manual_clock();
    let exec = executor_with(dir.path(), Arc::new(clock.clone()));
    let mut events = exec.watch(&BTreeMap::new()).await.unwrap();
    let spec = serde_json::json!({"restartPolicy": "Never",
        "terminationGracePeriodSeconds": 30,
        "initContainers": [
            {"name": "side", "image": "none", "restartPolicy": "Always",
             "command": ["sh", "-c", "trap '' TERM; echo up > ready; while :; do sleep 0.05; done"]},
            {"name": "init", "image": "none",
             "command": ["sh", "-c", "until [ -f ready ]; do sleep 0.02; done; exit 3"]}],
        "containers": [{"name": "main", "image": "none", "command": ["true"]}]});
    exec.start(pod("initside", spec)).await.unwrap();
    // The init container failed; the sidecar ignores SIGTERM and waits for its kill.
    let p = wait_until(&exec, "initside", "past its failed init container", |p| {
        container(p, "init").terminated().is_some()
    })
    .await;
    assert_eq!(p.phase, PodPhase::Pending, "{p:#?}");
    assert!(!p.ready);
    assert!(matches!(
        container(&p, "side").state,
        ContainerRunState::Running { .. }
    ));
    clock.advance(chrono::Duration::seconds(30));
    let p = wait_terminal(&exec, "initside").await;
    assert_eq!(p.phase, PodPhase::Failed, "{p:#?}");
    assert_eq!(exit(&p, "init"), (3, None, "Error".to_owned()));
    assert_eq!(exit(&p, "side"), (137, Some(9), "Error".to_owned()));
    assert!(container(&p, "main").terminated().is_none());
    // The watch never showed it Running, and its first terminal observation is its last.
    let mut terminal = None;
    loop {
        match next_event(&mut events).await {
            WatchEvent::Applied(o) if o.name == "initside" => {
                assert_ne!(o.phase, PodPhase::Running, "{o:#?}");
                if let Some(first) = &terminal {
                    assert_eq!(&*o, first);
                } else if o.phase.is_terminal() {
                    assert_eq!(*o, p);
                    terminal = Some(*o);
                }
            }
            _ => {}
        }
        if terminal.is_some() {
            // Deleting the finished pod removes it: the stream's next event for it is that.
            exec.delete("initside", None).await.unwrap();
            loop {
                match next_event(&mut events).await {
                    WatchEvent::Applied(o) if o.name == "initside" => {
                        assert_eq!(Some(&*o), terminal.as_ref());
                    }
                    WatchEvent::Deleted { name } if name == "initside" => return,
                    _ => {}
                }
            }
        }
    }
}
