//! The `priceperf` command line: argument definitions and what each subcommand does.
//! Parsing errors exit with 2 (clap's usage code, matching DESIGN.md's bad-input code).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result, EXIT_FAILED, EXIT_OK};
use crate::gpu::{self, AdapterSummary};
use crate::measure::criterion_glue::{criterion_for_run, Sampling};
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
    Run(RunArgs),
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Which benchmark list to run.
    #[arg(long, value_enum, default_value_t = SuiteName::Standard)]
    pub suite: SuiteName,
    /// Only benchmarks whose id (kernel/dtype/shape) matches this regular expression.
    #[arg(long)]
    pub filter: Option<String>,
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
    /// matches the backend.
    #[arg(long, env = "PRICEPERF_ADAPTER")]
    pub adapter: Option<String>,
    /// Result folder (default `results/runs/<timestamp>-<adapter>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out, running only benchmarks without rows.
    #[arg(long, requires = "out")]
    pub resume: bool,
    /// Samples per variant (at least 10).
    #[arg(long, value_parser = clap::value_parser!(u32).range(10..=10_000))]
    pub sample_size: Option<u32>,
    /// Seconds criterion spends measuring each variant.
    #[arg(long)]
    pub measurement_time: Option<f64>,
    /// Seconds one submission may run before it is recorded as timed out.
    #[arg(long, default_value_t = 60.0)]
    pub timeout: f64,
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
        let mut custom = Vec::new();
        if let (Some(kernel), Some(shape)) = (&self.kernel, &self.shape) {
            let op = Op::parse(kernel, shape)?;
            for d in &self.dtype {
                custom.push(Benchmark::new(op, d.parse::<DType>()?));
            }
        }
        let positive = |name: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(Error::bad_input(
                    format!("{name} {v} is not a positive number of seconds"),
                    format!("Pass e.g. {name} 2."),
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
            custom,
            adapter: self.adapter.clone(),
            out: self.out.clone(),
            resume: self.resume,
            sampling,
            timeout: Duration::from_secs_f64(positive("--timeout", self.timeout)?),
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
            let out = config
                .out
                .clone()
                .unwrap_or_else(|| PathBuf::from("results/runs"));
            let mut criterion = criterion_for_run(out.join("criterion"));
            let outcome = runner::run(&config, &mut criterion)?;
            println!();
            print!("{}", report::kernel_table(&outcome.rows));
            println!("\nresults: {}", outcome.dir.display());
            Ok(if outcome.failures() > 0 {
                EXIT_FAILED
            } else {
                EXIT_OK
            })
        }
    }
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
            (&["run", "--timeout", "0"], "positive"),
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
