//! Result sets read back from disk, for `compare`, `merge` and `export`.
//!
//! A path given to those commands may be:
//! - a run folder (it has `run.json`): `priceperf run --out`, `cargo bench`'s
//!   `results/latest`, or a committed baseline `results/baselines/<adapter>/`;
//! - a folder of such folders, at any depth up to [`MAX_DEPTH`]: `results/runs/`,
//!   `results/baselines/`, or a folder written by `priceperf merge` (`runs/<run id>/` plus
//!   `merged.json`).
//!
//! Each run is read whole: `run.json` (required: it carries the run id), `kernels.csv`,
//! and, when present, `tokens.csv`, `costs.csv` and `samples.jsonl`. The token and cost
//! tables are read by column name ([`Table`]) so that folders written before or after a
//! column was added still load. This module also owns the natural key of a kernel row
//! ([`NaturalKey`]), the identity that `compare` and `merge` match rows by.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::history::{self, SampleLine};
use crate::results::{self, csv_cells, KernelRow, RunInfo};

/// File names inside a run folder.
pub const RUN_JSON: &str = "run.json";
pub const KERNELS_CSV: &str = "kernels.csv";
pub const TOKENS_CSV: &str = "tokens.csv";
pub const COSTS_CSV: &str = "costs.csv";
pub const SAMPLES_JSONL: &str = "samples.jsonl";
pub const RESULTS_JSON: &str = "results.json";

/// How deep [`load`] looks for run folders below the path it was given.
pub const MAX_DEPTH: usize = 4;

/// The identity of a kernel row across runs and machines: the same benchmark, variant,
/// shape and dtype on the same adapter and driver.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NaturalKey {
    pub benchmark: String,
    pub variant: String,
    pub shape: String,
    pub dtype: String,
    pub adapter: String,
    pub driver: String,
}

impl NaturalKey {
    pub fn of(row: &KernelRow) -> NaturalKey {
        NaturalKey {
            benchmark: row.benchmark.clone(),
            variant: row.variant.clone(),
            shape: row.shape.clone(),
            dtype: row.dtype.to_string(),
            adapter: row.adapter.clone(),
            driver: row.driver.clone(),
        }
    }

    /// `benchmark/variant`, the text per-benchmark thresholds match against.
    pub fn id(&self) -> String {
        format!("{}/{}", self.benchmark, self.variant)
    }
}

impl fmt::Display for NaturalKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} on {} ({})",
            self.benchmark, self.variant, self.adapter, self.driver
        )
    }
}

/// A CSV table read by column name: the header and every row's cells as text, with the
/// `'` that [`csv_cells::escape_text`] adds removed again.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub path: PathBuf,
    pub header: Vec<String>,
    pub rows: Vec<TableRow>,
}

/// One data row of a [`Table`], with the line it started on (for error messages).
#[derive(Debug, Clone, PartialEq)]
pub struct TableRow {
    pub line: u64,
    pub cells: Vec<String>,
}

impl Table {
    /// Read a CSV file with a header row; every row must have the header's cell count.
    pub fn read(path: &Path) -> Result<Table> {
        let text = results::read_text(path)?;
        Table::parse(path, text.trim_start_matches('\u{feff}'))
    }

    /// Parse CSV text; `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Table> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad_file(path, 1, 1, format!("unreadable header: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        if header.iter().all(String::is_empty) {
            return Err(bad_file(path, 1, 1, "the header row is empty".into()));
        }
        let mut rows = Vec::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(1, |p| p.line());
                bad_file(path, line, 1, format!("malformed CSV: {e}"))
            })?;
            let line = record.position().map_or(1, |p| p.line());
            if record.len() != header.len() {
                return Err(bad_file(
                    path,
                    line,
                    record.len().min(header.len()) as u64 + 1,
                    format!(
                        "{} cells, but the header has {}",
                        record.len(),
                        header.len()
                    ),
                ));
            }
            rows.push(TableRow {
                line,
                cells: record.iter().map(csv_cells::unescape_text).collect(),
            });
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            rows,
        })
    }

    /// Index of a column by name.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.header.iter().position(|h| h == name)
    }

    /// Fail with a file:line:column error unless every named column exists.
    pub fn require(&self, names: &[&str]) -> Result<()> {
        for name in names {
            if self.column(name).is_none() {
                return Err(bad_file(
                    &self.path,
                    1,
                    self.header.len() as u64 + 1,
                    format!(
                        "column `{name}` is missing (the header has: {})",
                        self.header.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A cell as text; empty when the column does not exist.
    pub fn text<'a>(&self, row: &'a TableRow, name: &str) -> &'a str {
        self.column(name)
            .and_then(|i| row.cells.get(i))
            .map_or("", String::as_str)
    }

    /// A cell as a number: `None` when empty or the column does not exist; an error naming
    /// file, line and column when it is not a finite number.
    pub fn number(&self, row: &TableRow, name: &str) -> Result<Option<f64>> {
        let Some(i) = self.column(name) else {
            return Ok(None);
        };
        let s = row.cells[i].trim();
        if s.is_empty() {
            return Ok(None);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Some(v)),
            _ => Err(bad_file(
                &self.path,
                row.line,
                i as u64 + 1,
                format!("`{s}` in column `{name}` is not a number"),
            )),
        }
    }
}

/// One run as read from its folder.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub info: RunInfo,
    pub kernels: Vec<KernelRow>,
    /// `tokens.csv`, when the run wrote one.
    pub tokens: Option<Table>,
    /// `costs.csv`, when the run wrote one.
    pub costs: Option<Table>,
    /// `samples.jsonl` by natural key (empty when the run kept no samples).
    pub samples: BTreeMap<NaturalKey, SampleLine>,
}

impl Run {
    /// The stored per-iteration samples of a row, if the run kept them.
    pub fn samples_of(&self, key: &NaturalKey) -> Option<&[f64]> {
        self.samples.get(key).map(|s| s.samples_ns.as_slice())
    }
}

/// Read one run folder (it must hold `run.json`).
pub fn load_run(dir: &Path) -> Result<Run> {
    let run_json = dir.join(RUN_JSON);
    if !run_json.is_file() {
        return Err(Error::bad_input(
            format!(
                "{} is not a result folder: it has no {RUN_JSON}",
                dir.display()
            ),
            "Point at a folder written by `priceperf run`, `cargo bench` or `priceperf merge`.",
        ));
    }
    let info = crate::runner::read_run_info(&run_json)?;
    let kernels_csv = dir.join(KERNELS_CSV);
    let kernels = if kernels_csv.is_file() {
        results::read_kernel_rows(&kernels_csv)?
    } else {
        Vec::new()
    };
    let optional_table = |name: &str| -> Result<Option<Table>> {
        let path = dir.join(name);
        if path.is_file() {
            Table::read(&path).map(Some)
        } else {
            Ok(None)
        }
    };
    let tokens = optional_table(TOKENS_CSV)?;
    let costs = optional_table(COSTS_CSV)?;
    let samples_path = dir.join(SAMPLES_JSONL);
    let samples = if samples_path.is_file() {
        history::read_samples(&samples_path)?
            .into_iter()
            .map(|s| (s.key.clone(), s))
            .collect()
    } else {
        BTreeMap::new()
    };
    Ok(Run {
        dir: dir.to_path_buf(),
        info,
        kernels,
        tokens,
        costs,
        samples,
    })
}

/// Every run in `path`: the run itself, or the run folders below it (sorted by path).
pub fn load(path: &Path) -> Result<Vec<Run>> {
    if !path.exists() {
        return Err(Error::bad_input(
            format!("{} does not exist", path.display()),
            "Give the path of a result folder (e.g. results/latest) or a folder of them.",
        ));
    }
    if !path.is_dir() {
        return Err(Error::bad_input(
            format!("{} is a file, not a result folder", path.display()),
            "Give the folder that holds run.json and kernels.csv.",
        ));
    }
    let mut dirs = Vec::new();
    find_run_dirs(path, 0, &mut dirs)?;
    if dirs.is_empty() {
        return Err(Error::bad_input(
            format!(
                "{} holds no result folder (no {RUN_JSON} in it or in the folders below it)",
                path.display()
            ),
            "Point at a folder written by `priceperf run`, `cargo bench` or `priceperf merge`.",
        ));
    }
    dirs.iter().map(|d| load_run(d)).collect()
}

/// Every run of every path, in the order given.
pub fn load_all(paths: &[PathBuf]) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    for p in paths {
        runs.extend(load(p)?);
    }
    Ok(runs)
}

fn find_run_dirs(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    if dir.join(RUN_JSON).is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    if depth >= MAX_DEPTH {
        return Ok(());
    }
    let mut subdirs: Vec<PathBuf> = fs::read_dir(dir)
        .map_err(|e| Error::io("list", dir, e))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name != "criterion"
        })
        .map(|e| e.path())
        .collect();
    subdirs.sort();
    for d in subdirs {
        find_run_dirs(&d, depth + 1, out)?;
    }
    Ok(())
}

pub(crate) fn bad_file(path: &Path, line: u64, column: u64, what: String) -> Error {
    Error::BadFile {
        path: path.to_path_buf(),
        line,
        column,
        what,
        fix: "This file is written by priceperf; restore it from a copy or rerun the benchmarks"
            .into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_read_by_column_name() {
        let t = Table::parse(
            Path::new("tokens.csv"),
            "model,tokens_per_s,note\nllama,12.5,'=x\nmistral,,plain\n",
        )
        .unwrap();
        assert_eq!(t.rows.len(), 2);
        assert_eq!(t.text(&t.rows[0], "model"), "llama");
        assert_eq!(t.text(&t.rows[0], "note"), "=x", "escape removed");
        assert_eq!(t.number(&t.rows[0], "tokens_per_s").unwrap(), Some(12.5));
        assert_eq!(t.number(&t.rows[1], "tokens_per_s").unwrap(), None);
        assert_eq!(t.number(&t.rows[1], "absent").unwrap(), None);
        assert!(t.require(&["model", "tokens_per_s"]).is_ok());
        let err = t.require(&["usd_per_mtok"]).unwrap_err().to_string();
        assert!(
            err.contains("tokens.csv:1:4") && err.contains("usd_per_mtok"),
            "{err}"
        );
    }

    #[test]
    fn bad_table_cells_name_line_and_column() {
        let t = Table::parse(Path::new("costs.csv"), "a,b\n1,2\n3,fast\n").unwrap();
        let err = t.number(&t.rows[1], "b").unwrap_err().to_string();
        assert!(err.starts_with("costs.csv:3:2:"), "{err}");
        let err = Table::parse(Path::new("costs.csv"), "a,b\n1,2,3\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("costs.csv:2:3:"), "{err}");
    }

    #[test]
    fn missing_and_empty_folders_are_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(&dir.path().join("nope")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let err = load(dir.path()).unwrap_err();
        assert!(err.to_string().contains("holds no result folder"), "{err}");
    }
}
