//! Loading and validating 10,000 Jobs.
//!
//! One multi-document YAML source of 10,000 varied Jobs (Indexed and NonIndexed, with and
//! without a pod failure policy or a success policy, one to three containers with env and
//! volume mounts, several kinds of volumes) is built in memory, then:
//!
//! - `load_str`: the whole source through [`batch_core::loader::load_str`];
//! - `defaults_validate`: `prepare_job_for_create` + `validate_job` over the 10,000 loaded
//!   Jobs (copying the Jobs is not measured);
//! - `end_to_end`: both, as `batch validate` does for a file.
//!
//! Run with `cargo bench -p batch-core --bench validate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fmt::Write as _;
use std::hint::black_box;
use std::time::Duration;

use batch_core::defaults::prepare_job_for_create;
use batch_core::loader;
use batch_core::model::{Job, Manifest};
use batch_core::validation::validate_job;
use criterion::{BatchSize, Criterion, Throughput, criterion_main};

/// How many Jobs the source holds.
const JOBS: usize = 10_000;

/// One Job document, varied by its number.
fn job_yaml(out: &mut String, i: usize) {
    let indexed = i.is_multiple_of(3);
    let with_failure_policy = i.is_multiple_of(4);
    let per_index = indexed && i.is_multiple_of(9);
    let containers = 1 + i % 3;
    let completions = 4 + i % 50;
    let parallelism = 1 + i % 7;
    let restart_policy = if with_failure_policy || per_index || i.is_multiple_of(2) {
        "Never"
    } else {
        "OnFailure"
    };
    // Every 100th Job is invalid in a few ways, so the error paths are measured too.
    let name = if i % 100 == 99 {
        format!("Job_{i}")
    } else {
        format!("job-{i:05}")
    };
    writeln!(out, "---").unwrap();
    writeln!(out, "apiVersion: batch/v1").unwrap();
    writeln!(out, "kind: Job").unwrap();
    writeln!(out, "metadata:").unwrap();
    writeln!(out, "  name: {name}").unwrap();
    writeln!(out, "  namespace: team-{}", i % 10).unwrap();
    writeln!(out, "  labels: {{app: bench, shard: \"{}\"}}", i % 16).unwrap();
    writeln!(out, "  annotations:").unwrap();
    writeln!(out, "    example.com/owner: \"owner-{}\"", i % 5).unwrap();
    writeln!(out, "spec:").unwrap();
    writeln!(out, "  completions: {completions}").unwrap();
    writeln!(out, "  parallelism: {parallelism}").unwrap();
    if i.is_multiple_of(5) {
        writeln!(out, "  activeDeadlineSeconds: {}", 600 + i).unwrap();
        writeln!(out, "  ttlSecondsAfterFinished: 3600").unwrap();
    }
    if indexed {
        writeln!(out, "  completionMode: Indexed").unwrap();
    } else if i.is_multiple_of(2) {
        writeln!(out, "  completionMode: NonIndexed").unwrap();
    }
    if per_index {
        writeln!(out, "  backoffLimitPerIndex: 2").unwrap();
        writeln!(out, "  maxFailedIndexes: 3").unwrap();
    } else {
        writeln!(out, "  backoffLimit: {}", i % 8).unwrap();
    }
    if with_failure_policy || per_index {
        writeln!(out, "  podFailurePolicy:").unwrap();
        writeln!(out, "    rules:").unwrap();
        let action = if per_index { "FailIndex" } else { "FailJob" };
        writeln!(out, "    - action: {action}").unwrap();
        writeln!(out, "      onExitCodes:").unwrap();
        writeln!(out, "        containerName: main").unwrap();
        writeln!(out, "        operator: In").unwrap();
        writeln!(out, "        values: [1, {}, 42]", 2 + i % 30).unwrap();
        writeln!(out, "    - action: Ignore").unwrap();
        writeln!(out, "      onPodConditions:").unwrap();
        writeln!(out, "      - type: DisruptionTarget").unwrap();
        writeln!(out, "    - action: Count").unwrap();
        writeln!(
            out,
            "      onExitCodes: {{operator: NotIn, values: [0, 3]}}"
        )
        .unwrap();
    }
    if indexed && i.is_multiple_of(2) {
        writeln!(out, "  successPolicy:").unwrap();
        writeln!(out, "    rules:").unwrap();
        writeln!(out, "    - succeededIndexes: \"0,2-3\"").unwrap();
        writeln!(out, "      succeededCount: 2").unwrap();
        writeln!(out, "    - succeededCount: {}", completions / 2).unwrap();
    }
    writeln!(out, "  template:").unwrap();
    writeln!(out, "    metadata:").unwrap();
    writeln!(out, "      labels: {{app: bench, tier: worker}}").unwrap();
    writeln!(out, "    spec:").unwrap();
    writeln!(out, "      restartPolicy: {restart_policy}").unwrap();
    if i.is_multiple_of(6) {
        writeln!(out, "      initContainers:").unwrap();
        writeln!(out, "      - name: fetch").unwrap();
        writeln!(out, "        image: busybox:1.36").unwrap();
        writeln!(out, "        command: [sh, -c, \"echo fetch > /work/in\"]").unwrap();
        writeln!(
            out,
            "        volumeMounts: [{{name: work, mountPath: /work}}]"
        )
        .unwrap();
        if i.is_multiple_of(12) {
            writeln!(out, "      - name: log-shipper").unwrap();
            writeln!(out, "        image: fluent/fluent-bit:3.0").unwrap();
            writeln!(out, "        restartPolicy: Always").unwrap();
        }
    }
    writeln!(out, "      containers:").unwrap();
    for c in 0..containers {
        let cname = if c == 0 {
            "main".to_owned()
        } else {
            format!("helper-{c}")
        };
        writeln!(out, "      - name: {cname}").unwrap();
        writeln!(
            out,
            "        image: registry.example.com/team/app:v{}",
            i % 20
        )
        .unwrap();
        writeln!(out, "        command: [python3, -c]").unwrap();
        writeln!(out, "        args: [\"import sys; sys.exit({})\"]", i % 2).unwrap();
        writeln!(out, "        workingDir: /work").unwrap();
        writeln!(out, "        env:").unwrap();
        writeln!(out, "        - {{name: JOB_SHARD, value: \"{}\"}}", i % 16).unwrap();
        writeln!(out, "        - name: POD_NAME").unwrap();
        writeln!(
            out,
            "          valueFrom: {{fieldRef: {{fieldPath: metadata.name}}}}"
        )
        .unwrap();
        writeln!(out, "        - {{name: MODE, value: batch}}").unwrap();
        writeln!(out, "        resources:").unwrap();
        writeln!(out, "          requests: {{cpu: 250m, memory: 128Mi}}").unwrap();
        writeln!(out, "          limits: {{cpu: \"1\", memory: 512Mi}}").unwrap();
        writeln!(out, "        ports: [{{containerPort: {}}}]", 8000 + c).unwrap();
        writeln!(out, "        volumeMounts:").unwrap();
        writeln!(out, "        - {{name: work, mountPath: /work}}").unwrap();
        writeln!(
            out,
            "        - {{name: config, mountPath: /etc/app, readOnly: true}}"
        )
        .unwrap();
        if indexed {
            writeln!(out, "        - {{name: podinfo, mountPath: /podinfo}}").unwrap();
        }
    }
    writeln!(out, "      volumes:").unwrap();
    writeln!(out, "      - name: work").unwrap();
    writeln!(out, "        emptyDir: {{sizeLimit: 1Gi}}").unwrap();
    writeln!(out, "      - name: config").unwrap();
    writeln!(out, "        configMap: {{name: app-config}}").unwrap();
    if indexed {
        writeln!(out, "      - name: podinfo").unwrap();
        writeln!(out, "        downwardAPI:").unwrap();
        writeln!(out, "          items:").unwrap();
        writeln!(out, "          - path: index").unwrap();
        writeln!(
            out,
            "            fieldRef: {{fieldPath: \"metadata.annotations['batch.kubernetes.io/job-completion-index']\"}}"
        )
        .unwrap();
    }
}

/// The whole source.
fn source() -> String {
    let mut out = String::with_capacity(JOBS * 2_000);
    for i in 0..JOBS {
        job_yaml(&mut out, i);
    }
    out
}

fn jobs(src: &str) -> Vec<Job> {
    loader::load_str(src, "bench.yaml")
        .unwrap()
        .into_iter()
        .map(|doc| match doc.object {
            Some(Manifest::Job(job)) => *job,
            _ => panic!("only Jobs in the benchmark source"),
        })
        .collect()
}

/// Defaults and validates every Job; returns how many are valid.
fn validate_all(jobs: Vec<Job>) -> usize {
    let mut valid = 0;
    for mut job in jobs {
        prepare_job_for_create(&mut job, "00000000-0000-0000-0000-000000000001");
        if validate_job(black_box(&job)).is_ok() {
            valid += 1;
        }
    }
    valid
}

fn bench(c: &mut Criterion) {
    let src = source();
    let loaded = jobs(&src);
    assert_eq!(loaded.len(), JOBS);
    // The source is realistic: all but the deliberately broken Jobs are valid.
    let valid = validate_all(loaded.clone());
    assert_eq!(
        valid,
        JOBS - JOBS / 100,
        "unexpected number of valid Jobs; first errors: {:?}",
        loaded
            .iter()
            .take(10)
            .map(|j| {
                let mut j = j.clone();
                prepare_job_for_create(&mut j, "u");
                validate_job(&j).err().map(|e| e.to_string())
            })
            .collect::<Vec<_>>()
    );
    println!("source: {JOBS} Jobs, {} bytes, {valid} valid", src.len());

    let mut group = c.benchmark_group("10k_jobs");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(15));
    group.throughput(Throughput::Elements(JOBS as u64));
    group.bench_function("load_str", |b| {
        b.iter(|| {
            loader::load_str(black_box(&src), "bench.yaml")
                .unwrap()
                .len()
        });
    });
    group.bench_function("defaults_validate", |b| {
        b.iter_batched(|| loaded.clone(), validate_all, BatchSize::LargeInput);
    });
    group.bench_function("end_to_end", |b| {
        b.iter(|| validate_all(jobs(black_box(&src))));
    });
    group.finish();
}

/// The benchmark group (written out rather than with `criterion_group!`, whose generated
/// function has no documentation).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
