//! `batch validate` as a user runs it: the real binary on real files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{batch, json_lines, temp_file};

use std::path::Path;

use serde_json::Value;

const CORPUS: &str = "../../shared/corpus/k8s-website";

fn corpus(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(CORPUS)
        .join(file);
    assert!(path.exists(), "corpus file {} is missing", path.display());
    path.to_string_lossy().into_owned()
}

fn error_fields(report: &Value) -> Vec<(String, String)> {
    report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["field"].as_str().unwrap().to_owned(),
                e["type"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn every_corpus_file_gets_the_documented_verdict() {
    let mut files: Vec<String> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(CORPUS))
            .expect("the corpus folder ../shared/corpus/k8s-website exists")
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml"))
            .collect();
    files.sort();
    assert!(files.len() >= 16, "corpus has {} files", files.len());
    for file in &files {
        let out = batch(&["validate", &corpus(file)]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        match file.as_str() {
            "job-pod-failure-policy-ignore.yaml" => {
                assert_eq!(out.status.code(), Some(2), "{file}: {stderr}");
                assert!(stderr.contains("line 24, column 1"), "{file}: {stderr}");
                assert!(stderr.contains(file.as_str()), "{file}: {stderr}");
                assert!(out.stdout.is_empty());
            }
            "job-success-policy-example.yaml" => {
                assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
                let reports = json_lines(&out);
                assert_eq!(reports.len(), 1);
                assert_eq!(reports[0]["valid"], false);
                assert_eq!(reports[0]["name"], Value::Null);
                assert!(
                    error_fields(&reports[0])
                        .contains(&("metadata.name".into(), "FieldValueRequired".into())),
                    "{file}: {reports:?}"
                );
            }
            "job-tmpl.yaml" => {
                assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
                let reports = json_lines(&out);
                assert_eq!(reports[0]["name"], "process-item-$ITEM");
                assert!(
                    error_fields(&reports[0])
                        .contains(&("metadata.name".into(), "FieldValueInvalid".into())),
                    "{file}: {reports:?}"
                );
            }
            "cronjob.yaml" => {
                assert_eq!(out.status.code(), Some(1), "{file}: {stderr}");
                let reports = json_lines(&out);
                assert_eq!(reports[0]["kind"], "CronJob");
                assert_eq!(
                    error_fields(&reports[0]),
                    vec![("apiVersion".into(), "FieldValueNotSupported".into())],
                    "{file}: {reports:?}"
                );
                let detail = reports[0]["errors"][0]["detail"].as_str().unwrap();
                assert!(detail.contains("set apiVersion to batch/v1"), "{detail}");
            }
            _ => {
                let reports = json_lines(&out);
                assert_eq!(out.status.code(), Some(0), "{file}: {reports:?} {stderr}");
                assert_eq!(reports.len(), 1, "{file}");
                assert_eq!(reports[0]["valid"], true, "{file}: {reports:?}");
                assert_eq!(reports[0]["errors"], Value::Array(vec![]));
            }
        }
    }
}

#[test]
fn output_lines_follow_the_contract_shape() {
    let path = temp_file("cli-validate", 
        "always.yaml",
        b"apiVersion: batch/v1\nkind: Job\nmetadata: {name: pi}\nspec:\n  template:\n    spec:\n      restartPolicy: Always\n      containers: [{name: pi, image: perl}]\n",
    );
    let out = batch(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8(out.stdout).unwrap();
    let expected_tail = r#""index":0,"kind":"Job","name":"pi","valid":false,"errors":[{"field":"spec.template.spec.restartPolicy","type":"FieldValueRequired","badValue":null,"detail":"valid values: \"OnFailure\", \"Never\""}]}"#;
    assert!(line.trim_end().ends_with(expected_tail), "{line}");
    assert!(line.starts_with(r#"{"file":""#), "{line}");
}

#[test]
fn human_output_reads_like_kubectl() {
    let out = batch(&[
        "validate",
        "--human",
        &corpus("job.yaml"),
        &corpus("cronjob.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("job.batch/pi is valid"), "{text}");
    assert!(
        text.contains(
            r#"The CronJob "hello" is invalid: apiVersion: Unsupported value: "batch/v1beta1""#
        ),
        "{text}"
    );
}

#[test]
fn several_documents_are_reported_one_line_each() {
    let path = temp_file("cli-validate", 
        "multi.yaml",
        b"---\n# empty document follows\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nspec: {template: {spec: {restartPolicy: Never, containers: [{name: c, image: i}]}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n{\"apiVersion\": \"batch/v1\", \"kind\": \"CronJob\", \"metadata\": {\"name\": \"c\"}, \"spec\": {\"schedule\": \"@hourly\", \"jobTemplate\": {\"spec\": {\"template\": {\"spec\": {\"restartPolicy\": \"OnFailure\", \"containers\": [{\"name\": \"c\", \"image\": \"i\"}]}}}}}}\n",
    );
    let out = batch(&["validate", path.to_str().unwrap()]);
    let reports = json_lines(&out);
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(
        reports
            .iter()
            .map(|r| r["index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(reports[0]["valid"], true, "{reports:?}");
    assert_eq!(reports[1]["kind"], "ConfigMap");
    assert_eq!(
        error_fields(&reports[1]),
        vec![("kind".into(), "FieldValueNotSupported".into())]
    );
    assert_eq!(reports[2]["valid"], true, "{reports:?}");
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn bad_input_is_a_clear_error_never_a_panic() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("wrong-type.yaml", b"apiVersion: batch/v1\nkind: Job\nspec:\n  completions: five\n".to_vec(), "spec.completions"),
        ("huge.yaml", b"apiVersion: batch/v1\nkind: Job\nspec:\n  parallelism: 123456789012345678901234567890\n".to_vec(), "spec.parallelism"),
        ("not-utf8.yaml", b"apiVersion: batch/v1\nkind: Job\nmetadata: {name: \xff\xfe}\n".to_vec(), "invalid UTF-8"),
        ("list.yaml", b"- a\n- b\n".to_vec(), "expected an object"),
        ("deep.yaml", format!("a: {}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(), "recursion limit"),
        ("unclosed.yaml", b"apiVersion: batch/v1\nkind: Job\nspec: {completions: 1\n".to_vec(), "line"),
    ];
    for (name, contents, needle) in cases {
        let path = temp_file("cli-validate", name, &contents);
        let out = batch(&["validate", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {stderr}");
        assert!(stderr.contains(needle), "{name}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{name}: one line per error: {stderr}"
        );
    }
}

#[test]
fn a_missing_file_is_exit_2_and_the_others_are_still_checked() {
    let out = batch(&["validate", "/nonexistent/job.yaml", &corpus("job.yaml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/job.yaml"));
    assert_eq!(json_lines(&out).len(), 1);
}

#[test]
fn an_empty_file_has_no_documents_and_is_valid() {
    let path = temp_file("cli-validate", "empty.yaml", b"# nothing here\n");
    let out = batch(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}
