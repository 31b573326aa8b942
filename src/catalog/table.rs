//! Strict CSV reading for the data files (instances, accelerators, models): header checks and
//! typed cells whose every failure is an [`Error::BadFile`] with the file, the 1-based line and
//! column, what the cell held and what was expected.
//!
//! Cells are parsed by hand rather than through serde's `Deserialize` because serde's errors
//! cannot say *which* rule a value broke ("a price must be above 0, leave the cell empty when
//! unknown"); the rows we write out are still serde-serialized.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;

use crate::catalog::names;
use crate::error::{Error, Result};

/// One data file: where it came from (a path, or a label for the embedded defaults) and its bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    pub path: &'a Path,
    pub bytes: &'a [u8],
}

/// The columns a file may have. Column order in the file is free; names are case-insensitive.
pub(crate) struct Schema {
    pub required: &'static [&'static str],
    pub optional: &'static [&'static str],
    /// What the file is, for messages ("instance price file").
    pub what: &'static str,
}

/// The largest number a price, peak or size cell may hold: anything above is a typo or a
/// unit mix-up (no instance costs a billion dollars an hour, no chip has a billion TFLOPS).
pub(crate) const PLAUSIBLE_MAX: f64 = 1e9;

/// One data row with its position.
pub(crate) struct Record<'a> {
    path: &'a Path,
    line: u64,
    /// (header name, 1-based column, cell text) for every column the file has.
    cells: Vec<(&'static str, u64, String)>,
}

/// Reads every row of `src` against `schema`. Empty lines and lines starting with `#` are skipped.
pub(crate) fn read<'a>(src: Source<'a>, schema: &Schema) -> Result<Vec<Record<'a>>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(src.bytes);
    let mut records = reader.records();

    let header = match records.next() {
        None => {
            return Err(bad(
                src.path,
                1,
                1,
                format!("the {} is empty", schema.what),
                format!(
                    "Start it with the header row `{}`",
                    schema.required.join(",")
                ),
            ))
        }
        Some(r) => r.map_err(|e| csv_error(src.path, e))?,
    };
    let header_line = header.position().map_or(1, |p| p.line());
    let mut columns: Vec<&'static str> = Vec::with_capacity(header.len());
    for (i, name) in header.iter().enumerate() {
        let col = i as u64 + 1;
        let lower = name.trim_start_matches('\u{feff}').to_ascii_lowercase();
        let known = schema
            .required
            .iter()
            .chain(schema.optional)
            .find(|c| **c == lower)
            .copied();
        let Some(known) = known else {
            let all: Vec<&str> = schema
                .required
                .iter()
                .chain(schema.optional)
                .copied()
                .collect();
            let hint = names::closest_name(&lower, all.iter().copied())
                .map(|s| format!("Did you mean `{s}`? "))
                .unwrap_or_default();
            return Err(bad(
                src.path,
                header_line,
                col,
                format!("unknown column `{name}` in the {}", schema.what),
                format!("{hint}Known columns: {}", all.join(", ")),
            ));
        };
        if columns.contains(&known) {
            return Err(bad(
                src.path,
                header_line,
                col,
                format!("column `{known}` appears twice in the header"),
                "Keep one of them",
            ));
        }
        columns.push(known);
    }
    for req in schema.required {
        if !columns.contains(req) {
            return Err(bad(
                src.path,
                header_line,
                columns.len() as u64 + 1,
                format!("the header has no `{req}` column"),
                format!(
                    "The {} needs the columns {}",
                    schema.what,
                    schema.required.join(", ")
                ),
            ));
        }
    }

    let mut out = Vec::new();
    for rec in records {
        let rec = rec.map_err(|e| csv_error(src.path, e))?;
        let line = rec.position().map_or(1, |p| p.line());
        if rec.len() == 1 && rec.get(0).is_some_and(str::is_empty) {
            continue; // a line of whitespace only
        }
        if rec.len() != columns.len() {
            return Err(bad(
                src.path,
                line,
                rec.len().min(columns.len()) as u64 + 1,
                format!(
                    "this row has {} cells but the header has {}",
                    rec.len(),
                    columns.len()
                ),
                "Give every row one cell per header column; quote cells that contain commas",
            ));
        }
        // Control characters (newlines, terminal escape sequences) have no place in a
        // catalog cell and would reach tables and terminals as they are.
        if let Some((i, c)) = rec
            .iter()
            .enumerate()
            .find_map(|(i, v)| v.chars().find(|c| c.is_control()).map(|c| (i, c)))
        {
            return Err(bad(
                src.path,
                line,
                i as u64 + 1,
                format!(
                    "cell {} holds the control character U+{:04X}",
                    i + 1,
                    u32::from(c)
                ),
                "Remove line breaks, tabs and escape sequences from the cell",
            ));
        }
        let cells = columns
            .iter()
            .zip(rec.iter())
            .enumerate()
            .map(|(i, (c, v))| (*c, i as u64 + 1, v.to_string()))
            .collect();
        out.push(Record {
            path: src.path,
            line,
            cells,
        });
    }
    Ok(out)
}

fn csv_error(path: &Path, e: csv::Error) -> Error {
    let (line, column) = match e.kind() {
        csv::ErrorKind::Utf8 { pos, err } => {
            (pos.as_ref().map_or(1, |p| p.line()), err.field() as u64 + 1)
        }
        _ => (e.position().map_or(1, |p| p.line()), 1),
    };
    bad(
        path,
        line,
        column,
        format!("cannot read this CSV row ({e})"),
        "Save the file as UTF-8 CSV with a header row",
    )
}

pub(crate) fn bad(
    path: &Path,
    line: u64,
    column: u64,
    what: impl Into<String>,
    fix: impl Into<String>,
) -> Error {
    Error::BadFile {
        path: PathBuf::from(path),
        line,
        column,
        what: what.into(),
        fix: fix.into(),
    }
}

impl Record<'_> {
    pub fn line(&self) -> u64 {
        self.line
    }

    fn find(&self, col: &str) -> Option<&(&'static str, u64, String)> {
        self.cells.iter().find(|(c, _, _)| *c == col)
    }

    /// Whether the file has the (optional) column `col`.
    pub fn has(&self, col: &str) -> bool {
        self.find(col).is_some()
    }

    /// The cell's text, "" when the (optional) column is absent.
    pub fn text(&self, col: &str) -> &str {
        self.find(col).map_or("", |(_, _, v)| v.as_str())
    }

    /// 1-based column of `col` (the first column past the row when the column is absent).
    pub fn column(&self, col: &str) -> u64 {
        self.find(col)
            .map_or(self.cells.len() as u64 + 1, |(_, c, _)| *c)
    }

    /// An error located at this row's `col` cell.
    pub fn error(&self, col: &str, what: impl Into<String>, fix: impl Into<String>) -> Error {
        bad(self.path, self.line, self.column(col), what, fix)
    }

    pub fn required(&self, col: &str, expected: &str) -> Result<String> {
        let v = self.text(col);
        if v.is_empty() {
            return Err(self.error(
                col,
                format!("`{col}` is empty"),
                format!("Expected {expected}"),
            ));
        }
        Ok(v.to_string())
    }

    pub fn optional_text(&self, col: &str) -> Option<String> {
        let v = self.text(col);
        (!v.is_empty()).then(|| v.to_string())
    }

    /// A finite number strictly above 0 (prices, sizes, peaks), or None for an empty cell.
    /// Zero is refused: an unknown value is an empty cell, and a zero price or peak would
    /// silently produce a free or infinite result downstream.
    pub fn positive_f64(&self, col: &str, expected: &str) -> Result<Option<f64>> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        let fix = format!("Expected {expected}: a plain number above 0 such as 1.25 (no currency sign or thousands separator), or an empty cell when unknown");
        let x: f64 = v.parse().map_err(|_| {
            self.error(col, format!("`{col}` = `{v}` is not a number"), fix.clone())
        })?;
        if !x.is_finite() {
            return Err(self.error(col, format!("`{col}` = `{v}` is not a finite number"), fix));
        }
        if x <= 0.0 {
            return Err(self.error(col, format!("`{col}` = `{v}` is not above 0"), fix));
        }
        if x > PLAUSIBLE_MAX {
            return Err(self.error(
                col,
                format!("`{col}` = `{v}` is implausibly large (above {PLAUSIBLE_MAX:e})"),
                format!("Expected {expected}; a number this large is a typo or a unit mix-up"),
            ));
        }
        Ok(Some(x))
    }

    /// A whole number in `min..=u32::MAX`, or None for an empty cell.
    pub fn opt_u32(&self, col: &str, min: u32, expected: &str) -> Result<Option<u32>> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        let fix = format!("Expected {expected}: a whole number of at least {min}");
        let x: u32 = v.parse().map_err(|_| {
            let what = if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
                format!("`{col}` = `{v}` is too large (at most {})", u32::MAX)
            } else {
                format!("`{col}` = `{v}` is not a whole number")
            };
            self.error(col, what, fix.clone())
        })?;
        if x < min {
            return Err(self.error(col, format!("`{col}` = `{v}` is below {min}"), fix));
        }
        Ok(Some(x))
    }

    pub fn u32(&self, col: &str, min: u32, expected: &str) -> Result<u32> {
        self.opt_u32(col, min, expected)?.ok_or_else(|| {
            self.error(
                col,
                format!("`{col}` is empty"),
                format!("Expected {expected}: a whole number of at least {min}"),
            )
        })
    }

    pub fn bool(&self, col: &str) -> Result<bool> {
        match self.text(col).to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            v => Err(self.error(
                col,
                format!("`{col}` = `{v}` is not true or false"),
                "Write true or false",
            )),
        }
    }

    /// One of `choices` (case-insensitive), returned lowercased.
    pub fn choice(&self, col: &str, choices: &[&str]) -> Result<String> {
        let v = self.text(col).to_ascii_lowercase();
        if choices.contains(&v.as_str()) {
            return Ok(v);
        }
        Err(self.error(
            col,
            format!(
                "`{col}` = `{}` is not one of the allowed values",
                self.text(col)
            ),
            format!("Write one of: {}", choices.join(", ")),
        ))
    }

    /// An ISO date `YYYY-MM-DD`, or None for an empty cell (a source without a date).
    pub fn opt_date(&self, col: &str) -> Result<Option<NaiveDate>> {
        let v = self.text(col);
        if v.is_empty() {
            return Ok(None);
        }
        parse_iso_date(v).map(Some).ok_or_else(|| {
            self.error(
                col,
                format!("`{col}` = `{v}` is not a date"),
                "Expected an ISO date YYYY-MM-DD (e.g. 2026-01-21), or an empty cell when the source has no date (say so in `source`)",
            )
        })
    }
}

/// `YYYY-MM-DD` exactly (chrono alone would also take unpadded months and days).
pub(crate) fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}
