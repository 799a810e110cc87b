//! `batch-local-shim <pod-dir>`: the shim of the local executor's shim mode, as a program of
//! its own (see `batch_executor_local::shim`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    match (args.next(), args.next()) {
        (Some(dir), None) => batch_executor_local::shim::run(std::path::Path::new(&dir)),
        _ => {
            eprintln!("usage: batch-local-shim <pod-dir>");
            ExitCode::from(2)
        }
    }
}
