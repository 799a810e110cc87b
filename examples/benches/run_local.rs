//! Benchmarks of `batch run` on the local executor (issue 6 targets).
//!
//! 1. Throughput: a Job of 2,000 completions of `true` at parallelism 8, against
//!    `seq 2000 | xargs -P 8 -n 1 true` in the same run (target: within 1.25×).
//! 2. Memory: 1,000 concurrent `sleep` pods; the runner's peak resident memory (VmHWM of the
//!    `batch` process; target under 100 MB).
//!
//! Since issue 7 `batch run` runs every pod under a shim process (pods outlive the runner)
//! and records each step in its SQLite state store with an fsync (`--durability full`); the
//! throughput line is measured that way, and once more with `--durability process` (no
//! fsync per write) to show what the fsync costs.
//!
//! Run: `cargo bench -p batch-examples --bench run_local`
//! (`cargo test` runs it in a small smoke mode: 40 completions, 20 sleep pods.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn manifest(dir: &Path, name: &str, completions: u32, parallelism: u32, command: &str) -> PathBuf {
    let path = dir.join(format!("{name}.yaml"));
    let yaml = format!(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {{name: {name}}}\nspec:\n  completions: {completions}\n  parallelism: {parallelism}\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{{name: main, image: none, command: {command}}}]\n"
    );
    std::fs::write(&path, yaml).unwrap();
    path
}

/// Runs `batch run` and returns its wall time and peak RSS in KiB. `state` must be a fresh
/// directory: deleting thousands of pod directories right before a run makes the
/// filesystem's journal compete with the run (seen here: up to 3x slower on ext4 with
/// online discard), which would measure the deletion, not `batch run`.
fn batch_run(manifest: &Path, state: &Path, extra: &[&str]) -> (Duration, u64) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_batch"))
        .arg("run")
        .args(extra)
        .arg(manifest)
        .arg("--output")
        .arg("json")
        .arg("--state-dir")
        .arg(state)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("VmHWM:") {
                    let kib: u64 = v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
                    peak = peak.max(kib);
                }
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "batch run failed: {status}");
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (start.elapsed(), peak)
}

fn xargs(n: u32, parallelism: u32) -> Duration {
    let start = Instant::now();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("seq {n} | xargs -P {parallelism} -n 1 true"))
        .status()
        .unwrap();
    assert!(status.success());
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let (completions, sleepers, rounds) = if bench { (2000, 1000, 5) } else { (40, 20, 1) };
    let dir = std::env::temp_dir().join(format!("batch-bench-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let trues = manifest(&dir, "trues", completions, 8, "[\"true\"]");
    let mut ours = Vec::new();
    let mut relaxed = Vec::new();
    let mut theirs = Vec::new();
    for round in 0..rounds {
        ours.push(batch_run(&trues, &dir.join(format!("state-{round}")), &[]).0);
        relaxed.push(
            batch_run(
                &trues,
                &dir.join(format!("state-p{round}")),
                &["--durability", "process"],
            )
            .0,
        );
        theirs.push(xargs(completions, 8));
    }
    let (ours, relaxed, theirs) = (median(ours), median(relaxed), median(theirs));
    println!(
        "run_local/throughput-process-durability: batch run --durability process {:.3} s, ratio {:.2} to xargs",
        relaxed.as_secs_f64(),
        relaxed.as_secs_f64() / theirs.as_secs_f64()
    );
    println!(
        "run_local/throughput: {completions} completions of `true` at parallelism 8: batch run {:.3} s, xargs -P 8 {:.3} s, ratio {:.2} (target <= 1.25); {:.0} pods/s",
        ours.as_secs_f64(),
        theirs.as_secs_f64(),
        ours.as_secs_f64() / theirs.as_secs_f64(),
        f64::from(completions) / ours.as_secs_f64()
    );

    let sleeps = manifest(&dir, "sleepers", sleepers, sleepers, "[\"sleep\", \"5\"]");
    let (took, peak) = batch_run(&sleeps, &dir.join("state-sleep"), &[]);
    println!(
        "run_local/memory: {sleepers} concurrent `sleep 5` pods: runner peak RSS {:.1} MB (target < 100 MB), whole run {:.2} s",
        peak as f64 / 1024.0,
        took.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
