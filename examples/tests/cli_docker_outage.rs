//! Fault test: the Docker engine dies (SIGKILL) under a running
//! `batch run --executor docker` and comes back 3 s later.
//!
//! A Docker engine that dies does not take its containers with it: they run on under their
//! shims, and the restarted engine finds them again (checked: a `sleep` running at the kill
//! ends with 0 after the restart). What an outage does lose is the engine's events, so the
//! test also makes a pod die while the engine is down (its container's init process is
//! killed with SIGKILL, as a node would lose it): the executor must learn of that exit from
//! the restarted engine, and the runner count the pod as failed and replace it.
//!
//! Asserted from the JSON lines: the outage shows (`warning` events with reason
//! `ExecutorError`, only from the kill on and at least one while the engine is down); every
//! pod ends exactly once, with the exit code the engine recorded for its container; the
//! pods that failed are exactly those whose containers died with the engine down (the one
//! killed, plus any the engine's restart took down), each counted in `failed` and replaced;
//! the Job completes with 6 succeeded.
//!
//! Uses a private engine of its own (`testing::Dockerd`), never the shared one. Without
//! Docker the test prints `SKIP` and returns; it fails instead when
//! `BATCH_TEST_REQUIRE_DOCKER=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use batch_executor_docker::testing::{self, Dockerd};
use batch_executor_docker::{DockerExecutor, DockerExecutorConfig};
use bollard::query_parameters::InspectContainerOptions;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// Pods run 8 s: one running at the kill is still running when the engine is back 3 s later.
const MANIFEST: &str = "\
apiVersion: batch/v1
kind: Job
metadata: {name: outage}
spec:
  completions: 6
  parallelism: 2
  backoffLimit: 6
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox:test
        imagePullPolicy: IfNotPresent
        command: [sleep, '8']
";

/// The pods that were created and had not ended, after `lines`.
fn running(lines: &[Value]) -> BTreeSet<String> {
    let mut pods = BTreeSet::new();
    for line in lines {
        let pod = line["pod"].as_str().unwrap_or_default().to_owned();
        match line["event"].as_str() {
            Some("create") => {
                pods.insert(pod);
            }
            Some("exit" | "evict") => {
                pods.remove(&pod);
            }
            _ => {}
        }
    }
    pods
}

fn time(line: &Value) -> DateTime<Utc> {
    line["t"].as_str().unwrap().parse().unwrap()
}

/// The engine's record of a pod's (only) container: its init process and exit code.
async fn container(executor: &DockerExecutor, pod: &str) -> (i64, i64) {
    let inspect = executor
        .docker()
        .inspect_container(&format!("{pod}_main_0"), None::<InspectContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("container of pod {pod}: {e}"));
    let state = inspect.state.unwrap();
    (state.pid.unwrap_or(0), state.exit_code.unwrap_or(-1))
}

#[test]
fn the_job_completes_across_an_engine_outage_and_counts_the_pods_lost_as_failed() {
    let test = "outage";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if runtime.block_on(testing::test_engine()).is_none() {
        eprintln!("SKIP {test}: no Docker engine");
        return;
    }
    let mut dockerd = match Dockerd::start() {
        Ok(d) => d,
        Err(e) if testing::require_docker() => panic!("cannot start a private engine: {e}"),
        Err(e) => {
            eprintln!("SKIP {test}: cannot start a private engine: {e}");
            return;
        }
    };
    let host = dockerd.host();
    let executor = runtime.block_on(async {
        let config = DockerExecutorConfig {
            host: Some(host.clone()),
            ..DockerExecutorConfig::default()
        };
        let executor = DockerExecutor::connect(config).await.unwrap();
        testing::build_test_images(executor.docker()).await.unwrap();
        executor
    });

    let dir = std::env::temp_dir().join(format!("batch-docker-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("outage.yaml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .arg("run")
        .arg(&manifest)
        .args(["--executor", "docker", "-o", "json", "--state-dir"])
        .arg(dir.join("state"))
        .env("DOCKER_HOST", &host)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (send, receive) = mpsc::channel::<Value>();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let line = line.unwrap();
            let value =
                serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON: {line}: {e}"));
            if send.send(value).is_err() {
                break;
            }
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });

    // Wait until a pod has succeeded and two others have run for a second.
    let mut lines: Vec<Value> = Vec::new();
    let mut steady_since: Option<(Instant, BTreeSet<String>)> = None;
    let at_kill = loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never saw a success with two pods running: {lines:?}"
        );
        lines.extend(receive.try_iter());
        let succeeded = lines
            .iter()
            .any(|l| l["event"] == "exit" && l["exitCode"] == 0);
        let now = running(&lines);
        if succeeded && now.len() == 2 {
            match &steady_since {
                Some((since, pods)) if *pods == now => {
                    if since.elapsed() >= Duration::from_millis(1000) {
                        break now;
                    }
                }
                _ => steady_since = Some((Instant::now(), now)),
            }
        } else {
            steady_since = None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let victim = at_kill.first().unwrap().clone();
    let (victim_pid, _) = runtime.block_on(container(&executor, &victim));
    assert!(victim_pid > 0, "the container of {victim} runs");

    // The outage: the engine dies, one running container dies while it is down.
    let killed_at = Utc::now();
    dockerd.kill();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(victim_pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let restarting_at = Utc::now();
    dockerd.restart().unwrap();
    let restarted_at = Utc::now();

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(180) {
            let _ = child.kill();
            let _ = child.wait();
            lines.extend(receive.try_iter());
            panic!("the run did not end after the outage: {lines:#?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    reader.join().unwrap();
    lines.extend(receive.try_iter());
    let stderr = errors.join().unwrap();
    let shown = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    eprintln!(
        "{test}: killed the engine at {killed_at} and pod {victim}'s container (pid \
         {victim_pid}); restarting at {restarting_at}, back at {restarted_at}; pods running at \
         the kill: {at_kill:?}\n{shown}\nstderr:\n{stderr}"
    );

    assert_eq!(status.code(), Some(0), "{shown}\n{stderr}");
    let status = &lines.last().unwrap()["final"]["status"];
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True"),
        "{status}"
    );
    assert_eq!(status["succeeded"], 6, "{status}");

    // Every pod ends exactly once, with its container's exit code as the engine recorded it.
    let mut ends: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for line in &lines {
        if line["event"] == "exit" || line["event"] == "evict" {
            ends.entry(line["pod"].as_str().unwrap().to_owned())
                .or_default()
                .push(line);
        }
    }
    let created: Vec<String> = lines
        .iter()
        .filter(|l| l["event"] == "create")
        .map(|l| l["pod"].as_str().unwrap().to_owned())
        .collect();
    let mut lost = BTreeSet::new();
    for pod in &created {
        let end = ends.get(pod).map(Vec::as_slice).unwrap_or_default();
        assert_eq!(end.len(), 1, "pod {pod} ends exactly once: {shown}");
        assert_eq!(end[0]["event"], "exit", "{}", end[0]);
        let (_, exit_code) = runtime.block_on(container(&executor, pod));
        assert_eq!(end[0]["exitCode"], exit_code, "pod {pod}: {shown}");
        if exit_code != 0 {
            lost.insert(pod.clone());
        }
    }
    // The pods lost are those whose containers died while the engine was down: the one
    // killed (SIGKILL: 137), and any other the engine's restart took down.
    assert!(lost.contains(&victim), "{victim} failed: {shown}");
    assert_eq!(ends[&victim][0]["exitCode"], 137, "{shown}");
    assert!(
        lost.is_subset(&at_kill),
        "{lost:?} were running at the kill"
    );
    for pod in &lost {
        assert!(time(ends[pod][0]) >= killed_at, "{}", ends[pod][0]);
    }
    assert_eq!(status["failed"], lost.len(), "{status}");
    assert_eq!(
        created.len(),
        6 + lost.len(),
        "each lost pod is replaced: {shown}"
    );
    eprintln!(
        "{test}: pods lost with the engine: {lost:?} (of {} running at the kill)",
        at_kill.len()
    );

    // The outage shows: warnings with reason ExecutorError, only from the kill on, and at
    // least one while the engine was down.
    let warnings: Vec<&Value> = lines
        .iter()
        .filter(|l| l["event"] == "warning" && l["reason"] == "ExecutorError")
        .collect();
    assert!(!warnings.is_empty(), "no ExecutorError warning: {shown}");
    for w in &warnings {
        assert!(time(w) >= killed_at, "a warning before the outage: {w}");
        assert!(
            time(w) <= restarted_at + chrono::Duration::seconds(10),
            "a warning long after the engine came back: {w}"
        );
    }
    assert!(
        warnings.iter().any(|w| time(w) < restarting_at),
        "no warning while the engine was down: {shown}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    drop(dockerd);
}
