//! Helpers shared by the data-driven scenario harnesses (`job_scenarios.rs`,
//! `cronjob_scenarios.rs`): JSON merge patches and "expected is a subset of actual".

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

/// Merges `patch` into `target` (JSON merge patch: `null` removes a key).
pub(crate) fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

pub(crate) fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Checks `actual` against `expected`; returns the first mismatch as `path: message`.
pub(crate) fn subset(expected: &Value, actual: Option<&Value>, path: &str) -> Result<(), String> {
    let Some(actual) = actual else {
        return if is_zero(expected) {
            Ok(())
        } else {
            Err(format!("{path}: expected {expected}, found nothing"))
        };
    };
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                subset(v, a.get(k), &format!("{path}.{k}"))?;
            }
            Ok(())
        }
        (Value::Object(e), Value::Null) if e.is_empty() => Ok(()),
        (Value::Array(e), Value::Array(a)) => {
            if e.len() != a.len() {
                return Err(format!(
                    "{path}: expected {} items {expected}, found {} {actual}",
                    e.len(),
                    a.len()
                ));
            }
            for (i, (ev, av)) in e.iter().zip(a).enumerate() {
                subset(ev, Some(av), &format!("{path}[{i}]"))?;
            }
            Ok(())
        }
        (Value::Number(e), Value::Number(a)) if e.as_f64() == a.as_f64() => Ok(()),
        (e, Value::Null) if is_zero(e) => Ok(()),
        (e, a) if e == a => Ok(()),
        (e, a) => Err(format!("{path}: expected {e}, found {a}")),
    }
}

/// Fails unless every `.yaml` file in `folder` is a listed scenario, every listed scenario
/// has a file, and the folder holds nothing else.
pub(crate) fn check_every_file_is_listed(folder: &Path, listed: &[&str]) {
    let on_disk: BTreeSet<String> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: BTreeSet<String> = listed.iter().map(|s| (*s).to_owned()).collect();
    let missing: Vec<_> = on_disk.difference(&listed).collect();
    let absent: Vec<_> = listed.difference(&on_disk).collect();
    assert!(
        missing.is_empty(),
        "scenario files not listed in scenarios!: {missing:?}"
    );
    assert!(
        absent.is_empty(),
        "listed scenarios with no file: {absent:?}"
    );
    let other: Vec<_> = std::fs::read_dir(folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "yaml"))
        .collect();
    assert!(
        other.is_empty(),
        "files that are not .yaml scenarios: {other:?}"
    );
}

/// Reads scenario `name` from `folder`: the document without its `description`, and its
/// steps — the `steps` list, or one step made of the top-level `step_keys`.
pub(crate) fn read_scenario(
    folder: &Path,
    name: &str,
    step_keys: &[&str],
) -> (serde_json::Map<String, Value>, Vec<Value>) {
    let path = folder.join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: cannot read: {e}", path.display()));
    let doc: Value = serde_norway::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
    let Value::Object(mut doc) = doc else {
        panic!("{name}: a scenario is an object");
    };
    doc.remove("description");
    let steps: Vec<Value> = match doc.remove("steps") {
        Some(Value::Array(steps)) => steps,
        Some(_) => panic!("{name}: steps must be a list"),
        None => {
            let mut one = serde_json::Map::new();
            for key in step_keys {
                if let Some(v) = doc.remove(*key) {
                    one.insert((*key).into(), v);
                }
            }
            vec![Value::Object(one)]
        }
    };
    (doc, steps)
}
