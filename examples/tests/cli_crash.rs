//! Crash tests: the real `batch` binary is killed with SIGKILL at many points — exact ones
//! in its state-store writes (`BATCH_CRASH_AT`, see `src/bin/batch/crash.rs`) and random
//! moments from outside — and restarted with the same state directory until its Job ends.
//! Real processes throughout: pods are `sh` scripts that record each run in files, so a
//! test can tell whether an index ever ran twice.
//!
//! `BATCH_CRASH_CYCLES=N` (default 3) sets how many kills each chain gets; each test
//! prints how many kill-and-restart cycles it ran.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A fresh directory for one test: `state/` (the state directory) and `work/` (the files
/// the pods write).
fn test_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("batch-crash-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("work")).unwrap();
    dir
}

fn cycles() -> usize {
    std::env::var("BATCH_CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
}

/// Starts `batch run FILE --state-dir DIR -o json`, optionally with a crash point.
fn spawn(dir: &Path, manifest: &Path, crash_at: Option<&str>) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_batch"));
    cmd.args(["run", "-o", "json", "--state-dir"])
        .arg(dir.join("state"))
        .arg(manifest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(point) = crash_at {
        cmd.env("BATCH_CRASH_AT", point);
    }
    cmd.spawn().expect("batch runs")
}

/// What one run printed, and how it ended.
struct Run {
    lines: Vec<Value>,
    /// The exit code, or `None` when killed by a signal.
    code: Option<i32>,
    signal: Option<i32>,
    stderr: String,
}

/// Waits for a run to end (at most `limit`), collecting its JSON lines.
fn finish(mut child: Child, limit: Duration) -> Run {
    use std::os::unix::process::ExitStatusExt;
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let err = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let out = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
            .collect::<Vec<_>>()
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let lines = out.join().unwrap_or_default();
            let tail: Vec<String> = lines
                .iter()
                .rev()
                .take(10)
                .rev()
                .map(Value::to_string)
                .collect();
            panic!(
                "batch run did not end within {limit:?}; its last lines:\n{}\nstderr: {}",
                tail.join("\n"),
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        lines: out.join().unwrap(),
        code: status.code(),
        signal: status.signal(),
        stderr: err.join().unwrap(),
    }
}

fn final_status(run: &Run) -> &Value {
    run.lines
        .iter()
        .rev()
        .find_map(|l| l.get("final"))
        .and_then(|f| f.get("status"))
        .unwrap_or_else(|| panic!("no final line; stderr: {}", run.stderr))
}

fn lines_of(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Shims of this state directory still running (none may be left once a run ended).
fn shims_of(dir: &Path) -> usize {
    let needle = dir.join("state").display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("__shim") && c.contains(&needle)
            })
        })
        .count()
}

const COMPLETIONS: usize = 40;

/// 40 indexes, 20 at a time; each index sleeps a little, and index 7 fails its first
/// attempt. Every successful run appends its index to `work/successes`, every failed one to
/// `work/failures` (a `mkdir` marker makes only the first attempt of index 7 fail).
fn chain_manifest(dir: &Path) -> PathBuf {
    let work = dir.join("work").display().to_string();
    let yaml = format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: crashy}}
spec:
  completions: {COMPLETIONS}
  parallelism: 20
  completionMode: Indexed
  backoffLimit: 100
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command:
        - sh
        - -c
        - |
          i=$JOB_COMPLETION_INDEX
          sleep 0.$(( (i * 37) % 7 + 2 ))
          if [ "$i" = 7 ] && mkdir {work}/failed-$i 2>/dev/null; then
            echo $i >> {work}/failures
            exit 1
          fi
          echo $i >> {work}/successes
"#
    );
    let path = dir.join("job.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs the chain Job with a kill at each given point, then to its end; checks that the
/// outcome equals an uninterrupted run's and that no index ran twice. Returns the number of
/// kill-and-restart cycles.
fn chain(test: &str, kills: &[Kill]) -> usize {
    let dir = test_dir(test);
    let manifest = chain_manifest(&dir);
    let mut cycles = 0;
    let mut completed = None;
    // What every run printed (JSON lines, and its warnings): shown for the pods of an index
    // that ran twice.
    let mut said: Vec<String> = Vec::new();
    let mut note = |run: &Run| {
        said.push("-- run --".to_owned());
        said.extend(run.lines.iter().map(Value::to_string));
        said.extend(run.stderr.lines().map(str::to_owned));
    };
    for kill in kills {
        let child = match kill {
            Kill::At(point) => spawn(&dir, &manifest, Some(point)),
            Kill::After(_) => spawn(&dir, &manifest, None),
        };
        let run = match kill {
            Kill::At(_) => finish(child, Duration::from_secs(120)),
            Kill::After(delay) => {
                std::thread::sleep(*delay);
                let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
                finish(child, Duration::from_secs(30))
            }
        };
        note(&run);
        match run.signal {
            Some(9) => cycles += 1,
            // The Job ended before the kill point came: nothing more to kill (running the
            // file again would start a new run of a finished Job).
            None if run.code == Some(0) => {
                completed = Some(run);
                break;
            }
            other => panic!(
                "{kill:?}: batch run ended with {other:?} / {:?}: {}",
                run.code, run.stderr
            ),
        }
    }
    // Restarted, the Job runs to its end.
    let run = completed.unwrap_or_else(|| {
        let run = finish(spawn(&dir, &manifest, None), Duration::from_secs(180));
        note(&run);
        run
    });
    assert_eq!(
        run.code,
        Some(0),
        "{test}: the resumed run completes: {}",
        run.stderr
    );
    let status = final_status(&run);
    let successes = lines_of(&dir.join("work/successes"));
    let failures = lines_of(&dir.join("work/failures"));
    let mut runs: BTreeMap<usize, usize> = BTreeMap::new();
    for s in &successes {
        *runs.entry(s.parse().unwrap()).or_default() += 1;
    }
    let twice: Vec<_> = runs.iter().filter(|(_, n)| **n > 1).collect();
    if !twice.is_empty() {
        let pods: Vec<String> = twice.iter().map(|(i, _)| format!("crashy-{i}-")).collect();
        let lines: Vec<&String> = said
            .iter()
            .filter(|l| l.starts_with("-- run") || pods.iter().any(|p| l.contains(p)))
            .collect();
        panic!(
            "{test}: completed indexes ran again after {cycles} kills: {twice:?}; what the runs \
             said of their pods:\n{}",
            lines
                .iter()
                .map(|l| l.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(
        runs.keys().copied().collect::<Vec<_>>(),
        (0..COMPLETIONS).collect::<Vec<_>>(),
        "{test}: every index succeeded exactly once"
    );
    assert_eq!(failures, ["7"], "{test}: index 7 failed once, nothing else");
    // The same status as an uninterrupted run.
    assert_eq!(status["succeeded"], COMPLETIONS, "{test}: {status}");
    assert_eq!(status["failed"], 1, "{test}: {status}");
    assert_eq!(status["completedIndexes"], "0-39", "{test}: {status}");
    assert!(
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Complete" && c["status"] == "True"),
        "{test}: {status}"
    );
    // Every shim has finished.
    let deadline = Instant::now() + Duration::from_secs(10);
    while shims_of(&dir) > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(shims_of(&dir), 0, "{test}: shims left behind");
    println!("{test}: {cycles} kill-and-restart cycles, outcome identical to an uninterrupted run");
    let _ = std::fs::remove_dir_all(&dir);
    cycles
}

#[derive(Debug)]
enum Kill {
    /// `BATCH_CRASH_AT` value.
    At(String),
    /// SIGKILL from outside after this long.
    After(Duration),
}

fn at_points(point: &str, firsts: &[usize]) -> Vec<Kill> {
    firsts
        .iter()
        .take(cycles())
        .map(|n| Kill::At(format!("{point}:{n}")))
        .collect()
}

/// The n-th passes at which each chain is killed: early, mid-run, later.
const PASSES: [usize; 6] = [1, 3, 2, 5, 4, 6];

#[test]
fn killed_right_after_the_job_is_recorded() {
    chain("create", &[Kill::At("create:1".to_owned())]);
}

#[test]
fn killed_before_pods_to_start_are_recorded() {
    chain("intent-before", &at_points("intent-before", &PASSES));
}

#[test]
fn killed_after_pods_to_start_are_recorded_before_they_start() {
    chain("intent-after", &at_points("intent-after", &PASSES));
}

#[test]
fn killed_before_a_status_write() {
    chain("status-before", &at_points("status-before", &PASSES));
}

#[test]
fn killed_during_a_status_write() {
    chain("status-during", &at_points("status-during", &PASSES));
}

#[test]
fn killed_after_a_status_write_before_pods_are_released() {
    chain("status-after", &at_points("status-after", &PASSES));
}

#[test]
fn killed_from_outside_at_random_moments_with_20_pods_running() {
    // A fixed sequence of delays (reproducible), spread over the run's busy part.
    let delays = [450u64, 300, 600, 250, 400, 350, 500, 200];
    let kills: Vec<Kill> = delays
        .iter()
        .take(cycles() + 2)
        .map(|ms| Kill::After(Duration::from_millis(*ms)))
        .collect();
    chain("random", &kills);
}

/// A pod fails; the runner is killed after the failure is recorded; the restarted runner
/// still waits the 10 s pod-failure backoff from the failure before the next pod.
#[test]
fn a_restart_keeps_the_backoff_delay_owed() {
    let dir = test_dir("backoff");
    let work = dir.join("work").display().to_string();
    let yaml = format!(
        r#"apiVersion: batch/v1
kind: Job
metadata: {{name: backoff}}
spec:
  backoffLimit: 3
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox
        command: [sh, -c, 'if mkdir {work}/failed 2>/dev/null; then exit 1; fi; echo ok >> {work}/successes']
"#
    );
    let manifest = dir.join("job.yaml");
    std::fs::write(&manifest, yaml).unwrap();
    let mut child = spawn(&dir, &manifest, None);
    // Read events until the failure is seen, then give the runner a moment to record it.
    let stdout = child.stdout.take().unwrap();
    let mut failed_at = None;
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["event"] == "exit" && v["exitCode"] == 1 {
            failed_at =
                Some(chrono::DateTime::parse_from_rfc3339(v["t"].as_str().unwrap()).unwrap());
            break;
        }
    }
    let failed_at = failed_at.expect("the first pod fails");
    // Wait until the store has counted the failure.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_batch"))
            .args(["status", "backoff", "-o", "json", "--state-dir"])
            .arg(dir.join("state"))
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if v["status"]["failed"] == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the failure is recorded");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let restarted = chrono::Utc::now();
    assert!(
        (restarted - failed_at.with_timezone(&chrono::Utc)).num_seconds() < 5,
        "restarted well within the backoff"
    );
    let run = finish(spawn(&dir, &manifest, None), Duration::from_secs(60));
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let create = run
        .lines
        .iter()
        .find(|l| l["event"] == "create")
        .expect("a replacement pod is created");
    let created_at = chrono::DateTime::parse_from_rfc3339(create["t"].as_str().unwrap()).unwrap();
    let waited = created_at - failed_at;
    assert!(
        waited >= chrono::Duration::milliseconds(9_500),
        "the replacement waited {waited} after the failure, not the 10 s backoff"
    );
    let status = final_status(&run);
    assert_eq!(status["failed"], 1);
    assert_eq!(status["succeeded"], 1);
    println!(
        "backoff: failure at {failed_at}, restarted at {restarted}, replacement at {created_at} ({waited} later)"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CronJob firing every minute (Job names carry the scheduled minute, so a slot's Job
/// name is deterministic); each Job's one pod appends its Job name to `work/runs`.
fn cron_manifest(dir: &Path, starting_deadline: u32) -> PathBuf {
    let work = dir.join("work").display().to_string();
    let yaml = format!(
        r#"apiVersion: batch/v1
kind: CronJob
metadata: {{name: tick}}
spec:
  schedule: "* * * * *"
  startingDeadlineSeconds: {starting_deadline}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - name: main
            image: busybox
            env:
            - name: JOB
              valueFrom: {{fieldRef: {{fieldPath: "metadata.labels['batch.kubernetes.io/job-name']"}}}}
            command: [sh, -c, 'echo $JOB >> {work}/runs']
"#
    );
    let path = dir.join("cron.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

fn job_creates(run: &Run) -> Vec<(String, String)> {
    run.lines
        .iter()
        .filter(|l| l["event"] == "jobCreate")
        .map(|l| {
            (
                l["job"].as_str().unwrap().to_owned(),
                l["scheduledTime"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn interrupt(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::SIGINT,
    )
    .unwrap();
}

/// `batch status NAME -o json` for the test's state directory.
fn stored(dir: &Path, name: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(["status", name, "-o", "json", "--state-dir"])
        .arg(dir.join("state"))
        .output()
        .unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// Pod directories of a Job (its name, a dash, the pod's suffix).
fn pods_of(dir: &Path, job: &str) -> usize {
    std::fs::read_dir(dir.join("state/local/pods"))
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix(job))
                        .is_some_and(|rest| rest.starts_with('-') && rest.len() == 6)
                })
                .count()
        })
        .unwrap_or(0)
}

/// Killed right before recording the CronJob's status for a new slot (its Job recorded
/// already), then right after recording it on the restart: the slot gets one Job, which
/// runs once.
#[test]
fn a_cronjob_killed_across_a_slot_never_creates_two_jobs_for_it() {
    let dir = test_dir("cron-slot");
    let manifest = cron_manifest(&dir, 60);
    let mut cycles = 0;
    // The first slot comes within a minute.
    for point in ["cron-before:1", "cron-after:1"] {
        let run = finish(spawn(&dir, &manifest, Some(point)), Duration::from_secs(90));
        assert_eq!(run.signal, Some(9), "{point}: {}", run.stderr);
        cycles += 1;
    }
    let child = spawn(&dir, &manifest, None);
    std::thread::sleep(Duration::from_secs(3));
    let cron = stored(&dir, "tick");
    interrupt(&child);
    let run = finish(child, Duration::from_secs(30));
    assert_eq!(run.code, Some(130), "{}", run.stderr);
    let jobs: Vec<String> = cron["jobs"]
        .as_array()
        .expect("the CronJob is stored")
        .iter()
        .map(|j| j.as_str().unwrap().to_owned())
        .collect();
    assert!(!jobs.is_empty(), "the first slot's Job exists: {cron}");
    let slot_job = &jobs[0];
    assert_eq!(pods_of(&dir, slot_job), 1, "one pod for the slot's Job");
    let failed_creates: Vec<_> = run
        .lines
        .iter()
        .filter(|l| l["event"] == "warning" && l["reason"] == "FailedCreate")
        .collect();
    assert!(failed_creates.is_empty(), "{failed_creates:?}");
    let runs = lines_of(&dir.join("work/runs"));
    assert_eq!(
        runs.iter().filter(|r| *r == slot_job).count(),
        1,
        "the slot's Job ran once: {runs:?}"
    );
    let mut ran = runs.clone();
    ran.sort();
    ran.dedup();
    assert_eq!(ran.len(), runs.len(), "a Job ran twice: {runs:?}");
    println!("cron-slot: {cycles} kill-and-restart cycles; Jobs {jobs:?}, runs {runs:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The runner is down across a slot; restarted 8 s after it, the missed slot starts at
/// once (once) with `startingDeadlineSeconds: 60`, and is not started with 5.
#[test]
fn a_missed_slot_is_started_on_restart_only_within_the_starting_deadline() {
    let cases = [(60u32, true), (5, false)].map(|(deadline, expect)| {
        std::thread::spawn(move || {
            let dir = test_dir(&format!("cron-missed-{deadline}"));
            let manifest = cron_manifest(&dir, deadline);
            // Killed right after the first slot's Job and status are recorded.
            let run = finish(
                spawn(&dir, &manifest, Some("cron-after:1")),
                Duration::from_secs(90),
            );
            assert_eq!(run.signal, Some(9), "{}", run.stderr);
            let cron = stored(&dir, "tick");
            let first = cron["status"]["lastScheduleTime"]
                .as_str()
                .unwrap_or_else(|| panic!("the first slot is recorded: {cron}"));
            let first = chrono::DateTime::parse_from_rfc3339(first).unwrap();
            // Down until 8 s after the next slot.
            let missed = first + chrono::Duration::seconds(60);
            let restart_at = missed + chrono::Duration::seconds(8);
            let wait = (restart_at.with_timezone(&chrono::Utc) - chrono::Utc::now())
                .to_std()
                .unwrap_or_default();
            std::thread::sleep(wait);
            let child = spawn(&dir, &manifest, None);
            std::thread::sleep(Duration::from_secs(3));
            interrupt(&child);
            let run = finish(child, Duration::from_secs(30));
            let slots: Vec<_> = job_creates(&run)
                .into_iter()
                .filter(|(_, scheduled)| {
                    chrono::DateTime::parse_from_rfc3339(scheduled).unwrap() == missed
                })
                .collect();
            let _ = std::fs::remove_dir_all(&dir);
            (deadline, expect, slots, run.lines)
        })
    });
    for case in cases {
        let (deadline, expect, slots, lines) = case.join().unwrap();
        if expect {
            assert_eq!(
                slots.len(),
                1,
                "deadline {deadline}s: the missed slot starts once on restart: {lines:?}"
            );
        } else {
            assert!(
                slots.is_empty(),
                "deadline {deadline}s: a slot missed by more than the deadline is not started: {lines:?}"
            );
        }
    }
}

/// A damaged state store is a clear error at start (exit 2, the path named), never a
/// panic, and the file is left as it was.
#[test]
fn a_damaged_state_store_is_refused_and_left_untouched() {
    let dir = test_dir("damaged");
    let manifest = chain_manifest(&dir);
    std::fs::create_dir_all(dir.join("state")).unwrap();
    let db = dir.join("state/state.db");
    for damage in [
        b"SQLite format 3\0 but truncated right here".to_vec(),
        vec![0xA5; 8192],
    ] {
        std::fs::write(&db, &damage).unwrap();
        let run = finish(spawn(&dir, &manifest, None), Duration::from_secs(30));
        assert_eq!(run.code, Some(2), "{}", run.stderr);
        assert!(run.stderr.contains("state.db"), "{}", run.stderr);
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        assert_eq!(std::fs::read(&db).unwrap(), damage, "the file is untouched");
        let status = Command::new(env!("CARGO_BIN_EXE_batch"))
            .args(["status", "--state-dir"])
            .arg(dir.join("state"))
            .output()
            .unwrap();
        assert_eq!(status.status.code(), Some(2));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
