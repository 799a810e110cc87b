//! End-to-end: `batch run` on the Kubernetes documentation's own examples, with real
//! processes on the local executor, reaching the outcomes the Kubernetes docs describe;
//! `batch logs` on what they left; bad input; Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use common::{json_lines, stderr};

fn corpus(name: &str) -> String {
    format!(
        "{}/../../shared/corpus/k8s-website/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A state directory of its own for one test, removed when the test ends.
struct StateDir(PathBuf);

impl std::ops::Deref for StateDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for StateDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for StateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn state_dir(test: &str) -> StateDir {
    let dir = std::env::temp_dir().join(format!("batch-run-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    StateDir(dir)
}

fn batch_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .arg("--state-dir")
        .arg(dir)
        .output()
        .expect("the batch binary runs")
}

/// Runs FILE with `--output json` and returns the exit code, the event lines and the final
/// status.
fn run_json(test: &str, file: &str) -> (i32, Vec<Value>, Value, StateDir) {
    let dir = state_dir(test);
    let out = batch_in(&dir, &["run", file, "--output", "json"]);
    let lines = json_lines(&out);
    let last = lines
        .last()
        .unwrap_or_else(|| panic!("no output; stderr: {}", stderr(&out)));
    let status = last["final"]["status"].clone();
    assert!(
        status.is_object(),
        "last line is the final status: {last}; stderr: {}",
        stderr(&out)
    );
    (out.status.code().unwrap(), lines, status, dir)
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

#[test]
fn pi_job_completes_and_its_log_holds_pi() {
    let (code, lines, status, dir) = run_json("pi", &corpus("job.yaml"));
    assert_eq!(code, 0, "{lines:?}");
    assert!(condition(&status, "Complete").is_some(), "{status}");
    assert_eq!(status["succeeded"], 1);
    assert_eq!(events(&lines, "create").len(), 1);
    assert_eq!(events(&lines, "exit")[0]["exitCode"], 0);

    let out = batch_in(&dir, &["logs", "pi"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let log = String::from_utf8(out.stdout).unwrap();
    assert!(
        log.starts_with("3.14159265358979323846264338327950288419716939937510"),
        "log: {log}"
    );
    // bpi(1000): 1000 significant digits.
    assert_eq!(
        log.trim().chars().filter(char::is_ascii_digit).count(),
        1000
    );
}

#[test]
fn backoff_limit_per_index_example_fails_the_even_indexes_only() {
    let (code, lines, status, _) = run_json(
        "per-index",
        &corpus("job-backoff-limit-per-index-example.yaml"),
    );
    // The docs: odd indexes succeed, even ones fail twice (one retry each), and the Job is
    // marked failed once every index has been processed.
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(status["completedIndexes"], "1,3,5,7,9", "{status}");
    assert_eq!(status["failedIndexes"], "0,2,4,6,8", "{status}");
    assert_eq!(status["succeeded"], 5);
    assert_eq!(status["failed"], 10);
    assert_eq!(
        condition(&status, "Failed").unwrap()["reason"],
        "FailedIndexes"
    );
    assert_eq!(events(&lines, "create").len(), 15);
}

#[test]
fn backoff_limit_per_index_failindex_example_fails_indexes_0_and_1() {
    let (code, lines, status, _) = run_json(
        "failindex",
        &corpus("job-backoff-limit-per-index-failindex.yaml"),
    );
    // Index 0 exits 1 (one retry, then the index fails); index 1 exits 42, which the
    // FailIndex rule matches (no retry); 2 and 3 succeed.
    assert_eq!(code, 1, "{lines:?}");
    assert_eq!(status["failedIndexes"], "0,1", "{status}");
    assert_eq!(status["completedIndexes"], "2,3", "{status}");
    assert_eq!(status["failed"], 3);
    assert_eq!(status["succeeded"], 2);
    assert_eq!(
        condition(&status, "Failed").unwrap()["reason"],
        "FailedIndexes"
    );
}

#[test]
fn pod_failure_policy_example_fails_the_job_on_exit_code_42() {
    let (code, lines, status, _) = run_json("pfp", &corpus("job-pod-failure-policy-example.yaml"));
    // The first pod to exit with 42 fails the whole Job (FailJob): the docs' outcome.
    assert_eq!(code, 1, "{lines:?}");
    let failed = condition(&status, "Failed").unwrap();
    assert_eq!(failed["reason"], "PodFailurePolicy", "{status}");
    assert!(
        failed["message"].as_str().unwrap().contains("exit code 42"),
        "{failed}"
    );
    assert!(
        events(&lines, "exit").iter().any(|e| e["exitCode"] == 42),
        "{lines:?}"
    );
    assert_eq!(status["active"].as_i64().unwrap_or(0), 0);
    // Far fewer pods than the 12 completions ran.
    assert!(events(&lines, "create").len() <= 6, "{lines:?}");
}

#[test]
fn indexed_job_logs_can_be_read_per_index() {
    let dir = state_dir("hello");
    let manifest = format!("{}/manifests/hello-job.yaml", env!("CARGO_MANIFEST_DIR"));
    let out = batch_in(&dir, &["run", &manifest]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("job/hello: Complete"), "{text}");
    let out = batch_in(&dir, &["logs", "hello", "--index", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "hello from index 2\n"
    );
    let out = batch_in(&dir, &["logs", "no-such-job"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no pods of job"), "{}", stderr(&out));
}

#[test]
fn invalid_and_unreadable_files_exit_2_with_the_field_named() {
    let dir = state_dir("bad");
    let out = batch_in(&dir, &["run", &corpus("job-tmpl.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("metadata.name"), "{}", stderr(&out));
    let out = batch_in(&dir, &["run", "/no/such/file.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
    let out = batch_in(&dir, &["run", &corpus("job.yaml"), "--executor", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("unknown executor"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_missing_binary_fails_the_pod_and_the_job_with_a_clear_reason() {
    let dir = state_dir("missing");
    let manifest = common::temp_file(
        "run-missing",
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: missing}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: x, command: [/no/such/binary-xyz]}]\n",
    );
    let out = batch_in(&dir, &["run", manifest.to_str().unwrap(), "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    let exit = events(&lines, "exit");
    assert_eq!(exit.len(), 1, "{lines:?}");
    assert_eq!(exit[0]["exitCode"], 127);
    let status = &lines.last().unwrap()["final"]["status"];
    assert_eq!(
        condition(status, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
}

#[test]
fn ctrl_c_stops_pods_gracefully_and_exits_130() {
    let dir = state_dir("sigint");
    let manifest = common::temp_file(
        "run-sigint",
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: sleeper}\nspec:\n  parallelism: 2\n  completions: 2\n  template:\n    spec:\n      restartPolicy: Never\n      terminationGracePeriodSeconds: 5\n      containers: [{name: main, image: x, command: [sleep, '600']}]\n",
    );
    let child = spawn_json_run(&dir, &manifest);
    let sleeps = wait_for_processes(&["sleep", "600"], 2);
    signal(child.id(), nix::sys::signal::Signal::SIGINT);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let lines = json_lines(&out);
    assert!(lines.last().unwrap()["final"]["status"].is_object());
    // The pods were stopped: none of their processes is left.
    let left: Vec<i32> = pids_of(&["sleep", "600"])
        .into_iter()
        .filter(|p| sleeps.contains(p))
        .collect();
    assert!(left.is_empty(), "left running: {left:?}");
}

/// Starts `batch run MANIFEST -o json` in the background.
fn spawn_json_run(dir: &Path, manifest: &Path) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_batch"))
        .arg("run")
        .arg(manifest)
        .args(["-o", "json", "--state-dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits (at most 30 s) until `n` processes run `argv`, and returns their pids.
fn wait_for_processes(argv: &[&str], n: usize) -> Vec<i32> {
    for _ in 0..600 {
        let pids = pids_of(argv);
        if pids.len() >= n {
            return pids;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("{n} processes {argv:?} never ran");
}

fn signal(pid: impl TryInto<i32>, signal: nix::sys::signal::Signal) {
    let pid = pid.try_into().ok().expect("a pid");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
}

/// Pids of processes whose command line is exactly `argv`.
fn pids_of(argv: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = argv
        .iter()
        .flat_map(|a| [a.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn a_pod_killed_from_outside_with_sigkill_is_a_failure_with_exit_137() {
    let dir = state_dir("outside-kill");
    let manifest = common::temp_file(
        "run-outside-kill",
        "job.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: victim}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: main, image: x, command: [sleep, '607']}]\n",
    );
    let child = spawn_json_run(&dir, &manifest);
    let victims = wait_for_processes(&["sleep", "607"], 1);
    assert_eq!(victims.len(), 1, "the pod's process is running");
    signal(victims[0], nix::sys::signal::Signal::SIGKILL);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines = json_lines(&out);
    let exits = events(&lines, "exit");
    assert_eq!(exits.len(), 1, "{lines:?}");
    assert_eq!(exits[0]["exitCode"], 137);
    let status = &lines.last().unwrap()["final"]["status"];
    assert_eq!(status["failed"], 1);
    assert_eq!(
        condition(status, "Failed").unwrap()["reason"],
        "BackoffLimitExceeded"
    );
}
