//! `batch status [NAME]`: what the state store of `batch run` holds.

use std::path::PathBuf;

use batch_core::model::{CronJob, JobConditionType};
use batch_core::store::{JobRecord, SqliteStore, StateStore, StoredState};
use serde_json::json;

/// Arguments of `batch status`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A Job or CronJob name: show it in detail (default: a line per Job and CronJob).
    #[arg(value_name = "NAME")]
    name: Option<String>,
    /// The state directory of `batch run` (default: `$XDG_DATA_HOME/batch`, else
    /// `~/.local/share/batch`).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Output: `text` or `json` (one JSON object per line).
    #[arg(long, short = 'o', default_value = "text", value_name = "FORMAT")]
    output: String,
}

/// Exit statuses: 0 printed, 1 no such Job or CronJob, 2 the store could not be read.
pub(crate) fn run(args: &Args) -> u8 {
    let json = match args.output.as_str() {
        "json" => true,
        "text" => false,
        other => {
            eprintln!("error: --output: unknown format {other:?} (use text or json)");
            return 2;
        }
    };
    let dir = crate::run::default_state_dir(args.state_dir.as_ref());
    let path = dir.join("state.db");
    let state = if path.exists() {
        match SqliteStore::open_read_only(&path).and_then(|s| s.load()) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("error: {e}");
                return 2;
            }
        }
    } else {
        StoredState::default()
    };
    match &args.name {
        Some(name) => detail(&state, name, json, &dir),
        None => {
            if json {
                for r in state.jobs.values() {
                    println!("{}", job_json(r));
                }
                for c in state.cron_jobs.values() {
                    println!("{}", cron_json(c, &state));
                }
            } else if state.jobs.is_empty() && state.cron_jobs.is_empty() {
                println!("no runs recorded in {}", dir.display());
            } else {
                table(&state);
            }
            0
        }
    }
}

fn detail(state: &StoredState, name: &str, json: bool, dir: &std::path::Path) -> u8 {
    let job = state.jobs.get(name);
    let cron = state.cron_jobs.get(name);
    if job.is_none() && cron.is_none() {
        eprintln!(
            "error: no Job or CronJob named {name:?} in {}",
            dir.display()
        );
        return 1;
    }
    if let Some(r) = job {
        if json {
            println!("{}", job_json(r));
        } else {
            job_text(r, state);
        }
    }
    if let Some(c) = cron {
        if json {
            println!("{}", cron_json(c, state));
        } else {
            cron_text(c, state);
        }
    }
    0
}

/// `Complete`, `Failed`, `Deleting`, `Suspended` or `Running`.
fn job_state(r: &JobRecord) -> &'static str {
    let s = &r.job.status;
    let is_true = |t: JobConditionType| {
        s.condition(&t)
            .is_some_and(|c| c.status == batch_core::model::ConditionStatus::True)
    };
    if r.job.metadata.deletion_timestamp.is_some() {
        "Deleting"
    } else if is_true(JobConditionType::Complete) {
        "Complete"
    } else if is_true(JobConditionType::Failed) {
        "Failed"
    } else if r.job.spec.suspend == Some(true) {
        "Suspended"
    } else {
        "Running"
    }
}

/// The owning CronJob's name.
fn owner(r: &JobRecord) -> Option<&str> {
    r.job
        .metadata
        .owner_references
        .iter()
        .find(|o| o.kind == "CronJob" && o.controller == Some(true))
        .map(|o| o.name.as_str())
}

fn job_json(r: &JobRecord) -> serde_json::Value {
    json!({
        "kind": "Job",
        "name": r.name(),
        "uid": r.uid(),
        "state": job_state(r),
        "cronJob": owner(r),
        "completions": r.job.spec.completions,
        "parallelism": r.job.spec.parallelism,
        "status": r.job.status,
        "memory": r.memory,
        "countedPods": r.counted.len(),
        "startingPods": r.starting,
    })
}

fn cron_children<'a>(c: &CronJob, state: &'a StoredState) -> Vec<&'a JobRecord> {
    let uid = c.metadata.uid.as_deref().unwrap_or_default();
    state
        .jobs
        .values()
        .filter(|r| r.owner_uid() == Some(uid))
        .collect()
}

fn cron_json(c: &CronJob, state: &StoredState) -> serde_json::Value {
    json!({
        "kind": "CronJob",
        "name": c.name(),
        "uid": c.metadata.uid,
        "schedule": c.spec.schedule,
        "timeZone": c.spec.time_zone,
        "suspend": c.spec.suspend == Some(true),
        "status": c.status,
        "jobs": cron_children(c, state).iter().map(|r| r.name()).collect::<Vec<_>>(),
    })
}

fn time(t: Option<batch_core::model::Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )
}

fn table(state: &StoredState) {
    println!(
        "{:<8} {:<40} {:<10} {:>11} {:>7} {:>7}  STARTED",
        "KIND", "NAME", "STATE", "SUCCEEDED", "FAILED", "ACTIVE"
    );
    for r in state.jobs.values() {
        let s = &r.job.status;
        let completions = r.job.spec.completions.map_or_else(
            || s.succeeded.to_string(),
            |c| format!("{}/{c}", s.succeeded),
        );
        println!(
            "{:<8} {:<40} {:<10} {:>11} {:>7} {:>7}  {}",
            "Job",
            r.name(),
            job_state(r),
            completions,
            s.failed,
            s.active,
            time(s.start_time)
        );
    }
    for c in state.cron_jobs.values() {
        println!(
            "{:<8} {:<40} {:<10} {:>11} {:>7} {:>7}  last scheduled {}",
            "CronJob",
            c.name(),
            if c.spec.suspend == Some(true) {
                "Suspended"
            } else {
                "Scheduled"
            },
            "-",
            "-",
            c.status.active.len(),
            time(c.status.last_schedule_time)
        );
    }
}

fn job_text(r: &JobRecord, _state: &StoredState) {
    let s = &r.job.status;
    println!("Job:              {}", r.name());
    println!("UID:              {}", r.uid());
    if let Some(o) = owner(r) {
        println!("CronJob:          {o}");
    }
    println!("State:            {}", job_state(r));
    if let Some(c) = r.job.spec.completions {
        println!("Completions:      {c}");
    }
    if let Some(p) = r.job.spec.parallelism {
        println!("Parallelism:      {p}");
    }
    println!("Succeeded:        {}", s.succeeded);
    println!("Failed:           {}", s.failed);
    println!("Active:           {}", s.active);
    if !s.completed_indexes.is_empty() {
        println!("Completed index:  {}", s.completed_indexes);
    }
    if let Some(f) = s.failed_indexes.as_deref().filter(|f| !f.is_empty()) {
        println!("Failed index:     {f}");
    }
    println!("Started:          {}", time(s.start_time));
    if s.completion_time.is_some() {
        println!("Completed:        {}", time(s.completion_time));
    }
    for c in &s.conditions {
        println!(
            "Condition:        {}={} {} {}",
            c.type_.as_str(),
            match c.status {
                batch_core::model::ConditionStatus::True => "True",
                batch_core::model::ConditionStatus::False => "False",
                _ => "Unknown",
            },
            c.reason,
            c.message
        );
    }
    let b = &r.memory.backoff;
    if b.failures_after_last_success > 0 {
        println!(
            "Backoff:          {} failure(s) since the last success, the latest at {}",
            b.failures_after_last_success,
            time(b.last_failure_time)
        );
    }
    println!("Pods created:     {}", r.memory.pods_created);
    println!("Pods counted:     {}", r.counted.len());
    if !r.starting.is_empty() {
        println!("Pods starting:    {}", r.starting.join(", "));
    }
}

fn cron_text(c: &CronJob, state: &StoredState) {
    println!("CronJob:          {}", c.name());
    println!("Schedule:         {}", c.spec.schedule);
    if let Some(z) = &c.spec.time_zone {
        println!("Time zone:        {z}");
    }
    println!(
        "Suspended:        {}",
        if c.spec.suspend == Some(true) {
            "yes"
        } else {
            "no"
        }
    );
    println!("Last scheduled:   {}", time(c.status.last_schedule_time));
    println!("Last successful:  {}", time(c.status.last_successful_time));
    for r in cron_children(c, state) {
        println!("Job:              {} ({})", r.name(), job_state(r));
    }
}
