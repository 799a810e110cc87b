//! Helpers shared by the CLI tests: run the real `batch` binary and read its output.
// Each test binary uses a subset of these.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

/// Runs the `batch` binary with `args`.
pub(crate) fn batch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_batch"))
        .args(args)
        .output()
        .expect("the batch binary runs")
}

/// Writes `contents` to `name` in a folder of its own for `suite` and this process, and
/// returns the path. The folder is under cargo's `target/tmp` (the files are shared by the
/// suite's tests running at once, so none of them can remove it; `cargo clean` does).
pub(crate) fn temp_file(suite: &str, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("batch-{suite}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Standard output, one JSON value per line.
pub(crate) fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

/// Standard error as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
