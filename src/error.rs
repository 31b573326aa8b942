//! Errors as data: every failure a user can see, with the exit code DESIGN.md assigns to it.
//!
//! Each variant renders as one readable paragraph: what went wrong, where (file:line:column
//! when a file is involved) and what to do about it. `main` prints it and exits with
//! [`Error::exit_code`]; nothing user-facing panics.

use std::path::PathBuf;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code for a regression or a failed verification.
pub const EXIT_FAILED: i32 = 1;
/// Exit code for bad input: arguments, shape specs, files.
pub const EXIT_BAD_INPUT: i32 = 2;
/// Exit code when no usable adapter exists.
pub const EXIT_NO_ADAPTER: i32 = 3;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An argument or value the user gave is malformed or out of range.
    #[error("{what}. {fix}")]
    BadInput { what: String, fix: String },

    /// A file the user gave (catalog, models, result folder) is malformed at a place.
    #[error("{path}:{line}:{column}: {what}. {fix}", path = .path.display())]
    BadFile {
        path: PathBuf,
        line: u64,
        column: u64,
        what: String,
        fix: String,
    },

    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}. Check that the path exists and is writable.", path = .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// No adapter at all, or none matching the user's selection.
    #[error("{0}")]
    NoAdapter(String),

    /// The device failed in a way that is not the user's input (device lost, out of memory).
    #[error("GPU error: {0}")]
    Gpu(String),
}

impl Error {
    /// A bad-input error with its fix.
    pub fn bad_input(what: impl Into<String>, fix: impl Into<String>) -> Self {
        Error::BadInput {
            what: what.into(),
            fix: fix.into(),
        }
    }

    /// An I/O error naming the action and the path.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The process exit code for this error (DESIGN.md: 2 bad input, 3 no adapter).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::BadInput { .. } | Error::BadFile { .. } | Error::Io { .. } => EXIT_BAD_INPUT,
            Error::NoAdapter(_) => EXIT_NO_ADAPTER,
            Error::Gpu(_) => EXIT_FAILED,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_file_names_the_place() {
        let e = Error::BadFile {
            path: "data/x.csv".into(),
            line: 3,
            column: 7,
            what: "price is negative".into(),
            fix: "Use a price of 0 or more".into(),
        };
        assert_eq!(
            e.to_string(),
            "data/x.csv:3:7: price is negative. Use a price of 0 or more"
        );
        assert_eq!(e.exit_code(), EXIT_BAD_INPUT);
    }

    #[test]
    fn exit_codes_follow_design() {
        assert_eq!(Error::NoAdapter("x".into()).exit_code(), EXIT_NO_ADAPTER);
        assert_eq!(Error::bad_input("x", "y").exit_code(), EXIT_BAD_INPUT);
        assert_eq!(Error::Gpu("x".into()).exit_code(), EXIT_FAILED);
    }
}
