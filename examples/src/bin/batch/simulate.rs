//! `batch simulate FILE`: conformance-io.md §5.

use std::io::{self, Write};

use batch_core::simulate::{self, SimulateError, SimulationDocument};

use crate::Outcome;

/// Arguments of `batch simulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The simulation document (YAML or JSON): start, optional until, then job and pods, or
    /// cronjob, jobs and optional dst (run-once or kubernetes). `-` reads stdin.
    #[arg(value_name = "FILE")]
    file: String,
}

pub(crate) fn run(args: &Args) -> Outcome {
    let file = &args.file;
    let bytes = match crate::read_input(file) {
        Ok(bytes) => bytes,
        Err(message) => {
            eprintln!("{message}");
            return Outcome::Unreadable;
        }
    };
    let origin = if file == "-" {
        "<stdin>"
    } else {
        file.as_str()
    };
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
            let start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
            let column = String::from_utf8_lossy(&valid[start..]).chars().count() + 1;
            eprintln!(
                "error: {origin}: line {line}, column {column}: invalid UTF-8 at byte {}",
                e.valid_up_to()
            );
            return Outcome::Unreadable;
        }
    };
    let result = simulate::parse_document(text, origin).and_then(|document| match document {
        SimulationDocument::CronJob(input) => {
            simulate::simulate_cron_job(&input).map(|run| run.json_lines())
        }
        // A document is a Job or a CronJob; a later kind would be refused by the parser.
        SimulationDocument::Job(input) => {
            simulate::simulate_job(&input).map(|run| run.json_lines())
        }
        _ => Err(SimulateError::Unsupported(
            "this kind of simulation is not supported".to_owned(),
        )),
    });
    let lines = match result {
        Ok(lines) => lines,
        Err(e) => {
            match &e {
                SimulateError::InvalidJob(errors) => {
                    // One line per validation error, as kubectl lists them.
                    for error in errors.iter() {
                        eprintln!("error: {origin}: job: {error}");
                    }
                }
                SimulateError::InvalidCronJob(errors) => {
                    for error in errors.iter() {
                        eprintln!("error: {origin}: cronjob: {error}");
                    }
                }
                _ => eprintln!("error: {origin}: {}", without_origin(&e, origin)),
            }
            return match e {
                SimulateError::Parse(_) => Outcome::Unreadable,
                _ => Outcome::Invalid,
            };
        }
    };
    let stdout = io::stdout();
    let mut out = stdout.lock();
    if let Err(e) = out.write_all(lines.as_bytes()).and_then(|()| out.flush()) {
        // A closed pipe (`batch simulate … | head`) ends the output, not the run.
        if e.kind() != io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write the output: {e}");
            return Outcome::Unreadable;
        }
    }
    Outcome::Ok
}

/// A parse error already starts with the origin; other errors do not.
fn without_origin(e: &SimulateError, origin: &str) -> String {
    let text = e.to_string();
    text.strip_prefix(origin)
        .and_then(|rest| rest.strip_prefix(": "))
        .map_or_else(|| text.clone(), str::to_owned)
}
