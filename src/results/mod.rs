//! Result rows and the result folder: `run.json` (provenance), `kernels.csv` (one row per
//! benchmark and variant, appended as each benchmark finishes) and `results.json` (the same
//! rows for programs). Writes are append-only with whole lines, or atomic (temporary file
//! and rename), so an interrupted run leaves a valid folder.

pub mod csv_cells;

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cost::{CostRow, TokensRow};
use crate::error::{Error, Result};
use crate::gpu::AdapterSummary;
use crate::measure::{Stats, TimingMethod};
use crate::shape::DType;
use csv_cells::{Cell, CsvRow};

/// Version of the result folder layout; bump when a column changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened to one (benchmark, variant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Verified and measured.
    Ok,
    /// Compilation, execution or verification failed: never timed, never priced.
    Failed,
    /// Not run: beyond the adapter's limits, a missing feature, or the suite's time budget.
    Skipped,
    /// The device did not finish within the time limit.
    Timeout,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::Skipped => "skipped",
            Status::Timeout => "timeout",
        }
    }

    fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "ok" => Status::Ok,
            "failed" => Status::Failed,
            "skipped" => Status::Skipped,
            "timeout" => Status::Timeout,
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of `kernels.csv`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelRow {
    /// `kernel/dtype/shape`: the natural key with `variant` and the adapter.
    pub benchmark: String,
    pub kernel: String,
    pub variant: String,
    pub dtype: DType,
    pub shape: String,
    pub adapter: String,
    pub backend: String,
    pub driver: String,
    pub timing: Option<TimingMethod>,
    pub samples: Option<u64>,
    pub median_ns: Option<f64>,
    pub ci_low_ns: Option<f64>,
    pub ci_high_ns: Option<f64>,
    pub flops: u64,
    pub bytes: u64,
    pub gflops: Option<f64>,
    pub gbps: Option<f64>,
    /// Achieved FLOP/s over the accelerator's spec-sheet peak for the dtype, in percent.
    pub pct_of_peak: Option<f64>,
    pub verified: bool,
    pub max_rel_err: Option<f64>,
    pub status: Status,
    /// The fastest verified variant of its benchmark on this adapter.
    pub chosen: bool,
    pub note: String,
    /// Achieved FLOP/s over this adapter's measured FMA peak for the dtype, in percent
    /// (`measure::peaks`).
    #[serde(default)]
    pub pct_of_measured_flops: Option<f64>,
    /// Achieved GB/s over this adapter's measured streaming bandwidth (the better of a copy
    /// and a read), in percent.
    #[serde(default)]
    pub pct_of_measured_bw: Option<f64>,
}

impl KernelRow {
    /// Fill the derived throughput columns from the median time.
    pub fn with_time(mut self, median_ns: f64, ci_low_ns: f64, ci_high_ns: f64) -> Self {
        self.median_ns = Some(median_ns);
        self.ci_low_ns = Some(ci_low_ns);
        self.ci_high_ns = Some(ci_high_ns);
        self.gflops = Some(self.flops as f64 / median_ns);
        self.gbps = Some(self.bytes as f64 / median_ns);
        self
    }

    /// A row timed by `stats`: status ok, its sample count and time columns filled.
    pub fn measured(mut self, stats: &Stats) -> Self {
        self.status = Status::Ok;
        self.samples = Some(stats.samples as u64);
        self.with_time(stats.median_ns, stats.ci_low_ns, stats.ci_high_ns)
    }

    /// Add `text` to the note, after what it already says.
    pub fn add_note(&mut self, text: &str) {
        if self.note.is_empty() {
            self.note = text.to_string();
        } else {
            self.note = format!("{}; {text}", self.note);
        }
    }

    /// The half-width of the time's confidence interval as a fraction of the median, for a
    /// row measured in full ([`FULL_MEASUREMENT_SAMPLES`]); `None` otherwise.
    pub fn spread(&self) -> Option<f64> {
        let stats = Stats {
            samples: self.samples? as usize,
            median_ns: self.median_ns?,
            ci_low_ns: self.ci_low_ns?,
            ci_high_ns: self.ci_high_ns?,
        };
        (self.samples? >= FULL_MEASUREMENT_SAMPLES && stats.median_ns > 0.0).then(|| stats.spread())
    }

    /// Whether criterion measured the row in full, so its interval is a confidence interval
    /// (rows from before the `samples` column count as such).
    pub fn measured_in_full(&self) -> bool {
        self.samples.is_none_or(|n| n >= FULL_MEASUREMENT_SAMPLES)
    }
}

/// Criterion's fewest samples per measurement, which `--sample-size` enforces. A row with
/// fewer holds a tuning screen's or final's few short timings: a real time, but its
/// interval is no confidence interval (one timing gives one of zero width).
pub const FULL_MEASUREMENT_SAMPLES: u64 = 10;

/// A chosen row whose interval is wider than this (± fraction of the median) was measured
/// while the machine's speed changed: eight repeated runs of one lavapipe matmul gave
/// ±0.5% to ±5% in five, and ±10%, ±12% and ±24% in the three whose samples show the
/// machine's speed moving (a shared host's load coming and going).
pub const NOISY_SPREAD: f64 = 0.10;

/// The row note for a row measured with an interval wider than [`NOISY_SPREAD`], so that
/// a spreadsheet shows it next to the figure; `None` otherwise.
pub fn wide_interval(row: &KernelRow) -> Option<String> {
    let s = row.spread().filter(|s| *s > NOISY_SPREAD)?;
    Some(format!(
        "wide interval (±{:.0}% of the median): the machine's speed changed while it ran; rerun on an idle machine",
        s * 100.0
    ))
}

/// A run note naming the chosen rows measured with an interval wider than
/// [`NOISY_SPREAD`], or `None` when there are none.
pub fn noisy_note(rows: &[KernelRow]) -> Option<String> {
    let chosen: Vec<&KernelRow> = rows.iter().filter(|r| r.chosen).collect();
    let noisy: Vec<String> = chosen
        .iter()
        .filter_map(|r| {
            let s = r.spread()?;
            (s > NOISY_SPREAD).then(|| format!("{} ±{:.0}%", r.benchmark, s * 100.0))
        })
        .collect();
    if noisy.is_empty() {
        return None;
    }
    Some(format!(
        "{} of {} chosen rows were measured with a 95% interval wider than ±{:.0}% of the median ({}): the machine's speed changed while they ran (other load, a shared host, clock changes), and their prices carry that uncertainty; rerun them on an idle machine (--filter) for figures to rely on",
        noisy.len(),
        chosen.len(),
        NOISY_SPREAD * 100.0,
        first_of(&noisy, 5)
    ))
}

/// A run note naming the chosen rows that moved more bytes per second than the measured
/// streaming bandwidth (the better of the copy and the read probe), or `None` when there
/// are none. Not an error: matmul weights are cycled through copies larger than the caches
/// ([`crate::kernels::weights`]), but other operands (activations, KV caches) that fit the
/// caches are read from cache on every repeated iteration, so the note says token rates
/// built from such rows may be optimistic.
pub fn over_bandwidth_note(rows: &[KernelRow]) -> Option<String> {
    let chosen = rows.iter().filter(|r| r.chosen).count();
    let mut over: Vec<(&str, f64)> = rows
        .iter()
        .filter(|r| r.chosen)
        .filter_map(|r| Some((r.benchmark.as_str(), r.pct_of_measured_bw?)))
        .filter(|&(_, pct)| pct > 100.0)
        .collect();
    if over.is_empty() {
        return None;
    }
    over.sort_by(|a, b| b.1.total_cmp(&a.1));
    let named: Vec<String> = over
        .iter()
        .map(|(b, pct)| format!("{b} {pct:.0}%"))
        .collect();
    Some(format!(
        "{} of {chosen} chosen rows moved more bytes per second than the measured streaming bandwidth ({}): matmul weights are cycled through copies larger than the caches, but other operands (activations, KV caches) small enough for them are read from cache on repeated iterations, so token rates built from these rows may be optimistic; see Formulas in the README",
        over.len(),
        first_of(&named, 3)
    ))
}

/// The first `limit` of `items`, comma-separated, then how many more there are: a run
/// note names a few rows, not all.
fn first_of(items: &[String], limit: usize) -> String {
    let shown = items[..items.len().min(limit)].join(", ");
    match items.len().saturating_sub(limit) {
        0 => shown,
        n => format!("{shown} and {n} more"),
    }
}

const KERNEL_HEADER: &[&str] = &[
    "benchmark",
    "kernel",
    "variant",
    "dtype",
    "shape",
    "adapter",
    "backend",
    "driver",
    "timing",
    "samples",
    "median_ns",
    "ci_low_ns",
    "ci_high_ns",
    "flops",
    "bytes",
    "gflops",
    "gbps",
    "pct_of_peak",
    "verified",
    "max_rel_err",
    "status",
    "chosen",
    "note",
    "pct_of_measured_flops",
    "pct_of_measured_bw",
];

/// Columns of the first schema, before the measured-peak columns were appended; such files
/// still read (the new columns empty).
const KERNEL_HEADER_V1_LEN: usize = 23;

impl CsvRow for KernelRow {
    fn header() -> &'static [&'static str] {
        KERNEL_HEADER
    }

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.benchmark.clone()),
            Cell::Text(self.kernel.clone()),
            Cell::Text(self.variant.clone()),
            Cell::Text(self.dtype.to_string()),
            Cell::Text(self.shape.clone()),
            Cell::Text(self.adapter.clone()),
            Cell::Text(self.backend.clone()),
            Cell::Text(self.driver.clone()),
            Cell::Text(self.timing.map(|t| t.to_string()).unwrap_or_default()),
            Cell::Int(self.samples),
            Cell::Num(self.median_ns),
            Cell::Num(self.ci_low_ns),
            Cell::Num(self.ci_high_ns),
            Cell::Int(Some(self.flops)),
            Cell::Int(Some(self.bytes)),
            Cell::Num(self.gflops),
            Cell::Num(self.gbps),
            Cell::Num(self.pct_of_peak),
            Cell::Bool(self.verified),
            Cell::Num(self.max_rel_err),
            Cell::Text(self.status.to_string()),
            Cell::Bool(self.chosen),
            Cell::Text(self.note.clone()),
            Cell::Num(self.pct_of_measured_flops),
            Cell::Num(self.pct_of_measured_bw),
        ]
    }
}

/// Read a text file the user pointed at. Bytes that are not UTF-8 are a bad file (exit 2)
/// named by line and column, not an I/O error.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| Error::io("read", path, e))?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() as u64 + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let column = String::from_utf8_lossy(&valid[line_start..])
            .chars()
            .count() as u64
            + 1;
        Error::BadFile {
            path: path.to_path_buf(),
            line,
            column,
            what: "the file is not UTF-8 text".into(),
            fix: "Save it as UTF-8 (CSV and JSON files written by priceperf always are)".into(),
        }
    })
}

/// Read a `kernels.csv`, checking every cell; errors name file, line and column.
pub fn read_kernel_rows(path: &Path) -> Result<Vec<KernelRow>> {
    parse_kernel_rows(path, &read_text(path)?)
}

/// Parse the text of a `kernels.csv`; `path` is only used in error messages. Numbers must be
/// finite; times above 0, the other measures 0 or more.
pub fn parse_kernel_rows(path: &Path, text: &str) -> Result<Vec<KernelRow>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let bad = |line: u64, column: usize, what: String| {
        Error::BadFile {
        path: path.to_path_buf(),
        line,
        column: column as u64 + 1,
        what,
        fix: "This file is written by priceperf; restore it from a copy, or delete the damaged benchmark's lines and continue with priceperf run --resume, which measures the benchmarks with no rows".into(),
    }
    };
    let header = reader
        .headers()
        .map_err(|e| {
            let line = e.position().map_or(1, |p| p.line());
            bad(line, 0, format!("unreadable header: {e}"))
        })?
        .clone();
    let columns = if header.len() == KERNEL_HEADER_V1_LEN {
        KERNEL_HEADER_V1_LEN
    } else {
        KERNEL_HEADER.len()
    };
    // Columns past the ones this build knows, after all of those: a later schema, not
    // damage. "Restore it from a copy" would send the user hunting for a backup of a
    // file that is fine.
    let known = KERNEL_HEADER.len();
    if header.len() > known && header.iter().take(known).eq(KERNEL_HEADER.iter().copied()) {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            line: 1,
            column: known as u64 + 1,
            what: format!(
                "the header has {} columns (from `{}` on) where this priceperf ({}) knows {known}: the file was written by a newer priceperf",
                header.len(),
                header.get(known).unwrap_or(""),
                env!("CARGO_PKG_VERSION")
            ),
            fix: "Read it with that priceperf version or a later one (`priceperf --version` names yours); the file itself is fine".into(),
        });
    }
    for (i, name) in KERNEL_HEADER[..columns].iter().enumerate() {
        if header.get(i) != Some(name) {
            return Err(bad(
                1,
                i,
                format!(
                    "expected column `{name}`, found `{}`",
                    header.get(i).unwrap_or("")
                ),
            ));
        }
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(1, |p| p.line());
            bad(line, 0, format!("malformed CSV: {e}"))
        })?;
        let line = record.position().map_or(1, |p| p.line());
        let text = |i: usize| csv_cells::unescape_text(record.get(i).unwrap_or(""));
        let num = |i: usize| -> Result<Option<f64>> {
            let s = record.get(i).unwrap_or("");
            if s.is_empty() {
                return Ok(None);
            }
            let v = s
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    bad(
                        line,
                        i,
                        format!("`{s}` in column `{}` is not a number", KERNEL_HEADER[i]),
                    )
                })?;
            // Columns 10-12 are times: a time of 0 or less would price a token at nothing.
            let least = if (10..=12).contains(&i) {
                "above 0"
            } else {
                "0 or more"
            };
            if v < 0.0 || ((10..=12).contains(&i) && v == 0.0) {
                return Err(bad(
                    line,
                    i,
                    format!("`{s}` in column `{}` is not {least}", KERNEL_HEADER[i]),
                ));
            }
            Ok(Some(v))
        };
        let int = |i: usize| -> Result<Option<u64>> {
            let s = record.get(i).unwrap_or("");
            if s.is_empty() {
                return Ok(None);
            }
            s.parse::<u64>().map(Some).map_err(|_| {
                bad(
                    line,
                    i,
                    format!(
                        "`{s}` in column `{}` is not a whole number",
                        KERNEL_HEADER[i]
                    ),
                )
            })
        };
        let boolean = |i: usize| -> Result<bool> {
            match record.get(i).unwrap_or("") {
                "true" => Ok(true),
                "false" => Ok(false),
                s => Err(bad(
                    line,
                    i,
                    format!(
                        "`{s}` in column `{}` is not true or false",
                        KERNEL_HEADER[i]
                    ),
                )),
            }
        };
        if record.len() != columns {
            return Err(bad(
                line,
                record.len().min(columns),
                format!("{} cells, expected {columns}", record.len()),
            ));
        }
        let dtype: DType = text(3)
            .parse()
            .map_err(|_| bad(line, 3, format!("unknown dtype `{}`", text(3))))?;
        let timing = match text(8).as_str() {
            "" => None,
            "device" => Some(TimingMethod::Device),
            "wall" => Some(TimingMethod::Wall),
            s => return Err(bad(line, 8, format!("timing `{s}` is not device or wall"))),
        };
        let status = Status::parse(&text(20)).ok_or_else(|| {
            bad(
                line,
                20,
                format!(
                    "status `{}` is not ok, failed, skipped or timeout",
                    text(20)
                ),
            )
        })?;
        rows.push(KernelRow {
            benchmark: text(0),
            kernel: text(1),
            variant: text(2),
            dtype,
            shape: text(4),
            adapter: text(5),
            backend: text(6),
            driver: text(7),
            timing,
            samples: int(9)?,
            median_ns: num(10)?,
            ci_low_ns: num(11)?,
            ci_high_ns: num(12)?,
            flops: int(13)?.unwrap_or(0),
            bytes: int(14)?.unwrap_or(0),
            gflops: num(15)?,
            gbps: num(16)?,
            pct_of_peak: num(17)?,
            verified: boolean(18)?,
            max_rel_err: num(19)?,
            status,
            chosen: boolean(21)?,
            note: text(22),
            pct_of_measured_flops: if columns > 23 { num(23)? } else { None },
            pct_of_measured_bw: if columns > 24 { num(24)? } else { None },
        });
    }
    Ok(rows)
}

/// Where a run's wall time went, in seconds (this invocation only when resumed). "Overhead"
/// is everything but measuring the chosen variants and the native yardstick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunTime {
    pub total_s: f64,
    /// Opening the adapter, reading the catalog and models, writing files.
    pub setup_s: f64,
    /// Peak probes (0 when the cached peaks were used).
    pub peaks_s: f64,
    /// The FMA probe at the run's start and end (`measure::peaks::SpeedCheck`).
    #[serde(default)]
    pub speed_check_s: f64,
    /// Shader compilation and input upload (the copies of matmul weights included; see
    /// [`crate::kernels::weights`]).
    pub compile_s: f64,
    /// First run and comparison with the CPU reference.
    pub verify_s: f64,
    /// Measuring the variants that were chosen: running them for criterion's warm-up and
    /// samples.
    pub measure_chosen_s: f64,
    /// The part of `measure_chosen_s` spent measuring a second time where the first
    /// measurement's interval was wide, and how many such repeats there were.
    #[serde(default)]
    pub measure_repeat_s: f64,
    #[serde(default)]
    pub repeats: u32,
    /// Measuring variants a search did not choose: the cost of tuning.
    pub measure_search_s: f64,
    /// The part of `measure_search_s` spent warming an idle GPU up before its screens and
    /// finals ([`crate::tuning::GPU_WARM_UP`]; never on CPU adapters).
    #[serde(default)]
    pub search_warm_up_s: f64,
    /// Criterion's statistics and reports around the measurements of the variants (and,
    /// with `cargo bench -- --plotting-backend plotters`, its plots: seconds a benchmark):
    /// outside measured kernels. Earlier runs counted it in `measure_chosen_s`.
    #[serde(default)]
    pub analysis_s: f64,
    /// Verifying and measuring the native CPU GEMM yardstick.
    pub native_s: f64,
    /// Benchmarks whose variants were searched, and those that used a cached choice.
    pub searched: u32,
    pub cached: u32,
}

impl RunTime {
    /// Seconds outside measured kernels (setup, peaks, compilation, verification, search,
    /// criterion's analysis).
    pub fn overhead_s(&self) -> f64 {
        (self.total_s - self.measure_chosen_s - self.native_s).max(0.0)
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let pct = |v: f64| 100.0 * v / self.total_s.max(1e-9);
        let repeats = if self.repeats > 0 {
            format!(
                "; {:.0} s of it measuring {} wide intervals again",
                self.measure_repeat_s, self.repeats
            )
        } else {
            String::new()
        };
        let warm_up = if self.search_warm_up_s > 0.0 {
            format!("{:.1} s of it warming the GPU up, ", self.search_warm_up_s)
        } else {
            String::new()
        };
        format!(
            "time: {:.0} s in all; measuring chosen kernels {:.0} s ({:.0}%{repeats}), native yardstick {:.0} s; overhead {:.0} s ({:.0}%): setup {:.0}, peaks {:.0}, speed check {:.0}, compile and upload {:.0}, verify {:.0}, tuning search {:.0} ({warm_up}{} benchmarks searched, {} from the tuning cache), criterion's analysis {:.0}",
            self.total_s,
            self.measure_chosen_s,
            pct(self.measure_chosen_s),
            self.native_s,
            self.overhead_s(),
            pct(self.overhead_s()),
            self.setup_s,
            self.peaks_s,
            self.speed_check_s,
            self.compile_s,
            self.verify_s,
            self.measure_search_s,
            self.searched,
            self.cached,
            self.analysis_s
        )
    }
}

/// Provenance of a run: `run.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunInfo {
    pub schema_version: u32,
    pub run_id: String,
    pub started: String,
    /// When it ended; `None` while it runs, and forever after a crash or a kill.
    pub finished: Option<String>,
    /// Stopped early (Ctrl-C): the finished benchmarks' rows are there, the rest missing
    /// until `--resume` completes it.
    #[serde(default)]
    pub interrupted: bool,
    pub git_commit: Option<String>,
    pub host: String,
    pub os: String,
    pub cpu_threads: usize,
    pub priceperf_version: String,
    pub wgpu_version: String,
    pub adapter: AdapterSummary,
    pub settings: serde_json::Value,
    /// The adapter's measured peaks used for the rows' `pct_of_measured_*` columns.
    #[serde(default)]
    pub peaks: Option<crate::measure::peaks::Peaks>,
    /// The f32 FMA probe at the start and the end of the run, when peaks are probed.
    #[serde(default)]
    pub speed_check: Option<crate::measure::peaks::SpeedCheck>,
    /// Where the time went; written when the run finishes.
    #[serde(default)]
    pub time: Option<RunTime>,
}

/// Append CSV rows to a file, writing the header first when the file is new or empty. Each
/// call is one write of whole lines followed by a flush to disk, so a crash leaves a valid
/// prefix.
pub fn append_rows<R: CsvRow>(path: &Path, rows: &[R]) -> Result<()> {
    let fresh = fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
    if !fresh {
        refuse_other_header::<R>(path)?;
    }
    let text = csv_cells::encode(rows, fresh);
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io("open", path, e))?;
    f.write_all(text.as_bytes())
        .map_err(|e| Error::io("append to", path, e))?;
    f.sync_data().map_err(|e| Error::io("sync", path, e))
}

/// Refuse to append `R` rows to a file whose header is not `R`'s: rows of one width under
/// a header of another make a file no reader accepts (a `--resume` onto a kernels.csv of
/// the first schema did exactly that before [`resume_rows`] upgraded such files). Only the
/// first line is read; headers never hold quotes or line breaks.
fn refuse_other_header<R: CsvRow>(path: &Path) -> Result<()> {
    use std::io::BufRead as _;
    let f = File::open(path).map_err(|e| Error::io("read", path, e))?;
    let mut first = String::new();
    std::io::BufReader::new(f)
        .read_line(&mut first)
        .map_err(|e| Error::io("read", path, e))?;
    let first = first
        .trim_start_matches('\u{feff}')
        .trim_end_matches(['\n', '\r']);
    if first.split(',').eq(R::header().iter().copied()) {
        return Ok(());
    }
    Err(Error::BadFile {
        path: path.to_path_buf(),
        line: 1,
        column: 1,
        what: format!(
            "the header is not the {} columns this priceperf writes, so new rows cannot be appended under it",
            R::header().len()
        ),
        fix: "Nothing was appended. Write to a new folder with another --out, or move this file aside".into(),
    })
}

/// How much of a `kernels.csv` `--resume` keeps: all of it, or, where a killed run left it
/// mid-append, everything before the last benchmark's rows (an append is one benchmark's
/// rows, every record ending in a line break, so a file that does not end in one holds a
/// torn batch; where the tear fell just after a whole batch, that benchmark is measured
/// again, which costs time, not results). Records are found by the CSV reader, not by
/// line breaks, since a note may span lines: a file torn just after a line break inside a
/// note ends in one, and its last record, cut short, is what shows the tear. A torn header
/// leaves no rows. Damage anywhere but the last record is the parser's error, refused
/// rather than cut.
fn resumable_len(path: &Path, text: &str) -> Result<usize> {
    if !text.contains('\n') {
        return Ok(0);
    }
    let mut torn = !text.ends_with('\n');
    // Flexible, so a record cut short reads (with too few fields) and names its benchmark.
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    // Read the header first, so positions are those of the data records.
    let width = match reader.headers() {
        Ok(h) => h.len(),
        Err(_) => return parse_kernel_rows(path, text).map(|_| text.len()),
    };
    let mut cut = reader.position().byte() as usize;
    let mut last: Option<String> = None;
    let mut record = csv::StringRecord::new();
    // Only the last record may be torn: a record that reads after a broken one means
    // damage inside the file, which is refused, not cut.
    let damaged = |reader: &mut csv::Reader<&[u8]>, record: &mut csv::StringRecord| {
        matches!(reader.read_record(record), Ok(true))
    };
    loop {
        let at = reader.position().byte() as usize;
        match reader.read_record(&mut record) {
            Ok(true) => {
                let bench = record.get(0).unwrap_or_default().to_string();
                if last.as_deref() != Some(bench.as_str()) {
                    cut = at;
                    last = Some(bench);
                }
                if record.len() != width {
                    // Short: torn where the file stops inside it (no final line break, or
                    // one inside a quoted note, which leaves its quote open); a short whole
                    // line, or one with a record after it, is damage.
                    let open_quote = text[at..].matches('"').count() % 2 == 1;
                    let stops_inside = !text.ends_with('\n') || open_quote;
                    if !stops_inside || damaged(&mut reader, &mut record) {
                        return parse_kernel_rows(path, text).map(|_| text.len());
                    }
                    torn = true;
                    break;
                }
            }
            Ok(false) => break,
            Err(_) => {
                if damaged(&mut reader, &mut record) {
                    return parse_kernel_rows(path, text).map(|_| text.len());
                }
                torn = true;
                break;
            }
        }
    }
    Ok(if torn { cut } else { text.len() })
}

/// What makes `new` (the run `--resume` is about to continue) a different run from `old`
/// (the folder's `run.json`), one line each: another adapter or driver, or another setting
/// that decides which benchmarks run and how they are measured. Rows of both would sit in
/// one folder under one run id, and a resumed `--suite quick` folder would fill up with the
/// default (standard) suite. Settings `old` does not record are not compared.
pub fn resume_conflicts(old: &RunInfo, new: &RunInfo) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (&old.adapter, &new.adapter);
    for (what, was, is, flag) in [
        ("adapter", &a.name, &b.name, "--adapter"),
        ("backend", &a.backend, &b.backend, "--adapter"),
        ("driver", &a.driver_info, &b.driver_info, "the same driver"),
    ] {
        if was != is {
            out.push(format!(
                "{what}: the run used `{was}`, this one `{is}` ({flag})"
            ));
        }
    }
    for (key, flag) in [
        ("suite", "--suite"),
        ("filter", "--filter"),
        ("variants", "--variant"),
        ("custom", "--kernel, --shape, --dtype"),
        ("model_dtype", "--model-dtype"),
        ("sample_size", "--sample-size"),
        ("measurement_s", "--measurement-time"),
        ("warm_up_s", "--sample-size, --measurement-time"),
        ("checked_shaders", "PRICEPERF_CHECKED_SHADERS"),
    ] {
        let Some(was) = old.settings.get(key) else {
            continue;
        };
        let is = new.settings.get(key).unwrap_or(&serde_json::Value::Null);
        if was != is {
            out.push(format!("{key}: the run used {was}, this one {is} ({flag})"));
        }
    }
    out
}

/// The rows of a `kernels.csv` that `--resume` keeps ([`resume_rows`]), without changing
/// the file: how `run` checks a folder before it starts.
pub fn read_resumable_rows(path: &Path) -> Result<Vec<KernelRow>> {
    let text = read_text(path)?;
    rows_before(path, &text, resumable_len(path, &text)?)
}

/// The rows of `text[..cut]`; none before the header's end (an empty file, or a torn header).
fn rows_before(path: &Path, text: &str, cut: usize) -> Result<Vec<KernelRow>> {
    if cut == 0 {
        return Ok(Vec::new());
    }
    parse_kernel_rows(path, &text[..cut])
}

/// The rows `--resume` continues from, with what was done to the file to continue it, one
/// line each:
///
/// - A torn tail a killed run left (`resumable_len`: the torn line and the last
///   benchmark's rows, whose batch may be incomplete) is cut from the file, which is kept
///   whole beside it as `kernels.csv.torn` (`kernels.csv.2.torn`, ... when an earlier
///   resume already kept one) so nothing is lost.
/// - A file of the first schema (23 columns) gets the current header, its rows two empty
///   cells each, so that the rows this run appends match the header. The cells are copied
///   as they are, and the rewritten file must read back as the same rows, else nothing is
///   changed.
///
/// Either rewrite is one atomic replace of the file.
pub fn resume_rows(path: &Path) -> Result<(Vec<KernelRow>, Vec<String>)> {
    let text = read_text(path)?;
    let cut = resumable_len(path, &text)?;
    let rows = rows_before(path, &text, cut)?;
    let mut said = Vec::new();
    let mut kept = text[..cut].to_string();
    if cut > 0 && header_width(&kept) == Some(KERNEL_HEADER_V1_LEN) {
        kept = upgrade_v1(path, &kept, &rows)?;
        said.push(format!(
            "{} was written with the {KERNEL_HEADER_V1_LEN} columns of an earlier priceperf: it now has the current {} (the new ones empty in its {} rows), so that the rows of this run fit under its header",
            path.display(),
            KERNEL_HEADER.len(),
            rows.len()
        ));
    }
    if cut < text.len() {
        let torn = free_name(path, "torn");
        write_atomic(&torn, text.as_bytes())?;
        said.insert(
            0,
            format!(
                "{} ended in a torn line (the run was killed while writing it): cut it and the last benchmark's rows, which --resume measures again; the file as it was is in {}",
                path.display(),
                torn.display()
            ),
        );
    }
    if kept != text {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok((rows, said))
}

/// The number of cells in the first record of `text`.
fn header_width(text: &str) -> Option<usize> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .next()?
        .ok()
        .map(|r| r.len())
}

/// `text` (a whole kernels.csv of the first schema, `rows` as read from it) with the
/// current header and two empty cells on each row. Every old cell is copied verbatim;
/// the result must parse back to `rows`.
fn upgrade_v1(path: &Path, text: &str, rows: &[KernelRow]) -> Result<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    w.write_record(KERNEL_HEADER).expect("writing to memory");
    let extra = KERNEL_HEADER.len() - KERNEL_HEADER_V1_LEN;
    for record in reader.records() {
        // `rows` parsed from this text, so every record reads.
        let record = record.map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            line: e.position().map_or(1, |p| p.line()),
            column: 1,
            what: format!("malformed CSV: {e}"),
            fix: "Restore the file from a copy".into(),
        })?;
        let cells = record.iter().chain(std::iter::repeat_n("", extra));
        w.write_record(cells).expect("writing to memory");
    }
    let out = String::from_utf8(w.into_inner().expect("flushing memory")).expect("UTF-8 cells");
    match parse_kernel_rows(path, &out) {
        Ok(back) if back == rows => Ok(out),
        _ => Err(Error::BadFile {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            what: format!(
                "the file has the {KERNEL_HEADER_V1_LEN} columns of an earlier priceperf, and adding the current columns would change its rows"
            ),
            fix: "Nothing was changed. Resume into a copy of the folder made with that earlier priceperf, or start a new run with another --out".into(),
        }),
    }
}

/// `path` with `.<suffix>` added (`kernels.csv.torn`), or, when that exists, the first of
/// `kernels.csv.2.torn`, `kernels.csv.3.torn`, ... that does not: a second torn resume
/// must not replace the file kept by the first.
fn free_name(path: &Path, suffix: &str) -> PathBuf {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let first = path.with_extension(format!("{ext}.{suffix}"));
    if !first.exists() {
        return first;
    }
    (2..)
        .map(|n| path.with_extension(format!("{ext}.{n}.{suffix}")))
        .find(|p| !p.exists())
        .expect("some number is free")
}

/// Write a whole file atomically: a temporary file in the same folder, then a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp: PathBuf = path.with_extension(format!(
        "{}.tmp{}",
        path.extension().and_then(|e| e.to_str()).unwrap_or(""),
        std::process::id()
    ));
    {
        let mut f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(contents)
            .map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
    }
    fs::rename(&tmp, path).map_err(|e| Error::io("rename into", path, e))
}

/// Everything a run produced, as written to `results.json`. Token and cost rows are
/// derived from the kernel rows and the catalog, so readers recompute rather than read them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultSet {
    pub run: RunInfo,
    pub kernels: Vec<KernelRow>,
    #[serde(default, skip_deserializing)]
    pub tokens: Vec<TokensRow>,
    #[serde(default, skip_deserializing)]
    pub costs: Vec<CostRow>,
    /// What the composition and pricing steps noticed (unpriced models, stale prices).
    #[serde(default)]
    pub notes: Vec<String>,
}

const TOKENS_HEADER: &[&str] = &[
    "model",
    "phase",
    "batch",
    "prompt_len",
    "context_len",
    "tokens_per_s",
    "tokens_per_s_low",
    "tokens_per_s_high",
    "basis",
];

impl CsvRow for TokensRow {
    fn header() -> &'static [&'static str] {
        TOKENS_HEADER
    }

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.model.clone()),
            Cell::Text(self.phase.to_string()),
            Cell::Int(Some(self.batch.into())),
            Cell::Int(self.prompt_len.map(u64::from)),
            Cell::Int(self.context_len.map(u64::from)),
            Cell::Num(Some(self.tokens_per_s)),
            Cell::Num(self.tokens_per_s_low),
            Cell::Num(self.tokens_per_s_high),
            Cell::Text(self.basis.as_str().into()),
        ]
    }
}

const COSTS_HEADER: &[&str] = &[
    "model",
    "phase",
    "batch",
    "prompt_len",
    "context_len",
    "accelerator",
    "provider",
    "instance",
    "region",
    "tier",
    "usd_per_hour",
    "accelerators_per_instance",
    "usd_per_accelerator_hour",
    "tokens_per_s",
    "usd_per_mtok",
    "usd_per_mtok_low",
    "usd_per_mtok_high",
    "price_as_of",
    "basis",
];

impl CsvRow for CostRow {
    fn header() -> &'static [&'static str] {
        COSTS_HEADER
    }

    fn cells(&self) -> Vec<Cell> {
        vec![
            Cell::Text(self.model.clone()),
            Cell::Text(self.phase.to_string()),
            Cell::Int(Some(self.batch.into())),
            Cell::Int(self.prompt_len.map(u64::from)),
            Cell::Int(self.context_len.map(u64::from)),
            Cell::Text(self.accelerator.clone()),
            Cell::Text(self.provider.clone()),
            Cell::Text(self.instance.clone()),
            Cell::Text(self.region.clone()),
            Cell::Text(self.tier.as_str().into()),
            Cell::Num(Some(self.usd_per_hour)),
            Cell::Int(Some(self.accelerators_per_instance.into())),
            Cell::Num(Some(self.usd_per_accelerator_hour)),
            Cell::Num(Some(self.tokens_per_s)),
            Cell::Num(Some(self.usd_per_mtok)),
            Cell::Num(self.usd_per_mtok_low),
            Cell::Num(self.usd_per_mtok_high),
            Cell::Text(self.price_as_of.clone().unwrap_or_default()),
            Cell::Text(self.basis.as_str().into()),
        ]
    }
}

/// Write a whole CSV file atomically (derived tables are rewritten, not appended).
pub fn write_csv<R: CsvRow>(path: &Path, rows: &[R]) -> Result<()> {
    write_atomic(path, csv_cells::encode(rows, true).as_bytes())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn resuming_as_another_run_is_named_setting_by_setting() {
        let info = |adapter: &str, settings: serde_json::Value| RunInfo {
            schema_version: SCHEMA_VERSION,
            run_id: "r".into(),
            started: "2026-11-28T07:00:00Z".into(),
            finished: None,
            interrupted: true,
            git_commit: None,
            host: "h".into(),
            os: "linux".into(),
            cpu_threads: 2,
            priceperf_version: "0.1.0".into(),
            wgpu_version: "30".into(),
            adapter: AdapterSummary {
                name: adapter.into(),
                ..crate::suite::tests::adapter(true)
            },
            settings,
            peaks: None,
            speed_check: None,
            time: None,
        };
        let quick = serde_json::json!({"suite": "quick", "filter": null, "sample_size": 10});
        let old = info("llvmpipe", quick.clone());
        assert!(resume_conflicts(&old, &info("llvmpipe", quick.clone())).is_empty());
        // `--resume --out DIR` without `--suite quick` asks for the default suite.
        let standard = serde_json::json!({"suite": "standard", "filter": null, "sample_size": 10});
        assert_eq!(
            resume_conflicts(&old, &info("llvmpipe", standard)),
            ["suite: the run used \"quick\", this one \"standard\" (--suite)"]
        );
        let conflicts = resume_conflicts(
            &old,
            &info(
                "NVIDIA H200",
                serde_json::json!({"suite": "quick", "filter": "matmul", "sample_size": 10}),
            ),
        );
        assert_eq!(conflicts.len(), 2, "{conflicts:?}");
        assert!(
            conflicts[0].starts_with("adapter: the run used `llvmpipe`, this one `NVIDIA H200`")
        );
        assert!(conflicts[1].starts_with("filter: the run used null, this one \"matmul\""));
        // A setting the old run.json does not record is not compared.
        let older = info("llvmpipe", serde_json::json!({"suite": "quick"}));
        assert!(resume_conflicts(&older, &info("llvmpipe", quick)).is_empty());
    }

    pub(crate) fn row(variant: &str, status: Status) -> KernelRow {
        KernelRow {
            benchmark: "matmul/f32/m=8,n=8,k=8".into(),
            kernel: "matmul".into(),
            variant: variant.into(),
            dtype: DType::F32,
            shape: "m=8,n=8,k=8".into(),
            adapter: "=cmd|' /C calc'!A0".into(),
            backend: "vulkan".into(),
            driver: "llvmpipe".into(),
            timing: Some(TimingMethod::Device),
            samples: Some(10),
            median_ns: None,
            ci_low_ns: None,
            ci_high_ns: None,
            flops: 1024,
            bytes: 768,
            gflops: None,
            gbps: None,
            pct_of_peak: None,
            verified: status == Status::Ok,
            max_rel_err: Some(1.5e-7),
            status,
            chosen: false,
            note: "a, \"quoted\"\nnote".into(),
            pct_of_measured_flops: None,
            pct_of_measured_bw: None,
        }
        .with_time(1000.0, 900.0, 1100.0)
    }

    #[test]
    fn kernel_rows_round_trip_through_csv() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        let rows = vec![row("naive", Status::Ok), row("reg", Status::Failed)];
        append_rows(&path, &rows[..1]).unwrap();
        append_rows(&path, &rows[1..]).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.matches("benchmark,kernel").count(), 1, "one header");
        assert!(text.contains("'=cmd"), "injection escaped: {text}");
        assert_eq!(read_kernel_rows(&path).unwrap(), rows);
    }

    /// A run killed while appending leaves a torn last line; --resume cuts it and the last
    /// benchmark's rows (its batch may be incomplete), keeps the file as it was beside it,
    /// and a whole file is left alone.
    #[test]
    fn a_torn_tail_is_cut_with_the_last_benchmarks_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        let of = |bench: &str, variant: &str| KernelRow {
            benchmark: bench.into(),
            ..row(variant, Status::Ok)
        };
        let first = [of("a", "naive"), of("a", "reg")];
        let both = [
            of("a", "naive"),
            of("a", "reg"),
            of("b", "naive"),
            of("b", "reg"),
        ];
        append_rows(&path, &first).unwrap();
        append_rows(&path, &both[2..]).unwrap();
        assert!(
            resume_rows(&path).unwrap().1.is_empty(),
            "a whole file stays"
        );
        let whole = fs::read_to_string(&path).unwrap();
        // Torn inside b's batch: b's rows go (b is measured again).
        fs::write(&path, &whole[..whole.len() - 7]).unwrap();
        assert_eq!(read_resumable_rows(&path).unwrap(), first);
        // Torn in the first record of c's batch: b's batch was whole, and stays.
        fs::write(&path, format!("{whole}c,matm")).unwrap();
        assert_eq!(read_resumable_rows(&path).unwrap(), both);
        assert!(
            read_kernel_rows(&path).is_err(),
            "read_resumable_rows changed nothing"
        );
        let (kept_rows, said) = resume_rows(&path).unwrap();
        assert!(said.len() == 1 && said[0].contains("torn line"), "{said:?}");
        assert_eq!(kept_rows, both);
        assert_eq!(read_kernel_rows(&path).unwrap(), both);
        let kept = fs::read_to_string(path.with_extension("csv.torn")).unwrap();
        assert_eq!(kept, format!("{whole}c,matm"));
        // A tear in the first benchmark's batch keeps the header; one inside a note that
        // spans lines is found by records, not lines.
        let solo = dir.path().join("solo.csv");
        append_rows(&solo, &first).unwrap();
        let one = fs::read_to_string(&solo).unwrap();
        fs::write(&solo, &one[..one.len() - 7]).unwrap();
        assert!(read_resumable_rows(&solo).unwrap().is_empty());
        assert_eq!(resume_rows(&solo).unwrap().1.len(), 1);
        assert_eq!(
            fs::read_to_string(&solo).unwrap(),
            one.lines().next().unwrap().to_string() + "\n"
        );
        let multi = KernelRow {
            note: "compile: error\nat line 3".into(),
            ..of("c", "naive")
        };
        append_rows(&path, &[multi]).unwrap();
        // Torn just before its final line break: the last line break in the file is the
        // one inside the note, where a cut by lines would split the record.
        let text = fs::read_to_string(&path).unwrap();
        fs::write(&path, text.trim_end_matches('\n')).unwrap();
        assert_eq!(read_resumable_rows(&path).unwrap(), both);
        // Torn just after the line break inside the note: the file ends in a line break,
        // but its last record is cut short (an open quote, too few fields).
        let inside = text.find("error\n").unwrap() + "error\n".len();
        fs::write(&path, &text[..inside]).unwrap();
        assert_eq!(read_resumable_rows(&path).unwrap(), both);
        // A header torn before its line break: no rows yet, resumed from the start.
        fs::write(&path, "benchmark,kern").unwrap();
        assert!(read_resumable_rows(&path).unwrap().is_empty());
        // Damage before the tail is not a torn append: refused, the file untouched.
        let bad = whole.replacen(",naive,", ",naive,\"", 1) + "x";
        fs::write(&path, &bad).unwrap();
        assert!(resume_rows(&path).is_err());
        assert_eq!(fs::read_to_string(&path).unwrap(), bad);
    }

    /// The text of a kernels.csv of the first schema (23 columns) holding `rows`.
    fn v1_file(rows: &[KernelRow]) -> String {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(&KERNEL_HEADER[..KERNEL_HEADER_V1_LEN])
            .unwrap();
        for r in rows {
            let cells: Vec<String> = r.cells().iter().map(Cell::encode).collect();
            w.write_record(&cells[..KERNEL_HEADER_V1_LEN]).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    /// `--resume` onto a kernels.csv of the first schema appended 25-cell rows under its
    /// 23-column header: a file nothing could read, whose error advised another resume.
    #[test]
    fn resume_upgrades_a_first_schema_file_before_appending() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        let old = vec![row("naive", Status::Ok), row("reg", Status::Failed)];
        let v1 = v1_file(&old);
        fs::write(&path, &v1).unwrap();
        assert_eq!(
            read_resumable_rows(&path).unwrap(),
            old,
            "the first schema reads"
        );

        let (rows, said) = resume_rows(&path).unwrap();
        assert_eq!(rows, old);
        assert!(
            said.len() == 1 && said[0].contains("earlier priceperf"),
            "{said:?}"
        );
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&KERNEL_HEADER.join(",")), "{text}");
        // Every old cell verbatim, then the two new ones empty.
        let body = |t: &str| t.split_once('\n').unwrap().1.to_string();
        assert_eq!(body(&text).replace(",,\n", "\n"), body(&v1));

        let new = KernelRow {
            pct_of_measured_flops: Some(50.0),
            ..row("tiled", Status::Ok)
        };
        append_rows(&path, std::slice::from_ref(&new)).unwrap();
        let all = read_kernel_rows(&path).unwrap();
        assert_eq!(all[..2], old[..]);
        assert_eq!(all[2], new);
        // Already current: a second resume changes nothing.
        assert!(resume_rows(&path).unwrap().1.is_empty());
    }

    /// Whatever else reaches append_rows with a file of another header is refused, not
    /// appended under it.
    #[test]
    fn append_refuses_a_file_with_another_header() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        let v1 = v1_file(&[row("naive", Status::Ok)]);
        fs::write(&path, &v1).unwrap();
        let err = append_rows(&path, &[row("reg", Status::Ok)]).unwrap_err();
        assert!(err.to_string().contains("cannot be appended"), "{err}");
        assert_eq!(fs::read_to_string(&path).unwrap(), v1, "nothing appended");
    }

    #[test]
    fn a_file_from_a_newer_priceperf_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        let text = fs::read_to_string({
            append_rows(&path, &[row("naive", Status::Ok)]).unwrap();
            &path
        })
        .unwrap();
        let (header, body) = text.split_once('\n').unwrap();
        let newer = format!("{header},joules\n{},12.5\n", body.trim_end());
        fs::write(&path, newer).unwrap();
        let err = read_kernel_rows(&path).unwrap_err().to_string();
        assert!(
            err.contains(":1:26:") && err.contains("newer priceperf") && err.contains("`joules`"),
            "{err}"
        );
        assert!(!err.contains("restore it from a copy"), "{err}");
    }

    /// A second torn resume keeps the first one's copy.
    #[test]
    fn torn_copies_are_numbered_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        append_rows(&path, &[row("naive", Status::Ok)]).unwrap();
        let whole = fs::read_to_string(&path).unwrap();
        for (n, name) in [
            "kernels.csv.torn",
            "kernels.csv.2.torn",
            "kernels.csv.3.torn",
        ]
        .iter()
        .enumerate()
        {
            let torn = format!("{whole}b{n},mat");
            fs::write(&path, &torn).unwrap();
            let said = resume_rows(&path).unwrap().1;
            assert!(said[0].contains(name), "{said:?}");
            assert_eq!(fs::read_to_string(dir.path().join(name)).unwrap(), torn);
            assert_eq!(fs::read_to_string(&path).unwrap(), whole);
        }
    }

    /// The time line says how much of the measuring went to repeats, so an overhead share
    /// can be read with and without them, and how much of the search warmed a GPU up; a
    /// run.json from before those fields reads as none.
    #[test]
    fn the_time_line_names_repeated_measurements() {
        let time = RunTime {
            total_s: 100.0,
            measure_chosen_s: 60.0,
            measure_repeat_s: 9.0,
            repeats: 7,
            native_s: 4.0,
            ..RunTime::default()
        };
        let line = time.describe();
        assert!(
            line.contains(
                "measuring chosen kernels 60 s (60%; 9 s of it measuring 7 wide intervals again)"
            ) && line.contains("overhead 36 s (36%)"),
            "{line}"
        );
        assert!(!RunTime::default().describe().contains("again"));
        let warmed = RunTime {
            total_s: 100.0,
            measure_search_s: 30.0,
            search_warm_up_s: 12.0,
            searched: 5,
            ..RunTime::default()
        };
        assert!(
            warmed.describe().contains(
                "tuning search 30 (12.0 s of it warming the GPU up, 5 benchmarks searched"
            ),
            "{}",
            warmed.describe()
        );
        assert!(!RunTime::default().describe().contains("warming"));
        let old: RunTime = serde_json::from_str(
            r#"{"total_s":1,"setup_s":0,"peaks_s":0,"compile_s":0,"verify_s":0,"measure_chosen_s":1,"measure_search_s":0,"native_s":0,"searched":1,"cached":0}"#,
        )
        .unwrap();
        assert_eq!((old.measure_repeat_s, old.repeats), (0.0, 0));
        assert_eq!(old.search_warm_up_s, 0.0);
    }

    #[test]
    fn wide_intervals_on_chosen_rows_get_a_note() {
        let chosen = |benchmark: &str, low: f64, high: f64, samples: u64| KernelRow {
            benchmark: benchmark.into(),
            chosen: true,
            samples: Some(samples),
            ..row("naive", Status::Ok).with_time(1000.0, low, high)
        };
        // ±10% (900..1100) is within the limit; so is a wide screen-only row (3 samples)
        // and a wide row that was not chosen.
        let calm = vec![
            chosen("a", 900.0, 1100.0, 10),
            chosen("b", 500.0, 1500.0, 3),
            row("naive", Status::Ok).with_time(1000.0, 500.0, 1500.0),
        ];
        assert_eq!(calm[0].spread(), Some(0.1));
        assert_eq!(noisy_note(&calm), None);
        assert_eq!(wide_interval(&calm[0]), None);
        let mut rows = calm;
        rows.push(chosen("matmul/f32/m=1024,n=1024,k=1024", 800.0, 1300.0, 10));
        let note = noisy_note(&rows).expect("a note");
        assert!(
            note.starts_with("1 of 3 chosen rows") && note.contains("m=1024,n=1024,k=1024 ±25%"),
            "{note}"
        );
        let wide = wide_interval(rows.last().unwrap()).expect("a row note");
        assert!(wide.contains("±25%"), "{wide}");
    }

    #[test]
    fn a_note_names_the_first_few_and_counts_the_rest() {
        let items: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        assert_eq!(first_of(&items, 5), "a, b, c, d");
        assert_eq!(first_of(&items, 4), "a, b, c, d");
        assert_eq!(first_of(&items, 3), "a, b, c and 1 more");
        assert_eq!(first_of(&items[..0], 3), "");
    }

    #[test]
    fn chosen_rows_above_the_measured_bandwidth_get_a_note() {
        let at = |benchmark: &str, pct: Option<f64>, chosen: bool| KernelRow {
            benchmark: benchmark.into(),
            chosen,
            pct_of_measured_bw: pct,
            ..row("gemv_stex_t4_x4", Status::Ok)
        };
        // At or under the probe, without a probe, or not chosen: nothing to say.
        let calm = vec![
            at("a", Some(100.0), true),
            at("b", None, true),
            at("c", Some(300.0), false),
        ];
        assert_eq!(over_bandwidth_note(&calm), None);
        let mut rows = calm;
        rows.push(at(
            "matmul/f16/m=1,n=768,k=768,transpose_b=1",
            Some(160.6),
            true,
        ));
        rows.push(at(
            "matmul/f16/m=1,n=3072,k=768,transpose_b=1",
            Some(233.2),
            true,
        ));
        let note = over_bandwidth_note(&rows).expect("a note");
        assert!(
            note.starts_with("2 of 4 chosen rows")
                && note.contains("n=3072,k=768,transpose_b=1 233%, matmul/f16/m=1,n=768")
                && note.contains("optimistic"),
            "{note}"
        );
    }

    #[test]
    fn malformed_rows_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kernels.csv");
        append_rows(&path, &[row("naive", Status::Ok)]).unwrap();
        let text = fs::read_to_string(&path)
            .unwrap()
            .replace(",1000,900,", ",fast,900,");
        fs::write(&path, text).unwrap();
        let err = read_kernel_rows(&path).unwrap_err().to_string();
        assert!(err.contains("kernels.csv:2:11"), "{err}");
        assert!(err.contains("median_ns"), "{err}");
    }

    #[test]
    fn atomic_write_replaces_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.json");
        write_atomic(&path, b"old").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
