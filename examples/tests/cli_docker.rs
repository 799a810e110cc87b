//! End-to-end on Docker: `batch run --executor docker` on the Kubernetes documentation's own
//! examples, reaching the outcomes the Kubernetes docs describe, and `batch logs` on what
//! they left.
//!
//! Needs a Docker engine (`DOCKER_HOST`, else the default socket) with the test images
//! (`batch_executor_docker::testing` builds them): without one each test prints `SKIP` and
//! returns, and fails instead when `BATCH_TEST_REQUIRE_DOCKER=1`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn corpus(name: &str) -> String {
    format!(
        "{}/../../shared/corpus/k8s-website/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// The test engine, and a runtime to talk to it.
struct Engine {
    runtime: tokio::runtime::Runtime,
    docker: bollard::Docker,
}

/// The test engine (with the test images), or None after printing why not.
fn engine(test: &str) -> Option<Engine> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some(docker) = runtime.block_on(batch_executor_docker::testing::test_engine()) else {
        eprintln!("SKIP {test}: no Docker engine");
        return None;
    };
    Some(Engine { runtime, docker })
}

impl Engine {
    /// Removes what the runs with state directory `dir` left in the engine (a Job's
    /// containers stay after `batch run`, for `batch logs`): everything labelled with the
    /// executor's instance, which is the state directory's path.
    fn clean(&self, dir: &Path) {
        use bollard::query_parameters::{
            ListContainersOptions, ListVolumesOptions, RemoveContainerOptions, RemoveVolumeOptions,
        };
        let filters = std::collections::HashMap::from([(
            "label".to_owned(),
            vec![format!("batch.executor={}", dir.display())],
        )]);
        self.runtime.block_on(async {
            let containers = self
                .docker
                .list_containers(Some(ListContainersOptions {
                    all: true,
                    filters: Some(filters.clone()),
                    ..ListContainersOptions::default()
                }))
                .await
                .unwrap();
            for c in containers {
                let options = RemoveContainerOptions {
                    force: true,
                    ..RemoveContainerOptions::default()
                };
                let _ = self
                    .docker
                    .remove_container(&c.id.unwrap_or_default(), Some(options))
                    .await;
            }
            let volumes = self
                .docker
                .list_volumes(Some(ListVolumesOptions {
                    filters: Some(filters),
                }))
                .await
                .unwrap();
            for v in volumes.volumes.unwrap_or_default() {
                let options = RemoveVolumeOptions { force: true };
                let _ = self.docker.remove_volume(&v.name, Some(options)).await;
            }
        });
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A state directory of its own for one test (the Docker executor's pods are labelled with
/// it, so tests running at once never see each other's pods).
fn state_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("batch-docker-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// How one `batch` command ended.
#[derive(Debug)]
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Ran {
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }
}

/// Runs `batch ARGS --state-dir DIR`, killing it (and failing) after `limit`.
fn batch_in(dir: &Path, args: &[&str], limit: Duration) -> Ran {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .arg("--state-dir")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the batch binary runs");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stdout = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let ran = Ran {
        code: status.and_then(|s| s.code()).unwrap_or(-1),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
        took: start.elapsed(),
    };
    assert!(
        status.is_some(),
        "batch {args:?} still running after {limit:?}; output so far:\n{}\nstderr:\n{}",
        ran.stdout,
        ran.stderr
    );
    ran
}

/// Runs FILE on Docker with `--output json --logs`; returns the run, its lines and the final
/// status.
fn run_json(dir: &Path, file: &str, limit: Duration) -> (Ran, Vec<Value>, Value) {
    let ran = batch_in(
        dir,
        &["run", file, "--executor", "docker", "-o", "json", "--logs"],
        limit,
    );
    let lines = ran.lines();
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {}", ran.stderr));
    let status = last["final"]["status"].clone();
    assert!(
        status.is_object(),
        "last line is the final status: {last}; stderr: {}",
        ran.stderr
    );
    (ran, lines, status)
}

fn condition<'a>(status: &'a Value, type_: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_ && c["status"] == "True")
}

fn events<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["event"] == kind).collect()
}

/// Each pod's completion index, from the `create` events.
fn indexes(lines: &[Value]) -> BTreeMap<String, i64> {
    events(lines, "create")
        .into_iter()
        .map(|e| {
            (
                e["pod"].as_str().unwrap().to_owned(),
                e["index"].as_i64().unwrap(),
            )
        })
        .collect()
}

/// The lines a container printed, per completion index, from the `log` events.
fn logs_by_index(lines: &[Value], container: &str) -> BTreeMap<i64, Vec<String>> {
    let indexes = indexes(lines);
    let mut logs: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    for e in events(lines, "log") {
        if e["container"] == container {
            let index = indexes[e["pod"].as_str().unwrap()];
            logs.entry(index)
                .or_default()
                .push(e["line"].as_str().unwrap().to_owned());
        }
    }
    logs
}

const LIMIT: Duration = Duration::from_secs(180);

#[test]
fn indexed_job_workers_print_their_words_reversed() {
    let test = "indexed-job";
    let Some(engine) = engine(test) else {
        return;
    };
    let dir = state_dir(test);
    let (ran, lines, status) = run_json(&dir, &corpus("indexed-job.yaml"), LIMIT);
    // The docs: each index's init container writes its word, the worker prints it reversed.
    assert_eq!(ran.code, 0, "{lines:?}\n{}", ran.stderr);
    assert!(condition(&status, "Complete").is_some(), "{status}");
    assert_eq!(status["succeeded"], 5, "{status}");
    assert_eq!(status["completedIndexes"], "0-4", "{status}");
    assert_eq!(status["failed"].as_i64().unwrap_or(0), 0, "{status}");
    assert_eq!(events(&lines, "create").len(), 5, "{lines:?}");
    assert!(
        events(&lines, "exit").iter().all(|e| e["exitCode"] == 0),
        "{lines:?}"
    );
    let expected: BTreeMap<i64, Vec<String>> = ["oof", "rab", "zab", "xuq", "zyx"]
        .iter()
        .enumerate()
        .map(|(i, w)| (i as i64, vec![(*w).to_owned()]))
        .collect();
    assert_eq!(logs_by_index(&lines, "worker"), expected, "{lines:?}");

    // `batch logs` reads them back through the Docker executor.
    let out = batch_in(
        &dir,
        &[
            "logs",
            "indexed-job",
            "--executor",
            "docker",
            "--index",
            "2",
            "-c",
            "worker",
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "zab\n");
    // Every container of every pod, init containers first, under headers.
    let out = batch_in(
        &dir,
        &["logs", "indexed-job", "--executor", "docker"],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout.matches("==> ").count(), 10, "{}", out.stdout);
    assert!(out.stdout.contains("/input <==\n"), "{}", out.stdout);
    for word in ["oof", "rab", "zab", "xuq", "zyx"] {
        assert!(
            out.stdout.contains(&format!("\n{word}\n")),
            "{}",
            out.stdout
        );
    }
    // Another state directory is another instance: it sees none of these pods.
    let other = state_dir("indexed-job-other");
    let out = batch_in(
        &other,
        &["logs", "indexed-job", "--executor", "docker"],
        LIMIT,
    );
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("no pods of job"), "{}", out.stderr);
    engine.clean(&other);
    engine.clean(&dir);
}

#[test]
fn indexed_job_vol_workers_print_their_index() {
    let test = "indexed-job-vol";
    let Some(engine) = engine(test) else {
        return;
    };
    let dir = state_dir(test);
    let (ran, lines, status) = run_json(&dir, &corpus("indexed-job-vol.yaml"), LIMIT);
    // The downward API volume holds the index; reversing one digit gives the digit.
    assert_eq!(ran.code, 0, "{lines:?}\n{}", ran.stderr);
    assert!(condition(&status, "Complete").is_some(), "{status}");
    assert_eq!(status["succeeded"], 5, "{status}");
    assert_eq!(status["completedIndexes"], "0-4", "{status}");
    let expected: BTreeMap<i64, Vec<String>> = (0..5).map(|i| (i, vec![i.to_string()])).collect();
    assert_eq!(logs_by_index(&lines, "worker"), expected, "{lines:?}");

    let out = batch_in(
        &dir,
        &[
            "logs",
            "indexed-job",
            "--executor",
            "docker",
            "--index",
            "4",
        ],
        LIMIT,
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "4\n");
    engine.clean(&dir);
}

#[test]
fn sidecar_job_completes_although_its_sidecar_never_exits() {
    let test = "sidecar";
    let Some(engine) = engine(test) else {
        return;
    };
    let dir = state_dir(test);
    let (ran, lines, status) = run_json(&dir, &corpus("job-sidecar.yaml"), LIMIT);
    // `tail -F` never exits by itself: the pod ends (Succeeded) when the main container
    // does, and the sidecar is stopped. As on Kubernetes, `sh` is the container's PID 1 and
    // ignores SIGTERM, so the stop takes the grace period (30 s) and ends in SIGKILL.
    assert_eq!(ran.code, 0, "{lines:?}\n{}", ran.stderr);
    assert!(condition(&status, "Complete").is_some(), "{status}");
    assert_eq!(status["succeeded"], 1, "{status}");
    assert_eq!(status["failed"].as_i64().unwrap_or(0), 0, "{status}");
    assert_eq!(events(&lines, "create").len(), 1, "{lines:?}");
    assert_eq!(events(&lines, "exit").len(), 1, "{lines:?}");
    assert!(events(&lines, "evict").is_empty(), "{lines:?}");
    // The sidecar shared the emptyDir with the main container: it saw the line written
    // (it runs for the whole grace period, so `tail -F` has found the file).
    assert!(
        events(&lines, "log")
            .iter()
            .any(|e| e["container"] == "logshipper" && e["line"] == "logging"),
        "{lines:?}"
    );
    eprintln!("{test}: the run took {:.1} s", ran.took.as_secs_f64());
    engine.clean(&dir);
}

#[test]
fn pod_failure_policy_failjob_example_fails_the_job_on_exit_code_42() {
    let test = "failjob";
    let Some(engine) = engine(test) else {
        return;
    };
    let dir = state_dir(test);
    // The original manifest: each pod sleeps 30 s before exiting with 42.
    let (ran, lines, status) =
        run_json(&dir, &corpus("job-pod-failure-policy-failjob.yaml"), LIMIT);
    // The docs: the first pod to exit with 42 fails the whole Job (FailJob); the other
    // running pod is terminated; no pod is retried.
    assert_eq!(ran.code, 1, "{lines:?}\n{}", ran.stderr);
    let failed = condition(&status, "Failed").unwrap_or_else(|| panic!("{status}"));
    assert_eq!(failed["reason"], "PodFailurePolicy", "{status}");
    assert!(
        failed["message"].as_str().unwrap().contains("exit code 42"),
        "{failed}"
    );
    assert_eq!(status["active"].as_i64().unwrap_or(0), 0, "{status}");
    assert_eq!(status["succeeded"].as_i64().unwrap_or(0), 0, "{status}");
    assert_eq!(events(&lines, "create").len(), 2, "{lines:?}");
    assert!(
        events(&lines, "exit").iter().any(|e| e["exitCode"] == 42),
        "{lines:?}"
    );
    assert!(
        events(&lines, "log")
            .iter()
            .any(|e| e["container"] == "main"
                && e["line"]
                    == "Hello world! I'm going to exit with 42 to simulate a software bug."),
        "{lines:?}"
    );
    assert!(ran.took >= Duration::from_secs(30), "{:?}", ran.took);
    engine.clean(&dir);
}

#[test]
fn config_issue_example_fails_the_job_through_the_config_issue_condition() {
    let test = "config-issue";
    let Some(engine) = engine(test) else {
        return;
    };
    let dir = state_dir(test);
    let file = corpus("job-pod-failure-policy-config-issue.yaml");
    let (ran, lines, status) = run_json(&dir, &file, LIMIT);
    // The image cannot be pulled: each pod fails without running (no exit code: an `evict`
    // event), with the ConfigIssue condition, which the FailJob rule matches at once.
    assert_eq!(ran.code, 1, "{lines:?}\n{}", ran.stderr);
    let failed = condition(&status, "Failed").unwrap_or_else(|| panic!("{status}"));
    assert_eq!(failed["reason"], "PodFailurePolicy", "{status}");
    let message = failed["message"].as_str().unwrap();
    assert!(
        message.contains("has condition ConfigIssue matching FailJob rule at index 0"),
        "{failed}"
    );
    assert!(events(&lines, "exit").is_empty(), "{lines:?}");
    assert!(!events(&lines, "evict").is_empty(), "{lines:?}");
    assert!(events(&lines, "log").is_empty(), "{lines:?}");
    let created = events(&lines, "create").len();
    assert_eq!(created, 2, "{lines:?}");
    assert_eq!(status["failed"], 2, "{status}");
    assert_eq!(status["succeeded"].as_i64().unwrap_or(0), 0, "{status}");
    // Fails fast: no registry is waited for again and again.
    assert!(ran.took < Duration::from_secs(60), "{:?}", ran.took);

    // The text output says why the pods failed: the image.
    let out = batch_in(&dir, &["run", &file, "--executor", "docker"], LIMIT);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stdout.contains("ErrImagePull"), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "job/job-pod-failure-policy-config-issue: Failed — succeeded 0, failed 2 \
             (PodFailurePolicy: "
        ),
        "{}",
        out.stdout
    );
    engine.clean(&dir);
}

#[test]
fn an_unreachable_engine_is_one_error_line_and_exit_2() {
    // No engine needed: nothing listens on this socket.
    let dir = state_dir("unreachable");
    let socket = dir.join("no-docker.sock");
    let host = format!("unix://{}", socket.display());
    let out = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args([
            "run",
            &corpus("job.yaml"),
            "--executor",
            "docker",
            "-o",
            "json",
        ])
        .arg("--state-dir")
        .arg(&dir)
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = common::stderr(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "error: docker executor: cannot reach the Docker engine at {host}: "
        )),
        "{stderr}"
    );
    // `batch logs` too.
    let out = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(["logs", "pi", "--executor", "docker"])
        .arg("--state-dir")
        .arg(&dir)
        .env("DOCKER_HOST", &host)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = common::stderr(&out);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: docker executor: cannot reach the Docker engine at "),
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
