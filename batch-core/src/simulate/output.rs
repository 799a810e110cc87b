//! The JSON-lines output of `batch simulate` (conformance-io.md §5): field names and order
//! are part of the contract.

use std::fmt;

use chrono::SecondsFormat;
use serde::Serialize;

use super::{SimEvent, SimEventKind};

/// One output line; absent fields are left out, present ones come in this order.
#[derive(Serialize)]
struct Line<'a> {
    t: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pod: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<i32>,
    #[serde(rename = "exitCode", skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    type_: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    job: Option<&'a str>,
    #[serde(rename = "scheduledTime", skip_serializing_if = "Option::is_none")]
    scheduled_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'static str>,
}

pub(super) fn write_event(f: &mut fmt::Formatter<'_>, e: &SimEvent) -> fmt::Result {
    let mut line = Line {
        t: e.t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        event: "",
        pod: None,
        index: None,
        exit_code: None,
        type_: None,
        reason: None,
        message: None,
        job: None,
        scheduled_time: None,
        result: None,
    };
    match &e.kind {
        SimEventKind::Create { pod, index } => {
            line.event = "create";
            line.pod = Some(pod);
            line.index = *index;
        }
        SimEventKind::Exit { pod, exit_code } => {
            line.event = "exit";
            line.pod = Some(pod);
            line.exit_code = Some(*exit_code);
        }
        SimEventKind::Evict { pod } => {
            line.event = "evict";
            line.pod = Some(pod);
        }
        SimEventKind::Delete { pod } => {
            line.event = "delete";
            line.pod = Some(pod);
        }
        SimEventKind::Condition { type_, reason } => {
            line.event = "condition";
            line.type_ = Some(type_.as_str());
            line.reason = Some(reason);
        }
        SimEventKind::JobCreate {
            job,
            scheduled_time,
        } => {
            line.event = "jobCreate";
            line.job = Some(job);
            line.scheduled_time =
                scheduled_time.map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
        }
        SimEventKind::JobFinish { job, result } => {
            line.event = "jobFinish";
            line.job = Some(job);
            line.result = Some(result.as_str());
        }
        SimEventKind::JobDelete { job } => {
            line.event = "jobDelete";
            line.job = Some(job);
        }
        SimEventKind::Warning { reason, message } => {
            line.event = "warning";
            line.reason = Some(reason);
            line.message = Some(message);
        }
    }
    let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
    f.write_str(&text)
}

#[derive(Serialize)]
struct Final<'a, S> {
    #[serde(rename = "final")]
    final_: FinalStatus<'a, S>,
}

#[derive(Serialize)]
struct FinalStatus<'a, S> {
    status: &'a S,
}

/// The final line, for a Job status or a CronJob status.
pub(super) fn final_line<S: Serialize>(status: &S) -> String {
    let line = Final {
        final_: FinalStatus { status },
    };
    // Serializing plain data with string keys cannot fail.
    serde_json::to_string(&line).unwrap_or_else(|_| String::from(r#"{"final":null}"#))
}
