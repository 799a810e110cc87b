//! Object metadata validation: names (DNS-1123), qualified names, labels, annotations and
//! label selectors, with the messages of Kubernetes' apimachinery.

use std::collections::BTreeMap;

use super::{FieldError, FieldPath};
use crate::model::{LabelSelector, ObjectMeta};

/// Longest DNS-1123 label (and label value, and name part of a qualified name).
pub(crate) const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const LABEL_VALUE_MAX: usize = 63;
const LABEL_KEY_NAME_MAX: usize = 63;
/// Largest total size of an object's annotations (keys plus values), in bytes.
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

const DNS1123_LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
const LABEL_KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const LABEL_KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// Kubernetes' `MaxLenError` (recent wording: lengths are in bytes).
pub(crate) fn max_len_error(max: usize) -> String {
    format!("must be no more than {max} bytes")
}

/// Kubernetes' `RegexError`.
pub(crate) fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    if examples.is_empty() {
        return format!("{msg} (regex used for validation is '{re}')");
    }
    let mut out = format!("{msg} (e.g. ");
    for (i, example) in examples.iter().enumerate() {
        if i > 0 {
            out.push_str(" or ");
        }
        out.push('\'');
        out.push_str(example);
        out.push_str("', ");
    }
    out.push_str("regex used for validation is '");
    out.push_str(re);
    out.push_str("')");
    out
}

const EMPTY_ERROR: &str = "must be non-empty";

fn is_lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// Matches `[a-z0-9]([-a-z0-9]*[a-z0-9])?`.
fn is_dns1123_label_syntax(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            is_lower_alnum(first)
                && is_lower_alnum(last)
                && bytes.iter().all(|&b| is_lower_alnum(b) || b == b'-')
        }
        _ => false,
    }
}

fn is_dns1123_subdomain_syntax(s: &str) -> bool {
    s.split('.').all(is_dns1123_label_syntax)
}

/// `IsDNS1123Label`: the problems of `s` as a DNS-1123 label.
pub(crate) fn dns1123_label_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_LABEL_MAX {
        errs.push(max_len_error(DNS1123_LABEL_MAX));
    }
    if !is_dns1123_label_syntax(s) {
        if is_dns1123_subdomain_syntax(s) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                DNS1123_LABEL_MSG,
                DNS1123_LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// `IsDNS1123Subdomain`: the problems of `s` as a DNS-1123 subdomain.
pub(crate) fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        errs.push(max_len_error(DNS1123_SUBDOMAIN_MAX));
    }
    if !is_dns1123_subdomain_syntax(s) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// `NameIsDNSSubdomain`: a name, or (with `prefix`) a `generateName` whose trailing dash is
/// allowed.
pub(crate) fn name_is_dns_subdomain(name: &str, prefix: bool) -> Vec<String> {
    if prefix {
        dns1123_subdomain_errors(&mask_trailing_dash(name))
    } else {
        dns1123_subdomain_errors(name)
    }
}

fn name_is_dns_label(name: &str) -> Vec<String> {
    dns1123_label_errors(name)
}

/// Replaces a trailing `-` (and the character before it) by `a`, as Kubernetes does before
/// checking a name prefix.
fn mask_trailing_dash(name: &str) -> String {
    let bytes = name.as_bytes();
    if bytes.len() > 1 && name.ends_with('-') {
        let before = bytes.len() - 2;
        if bytes[before].is_ascii() {
            // Drop the dash and the (ASCII) character before it, then add "a".
            format!("{}a", &name[..before])
        } else {
            // Kubernetes cuts a multi-byte character in two here, which can never be valid;
            // dropping only the dash keeps the name invalid for the same reason.
            name[..bytes.len() - 1].to_owned()
        }
    } else {
        name.to_owned()
    }
}

fn is_label_key_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        }
        _ => false,
    }
}

/// `IsQualifiedName` (`IsLabelKey`): the problems of `s` as a qualified name / label key.
pub(crate) fn qualified_name_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push(format!("prefix part {EMPTY_ERROR}"));
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(LABEL_KEY_MSG, LABEL_KEY_FMT, &["MyName", "my.name", "123-abc"])
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push(format!("name part {EMPTY_ERROR}"));
    } else if name.len() > LABEL_KEY_NAME_MAX {
        errs.push(format!("name part {}", max_len_error(LABEL_KEY_NAME_MAX)));
    }
    if !is_label_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                LABEL_KEY_MSG,
                LABEL_KEY_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// `IsValidLabelValue`.
pub(crate) fn label_value_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > LABEL_VALUE_MAX {
        errs.push(max_len_error(LABEL_VALUE_MAX));
    }
    if !s.is_empty() && !is_label_key_name(s) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// `ValidateQualifiedName`: one `Invalid` per problem, at `path`.
pub(crate) fn validate_qualified_name(value: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for msg in qualified_name_errors(value) {
        errs.push(FieldError::invalid(path.clone(), value, msg));
    }
}

/// `ValidateDNS1123Label`: one `Invalid` per problem, at `path`.
pub(crate) fn validate_dns1123_label(value: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for msg in dns1123_label_errors(value) {
        errs.push(FieldError::invalid(path.clone(), value, msg));
    }
}

/// `ValidateObjectMeta` for a create, with the name rule of Jobs and CronJobs (a DNS-1123
/// subdomain).
///
/// Differences from the API server, which fills some fields in before validating: a
/// `generateName` without a `name` is accepted (the server would generate the name), and an
/// empty namespace is accepted (the server takes it from the request).
pub(crate) fn validate_object_meta(
    meta: &ObjectMeta,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let generate_name = meta.generate_name.as_deref().unwrap_or_default();
    if !generate_name.is_empty() {
        for msg in name_is_dns_subdomain(generate_name, true) {
            errs.push(FieldError::invalid(
                path.child("generateName"),
                generate_name,
                msg,
            ));
        }
    }
    let name = meta.name.as_deref().unwrap_or_default();
    if name.is_empty() {
        if generate_name.is_empty() {
            errs.push(FieldError::required(
                path.child("name"),
                "name or generateName is required",
            ));
        }
    } else {
        for msg in name_is_dns_subdomain(name, false) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }
    let namespace = meta.namespace.as_deref().unwrap_or_default();
    if !namespace.is_empty() {
        for msg in name_is_dns_label(namespace) {
            errs.push(FieldError::invalid(path.child("namespace"), namespace, msg));
        }
    }
    validate_labels(&meta.labels, &path.child("labels"), errs);
    validate_annotations(&meta.annotations, &path.child("annotations"), errs);
}

/// `ValidateLabels`: keys are qualified names, values label values; every error is reported
/// at the map's path itself (as Kubernetes does), with the key or value as bad value.
pub(crate) fn validate_labels(
    labels: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    for (key, value) in labels {
        validate_qualified_name(key, path, errs);
        for msg in label_value_errors(value) {
            errs.push(FieldError::invalid(path.clone(), value.as_str(), msg));
        }
    }
}

/// `ValidateAnnotations`: keys are qualified names (case-insensitively); the total size of
/// keys and values is at most 256 KiB.
pub(crate) fn validate_annotations(
    annotations: &BTreeMap<String, String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let mut total: usize = 0;
    for (key, value) in annotations {
        for msg in qualified_name_errors(&key.to_lowercase()) {
            errs.push(FieldError::invalid(path.clone(), key.as_str(), msg));
        }
        total = total.saturating_add(key.len()).saturating_add(value.len());
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(
            path.clone(),
            "",
            TOTAL_ANNOTATION_SIZE_LIMIT,
        ));
    }
}

/// `ValidateLabelSelector` (metav1): labels, operators, keys and values.
pub(crate) fn validate_label_selector(
    selector: &LabelSelector,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let exprs_path = path.child("matchExpressions");
    for (i, req) in selector.match_expressions.iter().enumerate() {
        let req_path = exprs_path.index(i);
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if req.values.is_empty() {
                    errs.push(FieldError::required(
                        req_path.child("values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !req.values.is_empty() {
                    errs.push(FieldError::forbidden(
                        req_path.child("values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            other => errs.push(FieldError::invalid(
                req_path.child("operator"),
                other,
                "not a valid selector operator",
            )),
        }
        validate_qualified_name(&req.key, &req_path.child("key"), errs);
        let values_path = req_path.child("values");
        for (j, value) in req.values.iter().enumerate() {
            for msg in label_value_errors(value) {
                errs.push(FieldError::invalid(
                    values_path.index(j),
                    value.as_str(),
                    msg,
                ));
            }
        }
    }
    validate_labels(&selector.match_labels, &path.child("matchLabels"), errs);
}

/// Whether a selector matches `labels`, or `None` when the selector cannot be converted to a
/// Kubernetes selector (an invalid operator, key or value), in which case Kubernetes skips
/// the matching checks.
pub(crate) fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Option<bool> {
    for (key, value) in &selector.match_labels {
        if !qualified_name_errors(key).is_empty() || !label_value_errors(value).is_empty() {
            return None;
        }
    }
    for req in &selector.match_expressions {
        if !qualified_name_errors(&req.key).is_empty() {
            return None;
        }
        match req.operator.as_str() {
            "In" | "NotIn" => {
                if req.values.is_empty()
                    || req.values.iter().any(|v| !label_value_errors(v).is_empty())
                {
                    return None;
                }
            }
            "Exists" | "DoesNotExist" => {
                if !req.values.is_empty() {
                    return None;
                }
            }
            _ => return None,
        }
    }
    Some(selector.matches(labels))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dns_label_rules_follow_kubernetes() {
        assert!(dns1123_label_errors("my-name").is_empty());
        assert_eq!(dns1123_label_errors("a.b"), vec!["must not contain dots"]);
        assert_eq!(dns1123_label_errors(&"a".repeat(64)).len(), 1);
        assert_eq!(dns1123_label_errors("-a").len(), 1);
        assert!(dns1123_label_errors("").len() == 1);
    }

    #[test]
    fn subdomain_rules_follow_kubernetes() {
        assert!(dns1123_subdomain_errors("a.b-c.d").is_empty());
        assert_eq!(
            dns1123_subdomain_errors("process-item-$ITEM"),
            vec![
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
            ]
        );
        assert!(dns1123_subdomain_errors("a..b").len() == 1);
    }

    #[test]
    fn generate_name_may_end_with_a_dash() {
        assert!(name_is_dns_subdomain("pi-", true).is_empty());
        assert!(!name_is_dns_subdomain("pi-", false).is_empty());
        assert!(name_is_dns_subdomain("-", true).len() == 1);
        assert_eq!(name_is_dns_subdomain("é-", true).len(), 1);
    }

    #[test]
    fn qualified_names_and_label_values_follow_kubernetes() {
        assert!(qualified_name_errors("batch.kubernetes.io/job-name").is_empty());
        assert!(qualified_name_errors("app").is_empty());
        assert_eq!(
            qualified_name_errors("/a"),
            vec!["prefix part must be non-empty"]
        );
        assert_eq!(qualified_name_errors("a/b/c").len(), 1);
        assert_eq!(
            qualified_name_errors("Example.com/a")[0].split(' ').next(),
            Some("prefix")
        );
        assert!(label_value_errors("").is_empty());
        assert_eq!(
            label_value_errors(&"x".repeat(64)),
            vec!["must be no more than 63 bytes"]
        );
        assert_eq!(label_value_errors("a$b").len(), 1);
    }
}
