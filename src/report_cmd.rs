//! `priceperf report DIR... [--format table|md|csv|json|html] [--out PATH]`: the result
//! folders read back ([`crate::dataset`]) and shown for people: terminal tables, Markdown
//! for pull-request comments, the ranked costs as CSV or JSON, or one self-contained HTML
//! page with the charts ([`crate::html`], [`crate::charts`]).
//!
//! Costs are ranked within each model and phase (cheapest first): a prefill $/Mtok and a
//! decode $/Mtok price different work and are never ranked against each other. An offering
//! is on the Pareto front of its group when no other offering of the group gives more
//! tokens/s per instance for fewer dollars per million tokens.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use clap::ValueEnum;
use serde::Serialize;

use crate::catalog::Catalog;
use crate::charts::{self, BarGroup, ChangeBar, KernelPoint, OfferingPoint, Roofs, TrendSeries};
use crate::compare::{self, Comparison};
use crate::cost::{Basis, Case, CostRow, Tier, TokensRow};
use crate::dataset::{self, Run, Table};
use crate::error::{Error, Result, EXIT_OK};
use crate::export::Sheet;
use crate::measure::peaks::Peaks;
use crate::model::PhaseKind;
use crate::report;
use crate::results::csv_cells::Cell;
use crate::results::csv_cells::CsvRow;
use crate::results::{KernelRow, RunInfo, Status};
use crate::shape::DType;

/// Output format of `priceperf report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Terminal tables.
    Table,
    /// Markdown, for pull-request comments.
    Md,
    /// The ranked cost rows, spreadsheet-safe.
    Csv,
    /// Everything, for programs.
    Json,
    /// One self-contained page: provenance, ranked costs, charts, kernels.
    Html,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Result folders (runs, folders of runs, merges); several make comparison and trend
    /// charts, exactly two also a `compare` chart (first = base).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    pub format: ReportFormat,
    /// Write here instead of stdout (e.g. report.html).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Cost rows shown per model and phase in table, md and html (csv and json have all).
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

/// `priceperf report`.
pub fn execute(args: &ReportArgs) -> Result<i32> {
    let rep = Report::load(&args.dirs)?;
    if let Some(out) = &args.out {
        crate::out_path::refuse_input_overlap(
            crate::out_path::Target::File(out),
            rep.runs.iter().map(|r| r.dir.as_path()),
        )?;
    }
    let link_base = match &args.out {
        Some(out) => out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        None => PathBuf::from("."),
    };
    let text = match args.format {
        ReportFormat::Table => rep.terminal(args.top),
        ReportFormat::Md => rep.markdown(args.top),
        ReportFormat::Csv => rep.costs_sheet().to_csv(false),
        ReportFormat::Json => {
            serde_json::to_string_pretty(&rep.json()).expect("report serialises") + "\n"
        }
        ReportFormat::Html => crate::html::page(&rep, args.top, &link_base),
    };
    match &args.out {
        Some(path) => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
            }
            crate::results::write_atomic(path, text.as_bytes())?;
            eprintln!("priceperf: wrote {}", path.display());
        }
        // A reader that stops early (`| head`) is not an error, as for `export`.
        None => crate::export::write_stdout(&text)?,
    }
    Ok(EXIT_OK)
}

/// One run as the report shows it.
#[derive(Debug, Clone)]
pub struct RunView {
    pub dir: PathBuf,
    pub info: RunInfo,
    /// The notes of `results.json` (matching, skipped models, stale prices).
    pub notes: Vec<String>,
    /// Oldest and newest `price_as_of` of the run's cost rows.
    pub prices_as_of: Option<(String, String)>,
    /// Cost rows without a price date (owned, custom, undated catalog rows).
    pub undated_prices: usize,
    /// criterion's own HTML report, when the run has one (`cargo bench` writes it).
    pub criterion_report: Option<PathBuf>,
}

impl RunView {
    /// A short name for legends: adapter and start time.
    pub fn label(&self) -> String {
        let when = self.info.started.get(..16).unwrap_or(&self.info.started);
        format!(
            "{} · {}",
            short_adapter(&self.info.adapter.name),
            when.replace('T', " ")
        )
    }
}

/// A cost row with its place in its model and phase.
#[derive(Debug, Clone, Serialize)]
pub struct RankedCost {
    /// Index into [`Report::runs`].
    #[serde(skip)]
    pub run: usize,
    pub run_id: String,
    /// 1 = cheapest of its model and phase.
    pub rank: usize,
    /// No offering of the group is faster per instance and cheaper per token.
    pub pareto_front: bool,
    /// tokens/s × accelerators per instance (independent replicas, one per accelerator).
    pub instance_tokens_per_s: f64,
    #[serde(flatten)]
    pub row: CostRow,
}

/// A token-rate row with its run.
#[derive(Debug, Clone, Serialize)]
pub struct RunTokens {
    #[serde(skip)]
    pub run: usize,
    pub run_id: String,
    #[serde(flatten)]
    pub row: TokensRow,
}

/// A kernel row with its run.
#[derive(Debug, Clone, Serialize)]
pub struct RunKernel {
    #[serde(skip)]
    pub run: usize,
    pub run_id: String,
    #[serde(flatten)]
    pub row: KernelRow,
}

/// Everything a report shows, read from the result folders.
#[derive(Debug, Clone)]
pub struct Report {
    pub dirs: Vec<PathBuf>,
    pub runs: Vec<RunView>,
    pub kernels: Vec<RunKernel>,
    pub tokens: Vec<RunTokens>,
    /// Grouped by model (first seen) and phase (workload, prefill, decode), cheapest first.
    pub costs: Vec<RankedCost>,
    /// `compare` of the first folder against the second, when exactly two were given.
    pub comparison: Option<Comparison>,
}

/// A chart ready for a page: an anchor id, a title, the SVG and what to read from it.
#[derive(Debug, Clone)]
pub struct Figure {
    pub id: String,
    pub title: String,
    pub svg: String,
    pub caption: String,
}

impl Report {
    /// Read the folders (see [`dataset::load`] for what a folder may be).
    pub fn load(dirs: &[PathBuf]) -> Result<Report> {
        let mut per_dir: Vec<Vec<Run>> = Vec::new();
        for d in dirs {
            per_dir.push(dataset::load(d)?);
        }
        let comparison = match per_dir.as_slice() {
            [base, head] => compare::compare(
                &dirs[0].display().to_string(),
                base,
                &dirs[1].display().to_string(),
                head,
                &compare::Options::default(),
            )
            .ok(),
            _ => None,
        };
        let runs: Vec<Run> = per_dir.into_iter().flatten().collect();
        Report::from_runs(dirs.to_vec(), &runs, comparison)
    }

    /// Build from runs already read.
    pub fn from_runs(
        dirs: Vec<PathBuf>,
        runs: &[Run],
        comparison: Option<Comparison>,
    ) -> Result<Report> {
        let mut views = Vec::new();
        let mut kernels = Vec::new();
        let mut tokens = Vec::new();
        let mut costs = Vec::new();
        for (i, run) in runs.iter().enumerate() {
            let run_id = run.info.run_id.clone();
            let run_tokens = match &run.tokens {
                Some(t) => parse_tokens(t)?,
                None => Vec::new(),
            };
            let run_costs = match &run.costs {
                Some(t) => parse_costs(t, &run_tokens)?,
                None => Vec::new(),
            };
            let dates: Vec<&String> = run_costs
                .iter()
                .filter_map(|c| c.price_as_of.as_ref())
                .collect();
            let prices_as_of = match (dates.iter().min(), dates.iter().max()) {
                (Some(a), Some(b)) => Some(((*a).clone(), (*b).clone())),
                _ => None,
            };
            let criterion = run.dir.join("criterion").join("report").join("index.html");
            views.push(RunView {
                dir: run.dir.clone(),
                info: run.info.clone(),
                notes: read_notes(&run.dir),
                prices_as_of,
                undated_prices: run_costs.len() - dates.len(),
                criterion_report: criterion.is_file().then_some(criterion),
            });
            kernels.extend(run.kernels.iter().map(|k| RunKernel {
                run: i,
                run_id: run_id.clone(),
                row: k.clone(),
            }));
            tokens.extend(run_tokens.into_iter().map(|row| RunTokens {
                run: i,
                run_id: run_id.clone(),
                row,
            }));
            costs.extend(run_costs.into_iter().map(|row| RankedCost {
                run: i,
                run_id: run_id.clone(),
                rank: 0,
                pareto_front: false,
                instance_tokens_per_s: row.tokens_per_s
                    * row.accelerators_per_instance.max(1) as f64,
                row,
            }));
        }
        Ok(Report {
            dirs,
            runs: views,
            kernels,
            tokens,
            costs: rank(costs),
            comparison,
        })
    }

    /// The cost groups in order, one per case (model, phase, batch, prompt and context
    /// lengths), rows cheapest first.
    pub fn cost_groups(&self) -> Vec<(Case, Vec<&RankedCost>)> {
        let mut out: Vec<(Case, Vec<&RankedCost>)> = Vec::new();
        for c in &self.costs {
            let case = c.row.case();
            match out.last_mut() {
                Some((k, rows)) if *k == case => rows.push(c),
                _ => out.push((case, vec![c])),
            }
        }
        out
    }

    /// Chosen variants and rows that did not pass, the kernel rows a reader looks at first.
    pub fn headline_kernels(&self) -> Vec<&RunKernel> {
        self.kernels
            .iter()
            .filter(|k| k.row.chosen || k.row.status != Status::Ok)
            .collect()
    }

    /// Counts of kernel rows by status, verified.
    pub fn kernel_counts(&self) -> (usize, usize, usize, usize) {
        let n = |s: Status| self.kernels.iter().filter(|k| k.row.status == s).count();
        (
            n(Status::Ok),
            n(Status::Failed) + n(Status::Timeout),
            n(Status::Skipped),
            self.kernels.iter().filter(|k| k.row.verified).count(),
        )
    }

    /// The charts of the HTML page, in page order.
    pub fn figures(&self) -> Vec<Figure> {
        let mut figs = Vec::new();
        // Price/performance: one per model and batch, its workload phase (the blend a
        // request pays), else the first phase it has.
        let groups = self.cost_groups();
        let mut models: Vec<(&str, u32)> = Vec::new();
        for (k, _) in &groups {
            if !models.contains(&(k.model.as_str(), k.batch)) {
                models.push((&k.model, k.batch));
            }
        }
        for (model, batch) in models {
            let Some((case, rows)) = groups
                .iter()
                .filter(|(k, _)| k.model == model && k.batch == batch)
                .min_by_key(|(k, _)| phase_order(k.phase))
            else {
                continue;
            };
            let phase = &case.phase;
            let points: Vec<OfferingPoint> = rows
                .iter()
                .map(|c| OfferingPoint {
                    label: format!("{} {}", c.row.instance, tier_short(c.row.tier)),
                    provider: c.row.provider.clone(),
                    tokens_per_s: c.instance_tokens_per_s,
                    usd_per_mtok: c.row.usd_per_mtok,
                })
                .collect();
            let title = format!("Price/performance: {}", case.label());
            let on_front = rows.iter().filter(|c| c.pareto_front).count();
            figs.push(Figure {
                id: format!("price-performance-{}", slug(&case.label())),
                svg: charts::price_performance(
                    &title,
                    "tokens/s per instance (per-accelerator rate × accelerators)",
                    &points,
                ),
                title,
                caption: format!(
                    "{} offerings, one colour per provider, both axes logarithmic. Ringed and joined: the Pareto front, {on_front} offering(s) that no other beats on both tokens/s per instance and price per token. Instance throughput assumes one independent replica per accelerator.{}",
                    points.len(),
                    if phase_order(*phase) == 0 {
                        " The workload phase blends input and output tokens with the input:output weights in the title."
                    } else {
                        ""
                    }
                ),
            });
        }
        // Roofline: one per adapter.
        let mut adapters: Vec<String> = Vec::new();
        for k in &self.kernels {
            if !adapters.contains(&k.row.adapter) {
                adapters.push(k.row.adapter.clone());
            }
        }
        let catalog = Catalog::load_default().ok();
        for adapter in &adapters {
            let rows: Vec<&KernelRow> = self
                .kernels
                .iter()
                .map(|k| &k.row)
                .filter(|r| &r.adapter == adapter && r.status == Status::Ok)
                .filter(|r| r.flops > 0 && r.bytes > 0)
                .collect();
            let points: Vec<KernelPoint> = rows.iter().filter_map(|r| roofline_point(r)).collect();
            let is_cpu = self
                .runs
                .iter()
                .find(|v| &v.info.adapter.name == adapter)
                .is_some_and(|v| v.info.adapter.is_cpu());
            let peaks = self
                .runs
                .iter()
                .filter(|v| &v.info.adapter.name == adapter)
                .find_map(|v| v.info.peaks.as_ref());
            let roofs = spec_roofs(catalog.as_ref(), adapter, is_cpu, &rows)
                .or_else(|| peaks.and_then(|p| measured_roofs(p, &rows)))
                .or_else(|| {
                    Roofs::practical(
                        &rows
                            .iter()
                            .map(|r| (r.gflops.unwrap_or(0.0), r.gbps.unwrap_or(0.0)))
                            .collect::<Vec<_>>(),
                    )
                });
            let Some(roofs) = roofs else { continue };
            let title = format!("Roofline: {}", short_adapter(adapter));
            figs.push(Figure {
                id: format!("roofline-{}", slug(adapter)),
                svg: charts::roofline(&title, &points, &roofs),
                title,
                caption: format!(
                    "{} measured rows of {adapter}: GFLOP/s against FLOP per byte of compulsory traffic, log-log. {}. A point far under its roof leaves performance on the table; a point on the slanted roof is bandwidth-bound.",
                    points.len(),
                    charts::capitalise(&roofs.source)
                ),
            });
        }
        // Several runs: tokens/s side by side, and the trend over the folders.
        if self.runs.len() >= 2 {
            let series: Vec<String> = self.runs.iter().map(RunView::label).collect();
            let keys = self.token_keys();
            if !keys.is_empty() {
                let groups: Vec<BarGroup> = keys
                    .iter()
                    .map(|k| BarGroup {
                        label: k.label(),
                        values: (0..self.runs.len()).map(|i| self.tokens_of(i, k)).collect(),
                    })
                    .collect();
                figs.push(Figure {
                    id: "comparison-tokens".into(),
                    title: "Tokens/s per accelerator, run by run".into(),
                    svg: charts::grouped_bars(
                        "Tokens/s per accelerator, run by run",
                        "tokens/s",
                        &series,
                        &groups,
                    ),
                    caption: "Each bar a result folder (adapter and start time); higher is better."
                        .into(),
                });
                let trend: Vec<TrendSeries> = keys
                    .iter()
                    .map(|k| TrendSeries {
                        name: k.label(),
                        values: (0..self.runs.len()).map(|i| self.tokens_of(i, k)).collect(),
                    })
                    .collect();
                let labels: Vec<String> = self.runs.iter().map(|r| run_date(&r.info)).collect();
                figs.push(Figure {
                    id: "trend-tokens".into(),
                    title: "Trend: tokens/s over the result folders".into(),
                    svg: charts::trend(
                        "Trend: tokens/s over the result folders",
                        "tokens/s",
                        &labels,
                        &trend,
                    ),
                    caption: "The folders in the order given (a folder of runs in path order, which is time order for results/runs/).".into(),
                });
            } else {
                let benches = self.chosen_benchmarks();
                let trend: Vec<TrendSeries> = benches
                    .iter()
                    .take(10)
                    .map(|b| TrendSeries {
                        name: b.clone(),
                        values: (0..self.runs.len())
                            .map(|i| self.chosen_gflops(i, b))
                            .collect(),
                    })
                    .collect();
                let labels: Vec<String> = self.runs.iter().map(|r| run_date(&r.info)).collect();
                figs.push(Figure {
                    id: "trend-kernels".into(),
                    title: "Trend: chosen variants' GFLOP/s".into(),
                    svg: charts::trend("Trend: chosen variants' GFLOP/s", "GFLOP/s", &labels, &trend),
                    caption: "The fastest verified variant of each benchmark (up to 10), folder by folder.".into(),
                });
            }
        }
        if let Some(c) = &self.comparison {
            let mut bars: Vec<ChangeBar> = c
                .rows
                .iter()
                .filter_map(|r| {
                    Some(ChangeBar {
                        label: r.key.id(),
                        change_pct: r.change_pct?,
                        verdict: r.verdict.as_str().to_string(),
                    })
                })
                .collect();
            bars.sort_by(|a, b| b.change_pct.abs().total_cmp(&a.change_pct.abs()));
            bars.truncate(40);
            figs.push(Figure {
                id: "compare".into(),
                title: "compare: base against head".into(),
                svg: charts::change_bars(
                    &format!("{} → {}", c.base.path, c.head.path),
                    &bars,
                    c.default_threshold_pct,
                ),
                caption: format!(
                    "priceperf compare {} {}: change of each row's median time (up to 40 largest); red regressed, green improved; dashed: the ±{}% threshold.",
                    c.base.path, c.head.path, c.default_threshold_pct
                ),
            });
        }
        figs
    }

    /// The cases of the token rows, in order: models as first seen, then batch, then phase.
    fn token_keys(&self) -> Vec<Case> {
        let mut keys: Vec<Case> = Vec::new();
        for t in &self.tokens {
            let k = t.row.case();
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys.sort_by_key(|k| {
            (
                keys_first(&self.tokens, &k.model),
                k.batch,
                phase_order(k.phase),
            )
        });
        keys
    }

    fn tokens_of(&self, run: usize, case: &Case) -> Option<f64> {
        self.tokens
            .iter()
            .find(|t| t.run == run && t.row.basis == Basis::Measured && t.row.case() == *case)
            .map(|t| t.row.tokens_per_s)
    }

    fn chosen_benchmarks(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for k in self.kernels.iter().filter(|k| k.row.chosen) {
            if !out.contains(&k.row.benchmark) {
                out.push(k.row.benchmark.clone());
            }
        }
        out
    }

    fn chosen_gflops(&self, run: usize, benchmark: &str) -> Option<f64> {
        self.kernels
            .iter()
            .find(|k| k.run == run && k.row.chosen && k.row.benchmark == benchmark)
            .and_then(|k| k.row.gflops)
    }

    /// The ranked costs as a sheet (csv): run id, rank and front first, then costs.csv's
    /// columns.
    pub fn costs_sheet(&self) -> Sheet {
        let mut header: Vec<String> = ["run_id", "rank", "pareto_front", "instance_tokens_per_s"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        header.extend(CostRow::header().iter().map(|s| s.to_string()));
        let rows = self
            .costs
            .iter()
            .map(|c| {
                let mut cells = vec![
                    Cell::Text(c.run_id.clone()),
                    Cell::Int(Some(c.rank as u64)),
                    Cell::Bool(c.pareto_front),
                    Cell::Num(Some(c.instance_tokens_per_s)),
                ];
                cells.extend(c.row.cells());
                cells
            })
            .collect();
        Sheet { header, rows }
    }

    /// The JSON document of `--format json`.
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "schema_version": crate::results::SCHEMA_VERSION,
            "runs": self.runs.iter().map(|r| serde_json::json!({
                "dir": r.dir.display().to_string(),
                "run": r.info,
                "notes": r.notes,
                "prices_as_of": r.prices_as_of.as_ref().map(|(a, b)| [a, b]),
                "undated_prices": r.undated_prices,
                "criterion_report": r.criterion_report.as_ref().map(|p| p.display().to_string()),
            })).collect::<Vec<_>>(),
            "costs": self.costs,
            "tokens": self.tokens,
            "kernels": self.kernels,
            "comparison": self.comparison,
        })
    }

    /// `--format table`: provenance, then the terminal tables.
    pub fn terminal(&self, top: usize) -> String {
        let mut out = String::new();
        for r in &self.runs {
            out.push_str(&format!("run {}\n", r.info.run_id));
            for (k, v) in provenance(r) {
                out.push_str(&format!("  {k:<12} {v}\n"));
            }
        }
        let groups = self.cost_groups();
        for (case, rows) in &groups {
            out.push_str(&format!(
                "\nCost per million tokens: {}, cheapest first ({} of {}; * on the Pareto front)\n",
                case.label(),
                top.min(rows.len()),
                rows.len()
            ));
            let multi = self.runs.len() > 1;
            let cells: Vec<[String; 11]> = rows
                .iter()
                .take(top)
                .map(|c| {
                    let r = &c.row;
                    [
                        format!("{}{}", c.rank, if c.pareto_front { "*" } else { "" }),
                        if multi {
                            format!("{} ({})", r.accelerator, self.runs[c.run].label())
                        } else {
                            r.accelerator.clone()
                        },
                        r.provider.clone(),
                        r.instance.clone(),
                        r.region.clone(),
                        r.tier.as_str().into(),
                        format!("{:.4}", r.usd_per_accelerator_hour),
                        format!("{:.2}", r.tokens_per_s),
                        report::money(r.usd_per_mtok),
                        report::mtok_ci(r),
                        r.price_as_of.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            out.push_str(&report::table(
                &[
                    "#",
                    "accelerator",
                    "provider",
                    "instance",
                    "region",
                    "tier",
                    "$/acc-h",
                    "tokens/s",
                    "$/Mtok",
                    "95% CI",
                    "as of",
                ],
                &cells,
            ));
        }
        if !self.tokens.is_empty() {
            out.push_str("\nToken rates (per accelerator)\n");
            let rows: Vec<TokensRow> = self.tokens.iter().map(|t| t.row.clone()).collect();
            out.push_str(&report::tokens_table(&rows));
        }
        out.push_str("\nKernels\n");
        let rows: Vec<KernelRow> = self.kernels.iter().map(|k| k.row.clone()).collect();
        out.push_str(&report::kernel_table(&rows));
        for r in &self.runs {
            for n in &r.notes {
                out.push_str(&format!("note: {n}\n"));
            }
        }
        out
    }

    /// `--format md`: for a pull-request comment.
    pub fn markdown(&self, top: usize) -> String {
        let md = compare::md_text;
        let mut out = String::from("## priceperf report\n\n");
        out.push_str("| run | adapter | driver | commit | started | prices as of |\n|---|---|---|---|---|---|\n");
        for r in &self.runs {
            let a = &r.info.adapter;
            out.push_str(&format!(
                "| `{}` | {} ({}, {}) | {} | {} | {} | {} |\n",
                md(&r.info.run_id),
                md(&a.name),
                md(&a.backend),
                md(&a.device_type),
                md(format!("{} {}", a.driver, a.driver_info).trim()),
                r.info.git_commit.as_deref().map_or("-".into(), md),
                md(&r.info.started),
                prices_as_of_text(r),
            ));
        }
        let (ok, failed, skipped, verified) = self.kernel_counts();
        out.push_str(&format!(
            "\nKernel rows: {ok} measured, {verified} verified, {failed} failed, {skipped} skipped.\n"
        ));
        for (case, rows) in self.cost_groups() {
            out.push_str(&format!(
                "\n### {}: cost per million tokens, cheapest {} of {}\n\n",
                md(&case.label()),
                top.min(rows.len()),
                rows.len()
            ));
            out.push_str("| # | provider | instance | region | tier | $/acc-h | tokens/s | $/Mtok | 95% CI | price as of | front |\n|---:|---|---|---|---|---:|---:|---:|---|---|---|\n");
            for c in rows.iter().take(top) {
                let r = &c.row;
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.4} | {:.2} | {} | {} | {} | {} |\n",
                    c.rank,
                    md(&r.provider),
                    md(&r.instance),
                    md(&r.region),
                    r.tier.as_str(),
                    r.usd_per_accelerator_hour,
                    r.tokens_per_s,
                    report::money(r.usd_per_mtok),
                    report::mtok_ci(r),
                    r.price_as_of.as_deref().map_or("-".into(), md),
                    if c.pareto_front { "★" } else { "" },
                ));
            }
        }
        if !self.tokens.is_empty() {
            out.push_str("\n### Token rates (per accelerator)\n\n| model | phase | batch | prompt | context | tokens/s | 95% CI | basis |\n|---|---|---:|---:|---:|---:|---|---|\n");
            for t in &self.tokens {
                let r = &t.row;
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} | {:.2} | {} | {} |\n",
                    md(&r.model),
                    r.phase,
                    r.batch,
                    r.prompt_len.map_or("-".into(), |v| v.to_string()),
                    r.context_len.map_or("-".into(), |v| v.to_string()),
                    r.tokens_per_s,
                    match (r.tokens_per_s_low, r.tokens_per_s_high) {
                        (Some(l), Some(h)) => format!("{l:.2}..{h:.2}"),
                        _ => "-".into(),
                    },
                    r.basis.as_str()
                ));
            }
        }
        let headline = self.headline_kernels();
        out.push_str("\n### Kernels: chosen variants and rows that did not pass\n\n");
        out.push_str(&md_kernel_table(&headline));
        out.push_str(&format!(
            "\n<details><summary>All {} kernel rows</summary>\n\n",
            self.kernels.len()
        ));
        out.push_str(&md_kernel_table(&self.kernels.iter().collect::<Vec<_>>()));
        out.push_str("\n</details>\n");
        let notes: Vec<&String> = self.runs.iter().flat_map(|r| &r.notes).collect();
        if !notes.is_empty() {
            out.push('\n');
            for n in notes {
                out.push_str(&format!("- note: {}\n", md(n)));
            }
        }
        out.push_str(
            "\n<sub>Charts: `priceperf report DIR --format html --out report.html`.</sub>\n",
        );
        out
    }
}

/// costs.csv's columns, in order.
fn md_kernel_table(rows: &[&RunKernel]) -> String {
    let md = compare::md_text;
    let mut out = String::from("| benchmark | variant | status | verified | max rel err | median | GFLOP/s | GB/s | % peak | chosen | note |\n|---|---|---|---|---:|---:|---:|---:|---:|---|---|\n");
    for k in rows {
        let r = &k.row;
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            md(&r.benchmark),
            md(&r.variant),
            r.status.as_str(),
            if r.verified { "yes" } else { "no" },
            r.max_rel_err.map_or("-".into(), |e| format!("{e:.1e}")),
            r.median_ns.map_or("-".into(), compare::fmt_ns),
            r.gflops.map_or("-".into(), |g| format!("{g:.2}")),
            r.gbps.map_or("-".into(), |g| format!("{g:.2}")),
            r.pct_of_peak.map_or("-".into(), |p| format!("{p:.1}")),
            if r.chosen { "✓" } else { "" },
            md(&r.note),
        ));
    }
    out
}

/// Rank within each case (model, phase, batch, prompt and context lengths), mark each
/// group's Pareto front, and order the groups: models as first seen, then batch, then
/// workload, prefill, decode, then the token counts.
fn rank(mut costs: Vec<RankedCost>) -> Vec<RankedCost> {
    let mut model_order: BTreeMap<String, usize> = BTreeMap::new();
    for c in &costs {
        let n = model_order.len();
        model_order.entry(c.row.model.clone()).or_insert(n);
    }
    let order = |c: &RankedCost| {
        (
            model_order[&c.row.model],
            c.row.batch,
            phase_order(c.row.phase),
            c.row.prompt_len,
            c.row.context_len,
        )
    };
    costs.sort_by(|a, b| {
        order(a)
            .cmp(&order(b))
            .then(a.row.usd_per_mtok.total_cmp(&b.row.usd_per_mtok))
            .then(b.instance_tokens_per_s.total_cmp(&a.instance_tokens_per_s))
    });
    let mut start = 0;
    while start < costs.len() {
        let key = costs[start].row.case();
        let end = costs[start..]
            .iter()
            .position(|c| c.row.case() != key)
            .map_or(costs.len(), |p| start + p);
        let points: Vec<OfferingPoint> = costs[start..end]
            .iter()
            .map(|c| OfferingPoint {
                label: String::new(),
                provider: String::new(),
                tokens_per_s: c.instance_tokens_per_s,
                usd_per_mtok: c.row.usd_per_mtok,
            })
            .collect();
        let front = charts::pareto_front(&points);
        for (i, c) in costs[start..end].iter_mut().enumerate() {
            c.rank = i + 1;
            // Equal points: all of them are on the front, not only the one the chart rings.
            c.pareto_front = front.iter().any(|&f| {
                points[f].tokens_per_s == c.instance_tokens_per_s
                    && points[f].usd_per_mtok == c.row.usd_per_mtok
            });
        }
        start = end;
    }
    costs
}

/// Workload (what a request pays) first, then prefill, then decode.
fn phase_order(p: PhaseKind) -> u8 {
    match p {
        PhaseKind::Workload => 0,
        PhaseKind::Prefill => 1,
        PhaseKind::Decode => 2,
    }
}

fn keys_first(tokens: &[RunTokens], model: &str) -> usize {
    tokens
        .iter()
        .position(|t| t.row.model == model)
        .unwrap_or(usize::MAX)
}

/// The provenance lines of a run: (label, value).
pub fn provenance(r: &RunView) -> Vec<(&'static str, String)> {
    let i = &r.info;
    let a = &i.adapter;
    let mut v = vec![
        ("folder", r.dir.display().to_string()),
        (
            "adapter",
            format!("{} ({}, {})", a.name, a.backend, a.device_type),
        ),
        (
            "driver",
            format!("{} {}", a.driver, a.driver_info).trim().to_string(),
        ),
        (
            "commit",
            i.git_commit.clone().unwrap_or_else(|| "unknown".into()),
        ),
        (
            "date",
            format!(
                "{} → {}",
                i.started,
                i.finished.as_deref().unwrap_or("unfinished")
            ),
        ),
        (
            "host",
            format!("{} ({}, {} threads)", i.host, i.os, i.cpu_threads),
        ),
        (
            "versions",
            format!("priceperf {}, wgpu {}", i.priceperf_version, i.wgpu_version),
        ),
        ("prices", prices_as_of_text(r)),
    ];
    if let Some(s) = settings_text(&i.settings) {
        v.push(("settings", s));
    }
    v
}

fn settings_text(settings: &serde_json::Value) -> Option<String> {
    let obj = settings.as_object()?;
    let mut parts = Vec::new();
    for key in [
        "suite",
        "filter",
        "variants",
        "sample_size",
        "measurement_s",
        "LP_NUM_THREADS",
    ] {
        match obj.get(key) {
            Some(serde_json::Value::Null) | None => {}
            Some(serde_json::Value::String(s)) => parts.push(format!("{key}={s}")),
            Some(v) => parts.push(format!("{key}={v}")),
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// "as of 2026-07-20 to 2026-07-30 (12 undated)".
pub fn prices_as_of_text(r: &RunView) -> String {
    let dated = match &r.prices_as_of {
        Some((a, b)) if a == b => format!("as of {a}"),
        Some((a, b)) => format!("as of {a} to {b}"),
        None => "no dated prices".into(),
    };
    if r.undated_prices > 0 {
        format!("{dated} ({} rows undated)", r.undated_prices)
    } else {
        dated
    }
}

fn run_date(i: &RunInfo) -> String {
    i.started.get(..16).unwrap_or(&i.started).replace('T', " ")
}

/// `llvmpipe (LLVM 15.0.6, 256 bits)` -> `llvmpipe`.
fn short_adapter(name: &str) -> String {
    name.split(" (").next().unwrap_or(name).trim().to_string()
}

fn tier_short(t: Tier) -> &'static str {
    match t {
        Tier::OnDemand => "",
        Tier::Spot => "spot",
        Tier::Owned => "owned",
        Tier::Custom => "custom",
    }
}

/// A name safe for an HTML id.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The spec-sheet roofs of the accelerator matching `adapter`, when the catalog knows its
/// peaks: the highest compute peak among the dtypes the rows use, and memory bandwidth.
fn spec_roofs(
    catalog: Option<&Catalog>,
    adapter: &str,
    is_cpu: bool,
    rows: &[&KernelRow],
) -> Option<Roofs> {
    let acc = catalog?.match_adapter(adapter, is_cpu)?;
    let bw = acc.memory_bandwidth_gbs?;
    let (tflops, dtype) = highest_peak(rows, |d| acc.peak_tflops(d))?;
    Some(Roofs {
        compute_gflops: tflops * 1000.0,
        bandwidth_gbs: bw,
        source: format!(
            "spec-sheet roofs of {}: {dtype} peak {tflops} TFLOP/s, memory bandwidth {bw} GB/s",
            acc.name
        ),
    })
}

/// The highest `peak` among the dtypes the rows use, with its dtype (the first on a tie):
/// the compute roof of a roofline over those rows.
fn highest_peak(rows: &[&KernelRow], peak: impl Fn(DType) -> Option<f64>) -> Option<(f64, DType)> {
    rows.iter().fold(None, |best, r| match peak(r.dtype) {
        Some(p) if best.is_none_or(|(b, _)| p > b) => Some((p, r.dtype)),
        _ => best,
    })
}

/// A measured row as a roofline point; `None` without a throughput.
fn roofline_point(r: &KernelRow) -> Option<KernelPoint> {
    Some(KernelPoint {
        // The native GEMM runs on the CPU cores, not through the adapter: its own colour, so
        // it is not read as one of the adapter's variants (it can sit above their roof).
        kernel: if r.variant == crate::native::VARIANT {
            NATIVE_POINTS.into()
        } else {
            r.kernel.clone()
        },
        label: format!("{} {}", r.benchmark, r.variant),
        intensity: r.flops as f64 / r.bytes as f64,
        gflops: r.gflops?,
        chosen: r.chosen,
    })
}

/// The roofline's colour group of the native CPU GEMM rows.
const NATIVE_POINTS: &str = "native CPU GEMM (not via the adapter)";

/// The roofs this adapter's peak probes measured (`measure::peaks`): the FMA peak of the
/// highest-peaked dtype the rows use, and the better of the streaming copy and read. Where
/// the catalog has no spec sheet (CPU adapters, unknown GPUs) these are the honest ceilings,
/// where the best achieved row would only say how far the fastest kernel got.
fn measured_roofs(peaks: &Peaks, rows: &[&KernelRow]) -> Option<Roofs> {
    let (bw, what) = peaks.bandwidth().filter(|b| b.0 > 0.0)?;
    let (gflops, dtype) = highest_peak(rows, |d| peaks.gflops(d).filter(|g| *g > 0.0))?;
    let date = peaks.measured_at.get(..10).unwrap_or(&peaks.measured_at);
    Some(Roofs {
        compute_gflops: gflops,
        bandwidth_gbs: bw,
        source: format!(
            "measured roofs of this adapter (peak probes of {date}): FMA peak for {dtype} kernels {} GFLOP/s, {what} {} GB/s",
            charts::number(gflops),
            charts::number(bw)
        ),
    })
}

/// `notes` of the run's results.json, if it has one.
fn read_notes(dir: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(dir.join(dataset::RESULTS_JSON)) else {
        return Vec::new();
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
        return Vec::new();
    };
    v.get("notes")
        .and_then(|n| n.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn required(t: &Table, row: &dataset::TableRow, name: &str) -> Result<f64> {
    t.number(row, name)?.ok_or_else(|| {
        dataset::bad_file(
            &t.path,
            row.line,
            t.column(name).map_or(1, |c| c as u64 + 1),
            format!("column `{name}` is empty"),
        )
    })
}

fn text_enum<T>(
    t: &Table,
    row: &dataset::TableRow,
    name: &str,
    parse: fn(&str) -> Option<T>,
) -> Result<T> {
    let s = t.text(row, name);
    parse(s).ok_or_else(|| {
        dataset::bad_file(
            &t.path,
            row.line,
            t.column(name).map_or(1, |c| c as u64 + 1),
            format!("`{s}` is not a valid `{name}`"),
        )
    })
}

fn parse_phase(s: &str) -> Option<PhaseKind> {
    s.parse().ok()
}

fn parse_basis(s: &str) -> Option<Basis> {
    match s {
        "measured" | "" => Some(Basis::Measured),
        "projected" => Some(Basis::Projected),
        _ => None,
    }
}

fn parse_tier(s: &str) -> Option<Tier> {
    match s {
        "on_demand" => Some(Tier::OnDemand),
        "spot" => Some(Tier::Spot),
        "owned" => Some(Tier::Owned),
        "custom" => Some(Tier::Custom),
        _ => None,
    }
}

/// costs.csv rows, typed. Folders written before costs.csv had `batch`, `prompt_len` and
/// `context_len` get them from the run's token rows of the same model and phase: the one
/// with the same rate for a measured row (a cost row copies its token row's rate exactly),
/// for a projected one (tokens.csv holds measured rows only) the one case they all share.
fn parse_costs(t: &Table, tokens: &[TokensRow]) -> Result<Vec<CostRow>> {
    t.require(&["model", "phase", "tokens_per_s", "usd_per_mtok"])?;
    let has_case = t.column("batch").is_some();
    let mut out = Vec::new();
    for row in &t.rows {
        let as_of = t.text(row, "price_as_of");
        let model = t.text(row, "model").to_string();
        let phase = text_enum(t, row, "phase", parse_phase)?;
        let basis = text_enum(t, row, "basis", parse_basis)?;
        let tokens_per_s = required(t, row, "tokens_per_s")?;
        let (batch, prompt_len, context_len) = if has_case {
            let int =
                |name: &str| -> Result<Option<u32>> { Ok(t.number(row, name)?.map(|v| v as u32)) };
            let batch = required(t, row, "batch")? as u32;
            (batch, int("prompt_len")?, int("context_len")?)
        } else {
            let mut cases: Vec<(u32, Option<u32>, Option<u32>)> = tokens
                .iter()
                .filter(|k| {
                    k.model == model
                        && k.phase == phase
                        && (basis == Basis::Projected || k.tokens_per_s == tokens_per_s)
                })
                .map(|k| (k.batch, k.prompt_len, k.context_len))
                .collect();
            cases.dedup();
            match cases.as_slice() {
                [case] => *case,
                _ => {
                    return Err(dataset::bad_file(
                        &t.path,
                        row.line,
                        1,
                        format!(
                            "this costs.csv has no `batch` column (it predates it), and {} cases (batch, prompt, context) of tokens.csv fit this row's model, phase and tokens_per_s, so its batch is unknown; price the run again with `priceperf run --resume --out` on its folder, with the settings it started with",
                            cases.len()
                        ),
                    ))
                }
            }
        };
        out.push(CostRow {
            model,
            phase,
            batch,
            prompt_len,
            context_len,
            accelerator: t.text(row, "accelerator").to_string(),
            provider: t.text(row, "provider").to_string(),
            instance: t.text(row, "instance").to_string(),
            region: t.text(row, "region").to_string(),
            tier: text_enum(t, row, "tier", parse_tier)?,
            usd_per_hour: t.number(row, "usd_per_hour")?.unwrap_or(f64::NAN),
            accelerators_per_instance: t
                .number(row, "accelerators_per_instance")?
                .map_or(1, |v| v.max(1.0) as u32),
            usd_per_accelerator_hour: t
                .number(row, "usd_per_accelerator_hour")?
                .unwrap_or(f64::NAN),
            tokens_per_s,
            usd_per_mtok: required(t, row, "usd_per_mtok")?,
            usd_per_mtok_low: t.number(row, "usd_per_mtok_low")?,
            usd_per_mtok_high: t.number(row, "usd_per_mtok_high")?,
            price_as_of: Some(as_of.to_string()).filter(|s| !s.is_empty()),
            basis,
        });
    }
    Ok(out)
}

/// tokens.csv rows, typed.
fn parse_tokens(t: &Table) -> Result<Vec<TokensRow>> {
    t.require(&["model", "phase", "tokens_per_s"])?;
    let mut out = Vec::new();
    for row in &t.rows {
        let int =
            |name: &str| -> Result<Option<u32>> { Ok(t.number(row, name)?.map(|v| v as u32)) };
        out.push(TokensRow {
            model: t.text(row, "model").to_string(),
            phase: text_enum(t, row, "phase", parse_phase)?,
            batch: int("batch")?.unwrap_or(1),
            prompt_len: int("prompt_len")?,
            context_len: int("context_len")?,
            tokens_per_s: required(t, row, "tokens_per_s")?,
            tokens_per_s_low: t.number(row, "tokens_per_s_low")?,
            tokens_per_s_high: t.number(row, "tokens_per_s_high")?,
            basis: text_enum(t, row, "basis", parse_basis)?,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cost(
        model: &str,
        phase: PhaseKind,
        instance: &str,
        acc: u32,
        tps: f64,
        usd: f64,
    ) -> RankedCost {
        RankedCost {
            run: 0,
            run_id: "r".into(),
            rank: 0,
            pareto_front: false,
            instance_tokens_per_s: tps * acc as f64,
            row: CostRow {
                model: model.into(),
                phase,
                batch: 1,
                prompt_len: None,
                context_len: None,
                accelerator: "X".into(),
                provider: "P".into(),
                instance: instance.into(),
                region: "r".into(),
                tier: Tier::OnDemand,
                usd_per_hour: 1.0,
                accelerators_per_instance: acc,
                usd_per_accelerator_hour: 1.0,
                tokens_per_s: tps,
                usd_per_mtok: usd,
                usd_per_mtok_low: None,
                usd_per_mtok_high: None,
                price_as_of: None,
                basis: Basis::Measured,
            },
        }
    }

    #[test]
    fn costs_rank_within_model_and_phase_and_mark_the_front() {
        let ranked = rank(vec![
            cost("m", PhaseKind::Prefill, "a", 1, 10.0, 1.0),
            cost("m", PhaseKind::Workload, "b", 1, 10.0, 3.0),
            cost("m", PhaseKind::Workload, "c", 8, 10.0, 4.0),
            cost("m", PhaseKind::Workload, "d", 1, 10.0, 5.0),
        ]);
        let order: Vec<(&str, usize, bool)> = ranked
            .iter()
            .map(|c| (c.row.instance.as_str(), c.rank, c.pareto_front))
            .collect();
        // Workload first; `c` is dearer per token but 8x the throughput: on the front;
        // `d` is slower and dearer than `b`: not.
        assert_eq!(
            order,
            [
                ("b", 1, true),
                ("c", 2, true),
                ("d", 3, false),
                ("a", 1, true)
            ]
        );
    }

    #[test]
    fn each_batch_is_its_own_case_ranked_apart() {
        // Decode at batch 16 is far cheaper per token than at batch 1 on the same instance:
        // ranked together, batch 1's rows would sit under batch 16's as if the same service.
        let at = |batch: u32, instance: &str, usd: f64| {
            let mut c = cost(
                "m",
                PhaseKind::Decode,
                instance,
                1,
                10.0 * batch as f64,
                usd,
            );
            c.row.batch = batch;
            c.row.context_len = Some(576);
            c
        };
        let rep = Report {
            dirs: Vec::new(),
            runs: Vec::new(),
            kernels: Vec::new(),
            tokens: Vec::new(),
            costs: rank(vec![
                at(1, "a", 2.0),
                at(16, "a", 0.125),
                at(1, "b", 3.0),
                at(16, "b", 0.2),
            ]),
            comparison: None,
        };
        let groups: Vec<(String, Vec<(&str, usize)>)> = rep
            .cost_groups()
            .into_iter()
            .map(|(case, rows)| {
                (
                    case.label(),
                    rows.iter()
                        .map(|c| (c.row.instance.as_str(), c.rank))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            groups,
            [
                (
                    "m decode, batch 1, context 576".to_string(),
                    vec![("a", 1), ("b", 2)]
                ),
                (
                    "m decode, batch 16, context 576".to_string(),
                    vec![("a", 1), ("b", 2)]
                ),
            ]
        );
    }

    #[test]
    fn tables_parse_back_into_rows() {
        let t = Table::parse(
            Path::new("costs.csv"),
            "model,phase,accelerator,provider,instance,region,tier,usd_per_hour,accelerators_per_instance,usd_per_accelerator_hour,tokens_per_s,usd_per_mtok,usd_per_mtok_low,usd_per_mtok_high,price_as_of,basis\n\
             gpt2,decode,CPU,AWS,c7g.large,us-east-1,spot,0.03,1,0.03,2,4.1,,,2026-07-20,measured\n",
        )
        .unwrap();
        // Written before costs.csv had the case columns: they come from the token row with
        // the same model, phase, basis and rate.
        let decode = |batch: u32, tokens_per_s: f64| TokensRow {
            model: "gpt2".into(),
            phase: PhaseKind::Decode,
            batch,
            prompt_len: None,
            context_len: Some(96),
            tokens_per_s,
            tokens_per_s_low: None,
            tokens_per_s_high: None,
            basis: Basis::Measured,
        };
        let rows = parse_costs(&t, &[decode(1, 2.0), decode(4, 7.5)]).unwrap();
        assert_eq!(rows[0].tier, Tier::Spot);
        assert_eq!(rows[0].phase, PhaseKind::Decode);
        assert_eq!(rows[0].price_as_of.as_deref(), Some("2026-07-20"));
        assert_eq!((rows[0].batch, rows[0].context_len), (1, Some(96)));
        // No single token row to take them from: refused, naming the row.
        for tokens in [vec![], vec![decode(1, 2.0), decode(2, 2.0)]] {
            let err = parse_costs(&t, &tokens).unwrap_err().to_string();
            assert!(err.contains("no `batch` column"), "{err}");
        }
        // A projected row's rate is not in tokens.csv: the model and phase's one case.
        let projected = Table::parse(
            Path::new("costs.csv"),
            "model,phase,tokens_per_s,usd_per_mtok,tier,basis\n\
             gpt2,decode,0.7,3,on_demand,projected\n",
        )
        .unwrap();
        let rows = parse_costs(&projected, &[decode(1, 2.0)]).unwrap();
        assert_eq!(rows[0].batch, 1);
        for tokens in [vec![], vec![decode(1, 2.0), decode(4, 7.5)]] {
            let err = parse_costs(&projected, &tokens).unwrap_err().to_string();
            assert!(
                err.contains("costs.csv:2") && err.contains("no `batch` column"),
                "{err}"
            );
        }
        // Written with them: read as written.
        let t = Table::parse(
            Path::new("costs.csv"),
            "model,phase,batch,prompt_len,context_len,tokens_per_s,usd_per_mtok,tier,basis\n\
             gpt2,workload,4,128,192,9.5,1.25,spot,measured\n",
        )
        .unwrap();
        let rows = parse_costs(&t, &[]).unwrap();
        assert_eq!(
            (rows[0].batch, rows[0].prompt_len, rows[0].context_len),
            (4, Some(128), Some(192))
        );
        assert_eq!(rows[0].case().tokens_text(), "128:64 in:out");
        let bad = Table::parse(
            Path::new("costs.csv"),
            "model,phase,tokens_per_s,usd_per_mtok,tier\ngpt2,lunch,1,1,spot\n",
        )
        .unwrap();
        let err = parse_costs(&bad, &[]).unwrap_err().to_string();
        assert!(
            err.contains("costs.csv:2:2") && err.contains("lunch"),
            "{err}"
        );
    }

    #[test]
    fn roofs_from_measured_peaks_follow_the_dtypes_the_rows_use() {
        let peaks = |f16: Option<f64>, copy: Option<f64>| Peaks {
            adapter: "llvmpipe".into(),
            probe_version: 1,
            measured_at: "2026-11-27T12:54:32+00:00".into(),
            fma_f32_gflops: Some(88.5),
            fma_f16_gflops: f16,
            copy_gbps: copy,
            copy_via: "textures".into(),
            read_gbps: None,
            read_via: String::new(),
            probe_seconds: 4.8,
        };
        let f32_row = crate::results::tests::row("t", Status::Ok);
        let mut f16_row = f32_row.clone();
        f16_row.dtype = DType::F16;
        // f16 kernels accumulate in f32: their ceiling is the higher of the two peaks.
        let r = measured_roofs(&peaks(Some(120.0), Some(4.2)), &[&f32_row, &f16_row]).unwrap();
        assert_eq!((r.compute_gflops, r.bandwidth_gbs), (120.0, 4.2));
        assert!(
            r.source.contains("2026-11-27")
                && r.source.contains("f16 kernels 120 GFLOP/s")
                && r.source.contains("streaming copy via textures 4.2 GB/s"),
            "{}",
            r.source
        );
        let r = measured_roofs(&peaks(Some(120.0), Some(4.2)), &[&f32_row]).unwrap();
        assert_eq!(r.compute_gflops, 88.5, "f32 rows only: the f32 peak");
        // Without a copy figure there is no bandwidth roof: fall back to the practical one.
        assert!(measured_roofs(&peaks(None, None), &[&f32_row]).is_none());
        assert!(measured_roofs(&peaks(None, Some(4.2)), &[]).is_none());
    }

    #[test]
    fn the_native_gemm_is_its_own_group_on_the_roofline() {
        let variant = crate::results::tests::row("subgroup_stex8_x8_t16x4", Status::Ok);
        let native = crate::results::tests::row(crate::native::VARIANT, Status::Ok);
        assert_eq!(roofline_point(&variant).unwrap().kernel, "matmul");
        assert_eq!(roofline_point(&native).unwrap().kernel, NATIVE_POINTS);
        let mut unmeasured = variant.clone();
        unmeasured.gflops = None;
        assert!(roofline_point(&unmeasured).is_none());
    }

    #[test]
    fn slugs_are_ids() {
        assert_eq!(
            slug("llvmpipe (LLVM 15.0.6, 256 bits)"),
            "llvmpipe-llvm-15-0-6-256-bits"
        );
    }
}
