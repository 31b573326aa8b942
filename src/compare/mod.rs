//! Regression detection between two result sets (`priceperf compare BASE HEAD`).
//!
//! Kernel rows are matched by their [`NaturalKey`] (benchmark, variant, shape, dtype,
//! adapter, driver). For each matched pair with a time on both sides:
//!
//! - change = head median / base median - 1, with a conservative interval
//!   [head ci_low / base ci_high - 1, head ci_high / base ci_low - 1] built from the two 95%
//!   bootstrap intervals of the medians;
//! - **regressed** when change > threshold AND the evidence says the slowdown is real: the
//!   two 95% intervals separate (head ci_low > base ci_high), or, when both runs kept their
//!   raw samples, a one-sided Mann-Whitney test gives p < [`DEFAULT_ALPHA`];
//! - a change beyond the threshold without that evidence is **inconclusive** (reported,
//!   never failing); improvements are judged the same way in the other direction.
//!
//! A correctness regression (a row that failed in HEAD but not in BASE, or a new row that
//! fails) always fails, and so does a benchmark BASE measured that HEAD, on the same adapter
//! and driver, did not ([`Verdict::Missing`]; `--allow-missing` lets it pass). Timing
//! regressions and timeouts fail too, except on software adapters (lavapipe), whose times swing with whatever else shares the CPU: there they are
//! reported as informational unless `--timing-gate on` ([`TimingGate`]). Rows present on
//! one side only are listed; rows of an adapter the other side never ran are summarised per
//! adapter. Exit codes: 0 nothing regressed, 1 a regression, 2 bad input (including two
//! sides that share no row at all, which is almost always a wrong path or a changed
//! driver).
//!
//! Thresholds: `--threshold PCT` (default [`DEFAULT_THRESHOLD_PCT`]) and a thresholds file
//! of `PCT REGEX` lines, first match on `benchmark/variant` wins ([`Thresholds`]).
//!
//! The token rates both sides hold are listed after the rows, informational ([`tokens`]),
//! and so are the cheapest costs per million tokens and the offerings whose price changed
//! ([`costs`]).

pub mod costs;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Serialize;

use crate::dataset::{NaturalKey, Run};
use crate::error::{Error, Result, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK};
use crate::report::{self, table};
use crate::results::{KernelRow, Status};

/// Default regression threshold in percent, for rows whose timing is gated. Chosen from
/// back-to-back `--suite quick` runs of one commit on a shared 2-core lavapipe machine: on
/// an otherwise idle machine the medians of rows whose 95% intervals separated moved by up to
/// 9.5%, so 10% would leave no margin and 15% leaves some. With other work on the CPU the
/// same rows moved by 40% (load average 3) to 9.5x (heavy load): no threshold absorbs that,
/// which is why software adapters are not timing-gated by default ([`TimingGate::Auto`]).
/// Dedicated GPU runners are quieter; the GPU workflow passes `--threshold 5` and a
/// thresholds file (docs/ci.md has the data and the A/A check).
pub const DEFAULT_THRESHOLD_PCT: f64 = 15.0;

/// One-sided significance level of the Mann-Whitney test on stored samples.
pub const DEFAULT_ALPHA: f64 = 0.001;

/// Fewest samples per side for the rank test to be used.
const MIN_SAMPLES_FOR_TEST: usize = 5;

/// A row with fewer samples than this was not measured in full: its timing verdict is
/// shown, never gated.
const MIN_SAMPLES_FOR_GATE: u64 = crate::results::FULL_MEASUREMENT_SAMPLES;

/// Per-benchmark thresholds: lines of `PCT REGEX`, `#` comments, first match on
/// `benchmark/variant` wins; rows no line matches use the default.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    pub source: Option<PathBuf>,
    rules: Vec<(Regex, f64)>,
}

impl Thresholds {
    /// Read a thresholds file.
    pub fn read(path: &Path) -> Result<Thresholds> {
        let text = crate::results::read_text(path)?;
        Thresholds::parse(path, &text)
    }

    /// Parse thresholds text; `path` is used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<Thresholds> {
        let bad = |line: usize, column: usize, what: String| {
            Error::BadFile {
            path: path.to_path_buf(),
            line: line as u64,
            column: column as u64,
            what,
            fix: "Each line is a percentage and a regular expression on benchmark/variant, e.g. `25 ^matmul/f32/.*/naive$`; `#` starts a comment".into(),
        }
        };
        // A byte-order mark (Windows editors add one) is not part of the first line, as
        // for CSV files (`Table::read`): left in, the first percentage read as "`25` is not
        // a percentage", the mark invisible in the message.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let content = raw.trim_start();
            let indent = raw.len() - content.len();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let (pct_text, rest) = content
                .split_once(char::is_whitespace)
                .unwrap_or((content, ""));
            let pattern = rest.trim();
            let pct: f64 = pct_text
                .trim_end_matches('%')
                .parse()
                .ok()
                .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                .ok_or_else(|| {
                    bad(
                        line,
                        indent + 1,
                        format!("`{pct_text}` is not a percentage of 0 or more"),
                    )
                })?;
            let column = raw.len() - rest.trim_start().len() + 1;
            if pattern.is_empty() {
                return Err(bad(
                    line,
                    column,
                    "the regular expression is missing".into(),
                ));
            }
            let re = Regex::new(pattern)
                .map_err(|e| bad(line, column, format!("not a regular expression: {e}")))?;
            rules.push((re, pct));
        }
        Ok(Thresholds {
            source: Some(path.to_path_buf()),
            rules,
        })
    }

    /// The threshold for a row, if a line matches it.
    pub fn for_key(&self, key: &NaturalKey) -> Option<f64> {
        let id = key.id();
        self.rules
            .iter()
            .find(|(re, _)| re.is_match(&id))
            .map(|(_, p)| *p)
    }
}

/// Output formats of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    /// Aligned columns for a terminal.
    Table,
    /// Markdown for a pull-request comment or a job summary.
    Md,
    /// Everything, for programs.
    Json,
}

/// `priceperf compare`: load both sides, compare, print; the exit code says whether
/// anything regressed.
pub fn execute(args: &crate::cli::CompareArgs) -> Result<i32> {
    if !(args.threshold.is_finite() && args.threshold >= 0.0) {
        return Err(Error::bad_input(
            format!(
                "--threshold {} is not a percentage of 0 or more",
                args.threshold
            ),
            "Pass e.g. --threshold 10 for 10%.",
        ));
    }
    let thresholds = match &args.thresholds {
        Some(p) => Thresholds::read(p)?,
        None => Thresholds::default(),
    };
    let opts = Options {
        threshold_pct: args.threshold,
        thresholds,
        timing_gate: args.timing_gate,
        allow_missing: args.allow_missing,
        ..Options::default()
    };
    let base = crate::dataset::load(&args.base)?;
    let head = crate::dataset::load(&args.head)?;
    let c = compare(
        &args.base.display().to_string(),
        &base,
        &args.head.display().to_string(),
        &head,
        &opts,
    )?;
    crate::export::write_stdout(&match args.format {
        CompareFormat::Table => render_table(&c),
        CompareFormat::Md => render_markdown(&c),
        CompareFormat::Json => render_json(&c),
    })?;
    Ok(c.exit_code())
}

/// How `compare` decides.
#[derive(Debug, Clone)]
pub struct Options {
    /// Threshold in percent for rows no thresholds-file line matches.
    pub threshold_pct: f64,
    pub thresholds: Thresholds,
    /// Significance level of the rank test on stored samples.
    pub alpha: f64,
    /// Whether timing regressions (and timeouts) fail; correctness regressions always do.
    pub timing_gate: TimingGate,
    /// Whether a benchmark BASE measured and HEAD did not ([`Verdict::Missing`]) is let pass
    /// (`--allow-missing`): for a HEAD that runs a subset on purpose.
    pub allow_missing: bool,
}

/// Which rows' timing regressions make `compare` fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TimingGate {
    /// Every row except those measured on a software adapter (lavapipe and other CPU
    /// adapters), whose times swing with whatever else the CPU runs: reported, not gated.
    Auto,
    /// Every row.
    On,
    /// No row: timing is informational, only correctness fails.
    Off,
}

impl TimingGate {
    fn applies(self, software_adapter: bool) -> bool {
        match self {
            TimingGate::Auto => !software_adapter,
            TimingGate::On => true,
            TimingGate::Off => false,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold_pct: DEFAULT_THRESHOLD_PCT,
            thresholds: Thresholds::default(),
            alpha: DEFAULT_ALPHA,
            timing_gate: TimingGate::Auto,
            allow_missing: false,
        }
    }
}

/// The outcome for one natural key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Failed or timed out in HEAD, not in BASE (or new in HEAD and failing).
    Failed,
    /// Slower beyond the threshold, with evidence.
    Regressed,
    /// Timed out in HEAD, not in BASE: a hang, or an extreme slowdown. Gated like a timing
    /// regression: a slow software adapter can time out under load.
    TimedOut,
    /// BASE measured the benchmark (its chosen variant has a time) and HEAD, on the same
    /// adapter and driver, has no measured chosen row for it: not run (another suite or
    /// filter, a crash) or not measured (a test-mode or over-budget run). Fails unless
    /// `--allow-missing`: a HEAD that measured nothing would otherwise pass as "no
    /// regressions".
    Missing,
    /// Beyond the threshold in either direction, but the evidence does not separate it
    /// from noise.
    Inconclusive,
    /// Failed in both.
    StillFailed,
    /// Failed in BASE, verified in HEAD.
    Fixed,
    /// Faster beyond the threshold, with evidence.
    Improved,
    /// Within the threshold.
    Unchanged,
    /// Present on both sides, but at least one has no time (skipped, or not measured).
    NotMeasured,
    OnlyBase,
    OnlyHead,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Failed => "FAILED",
            Verdict::Regressed => "REGRESSED",
            Verdict::TimedOut => "TIMED OUT",
            Verdict::Missing => "MISSING",
            Verdict::Inconclusive => "inconclusive",
            Verdict::StillFailed => "still failed",
            Verdict::Fixed => "fixed",
            Verdict::Improved => "improved",
            Verdict::Unchanged => "unchanged",
            Verdict::NotMeasured => "not measured",
            Verdict::OnlyBase => "only in base",
            Verdict::OnlyHead => "only in head",
        }
    }

    /// Whether this verdict makes `compare` exit 1, given whether timing gates its row.
    pub fn fails(self, timing_gate: bool) -> bool {
        match self {
            Verdict::Failed => true,
            Verdict::Regressed | Verdict::TimedOut => timing_gate,
            _ => false,
        }
    }
}

/// One side of a matched row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SideRow {
    pub run_id: String,
    pub status: Status,
    pub verified: bool,
    pub median_ns: Option<f64>,
    pub ci_low_ns: Option<f64>,
    pub ci_high_ns: Option<f64>,
    /// Stored raw samples available for this row.
    pub raw_samples: usize,
    pub note: String,
}

/// The comparison of one natural key.
#[derive(Debug, Clone, Serialize)]
pub struct RowChange {
    pub key: NaturalKey,
    pub verdict: Verdict,
    pub base: Option<SideRow>,
    pub head: Option<SideRow>,
    /// head / base - 1, in percent (positive is slower).
    pub change_pct: Option<f64>,
    pub change_low_pct: Option<f64>,
    pub change_high_pct: Option<f64>,
    pub threshold_pct: f64,
    /// Whether a timing verdict on this row (regressed, timed out) fails the comparison.
    pub timing_gated: bool,
    /// One-sided Mann-Whitney p-value in the direction of the change, when both sides
    /// kept raw samples.
    pub p_value: Option<f64>,
    /// Why the verdict: which evidence decided it.
    pub reason: String,
}

/// Where one side came from.
#[derive(Debug, Clone, Serialize)]
pub struct SideInfo {
    pub path: String,
    pub runs: Vec<RunSummary>,
    pub rows: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub git_commit: Option<String>,
    pub host: String,
    pub adapter: String,
}

/// An adapter that only one side ran, summarised instead of listed row by row.
#[derive(Debug, Clone, Serialize)]
pub struct AdapterOnly {
    pub adapter: String,
    pub rows: usize,
}

/// Everything `compare` found.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub schema_version: u32,
    pub base: SideInfo,
    pub head: SideInfo,
    pub default_threshold_pct: f64,
    pub thresholds_file: Option<String>,
    pub alpha: f64,
    pub timing_gate: TimingGate,
    /// `--allow-missing`: [`Verdict::Missing`] rows are listed but do not fail.
    pub allow_missing: bool,
    pub rows: Vec<RowChange>,
    pub adapters_only_in_base: Vec<AdapterOnly>,
    pub adapters_only_in_head: Vec<AdapterOnly>,
    pub counts: BTreeMap<Verdict, usize>,
    /// Median of the changes of every row timed on both sides (the common mode).
    pub median_change_pct: Option<f64>,
    /// Things a reader should know before trusting the verdicts.
    pub warnings: Vec<String>,
    /// Runs on either side that did not finish (crashed, killed, stopped early): the rows
    /// of the benchmarks they never reached are missing, so the comparison is incomplete
    /// and exits 2 whatever the rows say.
    pub incomplete_runs: Vec<String>,
    /// The token rates (`tokens.csv`) both sides hold, informational: they follow from the
    /// chosen rows above.
    pub tokens: Vec<tokens::TokenChange>,
    /// The costs (`costs.csv`) both sides hold, informational: each follows from a token
    /// rate above and its offering's price.
    pub costs: costs::CostChanges,
}

impl Comparison {
    /// 2 when a side's run did not finish, else 1 when a row fails (a correctness
    /// regression, or a timing regression with the gate on), else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.incomplete_runs.is_empty() {
            EXIT_BAD_INPUT
        } else if self.rows.iter().any(|r| {
            r.verdict.fails(r.timing_gated)
                || (r.verdict == Verdict::Missing && !self.allow_missing)
        }) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }
    }

    pub fn count(&self, v: Verdict) -> usize {
        self.counts.get(&v).copied().unwrap_or(0)
    }
}

/// Compare two result sets (each one or more runs).
pub fn compare(
    base_path: &str,
    base: &[Run],
    head_path: &str,
    head: &[Run],
    opts: &Options,
) -> Result<Comparison> {
    let base_rows = index_side("BASE", base_path, base)?;
    let head_rows = index_side("HEAD", head_path, head)?;
    for (name, path, rows) in [
        ("BASE", base_path, &base_rows),
        ("HEAD", head_path, &head_rows),
    ] {
        if rows.is_empty() {
            return Err(Error::bad_input(
                format!("{name} ({path}) holds no kernel rows"),
                "The run was interrupted before its first benchmark finished; rerun it (priceperf run --resume continues it).",
            ));
        }
    }
    let adapters = |rows: &BTreeMap<NaturalKey, Entry>| -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for k in rows.keys() {
            *m.entry(k.adapter.clone()).or_insert(0) += 1;
        }
        m
    };
    let base_adapters = adapters(&base_rows);
    let head_adapters = adapters(&head_rows);
    let only = |a: &BTreeMap<String, usize>, b: &BTreeMap<String, usize>| -> Vec<AdapterOnly> {
        a.iter()
            .filter(|(name, _)| !b.contains_key(*name))
            .map(|(name, rows)| AdapterOnly {
                adapter: name.clone(),
                rows: *rows,
            })
            .collect()
    };
    let adapters_only_in_base = only(&base_adapters, &head_adapters);
    let adapters_only_in_head = only(&head_adapters, &base_adapters);

    let keys: BTreeSet<&NaturalKey> = base_rows.keys().chain(head_rows.keys()).collect();
    let mut rows = Vec::new();
    let mut matched = 0;
    // Kernel rows (not the native GEMM's, whose driver never changes) matched per adapter.
    let mut matched_on: BTreeMap<&str, usize> = BTreeMap::new();
    for key in keys {
        let b = base_rows.get(key);
        let h = head_rows.get(key);
        if b.is_some() && h.is_some() {
            matched += 1;
            if key.variant != crate::native::VARIANT {
                *matched_on.entry(&key.adapter).or_insert(0) += 1;
            }
        }
        let on_shared_adapter =
            base_adapters.contains_key(&key.adapter) && head_adapters.contains_key(&key.adapter);
        // A new failing row always fails, on an adapter BASE never ran too; the rest of a
        // one-sided adapter's rows are summarised per adapter.
        let new_failure = b.is_none() && h.is_some_and(|h| is_failure(h.row.status));
        if (b.is_none() || h.is_none()) && !on_shared_adapter && !new_failure {
            continue;
        }
        let threshold = opts.thresholds.for_key(key).unwrap_or(opts.threshold_pct);
        let mut row = judge(key, b, h, threshold, opts.alpha);
        gate_timing(&mut row, b, h, opts.timing_gate);
        rows.push(row);
    }
    // Tokens and prices use each benchmark's chosen variant. When the two sides chose
    // different variants, each variant's own row is only on one side (a warm tuning cache
    // measures only the chosen one), so the benchmark's chosen rows are judged against
    // each other: a change that makes the search pick a slower kernel is a regression.
    let head_chosen = chosen_rows("HEAD", head_path, &head_rows)?;
    let base_chosen = chosen_rows("BASE", base_path, &base_rows)?;
    for (at, &b) in &base_chosen {
        let Some(&h) = head_chosen.get(at) else {
            continue;
        };
        if b.row.variant == h.row.variant {
            continue;
        }
        let key = NaturalKey {
            variant: format!("chosen: {} -> {}", b.row.variant, h.row.variant),
            ..NaturalKey::of(h.row)
        };
        let threshold = opts.thresholds.for_key(&key).unwrap_or(opts.threshold_pct);
        let mut row = judge(&key, Some(b), Some(h), threshold, opts.alpha);
        row.reason = format!(
            "the chosen variant changed from {} to {}: {}",
            b.row.variant, h.row.variant, row.reason
        );
        gate_timing(&mut row, Some(b), Some(h), opts.timing_gate);
        rows.push(row);
        matched += 1;
        *matched_on.entry(&h.row.adapter).or_insert(0) += 1;
    }
    // Coverage: every benchmark BASE measured, HEAD measured too, where HEAD ran the same
    // adapter and driver.
    let head_ran: BTreeSet<(&str, &str)> = head_rows
        .keys()
        .map(|k| (k.adapter.as_str(), k.driver.as_str()))
        .collect();
    let timed = |e: &Entry| e.row.status == Status::Ok && e.row.median_ns.is_some();
    for (at, &b) in &base_chosen {
        if !timed(b) || !head_ran.contains(&(at.1.as_str(), at.2.as_str())) {
            continue;
        }
        let measured_in_head = head_chosen.get(at).is_some_and(|h| timed(h));
        if measured_in_head {
            continue;
        }
        let key = NaturalKey {
            variant: format!("chosen: {}", b.row.variant),
            ..NaturalKey::of(b.row)
        };
        let mut row = judge(&key, Some(b), None, opts.threshold_pct, opts.alpha);
        row.verdict = Verdict::Missing;
        row.reason = match head_chosen.get(at) {
            Some(h) => format!(
                "measured in base ({}); head's chosen row ({}) has no time: {}",
                b.row.variant,
                h.row.variant,
                short(&h.row.note)
            ),
            None => format!(
                "measured in base ({}); head did not run it (another suite or filter?)",
                b.row.variant
            ),
        };
        rows.push(row);
    }
    if matched == 0 {
        let keys = |m: &BTreeMap<NaturalKey, Entry>| m.keys().cloned().collect::<Vec<_>>();
        return Err(no_overlap(
            base_path,
            &keys(&base_rows),
            head_path,
            &keys(&head_rows),
            None,
        ));
    }
    // An adapter both sides ran whose kernel rows matched nowhere (its driver changed, say)
    // would only list its rows as one-sided, which never fails: its regressions would pass
    // unjudged while the other adapters' rows compare.
    for adapter in base_adapters
        .keys()
        .filter(|a| head_adapters.contains_key(*a))
    {
        if matched_on.get(adapter.as_str()).copied().unwrap_or(0) > 0 {
            continue;
        }
        let on = |m: &'_ BTreeMap<NaturalKey, Entry>| -> Vec<NaturalKey> {
            m.keys()
                .filter(|k| &k.adapter == adapter && k.variant != crate::native::VARIANT)
                .cloned()
                .collect()
        };
        let (b, h) = (on(&base_rows), on(&head_rows));
        if b.is_empty() || h.is_empty() {
            continue;
        }
        return Err(no_overlap(base_path, &b, head_path, &h, Some(adapter)));
    }
    rows.sort_by(|a, b| a.verdict.cmp(&b.verdict).then_with(|| a.key.cmp(&b.key)));
    let mut counts = BTreeMap::new();
    for r in &rows {
        *counts.entry(r.verdict).or_insert(0) += 1;
    }
    let mut changes: Vec<f64> = rows.iter().filter_map(|r| r.change_pct).collect();
    changes.sort_by(f64::total_cmp);
    let median_change_pct = (!changes.is_empty()).then(|| {
        let n = changes.len();
        if n % 2 == 1 {
            changes[n / 2]
        } else {
            (changes[n / 2 - 1] + changes[n / 2]) / 2.0
        }
    });
    let mut warnings = Vec::new();
    if let Some(m) =
        median_change_pct.filter(|m| changes.len() >= 3 && m.abs() > opts.threshold_pct)
    {
        warnings.push(format!(
            "the median change over all {} timed rows is {:+.1}%: the whole machine may have run {} between the two runs (other load, clocks, temperature), in which case these verdicts are about the machine, not the code; rerun both on an idle machine, in the same job",
            changes.len(),
            m,
            if m > 0.0 { "slower" } else { "faster" }
        ));
    }
    // A run that did not finish lacks the rows of every benchmark it did not reach, and a
    // missing row is "only in base", which never fails: a crash must not pass the gate.
    let mut incomplete_runs = Vec::new();
    for (name, path, runs) in [("BASE", base_path, base), ("HEAD", head_path, head)] {
        for run in runs {
            let why = if run.info.finished.is_none() {
                "did not finish (run.json has no finish time: it crashed, was killed or is still running)"
            } else if run.info.interrupted {
                "was stopped early (Ctrl-C)"
            } else {
                continue;
            };
            warnings.push(format!(
                "{name} run {} ({path}) {why}, so the rows of the benchmarks it never reached are missing and this comparison is incomplete (exit 2); finish it with priceperf run --resume --out {}, or run it again",
                run.info.run_id,
                run.dir.display()
            ));
            incomplete_runs.push(run.info.run_id.clone());
        }
    }
    // A run whose machine changed speed between its start and end mixes two speeds.
    for (name, path, runs) in [("BASE", base_path, base), ("HEAD", head_path, head)] {
        for run in runs {
            let Some(check) = run.info.speed_check.as_ref() else {
                continue;
            };
            if check.changed() {
                warnings.push(format!(
                    "{name} run {} ({path}): the machine's speed changed while it ran (f32 FMA probe {:.1} GFLOP/s at its start, {:.1} at its end, {:+.0}%), so its timings mix two speeds and verdicts on them are about the machine as much as the code; rerun it on an idle machine",
                    run.info.run_id,
                    check.start_gflops,
                    check.end_gflops,
                    check.change() * 100.0
                ));
            }
        }
    }
    let (tokens, token_warnings) = tokens::token_changes(base, head)?;
    warnings.extend(token_warnings);
    let (costs, cost_warnings) = costs::cost_changes(base, head)?;
    warnings.extend(cost_warnings);
    Ok(Comparison {
        schema_version: crate::results::SCHEMA_VERSION,
        base: side_info(base_path, base, base_rows.len()),
        head: side_info(head_path, head, head_rows.len()),
        default_threshold_pct: opts.threshold_pct,
        thresholds_file: opts
            .thresholds
            .source
            .as_ref()
            .map(|p| p.display().to_string()),
        alpha: opts.alpha,
        timing_gate: opts.timing_gate,
        allow_missing: opts.allow_missing,
        rows,
        adapters_only_in_base,
        adapters_only_in_head,
        counts,
        median_change_pct,
        warnings,
        incomplete_runs,
        tokens,
        costs,
    })
}

/// Whether a timing verdict on `row` (from `b` and `h`) fails the comparison, with the
/// reason it does not where it would have: a software adapter (under `--timing-gate auto`),
/// the gate off, and for a slowdown (a timeout is gated whatever the timings were) a side
/// not measured in full ([`MIN_SAMPLES_FOR_GATE`]) or the two sides timed differently
/// (device timestamps against the wall clock differ by the submit and wait, not by the
/// code).
fn gate_timing(row: &mut RowChange, b: Option<&Entry>, h: Option<&Entry>, gate: TimingGate) {
    let software = [b, h]
        .into_iter()
        .flatten()
        .any(|e| e.run.info.adapter.is_cpu());
    // A hang is a hang whatever the other side's timings were: only a slowdown needs
    // comparable measurements on both sides.
    let incomparable = (row.verdict == Verdict::Regressed)
        .then(|| incomparable(b, h))
        .flatten();
    let why_not = incomparable.or_else(|| match gate.applies(software) {
        true => None,
        false if software => {
            Some("informational: software adapter (--timing-gate on gates it)".to_string())
        }
        false => Some("informational (--timing-gate off)".to_string()),
    });
    row.timing_gated = why_not.is_none();
    if let Some(why) =
        why_not.filter(|_| matches!(row.verdict, Verdict::Regressed | Verdict::TimedOut))
    {
        row.reason.push_str(&format!("; {why}"));
    }
}

/// Why the two sides' times cannot show a slowdown: one side holds a tuning screen's or
/// final's few timings rather than a full measurement, or the sides were timed by
/// different methods; `None` when they are comparable.
fn incomparable(b: Option<&Entry>, h: Option<&Entry>) -> Option<String> {
    if let Some(e) = [b, h]
        .into_iter()
        .flatten()
        .find(|e| !e.row.measured_in_full())
    {
        return Some(format!(
            "informational: {} samples on one side, a tuning screen's or final's short timings rather than a full measurement (--variant '^{}$' measures it in full)",
            e.row.samples.unwrap_or(0),
            e.row.variant
        ));
    }
    match (b.and_then(|e| e.row.timing), h.and_then(|e| e.row.timing)) {
        (Some(tb), Some(th)) if tb != th => Some(format!(
            "informational: timed by {tb} in base and by {th} in head, which differ by more than the code"
        )),
        _ => None,
    }
}

/// Each benchmark's chosen row, by benchmark, adapter and driver; two chosen rows for one
/// benchmark (two runs of the adapter on one side) are refused, as two rows of one key are.
type ChosenAt = (String, String, String);
fn chosen_rows<'m, 'a>(
    name: &str,
    path: &str,
    rows: &'m BTreeMap<NaturalKey, Entry<'a>>,
) -> Result<BTreeMap<ChosenAt, &'m Entry<'a>>> {
    let mut out: BTreeMap<ChosenAt, &'m Entry<'a>> = BTreeMap::new();
    for (k, e) in rows.iter().filter(|(_, e)| e.row.chosen) {
        let at = (k.benchmark.clone(), k.adapter.clone(), k.driver.clone());
        if let Some(prev) = out.insert(at, e) {
            return Err(Error::bad_input(
                format!(
                    "{name} ({path}) chose two variants for {} on {}: {} in {} and {} in {}",
                    k.benchmark,
                    k.adapter,
                    prev.row.variant,
                    prev.run.dir.display(),
                    e.row.variant,
                    e.run.dir.display()
                ),
                "Compare one run per adapter: point at a single run folder (or a baseline folder per adapter), not a folder holding several runs of the same adapter.",
            ));
        }
    }
    Ok(out)
}

/// A row and the raw samples its run kept.
struct Entry<'a> {
    row: &'a KernelRow,
    run: &'a Run,
}

fn index_side<'a>(
    name: &str,
    path: &str,
    runs: &'a [Run],
) -> Result<BTreeMap<NaturalKey, Entry<'a>>> {
    let mut map: BTreeMap<NaturalKey, Entry<'a>> = BTreeMap::new();
    for run in runs {
        for row in &run.kernels {
            let key = NaturalKey::of(row);
            if let Some(prev) = map.get(&key) {
                let same_run = prev.run.info.run_id == run.info.run_id;
                return Err(Error::bad_input(
                    format!(
                        "{name} ({path}) holds two rows for {key}: {} and {}",
                        prev.run.dir.display(),
                        run.dir.display()
                    ),
                    if same_run {
                        "kernels.csv lists the same benchmark and variant twice; keep one of the lines.".to_string()
                    } else {
                        "Compare one run per adapter: point at a single run folder (or a baseline folder per adapter), not a folder holding several runs of the same adapter.".to_string()
                    },
                ));
            }
            map.insert(key, Entry { row, run });
        }
    }
    Ok(map)
}

/// Why BASE and HEAD (all of their rows, or those of `adapter`) have no row in common.
fn no_overlap(
    base_path: &str,
    base: &[NaturalKey],
    head_path: &str,
    head: &[NaturalKey],
    adapter: Option<&str>,
) -> Error {
    let set = |m: &[NaturalKey], f: fn(&NaturalKey) -> String| -> BTreeSet<String> {
        m.iter().map(f).collect()
    };
    let list = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join("; ");
    let (ba, ha) = (
        set(base, |k| k.adapter.clone()),
        set(head, |k| k.adapter.clone()),
    );
    let (bd, hd) = (
        set(base, |k| k.driver.clone()),
        set(head, |k| k.driver.clone()),
    );
    let hint = if ba.is_disjoint(&ha) {
        format!(
            "they ran on different adapters (base: {}; head: {})",
            list(&ba),
            list(&ha)
        )
    } else if bd.is_disjoint(&hd) {
        format!(
            "the driver changed (base: {}; head: {}); record a new baseline with this driver",
            list(&bd),
            list(&hd)
        )
    } else {
        "they ran different benchmarks (compare runs of the same suite)".to_string()
    };
    Error::bad_input(
        format!(
            "nothing to compare{}: {base_path} and {head_path} share no (benchmark, variant, shape, dtype, adapter, driver){}; {hint}",
            adapter.map_or(String::new(), |a| format!(" on {a}")),
            if adapter.is_some() { " of its kernels, so its regressions would go unjudged" } else { "" },
        ),
        "Compare two runs of the same suite on the same machine, e.g. a baseline from results/baselines/<adapter>/ and a fresh run.",
    )
}

fn side_info(path: &str, runs: &[Run], rows: usize) -> SideInfo {
    SideInfo {
        path: path.to_string(),
        runs: runs
            .iter()
            .map(|r| RunSummary {
                run_id: r.info.run_id.clone(),
                git_commit: r.info.git_commit.clone(),
                host: r.info.host.clone(),
                adapter: r.info.adapter.name.clone(),
            })
            .collect(),
        rows,
    }
}

fn side_row(e: &Entry) -> SideRow {
    let key = NaturalKey::of(e.row);
    SideRow {
        run_id: e.run.info.run_id.clone(),
        status: e.row.status,
        verified: e.row.verified,
        median_ns: e.row.median_ns,
        ci_low_ns: e.row.ci_low_ns,
        ci_high_ns: e.row.ci_high_ns,
        raw_samples: e.run.samples_of(&key).map_or(0, <[f64]>::len),
        note: e.row.note.clone(),
    }
}

fn is_failure(s: Status) -> bool {
    matches!(s, Status::Failed | Status::Timeout)
}

/// A note cut to a length that keeps tables readable.
fn short(note: &str) -> String {
    const MAX: usize = 90;
    let note = note.trim();
    if note.chars().count() <= MAX {
        note.to_string()
    } else {
        format!("{}…", note.chars().take(MAX).collect::<String>().trim_end())
    }
}

/// The verdict for one key.
fn judge(
    key: &NaturalKey,
    base: Option<&Entry>,
    head: Option<&Entry>,
    threshold_pct: f64,
    alpha: f64,
) -> RowChange {
    let mut out = RowChange {
        key: key.clone(),
        verdict: Verdict::Unchanged,
        base: base.map(side_row),
        head: head.map(side_row),
        change_pct: None,
        change_low_pct: None,
        change_high_pct: None,
        threshold_pct,
        timing_gated: true,
        p_value: None,
        reason: String::new(),
    };
    let (b, h) = match (base, head) {
        (Some(b), Some(h)) => (b, h),
        (Some(_), None) => {
            out.verdict = Verdict::OnlyBase;
            out.reason = "no row in head".into();
            return out;
        }
        (None, Some(h)) => {
            if is_failure(h.row.status) {
                out.verdict = if h.row.status == Status::Timeout {
                    Verdict::TimedOut
                } else {
                    Verdict::Failed
                };
                out.reason = format!("new in head and {}: {}", h.row.status, short(&h.row.note));
            } else {
                out.verdict = Verdict::OnlyHead;
                out.reason = "no row in base".into();
            }
            return out;
        }
        (None, None) => unreachable!("a key comes from one side at least"),
    };
    match (is_failure(b.row.status), is_failure(h.row.status)) {
        (false, true) => {
            out.verdict = if h.row.status == Status::Timeout {
                Verdict::TimedOut
            } else {
                Verdict::Failed
            };
            out.reason = format!(
                "{} in base, {} in head: {}",
                if b.row.verified {
                    "verified"
                } else {
                    b.row.status.as_str()
                },
                h.row.status,
                short(&h.row.note)
            );
            return out;
        }
        // BASE passed verification and then timed out while measuring; HEAD does not get
        // through verification (or compilation) at all. That is a correctness regression,
        // not the same failure twice: "still failed" exited 0 on a kernel that broke.
        (true, true)
            if b.row.status == Status::Timeout
                && b.row.verified
                && h.row.status == Status::Failed
                && !h.row.verified =>
        {
            out.verdict = Verdict::Failed;
            out.reason = format!(
                "verified in base (then timed out measuring), failed in head: {}",
                short(&h.row.note)
            );
            return out;
        }
        (true, true) => {
            out.verdict = Verdict::StillFailed;
            out.reason = short(&h.row.note);
            return out;
        }
        (true, false) if h.row.status == Status::Ok => {
            out.verdict = Verdict::Fixed;
            out.reason = format!("{} in base, verified in head", b.row.status);
            return out;
        }
        _ => {}
    }
    let timed = |r: &KernelRow| {
        (r.status == Status::Ok)
            .then_some(r.median_ns)
            .flatten()
            .filter(|m| *m > 0.0)
    };
    let (Some(bm), Some(hm)) = (timed(b.row), timed(h.row)) else {
        out.verdict = Verdict::NotMeasured;
        let note = [&h.row.note, &b.row.note]
            .into_iter()
            .find(|n| !n.is_empty())
            .map(|n| format!(": {}", short(n)))
            .unwrap_or_default();
        out.reason = if b.row.status == h.row.status {
            format!("{} in both{note}", h.row.status)
        } else {
            format!("{} in base, {} in head{note}", b.row.status, h.row.status)
        };
        return out;
    };
    let change = hm / bm - 1.0;
    out.change_pct = Some(change * 100.0);
    let interval = match (
        b.row.ci_low_ns,
        b.row.ci_high_ns,
        h.row.ci_low_ns,
        h.row.ci_high_ns,
    ) {
        (Some(bl), Some(bh), Some(hl), Some(hh)) if bl > 0.0 && bh > 0.0 => {
            out.change_low_pct = Some((hl / bh - 1.0) * 100.0);
            out.change_high_pct = Some((hh / bl - 1.0) * 100.0);
            Some((bl, bh, hl, hh))
        }
        _ => None,
    };
    // Each side's own samples: a chosen-against-chosen row pairs two variants.
    let bs = b.run.samples_of(&NaturalKey::of(b.row)).unwrap_or(&[]);
    let hs = h.run.samples_of(&NaturalKey::of(h.row)).unwrap_or(&[]);
    let slower = change > 0.0;
    if bs.len() >= MIN_SAMPLES_FOR_TEST && hs.len() >= MIN_SAMPLES_FOR_TEST {
        out.p_value = Some(if slower {
            mann_whitney_greater(hs, bs)
        } else {
            mann_whitney_greater(bs, hs)
        });
    }
    let separate = interval.map(|(bl, bh, hl, hh)| if slower { hl > bh } else { hh < bl });
    let significant_by_test = out.p_value.is_some_and(|p| p < alpha);
    let evidence = match (separate, out.p_value) {
        (Some(true), _) => "95% intervals separate".to_string(),
        (_, Some(p)) if p < alpha => format!("Mann-Whitney p = {p:.1e} < {alpha}"),
        (Some(false), Some(p)) => format!("intervals overlap, Mann-Whitney p = {p:.1e}"),
        (Some(false), None) => "95% intervals overlap".to_string(),
        (None, Some(p)) => format!("no intervals, Mann-Whitney p = {p:.1e}"),
        (None, None) => "no intervals or samples to judge noise".to_string(),
    };
    let significant = separate == Some(true) || significant_by_test;
    let beyond = change.abs() * 100.0 > threshold_pct;
    out.verdict = match (beyond, significant, slower) {
        (false, _, _) => Verdict::Unchanged,
        (true, true, true) => Verdict::Regressed,
        (true, true, false) => Verdict::Improved,
        (true, false, _) => Verdict::Inconclusive,
    };
    out.reason = if beyond {
        format!(
            "{} by {:.1}% (threshold {}%); {evidence}",
            if slower { "slower" } else { "faster" },
            change.abs() * 100.0,
            fmt_pct_plain(threshold_pct)
        )
    } else {
        format!("within the {}% threshold", fmt_pct_plain(threshold_pct))
    };
    out
}

/// One-sided Mann-Whitney U test: the p-value of "x tends to be larger than y", by the
/// normal approximation with tie and continuity corrections.
pub fn mann_whitney_greater(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return 1.0;
    }
    let mut u = 0.0;
    for a in x {
        for b in y {
            if a > b {
                u += 1.0;
            } else if a == b {
                u += 0.5;
            }
        }
    }
    // Tie correction from the pooled sample.
    let mut pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    pooled.sort_by(f64::total_cmp);
    let n = n1 + n2;
    let mut ties = 0.0;
    let mut i = 0;
    while i < pooled.len() {
        let mut j = i;
        while j + 1 < pooled.len() && pooled[j + 1] == pooled[i] {
            j += 1;
        }
        let t = (j - i + 1) as f64;
        ties += t * t * t - t;
        i = j + 1;
    }
    let var = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if var <= 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0 - 0.5) / var.sqrt();
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// Complementary error function (Numerical Recipes' Chebyshev fit, relative error below
/// 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A time with a unit chosen for reading: `812 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`.
pub fn fmt_ns(ns: f64) -> String {
    let (v, unit) = if ns < 1e3 {
        (ns, "ns")
    } else if ns < 1e6 {
        (ns / 1e3, "µs")
    } else if ns < 1e9 {
        (ns / 1e6, "ms")
    } else {
        (ns / 1e9, "s")
    };
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.digits$} {unit}")
}

fn fmt_pct_plain(p: f64) -> String {
    if p == p.trunc() {
        format!("{p:.0}")
    } else {
        format!("{p}")
    }
}

fn fmt_signed_pct(p: f64) -> String {
    format!("{p:+.1}%")
}

fn change_cell(r: &RowChange) -> String {
    match r.change_pct {
        None => "-".into(),
        Some(c) => match (r.change_low_pct, r.change_high_pct) {
            (Some(l), Some(h)) => format!("{} [{:+.1}, {:+.1}]", fmt_signed_pct(c), l, h),
            _ => fmt_signed_pct(c),
        },
    }
}

fn time_cell(s: &Option<SideRow>) -> String {
    match s {
        None => "-".into(),
        Some(s) => match s.median_ns {
            Some(m) if s.status == Status::Ok => fmt_ns(m),
            _ => s.status.to_string(),
        },
    }
}

/// Every verdict, in the order the summary line counts them: those that fail first.
/// MISSING was once left out, so a compare that exited 1 for it summed up as "2 unchanged,
/// 1 only in base"; a unit test checks this list against the enum.
const SUMMARY_ORDER: [Verdict; 12] = [
    Verdict::Failed,
    Verdict::Regressed,
    Verdict::TimedOut,
    Verdict::Missing,
    Verdict::Inconclusive,
    Verdict::StillFailed,
    Verdict::Fixed,
    Verdict::Improved,
    Verdict::Unchanged,
    Verdict::NotMeasured,
    Verdict::OnlyBase,
    Verdict::OnlyHead,
];

fn summary_line(c: &Comparison) -> String {
    SUMMARY_ORDER
        .iter()
        .filter(|v| c.count(**v) > 0)
        .map(|v| format!("{} {}", c.count(*v), v.as_str().to_lowercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn side_text(s: &SideInfo) -> String {
    let runs: Vec<String> = s
        .runs
        .iter()
        .map(|r| match &r.git_commit {
            Some(c) => format!("{} @ {c}", r.run_id),
            None => r.run_id.clone(),
        })
        .collect();
    format!("{} ({})", s.path, runs.join(", "))
}

fn rule_text(c: &Comparison) -> String {
    let mut s = format!(
        "regressed = slower by more than {}%{} AND (the 95% intervals separate OR Mann-Whitney p < {} on stored samples); a failed verification always fails",
        fmt_pct_plain(c.default_threshold_pct),
        c.thresholds_file
            .as_ref()
            .map(|f| format!(" (or the threshold {f} sets)"))
            .unwrap_or_default(),
        c.alpha
    );
    s.push_str(match c.timing_gate {
        TimingGate::Auto => {
            "; timing regressions on software adapters (lavapipe) are informational"
        }
        TimingGate::On => "; timing regressions fail on every adapter (--timing-gate on)",
        TimingGate::Off => "; timing regressions are informational (--timing-gate off)",
    });
    s.push_str(&format!(
        ", as are rows with fewer than {MIN_SAMPLES_FOR_GATE} samples (a tuning screen's or final's) and rows timed by another method; where the chosen variant changed, the chosen rows are compared too"
    ));
    s.push_str(if c.allow_missing {
        "; a benchmark base measured and head did not is listed as missing (--allow-missing)"
    } else {
        "; a benchmark base measured and head did not (same adapter and driver) fails as missing"
    });
    s
}

fn adapters_text(c: &Comparison) -> Vec<String> {
    let mut out = Vec::new();
    for (side, list) in [
        ("base", &c.adapters_only_in_base),
        ("head", &c.adapters_only_in_head),
    ] {
        if !list.is_empty() {
            out.push(format!(
                "only in {side}, not compared: {}",
                list.iter()
                    .map(|a| format!("{} ({} rows)", a.adapter, a.rows))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    out
}

/// Whether rows span several adapters (then tables get an adapter column).
fn many_adapters(c: &Comparison) -> bool {
    c.rows
        .iter()
        .map(|r| &r.key.adapter)
        .collect::<BTreeSet<_>>()
        .len()
        > 1
}

/// The terminal table.
pub fn render_table(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "base: {}", side_text(&c.base));
    let _ = writeln!(out, "head: {}", side_text(&c.head));
    let _ = writeln!(out, "rule: {}", rule_text(c));
    out.push('\n');
    let with_adapter = many_adapters(c);
    let cells: Vec<[String; 7]> = c
        .rows
        .iter()
        .map(|r| {
            [
                r.verdict.as_str().to_string(),
                r.key.benchmark.clone(),
                if with_adapter {
                    format!("{} @ {}", r.key.variant, r.key.adapter)
                } else {
                    r.key.variant.clone()
                },
                time_cell(&r.base),
                time_cell(&r.head),
                change_cell(r),
                r.reason.clone(),
            ]
        })
        .collect();
    out.push_str(&table(
        &[
            "verdict",
            "benchmark",
            "variant",
            "base",
            "head",
            "change [95% CI]",
            "why",
        ],
        &cells,
    ));
    out.push('\n');
    if !c.tokens.is_empty() {
        let _ = writeln!(out, "{}", tokens_title(c));
        out.push_str(&table(&TOKEN_HEADER, &token_cells(c)));
        out.push('\n');
    }
    if !c.costs.cheapest.is_empty() {
        let _ = writeln!(out, "{}", costs_title(c));
        out.push_str(&table(&COST_HEADER, &cost_cells(c)));
        out.push('\n');
    }
    if c.costs.both_sides {
        let _ = writeln!(out, "{}", prices_title(c));
        if !c.costs.prices.is_empty() {
            out.push_str(&table(&PRICE_HEADER, &price_cells(c)));
        }
        out.push('\n');
    }
    for line in adapters_text(c) {
        let _ = writeln!(out, "{line}");
    }
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let _ = writeln!(out, "summary: {}", summary_line(c));
    out
}

const TOKEN_HEADER: [&str; 7] = [
    "model",
    "phase",
    "workload",
    "base",
    "head",
    "change",
    "95% intervals",
];

/// The token-rate section's title: how many rates, and that they are informational.
fn tokens_title(c: &Comparison) -> String {
    format!(
        "token rates ({} on both sides; informational, they follow from the chosen rows):",
        c.tokens.len()
    )
}

/// A rate's workload in words: batch, prompt or context, dtype, basis where not measured,
/// and the adapter where the sides ran several.
fn workload_text(k: &tokens::TokenKey, with_adapter: bool) -> String {
    let mut workload = format!("batch {}", k.batch);
    for (what, v) in [("prompt", &k.prompt_len), ("context", &k.context_len)] {
        if !v.is_empty() {
            let _ = write!(workload, ", {what} {v}");
        }
    }
    if !k.model_dtype.is_empty() {
        let _ = write!(workload, ", {}", k.model_dtype);
    }
    if k.basis != "measured" {
        let _ = write!(workload, " ({})", k.basis);
    }
    if with_adapter {
        let _ = write!(workload, " @ {}", k.adapter);
    }
    workload
}

/// One row of cells per rate: the adapter is named where the sides ran several.
fn token_cells(c: &Comparison) -> Vec<[String; 7]> {
    let with_adapter = many_adapters(c);
    c.tokens
        .iter()
        .map(|t| {
            let k = &t.key;
            [
                k.model.clone(),
                k.phase.clone(),
                workload_text(k, with_adapter),
                format!("{:.2} tok/s", t.base.tokens_per_s),
                format!("{:.2} tok/s", t.head.tokens_per_s),
                fmt_signed_pct(t.change_pct),
                if t.intervals_overlap {
                    "overlap (may be noise)".into()
                } else {
                    "separate".into()
                },
            ]
        })
        .collect()
}

const COST_HEADER: [&str; 6] = ["model", "phase", "workload", "base", "head", "change"];

/// The cost section's title: how many rates both sides priced, and what a cost follows.
fn costs_title(c: &Comparison) -> String {
    format!(
        "cheapest $/Mtok ({} rates priced on both sides; informational, each follows its token rate and its offering's price):",
        c.costs.cheapest.len()
    )
}

/// One row of cells per priced rate: the cheapest cost on each side and where.
fn cost_cells(c: &Comparison) -> Vec<[String; 6]> {
    let with_adapter = many_adapters(c);
    let cost =
        |ch: &costs::Cheapest| format!("${} ({})", report::money(ch.usd_per_mtok), ch.offering);
    c.costs
        .cheapest
        .iter()
        .map(|ch| {
            [
                ch.key.model.clone(),
                ch.key.phase.clone(),
                workload_text(&ch.key, with_adapter),
                cost(&ch.base),
                cost(&ch.head),
                fmt_signed_pct(ch.change_pct),
            ]
        })
        .collect()
}

const PRICE_HEADER: [&str; 4] = ["offering", "base", "head", "change"];

/// The price section's title: how many offerings changed price of those priced on both
/// sides, and how many only one side priced.
fn prices_title(c: &Comparison) -> String {
    let p = &c.costs;
    let one_sided = format!(
        "{} only in base, {} only in head",
        p.offerings_only_in_base, p.offerings_only_in_head
    );
    if p.prices.is_empty() {
        format!(
            "prices: none of the {} offerings priced on both sides changed price ({one_sided})",
            p.offerings_on_both
        )
    } else {
        format!(
            "prices: {} of the {} offerings priced on both sides changed price ({one_sided}):",
            p.prices.len(),
            p.offerings_on_both
        )
    }
}

fn price_cells(c: &Comparison) -> Vec<[String; 4]> {
    let price = |p: &costs::Price| match &p.as_of {
        Some(date) => format!("${:.4}/h as of {date}", p.usd_per_hour),
        None => format!("${:.4}/h, undated", p.usd_per_hour),
    };
    c.costs
        .prices
        .iter()
        .map(|p| {
            [
                p.offering.to_string(),
                price(&p.base),
                price(&p.head),
                fmt_signed_pct(p.change_pct),
            ]
        })
        .collect()
}

/// Markdown for a pull-request comment: headline, the rule, the rows that changed, and the
/// unchanged rows folded away.
pub fn render_markdown(c: &Comparison) -> String {
    let mut out = String::new();
    let failed = c.count(Verdict::Failed);
    let timing = |gated: bool| {
        c.rows
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Regressed | Verdict::TimedOut))
            .filter(|r| r.timing_gated == gated)
            .count()
    };
    let (regressed, informational) = (timing(true), timing(false));
    let missing = c.count(Verdict::Missing);
    let missing_fails = missing > 0 && !c.allow_missing;
    let headline = if !c.incomplete_runs.is_empty() {
        format!(
            ":x: **incomplete**: {} did not finish, so rows of benchmarks it never reached are missing (see the warnings)",
            c.incomplete_runs.join(", ")
        )
    } else if failed > 0 || regressed > 0 || missing_fails {
        format!(
            ":x: **{}**",
            [
                (failed > 0).then(|| plural(failed, "correctness failure")),
                (regressed > 0).then(|| plural(regressed, "regression")),
                missing_fails
                    .then(|| format!("{} not measured in head", plural(missing, "benchmark"))),
                (informational > 0).then(|| format!("{informational} informational")),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        )
    } else if informational > 0 {
        format!(
            ":warning: **{}** (informational, not gated)",
            plural(informational, "timing regression")
        )
    } else {
        ":white_check_mark: **no regressions**".to_string()
    };
    let _ = writeln!(out, "### priceperf compare: {headline}\n");
    for w in &c.warnings {
        let _ = writeln!(out, "> :warning: {}\n", md_text(w));
    }
    let _ = writeln!(
        out,
        "Base {} → head {}.\n",
        md_code(&side_text(&c.base)),
        md_code(&side_text(&c.head))
    );
    let _ = writeln!(out, "Rule: {}.\n", md_text(&rule_text(c)));
    let _ = writeln!(out, "Summary: {}.\n", summary_line(c));
    for line in adapters_text(c) {
        let _ = writeln!(out, "- {}", md_text(&line));
    }
    if !adapters_text(c).is_empty() {
        out.push('\n');
    }
    let with_adapter = many_adapters(c);
    let (quiet, loud): (Vec<&RowChange>, Vec<&RowChange>) = c
        .rows
        .iter()
        .partition(|r| matches!(r.verdict, Verdict::Unchanged | Verdict::NotMeasured));
    let md_rows = |rows: &[&RowChange]| -> String {
        let mut t = String::new();
        t.push_str(if with_adapter {
            "| verdict | benchmark | variant | adapter | base | head | change [95% CI] | why |\n|---|---|---|---|---:|---:|---:|---|\n"
        } else {
            "| verdict | benchmark | variant | base | head | change [95% CI] | why |\n|---|---|---|---:|---:|---:|---|\n"
        });
        for r in rows {
            let verdict = match r.verdict {
                Verdict::Failed | Verdict::Regressed => format!("**{}**", r.verdict.as_str()),
                v => v.as_str().to_string(),
            };
            let adapter = if with_adapter {
                format!(" {} |", md_text(&r.key.adapter))
            } else {
                String::new()
            };
            let _ = writeln!(
                t,
                "| {verdict} | {} | {} |{adapter} {} | {} | {} | {} |",
                md_text(&r.key.benchmark),
                md_text(&r.key.variant),
                time_cell(&r.base),
                time_cell(&r.head),
                change_cell(r),
                md_text(&r.reason)
            );
        }
        t
    };
    if !loud.is_empty() {
        out.push_str(&md_rows(&loud));
        out.push('\n');
    }
    if !quiet.is_empty() {
        let folded: Vec<String> = [Verdict::Unchanged, Verdict::NotMeasured]
            .iter()
            .filter(|v| c.count(**v) > 0)
            .map(|v| format!("{} {}", c.count(*v), v.as_str()))
            .collect();
        let _ = writeln!(out, "<details><summary>{}</summary>\n", folded.join(", "));
        out.push_str(&md_rows(&quiet));
        out.push_str("\n</details>\n");
    }
    if !c.tokens.is_empty() {
        let align = ["---", "---", "---", "---:", "---:", "---:", "---"];
        md_folded(
            &mut out,
            &tokens_title(c),
            &md_table(&TOKEN_HEADER, &align, &token_cells(c)),
        );
    }
    if !c.costs.cheapest.is_empty() {
        let align = ["---", "---", "---", "---:", "---:", "---:"];
        md_folded(
            &mut out,
            &costs_title(c),
            &md_table(&COST_HEADER, &align, &cost_cells(c)),
        );
    }
    if c.costs.both_sides {
        let _ = writeln!(
            out,
            "\n{}\n",
            md_text(prices_title(c).trim_end_matches(':'))
        );
        if !c.costs.prices.is_empty() {
            let align = ["---", "---:", "---:", "---:"];
            out.push_str(&md_table(&PRICE_HEADER, &align, &price_cells(c)));
        }
    }
    out
}

/// A Markdown table of `rows` under `header`; `align` is each column's separator cell
/// (`---`, or `---:` for numbers).
fn md_table<const N: usize>(header: &[&str; N], align: &[&str; N], rows: &[[String; N]]) -> String {
    let mut t = format!("| {} |\n|{}|\n", header.join(" | "), align.join("|"));
    for cells in rows {
        let cells: Vec<String> = cells.iter().map(|s| md_text(s)).collect();
        let _ = writeln!(t, "| {} |", cells.join(" | "));
    }
    t
}

/// `body` folded under a summary line `title` (its trailing colon dropped).
fn md_folded(out: &mut String, title: &str, body: &str) {
    let _ = writeln!(
        out,
        "\n<details><summary>{}</summary>\n",
        md_text(title.trim_end_matches(':'))
    );
    out.push_str(body);
    out.push_str("\n</details>\n");
}

/// The comparison as pretty JSON.
pub fn render_json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("comparisons serialise") + "\n"
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// Text safe inside a Markdown table cell: no pipes, no line breaks, no HTML.
pub fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' => out.push('\''),
            _ => out.push(c),
        }
    }
    out
}

fn md_code(s: &str) -> String {
    format!("`{}`", s.replace('`', "'").replace(['\n', '\r'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary counts every verdict: the match has no wildcard, so a new verdict does
    /// not compile until it is placed here, and then must be in SUMMARY_ORDER.
    #[test]
    fn the_summary_order_lists_every_verdict_once() {
        for v in SUMMARY_ORDER {
            match v {
                Verdict::Failed
                | Verdict::Regressed
                | Verdict::TimedOut
                | Verdict::Missing
                | Verdict::Inconclusive
                | Verdict::StillFailed
                | Verdict::Fixed
                | Verdict::Improved
                | Verdict::Unchanged
                | Verdict::NotMeasured
                | Verdict::OnlyBase
                | Verdict::OnlyHead => {}
            }
            assert_eq!(
                SUMMARY_ORDER.iter().filter(|w| **w == v).count(),
                1,
                "{v:?}"
            );
        }
    }

    #[test]
    fn a_thresholds_file_may_start_with_a_byte_order_mark() {
        let t = Thresholds::parse(Path::new("t.txt"), "\u{feff}25 ^matmul/.*$\n").unwrap();
        assert_eq!(t.rules.len(), 1);
        assert_eq!(t.rules[0].1, 25.0);
    }

    #[test]
    fn mann_whitney_matches_hand_computed_values() {
        // Complete separation of 10 and 10: U = 100, z = (100 - 50 - 0.5) / sqrt(175).
        let x: Vec<f64> = (11..=20).map(f64::from).collect();
        let y: Vec<f64> = (1..=10).map(f64::from).collect();
        let p = mann_whitney_greater(&x, &y);
        let z: f64 = 49.5 / 175f64.sqrt();
        let expected = 0.5 * erfc(z / std::f64::consts::SQRT_2);
        assert!((p - expected).abs() < 1e-12);
        assert!(p < 1e-4 && p > 5e-5, "{p}");
        // The other direction is not significant; identical samples give no evidence.
        assert!(mann_whitney_greater(&y, &x) > 0.999);
        assert_eq!(mann_whitney_greater(&[1.0; 6], &[1.0; 6]), 1.0);
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, want) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - want).abs() < 1e-7 * want.max(1.0), "{x}");
        }
    }

    #[test]
    fn thresholds_file_first_match_wins_and_errors_name_the_place() {
        let t = Thresholds::parse(
            Path::new("t.txt"),
            "# comment\n\n25%  ^matmul/f32/.*/naive$\n15 matmul/f32/\n",
        )
        .unwrap();
        let key = |variant: &str| NaturalKey {
            benchmark: "matmul/f32/m=8,n=8,k=8".into(),
            variant: variant.into(),
            shape: "m=8,n=8,k=8".into(),
            dtype: "f32".into(),
            adapter: "a".into(),
            driver: "d".into(),
        };
        assert_eq!(t.for_key(&key("naive")), Some(25.0));
        assert_eq!(t.for_key(&key("tiled")), Some(15.0));
        let mut other = key("tiled");
        other.benchmark = "matmul/f16/m=8,n=8,k=8".into();
        assert_eq!(t.for_key(&other), None);

        let err = Thresholds::parse(Path::new("t.txt"), "10 ok\n  ten x\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("t.txt:2:3:"), "{err}");
        let err = Thresholds::parse(Path::new("t.txt"), "10 (\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.txt:1:4:") && err.contains("regular"),
            "{err}"
        );
        let err = Thresholds::parse(Path::new("t.txt"), "10\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing"), "{err}");
        let err = Thresholds::parse(Path::new("t.txt"), "-5 x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("0 or more"), "{err}");
    }

    #[test]
    fn times_read_well() {
        assert_eq!(fmt_ns(812.0), "812 ns");
        assert_eq!(fmt_ns(12_345.0), "12.3 µs");
        assert_eq!(fmt_ns(4_560_000.0), "4.56 ms");
        assert_eq!(fmt_ns(1.234e9), "1.23 s");
    }

    #[test]
    fn markdown_cells_cannot_break_the_table() {
        assert_eq!(md_text("a|b\nc<script>"), "a\\|b c&lt;script&gt;");
    }
}
