//! Next-fire computation: batch-core's evaluator side by side with the `cron` and `croner`
//! crates, on the same schedules, zones and instants, in one run.
//!
//! Run: `cargo bench -p batch-core --bench cron`
//!
//! Each measurement computes the next fire time after each of 64 instants spread over 2024
//! (so DST transitions are crossed in the zone case). The `cron` crate needs a seconds field
//! and counts day-of-week from 1 = Sunday, so its expressions are the equivalents; `croner`
//! reads the five-field forms as written.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::str::FromStr;

use batch_core::cron::{DstPolicy, Schedule};
use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use criterion::{Criterion, criterion_group, criterion_main};

struct Case {
    name: &'static str,
    ours: &'static str,
    cron: &'static str,
    croner: &'static str,
    zone: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "every 5 minutes (UTC)",
        ours: "*/5 * * * *",
        cron: "0 */5 * * * *",
        croner: "*/5 * * * *",
        zone: "UTC",
    },
    Case {
        name: "weekdays 09:00 (UTC)",
        ours: "0 9 * * 1-5",
        cron: "0 0 9 * * Mon-Fri",
        croner: "0 9 * * 1-5",
        zone: "UTC",
    },
    Case {
        name: "29 February (UTC)",
        ours: "0 0 29 2 *",
        cron: "0 0 0 29 2 *",
        croner: "0 0 29 2 *",
        zone: "UTC",
    },
    Case {
        name: "daily 02:30 (America/New_York)",
        ours: "30 2 * * *",
        cron: "0 30 2 * * *",
        croner: "30 2 * * *",
        zone: "America/New_York",
    },
];

fn instants() -> Vec<DateTime<Utc>> {
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    (0..64)
        .map(|i| start + Duration::minutes(i * 8_219 + 17))
        .collect()
}

fn bench(c: &mut Criterion) {
    let points = instants();
    for case in CASES {
        let tz: Tz = case.zone.parse().unwrap();
        let local: Vec<DateTime<Tz>> = points.iter().map(|t| t.with_timezone(&tz)).collect();
        let mut group = c.benchmark_group(case.name);

        let ours = Schedule::parse(case.ours).unwrap();
        group.bench_function("batch-core", |b| {
            b.iter(|| {
                for t in &points {
                    black_box(ours.next_after(black_box(*t), tz, DstPolicy::RunOnce));
                }
            })
        });

        let cron = cron::Schedule::from_str(case.cron).unwrap();
        group.bench_function("cron", |b| {
            b.iter(|| {
                for t in &local {
                    black_box(cron.after(black_box(t)).next());
                }
            })
        });

        let croner = croner::Cron::from_str(case.croner).unwrap();
        group.bench_function("croner", |b| {
            b.iter(|| {
                for t in &local {
                    black_box(croner.find_next_occurrence(black_box(t), false).ok());
                }
            })
        });
        group.finish();
    }
}

/// The searches that must stay fast however far they look.
fn bench_bounds(c: &mut Criterion) {
    let mut group = c.benchmark_group("bounded searches (batch-core)");
    let never = Schedule::parse("0 0 30 2 *").unwrap();
    let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    group.bench_function("0 0 30 2 * never fires: 5-year search", |b| {
        b.iter(|| black_box(never.next_after(black_box(start), chrono_tz::UTC, DstPolicy::RunOnce)))
    });
    let minutely = Schedule::parse("* * * * *").unwrap();
    let now = Utc.with_ymd_and_hms(2026, 6, 1, 12, 34, 56).unwrap();
    let three_years_ago = now - Duration::days(3 * 365);
    group.bench_function("most_recent of * * * * * after 3 years down", |b| {
        b.iter(|| {
            black_box(minutely.most_recent(
                black_box(three_years_ago),
                black_box(now),
                chrono_tz::UTC,
                DstPolicy::RunOnce,
            ))
        })
    });
    let irregular = Schedule::parse("30 10,11,12 * * 1-5").unwrap();
    let berlin: Tz = "Europe/Berlin".parse().unwrap();
    group.bench_function(
        "most_recent of 30 10,11,12 * * 1-5 in Berlin after 3 years down",
        |b| {
            b.iter(|| {
                black_box(irregular.most_recent(
                    black_box(three_years_ago),
                    black_box(now),
                    berlin,
                    DstPolicy::RunOnce,
                ))
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench, bench_bounds);
criterion_main!(benches);
