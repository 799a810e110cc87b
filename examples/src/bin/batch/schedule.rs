//! `batch schedule EXPR`: conformance-io.md §2.

use std::io::{self, Write};

use batch_core::cron::{DstEffect, DstPolicy, Schedule, parse_time_zone};
use chrono::{DateTime, SecondsFormat, Utc};

use crate::Outcome;

/// Arguments of `batch schedule`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A schedule as a CronJob accepts it: five fields, a macro such as @daily, or
    /// `@every <duration>`.
    #[arg(value_name = "EXPR", allow_hyphen_values = true)]
    expr: String,
    /// IANA time zone the fields are matched in (default UTC).
    #[arg(long, value_name = "ZONE")]
    tz: Option<String>,
    /// Print fire times strictly after this RFC 3339 time (default: now).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    after: Option<DateTime<Utc>>,
    /// How many fire times to print.
    #[arg(long, value_name = "N", default_value_t = 5)]
    count: usize,
    /// DST policy: run-once (default) or kubernetes.
    #[arg(long, value_name = "POLICY", default_value = "run-once", value_parser = parse_policy)]
    dst: DstPolicy,
    /// Also show the local wall time, and mark runs moved or deduplicated by DST.
    #[arg(long)]
    human: bool,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-01-01T00:00:00Z: {e}"))
}

fn parse_policy(s: &str) -> Result<DstPolicy, String> {
    s.parse()
}

pub(crate) fn run(args: &Args) -> Outcome {
    let schedule = match Schedule::parse(&args.expr) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: invalid schedule {:?}: {e}", args.expr);
            return Outcome::Invalid;
        }
    };
    let tz = match args.tz.as_deref().map(parse_time_zone).transpose() {
        Ok(tz) => tz.unwrap_or(chrono_tz::UTC),
        Err(e) => {
            eprintln!("error: {e}");
            return Outcome::Invalid;
        }
    };
    let zone = schedule.zone().unwrap_or(tz);
    // The CLI is the edge of the system: the one place that reads the clock.
    let after = args.after.unwrap_or_else(Utc::now);
    let stdout = io::stdout();
    let mut out = stdout.lock();
    let mut printed = 0;
    for fire in schedule.fires_after(after, tz, args.dst).take(args.count) {
        printed += 1;
        let time = fire.time.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        let line = if args.human {
            let local = fire.time.with_timezone(&zone);
            let note = match fire.dst {
                DstEffect::None => String::new(),
                DstEffect::Shifted => format!(
                    "  [DST: {} does not exist (clock skipped ahead); runs at the end of the gap]",
                    fire.scheduled.format("%H:%M")
                ),
                DstEffect::Deduplicated => format!(
                    "  [DST: {} happens twice; runs once, at the first]",
                    fire.scheduled.format("%H:%M")
                ),
                DstEffect::Repeated(n) => format!(
                    "  [DST: {} happens twice; this is run {n} of 2]",
                    fire.scheduled.format("%H:%M")
                ),
                _ => String::from("  [DST]"),
            };
            format!(
                "{time}  {} ({zone}){note}",
                local.format("%a %Y-%m-%d %H:%M:%S %Z")
            )
        } else {
            time
        };
        if writeln!(out, "{line}").is_err() {
            // A closed pipe (`batch schedule … | head -1`) ends the output.
            break;
        }
    }
    if args.human && printed < args.count {
        let _ = writeln!(
            out,
            "(no further run within {} years)",
            batch_core::cron::SEARCH_YEARS
        );
    }
    Outcome::Ok
}
