//! Real-world and hand-written manifests survive loading and round trips unchanged.
//!
//! Every `.yaml` file of the Kubernetes documentation corpus (`shared/corpus/k8s-website`,
//! described by its README) is loaded, written back as JSON and as YAML, and loaded again:
//! the typed objects, unknown fields included, must be equal. The corpus must be present;
//! a missing or empty folder fails the tests rather than passing silently.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use batch_core::loader::{self, Document};
use batch_core::model::{
    CompletionMode, ConditionStatus, ContainerRestartPolicy, Job, JobConditionType, Manifest,
    PodFailurePolicyAction, PullPolicy, Quantity, RestartPolicy,
};
use chrono::{TimeZone, Utc};
use serde::Deserialize;
use serde_json::json;

/// The corpus folder, relative to this crate (`batch-core/`).
const CORPUS: &str = "../../shared/corpus/k8s-website";

/// The file of the corpus that is malformed as published (a TAB used as indentation).
const TAB_FILE: &str = "job-pod-failure-policy-ignore.yaml";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS)
}

/// Every `.yaml` file of the corpus, sorted. Panics when the folder is missing or empty.
fn corpus_files() -> Vec<PathBuf> {
    let dir = corpus_dir();
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "the corpus folder {} cannot be read ({e}); the corpus tests need it",
            dir.display()
        )
    });
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "the corpus folder {} holds no .yaml file",
        dir.display()
    );
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

fn corpus_file(name: &str) -> PathBuf {
    let path = corpus_dir().join(name);
    assert!(path.is_file(), "corpus file {} is missing", path.display());
    path
}

/// Loads a corpus file (as bytes, as a tool reading the file would), which must succeed.
fn load_file(path: &Path) -> Vec<Document> {
    let bytes = std::fs::read(path).unwrap();
    loader::load_bytes(&bytes, &file_name(path))
        .unwrap_or_else(|e| panic!("{} does not load: {e}", path.display()))
}

/// The only object of a corpus file.
fn corpus_object(name: &str) -> Manifest {
    let docs = load_file(&corpus_file(name));
    assert_eq!(docs.len(), 1, "{name}: one document expected");
    docs[0].object.clone().unwrap()
}

/// Loads a source that must hold exactly one Job or CronJob.
fn load_one(src: &str, origin: &str) -> Manifest {
    let docs = loader::load_str(src, origin)
        .unwrap_or_else(|e| panic!("{origin} does not load: {e}\n--- source ---\n{src}"));
    assert_eq!(docs.len(), 1, "{origin}: one document expected\n{src}");
    docs.into_iter().next().unwrap().object.unwrap()
}

/// Writes an object as JSON (compact and pretty) and as YAML, loads each again, and checks
/// that the result equals the object. Returns the three texts.
fn assert_round_trips(object: &Manifest, origin: &str) -> [String; 3] {
    let json = serde_json::to_string(object).unwrap();
    let pretty = serde_json::to_string_pretty(object).unwrap();
    let yaml = serde_norway::to_string(object).unwrap();
    for (form, text) in [("JSON", &json), ("pretty JSON", &pretty), ("YAML", &yaml)] {
        let again = load_one(text, &format!("{origin} as {form}"));
        assert_eq!(
            &again, object,
            "{origin}: the {form} round trip changed the object\n--- {form} ---\n{text}"
        );
    }
    // The typed readers straight from JSON agree with the loader.
    let typed_again = match object {
        Manifest::Job(_) => Manifest::Job(Box::new(serde_json::from_str(&json).unwrap())),
        Manifest::CronJob(_) => Manifest::CronJob(Box::new(serde_json::from_str(&json).unwrap())),
        other => panic!("unexpected kind {}", other.kind()),
    };
    assert_eq!(&typed_again, object, "{origin}: typed JSON round trip");
    [json, pretty, yaml]
}

/// The documents of a YAML source as plain JSON values (non-empty documents only).
fn plain_values(src: &str) -> Vec<serde_json::Value> {
    serde_norway::Deserializer::from_str(src)
        .map(|de| serde_json::Value::deserialize(de).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

// ---------------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------------

#[test]
fn the_corpus_is_present_and_complete() {
    let names: Vec<String> = corpus_files().iter().map(|p| file_name(p)).collect();
    // The files the corpus README lists; all of them are used below.
    for expected in [
        "cronjob.yaml",
        "indexed-job-vol.yaml",
        "indexed-job.yaml",
        "job-backoff-limit-per-index-example.yaml",
        "job-backoff-limit-per-index-failindex.yaml",
        "job-pod-failure-policy-config-issue.yaml",
        "job-pod-failure-policy-example.yaml",
        "job-pod-failure-policy-failjob.yaml",
        TAB_FILE,
        "job-sidecar-legacy.yaml",
        "job-sidecar.yaml",
        "job-success-policy-example.yaml",
        "job-success-policy.yaml",
        "job-tmpl.yaml",
        "job.yaml",
        "redis-job.yaml",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} is missing from the corpus ({names:?})"
        );
    }
}

#[test]
fn every_corpus_file_loads_and_round_trips_through_json_and_yaml() {
    let mut objects = 0;
    for path in corpus_files() {
        let name = file_name(&path);
        let bytes = std::fs::read(&path).unwrap();
        let result = loader::load_bytes(&bytes, &name);
        if name == TAB_FILE {
            assert!(
                result.is_err(),
                "{name} has a TAB indentation and must not load"
            );
            continue;
        }
        let docs = result.unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert!(!docs.is_empty(), "{name}: no document");
        for doc in &docs {
            let object = doc
                .object
                .as_ref()
                .unwrap_or_else(|| panic!("{name}: document {} is no Job/CronJob", doc.index));
            assert_eq!(doc.kind, object.kind());
            assert_eq!(doc.name.as_ref(), object.metadata().name.as_ref());
            assert_round_trips(object, &name);
            objects += 1;
        }

        // The whole file, written back as one multi-document YAML source, loads the same.
        let rewritten: Vec<String> = docs
            .iter()
            .map(|d| serde_norway::to_string(d.object.as_ref().unwrap()).unwrap())
            .collect();
        let again = loader::load_str(&rewritten.join("---\n"), &name).unwrap();
        assert_eq!(again.len(), docs.len(), "{name}");
        for (a, b) in again.iter().zip(&docs) {
            assert_eq!(a.object, b.object, "{name}");
            assert_eq!(
                (&a.api_version, &a.kind, &a.name),
                (&b.api_version, &b.kind, &b.name)
            );
            assert_eq!(a.problems, b.problems, "{name}");
        }
    }
    assert!(
        objects >= 15,
        "only {objects} objects loaded from the corpus"
    );
}

/// Lossless in the strictest sense: writing a loaded corpus object gives back exactly the
/// fields and values of the file (nothing dropped, nothing added, no value changed).
#[test]
fn writing_a_corpus_object_gives_back_exactly_the_source_fields() {
    for path in corpus_files() {
        let name = file_name(&path);
        if name == TAB_FILE {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let plain = plain_values(&src);
        let docs = load_file(&path);
        assert_eq!(plain.len(), docs.len(), "{name}");
        for (source, doc) in plain.iter().zip(&docs) {
            let written = serde_json::to_value(doc.object.as_ref().unwrap()).unwrap();
            assert_eq!(
                &written, source,
                "{name}: the written object differs from the source"
            );
        }
    }
}

#[test]
fn fields_of_the_corpus_survive_a_round_trip() {
    // Each check runs on the loaded object and on its JSON and YAML round trips.
    fn each_form(name: &str, check: impl Fn(&Job)) {
        let object = corpus_object(name);
        let [json, _, yaml] = assert_round_trips(&object, name);
        for m in [object, load_one(&json, name), load_one(&yaml, name)] {
            match m {
                Manifest::Job(job) => check(&job),
                other => panic!("{name}: a Job expected, found {}", other.kind()),
            }
        }
    }

    // redis-job.yaml: the pod template's own metadata.name, and no completions.
    each_form("redis-job.yaml", |job| {
        assert_eq!(job.spec.template.metadata.name.as_deref(), Some("job-wq-2"));
        assert_eq!(job.spec.completions, None);
        assert_eq!(job.spec.parallelism, Some(2));
        assert_eq!(
            job.spec.template.spec.restart_policy,
            RestartPolicy::OnFailure
        );
    });

    // indexed-job.yaml: init container, emptyDir volume, volume mounts, multi-line command.
    each_form("indexed-job.yaml", |job| {
        assert_eq!(job.spec.completion_mode, Some(CompletionMode::Indexed));
        let pod = &job.spec.template.spec;
        assert_eq!(pod.init_containers.len(), 1);
        assert_eq!(pod.init_containers[0].name, "input");
        assert!(pod.init_containers[0].command[2].contains("JOB_COMPLETION_INDEX"));
        assert_eq!(pod.volumes.len(), 1);
        assert_eq!(pod.volumes[0].name, "input");
        assert_eq!(pod.volumes[0].empty_dir, Some(Default::default()));
        assert_eq!(pod.containers[0].volume_mounts[0].mount_path, "/input");
    });

    // indexed-job-vol.yaml: a downwardAPI volume with a fieldRef.
    each_form("indexed-job-vol.yaml", |job| {
        let volume = &job.spec.template.spec.volumes[0];
        let downward = volume.downward_api.as_ref().unwrap();
        assert_eq!(downward.items[0].path, "data.txt");
        assert_eq!(
            downward.items[0].field_ref.as_ref().unwrap().field_path,
            "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        );
    });

    // job-sidecar.yaml: a native sidecar (init container with restartPolicy Always).
    each_form("job-sidecar.yaml", |job| {
        let pod = &job.spec.template.spec;
        assert_eq!(pod.init_containers[0].name, "logshipper");
        assert_eq!(
            pod.init_containers[0].restart_policy,
            Some(ContainerRestartPolicy::Always)
        );
        assert_eq!(pod.containers[0].restart_policy, None);
        assert_eq!(pod.volumes[0].empty_dir, Some(Default::default()));
    });

    // job-sidecar-legacy.yaml: two app containers sharing a volume.
    each_form("job-sidecar-legacy.yaml", |job| {
        let pod = &job.spec.template.spec;
        assert_eq!(pod.containers.len(), 2);
        assert!(pod.init_containers.is_empty());
        assert_eq!(pod.containers[1].volume_mounts[0].name, "data");
    });

    // job-pod-failure-policy-example.yaml: both rule forms, quoted "True".
    each_form("job-pod-failure-policy-example.yaml", |job| {
        let rules = &job.spec.pod_failure_policy.as_ref().unwrap().rules;
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].action, PodFailurePolicyAction::FailJob);
        assert_eq!(rules[0].on_exit_codes.as_ref().unwrap().values, vec![42]);
        assert_eq!(rules[1].action, PodFailurePolicyAction::Ignore);
        assert_eq!(rules[1].on_pod_conditions[0].type_, "DisruptionTarget");
        assert_eq!(rules[1].on_pod_conditions[0].status, ConditionStatus::True);
    });

    // job-backoff-limit-per-index-failindex.yaml: per-index limit, FailIndex.
    each_form("job-backoff-limit-per-index-failindex.yaml", |job| {
        assert_eq!(job.spec.backoff_limit_per_index, Some(1));
        assert_eq!(job.spec.backoff_limit, Some(6));
        let rule = &job.spec.pod_failure_policy.as_ref().unwrap().rules[0];
        assert_eq!(rule.action, PodFailurePolicyAction::FailIndex);
    });

    // job-success-policy.yaml: the interval string stays a string.
    each_form("job-success-policy.yaml", |job| {
        let rule = &job.spec.success_policy.as_ref().unwrap().rules[0];
        assert_eq!(rule.succeeded_indexes.as_deref(), Some("0,2-3"));
        assert_eq!(rule.succeeded_count, Some(1));
    });

    // job-success-policy-example.yaml: no metadata at all (invalid as published).
    each_form("job-success-policy-example.yaml", |job| {
        assert_eq!(job.metadata.name, None);
        assert_eq!(
            job.spec.success_policy.as_ref().unwrap().rules[0]
                .succeeded_indexes
                .as_deref(),
            Some("0-2")
        );
    });

    // job-tmpl.yaml: `$ITEM` kept verbatim, labels on the Job and on the template.
    each_form("job-tmpl.yaml", |job| {
        assert_eq!(job.name(), "process-item-$ITEM");
        assert_eq!(job.metadata.labels["jobgroup"], "jobexample");
        assert_eq!(
            job.spec.template.metadata.name.as_deref(),
            Some("jobexample")
        );
        assert_eq!(job.spec.template.metadata.labels["jobgroup"], "jobexample");
    });

    // job.yaml: backoffLimit, no defaults added while parsing.
    each_form("job.yaml", |job| {
        assert_eq!(job.spec.backoff_limit, Some(4));
        assert_eq!(job.spec.completions, None);
        assert_eq!(job.spec.template.spec.containers[0].image_pull_policy, None);
    });
}

#[test]
fn the_removed_batch_v1beta1_cron_job_loads_with_a_problem_and_round_trips() {
    let docs = load_file(&corpus_file("cronjob.yaml"));
    let doc = &docs[0];
    assert_eq!(doc.api_version, "batch/v1beta1");
    assert_eq!(doc.kind, "CronJob");
    assert_eq!(doc.problems.len(), 1);
    assert_eq!(doc.problems.0[0].path.as_str(), "apiVersion");
    assert!(doc.problems.0[0].detail.contains("batch/v1"));
    let Some(Manifest::CronJob(cron_job)) = &doc.object else {
        panic!("a CronJob expected");
    };
    assert_eq!(cron_job.api_version, "batch/v1beta1");
    assert_eq!(cron_job.spec.schedule, "* * * * *");
    let container = &cron_job.spec.job_template.spec.template.spec.containers[0];
    assert_eq!(container.image_pull_policy, Some(PullPolicy::IfNotPresent));
    let [json, _, _] = assert_round_trips(doc.object.as_ref().unwrap(), "cronjob.yaml");
    // The problem is reported again after the round trip: the apiVersion is kept as written.
    let again = loader::load_str(&json, "cronjob.json").unwrap();
    assert_eq!(again[0].problems, doc.problems);
}

#[test]
fn the_tab_indented_corpus_file_fails_with_line_and_column() {
    let path = corpus_file(TAB_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let err = loader::load_bytes(&bytes, TAB_FILE).unwrap_err();
    assert!(err.line.is_some(), "no line in {err:?}");
    assert!(err.column.is_some(), "no column in {err:?}");
    // The TAB is on the last line of the file.
    let tab_line = std::str::from_utf8(&bytes)
        .unwrap()
        .lines()
        .position(|l| l.starts_with('\t'))
        .unwrap()
        + 1;
    let line = err.line.unwrap();
    assert!(
        (tab_line - 1..=tab_line).contains(&line),
        "the error is at line {line}, the TAB at line {tab_line}: {err}"
    );
    let shown = err.to_string();
    assert!(shown.contains(TAB_FILE), "{shown}");
    assert!(shown.contains(&format!("line {line}")), "{shown}");
    assert!(shown.to_lowercase().contains("tab"), "{shown}");

    // Same through load_str, with a path as the origin.
    let text = String::from_utf8(bytes).unwrap();
    let origin = path.display().to_string();
    let err2 = loader::load_str(&text, &origin).unwrap_err();
    assert_eq!((err2.line, err2.column), (err.line, err.column));
    assert!(err2.to_string().starts_with(&origin));
}

// ---------------------------------------------------------------------------------------
// Hand-written manifests with unusual content
// ---------------------------------------------------------------------------------------

#[test]
fn several_documents_with_empty_ones_comments_flow_style_and_json() {
    let src = r#"
# A leading comment, then an explicit document start.
---
apiVersion: batch/v1   # trailing comment
kind: Job
metadata:
  name: first   # the name
  # a comment line inside a mapping
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - {name: c, image: "busybox:1.36", command: [sh, -c, 'echo "hi"; exit 0']}
---
---
# only a comment in this document
---
...
---
{"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "second"},
 "spec": {"schedule": "*/5 * * * *", "timeZone": "Europe/Berlin",
  "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure",
   "containers": [{"name": "c", "image": "busybox"}]}}}}}}
---
{apiVersion: batch/v1, kind: Job, metadata: {name: third, labels: {a: "1", b: 'two'}},
 spec: {completions: 3, parallelism: 2, completionMode: Indexed,
        template: {spec: {restartPolicy: Never, containers: [{name: c, image: x}]}}}}
--- |
  not a mapping? no: a literal block scalar document is a string
"#;
    // The last document is a string: the whole source is refused, naming document 4.
    let err = loader::load_str(src, "multi.yaml").unwrap_err();
    assert_eq!(err.document, Some(3), "{err}");
    assert!(err.to_string().starts_with("multi.yaml"), "{err}");

    let src = src.rsplit_once("--- |").unwrap().0;
    let docs = loader::load_str(src, "multi.yaml").unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(
        docs.iter().map(|d| d.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(
        docs.iter().map(|d| d.kind.as_str()).collect::<Vec<_>>(),
        vec!["Job", "CronJob", "Job"]
    );
    assert_eq!(
        docs.iter().map(|d| d.name.as_deref()).collect::<Vec<_>>(),
        vec![Some("first"), Some("second"), Some("third")]
    );
    for doc in &docs {
        assert!(doc.problems.is_empty(), "{:?}", doc.problems);
        assert_round_trips(doc.object.as_ref().unwrap(), "multi.yaml");
    }
    let Some(Manifest::Job(first)) = &docs[0].object else {
        panic!()
    };
    assert_eq!(
        first.spec.template.spec.containers[0].command,
        vec!["sh", "-c", "echo \"hi\"; exit 0"]
    );
    let Some(Manifest::CronJob(second)) = &docs[1].object else {
        panic!()
    };
    assert_eq!(second.spec.time_zone.as_deref(), Some("Europe/Berlin"));
    let Some(Manifest::Job(third)) = &docs[2].object else {
        panic!()
    };
    assert_eq!(third.metadata.labels["a"], "1");
    assert_eq!(third.spec.completions, Some(3));
}

#[test]
fn a_source_of_only_empty_documents_and_comments_loads_nothing() {
    for src in [
        "",
        "\n",
        "# nothing\n",
        "---\n---\n",
        "---\n# c\n...\n---\n",
        "~\n",
        "null",
    ] {
        let docs = loader::load_str(src, "empty.yaml").unwrap();
        assert!(docs.is_empty(), "{src:?} gave {docs:?}");
    }
}

#[test]
fn null_fields_read_as_absent_and_null_unknown_fields_are_kept() {
    let with_nulls = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: nulls
  labels: null
  annotations: ~
  ownerReferences:
  finalizers: null
  somethingUnknown: null
spec:
  completions: null
  parallelism: ~
  podFailurePolicy: null
  successPolicy: null
  selector: null
  template:
    metadata: null
    spec:
      restartPolicy: null
      initContainers: null
      volumes: null
      containers:
      - name: c
        image: busybox
        command: null
        env: null
        resources: null
        ports: null
status: null
"#;
    let without = r#"
apiVersion: batch/v1
kind: Job
metadata: {name: nulls, somethingUnknown: null}
spec:
  template:
    spec:
      containers:
      - {name: c, image: busybox, ports: null}
"#;
    let a = load_one(with_nulls, "nulls.yaml");
    let b = load_one(without, "absent.yaml");
    assert_eq!(a, b);
    let Manifest::Job(job) = &a else { panic!() };
    assert_eq!(job.spec.completions, None);
    assert_eq!(job.metadata.extra["somethingUnknown"], json!(null));
    assert_eq!(
        job.spec.template.spec.containers[0].extra["ports"],
        json!(null)
    );
    let [json, _, yaml] = assert_round_trips(&a, "nulls.yaml");
    assert!(json.contains(r#""somethingUnknown":null"#), "{json}");
    assert!(yaml.contains("somethingUnknown: null"), "{yaml}");
    assert!(!json.contains("completions"), "{json}");
}

/// A Job with a field batch-core does not model at every level of the object.
const UNKNOWN_EVERYWHERE: &str = r#"
apiVersion: batch/v1
kind: Job
topLevelUnknown: {nested: [1, 2.5, "three", true, null, {deep: {deeper: [[]]}}]}
metadata:
  name: unknowns
  resourceVersion: "12345"
  generation: 3
  managedFields:
  - manager: kubectl
    operation: Update
    fieldsV1: {"f:spec": {"f:completions": {}}}
  ownerReferences:
  - {apiVersion: v1, kind: Thing, name: owner, uid: u-1, controller: true, ownerUnknown: 1}
spec:
  completions: 2
  specUnknown: [a, b]
  selector:
    matchLabels: {a: b}
    matchExpressions:
    - {key: k, operator: In, values: [v], exprUnknown: x}
    selectorUnknown: {}
  podFailurePolicy:
    policyUnknown: 1
    rules:
    - action: FailJob
      ruleUnknown: yes
      onExitCodes: {operator: In, values: [1, 2], exitUnknown: -1}
    - action: Ignore
      onPodConditions: [{type: DisruptionTarget, status: "True", patternUnknown: 0.25}]
  successPolicy:
    rules: [{succeededCount: 1, successRuleUnknown: "z"}]
    successUnknown: []
  template:
    templateUnknown: {a: 1}
    metadata:
      labels: {app: x}
      templateMetaUnknown: "m"
    spec:
      restartPolicy: Never
      nodeSelector: {disktype: ssd}
      tolerations: [{key: k, operator: Exists, effect: NoSchedule}]
      affinity: {nodeAffinity: {requiredDuringSchedulingIgnoredDuringExecution: {nodeSelectorTerms: []}}}
      securityContext: {runAsUser: 1000, fsGroup: 2000}
      serviceAccountName: runner
      volumes:
      - name: cfg
        configMap: {name: settings, items: [{key: a, path: a.txt}]}
      - name: scratch
        emptyDir: {medium: Memory, sizeLimit: 64Mi, emptyDirUnknown: 1}
      - name: host
        hostPath: {path: /tmp, type: Directory, hostPathUnknown: true}
      containers:
      - name: main
        image: busybox:1.36
        ports:
        - {containerPort: 8080, protocol: TCP, name: http}
        securityContext: {allowPrivilegeEscalation: false}
        livenessProbe: {exec: {command: [true]}, periodSeconds: 10}
        env:
        - {name: A, value: "1", envUnknown: 2}
        - name: B
          valueFrom:
            fieldRef: {fieldPath: metadata.name, fieldRefUnknown: 3}
            sourceUnknown: 4
        - name: C
          valueFrom: {secretKeyRef: {name: s, key: k}}
        resources:
          limits: {cpu: 2, memory: 1Gi, nvidia.com/gpu: 1}
          requests: {cpu: 0.5, memory: "512Mi"}
          claims: [{name: gpu}]
        volumeMounts:
        - {name: scratch, mountPath: /scratch, mountPropagation: None}
      initContainers:
      - name: sidecar
        image: busybox
        restartPolicy: Always
        startupProbe: {exec: {command: [true]}}
status:
  statusUnknown: {x: 1}
  observedGeneration: 7
  active: 1
  uncountedTerminatedPods: {succeeded: [a], failed: [], uncountedUnknown: 1}
  conditions:
  - type: Suspended
    status: "False"
    conditionUnknown: [1]
"#;

#[test]
fn unknown_fields_at_every_level_are_kept_and_round_trip() {
    let object = load_one(UNKNOWN_EVERYWHERE, "unknowns.yaml");
    let [json, _, yaml] = assert_round_trips(&object, "unknowns.yaml");
    for form in [object, load_one(&json, "json"), load_one(&yaml, "yaml")] {
        let Manifest::Job(job) = form else { panic!() };
        assert_eq!(
            job.extra["topLevelUnknown"],
            json!({"nested": [1, 2.5, "three", true, null, {"deep": {"deeper": [[]]}}]})
        );
        let meta = &job.metadata;
        assert_eq!(meta.extra["resourceVersion"], json!("12345"));
        assert_eq!(meta.extra["generation"], json!(3));
        assert_eq!(meta.extra["managedFields"][0]["manager"], json!("kubectl"));
        assert_eq!(meta.owner_references[0].extra["ownerUnknown"], json!(1));
        let spec = &job.spec;
        assert_eq!(spec.extra["specUnknown"], json!(["a", "b"]));
        let selector = spec.selector.as_ref().unwrap();
        assert_eq!(selector.extra["selectorUnknown"], json!({}));
        assert_eq!(
            selector.match_expressions[0].extra["exprUnknown"],
            json!("x")
        );
        let pfp = spec.pod_failure_policy.as_ref().unwrap();
        assert_eq!(pfp.extra["policyUnknown"], json!(1));
        // YAML 1.2: `yes` is a string, not a boolean.
        assert_eq!(pfp.rules[0].extra["ruleUnknown"], json!("yes"));
        assert_eq!(
            pfp.rules[0].on_exit_codes.as_ref().unwrap().extra["exitUnknown"],
            json!(-1)
        );
        assert_eq!(
            pfp.rules[1].on_pod_conditions[0].extra["patternUnknown"],
            json!(0.25)
        );
        let sp = spec.success_policy.as_ref().unwrap();
        assert_eq!(sp.extra["successUnknown"], json!([]));
        assert_eq!(sp.rules[0].extra["successRuleUnknown"], json!("z"));
        let template = &spec.template;
        assert_eq!(template.extra["templateUnknown"], json!({"a": 1}));
        assert_eq!(template.metadata.extra["templateMetaUnknown"], json!("m"));
        let pod = &template.spec;
        assert_eq!(pod.extra["nodeSelector"], json!({"disktype": "ssd"}));
        assert_eq!(pod.extra["tolerations"][0]["operator"], json!("Exists"));
        assert!(pod.extra.contains_key("affinity"));
        assert_eq!(pod.extra["securityContext"]["fsGroup"], json!(2000));
        assert_eq!(pod.extra["serviceAccountName"], json!("runner"));
        assert_eq!(pod.volumes[0].extra["configMap"]["name"], json!("settings"));
        let empty_dir = pod.volumes[1].empty_dir.as_ref().unwrap();
        assert_eq!(empty_dir.medium.as_deref(), Some("Memory"));
        assert_eq!(empty_dir.size_limit, Some(Quantity("64Mi".into())));
        assert_eq!(empty_dir.extra["emptyDirUnknown"], json!(1));
        assert_eq!(
            pod.volumes[2].host_path.as_ref().unwrap().extra["hostPathUnknown"],
            json!(true)
        );
        let main = &pod.containers[0];
        assert_eq!(
            main.extra["ports"],
            json!([{"containerPort": 8080, "protocol": "TCP", "name": "http"}])
        );
        assert_eq!(
            main.extra["securityContext"],
            json!({"allowPrivilegeEscalation": false})
        );
        assert!(main.extra.contains_key("livenessProbe"));
        assert_eq!(main.env[0].extra["envUnknown"], json!(2));
        let source = main.env[1].value_from.as_ref().unwrap();
        assert_eq!(source.extra["sourceUnknown"], json!(4));
        assert_eq!(
            source.field_ref.as_ref().unwrap().extra["fieldRefUnknown"],
            json!(3)
        );
        assert_eq!(
            main.env[2].value_from.as_ref().unwrap().extra["secretKeyRef"],
            json!({"name": "s", "key": "k"})
        );
        let resources = main.resources.as_ref().unwrap();
        // Bare numbers are kept as the quantity's text.
        assert_eq!(resources.limits["cpu"], Quantity("2".into()));
        assert_eq!(resources.limits["nvidia.com/gpu"], Quantity("1".into()));
        assert_eq!(resources.requests["cpu"], Quantity("0.5".into()));
        assert_eq!(resources.extra["claims"], json!([{"name": "gpu"}]));
        assert_eq!(
            main.volume_mounts[0].extra["mountPropagation"],
            json!("None")
        );
        let sidecar = &pod.init_containers[0];
        assert_eq!(sidecar.restart_policy, Some(ContainerRestartPolicy::Always));
        assert!(sidecar.extra.contains_key("startupProbe"));
        let status = &job.status;
        assert_eq!(status.extra["statusUnknown"], json!({"x": 1}));
        assert_eq!(status.extra["observedGeneration"], json!(7));
        assert_eq!(status.active, 1);
        assert_eq!(
            status.uncounted_terminated_pods.as_ref().unwrap().extra["uncountedUnknown"],
            json!(1)
        );
        assert_eq!(status.conditions[0].extra["conditionUnknown"], json!([1]));
        assert_eq!(status.conditions[0].status, ConditionStatus::False);
    }
}

#[test]
fn unknown_fields_of_a_cron_job_at_every_level_round_trip() {
    let src = r#"
apiVersion: batch/v1
kind: CronJob
cronUnknown: 1
metadata: {name: nightly, namespace: ops, metaUnknown: [x]}
spec:
  schedule: "0 3 * * *"
  timeZone: Etc/UTC
  concurrencyPolicy: Forbid
  startingDeadlineSeconds: 200
  cronSpecUnknown: {a: {b: c}}
  jobTemplate:
    jobTemplateUnknown: true
    metadata: {labels: {team: ops}, jtMetaUnknown: 1}
    spec:
      backoffLimit: 2
      jobSpecUnknown: x
      template:
        spec:
          restartPolicy: OnFailure
          containers: [{name: c, image: busybox, tty: true}]
status:
  cronStatusUnknown: 5
  lastScheduleTime: "2024-06-01T03:00:00+02:00"
  lastSuccessfulTime: 2024-06-01T01:00:05Z
  active:
  - {apiVersion: batch/v1, kind: Job, name: nightly-1, namespace: ops, uid: u, refUnknown: 1}
"#;
    let object = load_one(src, "cron.yaml");
    let [json, _, yaml] = assert_round_trips(&object, "cron.yaml");
    for form in [object, load_one(&json, "json"), load_one(&yaml, "yaml")] {
        let Manifest::CronJob(cj) = form else {
            panic!()
        };
        assert_eq!(cj.extra["cronUnknown"], json!(1));
        assert_eq!(cj.metadata.extra["metaUnknown"], json!(["x"]));
        assert_eq!(cj.spec.extra["cronSpecUnknown"], json!({"a": {"b": "c"}}));
        assert_eq!(
            cj.spec.job_template.extra["jobTemplateUnknown"],
            json!(true)
        );
        assert_eq!(
            cj.spec.job_template.metadata.extra["jtMetaUnknown"],
            json!(1)
        );
        assert_eq!(
            cj.spec.job_template.spec.extra["jobSpecUnknown"],
            json!("x")
        );
        assert_eq!(
            cj.spec.job_template.spec.template.spec.containers[0].extra["tty"],
            json!(true)
        );
        assert_eq!(cj.status.extra["cronStatusUnknown"], json!(5));
        assert_eq!(cj.status.active[0].extra["refUnknown"], json!(1));
        // Both timestamps are in UTC, whatever offset the source used.
        assert_eq!(
            cj.status.last_schedule_time,
            Some(Utc.with_ymd_and_hms(2024, 6, 1, 1, 0, 0).unwrap())
        );
        assert_eq!(
            cj.status.last_successful_time,
            Some(Utc.with_ymd_and_hms(2024, 6, 1, 1, 0, 5).unwrap())
        );
    }
}

#[test]
fn status_conditions_and_timestamps_with_offsets_are_normalised_to_utc() {
    let src = r#"
apiVersion: batch/v1
kind: Job
metadata:
  name: finished
  creationTimestamp: "2024-03-10T12:00:00+02:00"
spec:
  completions: 3
  template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}
status:
  startTime: "2024-03-10T10:00:01.5-00:30"
  completionTime: 2024-03-10T23:59:59.123456789-05:00
  succeeded: 3
  failed: 1
  ready: 0
  terminating: 0
  completedIndexes: ""
  conditions:
  - type: SuccessCriteriaMet
    status: "True"
    lastProbeTime: "2024-03-10T12:00:00Z"
    lastTransitionTime: "2024-03-10T12:00:00+00:00"
    reason: CompletionsReached
    message: Reached expected number of succeeded pods
  - type: Complete
    status: "True"
    lastTransitionTime: "2024-03-11T00:00:00+14:00"
    reason: CompletionsReached
    message: "multi-line\nmessage with ünïcødé and a \"quote\""
"#;
    let object = load_one(src, "status.yaml");
    let [json, _, yaml] = assert_round_trips(&object, "status.yaml");
    let Manifest::Job(job) = &object else {
        panic!()
    };
    let at = |y, mo, d, h, mi, s, nanos: u32| {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
            + chrono::Duration::nanoseconds(nanos.into())
    };
    assert_eq!(
        job.metadata.creation_timestamp,
        Some(at(2024, 3, 10, 10, 0, 0, 0))
    );
    assert_eq!(
        job.status.start_time,
        Some(at(2024, 3, 10, 10, 30, 1, 500_000_000))
    );
    assert_eq!(
        job.status.completion_time,
        Some(at(2024, 3, 11, 4, 59, 59, 123_456_789))
    );
    assert_eq!(job.status.succeeded, 3);
    assert_eq!(job.status.ready, Some(0));
    assert_eq!(job.status.conditions.len(), 2);
    assert_eq!(
        job.status.conditions[0].type_,
        JobConditionType::SuccessCriteriaMet
    );
    assert_eq!(
        job.status.conditions[0].last_transition_time,
        job.status.conditions[0].last_probe_time
    );
    assert_eq!(
        job.status.conditions[1].last_transition_time,
        Some(at(2024, 3, 10, 10, 0, 0, 0))
    );
    assert!(
        job.status.conditions[1]
            .message
            .contains("ünïcødé and a \"quote\"")
    );
    assert!(job.status.is_finished());
    // Written back in UTC, with a `Z`, and no offsets left.
    for text in [&json, &yaml] {
        assert!(text.contains("2024-03-10T10:00:00Z"), "{text}");
        assert!(text.contains("2024-03-11T04:59:59.123456789Z"), "{text}");
        assert!(
            !text.contains("+02:00") && !text.contains("-05:00"),
            "{text}"
        );
    }
}

#[test]
fn unusual_scalars_round_trip() {
    let src = r##"
apiVersion: batch/v1
kind: Job
metadata:
  name: "scalars"
  labels: {"quoted key": 'single ''quoted''', empty: "", num-like: "0012", bool-like: "true"}
  annotations:
    folded: >
      folded text
      on two lines
    literal: |
      line 1
        line 2 indented
    unicode: "名前 \u00e9 \U0001F600"
spec:
  activeDeadlineSeconds: 9223372036854775807
  completions: 2147483647
  parallelism: 0
  ttlSecondsAfterFinished: -1
  template:
    spec:
      terminationGracePeriodSeconds: -9223372036854775808
      containers:
      - name: c
        image: busybox
        args: ["", " ", "--flag=1", "null", "~", "0x1F", "1e3", "- dash", "# hash"]
  bigUnknown: 18446744073709551615
  negativeUnknown: -9223372036854775808
  floatUnknown: [1.0e+300, -0.0, 0.1, 1e-7, 123456789.125]
  specials: [0o17, 0x1F, +12, .5, 1_000]
  hugeFloatUnknown: 1000000000000000000000000000000000000000
  notAFloat: 1e400
"##;
    let object = load_one(src, "scalars.yaml");
    let [json, _, yaml] = assert_round_trips(&object, "scalars.yaml");
    let Manifest::Job(job) = &object else {
        panic!()
    };
    assert_eq!(job.spec.active_deadline_seconds, Some(i64::MAX));
    assert_eq!(job.spec.completions, Some(i32::MAX));
    assert_eq!(job.spec.parallelism, Some(0));
    assert_eq!(
        job.spec.template.spec.termination_grace_period_seconds,
        Some(i64::MIN)
    );
    assert_eq!(job.metadata.labels["quoted key"], "single 'quoted'");
    assert_eq!(job.metadata.labels["num-like"], "0012");
    assert_eq!(
        job.metadata.annotations["folded"],
        "folded text on two lines\n"
    );
    assert_eq!(
        job.metadata.annotations["literal"],
        "line 1\n  line 2 indented\n"
    );
    assert_eq!(job.metadata.annotations["unicode"], "名前 é 😀");
    assert_eq!(
        job.spec.template.spec.containers[0].args[3..5],
        ["null".to_owned(), "~".to_owned()]
    );
    assert_eq!(job.spec.extra["bigUnknown"], json!(u64::MAX));
    assert_eq!(job.spec.extra["negativeUnknown"], json!(i64::MIN));
    // Beyond 128 bits an integer reads as a float; `1e400` (out of range) as a string.
    assert_eq!(job.spec.extra["hugeFloatUnknown"], json!(1e39));
    assert_eq!(job.spec.extra["notAFloat"], json!("1e400"));
    // YAML 1.1 octal/hex and a sign are numbers; `1_000` is a string in YAML 1.2.
    assert_eq!(
        job.spec.extra["specials"],
        json!([15, 31, 12, 0.5, "1_000"])
    );
    // The text of the JSON and YAML forms keeps strings that look like other scalars quoted.
    let again = load_one(&yaml, "yaml");
    assert_eq!(again, object);
    assert!(json.contains(r#""0x1F""#));
}

/// A value of the wrong type: the source, the line of the offending field, the line where
/// the mapping holding it starts, and the field's path.
const WRONG_TYPES: &[(&str, usize, usize, &str)] = &[
    (
        "kind: Job\nspec:\n  completions: five\n",
        3,
        3,
        "spec.completions",
    ),
    (
        "kind: Job\nspec:\n  parallelism: 1\n  completions: five\n",
        4,
        3,
        "spec.completions",
    ),
    (
        "kind: Job\nspec:\n  completions: 2147483648\n",
        3,
        3,
        "spec.completions",
    ),
    ("kind: Job\nspec:\n  suspend: 'yes'\n", 3, 3, "spec.suspend"),
    (
        "kind: Job\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        command: sh\n",
        7,
        6,
        "spec.template.spec.containers[0].command",
    ),
    (
        "kind: Job\nstatus:\n  startTime: yesterday\n",
        3,
        3,
        "status.startTime",
    ),
    (
        "{kind: CronJob, spec: {schedule: [1]}}",
        1,
        1,
        "spec.schedule",
    ),
];

#[test]
fn values_of_the_wrong_type_fail_with_a_position_and_a_field_path() {
    for &(src, line, mapping_line, path) in WRONG_TYPES {
        let err = loader::load_str(src, "typed.yaml").unwrap_err();
        let (Some(got_line), Some(_)) = (err.line, err.column) else {
            panic!("{src:?}: no position in {err:?}");
        };
        // The line of the value itself (not of the mapping holding it).
        let _ = mapping_line;
        assert_eq!(got_line, line, "{src:?}: {err}");
        assert_eq!(err.path.as_deref(), Some(path), "{src}: {err}");
        assert_eq!(err.document, Some(0));
        assert!(err.to_string().starts_with("typed.yaml: line "), "{err}");
    }
}

/// A wrong-typed value is reported at its own line, even after other keys of its mapping
/// (this was once the mapping's first line).
#[test]
fn wrong_typed_values_are_reported_at_their_own_line() {
    for &(src, line, _, path) in WRONG_TYPES {
        let err = loader::load_str(src, "typed.yaml").unwrap_err();
        assert_eq!(err.line, Some(line), "{src:?}: {err}");
        assert_eq!(err.path.as_deref(), Some(path), "{src:?}: {err}");
    }
}

#[test]
fn an_integer_beyond_64_bits_is_refused_with_a_position_even_in_an_unknown_field() {
    // serde_norway reads it as a 128-bit integer, which no JSON value can hold.
    for src in [
        "kind: Job\nmetadata: {name: a}\nx: 123456789012345678901234567890\n",
        "kind: Job\nmetadata: {name: a}\nx: -123456789012345678901234567890\n",
    ] {
        let err = loader::load_str(src, "big.yaml").unwrap_err();
        assert_eq!((err.line, err.column), (Some(3), Some(4)), "{err}");
        assert!(
            err.message.contains("123456789012345678901234567890"),
            "{err}"
        );
    }
}

/// A float in an unknown field, written by batch-core and read back with
/// `serde_json::from_str` (not the loader), comes back exactly: the workspace enables
/// serde_json's `float_roundtrip` feature for this.
#[test]
fn serde_json_reads_a_written_float_back_exactly() {
    let object = load_one(
        "kind: Job\nx: 1234567890123456789012345678901234567890\n",
        "float.yaml",
    );
    let json = serde_json::to_string(&object).unwrap();
    assert_eq!(load_one(&json, "float.json"), object);
    let Manifest::Job(job) = &object else {
        panic!()
    };
    let typed: Job = serde_json::from_str(&json).unwrap();
    assert_eq!(typed.extra["x"], job.extra["x"], "{json}");
}

#[test]
fn defaulted_corpus_objects_round_trip_too() {
    // The defaulted form of every corpus Job round-trips too (what a tool would store).
    for path in corpus_files() {
        let name = file_name(&path);
        if name == TAB_FILE {
            continue;
        }
        for doc in load_file(&path) {
            match doc.object.unwrap() {
                Manifest::Job(mut job) => {
                    batch_core::defaults::prepare_job_for_create(&mut job, "uid-1");
                    assert_eq!(
                        job.spec.template.spec.termination_grace_period_seconds,
                        Some(30)
                    );
                    assert_round_trips(&Manifest::Job(job), &name);
                }
                Manifest::CronJob(mut cron_job) => {
                    batch_core::defaults::default_cron_job(&mut cron_job);
                    assert_round_trips(&Manifest::CronJob(cron_job), &name);
                }
                other => panic!("unexpected {}", other.kind()),
            }
        }
    }
}
