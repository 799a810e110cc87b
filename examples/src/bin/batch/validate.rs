//! `batch validate FILE...`: conformance-io.md §1.

use std::io::{self, Write};

use batch_core::loader::{self, Document};
use batch_core::validation::{FieldError, ValidationErrors};
use serde::Serialize;

use crate::Outcome;

/// Arguments of `batch validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Manifest files (YAML or JSON; several documents per file allowed). `-` reads stdin.
    #[arg(required = true, value_name = "FILE")]
    files: Vec<String>,
    /// Print kubectl-style lines instead of JSON.
    #[arg(long)]
    human: bool,
}

/// One output line (field order is part of the contract).
#[derive(Debug, Serialize)]
struct Report<'a> {
    file: &'a str,
    index: usize,
    kind: &'a str,
    name: Option<&'a str>,
    valid: bool,
    errors: Vec<ErrorReport<'a>>,
}

#[derive(Debug, Serialize)]
struct ErrorReport<'a> {
    field: &'a str,
    #[serde(rename = "type")]
    type_: &'static str,
    #[serde(rename = "badValue")]
    bad_value: Option<&'a serde_json::Value>,
    detail: &'a str,
}

pub(crate) fn run(args: &Args) -> Outcome {
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut outcome = Outcome::Ok;
    for file in &args.files {
        let docs = match crate::read_input(file)
            .and_then(|bytes| loader::load_bytes(&bytes, file).map_err(|e| format!("error: {e}")))
        {
            Ok(docs) => docs,
            Err(message) => {
                eprintln!("{message}");
                outcome = outcome.max(Outcome::Unreadable);
                continue;
            }
        };
        for doc in &docs {
            let errors = doc.validate();
            if !errors.is_empty() {
                outcome = outcome.max(Outcome::Invalid);
            }
            let written = if args.human {
                write_human(&mut out, file, doc, &errors)
            } else {
                write_json(&mut out, file, doc, &errors)
            };
            if let Err(e) = written {
                // A closed pipe (`batch validate … | head`) ends the output, not the run.
                if e.kind() != io::ErrorKind::BrokenPipe {
                    eprintln!("error: cannot write the output: {e}");
                }
                return outcome.max(Outcome::Unreadable);
            }
        }
    }
    outcome
}

fn write_json(
    out: &mut impl Write,
    file: &str,
    doc: &Document,
    errors: &ValidationErrors,
) -> io::Result<()> {
    let report = Report {
        file,
        index: doc.index,
        kind: &doc.kind,
        name: doc.name.as_deref(),
        valid: errors.is_empty(),
        errors: errors.iter().map(error_report).collect(),
    };
    serde_json::to_writer(&mut *out, &report)?;
    writeln!(out)
}

fn error_report(e: &FieldError) -> ErrorReport<'_> {
    ErrorReport {
        field: e.path.as_str(),
        type_: e.kind.type_name(),
        bad_value: e.bad_value.as_ref(),
        detail: &e.detail,
    }
}

/// kubectl's wording: `The Job "pi" is invalid: <error>`, or one `* <error>` line per error.
fn write_human(
    out: &mut impl Write,
    file: &str,
    doc: &Document,
    errors: &ValidationErrors,
) -> io::Result<()> {
    let kind = if doc.kind.is_empty() {
        "object"
    } else {
        &doc.kind
    };
    let name = doc.name.as_deref().unwrap_or_default();
    let place = format!("{file} (document {})", doc.index + 1);
    match errors.0.as_slice() {
        [] => writeln!(
            out,
            "{place}: {}.batch/{name} is valid",
            kind.to_lowercase()
        ),
        [one] => writeln!(out, "{place}: The {kind} {name:?} is invalid: {one}"),
        many => {
            writeln!(out, "{place}: The {kind} {name:?} is invalid:")?;
            for e in many {
                writeln!(out, "* {e}")?;
            }
            Ok(())
        }
    }
}
