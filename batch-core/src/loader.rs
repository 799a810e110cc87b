//! Loading manifests: YAML in every form a Kubernetes user writes, and JSON.
//!
//! A source may hold several documents separated by `---` (empty documents are skipped),
//! in block or flow style, with comments; a JSON source (one or more JSON values) is read
//! with a JSON parser, since the YAML reader does not accept every JSON text. Each
//! non-empty document becomes a [`Document`]. A document that cannot be read at all (bad
//! YAML, a field of the wrong type, a number out of range) makes the whole load fail with a
//! [`ParseError`] naming the source, line and column and, where known, the field.
//!
//! A readable document of another kind, or of another API version, is not a parse error: it
//! is returned with [`Document::problems`] saying what is wrong (field `kind` or
//! `apiVersion`), so a tool can report it next to the validation errors of the others.
//!
//! `batch/v1beta1` CronJobs (removed in Kubernetes 1.25) are rejected the way a current
//! cluster rejects them, with a message saying how to fix the manifest: change `apiVersion`
//! to `batch/v1` (the fields are the same). See `docs/decisions/0001-batch-v1beta1.md`.
//!
//! ```
//! use batch_core::loader;
//!
//! let docs = loader::load_str("
//! apiVersion: batch/v1
//! kind: Job
//! metadata: {name: a}
//! ---
//! ## a comment, then an empty document
//! ---
//! {\"apiVersion\": \"batch/v1\", \"kind\": \"CronJob\", \"metadata\": {\"name\": \"b\"},
//!  \"spec\": {\"schedule\": \"@hourly\"}}
//! ", "two.yaml").unwrap();
//! assert_eq!(docs.len(), 2);
//! assert_eq!(docs[1].kind, "CronJob");
//!
//! let err = loader::load_str("kind: Job\nspec:\n  completions: five\n", "bad.yaml").unwrap_err();
//! assert_eq!((err.line, err.column), (Some(3), Some(16)));
//! assert_eq!(err.path.as_deref(), Some("spec.completions"));
//! ```

use std::fmt;

use serde::Deserialize;

use crate::model::{API_VERSION, CronJob, Job, Manifest};
use crate::validation::{FieldError, FieldPath, ValidationErrors};

/// The largest source accepted, in bytes. Kubernetes itself stores objects of at most a
/// few MiB; anything much larger is a mistake, and is refused before it is parsed.
pub const MAX_SOURCE_BYTES: usize = 32 * 1024 * 1024;

/// One document of a manifest source.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Document {
    /// 0-based position among the non-empty documents of the source.
    pub index: usize,
    /// The document's `apiVersion` (`""` when absent or not a string).
    pub api_version: String,
    /// The document's `kind` (`""` when absent or not a string).
    pub kind: String,
    /// `metadata.name`, when the document has one.
    pub name: Option<String>,
    /// The typed object, for a Job or CronJob (of any API version).
    pub object: Option<Manifest>,
    /// Problems found while loading: an unsupported `kind` or `apiVersion`. Empty for a
    /// `batch/v1` Job or CronJob.
    pub problems: ValidationErrors,
}

/// UID given to a Job without one while [`Document::validate`] checks it. The API server
/// assigns a random UID on create; any non-empty value validates the same way.
pub const PLACEHOLDER_UID: &str = "00000000-0000-0000-0000-000000000000";

impl Document {
    /// Everything wrong with this document, as the API server would report it on a create:
    /// the loading problems (kind, apiVersion) first, then the validation errors of a
    /// defaulted copy of the object.
    ///
    /// A Job is prepared with [`crate::defaults::prepare_job_for_create`] (using
    /// [`PLACEHOLDER_UID`] when it has no UID); a CronJob with
    /// [`crate::defaults::default_cron_job`]. The document itself is not changed.
    pub fn validate(&self) -> ValidationErrors {
        let mut errors = self.problems.clone();
        let validated = match &self.object {
            Some(Manifest::Job(job)) => {
                let mut job = (**job).clone();
                crate::defaults::prepare_job_for_create(&mut job, PLACEHOLDER_UID);
                crate::validation::validate_job(&job)
            }
            Some(Manifest::CronJob(cron_job)) => {
                let mut cron_job = (**cron_job).clone();
                crate::defaults::default_cron_job(&mut cron_job);
                crate::validation::validate_cron_job(&cron_job)
            }
            None => Ok(()),
        };
        if let Err(more) = validated {
            errors.0.extend(more.0);
        }
        errors
    }
}

/// A source could not be read as manifests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub struct ParseError {
    /// Where the source came from (a file name, or a label such as `<stdin>`).
    pub origin: String,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// 1-based column of the problem, when known.
    pub column: Option<usize>,
    /// 0-based index of the document (among non-empty documents), when known.
    pub document: Option<usize>,
    /// The field the problem is in (`spec.completions`), when known.
    pub path: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.origin)?;
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, ": line {line}, column {column}")?,
            (Some(line), None) => write!(f, ": line {line}")?,
            _ => {
                if let Some(doc) = self.document {
                    write!(f, ": document {}", doc + 1)?;
                }
            }
        }
        if let Some(path) = &self.path {
            write!(f, ": {path}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl ParseError {
    fn new(origin: &str, message: impl Into<String>) -> Self {
        ParseError {
            origin: origin.to_owned(),
            line: None,
            column: None,
            document: None,
            path: None,
            message: message.into(),
        }
    }

    fn from_yaml(origin: &str, document: Option<usize>, err: &serde_norway::Error) -> Self {
        let mut e = ParseError::new(origin, yaml_message(err));
        e.document = document;
        if let Some(loc) = err.location() {
            e.line = Some(loc.line());
            e.column = Some(loc.column());
        }
        e
    }
}

/// The message of a YAML error without the position suffix the YAML library appends.
fn yaml_message(err: &serde_norway::Error) -> String {
    let mut text = err.to_string();
    if let Some(loc) = err.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.trim_end_matches(',').to_owned();
        }
    }
    if text.contains("tab character") {
        text.push_str(" (YAML indentation must use spaces, not tabs)");
    }
    text
}

/// Loads every document of a source given as bytes (as read from a file).
///
/// Checks the size limit and UTF-8 (a UTF-8 byte-order mark is skipped) before parsing.
///
/// # Errors
///
/// A [`ParseError`] when the source is too large, not UTF-8, or not readable as manifests.
pub fn load_bytes(bytes: &[u8], origin: &str) -> Result<Vec<Document>, ParseError> {
    load_str(decode(bytes, origin)?, origin)
}

/// Refuses a source larger than [`MAX_SOURCE_BYTES`] before it is parsed.
fn check_size(len: usize, origin: &str) -> Result<(), ParseError> {
    if len > MAX_SOURCE_BYTES {
        return Err(ParseError::new(
            origin,
            format!("the source is {len} bytes, more than the {MAX_SOURCE_BYTES} bytes accepted"),
        ));
    }
    Ok(())
}

/// Checks the size limit and UTF-8 of a source given as bytes (skipping a UTF-8 byte-order
/// mark), and returns it as text.
pub(crate) fn decode<'a>(bytes: &'a [u8], origin: &str) -> Result<&'a str, ParseError> {
    check_size(bytes.len(), origin)?;
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|err| {
        let valid = &bytes[..err.valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        // Columns count characters, as the YAML parser's do.
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count()
            + 1;
        let mut e = ParseError::new(
            origin,
            format!("invalid UTF-8 at byte {}", err.valid_up_to()),
        );
        e.line = Some(line);
        e.column = Some(column);
        e
    })
}

/// Reads a source that must hold exactly one non-empty document (YAML or JSON) straight
/// into `T`, with the line, column and field path of any error. `expected` says what the
/// document should be, for the message when it is empty.
pub(crate) fn parse_single<T: serde::de::DeserializeOwned>(
    src: &str,
    origin: &str,
    expected: &str,
) -> Result<T, ParseError> {
    check_size(src.len(), origin)?;
    let mut found = None;
    for (position, de) in serde_norway::Deserializer::from_str(src).enumerate() {
        let value = serde_norway::Value::deserialize(de)
            .map_err(|e| ParseError::from_yaml(origin, None, &e))?;
        if value.is_null() {
            continue;
        }
        if found.is_some() {
            return Err(ParseError::new(
                origin,
                "expected one document, found several (separated by ---)",
            ));
        }
        found = Some(position);
    }
    let Some(position) = found else {
        return Err(ParseError::new(
            origin,
            format!("empty document: expected {expected}"),
        ));
    };
    let Some(de) = serde_norway::Deserializer::from_str(src).nth(position) else {
        return Err(ParseError::new(origin, "the document cannot be read again"));
    };
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let mut out = ParseError::from_yaml(origin, Some(0), e.inner());
        // The YAML reader prefixes its message with (part of) the path: say it once.
        if let Some((head, rest)) = out.message.split_once(": ")
            && !head.contains(' ')
            && path.starts_with(head)
        {
            out.message = rest.to_owned();
        }
        out.path = (path != "." && !path.is_empty()).then_some(path);
        out
    })
}

/// Loads every document of a source.
///
/// # Errors
///
/// A [`ParseError`] when the source is too large, is not valid YAML, holds a document that
/// is not an object, or holds a Job or CronJob with a field of the wrong type or out of range.
pub fn load_str(src: &str, origin: &str) -> Result<Vec<Document>, ParseError> {
    check_size(src.len(), origin)?;
    if let Some(values) = json_documents(src) {
        let mut docs = Vec::new();
        for (position, value) in values.into_iter().enumerate() {
            let value = serde_norway::to_value(&value).map_err(|e| {
                let mut err = ParseError::new(origin, e.to_string());
                err.document = Some(position);
                err
            })?;
            let doc = document_from_value(value, position)
                .map_err(|err| locate_typed_error(src, origin, position, position, err, true))?;
            docs.push(doc);
        }
        return Ok(docs);
    }
    let mut docs = Vec::new();
    for (position, de) in serde_norway::Deserializer::from_str(src).enumerate() {
        let value = serde_norway::Value::deserialize(de)
            .map_err(|e| ParseError::from_yaml(origin, Some(docs.len()), &e))?;
        if value.is_null() {
            continue;
        }
        let index = docs.len();
        let doc = document_from_value(value, index)
            .map_err(|err| locate_typed_error(src, origin, position, index, err, false))?;
        docs.push(doc);
    }
    Ok(docs)
}

/// A source that is JSON (one or more JSON values, each starting with `{` or `[`) is read
/// with a JSON parser: the YAML reader accepts most JSON, but not all of it (keys longer
/// than 1024 characters, some control characters, U+0085). Anything else — including
/// flow-style YAML that merely looks like JSON — is read as YAML.
fn json_documents(src: &str) -> Option<Vec<serde_json::Value>> {
    let trimmed = src.trim_start_matches(|c: char| c.is_whitespace());
    if !(trimmed.starts_with('{') || trimmed.starts_with('[')) {
        return None;
    }
    serde_json::Deserializer::from_str(src)
        .into_iter::<serde_json::Value>()
        .collect::<Result<Vec<_>, _>>()
        .ok()
}

/// A typed-conversion failure before its position in the source is known.
struct TypedError {
    /// The field path of the problem, step by step (empty when unknown).
    segments: Vec<Segment>,
    path: Option<String>,
    message: String,
}

fn document_from_value(value: serde_norway::Value, index: usize) -> Result<Document, TypedError> {
    let serde_norway::Value::Mapping(map) = &value else {
        let found = match &value {
            serde_norway::Value::Sequence(_) => "a list",
            serde_norway::Value::Bool(_) => "a boolean",
            serde_norway::Value::Number(_) => "a number",
            serde_norway::Value::String(_) => "a string",
            _ => "a tagged value",
        };
        return Err(TypedError {
            segments: Vec::new(),
            path: None,
            message: format!(
                "expected an object with apiVersion and kind, found {found} (is the indentation right?)"
            ),
        });
    };
    let text = |key: &str| map.get(key).and_then(|v| v.as_str()).map(str::to_owned);
    let api_version = text("apiVersion").unwrap_or_default();
    let kind = text("kind").unwrap_or_default();
    let name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(|n| n.as_str())
        .map(str::to_owned);

    let mut problems = Vec::new();
    let object = match kind.as_str() {
        "Job" => Some(Manifest::Job(Box::new(typed::<Job>(value)?))),
        "CronJob" => Some(Manifest::CronJob(Box::new(typed::<CronJob>(value)?))),
        "" => {
            problems.push(FieldError::required(
                FieldPath::new("kind"),
                "every document needs a kind: Job or CronJob",
            ));
            None
        }
        other => {
            problems.push(FieldError::not_supported(
                FieldPath::new("kind"),
                other,
                &["Job", "CronJob"],
            ));
            None
        }
    };
    if object.is_some()
        && let Some(problem) = api_version_problem(&kind, &api_version)
    {
        problems.push(problem);
    }
    Ok(Document {
        index,
        api_version,
        kind,
        name,
        object,
        problems: ValidationErrors(problems),
    })
}

fn api_version_problem(kind: &str, api_version: &str) -> Option<FieldError> {
    let path = FieldPath::new("apiVersion");
    match api_version {
        API_VERSION => None,
        "" => Some(FieldError::required(
            path,
            format!("supported values: {API_VERSION:?}"),
        )),
        "batch/v1beta1" | "batch/v2alpha1" if kind == "CronJob" => {
            let mut e = FieldError::not_supported(path, api_version, &[API_VERSION]);
            e.detail.push_str(&format!(
                "; {api_version} CronJob was removed in Kubernetes 1.25: set apiVersion to batch/v1 (the fields are the same)"
            ));
            Some(e)
        }
        other => Some(FieldError::not_supported(path, other, &[API_VERSION])),
    }
}

fn typed<T: serde::de::DeserializeOwned>(value: serde_norway::Value) -> Result<T, TypedError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let segments = e
            .path()
            .iter()
            .filter_map(|segment| match segment {
                serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
                serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
                _ => None,
            })
            .collect();
        TypedError {
            segments,
            path: (path != "." && !path.is_empty()).then_some(path),
            message: yaml_message(e.inner()),
        }
    })
}

/// Finds where in the source a typed-conversion error is, and builds the final error.
///
/// The typed reading works on a parsed tree, which has no positions. So the document is
/// read again straight from the text, descending along the error's field path only; the
/// YAML reader attaches its position to the error raised on arrival.
fn locate_typed_error(
    src: &str,
    origin: &str,
    position: usize,
    index: usize,
    err: TypedError,
    json: bool,
) -> ParseError {
    let TypedError {
        segments,
        path,
        message,
    } = err;
    let mut out = ParseError::new(origin, message);
    out.document = Some(index);
    out.path = path;
    if json {
        let mut stream = serde_json::Deserializer::from_str(src);
        for _ in 0..position {
            if serde::de::IgnoredAny::deserialize(&mut stream).is_err() {
                return out;
            }
        }
        if let Err(e) = serde::de::DeserializeSeed::deserialize(Seek(&segments), &mut stream) {
            out.line = Some(e.line());
            out.column = Some(e.column());
        }
    } else if let Some(de) = serde_norway::Deserializer::from_str(src).nth(position)
        && let Err(e) = serde::de::DeserializeSeed::deserialize(Seek(&segments), de)
        && let Some(loc) = e.location()
    {
        out.line = Some(loc.line());
        out.column = Some(loc.column());
    }
    out
}

/// Fails on whatever value it is given: the reader then reports the value's own position.
struct Here;

impl<'de> serde::de::Visitor<'de> for Here {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("nothing (this only marks a position)")
    }
}

/// One step of a field path: a map key or a list index.
enum Segment {
    Key(String),
    Index(usize),
}

/// Descends along a field path and fails on arrival (see [`locate_typed_error`]).
struct Seek<'a>(&'a [Segment]);

impl<'de> serde::de::DeserializeSeed<'de> for Seek<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.0.is_empty() {
            // Reading the value with a visitor that accepts nothing fails at the value
            // itself, so the error carries the value's line and column.
            return d.deserialize_any(Here);
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Seek<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((Segment::Key(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        while let Some(key) = map.next_key::<serde_norway::Value>()? {
            if key.as_str() == Some(want.as_str()) {
                return map.next_value_seed(Seek(rest));
            }
            map.next_value::<serde::de::IgnoredAny>()?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((Segment::Index(want), rest)) = self.0.split_first() else {
            return Ok(());
        };
        for _ in 0..*want {
            if seq.next_element::<serde::de::IgnoredAny>()?.is_none() {
                return Ok(());
            }
        }
        seq.next_element_seed(Seek(rest)).map(|_| ())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
}
