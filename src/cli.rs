//! The `priceperf` command line: argument definitions and what each subcommand does.
//! Parsing errors exit with 2 (clap's usage code, matching DESIGN.md's bad-input code).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

// Flags take the bound of the catalog's cells: a price, power or duration above it is a typo.
use crate::catalog::table::PLAUSIBLE_MAX;
use crate::catalog::{Catalog, Offering};
use crate::cost::{self, Basis, OwnedHardware, TokensRow};
use crate::error::{Error, Result, EXIT_FAILED, EXIT_OK};
use crate::gpu::{self, AdapterSummary};
use crate::measure::criterion_glue::{criterion_for_run, Sampling};
use crate::model::PhaseKind;
use crate::pricing::PricingOptions;
use crate::report;
use crate::runner::{self, RunConfig};
use crate::shape::DType;
use crate::suite::{Benchmark, Op, SuiteName};

#[derive(Debug, Parser)]
#[command(
    name = "priceperf",
    version,
    about = "What does a token cost on this accelerator? Verified WGSL kernels through wgpu, timed, joined with instance prices."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every adapter wgpu can see, with the features and limits that decide what runs.
    Devices {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Verify and measure the benchmarks, write the result folder, print the tables.
    Run(Box<RunArgs>),
    /// Compare two result sets; exit 1 when a row regressed (slower beyond the threshold with
    /// separated confidence intervals) or a verified row now fails, 2 on bad input.
    Compare(CompareArgs),
    /// Merge result folders from many machines into one, deduplicated by natural key and run id.
    Merge(MergeArgs),
    /// Export result folders as CSV, JSON, JSONL, Markdown, Bencher BMF or github-action-benchmark JSON.
    Export(ExportArgs),
    /// What-if calculator: dollars per million tokens at a given throughput, on the same
    /// formulas as a run.
    Cost(CostArgs),
    /// The price catalog with its as-of dates.
    Prices(PricesArgs),
    /// Tables and charts from result folders: terminal tables, Markdown for pull requests,
    /// CSV/JSON, or one self-contained HTML page (provenance, ranked costs, charts, kernels).
    Report(crate::report_cmd::ReportArgs),
}

/// Largest token rate `cost` accepts (no accelerator makes a trillion tokens a second).
const MAX_TOKENS_PER_S: f64 = 1e12;

/// A number for a message: plain, or in exponent form when huge or tiny.
fn show(v: f64) -> String {
    if v != 0.0 && v.is_finite() && !(1e-6..1e15).contains(&v.abs()) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Output format of the catalog and cost commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableFormat {
    Table,
    Csv,
    Json,
}

/// Where prices come from and how they are adjusted; shared by `run` and `cost`.
#[derive(Debug, Clone, clap::Args)]
pub struct PriceArgs {
    /// The instance the run is on (e.g. p5.48xlarge): price only that instance.
    #[arg(long)]
    pub instance: Option<String>,
    /// A private quote in $/hour for the whole machine (tier `custom`), shared among its
    /// --accelerators-per-machine.
    #[arg(long, allow_negative_numbers = true)]
    pub price_per_hour: Option<f64>,
    /// Accelerators in the machine --price-per-hour is quoted for: the quote is divided
    /// among them, as a run measures one accelerator and $/Mtok is per accelerator's
    /// tokens (default 1).
    #[arg(long, default_value_t = 1, requires = "price_per_hour", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub accelerators_per_machine: u32,
    /// Fraction of time the accelerator does useful work, in (0, 1]; divides $/Mtok.
    #[arg(long, allow_negative_numbers = true)]
    pub utilization: Option<f64>,
    /// Owned hardware: purchase price per accelerator in $ (with --watts; tier `owned`).
    #[arg(long, requires = "watts", allow_negative_numbers = true)]
    pub capex: Option<f64>,
    /// Owned hardware: depreciation life in years.
    #[arg(long, default_value_t = 4.0, allow_negative_numbers = true)]
    pub life_years: f64,
    /// Owned hardware: power per accelerator at the wall, in watts.
    #[arg(long, allow_negative_numbers = true)]
    pub watts: Option<f64>,
    /// Owned hardware: power usage effectiveness of the facility.
    #[arg(long, default_value_t = 1.3, allow_negative_numbers = true)]
    pub pue: f64,
    /// Owned hardware: electricity price in $/kWh.
    #[arg(long, default_value_t = 0.12, allow_negative_numbers = true)]
    pub usd_per_kwh: f64,
    /// Flag prices older than this many days.
    #[arg(long, default_value_t = crate::pricing::DEFAULT_MAX_AGE_DAYS)]
    pub max_price_age_days: u32,
    /// Instance price file extending the built-in catalog (columns as data/instances.csv).
    #[arg(long, env = "PRICEPERF_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Accelerator spec file extending the built-in one (columns as data/accelerators.csv).
    #[arg(long, env = "PRICEPERF_ACCELERATORS")]
    pub accelerators: Option<PathBuf>,
}

impl PriceArgs {
    fn options(&self) -> Result<PricingOptions> {
        let owned = match (self.capex, self.watts) {
            (Some(capex_usd), Some(watts)) => Some(OwnedHardware {
                capex_usd,
                life_years: self.life_years,
                watts,
                pue: self.pue,
                usd_per_kwh: self.usd_per_kwh,
            }),
            _ => None,
        };
        for (flag, value) in [
            ("--price-per-hour", self.price_per_hour),
            ("--capex", self.capex),
            ("--watts", self.watts),
            ("--life-years", Some(self.life_years)),
            ("--pue", Some(self.pue)),
            ("--usd-per-kwh", Some(self.usd_per_kwh)),
        ] {
            if let Some(v) = value.filter(|v| v.is_finite() && v.abs() > PLAUSIBLE_MAX) {
                return Err(Error::bad_input(
                    format!(
                        "{flag} {} is implausibly large (above {PLAUSIBLE_MAX:e})",
                        show(v)
                    ),
                    format!("Give {flag} in plain units (USD, watts, years), e.g. {flag} 2.5"),
                ));
            }
        }
        if let Some(hw) = &owned {
            hw.usd_per_hour()?;
        }
        cost::check_utilization(self.utilization)?;
        if let Some(p) = self.price_per_hour {
            cost::usd_per_accelerator_hour(p, self.accelerators_per_machine)?;
        }
        Ok(PricingOptions {
            instance: self.instance.clone(),
            price_per_hour: self.price_per_hour,
            accelerators_per_machine: self.accelerators_per_machine,
            utilization: self.utilization,
            owned,
            max_age_days: self.max_price_age_days,
        })
    }

    fn catalog(&self) -> Result<Catalog> {
        Catalog::from_files(self.catalog.as_deref(), self.accelerators.as_deref(), false)
    }
}

#[derive(Debug, clap::Args)]
pub struct CostArgs {
    /// Throughput to price, tokens per second per accelerator.
    #[arg(long, allow_negative_numbers = true)]
    pub tokens_per_second: f64,
    /// Price every instance carrying this accelerator (e.g. "H100 SXM").
    #[arg(long, conflicts_with_all = ["instance", "price_per_hour"])]
    pub accelerator: Option<String>,
    #[command(flatten)]
    pub price: PriceArgs,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Debug, clap::Args)]
pub struct PricesArgs {
    /// Only this accelerator.
    #[arg(long)]
    pub accelerator: Option<String>,
    /// Only this provider.
    #[arg(long)]
    pub provider: Option<String>,
    /// Instance price file extending the built-in catalog.
    #[arg(long, env = "PRICEPERF_CATALOG")]
    pub catalog: Option<PathBuf>,
    /// Accelerator spec file extending the built-in one (for the catalog's own accelerators).
    #[arg(long, env = "PRICEPERF_ACCELERATORS")]
    pub accelerators: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = TableFormat::Table)]
    pub format: TableFormat,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The reference result folder (a run, a baseline, or a folder of them).
    pub base: PathBuf,
    /// The result folder to judge.
    pub head: PathBuf,
    /// Regression threshold in percent for benchmarks the thresholds file does not match.
    #[arg(long, value_name = "PCT", default_value_t = crate::compare::DEFAULT_THRESHOLD_PCT, allow_negative_numbers = true)]
    pub threshold: f64,
    /// Per-benchmark thresholds: lines of `PCT REGEX` (regex on benchmark/variant, first match wins).
    #[arg(long, value_name = "FILE")]
    pub thresholds: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = crate::compare::CompareFormat::Table)]
    pub format: crate::compare::CompareFormat,
    /// Which timing regressions fail: `auto` all but those on software adapters (lavapipe),
    /// `on` all, `off` none (correctness regressions always fail).
    #[arg(long, value_enum, default_value_t = crate::compare::TimingGate::Auto)]
    pub timing_gate: crate::compare::TimingGate,
    /// Let benchmarks BASE measured and HEAD did not (on the same adapter and driver) pass:
    /// for a HEAD that runs a subset on purpose. By default they fail as `MISSING`.
    #[arg(long)]
    pub allow_missing: bool,
}

#[derive(Debug, clap::Args)]
pub struct MergeArgs {
    /// Result folders (runs, folders of runs, earlier merges); on conflict the first wins.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged folder to create (must not exist, or be empty).
    #[arg(long)]
    pub out: PathBuf,
    /// Refuse to write anything when copies of a run disagree.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Result folders (runs, folders of runs, merges).
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    #[arg(long, value_enum)]
    pub format: crate::export::ExportFormat,
    /// Output file (default: stdout); a folder for `gab` and for `csv --table all`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Which table a CSV export writes.
    #[arg(long, value_enum, default_value_t = crate::export::TableName::Kernels)]
    pub table: crate::export::TableName,
    /// Start CSV files with a UTF-8 byte-order mark (for Excel on Windows).
    #[arg(long)]
    pub bom: bool,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Which benchmark list to run.
    #[arg(long, value_enum, default_value_t = SuiteName::Standard)]
    pub suite: SuiteName,
    /// Only benchmarks whose id (kernel/dtype/shape) matches this regular expression.
    #[arg(long)]
    pub filter: Option<String>,
    /// Only variants whose name matches this regular expression (e.g. `subgroup|tiled`).
    #[arg(long)]
    pub variant: Option<String>,
    /// Run one op instead of the suite (with --shape), e.g. `matmul`.
    #[arg(long, requires = "shape")]
    pub kernel: Option<String>,
    /// Shape spec for --kernel, e.g. `m=1024,n=1024,k=1024` (optional batch=, transpose_b=1).
    #[arg(long, requires = "kernel")]
    pub shape: Option<String>,
    /// Element types for --kernel, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "f32")]
    pub dtype: Vec<String>,
    /// Adapter name substring (`priceperf devices` lists them); `vulkan:llvmpipe` also
    /// matches the backend, and a bare backend name (`gl`) picks that backend's first adapter.
    #[arg(long, env = "PRICEPERF_ADAPTER")]
    pub adapter: Option<String>,
    /// Result folder (default `results/runs/<timestamp>-<adapter>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out, running only benchmarks without rows; with the adapter and
    /// settings (suite, filter, variants, sampling) it started with.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Search every kernel variant again and re-measure the adapter's peaks instead of using
    /// the cached tuning choices and peaks (kept per adapter and driver in
    /// $PRICEPERF_CACHE_DIR, default ~/.cache/priceperf).
    #[arg(long)]
    pub retune: bool,
    /// Leave a variant out of the run's later searches once it has screened at least this
    /// many times behind the fastest on every earlier benchmark of the same kind (two at
    /// least); 0 never prunes. Only suite runs prune: not `--suite full`, not `--kernel`.
    #[arg(long, default_value_t = crate::tuning::PRUNE_RATIO)]
    pub prune_ratio: f64,
    /// Samples per variant (at least 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub sample_size: Option<u32>,
    /// Seconds criterion spends measuring each variant.
    #[arg(long)]
    pub measurement_time: Option<f64>,
    /// Price these models (repeatable; a preset name from data/models.csv or --models-file).
    /// Default: the suite's models, or none with --kernel.
    #[arg(long = "model")]
    pub models: Vec<String>,
    /// Sequences per batch for --model.
    #[arg(long)]
    pub batch: Option<u32>,
    /// Prompt tokens per sequence for --model (default 512 on GPUs, 64 on CPU adapters).
    #[arg(long)]
    pub prompt_len: Option<u32>,
    /// Generated tokens per sequence for --model (default 128 on GPUs, 32 on CPU adapters).
    #[arg(long)]
    pub gen_len: Option<u32>,
    /// Storage type of the model ops (default f16 where the adapter has it).
    #[arg(long)]
    pub model_dtype: Option<String>,
    /// Model presets file extending data/models.csv.
    #[arg(long, env = "PRICEPERF_MODELS")]
    pub models_file: Option<PathBuf>,
    #[command(flatten)]
    pub price: PriceArgs,
    /// Seconds one submission may run before it is recorded as timed out.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
    /// No progress output while running (the tables at the end still print).
    #[arg(long, short = 'q', conflicts_with = "verbose")]
    pub quiet: bool,
    /// Plain progress lines plus criterion's own report (statistics, outliers), instead of
    /// the progress bar.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

impl RunArgs {
    /// The runner's configuration, with every value checked.
    pub fn config(&self) -> Result<RunConfig> {
        let filter = self
            .filter
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| {
                Error::bad_input(
                    format!("--filter is not a regular expression: {e}"),
                    "Use a regex such as `matmul/f32/.*1024`.",
                )
            })?;
        let variants = self
            .variant
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| {
                Error::bad_input(
                    format!("--variant is not a regular expression: {e}"),
                    "Use a regex such as `subgroup|tiled`.",
                )
            })?;
        let mut custom = Vec::new();
        if let (Some(kernel), Some(shape)) = (&self.kernel, &self.shape) {
            let op = Op::parse(kernel, shape)?;
            for d in &self.dtype {
                custom.push(Benchmark::new(op, d.parse::<DType>()?));
            }
        }
        // A number of seconds above 0 and at most a day (Duration would panic on a huge one).
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(v)
            } else {
                Err(Error::bad_input(
                    format!(
                        "{name} {} is not a number of seconds above 0 and at most 86400 (a day)",
                        show(v)
                    ),
                    format!("Pass e.g. {name} 2."),
                ))
            }
        };
        let prune_ratio = match self.prune_ratio {
            0.0 => None,
            r if r.is_finite() && r >= 1.0 => Some(r),
            r => {
                return Err(Error::bad_input(
                    format!(
                        "--prune-ratio {} is neither 0 nor a ratio of at least 1",
                        show(r)
                    ),
                    "Pass e.g. --prune-ratio 10 (the default), or 0 to try every variant on every benchmark.",
                ))
            }
        };
        let mut sampling = None;
        if self.sample_size.is_some() || self.measurement_time.is_some() {
            let mut s = Sampling::for_adapter(true);
            if let Some(n) = self.sample_size {
                s.sample_size = n as usize;
            }
            if let Some(t) = self.measurement_time {
                s.measurement = Duration::from_secs_f64(positive("--measurement-time", t)?);
            }
            sampling = Some(s);
        }
        Ok(RunConfig {
            suite: self.suite,
            filter,
            variants,
            custom,
            adapter: self.adapter.clone(),
            out: self.out.clone(),
            resume: self.resume,
            retune: self.retune,
            prune_ratio,
            sampling,
            timeout: Duration::from_secs_f64(positive("--timeout", self.timeout)?),
            models: self.models.clone(),
            batch: self.batch,
            prompt_len: self.prompt_len,
            gen_len: self.gen_len,
            model_dtype: self.model_dtype.as_deref().map(str::parse).transpose()?,
            models_file: self.models_file.clone(),
            instances_file: self.price.catalog.clone(),
            accelerators_file: self.price.accelerators.clone(),
            pricing: self.price.options()?,
            verbosity: crate::progress::Verbosity::from_flags(self.quiet, self.verbose),
            ..RunConfig::default()
        })
    }
}

/// Run the parsed command; returns the exit code.
pub fn execute(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Devices { format } => {
            let adapters: Vec<AdapterSummary> =
                gpu::enumerate().iter().map(AdapterSummary::of).collect();
            if adapters.is_empty() {
                return Err(Error::NoAdapter(gpu::NO_ADAPTER_HELP.into()));
            }
            match format {
                Format::Table => print!("{}", report::devices_table(&adapters)),
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&adapters).expect("adapter summaries serialise")
                ),
            }
            Ok(EXIT_OK)
        }
        Command::Run(args) => {
            let config = args.config()?;
            runner::check_inputs(&config)?;
            let out = config
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("results/runs"));
            let mut criterion = crate::progress::quietly(config.verbosity, || {
                criterion_for_run(out.join("criterion"))
            });
            runner::install_interrupt_handler();
            let outcome = runner::run(&config, &mut criterion)?;
            println!();
            print!("{}", report::run_summary(&outcome));
            Ok(if outcome.interrupted {
                130
            } else if outcome.failures() > 0 {
                EXIT_FAILED
            } else {
                EXIT_OK
            })
        }
        Command::Compare(args) => crate::compare::execute(&args),
        Command::Merge(args) => crate::merge::execute(&args),
        Command::Export(args) => crate::export::execute(&args),
        Command::Cost(args) => what_if(&args),
        Command::Prices(args) => prices(&args),
        Command::Report(args) => crate::report_cmd::execute(&args),
    }
}

/// `priceperf cost`: one throughput priced on the chosen offerings.
fn what_if(args: &CostArgs) -> Result<i32> {
    let tps = args.tokens_per_second;
    if !(tps.is_finite() && tps > 0.0 && tps <= MAX_TOKENS_PER_S) {
        return Err(Error::bad_input(
            format!(
                "--tokens-per-second {} is not a token rate: it must be a finite number above 0 and at most {MAX_TOKENS_PER_S:e}",
                show(tps)
            ),
            "Give the measured throughput per accelerator, e.g. --tokens-per-second 1800 (a failed or unmeasured benchmark has no cost)",
        ));
    }
    let catalog = args.price.catalog()?;
    let opts = args.price.options()?;
    let mut offerings = if let Some(p) = opts.price_per_hour {
        vec![Offering::custom(
            args.accelerator.as_deref().unwrap_or("custom"),
            p,
            opts.accelerators_per_machine,
        )?]
    } else if let Some(instance) = &opts.instance {
        catalog.offerings_for_instance(instance)?
    } else if let Some(name) = &args.accelerator {
        let acc = catalog.accelerator(name)?;
        let offerings = catalog.offerings_for(&acc.name);
        // An empty table with exit 0 reads as "priced, nothing to show"; say what is missing.
        if offerings.is_empty() && opts.owned.is_none() {
            return Err(Error::bad_input(
                crate::pricing::no_priced_offering(&acc.name),
                crate::pricing::PRICE_IT,
            ));
        }
        offerings
    } else if opts.owned.is_none() {
        return Err(Error::bad_input(
            "nothing to price",
            "Give --instance NAME, --accelerator NAME or --price-per-hour P (or --capex with --watts for owned hardware).",
        ));
    } else {
        Vec::new()
    };
    if let Some(hw) = &opts.owned {
        offerings.push(Offering::owned(
            args.accelerator.as_deref().unwrap_or("owned"),
            hw,
        )?);
    }
    let tokens = vec![TokensRow {
        model: "what-if".into(),
        phase: PhaseKind::Workload,
        batch: 1,
        prompt_len: None,
        context_len: None,
        tokens_per_s: args.tokens_per_second,
        tokens_per_s_low: None,
        tokens_per_s_high: None,
        basis: Basis::Measured,
    }];
    let rows = cost::price_offerings(&tokens, &offerings, opts.utilization)?;
    let today = chrono::Utc::now().date_naive();
    // On stderr: csv and json output stays machine-readable.
    if let Some(note) = crate::pricing::age_note(&offerings, today, opts.max_age_days) {
        eprintln!("note: {note}");
    }
    match args.format {
        TableFormat::Table => print!("{}", report::cost_table(&rows, usize::MAX)),
        TableFormat::Csv => print!("{}", crate::results::csv_cells::encode(&rows, true)),
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("cost rows serialise")
        ),
    }
    if let Some(w) = args.price.watts {
        let e = cost::joules_per_token(w, args.tokens_per_second, true)?;
        let line = format!(
            "energy: {:.3} J/token at {w} W (modelled from the given power, not measured)",
            e.joules_per_token
        );
        // Under a table it is one more line to read; after csv or json it would break the
        // parse, so there it goes to stderr with the notes.
        match args.format {
            TableFormat::Table => println!("{line}"),
            TableFormat::Csv | TableFormat::Json => eprintln!("{line}"),
        }
    }
    Ok(EXIT_OK)
}

/// `priceperf prices`: the catalog, filtered.
fn prices(args: &PricesArgs) -> Result<i32> {
    let catalog =
        Catalog::from_files(args.catalog.as_deref(), args.accelerators.as_deref(), false)?;
    let rows = catalog.prices(args.accelerator.as_deref(), args.provider.as_deref())?;
    match args.format {
        TableFormat::Table => print!("{}", report::prices_table(&rows)),
        TableFormat::Csv => print!("{}", report::prices_csv(&rows)),
        TableFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&rows).expect("price rows serialise")
        ),
    }
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("priceperf").chain(args.iter().copied()))
    }

    #[test]
    fn run_with_a_custom_shape() {
        let cli = parse(&[
            "run",
            "--kernel",
            "matmul",
            "--shape",
            "m=4,n=5,k=6",
            "--dtype",
            "f32,f16",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!()
        };
        let config = args.config().unwrap();
        let ids: Vec<String> = config.custom.iter().map(Benchmark::id).collect();
        assert_eq!(ids, ["matmul/f32/m=4,n=5,k=6", "matmul/f16/m=4,n=5,k=6"]);
    }

    #[test]
    fn bad_arguments_are_usage_errors_with_exit_2() {
        for args in [
            &["run", "--suite", "huge"][..],
            &["run", "--kernel", "matmul"],
            &["run", "--resume"],
            &["run", "--sample-size", "3"],
            &["frobnicate"],
        ] {
            let err = parse(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
        }
    }

    #[test]
    fn bad_values_are_bad_input() {
        for (args, needle) in [
            (
                &["run", "--kernel", "matmul", "--shape", "m=4,n=5"][..],
                "`k` is missing",
            ),
            (
                &[
                    "run",
                    "--kernel",
                    "matmul",
                    "--shape",
                    "m=4,n=5,k=1",
                    "--dtype",
                    "bf8",
                ],
                "unknown dtype",
            ),
            (&["run", "--filter", "("], "not a regular expression"),
            (&["run", "--timeout", "0"], "seconds above 0"),
        ] {
            let Command::Run(a) = parse(args).unwrap().command else {
                panic!()
            };
            let err = a.config().unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(needle), "{err}");
        }
    }
}
