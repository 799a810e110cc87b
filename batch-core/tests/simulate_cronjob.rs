//! `batch_core::simulate` for CronJobs: the real CronJob machine on a virtual clock, with
//! child Jobs as black boxes (conformance-io.md §5). Schedules fire at the right instants in
//! their time zone, concurrency policies and history limits act as upstream's controller
//! does, DST follows the chosen policy, and the output is byte-identical across runs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use batch_core::cron::DstPolicy;
use batch_core::simulate::{
    CronJobSimulation, CronJobSimulationInput, JobMatch, JobResult, JobRule, SimEventKind,
    SimulateError, SimulationDocument, parse_document, parse_input, simulate_cron_job,
};
use chrono::{DateTime, Duration, Utc};

fn ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// The deterministic child Job name: minutes since the epoch (spec §4.7).
fn job_name(cron_job: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cron_job}-{}", scheduled.timestamp().div_euclid(60))
}

/// A CronJob document: `spec` lines go under `spec:` (indented by 4), `jobs` under `jobs:`.
fn document(start: &str, until: &str, spec: &str, jobs: &str, extra: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "start: {start}\nuntil: {until}\n{extra}cronjob:\n  metadata: {{name: report}}\n  spec:\n{spec}    jobTemplate:\n      spec:\n        template:\n          spec:\n            restartPolicy: Never\n            containers: [{{name: main, image: busybox}}]\njobs:\n{jobs}"
    )
}

fn simulate(text: &str) -> CronJobSimulation {
    let SimulationDocument::CronJob(input) =
        parse_document(text, "cron.yaml").unwrap_or_else(|e| panic!("{e}\n{text}"))
    else {
        panic!("not a CronJob document: {text}")
    };
    simulate_cron_job(&input).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// `(t, job, scheduledTime)` of every `jobCreate`.
fn creates(sim: &CronJobSimulation) -> Vec<(DateTime<Utc>, String, DateTime<Utc>)> {
    sim.events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::JobCreate {
                job,
                scheduled_time,
            } => Some((e.t, job.clone(), scheduled_time.expect("a scheduled time"))),
            _ => None,
        })
        .collect()
}

fn scheduled_times(sim: &CronJobSimulation) -> Vec<DateTime<Utc>> {
    creates(sim).into_iter().map(|(_, _, s)| s).collect()
}

fn deletes(sim: &CronJobSimulation) -> Vec<(DateTime<Utc>, String)> {
    sim.events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::JobDelete { job } => Some((e.t, job.clone())),
            _ => None,
        })
        .collect()
}

fn finishes(sim: &CronJobSimulation) -> Vec<(DateTime<Utc>, String, JobResult)> {
    sim.events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::JobFinish { job, result } => Some((e.t, job.clone(), *result)),
            _ => None,
        })
        .collect()
}

fn assert_in_time_order(sim: &CronJobSimulation) {
    for pair in sim.events.windows(2) {
        assert!(pair[0].t <= pair[1].t, "{}", sim.json_lines());
    }
}

/// A Job is created for its slot within a second (the controller wakes 100 ms after it).
fn assert_on_time(sim: &CronJobSimulation) {
    for (t, job, scheduled) in creates(sim) {
        assert!(
            t >= scheduled && t - scheduled < Duration::seconds(1),
            "{job} created at {t} for {scheduled}"
        );
        assert_eq!(job, job_name("report", scheduled));
    }
}

#[test]
fn a_week_of_weekday_mornings_in_berlin_creates_five_jobs_at_nine() {
    // Monday 2024-03-04 to Monday 2024-03-11; Berlin is UTC+1 (CET) that week.
    let sim = simulate(&document(
        "2024-03-04T00:00:00Z",
        "2024-03-11T00:00:00Z",
        "schedule: \"0 9 * * 1-5\"\ntimeZone: Europe/Berlin\n",
        "  - runFor: 90s\n    result: Complete\n",
        "",
    ));
    let expected: Vec<_> = (4..=8)
        .map(|day| ts(&format!("2024-03-{day:02}T08:00:00Z")))
        .collect();
    assert_eq!(scheduled_times(&sim), expected, "{}", sim.json_lines());
    assert_on_time(&sim);
    assert_in_time_order(&sim);
    assert_eq!(sim.jobs_created, 5);
    // Each runs 90 s and completes.
    let done = finishes(&sim);
    assert_eq!(done.len(), 5);
    for ((created, job, _), (finished, done_job, result)) in creates(&sim).iter().zip(&done) {
        assert_eq!(job, done_job);
        assert_eq!(*finished - *created, Duration::seconds(90));
        assert_eq!(*result, JobResult::Complete);
    }
    // Default successfulJobsHistoryLimit 3: the two oldest are deleted.
    let gone: Vec<String> = deletes(&sim).into_iter().map(|(_, j)| j).collect();
    assert_eq!(
        gone,
        vec![
            job_name("report", expected[0]),
            job_name("report", expected[1])
        ]
    );
    assert!(sim.status.active.is_empty(), "{:?}", sim.status);
    assert_eq!(sim.status.last_schedule_time, Some(expected[4]));
    assert_eq!(
        sim.status.last_successful_time,
        Some(done[4].0),
        "{}",
        sim.json_lines()
    );
    let lines = sim.json_lines();
    assert!(lines.ends_with("}}}\n"), "{lines}");
    let last = lines.lines().last().unwrap();
    assert!(
        last.starts_with(r#"{"final":{"status":{"lastScheduleTime":"2024-03-08T08:00:00Z""#),
        "{last}"
    );
}

#[test]
fn forbid_skips_slots_while_a_job_runs_then_starts_the_missed_one_late() {
    // Slots every 10 minutes; the first Job runs 25 minutes (00:10 to 00:35), covering the
    // 00:20 and 00:30 slots.
    let spec = "schedule: \"*/10 * * * *\"\nconcurrencyPolicy: Forbid\n";
    let jobs = "  - match: {ordinal: 0}\n    runFor: 25m\n  - runFor: 1m\n";
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:55:00Z",
        spec,
        jobs,
        "",
    ));
    let made = creates(&sim);
    let scheduled: Vec<_> = made.iter().map(|(_, _, s)| *s).collect();
    // Spec §9.5: the skipped 00:30 slot stays unmet and starts as soon as the running Job
    // ends (00:20 is older than the most recent missed slot and is dropped).
    assert_eq!(
        scheduled,
        vec![
            ts("2026-01-01T00:10:00Z"),
            ts("2026-01-01T00:30:00Z"),
            ts("2026-01-01T00:40:00Z"),
            ts("2026-01-01T00:50:00Z"),
        ],
        "{}",
        sim.json_lines()
    );
    // The late start: at the instant the first Job ends (25 minutes after it started).
    let done = finishes(&sim);
    assert_eq!(done[0].1, made[0].1);
    assert_eq!(done[0].0, made[0].0 + Duration::minutes(25));
    assert_eq!(made[1].0, done[0].0, "{}", sim.json_lines());
    // Never two Jobs at once.
    for pair in made.windows(2) {
        let end = done.iter().find(|(_, j, _)| *j == pair[0].1).unwrap().0;
        assert!(end <= pair[1].0, "{}", sim.json_lines());
    }
    // JobAlreadyActive is a Normal event: not in the output.
    assert!(
        !sim.events
            .iter()
            .any(|e| matches!(e.kind, SimEventKind::Warning { .. })),
        "{}",
        sim.json_lines()
    );

    // With a starting deadline shorter than the delay, the missed slot is not started.
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:55:00Z",
        &format!("{spec}startingDeadlineSeconds: 60\n"),
        jobs,
        "",
    ));
    assert_eq!(
        scheduled_times(&sim),
        vec![
            ts("2026-01-01T00:10:00Z"),
            ts("2026-01-01T00:40:00Z"),
            ts("2026-01-01T00:50:00Z"),
        ],
        "{}",
        sim.json_lines()
    );
}

#[test]
fn replace_deletes_the_running_job_before_creating_the_next() {
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:35:00Z",
        "schedule: \"*/10 * * * *\"\nconcurrencyPolicy: Replace\n",
        "  - runFor: 15m\n",
        "",
    ));
    let scheduled = scheduled_times(&sim);
    assert_eq!(
        scheduled,
        vec![
            ts("2026-01-01T00:10:00Z"),
            ts("2026-01-01T00:20:00Z"),
            ts("2026-01-01T00:30:00Z"),
        ],
        "{}",
        sim.json_lines()
    );
    // Each Job is replaced before it can finish: deleted, never finished.
    assert!(finishes(&sim).is_empty(), "{}", sim.json_lines());
    let gone = deletes(&sim);
    assert_eq!(
        gone.iter().map(|(_, j)| j.clone()).collect::<Vec<_>>(),
        vec![
            job_name("report", scheduled[0]),
            job_name("report", scheduled[1])
        ]
    );
    // The delete comes right before the create of the replacement, at the same instant.
    for (slot, (t, job)) in scheduled[1..].iter().zip(&gone) {
        let at = sim
            .events
            .iter()
            .position(|e| matches!(&e.kind, SimEventKind::JobDelete { job: j } if j == job))
            .unwrap();
        let next = &sim.events[at + 1];
        assert_eq!(next.t, *t);
        assert!(
            matches!(&next.kind, SimEventKind::JobCreate { scheduled_time, .. } if *scheduled_time == Some(*slot)),
            "{}",
            sim.json_lines()
        );
    }
    assert_eq!(sim.status.active.len(), 1, "{:?}", sim.status);
    assert_eq!(
        sim.status.active[0].name.as_deref(),
        Some(job_name("report", scheduled[2]).as_str())
    );
    assert_on_time(&sim);
}

#[test]
fn history_limits_delete_the_oldest_finished_jobs() {
    // Every minute for 12 minutes; every third Job fails.
    let jobs = "  - match: {ordinal: 1}\n    runFor: 10s\n    result: Failed\n  - match: {ordinal: 4}\n    runFor: 10s\n    result: Failed\n  - match: {ordinal: 7}\n    runFor: 10s\n    result: Failed\n  - runFor: 10s\n";
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:12:30Z",
        "schedule: \"* * * * *\"\nsuccessfulJobsHistoryLimit: 2\nfailedJobsHistoryLimit: 1\n",
        jobs,
        "",
    ));
    assert_eq!(sim.jobs_created, 12, "{}", sim.json_lines());
    assert_in_time_order(&sim);
    // Replay: the Jobs that exist, finished ones by result in finish (= start) order.
    let mut kept: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut deleted = 0;
    let mut i = 0;
    while i < sim.events.len() {
        let t = sim.events[i].t;
        while i < sim.events.len() && sim.events[i].t == t {
            match &sim.events[i].kind {
                SimEventKind::JobFinish { job, result } => {
                    kept.entry(result.as_str()).or_default().push(job.clone());
                }
                SimEventKind::JobDelete { job } => {
                    // Always the oldest finished Job of its kind.
                    let list = kept
                        .values_mut()
                        .find(|l| l.contains(job))
                        .unwrap_or_else(|| panic!("{job} deleted but not finished"));
                    assert_eq!(&list[0], job, "{}", sim.json_lines());
                    list.remove(0);
                    deleted += 1;
                }
                _ => {}
            }
            i += 1;
        }
        // By the end of every instant, the limits hold.
        assert!(kept.get("Complete").map_or(0, Vec::len) <= 2, "at {t}");
        assert!(kept.get("Failed").map_or(0, Vec::len) <= 1, "at {t}");
    }
    // 12 finished: 9 complete (7 deleted), 3 failed (2 deleted).
    assert_eq!(deleted, 9, "{}", sim.json_lines());
    assert_eq!(kept["Complete"].len(), 2);
    assert_eq!(
        kept["Failed"],
        vec![job_name("report", ts("2026-01-01T00:08:00Z"))]
    );

    // A limit of 0 keeps nothing: each Job is deleted as soon as it has finished.
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T00:05:30Z",
        "schedule: \"* * * * *\"\nsuccessfulJobsHistoryLimit: 0\n",
        "  - runFor: 10s\n",
        "",
    ));
    let done = finishes(&sim);
    let gone = deletes(&sim);
    assert_eq!(done.len(), 5);
    assert_eq!(
        done.iter()
            .map(|(t, j, _)| (*t, j.clone()))
            .collect::<Vec<_>>(),
        gone
    );
}

fn dst_week(schedule: &str, start: &str, until: &str, dst: Option<&str>) -> CronJobSimulation {
    let extra = dst.map(|d| format!("dst: {d}\n")).unwrap_or_default();
    simulate(&document(
        start,
        until,
        &format!("schedule: \"{schedule}\"\ntimeZone: America/New_York\n"),
        "  - runFor: 1m\n",
        &extra,
    ))
}

#[test]
fn spring_forward_runs_once_at_the_end_of_the_gap_or_is_skipped() {
    // 2024-03-10: 02:00 EST jumps to 03:00 EDT in New York, so 02:30 does not exist.
    let (start, until) = ("2024-03-07T00:00:00Z", "2024-03-13T00:00:00Z");
    let before = [
        "2024-03-07T07:30:00Z",
        "2024-03-08T07:30:00Z",
        "2024-03-09T07:30:00Z",
    ];
    let after = ["2024-03-11T06:30:00Z", "2024-03-12T06:30:00Z"];

    for dst in [None, Some("run-once")] {
        let sim = dst_week("30 2 * * *", start, until, dst);
        let mut expected: Vec<_> = before.iter().map(|t| ts(t)).collect();
        expected.push(ts("2024-03-10T07:00:00Z")); // 03:00 EDT, the first instant after the gap
        expected.extend(after.iter().map(|t| ts(t)));
        assert_eq!(scheduled_times(&sim), expected, "{}", sim.json_lines());
        assert_on_time(&sim);
    }

    let sim = dst_week("30 2 * * *", start, until, Some("kubernetes"));
    let expected: Vec<_> = before.iter().chain(&after).map(|t| ts(t)).collect();
    assert_eq!(scheduled_times(&sim), expected, "{}", sim.json_lines());
    assert_on_time(&sim);
}

#[test]
fn fall_back_runs_once_or_twice() {
    // 2024-11-03: 02:00 EDT falls back to 01:00 EST in New York, so 01:30 happens twice.
    let (start, until) = ("2024-10-31T00:00:00Z", "2024-11-06T00:00:00Z");
    let mut expected: Vec<_> = [
        "2024-10-31T05:30:00Z",
        "2024-11-01T05:30:00Z",
        "2024-11-02T05:30:00Z",
        "2024-11-03T05:30:00Z",
        "2024-11-04T06:30:00Z",
        "2024-11-05T06:30:00Z",
    ]
    .iter()
    .map(|t| ts(t))
    .collect();

    let sim = dst_week("30 1 * * *", start, until, Some("run-once"));
    assert_eq!(scheduled_times(&sim), expected, "{}", sim.json_lines());
    assert_on_time(&sim);

    let sim = dst_week("30 1 * * *", start, until, Some("kubernetes"));
    expected.insert(4, ts("2024-11-03T06:30:00Z")); // 01:30 EST, the second 01:30
    assert_eq!(scheduled_times(&sim), expected, "{}", sim.json_lines());
    assert_on_time(&sim);
}

#[test]
fn the_same_document_gives_the_same_bytes() {
    let text = document(
        "2024-10-28T00:00:00Z",
        "2024-11-11T00:00:00Z",
        "schedule: \"30 1 * * *\"\ntimeZone: America/New_York\nconcurrencyPolicy: Forbid\n",
        "  - match: {ordinal: 2}\n    runFor: 30h\n    result: Failed\n  - runFor: 45m\n",
        "dst: kubernetes\n",
    );
    let first = simulate(&text).json_lines();
    for _ in 0..3 {
        assert_eq!(simulate(&text).json_lines(), first);
    }
    assert!(
        first.contains(r#""event":"jobFinish","job":"report-"#),
        "{first}"
    );
    assert!(first.contains(r#""result":"Failed""#), "{first}");
}

#[test]
fn jobs_no_rule_matches_complete_at_once() {
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-01T03:30:00Z",
        "schedule: \"@hourly\"\n",
        "  - match: {ordinal: 0}\n    runFor: 5m\n    result: Failed\n",
        "",
    ));
    let made = creates(&sim);
    let done = finishes(&sim);
    assert_eq!(made.len(), 3, "{}", sim.json_lines());
    assert_eq!(done[0].2, JobResult::Failed);
    assert_eq!(done[0].0 - made[0].0, Duration::minutes(5));
    for ((created, _, _), (finished, _, result)) in made[1..].iter().zip(&done[1..]) {
        assert_eq!(created, finished);
        assert_eq!(*result, JobResult::Complete);
    }
    // Spelled out in JSON lines.
    let lines = sim.json_lines();
    let first = lines.lines().next().unwrap();
    assert_eq!(
        first,
        format!(
            r#"{{"t":"2026-01-01T01:00:00.100Z","event":"jobCreate","job":"{}","scheduledTime":"2026-01-01T01:00:00Z"}}"#,
            job_name("report", ts("2026-01-01T01:00:00Z"))
        )
    );
}

#[test]
fn a_long_missed_history_warns_and_starts_the_most_recent_slot() {
    let text = "start: 2026-01-01T00:02:00Z\nuntil: 2026-01-01T00:04:00Z\ncronjob:\n  metadata: {name: report, creationTimestamp: 2025-12-01T00:00:00Z}\n  spec:\n    schedule: \"* * * * *\"\n    jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}}\njobs: [{runFor: 10s}]\n";
    let sim = simulate(text);
    let warnings: Vec<_> = sim
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            SimEventKind::Warning { reason, .. } => Some((e.t, reason.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        warnings,
        vec![(ts("2026-01-01T00:02:00Z"), "TooManyMissedTimes")],
        "{}",
        sim.json_lines()
    );
    assert_eq!(scheduled_times(&sim)[0], ts("2026-01-01T00:02:00Z"));
    assert!(
        sim.json_lines()
            .contains(r#""event":"warning","reason":"TooManyMissedTimes","message":""#)
    );
}

#[test]
fn without_until_a_run_lasts_thirty_days() {
    let text = "start: 2026-01-01T00:00:00Z\ncronjob: {metadata: {name: report}, spec: {schedule: \"@daily\", jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: main, image: busybox}]}}}}}}\n";
    let sim = simulate(text);
    let scheduled = scheduled_times(&sim);
    // Jan 2 .. Jan 30 (the Jan 31 run is created 100 ms after the horizon).
    assert_eq!(scheduled.len(), 29, "{}", sim.json_lines());
    assert_eq!(scheduled[0], ts("2026-01-02T00:00:00Z"));
    assert!(sim.end <= ts("2026-01-31T00:00:00Z"));
}

#[test]
fn a_suspended_cronjob_creates_nothing_and_the_run_ends_at_start() {
    let sim = simulate(&document(
        "2026-01-01T00:00:00Z",
        "2026-01-08T00:00:00Z",
        "schedule: \"* * * * *\"\nsuspend: true\n",
        "  - runFor: 10s\n",
        "",
    ));
    assert!(sim.events.is_empty(), "{}", sim.json_lines());
    assert_eq!(sim.end, ts("2026-01-01T00:00:00Z"));
    assert_eq!(sim.json_lines(), "{\"final\":{\"status\":{}}}\n");
}

#[test]
fn the_api_builds_the_same_run_as_the_document() {
    let text = document(
        "2024-03-04T00:00:00Z",
        "2024-03-06T00:00:00Z",
        "schedule: \"0 9 * * 1-5\"\ntimeZone: Europe/Berlin\n",
        "  - match: {ordinal: 1}\n    runFor: 1h\n    result: Failed\n  - runFor: 90s\n",
        "dst: kubernetes\n",
    );
    let SimulationDocument::CronJob(parsed) = parse_document(&text, "c.yaml").unwrap() else {
        panic!("a CronJob document")
    };
    let mut built = CronJobSimulationInput::new(parsed.start, parsed.cron_job.clone());
    built.until = Some(ts("2024-03-06T00:00:00Z"));
    built.dst = DstPolicy::Kubernetes;
    built.jobs = vec![
        JobRule::new(Duration::hours(1), JobResult::Failed).when(JobMatch::any().with_ordinal(1)),
        JobRule::new(Duration::seconds(90), JobResult::Complete),
    ];
    assert_eq!(built, parsed);
    assert_eq!(
        simulate_cron_job(&built).unwrap(),
        simulate_cron_job(&parsed).unwrap()
    );
}

#[test]
fn bad_documents_are_refused() {
    let parse_err = |text: &str| match parse_document(text, "c.yaml") {
        Err(e) => e,
        Ok(doc) => panic!("accepted: {doc:?}"),
    };
    let cron = "cronjob: {metadata: {name: c}, spec: {schedule: \"@daily\", jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: m, image: x}]}}}}}}\n";
    let start = "start: 2026-01-01T00:00:00Z\n";

    // Pod rules belong to Job documents, dst and jobs to CronJob documents.
    let e = parse_err(&format!("{start}{cron}pods: [{{runFor: 5s}}]\n"));
    assert!(
        matches!(e, SimulateError::Parse(_)) && e.to_string().contains("jobs:"),
        "{e}"
    );
    let e = parse_err(&format!(
        "{start}job: {{metadata: {{name: a}}}}\ndst: kubernetes\n"
    ));
    assert!(
        matches!(e, SimulateError::Parse(_)) && e.to_string().contains("dst"),
        "{e}"
    );
    let e = parse_err(&format!(
        "{start}job: {{metadata: {{name: a}}}}\njobs: [{{runFor: 5s}}]\n"
    ));
    assert!(matches!(e, SimulateError::Parse(_)), "{e}");
    let e = parse_err(&format!("{start}{cron}job: {{metadata: {{name: a}}}}\n"));
    assert!(e.to_string().contains("not both"), "{e}");
    let e = parse_err(start);
    assert!(e.to_string().contains("cronjob"), "{e}");
    // Misspelt values and keys.
    let e = parse_err(&format!("{start}{cron}dst: never\n"));
    assert!(e.to_string().contains("run-once"), "{e}");
    let e = parse_err(&format!(
        "{start}{cron}jobs: [{{runFor: 5s, result: Succeeded}}]\n"
    ));
    assert!(e.to_string().contains("Complete"), "{e}");
    let e = parse_err(&format!(
        "{start}{cron}jobs: [{{match: {{index: 1}}, runFor: 5s}}]\n"
    ));
    assert!(matches!(e, SimulateError::Parse(_)), "{e}");

    // parse_input reads Job documents only.
    let e = parse_input(&format!("{start}{cron}"), "c.yaml").unwrap_err();
    assert!(matches!(e, SimulateError::Unsupported(_)), "{e:?}");

    // An invalid CronJob could never be created.
    let SimulationDocument::CronJob(input) = parse_document(
        &format!("{start}cronjob: {{metadata: {{name: c}}, spec: {{schedule: \"61 * * * *\"}}}}\n"),
        "c.yaml",
    )
    .unwrap() else {
        panic!("a CronJob document")
    };
    let e = simulate_cron_job(&input).unwrap_err();
    let SimulateError::InvalidCronJob(errors) = &e else {
        panic!("{e:?}")
    };
    assert!(
        errors
            .iter()
            .any(|x| x.to_string().contains("spec.schedule")),
        "{e}"
    );

    // until before start.
    let SimulationDocument::CronJob(input) = parse_document(
        &format!("{start}until: 2025-12-31T00:00:00Z\n{cron}"),
        "c.yaml",
    )
    .unwrap() else {
        panic!("a CronJob document")
    };
    assert!(matches!(
        simulate_cron_job(&input),
        Err(SimulateError::InvalidHorizon { .. })
    ));
}
