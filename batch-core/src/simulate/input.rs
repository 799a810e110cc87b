//! Reading the `batch simulate` input document (conformance-io.md §5).

use std::collections::BTreeMap;
use std::fmt;

use chrono::Duration;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::{
    CronJobSimulationInput, JobMatch, JobResult, JobRule, PodMatch, PodRule, RuleCondition,
    SimulateError, SimulationDocument, SimulationInput,
};
use crate::cron::DstPolicy;
use crate::job::IndexSet;
use crate::loader::{MAX_SOURCE_BYTES, ParseError};
use crate::model::{ConditionStatus, CronJob, Job, Timestamp};

/// The document as written. Unknown keys are refused, so that a misspelt key (`pod:`,
/// `exitcode:`) is an error rather than a silently different simulation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInput {
    start: Timestamp,
    #[serde(default)]
    until: Option<Timestamp>,
    #[serde(default)]
    job: Option<Job>,
    #[serde(default)]
    cronjob: Option<CronJob>,
    #[serde(default)]
    jobs: Option<Vec<RawJobRule>>,
    #[serde(default)]
    dst: Option<Dst>,
    #[serde(default)]
    pods: Option<Vec<RawRule>>,
}

/// One `jobs:` rule of a CronJob document.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawJobRule {
    #[serde(default, rename = "match")]
    matcher: Option<RawJobMatch>,
    #[serde(default)]
    run_for: Option<RunFor>,
    #[serde(default)]
    result: Option<RawJobResult>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJobMatch {
    #[serde(default)]
    ordinal: Option<u64>,
}

#[derive(Deserialize)]
enum RawJobResult {
    Complete,
    Failed,
}

/// `dst`: `run-once` or `kubernetes`.
struct Dst(DstPolicy);

impl<'de> Deserialize<'de> for Dst {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map(Dst).map_err(de::Error::custom)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default, rename = "match")]
    matcher: Option<RawMatch>,
    #[serde(default)]
    run_for: Option<RunFor>,
    #[serde(default)]
    exit_code: Option<i32>,
    #[serde(default)]
    exit_codes: Option<BTreeMap<String, i32>>,
    #[serde(default)]
    evicted: Option<bool>,
    #[serde(default)]
    conditions: Option<Vec<RawCondition>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    #[serde(default)]
    index: Option<IndexMatch>,
    #[serde(default)]
    attempt: Option<u32>,
    #[serde(default)]
    ordinal: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    #[serde(rename = "type")]
    type_: String,
    #[serde(default)]
    status: Option<ConditionStatus>,
    #[serde(default)]
    reason: Option<String>,
}

/// `runFor`: a Go duration string, or a number of seconds.
struct RunFor(Duration);

impl<'de> Deserialize<'de> for RunFor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = RunFor;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 500ms, 5s, 2m or 1h30m")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<RunFor, E> {
                parse_duration(s)
                    .map(RunFor)
                    .map_err(|why| E::custom(format_args!("invalid duration {s:?}: {why}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RunFor, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(Duration::try_seconds)
                    .map(RunFor)
                    .ok_or_else(|| E::custom("duration too large"))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RunFor, E> {
                if v < 0 {
                    return Err(E::custom("a duration cannot be negative"));
                }
                Duration::try_seconds(v)
                    .map(RunFor)
                    .ok_or_else(|| E::custom("duration too large"))
            }
        }
        d.deserialize_any(V)
    }
}

/// `match.index`: one index, or an interval string such as `"0,2,4-6"`.
struct IndexMatch(IndexSet);

impl<'de> Deserialize<'de> for IndexMatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IndexMatch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an index (3) or an interval string (\"0,2,4-6\")")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IndexMatch, E> {
                let ix = i32::try_from(v).map_err(|_| E::custom("index too large"))?;
                let mut set = IndexSet::new();
                set.insert(ix);
                Ok(IndexMatch(set))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IndexMatch, E> {
                let v = u64::try_from(v).map_err(|_| E::custom("an index cannot be negative"))?;
                self.visit_u64(v)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<IndexMatch, E> {
                let ranges = crate::validation::parse_indexes_strict(s, i32::MAX)
                    .map_err(|e| E::custom(format_args!("invalid index list {s:?}: {}", e.0)))?;
                let mut set = IndexSet::new();
                for (a, b) in ranges {
                    set.insert_range(a, b);
                }
                Ok(IndexMatch(set))
            }
        }
        d.deserialize_any(V)
    }
}

/// Parses a non-negative Go duration (`500ms`, `5s`, `2m`, `1h30m`, `1.5h`, `0`), with the
/// same reader as `@every` schedules.
pub(super) fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    if text.starts_with('-') {
        return Err("a duration cannot be negative");
    }
    let nanos = crate::cron::parse_go_duration(text)?;
    let nanos = i64::try_from(nanos).map_err(|_| "number too large")?;
    Ok(Duration::nanoseconds(nanos))
}

/// Reads the input document (see [`super::parse_document`]).
pub(super) fn parse(src: &str, origin: &str) -> Result<SimulationDocument, SimulateError> {
    if src.len() > MAX_SOURCE_BYTES {
        return Err(SimulateError::Parse(parse_error(
            origin,
            None,
            None,
            format!(
                "the source is {} bytes, more than the {MAX_SOURCE_BYTES} bytes accepted",
                src.len()
            ),
        )));
    }
    let mut documents = serde_norway::Deserializer::from_str(src);
    let Some(first) = documents.next() else {
        return Err(SimulateError::Parse(parse_error(
            origin,
            None,
            None,
            "the document is empty: expected start, and job and pods (or cronjob and jobs)"
                .to_owned(),
        )));
    };
    if documents.next().is_some() {
        return Err(SimulateError::Parse(parse_error(
            origin,
            None,
            None,
            "expected one document, found several (separated by ---)".to_owned(),
        )));
    }
    let raw: RawInput = serde_path_to_error::deserialize(first).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let location = inner.location();
        let mut message = inner.to_string();
        if let Some(loc) = &location {
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.trim_end_matches(',').to_owned();
            }
        }
        if message.contains("tab character") {
            message.push_str(" (YAML indentation must use spaces, not tabs)");
        }
        let mut err = parse_error(
            origin,
            location.as_ref().map(|l| l.line()),
            location.as_ref().map(|l| l.column()),
            message,
        );
        err.path = (path != "." && !path.is_empty()).then_some(path);
        SimulateError::Parse(err)
    })?;
    let structure =
        |message: &str| SimulateError::Parse(parse_error(origin, None, None, message.to_owned()));
    match (raw.job, raw.cronjob) {
        (Some(_), Some(_)) => Err(structure(
            "give `job:` (a Job run) or `cronjob:` (a CronJob run), not both",
        )),
        (None, None) => Err(structure(
            "missing field `job` or `cronjob`: the Job or CronJob to simulate",
        )),
        (Some(job), None) => {
            if raw.jobs.is_some() {
                return Err(structure(
                    "`jobs:` describes the Jobs of a `cronjob:`; describe the pods of a `job:` with `pods:`",
                ));
            }
            if raw.dst.is_some() {
                return Err(structure(
                    "`dst:` applies to a `cronjob:` run; a `job:` has no schedule",
                ));
            }
            let mut pods = Vec::new();
            for (i, rule) in raw.pods.unwrap_or_default().into_iter().enumerate() {
                pods.push(
                    rule_from_raw(rule)
                        .map_err(|message| SimulateError::InvalidRule { rule: i, message })?,
                );
            }
            Ok(SimulationDocument::Job(SimulationInput {
                start: raw.start,
                until: raw.until,
                job,
                pods,
            }))
        }
        (None, Some(cron_job)) => {
            if raw.pods.is_some() {
                return Err(structure(
                    "`pods:` describes the pods of a `job:`; a CronJob's Jobs run as black boxes described by `jobs:` (runFor, result)",
                ));
            }
            let jobs = raw
                .jobs
                .unwrap_or_default()
                .into_iter()
                .map(|rule| JobRule {
                    matcher: JobMatch {
                        ordinal: rule.matcher.and_then(|m| m.ordinal),
                    },
                    run_for: rule.run_for.map_or_else(Duration::zero, |r| r.0),
                    result: match rule.result {
                        None | Some(RawJobResult::Complete) => JobResult::Complete,
                        Some(RawJobResult::Failed) => JobResult::Failed,
                    },
                })
                .collect();
            Ok(SimulationDocument::CronJob(CronJobSimulationInput {
                start: raw.start,
                until: raw.until,
                cron_job,
                jobs,
                dst: raw.dst.map_or_else(DstPolicy::default, |d| d.0),
            }))
        }
    }
}

fn rule_from_raw(raw: RawRule) -> Result<PodRule, String> {
    if raw.exit_code.is_some() && raw.exit_codes.is_some() {
        return Err("give exitCode or exitCodes, not both".to_owned());
    }
    let evicted = raw.evicted.unwrap_or(false);
    if evicted && (raw.exit_code.is_some() || raw.exit_codes.is_some()) {
        return Err("an evicted pod has no exit code: drop exitCode/exitCodes".to_owned());
    }
    let matcher = raw.matcher.map_or_else(PodMatch::default, |m| PodMatch {
        index: m.index.map(|i| i.0),
        attempt: m.attempt,
        ordinal: m.ordinal,
    });
    Ok(PodRule {
        matcher,
        run_for: raw.run_for.map_or_else(Duration::zero, |r| r.0),
        exit_code: raw.exit_code,
        exit_codes: raw.exit_codes.unwrap_or_default(),
        evicted,
        conditions: raw
            .conditions
            .unwrap_or_default()
            .into_iter()
            .map(|c| RuleCondition {
                type_: c.type_,
                status: c.status.unwrap_or(ConditionStatus::True),
                reason: c.reason.unwrap_or_default(),
            })
            .collect(),
    })
}

fn parse_error(
    origin: &str,
    line: Option<usize>,
    column: Option<usize>,
    message: String,
) -> ParseError {
    ParseError {
        origin: origin.to_owned(),
        line,
        column,
        document: None,
        path: None,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let ms = |s: &str| parse_duration(s).map(|d| d.num_milliseconds());
        assert_eq!(ms("500ms"), Ok(500));
        assert_eq!(ms("5s"), Ok(5_000));
        assert_eq!(ms("2m"), Ok(120_000));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("0"), Ok(0));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("99999999999h").is_err());
    }
}
