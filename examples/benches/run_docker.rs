//! Benchmark of `batch run --executor docker` (issue 8 target).
//!
//! Throughput: a Job of 200 completions of `true` at parallelism 4 (image `busybox:test`,
//! `imagePullPolicy: IfNotPresent`), run by the real `batch` program, against the same 200
//! containers started with the Docker CLI in the same run: `docker run --rm` 200 times one
//! after the other (target: `batch run` at least 1.5× faster), and (with `--bench`
//! only) 4 at a time with `xargs -P 4` (the same parallelism as the Job, for a fair
//! comparison). The CLI runs use
//! the executor's default network for every container, `--network none`.
//!
//! `batch run` is measured whole, as a user runs it: process start, connecting to the engine,
//! the state store (`--durability process`, so the comparison is about containers, not
//! fsyncs; a line with the default `full` follows), and the run to the Job's end. The
//! containers it leaves (they stay until the Job is run again, for `batch logs`) are removed
//! after each round, outside the timing; the cleanup time is printed too. `docker run --rm`
//! removes each container within its timing.
//!
//! Needs a Docker engine (`DOCKER_HOST`, else the default socket) and the `docker` CLI; the
//! test images are built through the API first. Without an engine it prints `SKIP` (and
//! fails with `BATCH_TEST_REQUIRE_DOCKER=1`).
//!
//! Run: `cargo bench -p batch-examples --bench run_docker`
//! (`cargo test --benches` runs it in a small smoke mode: 8 completions.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const IMAGE: &str = "busybox:test";
const PARALLELISM: u32 = 4;

fn manifest(dir: &Path, completions: u32) -> PathBuf {
    let path = dir.join("trues.yaml");
    let yaml = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: trues}}\nspec:\n  completions: {completions}\n  parallelism: {PARALLELISM}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: main, image: {IMAGE}, imagePullPolicy: IfNotPresent, command: [\"true\"]}}]\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs `batch run --executor docker` to the Job's end and returns its wall time.
fn batch_run(manifest: &Path, state: &Path, durability: &str) -> Duration {
    let start = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_batch"))
        .arg("run")
        .arg(manifest)
        .args(["--executor", "docker", "--output", "json"])
        .args(["--durability", durability])
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    let took = start.elapsed();
    assert!(status.success(), "batch run failed: {status}");
    took
}

/// Removes what a run left in the engine (its containers and volumes, found by the
/// executor's instance label: the state directory), and returns how long that took.
fn clean(state: &Path) -> Duration {
    let start = Instant::now();
    let filter = format!(
        "label=batch.executor={}",
        std::path::absolute(state).unwrap().display()
    );
    let script = format!(
        "docker ps -aq --filter '{filter}' | xargs -r docker rm -f >/dev/null && \
         docker volume ls -q --filter '{filter}' | xargs -r docker volume rm -f >/dev/null"
    );
    let status = Command::new("sh").arg("-c").arg(script).status().unwrap();
    assert!(status.success(), "cleanup failed");
    start.elapsed()
}

/// `docker run --rm` of `true`, `n` times, `parallelism` at a time.
fn docker_cli(n: u32, parallelism: u32) -> Duration {
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "seq {n} | xargs -P {parallelism} -I{{}} docker run --rm --network none {IMAGE} true"
        ))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "docker run failed");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (completions, rounds) = if bench { (200, 3) } else { (8, 1) };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if runtime
        .block_on(batch_executor_docker::testing::test_engine())
        .is_none()
    {
        println!("SKIP run_docker: no Docker engine");
        return;
    }
    if !Command::new("docker")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
    {
        assert!(
            !batch_executor_docker::testing::require_docker(),
            "the docker CLI does not work"
        );
        println!("SKIP run_docker: no docker CLI to compare with");
        return;
    }
    let dir = std::env::temp_dir().join(format!("batch-bench-docker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let trues = manifest(&dir, completions);

    let mut ours = Vec::new();
    let mut ours_full = Vec::new();
    let mut sequential = Vec::new();
    let mut parallel = Vec::new();
    let mut cleanup = Vec::new();
    for round in 0..rounds {
        let state = dir.join(format!("state-{round}"));
        ours.push(batch_run(&trues, &state, "process"));
        cleanup.push(clean(&state));
        let state = dir.join(format!("state-full-{round}"));
        ours_full.push(batch_run(&trues, &state, "full"));
        clean(&state);
        sequential.push(docker_cli(completions, 1));
        // Not in the smoke run: `docker run --network none` goes through the engine's
        // network stack, and Docker 20.10 before 20.10.27 (Debian 12's) can deadlock when
        // containers on one network end at the same moment (moby/moby#46661), which would
        // hang the engine the other tests share. The executor keeps clear of it (no
        // network stack for `none`); the CLI cannot.
        if bench {
            parallel.push(docker_cli(completions, PARALLELISM));
        }
    }
    let (ours, ours_full, sequential, parallel, cleanup) = (
        median(ours),
        median(ours_full),
        median(sequential),
        if parallel.is_empty() {
            Duration::ZERO
        } else {
            median(parallel)
        },
        median(cleanup),
    );
    println!(
        "run_docker/throughput: {completions} pods of `true` at parallelism {PARALLELISM}: batch run --executor docker {:.2} s ({:.1} pods/s; removing its containers afterwards {:.2} s, not counted), docker run --rm sequential {:.2} s, ratio {:.2} (target >= 1.5)",
        ours.as_secs_f64(),
        f64::from(completions) / ours.as_secs_f64(),
        cleanup.as_secs_f64(),
        sequential.as_secs_f64(),
        sequential.as_secs_f64() / ours.as_secs_f64(),
    );
    if bench {
        println!(
            "run_docker/throughput-parallel-cli: docker run --rm with xargs -P {PARALLELISM} {:.2} s, ratio {:.2} to batch run",
            parallel.as_secs_f64(),
            parallel.as_secs_f64() / ours.as_secs_f64(),
        );
    }
    println!(
        "run_docker/throughput-full-durability: batch run --durability full {:.2} s, ratio {:.2} to the sequential CLI",
        ours_full.as_secs_f64(),
        sequential.as_secs_f64() / ours_full.as_secs_f64(),
    );
    let _ = std::fs::remove_dir_all(&dir);
}
