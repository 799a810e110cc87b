//! No input makes the `sync` and `simulate` documents, or the machines behind them, panic:
//! arbitrary bytes, and documents built from a grammar of plausible fields with random
//! values, are read and — when readable — run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use batch_core::cronjob::{self, CronJobOptions};
use batch_core::job;
use batch_core::simulate::{self, SimulationDocument};
use proptest::prelude::*;

fn scalar() -> impl Strategy<Value = String> {
    // Mostly small integers (so documents get through to the machines), sometimes anything.
    prop_oneof![
        40 => (0i64..12).prop_map(|n| n.to_string()),
        4 => (0i64..5000).prop_map(|n| n.to_string()),
        1 => Just("-1".to_owned()),
        1 => Just("2147483647".to_owned()),
        1 => Just("2147483648".to_owned()),
        1 => Just("99999999999999999999".to_owned()),
        1 => Just("1.5".to_owned()),
        1 => Just("true".to_owned()),
        1 => Just("null".to_owned()),
        1 => Just("\"x\"".to_owned()),
        1 => Just("2026-01-01T00:00:00Z".to_owned()),
    ]
}

/// A time: mostly valid, sometimes extreme or not a time at all.
fn when() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => (0i64..86_400).prop_map(|s| {
            chrono::DateTime::from_timestamp(1_767_225_600 + s, 0).unwrap().to_rfc3339()
        }),
        1 => Just("1970-01-01T00:00:00Z".to_owned()),
        1 => Just("9999-12-31T23:59:59Z".to_owned()),
        1 => Just("not-a-time".to_owned()),
    ]
}

/// A sync-job or simulate-job document with random values in plausible places.
fn job_document() -> impl Strategy<Value = String> {
    (
        (scalar(), scalar(), scalar(), scalar()),
        (scalar(), scalar(), scalar(), scalar()),
        (scalar(), when(), any::<bool>(), 0usize..4),
        prop::sample::select(vec!["Indexed", "NonIndexed", "Other"]),
        prop::sample::select(vec!["Never", "OnFailure", "Always"]),
    )
        .prop_map(|((c, p, bl, bli), (mfi, ads, idx, code), (ttl, at, sim, npods), mode, restart)| {
            let pods: String = (0..npods)
                .map(|i| {
                    if sim {
                        format!("  - {{match: {{index: {idx}, attempt: {i}}}, runFor: {}s, exitCode: {code}}}\n", i * 7)
                    } else {
                        format!(
                            "  - {{name: p{i}, phase: {}, index: {idx}, exitCodes: {{main: {code}}}, restarts: {code}, finishedAt: {at}}}\n",
                            ["Running", "Failed", "Succeeded", "Pending"][i % 4]
                        )
                    }
                })
                .collect();
            let head = if sim { "start: 2026-01-01T00:00:00Z\nuntil: 2026-01-02T00:00:00Z" } else { "now: 2026-01-01T00:10:00Z" };
            format!(
                "{head}\njob:\n  apiVersion: batch/v1\n  kind: Job\n  metadata: {{name: j, uid: u}}\n  spec:\n    completions: {c}\n    parallelism: {p}\n    backoffLimit: {bl}\n    backoffLimitPerIndex: {bli}\n    maxFailedIndexes: {mfi}\n    activeDeadlineSeconds: {ads}\n    ttlSecondsAfterFinished: {ttl}\n    completionMode: {mode}\n    podFailurePolicy: {{rules: [{{action: FailIndex, onExitCodes: {{operator: In, values: [{code}]}}}}]}}\n    successPolicy: {{rules: [{{succeededIndexes: \"0-{idx}\", succeededCount: {c}}}]}}\n    template: {{spec: {{restartPolicy: {restart}, containers: [{{name: main, image: busybox}}]}}}}\n  status: {{failed: {code}, succeeded: {c}, completedIndexes: \"0-{idx}\", startTime: {at}}}\npods:\n{pods}"
            )
        })
}

/// A sync-cronjob or simulate-cronjob document with random values in plausible places.
fn cron_document() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["* * * * *", "@every 1s", "0 0 30 2 *", "*/7 3 * * 1-5", "TZ=UTC 0 * * * *", "bad"]),
        prop::sample::select(vec!["Allow", "Forbid", "Replace", "Other"]),
        (scalar(), scalar(), when(), 0u32..5000),
        prop::sample::select(vec!["UTC", "America/Havana", "Nowhere/Town", "Local"]),
        any::<bool>(),
    )
        .prop_map(|(schedule, policy, (deadline, hist, last, run), zone, sim)| {
            let head = if sim { "start: 2026-01-01T00:00:00Z\nuntil: 2026-01-01T06:00:00Z" } else { "now: 2026-01-01T00:10:00Z" };
            let tail = if sim {
                format!("jobs:\n  - {{runFor: {run}s, result: Failed}}\n")
            } else {
                format!("jobs:\n  - {{name: c-29450000, scheduledTime: {last}, startTime: {last}, finished: Complete, completionTime: {last}}}\n")
            };
            format!(
                "{head}\ncronjob:\n  apiVersion: batch/v1\n  kind: CronJob\n  metadata: {{name: c, uid: u, creationTimestamp: {last}}}\n  spec:\n    schedule: \"{schedule}\"\n    timeZone: {zone}\n    concurrencyPolicy: {policy}\n    startingDeadlineSeconds: {deadline}\n    successfulJobsHistoryLimit: {hist}\n    failedJobsHistoryLimit: {hist}\n    jobTemplate: {{spec: {{template: {{spec: {{restartPolicy: Never, containers: [{{name: m, image: b}}]}}}}}}}}\n  status: {{lastScheduleTime: {last}, active: [{{name: c-1}}]}}\n{tail}"
            )
        })
}

fn run_everything(text: &str) {
    if let Ok(input) = job::sync::SyncInput::parse(text, "doc.yaml") {
        let _ = job::sync::sync(&input);
    }
    if let Ok(input) = cronjob::sync::SyncInput::parse(text, "doc.yaml") {
        let _ = cronjob::sync::sync(&input, &CronJobOptions::default());
    }
    match simulate::parse_document(text, "doc.yaml") {
        Ok(SimulationDocument::Job(input)) => {
            let _ = simulate::simulate_job(&input).map(|s| s.json_lines());
        }
        Ok(SimulationDocument::CronJob(input)) => {
            let _ = simulate::simulate_cron_job(&input);
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = job::sync::SyncInput::parse_bytes(&bytes, "b.yaml");
        let _ = cronjob::sync::SyncInput::parse_bytes(&bytes, "b.yaml");
        if let Ok(text) = std::str::from_utf8(&bytes) {
            run_everything(text);
        }
    }

    #[test]
    fn job_documents_never_panic(text in job_document()) {
        run_everything(&text);
    }

    #[test]
    fn cron_job_documents_never_panic(text in cron_document()) {
        run_everything(&text);
    }
}

/// The grammar above must produce documents that are read and run, not only rejected.
#[test]
fn the_grammar_reaches_the_machines() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let (mut synced, mut simulated, mut cron_synced) = (0, 0, 0);
    for _ in 0..300 {
        let text = job_document().new_tree(&mut runner).unwrap().current();
        synced += usize::from(job::sync::SyncInput::parse(&text, "d").is_ok());
        simulated += usize::from(matches!(
            simulate::parse_document(&text, "d"),
            Ok(SimulationDocument::Job(_))
        ));
        let text = cron_document().new_tree(&mut runner).unwrap().current();
        cron_synced += usize::from(cronjob::sync::SyncInput::parse(&text, "d").is_ok());
    }
    assert!(
        synced > 30 && simulated > 30 && cron_synced > 30,
        "{synced} {simulated} {cron_synced}"
    );
}
