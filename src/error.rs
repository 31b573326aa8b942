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
    #[error("cannot {action} {path}: {source}. {fix}", path = .path.display(), fix = io_fix(action))]
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

/// What to do about a failed file operation, by what was being done.
fn io_fix(action: &str) -> &'static str {
    if action.starts_with("read") || action.starts_with("list") {
        "Check that the path exists, is a file (or the folder asked for) and is readable."
    } else {
        "Check that the folder exists and is writable, and that the disk has room."
    }
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

/// Longest message [`Error::paragraph`] prints in full; longer ones (a huge cell echoed back)
/// keep their start (what and where) and end (the fix) around an ellipsis.
pub const MAX_MESSAGE_CHARS: usize = 1500;

impl Error {
    /// The message as the one paragraph a terminal shows: control characters (newlines,
    /// escape sequences) and bidirectional-text overrides that a hostile file could carry in
    /// an echoed cell are written as escapes (`\n`, `\u{1b}`), and an overlong message is
    /// shortened in the middle.
    pub fn paragraph(&self) -> String {
        one_paragraph(&self.to_string())
    }
}

/// See [`Error::paragraph`].
pub fn one_paragraph(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    let n = out.chars().count();
    if n <= MAX_MESSAGE_CHARS {
        return out;
    }
    let keep = MAX_MESSAGE_CHARS / 2 - 2;
    let head: String = out.chars().take(keep).collect();
    let tail: String = out.chars().skip(n - keep).collect();
    format!("{head} … {tail}")
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
    fn paragraphs_escape_control_characters_and_stay_short() {
        let e = Error::bad_input("cell `a\nb\u{1b}[31m\u{202e}x` is odd", "Fix it");
        let p = e.paragraph();
        assert_eq!(p, "cell `a\\nb\\u{1b}[31m\\u{202e}x` is odd. Fix it");
        let long = Error::bad_input("x".repeat(10_000), "Do this");
        let p = long.paragraph();
        assert!(p.chars().count() <= MAX_MESSAGE_CHARS + 3, "{}", p.len());
        assert!(p.ends_with("Do this"));
    }

    #[test]
    fn exit_codes_follow_design() {
        assert_eq!(Error::NoAdapter("x".into()).exit_code(), EXIT_NO_ADAPTER);
        assert_eq!(Error::bad_input("x", "y").exit_code(), EXIT_BAD_INPUT);
        assert_eq!(Error::Gpu("x".into()).exit_code(), EXIT_FAILED);
    }
}
