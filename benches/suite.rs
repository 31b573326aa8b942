//! `cargo bench`: the standard suite through the same runner as `priceperf run`, with
//! criterion's own command line (filters, `--save-baseline`, `--baseline`) intact.
//!
//! Settings come from the environment because criterion owns the arguments:
//! `PRICEPERF_SUITE` (quick|standard|full, default standard), `PRICEPERF_FILTER` (regex on
//! benchmark ids), `PRICEPERF_ADAPTER`, `PRICEPERF_OUT` (default `results/latest`; a previous
//! `results/latest` is moved to `results/runs/` first, never overwritten). Criterion's plots
//! are off unless `-- --plotting-backend plotters` asks for them.

use std::path::PathBuf;

use criterion::Criterion;
use priceperf::runner::{self, RunConfig};

fn main() {
    let code = match bench() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("priceperf bench: error: {}", e.paragraph());
            e.exit_code()
        }
    };
    std::process::exit(code);
}

fn bench() -> priceperf::Result<i32> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let suite = env("PRICEPERF_SUITE")
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(priceperf::suite::SuiteName::Standard);
    let filter = env("PRICEPERF_FILTER")
        .map(|f| regex::Regex::new(&f))
        .transpose()
        .map_err(|e| {
            priceperf::Error::bad_input(
                format!("PRICEPERF_FILTER is not a regular expression: {e}"),
                "Use a regex such as `matmul/f32`.",
            )
        })?;
    let out = env("PRICEPERF_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("results/latest"));
    if out.join("kernels.csv").exists() {
        runner::archive_folder(&out)?;
    }
    let config = RunConfig {
        suite,
        filter,
        adapter: env("PRICEPERF_ADAPTER"),
        out: Some(out),
        ..RunConfig::default()
    };
    // Plots off, as `priceperf run` has them: criterion's SVG reports took about 2.8 s a
    // benchmark on the 2-core lavapipe VM (a quick suite's 40 benchmarks measured in 158 s
    // with them, 55-64 s without). `-- --plotting-backend plotters` turns them back on.
    let mut criterion = Criterion::default()
        .without_plots()
        .nresamples(priceperf::measure::criterion_glue::NRESAMPLES)
        .configure_from_args();
    runner::install_interrupt_handler();
    let outcome = runner::run(&config, &mut criterion)?;
    println!();
    print!("{}", priceperf::report::run_summary(&outcome));
    criterion.final_summary();
    Ok(if outcome.failures() > 0 { 1 } else { 0 })
}
