//! `batch sync job FILE`: conformance-io.md §3 (one reconcile step of the Job machine).
//!
//! `batch sync cronjob FILE` (conformance-io.md §4) belongs here too, as a second
//! [`SyncCommand`] variant; it is a later issue and not implemented yet.

use std::io::{self, Read, Write};

use batch_core::job::sync::{SyncInput, sync};

use crate::Outcome;

/// Arguments of `batch sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: SyncCommand,
}

/// What to run one controller step for.
#[derive(Debug, clap::Subcommand)]
enum SyncCommand {
    /// One reconcile step of a Job: pods to create and delete, pods to release, the new
    /// status and memory, events, and when to run again.
    ///
    /// FILE holds `now`, `job`, optional `memory` and `pods` (YAML or JSON; `-` reads stdin).
    /// Prints one JSON object. Exit status: 0 the step ran, 2 the document could not be read.
    Job(JobArgs),
    // `Cronjob(CronJobArgs)`: conformance-io.md §4, a later issue.
}

/// Arguments of `batch sync job`.
#[derive(Debug, clap::Args)]
struct JobArgs {
    /// The sync document (YAML or JSON). `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: String,
}

pub(crate) fn run(args: &Args) -> Outcome {
    match &args.command {
        SyncCommand::Job(job) => run_job(job),
    }
}

fn run_job(args: &JobArgs) -> Outcome {
    let input = match read(&args.file).and_then(|bytes| {
        SyncInput::parse_bytes(&bytes, &args.file).map_err(|e| format!("error: {e}"))
    }) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("{message}");
            return Outcome::Unreadable;
        }
    };
    let output = sync(&input);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = serde_json::to_writer(&mut out, &output)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out));
    // A closed pipe (`batch sync job … | head`) ends the output, not the run.
    if let Err(e) = written
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {e}");
    }
    // `sync` never reports an invalid input: the step ran (conformance-io §3).
    Outcome::Ok
}

fn read(file: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let result = if file == "-" {
        io::stdin().lock().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(file).map(|b| bytes = b)
    };
    result.map_err(|e| format!("error: {file}: cannot read: {e}"))?;
    Ok(bytes)
}
