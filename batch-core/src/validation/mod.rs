//! Validation of Jobs and CronJobs exactly as the Kubernetes API server validates a create.
//!
//! Every problem is collected (validation never stops at the first), each as a
//! [`FieldError`] with the Kubernetes field path (`spec.template.spec.containers[0].image`),
//! the Kubernetes error type, the offending value and a detail message.
//!
//! Rules covered (paths shown for a Job; a CronJob's job template has them under
//! `spec.jobTemplate.spec`):
//!
//! - metadata: `name` (DNS-1123 subdomain; required unless `generateName` is set),
//!   `generateName`, `namespace` (DNS-1123 label when set), `labels` (qualified-name keys,
//!   label values), `annotations` (qualified-name keys, 256 KiB in total);
//! - the generated selector: `metadata.uid`, the four generated template labels,
//!   "`selector` not auto-generated"; `spec.selector` required, valid, and matching the
//!   template labels;
//! - every create rule of a Job spec: non-negative counts, `completionMode`, Indexed limits,
//!   `backoffLimitPerIndex`/`maxFailedIndexes`, `podFailurePolicy`, `successPolicy`
//!   (including the strict interval format of `succeededIndexes`), `podReplacementPolicy`,
//!   `managedBy`, the Indexed hostname rule on `metadata.name`, and `restartPolicy`
//!   (only `OnFailure` or `Never`; `Always` or empty is `FieldValueRequired` with the valid
//!   values, any other value `FieldValueNotSupported`);
//! - the pod template: labels and annotations (reported at `spec.template.labels` and
//!   `spec.template.annotations`, as Kubernetes does), containers and init containers
//!   (names, images, `restartPolicy`, environment, volume mounts, `imagePullPolicy`,
//!   resource names and quantities, requests within limits), volumes (names, exactly one
//!   source, `hostPath`, `downwardAPI`), `activeDeadlineSeconds`,
//!   `terminationGracePeriodSeconds`, `hostname`, `subdomain`;
//! - CronJobs: the name (at most 52 characters), `schedule` (robfig/cron syntax, no `TZ`),
//!   `timeZone`, `startingDeadlineSeconds`, `concurrencyPolicy`, history limits, the job
//!   template's `selector`/`manualSelector`, labels and annotations.
//!
//! Update-only rules (immutability) are not checked.
//!
//! Validation expects a defaulted object: run [`crate::defaults`] first
//! ([`crate::defaults::prepare_job_for_create`] for a Job about to be created), as the API
//! server does.
//!
//! ```
//! use batch_core::{defaults, model::Job, validation::{self, ErrorKind}};
//!
//! let mut job: Job = serde_json::from_str(r#"{"apiVersion": "batch/v1", "kind": "Job",
//!     "metadata": {"name": "pi"},
//!     "spec": {"completions": -1, "template": {"spec": {
//!         "containers": [{"name": "pi", "image": "perl"}]}}}}"#).unwrap();
//! defaults::prepare_job_for_create(&mut job, "uid-1");
//! let errors = validation::validate_job(&job).unwrap_err();
//! let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
//! assert!(paths.contains(&"spec.completions".to_string()));
//! // The empty restartPolicy was defaulted to Always, which a Job does not accept.
//! let restart = errors.iter().find(|e| e.path.to_string() == "spec.template.spec.restartPolicy").unwrap();
//! assert!(matches!(restart.kind, ErrorKind::Required));
//! assert_eq!(restart.detail, r#"valid values: "OnFailure", "Never""#);
//! ```

use std::fmt;

mod cronjob;
mod interval;
mod job;
mod meta;
mod pod;

pub use cronjob::validate_cron_job;
pub use interval::{IntervalError, parse_indexes_strict};
pub use job::validate_job;

/// A path to a field, printed the way Kubernetes prints it:
/// `spec.podFailurePolicy.rules[0].onExitCodes.values[1]`, `metadata.labels[app]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// A path starting at a top-level field (`metadata`, `spec`, …).
    pub fn new(root: &str) -> Self {
        FieldPath(root.to_owned())
    }

    /// The path of a child field.
    #[must_use]
    pub fn child(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_owned())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// The path of a list element.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path of a map entry.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of a validation error, mirroring Kubernetes' `field.ErrorType`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// `FieldValueRequired`: a required value is missing.
    Required,
    /// `FieldValueInvalid`: the value is malformed or out of range.
    Invalid,
    /// `FieldValueNotSupported`: the value is not one of the supported values.
    NotSupported {
        /// The supported values.
        allowed: Vec<String>,
    },
    /// `FieldValueForbidden`: the field may not be set (in this context).
    Forbidden,
    /// `FieldValueTooLong`: the value is too long.
    TooLong {
        /// The maximum length, in bytes.
        max: usize,
    },
    /// `FieldValueTooMany`: the list has too many items.
    TooMany {
        /// The maximum number of items.
        max: usize,
    },
    /// `FieldValueDuplicate`: the value repeats one that must be unique.
    Duplicate,
    /// `FieldValueNotFound`: the value refers to something that does not exist.
    NotFound,
}

impl ErrorKind {
    /// The Kubernetes error type name (`FieldValueRequired`, …).
    pub fn type_name(&self) -> &'static str {
        match self {
            ErrorKind::Required => "FieldValueRequired",
            ErrorKind::Invalid => "FieldValueInvalid",
            ErrorKind::NotSupported { .. } => "FieldValueNotSupported",
            ErrorKind::Forbidden => "FieldValueForbidden",
            ErrorKind::TooLong { .. } => "FieldValueTooLong",
            ErrorKind::TooMany { .. } => "FieldValueTooMany",
            ErrorKind::Duplicate => "FieldValueDuplicate",
            ErrorKind::NotFound => "FieldValueNotFound",
        }
    }

    /// The phrase `kubectl` prints for this type (`Required value`, `Invalid value`, …).
    pub fn phrase(&self) -> &'static str {
        match self {
            ErrorKind::Required => "Required value",
            ErrorKind::Invalid => "Invalid value",
            ErrorKind::NotSupported { .. } => "Unsupported value",
            ErrorKind::Forbidden => "Forbidden",
            ErrorKind::TooLong { .. } => "Too long",
            ErrorKind::TooMany { .. } => "Too many",
            ErrorKind::Duplicate => "Duplicate value",
            ErrorKind::NotFound => "Not found",
        }
    }
}

/// One validation problem.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    /// Where the problem is.
    pub path: FieldPath,
    /// What kind of problem it is.
    pub kind: ErrorKind,
    /// The offending value, when there is one to show.
    pub bad_value: Option<serde_json::Value>,
    /// Human-readable detail (may be empty).
    pub detail: String,
}

impl FieldError {
    /// `Required value`, with a detail (may be empty).
    pub fn required(path: FieldPath, detail: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Required, None, detail)
    }

    /// `Invalid value`.
    pub fn invalid(
        path: FieldPath,
        bad_value: impl Into<serde_json::Value>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(path, ErrorKind::Invalid, Some(bad_value.into()), detail)
    }

    /// `Unsupported value`; the detail lists the supported values as Kubernetes does.
    pub fn not_supported(
        path: FieldPath,
        bad_value: impl Into<serde_json::Value>,
        allowed: &[&str],
    ) -> Self {
        let detail = format!(
            "supported values: {}",
            allowed
                .iter()
                .map(|v| format!("{v:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Self::new(
            path,
            ErrorKind::NotSupported {
                allowed: allowed.iter().map(|s| (*s).to_owned()).collect(),
            },
            Some(bad_value.into()),
            detail,
        )
    }

    /// `Forbidden`.
    pub fn forbidden(path: FieldPath, detail: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Forbidden, None, detail)
    }

    /// `Invalid value` where Kubernetes shows no value (its `OmitValueType`).
    pub fn invalid_without_value(path: FieldPath, detail: impl Into<String>) -> Self {
        Self::new(path, ErrorKind::Invalid, None, detail)
    }

    /// `Too long`: the value is longer than `max` bytes.
    pub fn too_long(path: FieldPath, bad_value: impl Into<serde_json::Value>, max: usize) -> Self {
        let unit = if max == 1 { "byte" } else { "bytes" };
        Self::new(
            path,
            ErrorKind::TooLong { max },
            Some(bad_value.into()),
            format!("may not be more than {max} {unit}"),
        )
    }

    /// `Too many`: a list of `actual` items where at most `max` are allowed.
    pub fn too_many(path: FieldPath, actual: usize, max: usize) -> Self {
        let unit = if max == 1 { "item" } else { "items" };
        Self::new(
            path,
            ErrorKind::TooMany { max },
            Some(actual.into()),
            format!("must have at most {max} {unit}"),
        )
    }

    /// `Duplicate value`.
    pub fn duplicate(path: FieldPath, bad_value: impl Into<serde_json::Value>) -> Self {
        Self::new(path, ErrorKind::Duplicate, Some(bad_value.into()), "")
    }

    /// `Not found`.
    pub fn not_found(path: FieldPath, bad_value: impl Into<serde_json::Value>) -> Self {
        Self::new(path, ErrorKind::NotFound, Some(bad_value.into()), "")
    }

    fn new(
        path: FieldPath,
        kind: ErrorKind,
        bad_value: Option<serde_json::Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            path,
            kind,
            bad_value,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for FieldError {
    /// Kubernetes' format: `spec.completions: Invalid value: -1: must be greater than or equal to 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.kind.phrase())?;
        let shows_value = !matches!(
            self.kind,
            ErrorKind::Required | ErrorKind::Forbidden | ErrorKind::TooLong { .. }
        );
        // Strings are quoted, everything else printed as JSON.
        if shows_value && let Some(value) = &self.bad_value {
            write!(f, ": {value}")?;
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        Ok(())
    }
}

/// Every validation problem of one object, in the order Kubernetes reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// The errors.
    pub fn iter(&self) -> std::slice::Iter<'_, FieldError> {
        self.0.iter()
    }

    /// Whether there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of errors.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// `Ok(())` when empty, else `Err(self)`.
    ///
    /// # Errors
    ///
    /// Returns `self` when it holds at least one error.
    pub fn into_result(self) -> Result<(), ValidationErrors> {
        if self.0.is_empty() { Ok(()) } else { Err(self) }
    }
}

impl<'a> IntoIterator for &'a ValidationErrors {
    type Item = &'a FieldError;
    type IntoIter = std::slice::Iter<'a, FieldError>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for ValidationErrors {
    /// `kubectl`'s form: `[first, second]`, or the single error alone.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [] => f.write_str("no validation errors"),
            [one] => write!(f, "{one}"),
            many => {
                f.write_str("[")?;
                for (i, e) in many.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl std::error::Error for ValidationErrors {}

/// Quotes a string the way Go's `strconv.Quote` (`%q`) does, for messages that embed values.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                let n = c as u32;
                if n <= 0xffff {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Formats a list of strings as Go's `%q` prints a `[]string`: `["a" "b"]`.
pub(crate) fn go_quote_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn go_quote_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b"), r#""a\"b""#);
        assert_eq!(go_quote("tab\there"), r#""tab\there""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("µs"), "\"µs\"");
        assert_eq!(go_quote_list(&["In", "NotIn"]), r#"["In" "NotIn"]"#);
    }

    #[test]
    fn too_long_and_too_many_use_singular_for_one() {
        let p = FieldPath::new("x");
        assert_eq!(
            FieldError::too_long(p.clone(), "ab", 1).detail,
            "may not be more than 1 byte"
        );
        assert_eq!(
            FieldError::too_many(p, 2, 1).detail,
            "must have at most 1 item"
        );
    }
}
