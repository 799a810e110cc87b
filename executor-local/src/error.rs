//! The executor's private error enum and its conversion into [`executor::Error`].

use std::io;
use std::path::PathBuf;

use batch_core::executor::{self, ErrorKind};

/// What went wrong inside the local executor.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LocalError {
    /// A pod with that name exists (in memory or on disk).
    #[error("pod {0:?} exists already")]
    AlreadyExists(String),
    /// No pod with that name.
    #[error("no pod named {0:?}")]
    NotFound(String),
    /// The pod has no such container.
    #[error("pod {pod:?} has no container {container:?}")]
    NoContainer {
        /// The pod.
        pod: String,
        /// The container asked for.
        container: String,
    },
    /// A pod or container name that cannot be used as a file name.
    #[error("{what} name {name:?} cannot be used as a file name")]
    BadName {
        /// `pod` or `container`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// A filesystem operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done (`create`, `read`, `write`, …).
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// A pod record could not be encoded.
    #[error("cannot encode the record of pod {pod:?}")]
    Encode {
        /// The pod.
        pod: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
}

impl LocalError {
    /// An I/O error on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        LocalError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The portable error for operation `op`, keeping this one as the source.
    pub(crate) fn into_executor(self, op: &'static str) -> executor::Error {
        let kind = match &self {
            LocalError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            LocalError::NotFound(_) | LocalError::NoContainer { .. } => ErrorKind::NotFound,
            LocalError::BadName { .. } => ErrorKind::InvalidRequest,
            LocalError::Io { source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
                io::ErrorKind::NotFound => ErrorKind::NotFound,
                _ => ErrorKind::Other,
            },
            LocalError::Encode { .. } => ErrorKind::Other,
        };
        executor::Error::new(kind, op, self.to_string()).with_source(self)
    }
}

/// Checks that a name is usable as one path component.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), LocalError> {
    let bad = name.is_empty()
        || name == "."
        || name == ".."
        || name.contains(['/', '\0'])
        || name.starts_with('.');
    if bad {
        Err(LocalError::BadName {
            what,
            name: name.to_owned(),
        })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_portable_kinds_and_keep_their_source() {
        let e = LocalError::NotFound("p".into()).into_executor("delete");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(e.operation(), "delete");
        assert!(std::error::Error::source(&e).is_some());
        let io = LocalError::io(
            "create",
            "/x",
            io::Error::from(io::ErrorKind::PermissionDenied),
        );
        assert_eq!(
            io.into_executor("start").kind(),
            ErrorKind::PermissionDenied
        );
        assert!(check_name("pod", "../x").is_err());
        assert!(check_name("pod", ".hidden").is_err());
        assert!(check_name("pod", "job-0-abc").is_ok());
    }
}
