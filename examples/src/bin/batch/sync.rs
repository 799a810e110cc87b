//! `batch sync job FILE`: conformance-io.md §3 (one reconcile step of the Job machine), and
//! `batch sync cronjob FILE [--dst POLICY]`: conformance-io.md §4 (one step of the CronJob
//! machine).

use std::io::{self, Write};

use batch_core::cron::DstPolicy;
use batch_core::cronjob::CronJobOptions;
use batch_core::cronjob::sync as cron_sync;
use batch_core::job::sync::{SyncInput, sync};
use serde::Serialize;

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
    /// One reconcile step of a CronJob: the Job to create (name and scheduled time), child
    /// Jobs to delete, the new status, events, and when to run again.
    ///
    /// FILE holds `now`, `cronjob` and `jobs` (YAML or JSON; `-` reads stdin). Prints one
    /// JSON object. A schedule or time zone that cannot be used is a Warning event, not an
    /// error. Exit status: 0 the step ran, 2 the document could not be read.
    Cronjob(CronJobArgs),
}

/// Arguments of `batch sync cronjob`.
#[derive(Debug, clap::Args)]
struct CronJobArgs {
    /// The sync document (YAML or JSON). `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: String,
    /// DST policy: `run-once` (a time in a skipped hour runs once after the gap, a repeated
    /// time runs once) or `kubernetes` (skipped times are dropped, repeated times run twice).
    #[arg(long, value_name = "POLICY", default_value = "run-once")]
    dst: DstPolicy,
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
        SyncCommand::Cronjob(cron_job) => run_cron_job(cron_job),
    }
}

fn run_cron_job(args: &CronJobArgs) -> Outcome {
    let input = match crate::read_input(&args.file).and_then(|bytes| {
        cron_sync::SyncInput::parse_bytes(&bytes, &args.file).map_err(|e| format!("error: {e}"))
    }) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("{message}");
            return Outcome::Unreadable;
        }
    };
    let output = cron_sync::sync(&input, &CronJobOptions::new().with_dst(args.dst));
    print_json(&output);
    // A schedule or zone unusable at run time is an event in the output (conformance-io §4).
    Outcome::Ok
}

fn run_job(args: &JobArgs) -> Outcome {
    let input = match crate::read_input(&args.file).and_then(|bytes| {
        SyncInput::parse_bytes(&bytes, &args.file).map_err(|e| format!("error: {e}"))
    }) {
        Ok(input) => input,
        Err(message) => {
            eprintln!("{message}");
            return Outcome::Unreadable;
        }
    };
    let output = sync(&input);
    print_json(&output);
    // `sync` never reports an invalid input: the step ran (conformance-io §3).
    Outcome::Ok
}

/// Prints one JSON object on one line.
fn print_json(output: &impl Serialize) {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let written = serde_json::to_writer(&mut out, output)
        .map_err(io::Error::from)
        .and_then(|()| writeln!(out));
    // A closed pipe (`batch sync job … | head`) ends the output, not the run.
    if let Err(e) = written
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the output: {e}");
    }
}
