//! Exports of result sets for spreadsheets, programs and regression trackers
//! (`priceperf export DIR... --format ...`).
//!
//! - `csv`: spreadsheet-safe tables (DESIGN.md): a header row with units in the column
//!   names, empty cells for missing or non-finite numbers, text cells that a spreadsheet
//!   would run as a formula prefixed with `'`, UTF-8 (optionally with a BOM for Excel).
//!   Each row carries the run it came from (`run_id`, `host`), so many runs make one sheet.
//! - `json` (one document) and `jsonl` (one object per line, with a `table` field).
//! - `md`: Markdown tables.
//! - `bmf`: Bencher Metric Format, `{benchmark: {measure: {value, lower_value,
//!   upper_value}}}` with the measures `latency` (ns) and `throughput` (FLOP/s for kernels,
//!   tokens/s for token rates) and `usd-per-mtok`; bounds are the 95% intervals.
//! - `gab`: github-action-benchmark's custom JSON, `[{name, unit, value, range, extra}]`, in
//!   two files because the action judges direction per file: `gab-bigger.json`
//!   (`customBiggerIsBetter`: GFLOP/s, tokens/s) and `gab-smaller.json`
//!   (`customSmallerIsBetter`: ns, USD/Mtok).
//!
//! Only verified, measured rows go to the tracker formats; the others keep every row.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::compare::{fmt_ns, md_text};
use crate::dataset::{Run, Table};
use crate::error::{Error, Result};
use crate::out_path::{refuse_input_overlap, Target};
use crate::results::csv_cells::{escape_text, Cell, CsvRow};
use crate::results::{write_atomic, KernelRow, Status};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// Bencher Metric Format (JSON).
    Bmf,
    /// github-action-benchmark custom JSON: two files in --out DIR.
    Gab,
    /// Spreadsheet-safe CSV.
    Csv,
    /// One JSON document.
    Json,
    /// One JSON object per line.
    Jsonl,
    /// Markdown tables.
    Md,
}

/// Which table a CSV export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TableName {
    Kernels,
    Tokens,
    Costs,
    /// Every table, one file each (needs --out DIR).
    All,
}

/// File names of the github-action-benchmark export.
pub const GAB_BIGGER: &str = "gab-bigger.json";
pub const GAB_SMALLER: &str = "gab-smaller.json";

/// Columns of `tokens.csv` and `costs.csv` that are text even when they look like numbers.
const TEXT_COLUMNS: &[&str] = &[
    "run_id",
    "host",
    "adapter",
    "model",
    "phase",
    "accelerator",
    "provider",
    "instance",
    "region",
    "tier",
    "price_as_of",
    "basis",
    "note",
];

// ---------------------------------------------------------------------------------------
// Names for tracker formats

/// How rows of one run are told apart from other runs' rows in tracker names: nothing for
/// a single run, the adapter when each run has its own, else adapter and run id.
fn qualifiers(runs: &[Run]) -> Vec<String> {
    if runs.len() <= 1 {
        return vec![String::new(); runs.len()];
    }
    let adapters: BTreeSet<&str> = runs.iter().map(|r| r.info.adapter.name.as_str()).collect();
    runs.iter()
        .map(|r| {
            if adapters.len() == runs.len() {
                format!(" [{}]", r.info.adapter.name)
            } else {
                format!(" [{}, {}]", r.info.adapter.name, r.info.run_id)
            }
        })
        .collect()
}

fn kernel_name(row: &KernelRow, q: &str) -> String {
    format!("{}/{}{q}", row.benchmark, row.variant)
}

fn tokens_name(t: &Table, row: &crate::dataset::TableRow, q: &str) -> String {
    let mut parts = vec![
        "tokens".to_string(),
        t.text(row, "model").to_string(),
        t.text(row, "phase").to_string(),
    ];
    parts.extend(case_params(t, row));
    format!("{}{q}", parts.join("/"))
}

/// `batch=1,prompt=512` (the columns a token rate depends on beyond model and phase), as
/// one name part; none where the file has no such columns.
fn case_params(t: &Table, row: &crate::dataset::TableRow) -> Option<String> {
    let mut params = Vec::new();
    for (col, label) in [
        ("batch", "batch"),
        ("prompt_len", "prompt"),
        ("context_len", "context"),
    ] {
        let v = t.text(row, col);
        if !v.is_empty() {
            params.push(format!("{label}={v}"));
        }
    }
    (!params.is_empty()).then(|| params.join(","))
}

fn cost_name(t: &Table, row: &crate::dataset::TableRow, q: &str) -> String {
    let mut parts = vec![
        "cost".to_string(),
        t.text(row, "model").to_string(),
        t.text(row, "phase").to_string(),
    ];
    parts.extend(case_params(t, row));
    for col in ["provider", "instance", "region", "tier", "basis"] {
        let v = t.text(row, col);
        if !v.is_empty() {
            parts.push(v.to_string());
        }
    }
    format!("{}{q}", parts.join("/"))
}

/// Names must be unique in a tracker file; a repeat gets ` #2`, ` #3`...
struct UniqueNames(BTreeMap<String, usize>);

impl UniqueNames {
    fn new() -> Self {
        UniqueNames(BTreeMap::new())
    }
    fn take(&mut self, name: String) -> String {
        let n = self.0.entry(name.clone()).or_insert(0);
        *n += 1;
        if *n == 1 {
            name
        } else {
            format!("{name} #{n}")
        }
    }
}

/// A value with its interval, as the tracker formats want it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Measure {
    pub value: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
}

impl Measure {
    /// None unless the value is finite; bounds kept only when finite and on the right side.
    fn new(value: f64, lower: Option<f64>, upper: Option<f64>) -> Option<Measure> {
        value.is_finite().then_some(Measure {
            value,
            lower: lower.filter(|l| l.is_finite() && *l <= value),
            upper: upper.filter(|u| u.is_finite() && *u >= value),
        })
    }

    fn bmf(&self) -> Value {
        let mut m = Map::new();
        m.insert("value".into(), json!(self.value));
        if let Some(l) = self.lower {
            m.insert("lower_value".into(), json!(l));
        }
        if let Some(u) = self.upper {
            m.insert("upper_value".into(), json!(u));
        }
        Value::Object(m)
    }

    /// `± x`, the half-width github-action-benchmark shows as the spread.
    fn range(&self) -> Option<String> {
        let lo = self.lower.map(|l| self.value - l);
        let hi = self.upper.map(|u| u - self.value);
        let w = match (lo, hi) {
            (Some(a), Some(b)) => a.max(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return None,
        };
        Some(format!("± {}", sig(w)))
    }
}

/// Four significant digits, no exponent for ordinary magnitudes.
fn sig(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return "0".into();
    }
    let digits = (3 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.digits$}")
}

/// Latency of a measured kernel row (ns), with its interval where criterion measured it in
/// full (a tuning screen's few timings have a time but no confidence interval).
fn kernel_latency(row: &KernelRow) -> Option<Measure> {
    if row.status != Status::Ok {
        return None;
    }
    if !row.measured_in_full() {
        return Measure::new(row.median_ns?, None, None);
    }
    Measure::new(row.median_ns?, row.ci_low_ns, row.ci_high_ns)
}

/// Throughput of a measured kernel row, in FLOP/s (the low bound from the high time).
fn kernel_flops_per_s(row: &KernelRow) -> Option<Measure> {
    let lat = kernel_latency(row)?;
    if row.flops == 0 || lat.value <= 0.0 {
        return None;
    }
    let f = row.flops as f64 * 1e9;
    Measure::new(
        f / lat.value,
        lat.upper.filter(|u| *u > 0.0).map(|u| f / u),
        lat.lower.filter(|l| *l > 0.0).map(|l| f / l),
    )
}

fn table_measure(t: &Table, row: &crate::dataset::TableRow, col: &str) -> Result<Option<Measure>> {
    let Some(v) = t.number(row, col)? else {
        return Ok(None);
    };
    let lo = t.number(row, &format!("{col}_low"))?;
    let hi = t.number(row, &format!("{col}_high"))?;
    Ok(Measure::new(v, lo, hi))
}

fn tokens_required(t: &Table) -> Result<()> {
    t.require(&["model", "phase", "tokens_per_s"])
}

fn costs_required(t: &Table) -> Result<()> {
    t.require(&["model", "phase", "instance", "usd_per_mtok"])
}

// ---------------------------------------------------------------------------------------
// Bencher Metric Format

/// The Bencher Metric Format document for every run.
pub fn bmf(runs: &[Run]) -> Result<Value> {
    let mut out = Map::new();
    let mut names = UniqueNames::new();
    let quals = qualifiers(runs);
    for (run, q) in runs.iter().zip(&quals) {
        for row in &run.kernels {
            let Some(lat) = kernel_latency(row) else {
                continue;
            };
            let mut measures = Map::new();
            measures.insert("latency".into(), lat.bmf());
            if let Some(t) = kernel_flops_per_s(row) {
                measures.insert("throughput".into(), t.bmf());
            }
            out.insert(names.take(kernel_name(row, q)), Value::Object(measures));
        }
        if let Some(t) = &run.tokens {
            tokens_required(t)?;
            for row in &t.rows {
                if let Some(m) = table_measure(t, row, "tokens_per_s")? {
                    out.insert(
                        names.take(tokens_name(t, row, q)),
                        json!({ "throughput": m.bmf() }),
                    );
                }
            }
        }
        if let Some(t) = &run.costs {
            costs_required(t)?;
            for row in &t.rows {
                if let Some(m) = table_measure(t, row, "usd_per_mtok")? {
                    out.insert(
                        names.take(cost_name(t, row, q)),
                        json!({ "usd-per-mtok": m.bmf() }),
                    );
                }
            }
        }
    }
    Ok(Value::Object(out))
}

// ---------------------------------------------------------------------------------------
// github-action-benchmark

/// One entry of github-action-benchmark's custom JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GabEntry {
    pub name: String,
    pub unit: String,
    pub value: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// The bigger-is-better and smaller-is-better entry lists.
pub fn gab(runs: &[Run]) -> Result<(Vec<GabEntry>, Vec<GabEntry>)> {
    let mut bigger = Vec::new();
    let mut smaller = Vec::new();
    let mut bigger_names = UniqueNames::new();
    let mut smaller_names = UniqueNames::new();
    let quals = qualifiers(runs);
    let entry = |name: String, unit: &str, m: Measure, extra: String| GabEntry {
        name,
        unit: unit.into(),
        value: m.value,
        range: m.range(),
        extra: Some(extra),
    };
    for (run, q) in runs.iter().zip(&quals) {
        let provenance = format!(
            "adapter: {} ({})\nrun: {}{}",
            run.info.adapter.name,
            run.info.adapter.backend,
            run.info.run_id,
            run.info
                .git_commit
                .as_ref()
                .map(|c| format!("\ncommit: {c}"))
                .unwrap_or_default()
        );
        let ci = |m: &Measure, unit: &str| match (m.lower, m.upper) {
            (Some(l), Some(u)) => format!("95% CI {} .. {} {unit}\n", sig(l), sig(u)),
            _ => String::new(),
        };
        for row in &run.kernels {
            let Some(lat) = kernel_latency(row) else {
                continue;
            };
            let name = kernel_name(row, q);
            smaller.push(entry(
                smaller_names.take(name.clone()),
                "ns",
                lat,
                format!("{}{provenance}", ci(&lat, "ns")),
            ));
            if let Some(t) = kernel_flops_per_s(row) {
                let g = Measure {
                    value: t.value / 1e9,
                    lower: t.lower.map(|v| v / 1e9),
                    upper: t.upper.map(|v| v / 1e9),
                };
                bigger.push(entry(
                    bigger_names.take(name),
                    "GFLOP/s",
                    g,
                    format!("{}{provenance}", ci(&g, "GFLOP/s")),
                ));
            }
        }
        if let Some(t) = &run.tokens {
            tokens_required(t)?;
            for row in &t.rows {
                if let Some(m) = table_measure(t, row, "tokens_per_s")? {
                    bigger.push(entry(
                        bigger_names.take(tokens_name(t, row, q)),
                        "tokens/s",
                        m,
                        format!("{}{provenance}", ci(&m, "tokens/s")),
                    ));
                }
            }
        }
        if let Some(t) = &run.costs {
            costs_required(t)?;
            for row in &t.rows {
                if let Some(m) = table_measure(t, row, "usd_per_mtok")? {
                    let as_of = t.text(row, "price_as_of");
                    smaller.push(entry(
                        smaller_names.take(cost_name(t, row, q)),
                        "USD/Mtok",
                        m,
                        format!(
                            "{}{}{provenance}",
                            ci(&m, "USD/Mtok"),
                            if as_of.is_empty() {
                                String::new()
                            } else {
                                format!("price as of {as_of}\n")
                            }
                        ),
                    ));
                }
            }
        }
    }
    Ok((bigger, smaller))
}

// ---------------------------------------------------------------------------------------
// CSV

/// A table ready for CSV, JSON or Markdown: header and typed cells.
#[derive(Debug, Clone, PartialEq)]
pub struct Sheet {
    pub header: Vec<String>,
    pub rows: Vec<Vec<Cell>>,
}

impl Sheet {
    /// CSV text: header row, then rows; `bom` prefixes a UTF-8 byte-order mark (Excel).
    pub fn to_csv(&self, bom: bool) -> String {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        let header: Vec<String> = self.header.iter().map(|h| escape_text(h)).collect();
        w.write_record(&header).expect("writing to memory");
        for r in &self.rows {
            let cells: Vec<String> = r.iter().map(Cell::encode).collect();
            w.write_record(&cells).expect("writing to memory");
        }
        let text =
            String::from_utf8(w.into_inner().expect("flushing memory")).expect("UTF-8 cells");
        if bom {
            format!("\u{feff}{text}")
        } else {
            text
        }
    }

    /// Rows as JSON objects (numbers as numbers, missing as null).
    pub fn to_json_rows(&self) -> Vec<Value> {
        self.rows
            .iter()
            .map(|r| {
                let mut m = Map::new();
                for (h, c) in self.header.iter().zip(r) {
                    m.insert(h.clone(), cell_json(c));
                }
                Value::Object(m)
            })
            .collect()
    }
}

fn cell_json(c: &Cell) -> Value {
    match c {
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Num(Some(v)) if v.is_finite() => json!(v),
        Cell::Num(_) | Cell::Int(None) => Value::Null,
        Cell::Int(Some(v)) => json!(v),
        Cell::Bool(b) => json!(b),
    }
}

/// The kernel rows of every run, with `run_id` and `host` first.
pub fn kernels_sheet(runs: &[Run]) -> Sheet {
    let mut header = vec!["run_id".to_string(), "host".to_string()];
    header.extend(KernelRow::header().iter().map(|h| h.to_string()));
    let mut rows = Vec::new();
    for run in runs {
        for k in &run.kernels {
            let mut cells = vec![
                Cell::Text(run.info.run_id.clone()),
                Cell::Text(run.info.host.clone()),
            ];
            cells.extend(k.cells());
            rows.push(cells);
        }
    }
    Sheet { header, rows }
}

/// `tokens.csv` or `costs.csv` of every run that has one, columns in first-seen order
/// behind `run_id`, `host` and `adapter`; a column one run lacks is empty there.
fn generic_sheet(runs: &[Run], pick: fn(&Run) -> Option<&Table>) -> Sheet {
    let mut header = vec![
        "run_id".to_string(),
        "host".to_string(),
        "adapter".to_string(),
    ];
    for t in runs.iter().filter_map(pick) {
        for h in &t.header {
            if !header.contains(h) {
                header.push(h.clone());
            }
        }
    }
    let mut rows = Vec::new();
    for run in runs {
        let Some(t) = pick(run) else { continue };
        for r in &t.rows {
            let cells = header
                .iter()
                .map(|h| match h.as_str() {
                    "run_id" if t.column(h).is_none() => Cell::Text(run.info.run_id.clone()),
                    "host" if t.column(h).is_none() => Cell::Text(run.info.host.clone()),
                    "adapter" if t.column(h).is_none() => Cell::Text(run.info.adapter.name.clone()),
                    _ => typed_cell(h, t.text(r, h)),
                })
                .collect();
            rows.push(cells);
        }
    }
    Sheet { header, rows }
}

/// Text columns stay text; anything else that reads as a number is a number (so it is
/// never escaped, and a non-finite one becomes an empty cell); the rest is text.
fn typed_cell(column: &str, text: &str) -> Cell {
    if TEXT_COLUMNS.contains(&column) {
        return Cell::Text(text.to_string());
    }
    let t = text.trim();
    if t.is_empty() {
        return Cell::Num(None);
    }
    match t.parse::<f64>() {
        Ok(v) => Cell::Num(Some(v)),
        Err(_) => Cell::Text(text.to_string()),
    }
}

pub fn tokens_sheet(runs: &[Run]) -> Sheet {
    generic_sheet(runs, |r| r.tokens.as_ref())
}

pub fn costs_sheet(runs: &[Run]) -> Sheet {
    generic_sheet(runs, |r| r.costs.as_ref())
}

// ---------------------------------------------------------------------------------------
// JSON, JSONL

/// One JSON document: the runs' provenance and every table's rows.
pub fn json_document(runs: &[Run]) -> Value {
    json!({
        "schema_version": crate::results::SCHEMA_VERSION,
        "runs": runs.iter().map(|r| &r.info).collect::<Vec<_>>(),
        "kernels": kernels_sheet(runs).to_json_rows(),
        "tokens": tokens_sheet(runs).to_json_rows(),
        "costs": costs_sheet(runs).to_json_rows(),
    })
}

/// One JSON object per line: the runs first (`"table": "runs"`), then every row of every
/// table with its `table` name.
pub fn jsonl(runs: &[Run]) -> String {
    let mut out = String::new();
    let mut line = |table: &str, v: Value| {
        let mut m = Map::new();
        m.insert("table".into(), json!(table));
        if let Value::Object(o) = v {
            m.extend(o);
        }
        out.push_str(&Value::Object(m).to_string());
        out.push('\n');
    };
    for r in runs {
        line(
            "runs",
            serde_json::to_value(&r.info).expect("run info serialises"),
        );
    }
    for (name, sheet) in [
        ("kernels", kernels_sheet(runs)),
        ("tokens", tokens_sheet(runs)),
        ("costs", costs_sheet(runs)),
    ] {
        for v in sheet.to_json_rows() {
            line(name, v);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Markdown

/// Markdown: which runs, then the kernel table, and token and cost tables when present.
pub fn markdown(runs: &[Run]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## priceperf results\n");
    for r in runs {
        let _ = writeln!(
            out,
            "- run `{}` on {} ({}, driver {}), host {}{}",
            md_text(&r.info.run_id).replace('`', "'"),
            md_text(&r.info.adapter.name),
            md_text(&r.info.adapter.backend),
            md_text(format!("{} {}", r.info.adapter.driver, r.info.adapter.driver_info).trim()),
            md_text(&r.info.host),
            r.info
                .git_commit
                .as_ref()
                .map(|c| format!(", commit {}", md_text(c)))
                .unwrap_or_default()
        );
    }
    let many = runs.len() > 1;
    let _ = writeln!(out, "\n### Kernels\n");
    let mut header = vec![
        "benchmark",
        "variant",
        "median",
        "95% CI",
        "GFLOP/s",
        "GB/s",
        "% of peak",
        "verified",
        "status",
    ];
    if many {
        header.insert(2, "adapter");
    }
    md_header(&mut out, &header);
    for r in runs {
        for k in &r.kernels {
            let mut cells = vec![
                md_text(&k.benchmark),
                format!(
                    "{}{}",
                    md_text(&k.variant),
                    if k.chosen { " (chosen)" } else { "" }
                ),
                k.median_ns.map_or("-".into(), fmt_ns),
                // A tuning screen's few timings have no confidence interval.
                match (k.ci_low_ns, k.ci_high_ns, k.measured_in_full()) {
                    (Some(l), Some(h), true) => format!("{} .. {}", fmt_ns(l), fmt_ns(h)),
                    (_, _, false) => "screen only".into(),
                    _ => "-".into(),
                },
                k.gflops.map_or("-".into(), |g| format!("{g:.2}")),
                k.gbps.map_or("-".into(), |g| format!("{g:.2}")),
                k.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}")),
                if k.verified { "yes" } else { "no" }.into(),
                if k.note.is_empty() || k.status == Status::Ok {
                    k.status.to_string()
                } else {
                    format!("{}: {}", k.status, md_text(&k.note))
                },
            ];
            if many {
                cells.insert(2, md_text(&r.info.adapter.name));
            }
            md_row(&mut out, &cells);
        }
    }
    for (title, sheet) in [
        ("Token rates", tokens_sheet(runs)),
        ("Costs", costs_sheet(runs)),
    ] {
        if sheet.rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {title}\n");
        let skip: &[&str] = if many {
            &["host"]
        } else {
            &["run_id", "host", "adapter"]
        };
        let cols: Vec<usize> = (0..sheet.header.len())
            .filter(|i| !skip.contains(&sheet.header[*i].as_str()))
            .collect();
        let header: Vec<&str> = cols.iter().map(|i| sheet.header[*i].as_str()).collect();
        md_header(&mut out, &header);
        for r in &sheet.rows {
            let cells: Vec<String> = cols
                .iter()
                .map(|i| match &r[*i] {
                    Cell::Text(s) => md_text(s),
                    Cell::Num(Some(v)) if v.is_finite() => sig_md(*v),
                    Cell::Int(Some(v)) => v.to_string(),
                    Cell::Bool(b) => b.to_string(),
                    _ => "-".into(),
                })
                .collect();
            md_row(&mut out, &cells);
        }
    }
    out
}

fn sig_md(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        sig(v)
    }
}

fn md_header(out: &mut String, header: &[&str]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
}

fn md_row(out: &mut String, cells: &[String]) {
    let _ = writeln!(out, "| {} |", cells.join(" | "));
}

// ---------------------------------------------------------------------------------------
// Writing

/// What `priceperf export` writes.
#[derive(Debug, Clone)]
pub struct ExportRequest<'a> {
    pub format: ExportFormat,
    /// A file (or, for `gab` and `csv --table all`, a folder); None prints to stdout.
    pub out: Option<&'a Path>,
    pub table: TableName,
    /// Prefix CSV with a UTF-8 byte-order mark.
    pub bom: bool,
}

/// Run an export; returns the text for stdout (empty when everything went to files) and
/// the files written.
pub fn export(runs: &[Run], req: &ExportRequest) -> Result<(String, Vec<std::path::PathBuf>)> {
    if let Some(out) = req.out {
        let multi_file = req.format == ExportFormat::Gab
            || (req.format == ExportFormat::Csv && req.table == TableName::All);
        let target = if multi_file {
            Target::Folder(out)
        } else {
            Target::File(out)
        };
        refuse_input_overlap(target, runs.iter().map(|r| r.dir.as_path()))?;
    }
    let pretty = |v: &Value| serde_json::to_string_pretty(v).expect("JSON values serialise") + "\n";
    let text = match req.format {
        ExportFormat::Bmf => pretty(&bmf(runs)?),
        ExportFormat::Json => pretty(&json_document(runs)),
        ExportFormat::Jsonl => jsonl(runs),
        ExportFormat::Md => markdown(runs),
        ExportFormat::Gab => {
            let dir = req.out.ok_or_else(|| {
                Error::bad_input(
                    "--format gab writes two files and needs --out DIR",
                    "Pass e.g. --out bench-out; it receives gab-bigger.json (customBiggerIsBetter) and gab-smaller.json (customSmallerIsBetter).",
                )
            })?;
            let (bigger, smaller) = gab(runs)?;
            create_dir(dir)?;
            let mut files = Vec::new();
            for (name, entries) in [(GAB_BIGGER, &bigger), (GAB_SMALLER, &smaller)] {
                let path = dir.join(name);
                let text = serde_json::to_string_pretty(entries).expect("entries serialise") + "\n";
                write_atomic(&path, text.as_bytes())?;
                files.push(path);
            }
            return Ok((String::new(), files));
        }
        ExportFormat::Csv => {
            let sheets = [
                ("kernels.csv", TableName::Kernels, kernels_sheet(runs)),
                ("tokens.csv", TableName::Tokens, tokens_sheet(runs)),
                ("costs.csv", TableName::Costs, costs_sheet(runs)),
            ];
            if req.table == TableName::All {
                let dir = req.out.ok_or_else(|| {
                    Error::bad_input(
                        "--table all writes one file per table and needs --out DIR",
                        "Pass e.g. --out sheets, or pick one table with --table kernels|tokens|costs.",
                    )
                })?;
                create_dir(dir)?;
                let mut files = Vec::new();
                for (name, table, sheet) in &sheets {
                    if *table != TableName::Kernels && sheet.rows.is_empty() {
                        continue;
                    }
                    let path = dir.join(name);
                    write_atomic(&path, sheet.to_csv(req.bom).as_bytes())?;
                    files.push(path);
                }
                return Ok((String::new(), files));
            }
            let (_, _, sheet) = sheets
                .iter()
                .find(|(_, t, _)| *t == req.table)
                .expect("every table has a sheet");
            sheet.to_csv(req.bom)
        }
    };
    match req.out {
        None => Ok((text, Vec::new())),
        Some(path) => {
            if path.is_dir() {
                return Err(Error::bad_input(
                    format!(
                        "--out {} is a folder, but this format writes one file",
                        path.display()
                    ),
                    "Give a file name, e.g. --out results.json.",
                ));
            }
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                create_dir(parent)?;
            }
            write_atomic(path, text.as_bytes())?;
            Ok((String::new(), vec![path.to_path_buf()]))
        }
    }
}

/// `priceperf export`: load the folders and write the format.
pub fn execute(args: &crate::cli::ExportArgs) -> Result<i32> {
    let runs = crate::dataset::load_all(&args.dirs)?;
    let (text, files) = export(
        &runs,
        &ExportRequest {
            format: args.format,
            out: args.out.as_deref(),
            table: args.table,
            bom: args.bom,
        },
    )?;
    write_stdout(&text)?;
    for f in files {
        eprintln!("priceperf: wrote {}", f.display());
    }
    Ok(crate::error::EXIT_OK)
}

/// Print to stdout; a reader that stops early (`| head`) is not an error.
pub fn write_stdout(text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("write to", "standard output", e))
        }
        _ => Ok(()),
    }
}

fn create_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).map_err(|e| Error::io("create", dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_names_keep_batches_apart() {
        let t = Table::parse(
            std::path::Path::new("costs.csv"),
            "model,phase,batch,prompt_len,context_len,provider,instance,region,tier,basis,usd_per_mtok\n\
             m,decode,1,,576,AWS,p5.48xlarge,us-east-1,on_demand,measured,2.5\n\
             m,decode,16,,576,AWS,p5.48xlarge,us-east-1,on_demand,measured,0.2\n",
        )
        .unwrap();
        let names: Vec<String> = t.rows.iter().map(|r| cost_name(&t, r, "")).collect();
        assert_eq!(
            names,
            [
                "cost/m/decode/batch=1,context=576/AWS/p5.48xlarge/us-east-1/on_demand/measured",
                "cost/m/decode/batch=16,context=576/AWS/p5.48xlarge/us-east-1/on_demand/measured"
            ]
        );
    }

    #[test]
    fn measures_drop_bounds_on_the_wrong_side_and_non_finite_values() {
        let m = Measure::new(10.0, Some(9.0), Some(8.0)).unwrap();
        assert_eq!((m.lower, m.upper), (Some(9.0), None));
        assert!(Measure::new(f64::NAN, None, None).is_none());
        assert_eq!(m.range().as_deref(), Some("± 1.000"));
        let m = Measure::new(100.0, Some(97.5), Some(104.25)).unwrap();
        assert_eq!(m.range().as_deref(), Some("± 4.250"));
    }

    #[test]
    fn typed_cells_keep_text_columns_text() {
        assert_eq!(typed_cell("model", "-1"), Cell::Text("-1".into()));
        assert_eq!(typed_cell("usd_per_mtok", "-1.5"), Cell::Num(Some(-1.5)));
        assert_eq!(typed_cell("usd_per_mtok", ""), Cell::Num(None));
        assert_eq!(typed_cell("usd_per_mtok", "NaN").encode(), "");
        assert_eq!(typed_cell("odd", "=1+1").encode(), "'=1+1");
    }

    #[test]
    fn names_stay_unique() {
        let mut n = UniqueNames::new();
        assert_eq!(n.take("a".into()), "a");
        assert_eq!(n.take("a".into()), "a #2");
        assert_eq!(n.take("b".into()), "b");
    }
}
