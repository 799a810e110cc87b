//! Every Job and CronJob of the Kubernetes documentation corpus (`shared/corpus/k8s-website`)
//! converts to the `k8s-openapi` types and back without losing or changing a field: no field
//! reported dropped, the API object's JSON equal to batch-core's, and the object converted
//! back equal to the one loaded. The corpus must be present: a missing or empty folder fails.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use batch_core::model::Manifest;
use batch_executor_k8s::convert;
use serde_json::Value;

const CORPUS: &str = "../../shared/corpus/k8s-website";

/// The JSON of a value without its `null`s (both sides read them as absent).
fn json<T: serde::Serialize>(value: &T) -> Value {
    fn strip(v: Value) -> Value {
        match v {
            Value::Object(map) => Value::Object(
                map.into_iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k, strip(v)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.into_iter().map(strip).collect()),
            other => other,
        }
    }
    let mut v = strip(serde_json::to_value(value).unwrap());
    // `k8s-openapi` always writes `metadata` (its type is not optional): `{}` and no
    // metadata are the same object.
    if let Value::Object(map) = &mut v
        && map
            .get("metadata")
            .is_some_and(|m| m == &Value::Object(Default::default()))
    {
        map.remove("metadata");
    }
    v
}

#[test]
fn every_corpus_job_and_cron_job_round_trips_through_the_api_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("the corpus {} cannot be read: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let (mut jobs, mut cron_jobs, mut unloadable) = (0, 0, Vec::new());
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let bytes = std::fs::read(path).unwrap();
        let Ok(docs) = batch_core::loader::load_bytes(&bytes, &name) else {
            // Malformed as published (batch-core's corpus tests check the error).
            unloadable.push(name);
            continue;
        };
        for doc in docs {
            match doc.object {
                Some(Manifest::Job(job)) => {
                    let converted =
                        convert::job_to_k8s(&job).unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(
                        converted.dropped.is_empty(),
                        "{name}: fields the API type cannot hold: {:?}",
                        converted.dropped
                    );
                    assert_eq!(json(&converted.object), json(&*job), "{name}");
                    let back = convert::job_from_k8s(&converted.object)
                        .unwrap_or_else(|e| panic!("{name}: back: {e}"));
                    assert_eq!(back, *job, "{name}: the round trip changed the Job");
                    jobs += 1;
                }
                Some(Manifest::CronJob(cron_job)) => {
                    let converted = convert::cron_job_to_k8s(&cron_job)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    assert!(
                        converted.dropped.is_empty(),
                        "{name}: fields the API type cannot hold: {:?}",
                        converted.dropped
                    );
                    // A `batch/v1beta1` CronJob (older docs) is converted to `batch/v1`.
                    let mut cron_job = *cron_job;
                    cron_job.api_version = "batch/v1".to_owned();
                    assert_eq!(json(&converted.object), json(&cron_job), "{name}");
                    let back = convert::cron_job_from_k8s(&converted.object)
                        .unwrap_or_else(|e| panic!("{name}: back: {e}"));
                    assert_eq!(back, cron_job, "{name}: the round trip changed the CronJob");
                    cron_jobs += 1;
                }
                _ => {}
            }
        }
    }
    eprintln!(
        "round-tripped {jobs} Jobs and {cron_jobs} CronJobs of {} files; not loadable: \
         {unloadable:?}",
        files.len()
    );
    assert!(jobs >= 10, "only {jobs} Jobs in the corpus");
    assert!(cron_jobs >= 1, "no CronJob in the corpus");
    assert!(unloadable.len() <= 1, "{unloadable:?}");
}

#[test]
fn a_field_the_api_type_does_not_know_is_reported_with_its_path() {
    let src = "\
apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: '* * * * *'
  futureField: true
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: OnFailure
          containers:
          - {name: a, image: busybox, resourcez: {limits: {cpu: 1}}}
";
    let docs = batch_core::loader::load_str(src, "c.yaml").unwrap();
    let Some(Manifest::CronJob(cron_job)) = &docs[0].object else {
        panic!("a CronJob")
    };
    let converted = convert::cron_job_to_k8s(cron_job).unwrap();
    assert_eq!(
        converted.dropped,
        [
            "spec.futureField",
            "spec.jobTemplate.spec.template.spec.containers[0].resourcez"
        ]
    );
}
