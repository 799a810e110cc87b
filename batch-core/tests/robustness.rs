//! Robustness properties of loading, defaulting and validation.
//!
//! - Any bytes or text given to the loader give a result or an error, never a panic.
//! - Job- and CronJob-shaped documents built from a grammar (known field names of the model
//!   and random ones, values of the right type and of every wrong one, random nesting, block
//!   and flow style, several documents) load or fail cleanly; every object that loads can be
//!   defaulted and validated without a panic, and round-trips through JSON and YAML.
//! - Defaulting is idempotent.
//! - Every input saved in `tests/fuzz_regressions/` (inputs the fuzzer once crashed on)
//!   goes through the same pipeline without a panic.
//!
//! The number of cases per property can be changed with `PROPTEST_CASES`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::LazyLock;

use batch_core::defaults::{self, prepare_job_for_create};
use batch_core::loader;
use batch_core::model::{CronJob, Job, Manifest};
use batch_core::validation::{validate_cron_job, validate_job};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// The pipeline every input goes through
// ---------------------------------------------------------------------------------------

/// Loads a source; for every Job or CronJob: defaults, validates, and checks the round trips.
fn check_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    match loader::load_bytes(bytes, "input.yaml") {
        Ok(docs) => check_documents(&docs),
        Err(err) => {
            // The error is printable and names the source.
            prop_assert!(err.to_string().starts_with("input.yaml"));
            Ok(())
        }
    }
}

fn check_source(src: &str) -> Result<(), TestCaseError> {
    match loader::load_str(src, "input.yaml") {
        Ok(docs) => check_documents(&docs),
        Err(err) => {
            prop_assert!(err.to_string().starts_with("input.yaml"));
            Ok(())
        }
    }
}

fn check_documents(docs: &[loader::Document]) -> Result<(), TestCaseError> {
    for doc in docs {
        let _ = doc.validate().to_string();
        if let Some(object) = &doc.object {
            check_object(object)?;
        }
    }
    Ok(())
}

fn check_object(object: &Manifest) -> Result<(), TestCaseError> {
    assert_round_trips(object)?;
    match object {
        Manifest::Job(job) => {
            let mut prepared = (**job).clone();
            prepare_job_for_create(&mut prepared, "uid-1");
            if let Err(errors) = validate_job(&prepared) {
                let _ = errors.to_string();
            }
            assert_round_trips(&Manifest::Job(Box::new(prepared)))?;
        }
        Manifest::CronJob(cron_job) => {
            let mut defaulted = (**cron_job).clone();
            defaults::default_cron_job(&mut defaulted);
            if let Err(errors) = validate_cron_job(&defaulted) {
                let _ = errors.to_string();
            }
            assert_round_trips(&Manifest::CronJob(Box::new(defaulted)))?;
        }
        other => prop_assert!(false, "unexpected kind {}", other.kind()),
    }
    Ok(())
}

/// Writes an object as JSON and as YAML and loads it again: it must load, and be equal.
fn assert_round_trips(object: &Manifest) -> Result<(), TestCaseError> {
    let json = serde_json::to_string(object)
        .map_err(|e| TestCaseError::fail(format!("cannot write JSON: {e}")))?;
    let yaml = serde_norway::to_string(object)
        .map_err(|e| TestCaseError::fail(format!("cannot write YAML: {e}")))?;
    for (form, text) in [("JSON", json), ("YAML", yaml)] {
        let docs = loader::load_str(&text, "written").map_err(|e| {
            TestCaseError::fail(format!("written {form} does not load: {e}\n{text}"))
        })?;
        prop_assert_eq!(docs.len(), 1, "{} written as:\n{}", form, text);
        prop_assert_eq!(
            docs[0].object.as_ref(),
            Some(object),
            "{} round trip changed the object; written as:\n{}",
            form,
            text
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The grammar of Job- and CronJob-shaped documents
// ---------------------------------------------------------------------------------------

/// Decisions read from a tape of random bytes. Zero (also what an exhausted tape gives) is
/// always the simplest choice, so proptest shrinks a failing tape to a small document.
struct Tape<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Percent chance that a value has a wrong shape or an odd value (set per document).
    mess: u32,
}

impl<'a> Tape<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Tape {
            bytes,
            pos: 0,
            mess: 0,
        }
    }

    fn byte(&mut self) -> u8 {
        let b = self.bytes.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            0
        } else {
            usize::from(self.byte()) % n
        }
    }

    /// True with about `percent` % probability (false on a zero byte).
    fn chance(&mut self, percent: u32) -> bool {
        u32::from(self.byte()) * 100 >= (100 - percent.min(100)) * 256
    }

    fn pick<'s>(&mut self, items: &[&'s str]) -> &'s str {
        items[self.below(items.len())]
    }
}

/// A generated YAML value.
#[derive(Debug, Clone)]
enum Node {
    /// A string, quoted as needed when rendered.
    Str(String),
    /// A plain YAML token written as is (numbers, booleans, nulls, odd scalars).
    Raw(String),
    /// A mapping; a key starting with `\u{0}` is written raw (a non-string key).
    Map(Vec<(String, Node)>),
    Seq(Vec<Node>),
}

/// The expected shape of a field.
#[derive(Clone, Copy)]
enum Shape {
    Int,
    Bool,
    Time,
    Quantity,
    Str(&'static [&'static str]),
    Obj(Fields),
    List(&'static Shape),
    /// A map with keys from the list and values of the shape.
    Map(&'static [&'static str], &'static Shape),
}

/// Fields of an object: JSON name, percent chance of being present, shape.
type Fields = &'static [(&'static str, u32, Shape)];

use Shape::{Bool, Int, List, Map, Obj, Quantity, Str, Time};

const NAMES: &[&str] = &[
    "pi",
    "main",
    "job-1",
    "c",
    "a",
    "",
    "UPPER",
    "with space",
    "dots.in.name",
    "-leading-dash",
    "process-item-$ITEM",
    "ünïcødé",
    "a-very-long-name-that-is-longer-than-sixty-three-characters-in-total-xx",
    "0",
];
const LABEL_KEYS: &[&str] = &[
    "app",
    "a",
    "job-name",
    "controller-uid",
    "batch.kubernetes.io/job-name",
    "batch.kubernetes.io/controller-uid",
    "batch.kubernetes.io/job-completion-index",
    "example.com/team",
    "a/b/c",
    "-bad",
    "",
];
const LABEL_VALUES: &[&str] = &["x", "", "pi", "uid-1", "bad value", "v1.2", "-x-"];
const IMAGES: &[&str] = &[
    "busybox",
    "busybox:1.36",
    "busybox:latest",
    "registry:5000/team/app",
    "registry:5000/team/app:v2",
    "app@sha256:0123abcd",
    "",
    " spaced ",
    "UPPER/Case",
];
const ARGS: &[&str] = &[
    "sh",
    "-c",
    "echo hi && exit 42",
    "",
    "$(VAR)",
    "line\nbreak",
    "tab\there",
    "quote\"s",
];
const ENV_NAMES: &[&str] = &["A", "JOB_COMPLETION_INDEX", "1BAD", "", "with-dash", "a.b"];
const INTERVALS: &[&str] = &[
    "0",
    "0,2-3",
    "0-2",
    "1-",
    "5-3",
    "0,0",
    "3,1",
    "a",
    "",
    "0-2147483647",
    "2147483648",
    "-1",
    " 1",
    "1,,2",
    "99999999999999999999",
    "0-1,1-2",
];
const SCHEDULES: &[&str] = &[
    "* * * * *",
    "*/5 * * * *",
    "0 3 * * 1-5",
    "@hourly",
    "@daily",
    "@yearly",
    "@every 5m",
    "@every 0s",
    "@every -1h",
    "TZ=UTC 0 * * * *",
    "CRON_TZ=Europe/Berlin 0 0 * * *",
    "60 * * * *",
    "* * * *",
    "* * * * * *",
    "0 0 31 2 *",
    "0 0 L * *",
    "*/0 * * * *",
    "1-0 * * * *",
    "99999999999999999999 * * * *",
    "",
    "@reboot",
    "0 0 29 2 *",
    "0 0 * * 7",
    "0 0 * JAN-DEC SUN-SAT",
    "0 0 ? * MON#2",
    "5-59/15 0-23/2 1,15 */3 1-5",
];
const ZONES: &[&str] = &[
    "UTC",
    "Etc/UTC",
    "Europe/Berlin",
    "America/New_York",
    "Mars/Olympus",
    "",
    "utc",
    "Local",
    "../etc/passwd",
    "+05:00",
];
const TIMES: &[&str] = &[
    "2024-01-01T00:00:00Z",
    "2024-03-10T12:00:00+02:00",
    "2024-03-10T12:00:00.123456789-05:00",
    "9999-12-31T23:59:59-14:00",
    "0000-01-01T00:00:00+14:00",
    "1970-01-01T00:00:00Z",
    "2024-02-29T23:59:60Z",
];
const BAD_TIMES: &[&str] = &[
    "2024-02-30T00:00:00Z",
    "2024-01-01",
    "yesterday",
    "2024-01-01T24:00:00Z",
    "",
];
const STATUSES: &[&str] = &["True", "False", "Unknown", "", "true", "Maybe"];

const OWNER: Fields = &[
    ("apiVersion", 60, Str(&["batch/v1", "v1", ""])),
    ("kind", 60, Str(&["CronJob", "Job", ""])),
    ("name", 60, Str(NAMES)),
    ("uid", 60, Str(&["uid-1", ""])),
    ("controller", 40, Bool),
    ("blockOwnerDeletion", 30, Bool),
];
const META: Fields = &[
    ("name", 80, Str(NAMES)),
    ("generateName", 15, Str(NAMES)),
    ("namespace", 20, Str(NAMES)),
    (
        "uid",
        15,
        Str(&["uid-1", "", "00000000-0000-0000-0000-000000000000"]),
    ),
    ("labels", 35, Map(LABEL_KEYS, &Str(LABEL_VALUES))),
    ("annotations", 20, Map(LABEL_KEYS, &Str(LABEL_VALUES))),
    ("creationTimestamp", 10, Time),
    ("deletionTimestamp", 10, Time),
    ("deletionGracePeriodSeconds", 10, Int),
    ("ownerReferences", 10, List(&Obj(OWNER))),
    ("finalizers", 10, List(&Str(NAMES))),
];
const ON_EXIT_CODES: Fields = &[
    ("containerName", 40, Str(NAMES)),
    ("operator", 80, Str(&["In", "NotIn", "", "Equals"])),
    ("values", 80, List(&Int)),
];
const ON_POD_CONDITION: Fields = &[
    (
        "type",
        80,
        Str(&["DisruptionTarget", "ConfigIssue", "", "Ready"]),
    ),
    ("status", 50, Str(STATUSES)),
];
const POD_FAILURE_RULE: Fields = &[
    (
        "action",
        85,
        Str(&["FailJob", "FailIndex", "Ignore", "Count", "", "Retry"]),
    ),
    ("onExitCodes", 50, Obj(ON_EXIT_CODES)),
    ("onPodConditions", 50, List(&Obj(ON_POD_CONDITION))),
];
const POD_FAILURE_POLICY: Fields = &[("rules", 90, List(&Obj(POD_FAILURE_RULE)))];
const SUCCESS_RULE: Fields = &[
    ("succeededIndexes", 60, Str(INTERVALS)),
    ("succeededCount", 50, Int),
];
const SUCCESS_POLICY: Fields = &[("rules", 90, List(&Obj(SUCCESS_RULE)))];
const SELECTOR_REQUIREMENT: Fields = &[
    ("key", 80, Str(LABEL_KEYS)),
    (
        "operator",
        80,
        Str(&["In", "NotIn", "Exists", "DoesNotExist", "", "Gt"]),
    ),
    ("values", 50, List(&Str(LABEL_VALUES))),
];
const SELECTOR: Fields = &[
    ("matchLabels", 60, Map(LABEL_KEYS, &Str(LABEL_VALUES))),
    ("matchExpressions", 30, List(&Obj(SELECTOR_REQUIREMENT))),
];
const FIELD_REF: Fields = &[
    ("apiVersion", 20, Str(&["v1", ""])),
    (
        "fieldPath",
        80,
        Str(&[
            "metadata.name",
            "metadata.annotations['batch.kubernetes.io/job-completion-index']",
            "spec.nodeName",
            "",
        ]),
    ),
];
const ENV_SOURCE: Fields = &[("fieldRef", 70, Obj(FIELD_REF))];
const ENV: Fields = &[
    ("name", 85, Str(ENV_NAMES)),
    ("value", 60, Str(ARGS)),
    ("valueFrom", 25, Obj(ENV_SOURCE)),
];
const RESOURCE_NAMES: &[&str] = &["cpu", "memory", "nvidia.com/gpu", "ephemeral-storage", ""];
const RESOURCES: Fields = &[
    ("limits", 60, Map(RESOURCE_NAMES, &Quantity)),
    ("requests", 60, Map(RESOURCE_NAMES, &Quantity)),
];
const VOLUME_MOUNT: Fields = &[
    ("name", 80, Str(NAMES)),
    ("mountPath", 80, Str(&["/data", "/opt", "", "relative"])),
    ("readOnly", 30, Bool),
    ("subPath", 20, Str(&["", "x", "../x"])),
];
const CONTAINER: Fields = &[
    ("name", 85, Str(NAMES)),
    ("image", 85, Str(IMAGES)),
    (
        "imagePullPolicy",
        25,
        Str(&["Always", "IfNotPresent", "Never", "", "Sometimes"]),
    ),
    ("command", 50, List(&Str(ARGS))),
    ("args", 30, List(&Str(ARGS))),
    ("workingDir", 15, Str(&["/", "/tmp", "relative"])),
    ("env", 30, List(&Obj(ENV))),
    ("resources", 25, Obj(RESOURCES)),
    (
        "restartPolicy",
        20,
        Str(&["Always", "", "Never", "OnFailure"]),
    ),
    ("volumeMounts", 25, List(&Obj(VOLUME_MOUNT))),
];
const EMPTY_DIR: Fields = &[
    ("medium", 40, Str(&["", "Memory", "Disk"])),
    ("sizeLimit", 40, Quantity),
];
const HOST_PATH: Fields = &[
    ("path", 80, Str(&["/tmp", "", "relative"])),
    (
        "type",
        40,
        Str(&["Directory", "DirectoryOrCreate", "", "Bogus"]),
    ),
];
const DOWNWARD_FILE: Fields = &[
    ("path", 80, Str(&["data.txt", "", "../x", "/abs"])),
    ("fieldRef", 70, Obj(FIELD_REF)),
    ("mode", 20, Int),
];
const DOWNWARD_API: Fields = &[
    ("items", 80, List(&Obj(DOWNWARD_FILE))),
    ("defaultMode", 20, Int),
];
const VOLUME: Fields = &[
    ("name", 85, Str(NAMES)),
    ("emptyDir", 40, Obj(EMPTY_DIR)),
    ("hostPath", 20, Obj(HOST_PATH)),
    ("downwardAPI", 20, Obj(DOWNWARD_API)),
];
const POD_SPEC: Fields = &[
    ("initContainers", 20, List(&Obj(CONTAINER))),
    ("containers", 85, List(&Obj(CONTAINER))),
    (
        "restartPolicy",
        75,
        Str(&["Never", "OnFailure", "Always", "", "never"]),
    ),
    ("volumes", 25, List(&Obj(VOLUME))),
    ("terminationGracePeriodSeconds", 15, Int),
    ("activeDeadlineSeconds", 10, Int),
    ("hostname", 10, Str(NAMES)),
    ("subdomain", 10, Str(NAMES)),
];
const POD_TEMPLATE: Fields = &[("metadata", 40, Obj(META)), ("spec", 90, Obj(POD_SPEC))];
const JOB_SPEC: Fields = &[
    ("parallelism", 40, Int),
    ("completions", 40, Int),
    ("template", 90, Obj(POD_TEMPLATE)),
    ("activeDeadlineSeconds", 15, Int),
    ("podFailurePolicy", 30, Obj(POD_FAILURE_POLICY)),
    ("successPolicy", 25, Obj(SUCCESS_POLICY)),
    ("backoffLimit", 30, Int),
    ("backoffLimitPerIndex", 25, Int),
    ("maxFailedIndexes", 20, Int),
    ("selector", 15, Obj(SELECTOR)),
    ("manualSelector", 15, Bool),
    ("ttlSecondsAfterFinished", 15, Int),
    (
        "completionMode",
        40,
        Str(&["NonIndexed", "Indexed", "", "indexed"]),
    ),
    ("suspend", 20, Bool),
    (
        "podReplacementPolicy",
        20,
        Str(&["TerminatingOrFailed", "Failed", "", "Never"]),
    ),
    (
        "managedBy",
        10,
        Str(&[
            "kubernetes.io/job-controller",
            "example.com/custom",
            "",
            "x",
        ]),
    ),
];
const CONDITION: Fields = &[
    (
        "type",
        80,
        Str(&[
            "Complete",
            "Failed",
            "Suspended",
            "FailureTarget",
            "SuccessCriteriaMet",
            "",
            "Other",
        ]),
    ),
    ("status", 80, Str(STATUSES)),
    ("lastProbeTime", 30, Time),
    ("lastTransitionTime", 50, Time),
    ("reason", 40, Str(&["BackoffLimitExceeded", "", "x"])),
    ("message", 30, Str(ARGS)),
];
const UNCOUNTED: Fields = &[
    ("succeeded", 50, List(&Str(NAMES))),
    ("failed", 50, List(&Str(NAMES))),
];
const JOB_STATUS: Fields = &[
    ("conditions", 50, List(&Obj(CONDITION))),
    ("startTime", 40, Time),
    ("completionTime", 30, Time),
    ("active", 30, Int),
    ("succeeded", 30, Int),
    ("failed", 30, Int),
    ("terminating", 20, Int),
    ("ready", 20, Int),
    ("completedIndexes", 20, Str(INTERVALS)),
    ("failedIndexes", 15, Str(INTERVALS)),
    ("uncountedTerminatedPods", 15, Obj(UNCOUNTED)),
];
const JOB_TEMPLATE: Fields = &[("metadata", 30, Obj(META)), ("spec", 90, Obj(JOB_SPEC))];
const OBJECT_REFERENCE: Fields = &[
    ("apiVersion", 50, Str(&["batch/v1", ""])),
    ("kind", 50, Str(&["Job", ""])),
    ("name", 70, Str(NAMES)),
    ("namespace", 40, Str(NAMES)),
    ("uid", 40, Str(&["uid-1", ""])),
    ("resourceVersion", 20, Str(&["1", ""])),
];
const CRON_JOB_SPEC: Fields = &[
    ("schedule", 85, Str(SCHEDULES)),
    ("timeZone", 40, Str(ZONES)),
    ("startingDeadlineSeconds", 20, Int),
    (
        "concurrencyPolicy",
        40,
        Str(&["Allow", "Forbid", "Replace", "", "Sometimes"]),
    ),
    ("suspend", 20, Bool),
    ("jobTemplate", 85, Obj(JOB_TEMPLATE)),
    ("successfulJobsHistoryLimit", 25, Int),
    ("failedJobsHistoryLimit", 25, Int),
];
const CRON_JOB_STATUS: Fields = &[
    ("active", 40, List(&Obj(OBJECT_REFERENCE))),
    ("lastScheduleTime", 40, Time),
    ("lastSuccessfulTime", 40, Time),
];
const API_VERSIONS: &[&str] = &["batch/v1", "batch/v1beta1", "v1", "", "batch/v2alpha1"];
const KINDS: &[&str] = &["Job", "CronJob", "Pod", "", "job"];
const JOB: Fields = &[
    ("apiVersion", 95, Str(API_VERSIONS)),
    ("kind", 97, Str(KINDS)),
    ("metadata", 80, Obj(META)),
    ("spec", 90, Obj(JOB_SPEC)),
    ("status", 20, Obj(JOB_STATUS)),
];
const CRON_JOB: Fields = &[
    ("apiVersion", 95, Str(API_VERSIONS)),
    ("kind", 97, Str(KINDS)),
    ("metadata", 80, Obj(META)),
    ("spec", 90, Obj(CRON_JOB_SPEC)),
    ("status", 20, Obj(CRON_JOB_STATUS)),
];

/// Keys for unknown fields: known names of every level (in the wrong place), names used
/// by Kubernetes but not modelled, and odd keys that need quoting.
const KEYS: &[&str] = &[
    "completions",
    "parallelism",
    "podFailurePolicy",
    "rules",
    "onExitCodes",
    "values",
    "successPolicy",
    "succeededIndexes",
    "template",
    "containers",
    "schedule",
    "timeZone",
    "spec",
    "metadata",
    "name",
    "kind",
    "apiVersion",
    "status",
    "conditions",
    "ports",
    "nodeSelector",
    "tolerations",
    "x",
    "foo-bar",
    "",
    "with space",
    "ünï",
    "<<",
    "a: b",
    "#x",
    "-",
    "?",
    "&a",
    "*a",
    "!tag",
    "null",
    "true",
    "1",
    "~",
    "new\nline",
];

/// Integer-ish tokens beyond the small ones: limits, overflows and other types.
const INT_EDGES: &[&str] = &[
    "-1",
    "-5",
    "2147483647",
    "2147483648",
    "-2147483648",
    "-2147483649",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1234567890123456789012345678901234567890",
    "1.5",
    "3.0",
    "1e3",
    "-0.0",
    "1e400",
    ".inf",
    "-.inf",
    ".nan",
    "0x10",
    "0o7",
    "+3",
    "1_000",
    "true",
    "null",
    "~",
    "\"5\"",
];
/// Scalars any JSON value can hold.
const SCALARS: &[&str] = &[
    "0",
    "-7",
    "3.25",
    "1e-9",
    "true",
    "false",
    "null",
    "~",
    "yes",
    "\"\"",
    "''",
    "\"text\"",
    "plain text",
    "2024-01-01T00:00:00Z",
    "18446744073709551615",
    "-9223372036854775808",
    "1e400",
    ".inf",
    ".nan",
    "!!str 5",
    "!!int \"7\"",
    "\"\\u00e9\\t\\\"\"",
    "|\n  literal",
];
/// Scalars that no JSON value holds.
const ODD_SCALARS: &[&str] = &[
    "99999999999999999999999",
    "-99999999999999999999999",
    "!custom x",
    "!!binary aGk=",
    "!!float x",
];

/// Generates a value of a shape: usually the right one, sometimes anything.
fn gen_shape(t: &mut Tape, shape: Shape, depth: u32) -> Node {
    if t.chance(t.mess) {
        return gen_any(t, depth);
    }
    match shape {
        Int => {
            if t.chance(2 * t.mess) {
                Node::Raw(t.pick(INT_EDGES).to_owned())
            } else {
                Node::Raw(t.below(21).to_string())
            }
        }
        Bool => {
            let odd = t.chance(t.mess);
            Node::Raw(if odd {
                t.pick(&["True", "yes", "1", "null", "\"true\""]).to_owned()
            } else {
                t.pick(&["false", "true"]).to_owned()
            })
        }
        Time => {
            let odd = t.chance(t.mess);
            let s = t.pick(if odd { BAD_TIMES } else { TIMES }).to_owned();
            if t.chance(50) {
                Node::Raw(s)
            } else {
                Node::Str(s)
            }
        }
        Quantity => {
            let q = if t.chance(t.mess) {
                t.pick(&["-1", "abc", "", ".inf", "1e400", ".nan", "1e-400"])
            } else {
                t.pick(&["1", "500m", "1Gi", "0.5", "2", "1e3", "64Mi", "0"])
            };
            if t.chance(50) && !q.is_empty() {
                Node::Raw(q.to_owned())
            } else {
                Node::Str(q.to_owned())
            }
        }
        Str(candidates) => {
            if t.chance(t.mess) {
                Node::Str(t.pick(KEYS).to_owned())
            } else {
                Node::Str(t.pick(candidates).to_owned())
            }
        }
        Obj(fields) => gen_object(t, fields, depth + 1),
        List(item) => {
            let n = if t.chance(10) {
                t.below(6)
            } else {
                1 + t.below(3)
            };
            Node::Seq((0..n).map(|_| gen_shape(t, *item, depth + 1)).collect())
        }
        Map(keys, value) => {
            let n = t.below(4);
            let mut entries: Vec<(String, Node)> = Vec::new();
            for _ in 0..n {
                let key = t.pick(keys).to_owned();
                if entries.iter().all(|(k, _)| *k != key) || t.chance(3) {
                    entries.push((key, gen_shape(t, *value, depth + 1)));
                }
            }
            Node::Map(entries)
        }
    }
}

/// Generates an object: known fields (each present by chance), sometimes unknown fields,
/// sometimes in another order or with a key given twice.
fn gen_object(t: &mut Tape, fields: Fields, depth: u32) -> Node {
    let mut entries: Vec<(String, Node)> = Vec::new();
    for (name, percent, shape) in fields {
        if t.chance(*percent) {
            entries.push(((*name).to_owned(), gen_shape(t, *shape, depth)));
        }
    }
    if t.chance(10 + t.mess) {
        for _ in 0..=t.below(2) {
            let key = t.pick(KEYS).to_owned();
            if entries.iter().all(|(k, _)| *k != key) {
                entries.push((key, gen_any(t, depth + 1)));
            }
        }
    }
    if t.chance(t.mess / 4) && !entries.is_empty() {
        // A raw (non-string) key.
        let key = format!(
            "\u{0}{}",
            t.pick(&["1", "null", "true", "[a]", "{a: b}", "1.5"])
        );
        entries.push((key, Node::Raw("x".to_owned())));
    }
    if t.chance(t.mess / 4) && !entries.is_empty() {
        let i = t.below(entries.len());
        let duplicate = entries[i].clone();
        entries.push(duplicate);
    }
    if t.chance(20) && !entries.is_empty() {
        let by = t.below(entries.len());
        entries.rotate_left(by);
    }
    Node::Map(entries)
}

/// Generates any value: scalars, and (shallow enough) random maps and lists.
fn gen_any(t: &mut Tape, depth: u32) -> Node {
    match if depth > 8 { 0 } else { t.below(5) } {
        0 | 1 if t.chance(t.mess) => Node::Raw(t.pick(ODD_SCALARS).to_owned()),
        0 | 1 => Node::Raw(t.pick(SCALARS).to_owned()),
        2 => Node::Str(t.pick(KEYS).to_owned()),
        3 => {
            let n = t.below(4);
            let entries = (0..n)
                .map(|_| (t.pick(KEYS).to_owned(), gen_any(t, depth + 1)))
                .collect();
            Node::Map(entries)
        }
        _ => {
            let n = t.below(4);
            Node::Seq((0..n).map(|_| gen_any(t, depth + 1)).collect())
        }
    }
}

// Rendering ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Block,
    Flow,
    Json,
}

fn is_plain(s: &str) -> bool {
    const RESERVED: &[&str] = &[
        "true", "false", "null", "yes", "no", "on", "off", "y", "n", "True", "False", "Null",
        "NULL", "TRUE", "FALSE", "Yes", "No",
    ];
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "._/-".contains(c))
        && !RESERVED.contains(&s)
}

fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn key_text(key: &str, style: Style) -> String {
    if let Some(raw) = key.strip_prefix('\u{0}') {
        return if style == Style::Block && raw.starts_with(['[', '{']) {
            format!("? {raw}\n")
        } else {
            raw.to_owned()
        };
    }
    if style != Style::Json && is_plain(key) {
        key.to_owned()
    } else {
        quoted(key)
    }
}

/// A value on one line (flow style).
fn flow(node: &Node, style: Style) -> String {
    match node {
        Node::Str(s) => {
            if style != Style::Json && is_plain(s) {
                s.clone()
            } else {
                quoted(s)
            }
        }
        // A literal block scalar cannot be written in flow style.
        Node::Raw(r) if r.starts_with('|') => "\"literal\"".to_owned(),
        Node::Raw(r) => r.clone(),
        Node::Map(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}: {}", key_text(k, Style::Flow), flow(v, style)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Node::Seq(items) => {
            let inner: Vec<String> = items.iter().map(|v| flow(v, style)).collect();
            format!("[{}]", inner.join(", "))
        }
    }
}

fn is_block_container(node: &Node) -> bool {
    match node {
        Node::Map(e) => !e.is_empty(),
        Node::Seq(i) => !i.is_empty(),
        _ => false,
    }
}

fn block(t: &mut Tape, out: &mut String, node: &Node, indent: usize) {
    match node {
        Node::Map(entries) => {
            for (k, v) in entries {
                out.push_str(&" ".repeat(indent));
                let key = key_text(k, Style::Block);
                out.push_str(&key);
                if !key.ends_with('\n') {
                    out.push(':');
                } else {
                    out.push_str(&" ".repeat(indent));
                    out.push(':');
                }
                value_after_key(t, out, v, indent);
            }
        }
        Node::Seq(items) => {
            for item in items {
                out.push_str(&" ".repeat(indent));
                out.push('-');
                if is_block_container(item) && !t.chance(15) {
                    // Compact form: the item's first line follows the dash.
                    let mut inner = String::new();
                    block(t, &mut inner, item, indent + 2);
                    out.push(' ');
                    out.push_str(&inner[indent + 2..]);
                } else {
                    out.push(' ');
                    out.push_str(&flow(item, Style::Flow));
                    out.push('\n');
                }
            }
        }
        scalar => {
            out.push_str(&" ".repeat(indent));
            out.push_str(&flow(scalar, Style::Flow));
            out.push('\n');
        }
    }
}

fn value_after_key(t: &mut Tape, out: &mut String, v: &Node, indent: usize) {
    if is_block_container(v) && !t.chance(15) {
        out.push('\n');
        // A list under a key may sit at the key's own indentation.
        let nested = if matches!(v, Node::Seq(_)) && t.chance(50) {
            indent
        } else {
            indent + 2
        };
        block(t, out, v, nested);
    } else if let Node::Raw(r) = v
        && let Some(rest) = r.strip_prefix("|\n")
    {
        out.push_str(" |\n");
        out.push_str(&" ".repeat(indent + 2));
        out.push_str(rest.trim_start());
        out.push('\n');
    } else {
        out.push(' ');
        out.push_str(&flow(v, Style::Flow));
        if t.chance(5) {
            out.push_str("  # a comment");
        }
        out.push('\n');
    }
}

/// A top-level object: usually of the right kind and API version.
fn gen_document(t: &mut Tape, fields: Fields, kind: &str) -> Node {
    let mut node = gen_object(t, fields, 0);
    if let Node::Map(entries) = &mut node {
        for (key, value) in entries.iter_mut() {
            if key == "kind" && !t.chance(t.mess) {
                *value = Node::Str(kind.to_owned());
            } else if key == "apiVersion" && !t.chance(t.mess) {
                *value = Node::Str("batch/v1".to_owned());
            }
        }
    }
    node
}

/// A whole source: one to three documents, with separators, comments and empty documents.
fn gen_source(t: &mut Tape) -> String {
    let mut out = String::new();
    if t.chance(5) {
        out.push_str("%YAML 1.2\n---\n");
    } else if t.chance(20) {
        out.push_str("---\n");
    }
    let documents = 1 + t.below(3);
    for i in 0..documents {
        if i > 0 {
            out.push_str("---\n");
            if t.chance(10) {
                out.push_str("# an empty document\n---\n");
            }
        }
        // Clean documents reach deep into validation; messy ones exercise the errors.
        t.mess = [0, 2, 10][t.below(3)];
        let node = match t.below(32) {
            0..=15 => gen_document(t, JOB, "Job"),
            16..=30 => gen_document(t, CRON_JOB, "CronJob"),
            _ => gen_any(t, 0),
        };
        let style = match t.below(6) {
            0..=3 => Style::Block,
            4 => Style::Flow,
            _ => Style::Json,
        };
        if style == Style::Block && is_block_container(&node) {
            block(t, &mut out, &node, 0);
        } else {
            out.push_str(&flow(&node, style));
            out.push('\n');
        }
    }
    out
}

fn tape() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..4000)
}

fn config(cases: u32) -> Config {
    let mut config = Config::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = cases;
    }
    // Failures are kept as files in tests/fuzz_regressions/ by hand, not by proptest.
    config.failure_persistence = None;
    config
}

/// The corpus files (inputs to mutate).
static CORPUS: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/k8s-website");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let files: Vec<Vec<u8>> = files.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert!(!files.is_empty(), "the corpus {} is empty", dir.display());
    files
});

/// One edit of a byte string.
#[derive(Debug, Clone)]
enum Edit {
    Overwrite(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Bytes that matter to YAML, and any byte.
    let interesting = prop_oneof![
        proptest::sample::select(b" \t\n:-{}[],#&*!|>'\"%@`?0123456789.~".to_vec()),
        any::<u8>(),
    ];
    prop_oneof![
        (any::<usize>(), interesting.clone()).prop_map(|(at, b)| Edit::Overwrite(at, b)),
        (any::<usize>(), proptest::collection::vec(interesting, 1..8))
            .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        (any::<usize>(), 1..40usize).prop_map(|(at, n)| Edit::Delete(at, n)),
    ]
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let len = bytes.len();
        match e {
            Edit::Overwrite(at, b) if len > 0 => bytes[at % len] = *b,
            Edit::Insert(at, new) => {
                let at = at % (len + 1);
                bytes.splice(at..at, new.iter().copied());
            }
            Edit::Delete(at, n) if len > 0 => {
                let at = at % len;
                bytes.drain(at..(at + n).min(len));
            }
            _ => {}
        }
    }
    bytes
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(3000))]

    /// (a) Arbitrary bytes never make the loader panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        check_bytes(&bytes)?;
    }

    /// (a) Text made of the characters that matter to YAML never makes the loader panic.
    #[test]
    fn yaml_alphabet_text_never_panics(
        text in "([ \\t\\n:{}\\[\\],#&*!|>'\"%@?~.-]|[a-z0-9]|kind: Job\n|apiVersion: batch/v1\n|spec:\n  |---\n){0,80}"
    ) {
        check_source(&text)?;
    }

    /// (a) Corpus files with random byte edits never make the pipeline panic.
    #[test]
    fn mutated_corpus_files_never_panic(
        file in any::<proptest::sample::Index>(),
        edits in proptest::collection::vec(edit(), 1..6),
    ) {
        let original = &CORPUS[file.index(CORPUS.len())];
        check_bytes(&apply(original.clone(), &edits))?;
    }

    /// (b) Job/CronJob-shaped documents load or fail cleanly; what loads defaults,
    /// validates and round-trips.
    #[test]
    fn generated_manifests_load_default_validate_and_round_trip(bytes in tape()) {
        let src = gen_source(&mut Tape::new(&bytes));
        check_source(&src)?;
    }

    /// (c) Applying the defaults twice gives what applying them once gives.
    #[test]
    fn defaulting_is_idempotent(bytes in tape()) {
        let src = gen_source(&mut Tape::new(&bytes));
        let Ok(docs) = loader::load_str(&src, "generated.yaml") else {
            return Ok(());
        };
        for doc in docs {
            match doc.object {
                Some(Manifest::Job(job)) => {
                    let mut once: Job = *job;
                    defaults::default_job(&mut once);
                    let mut twice = once.clone();
                    defaults::default_job(&mut twice);
                    prop_assert_eq!(&once, &twice);

                    let mut spec_once = once.spec.clone();
                    defaults::default_job_spec(&mut spec_once);
                    prop_assert_eq!(&spec_once, &once.spec);

                    // A Job as created (uid, defaults, generated selector) is a fixed point
                    // of the plain defaults except for the documented label copy (see
                    // prepare_job_for_create_twice_changes_nothing below); preparing it a
                    // second and a third time gives the same Job.
                    let mut prepared = once.clone();
                    prepare_job_for_create(&mut prepared, "uid-1");
                    prepare_job_for_create(&mut prepared, "uid-1");
                    let mut again = prepared.clone();
                    prepare_job_for_create(&mut again, "uid-2");
                    prop_assert_eq!(&prepared, &again);
                }
                Some(Manifest::CronJob(cron_job)) => {
                    let mut once: CronJob = *cron_job;
                    defaults::default_cron_job(&mut once);
                    let mut twice = once.clone();
                    defaults::default_cron_job(&mut twice);
                    prop_assert_eq!(&once, &twice);
                }
                _ => {}
            }
        }
    }
}

/// The grammar is useful only if much of what it builds loads: check that it does, and that
/// it reaches Jobs and CronJobs with the interesting parts present.
#[test]
fn the_grammar_builds_loadable_jobs_and_cron_jobs() {
    let mut runner = TestRunner::deterministic();
    let strategy = tape();
    let (mut sources, mut loaded, mut jobs, mut cron_jobs) = (0, 0, 0, 0);
    let (mut with_containers, mut with_policy, mut valid) = (0, 0, 0);
    for _ in 0..1000 {
        let bytes = strategy.new_tree(&mut runner).unwrap().current();
        let src = gen_source(&mut Tape::new(&bytes));
        sources += 1;
        let Ok(docs) = loader::load_str(&src, "generated.yaml") else {
            continue;
        };
        loaded += 1;
        for doc in docs {
            if doc.validate().is_empty() {
                valid += 1;
            }
            match doc.object {
                Some(Manifest::Job(job)) => {
                    jobs += 1;
                    with_containers += usize::from(!job.spec.template.spec.containers.is_empty());
                    with_policy += usize::from(job.spec.pod_failure_policy.is_some());
                }
                Some(Manifest::CronJob(_)) => cron_jobs += 1,
                _ => {}
            }
        }
    }
    println!(
        "{sources} sources: {loaded} loaded; {jobs} Jobs ({with_containers} with containers, \
         {with_policy} with a podFailurePolicy), {cron_jobs} CronJobs, {valid} valid documents"
    );
    assert!(
        loaded * 100 >= sources * 20,
        "only {loaded} of {sources} load"
    );
    assert!(
        jobs >= 100 && cron_jobs >= 100,
        "{jobs} Jobs, {cron_jobs} CronJobs"
    );
    assert!(with_containers >= 50 && with_policy >= 20);
}

/// Saved inputs of bugs not fixed yet (see `tests/fuzz_regressions/README.md`); replayed by
/// no test until fixed. Empty: every saved input passes.
const KNOWN_OPEN: &[&str] = &[];

/// The saved fuzz inputs (`tests/fuzz_regressions/`), except its README: (name, bytes).
fn fuzz_regressions() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new(); // No regression saved.
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file() && path.file_name().is_some_and(|n| n != "README.md"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Every input the fuzzer once failed on (`tests/fuzz_regressions/`) goes through the same
/// pipeline as the fuzz target without a failure.
#[test]
fn fuzz_regressions_replay() {
    for (name, bytes) in fuzz_regressions() {
        if KNOWN_OPEN.contains(&name.as_str()) {
            continue;
        }
        if let Err(e) = check_bytes(&bytes) {
            panic!("fuzz_regressions/{name}: {e}");
        }
    }
}

/// `prepare_job_for_create` is idempotent, also for a Job whose template has no labels: it
/// returns the Job as stored and read back, whose own labels are then the generated ones
/// (once found by the robustness tests: a second call used to add them).
#[test]
fn prepare_job_for_create_twice_changes_nothing() {
    let docs = loader::load_str(
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}}}\n",
        "pi.yaml",
    )
    .unwrap();
    let Some(Manifest::Job(job)) = &docs[0].object else {
        panic!()
    };
    let mut once = (**job).clone();
    prepare_job_for_create(&mut once, "uid-1");
    let mut twice = once.clone();
    prepare_job_for_create(&mut twice, "uid-1");
    assert_eq!(once.metadata.labels, twice.metadata.labels);
    assert_eq!(once.metadata.labels["batch.kubernetes.io/job-name"], "pi");
}
