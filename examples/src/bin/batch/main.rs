//! `batch`: the command line of the batch library.
//!
//! Shows: loading manifests, defaulting and validating them exactly as the Kubernetes API
//! server does, with machine-readable (JSON lines) or kubectl-style output.
//!
//! Run: `cargo run -p batch-examples --bin batch -- run ../shared/corpus/k8s-website/job.yaml`
//!
//! Exit codes: 0 success; 1 the input was read but is invalid; 2 the input could not be read
//! or parsed. `batch run` differs: 0 every Job completed, 1 a Job failed, 2 unreadable or
//! invalid input, 130 interrupted. Errors go to stderr, one line each.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cluster;
mod crash;
mod logs;
mod run;
mod schedule;
mod simulate;
mod status;
mod sync;
mod validate;

/// Kubernetes batch/v1 Jobs and CronJobs, anywhere.
#[derive(Debug, Parser)]
#[command(name = "batch", version, about = "Kubernetes batch/v1 Jobs and CronJobs, with the exact semantics of a cluster", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Default and validate every Job and CronJob document, as the API server does on create.
    ///
    /// Prints one JSON object per document (or kubectl-style lines with --human).
    /// Exit status: 0 all valid, 1 a document is invalid, 2 a file could not be read or parsed.
    Validate(validate::Args),
    /// Print the next fire times of a cron schedule.
    ///
    /// One RFC 3339 UTC time per line, strictly after --after. Exit status: 0 printed (possibly
    /// nothing, if the schedule never fires within 5 years), 1 invalid schedule or zone.
    Schedule(schedule::Args),
    /// Run one controller step on a document describing a Job or a CronJob and what exists
    /// now.
    ///
    /// `batch sync job FILE` prints one JSON object: pods to create and delete, pods to
    /// release, the new status and memory, events, requeueAfter. `batch sync cronjob FILE`
    /// prints the Job to create, Jobs to delete, the new status, events, requeueAfter.
    /// Exit status: 0 the step ran, 2 the document could not be read (never 1).
    #[command(subcommand_required = true, arg_required_else_help = false)]
    Sync(sync::Args),
    /// Rehearse a whole Job or CronJob run on a virtual clock, with simulated pods or Jobs.
    ///
    /// Prints JSON lines in time order (create, exit, evict, delete, condition, jobCreate,
    /// jobFinish, jobDelete, warning), then {"final":{"status":...}}; the same file always
    /// gives the same bytes. Exit status: 0 simulated (whatever the outcome), 1 the Job or
    /// CronJob is invalid or a rule is contradictory, 2 the file could not be read or parsed.
    Simulate(simulate::Args),
    /// Run the Jobs and CronJobs of a file for real, on local processes (the default
    /// executor) or Docker containers (`--executor docker`).
    ///
    /// Shows live progress on a terminal, plain lines otherwise, or JSON lines with
    /// --output json (the `batch simulate` format, then one {"final":…} line per Job).
    /// Ctrl-C stops the pods gracefully. Exit status: 0 every Job completed, 1 a Job failed,
    /// 2 the file could not be read or is invalid (or the executor cannot be used, such as a
    /// Docker engine that cannot be reached), 130 interrupted (CronJobs run until
    /// interrupted).
    Run(run::Args),
    /// Print the captured output of a Job's pods (from an earlier `batch run`).
    ///
    /// Exit status: 0 printed, 1 no such Job, index or container, 2 the executor's state
    /// could not be read.
    Logs(logs::Args),
    /// Show what the state directory of `batch run` holds: each Job's counts and state,
    /// each CronJob's schedule times (a run killed or crashed is resumed by running the same
    /// file again).
    ///
    /// Exit status: 0 printed, 1 no such Job or CronJob, 2 the state store could not be
    /// read (for example a damaged file).
    Status(status::Args),
    /// The supervisor of one local pod (started by `batch run`; not for direct use).
    #[command(name = "__shim", hide = true)]
    Shim {
        /// The pod's directory.
        dir: std::path::PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // Help and version go to stdout with success; a usage error is an input error,
            // reported on one line.
            if !err.use_stderr() {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            let rendered = err.render().to_string();
            eprintln!(
                "{}",
                rendered.lines().next().unwrap_or("error: invalid usage")
            );
            return ExitCode::from(2);
        }
    };
    let outcome = match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Schedule(args) => schedule::run(&args),
        Command::Sync(args) => sync::run(&args),
        Command::Simulate(args) => simulate::run(&args),
        Command::Run(args) => return ExitCode::from(run::run(&args)),
        Command::Logs(args) => return ExitCode::from(logs::run(&args)),
        Command::Status(args) => return ExitCode::from(status::run(&args)),
        Command::Shim { dir } => return batch_executor_local::shim::run(&dir),
    };
    ExitCode::from(outcome.code())
}

/// Reads a FILE argument: a path, or `-` for standard input. The error is the one-line
/// message to print.
fn read_input(file: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    let result = if file == "-" {
        std::io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(file).map(|b| bytes = b)
    };
    result.map_err(|e| format!("error: {file}: cannot read: {e}"))?;
    Ok(bytes)
}

/// How a command ended, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    /// Everything read and valid.
    Ok,
    /// Read, but invalid.
    Invalid,
    /// Could not be read or parsed.
    Unreadable,
}

impl Outcome {
    fn code(self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::Invalid => 1,
            Outcome::Unreadable => 2,
        }
    }
}
