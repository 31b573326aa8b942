//! The run loop: opens the adapter, measures the peaks, then runs each benchmark
//! (`benchmark`: prepare and verify every variant, measure them or, in a tuning search,
//! screen them and measure the winner, mark the fastest verified one as chosen) and appends
//! its rows to the result folder (`folder`) before moving on; at the end, token rates and
//! costs. `cargo bench` and `priceperf run` both call [`run`] with their own criterion
//! instance.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use criterion::Criterion;
use regex::Regex;

use crate::catalog::{Accelerator, Catalog};
use crate::compile_ahead::CompileAhead;
use crate::compose;
use crate::cost::{CostRow, TokensRow};
use crate::error::{Error, Result};
use crate::gpu::Gpu;
use crate::measure::criterion_glue::Sampling;
use crate::measure::peaks::SpeedCheck;
use crate::measure::Timer;
use crate::model::ModelPresets;
use crate::native;
use crate::pricing::{self, PricingOptions};
use crate::results::{self, KernelRow, ResultSet, RunInfo, Status};
use crate::shape::DType;
use crate::suite::{benchmarks, Benchmark, SuiteName};
use crate::tuning::ScreenHistory;

mod benchmark;
mod folder;

use benchmark::{run_benchmark, Collected};
pub use folder::{archive_folder, parse_run_info, read_run_info};
use folder::{write_json, FolderLock};

/// What to run and where to write it.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub suite: SuiteName,
    /// Only benchmarks whose id matches.
    pub filter: Option<Regex>,
    /// Only variants whose name matches (`--variant`).
    pub variants: Option<Regex>,
    /// Explicit benchmarks (`--kernel --shape`); replaces the suite's list when non-empty.
    pub custom: Vec<Benchmark>,
    /// Adapter name substring (see [`crate::gpu::select`]).
    pub adapter: Option<String>,
    /// Result folder; default `results/runs/<timestamp>-<adapter>`.
    pub out: Option<PathBuf>,
    /// Continue a folder, running only benchmarks that have no rows yet.
    pub resume: bool,
    /// Sampling settings; default by adapter class.
    pub sampling: Option<Sampling>,
    /// Longest one submission may run before it counts as hung.
    pub timeout: Duration,
    /// Seed for the input data.
    pub seed: u64,
    /// Models to price (`--model`); empty means the suite's defaults, or none when
    /// `--kernel` names a single op.
    pub models: Vec<String>,
    /// Batch, prompt and generation lengths for `--model` (default by adapter class).
    pub batch: Option<u32>,
    pub prompt_len: Option<u32>,
    pub gen_len: Option<u32>,
    /// Storage type of the model ops; default f16 where the adapter has it, else f32.
    pub model_dtype: Option<DType>,
    /// User files replacing or extending the embedded data.
    pub models_file: Option<PathBuf>,
    pub instances_file: Option<PathBuf>,
    pub accelerators_file: Option<PathBuf>,
    pub pricing: PricingOptions,
    /// Progress output: a bar or plain lines, criterion's report only when verbose. The
    /// default (verbose) keeps criterion's report, which `cargo bench` users expect.
    pub verbosity: crate::progress::Verbosity,
    /// Search again (pruning as the suite does) and measure the peaks again, ignoring the
    /// cache.
    pub retune: bool,
    /// Prune variants that screened this many times behind the fastest on earlier
    /// benchmarks of their kind ([`ScreenHistory`]); `None` never prunes.
    pub prune_ratio: Option<f64>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            suite: SuiteName::Standard,
            filter: None,
            variants: None,
            custom: Vec::new(),
            adapter: None,
            out: None,
            resume: false,
            sampling: None,
            timeout: Duration::from_secs(60),
            seed: 42,
            models: Vec::new(),
            batch: None,
            prompt_len: None,
            gen_len: None,
            model_dtype: None,
            models_file: None,
            instances_file: None,
            accelerators_file: None,
            pricing: PricingOptions {
                max_age_days: 180,
                ..PricingOptions::default()
            },
            verbosity: crate::progress::Verbosity::default(),
            retune: false,
            prune_ratio: Some(crate::tuning::PRUNE_RATIO),
        }
    }
}

/// What a run produced.
pub struct RunOutcome {
    pub dir: PathBuf,
    pub rows: Vec<KernelRow>,
    pub info: RunInfo,
    pub tokens: Vec<TokensRow>,
    pub costs: Vec<CostRow>,
    pub notes: Vec<String>,
    /// The user asked to stop (Ctrl-C) before every benchmark ran.
    pub interrupted: bool,
}

impl RunOutcome {
    /// Rows whose verification or execution failed (exit code 1).
    pub fn failures(&self) -> usize {
        self.rows
            .iter()
            .filter(|r| matches!(r.status, Status::Failed | Status::Timeout))
            .count()
    }
}

/// Set by the first Ctrl-C: the run finishes the current benchmark, writes, and stops.
static STOP: AtomicBool = AtomicBool::new(false);

/// Whether a stop was requested.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

/// Install the Ctrl-C behaviour of long runs: the first press finishes the current benchmark
/// and writes everything; a second press exits at once (the result folder stays valid,
/// since rows are appended whole). Safe to call more than once.
pub fn install_interrupt_handler() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            crate::progress::notice("\npriceperf: stopping now");
            std::process::exit(130);
        }
        crate::progress::notice("\npriceperf: finishing the current benchmark, then writing results (Ctrl-C again to stop at once)");
    });
}

/// Reads the user files a run names (catalog, accelerator specs, model presets, the
/// kernels.csv a `--resume` continues) and the models and instance asked for, so that a bad
/// file or name is refused before the adapter opens or any folder is made, not after the
/// benchmarks ran: it costs nothing and leaves nothing behind. [`run`] calls it first; the
/// CLI calls it before it sets up criterion.
pub fn check_inputs(config: &RunConfig) -> Result<()> {
    let catalog = Catalog::from_files(
        config.instances_file.as_deref(),
        config.accelerators_file.as_deref(),
        false,
    )?;
    if let Some(instance) = &config.pricing.instance {
        catalog.offerings_for_instance(instance)?;
    }
    let presets = ModelPresets::from_file(config.models_file.as_deref(), false)?;
    for m in &config.models {
        presets.get(m)?;
    }
    if let Some(dir) = &config.out {
        let kernels_csv = dir.join("kernels.csv");
        if config.resume && kernels_csv.is_file() {
            results::read_resumable_rows(&kernels_csv)?;
        }
    }
    Ok(())
}

/// Run the configured benchmarks and write the result folder.
pub fn run(config: &RunConfig, criterion: &mut Criterion) -> Result<RunOutcome> {
    let run_started = Instant::now();
    check_inputs(config)?;
    let mut gpu = Gpu::open(config.adapter.as_deref())?;
    let summary = gpu.summary.clone();
    let started = chrono::Utc::now();
    let dir = match &config.out {
        Some(d) => d.clone(),
        None => PathBuf::from("results/runs").join(format!(
            "{}-{}",
            started.format("%Y%m%dT%H%M%SZ"),
            summary.slug()
        )),
    };
    fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
    let _lock = FolderLock::take(&dir)?;
    let kernels_csv = dir.join("kernels.csv");
    let mut rows = Vec::new();
    if kernels_csv.exists() {
        if !config.resume {
            return Err(Error::bad_input(
                format!("{} already holds results", dir.display()),
                "Pass --resume to continue that run, or choose another folder with --out.",
            ));
        }
        // Read only: the torn tail, if any, is cut once the resume is known to be the same
        // run (below).
        rows = results::read_resumable_rows(&kernels_csv)?;
    }

    native::set_threads(crate::gpu::cpu_adapter_threads());
    let catalog = Catalog::from_files(
        config.instances_file.as_deref(),
        config.accelerators_file.as_deref(),
        false,
    )?;
    let accel = catalog
        .match_adapter(&summary.name, summary.is_cpu())
        .cloned();
    let model_dtype =
        config
            .model_dtype
            .unwrap_or(if summary.f16 { DType::F16 } else { DType::F32 });
    let (runs, mut notes) = model_runs_for(config, &summary, accel.as_ref(), model_dtype)?;
    let mut list = if config.custom.is_empty() {
        benchmarks(config.suite, &summary)
    } else {
        config.custom.clone()
    };
    for b in compose::benchmarks(&runs)? {
        if !list.contains(&b) {
            list.push(b);
        }
    }
    if let Some(re) = &config.filter {
        let before: Vec<String> = list.iter().map(Benchmark::id).collect();
        list.retain(|b| re.is_match(&b.id()));
        if list.is_empty() {
            return Err(Error::bad_input(
                format!(
                    "--filter `{re}` matches none of the {} benchmarks of the {} suite",
                    before.len(),
                    config.suite
                ),
                format!(
                    "Benchmark ids look like: {}",
                    before
                        .iter()
                        .take(3)
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    let done: std::collections::HashSet<String> =
        rows.iter().map(|r| r.benchmark.clone()).collect();
    let todo: Vec<Benchmark> = list
        .into_iter()
        .filter(|b| !done.contains(&b.id()))
        .collect();

    let sampling = config
        .sampling
        .clone()
        .unwrap_or_else(|| Sampling::for_run(config.suite == SuiteName::Quick, summary.is_cpu()));
    let mut info = RunInfo {
        schema_version: results::SCHEMA_VERSION,
        run_id: format!("{}-{}", started.format("%Y%m%dT%H%M%SZ"), summary.slug()),
        started: started.to_rfc3339(),
        finished: None,
        interrupted: false,
        git_commit: git_commit(),
        host: hostname(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpu_threads: std::thread::available_parallelism().map_or(0, |n| n.get()),
        priceperf_version: env!("CARGO_PKG_VERSION").into(),
        wgpu_version: "30".into(),
        adapter: summary.clone(),
        settings: serde_json::json!({
            "suite": config.suite.to_string(),
            "filter": config.filter.as_ref().map(|r| r.to_string()),
            "variants": config.variants.as_ref().map(|r| r.to_string()),
            "custom": config.custom.iter().map(Benchmark::id).collect::<Vec<_>>(),
            "sample_size": sampling.sample_size,
            "warm_up_s": sampling.warm_up.as_secs_f64(),
            "measurement_s": sampling.measurement.as_secs_f64(),
            "timeout_s": config.timeout.as_secs_f64(),
            "seed": config.seed,
            // The dtype of the model ops, which tokens.csv's rates were composed at.
            "model_dtype": model_dtype.to_string(),
            "prune_ratio": active_prune_ratio(config),
            "checked_shaders": crate::kernels::checked_shaders(),
            "LP_NUM_THREADS": std::env::var("LP_NUM_THREADS").ok(),
            "LP_NATIVE_VECTOR_WIDTH": std::env::var("LP_NATIVE_VECTOR_WIDTH").ok(),
        }),
        peaks: None,
        speed_check: None,
        time: None,
    };
    if config.resume && dir.join("run.json").exists() {
        let old = read_run_info(&dir.join("run.json"))?;
        let conflicts = results::resume_conflicts(&old, &info);
        if !conflicts.is_empty() {
            return Err(Error::bad_input(
                format!(
                    "--resume would continue {} as a different run: {}",
                    dir.display(),
                    conflicts.join("; ")
                ),
                "Resume with the adapter and settings the run started with (its run.json `adapter` and `settings`), or write a new folder with another --out. Nothing in the folder was changed.",
            ));
        }
        if old.git_commit != info.git_commit {
            crate::progress::notice(&format!(
                "priceperf: note: this folder's rows so far were measured at commit {}, the rest will be at {}",
                old.git_commit.as_deref().unwrap_or("unknown"),
                info.git_commit.as_deref().unwrap_or("unknown")
            ));
        }
        // Keep the original run's identity and start time.
        info.run_id = old.run_id;
        info.started = old.started;
    }
    if config.resume && kernels_csv.exists() {
        let (kept, changes) = results::resume_rows(&kernels_csv)?;
        for what in changes {
            crate::progress::notice(&format!("priceperf: {what}"));
        }
        debug_assert_eq!(kept.len(), rows.len(), "the rows read before the cut");
    }
    write_json(&dir.join("run.json"), &info)?;

    let progress = crate::progress::Progress::new(config.verbosity, todo.len());
    progress.line(&format!(
        "priceperf: {} benchmarks on {} ({}, {}), timing by {}; results in {}",
        todo.len(),
        summary.name,
        summary.backend,
        summary.device_type,
        Timer::new(&gpu, config.timeout).method(),
        dir.display()
    ));
    let mut time = results::RunTime::default();
    let mut speed_start: Option<f64> = None;
    let peaks = if todo.is_empty() || std::env::var("PRICEPERF_PEAKS").is_ok_and(|v| v == "skip") {
        None
    } else {
        let t = Instant::now();
        let (mut peaks, cached) =
            crate::measure::peaks::cached_or_measured(&gpu, config.retune, config.timeout);
        if !cached {
            time.peaks_s = t.elapsed().as_secs_f64();
        }
        // The speed check's start: the peaks' own f32 FMA probe where they were just
        // measured (the same probe, moments ago), else a probe now. The first probe of a
        // process ran 5-12% low (threads and clocks waking), so where nothing ran before it
        // (cached peaks) one is discarded.
        let t = Instant::now();
        speed_start = match peaks.fma_f32_gflops.filter(|_| !cached) {
            Some(measured) => Some(measured),
            None => {
                if cached {
                    let _ = SpeedCheck::probe(&gpu, config.timeout);
                }
                SpeedCheck::probe(&gpu, config.timeout).ok()
            }
        };
        time.speed_check_s = t.elapsed().as_secs_f64();
        progress.line(&peaks.describe(cached));
        if let Some(a) = &accel {
            if let Some(tflops) = a.fp32_tflops {
                notes.extend(peaks.drop_fma_beyond_spec(&a.name, tflops));
            }
        }
        info.peaks = Some(peaks.clone());
        write_json(&dir.join("run.json"), &info)?;
        Some(peaks)
    };
    // `--variant` picks variants by hand: no cached choice applies, none is recorded.
    let mut tuning = config
        .variants
        .is_none()
        .then(|| crate::tuning::Tuning::load(&summary));
    let budget = variant_budget_s(config);
    let mut history = active_prune_ratio(config).map(ScreenHistory::new);
    let ahead = CompileAhead::new(&gpu, config.timeout);
    // The first benchmark that no pool of the helpers has covered yet
    // ([`benchmark::compile_suite_ahead`]): there the next pool starts, once the helpers
    // are proven; until then each benchmark has its variants compiled ahead on its own.
    let mut compiled_through = 0;
    let mut interrupted = false;
    for (i, bench) in todo.iter().enumerate() {
        // A cached tuning choice measures one variant; a search measures them all.
        let cached_choice = |b: &Benchmark| {
            tuning
                .as_ref()
                .filter(|_| !config.retune)
                .and_then(|t| t.cached(b))
                .cloned()
        };
        if let Some(helpers) = ahead
            .as_ref()
            .filter(|_| i >= compiled_through && !stop_requested())
        {
            let (covered, done, spent_s) = benchmark::compile_suite_ahead(
                &gpu,
                config,
                &todo[i..],
                &|b: &Benchmark| cached_choice(b).map(|c| c.variant),
                history.as_ref(),
                helpers,
            );
            compiled_through = i + covered;
            time.compile_s += spent_s;
            if let Some(d) = done {
                progress.line(&format!(
                    "compiled ahead: {} variants of the next {} benchmarks in {spent_s:.1} s on helper devices, making their inputs included (the helpers' own time {:.1} s)",
                    d.variants, d.benchmarks, d.helper_s
                ));
            }
        }
        // Also when asked while the helpers compiled: they stop, and so does the run,
        // before the next benchmark.
        if stop_requested() {
            progress.finish();
            crate::progress::notice(&format!(
                "priceperf: stopped after {i} of {} benchmarks; every finished row is in {}; continue with --resume --out {}",
                todo.len(),
                dir.display(),
                dir.display()
            ));
            interrupted = true;
            break;
        }
        progress.benchmark(i, &bench.id());
        let quiet = progress.silence_criterion();
        let cached = cached_choice(bench);
        let search_started = Instant::now();
        let mut collected = Collected::default();
        let mut new_rows = run_benchmark(
            &mut gpu,
            criterion,
            &sampling,
            config,
            budget,
            bench,
            cached.as_ref().map(|c| c.variant.as_str()),
            history.as_mut(),
            ahead.as_ref(),
            &mut collected,
        );
        let cache_held = cached
            .as_ref()
            .is_some_and(|c| new_rows.iter().any(|r| r.chosen && r.variant == c.variant));
        if cached.is_some() && !cache_held {
            crate::progress::notice(&format!(
                "priceperf: the cached choice {} for {} did not verify or run; searching every variant again",
                cached.as_ref().map_or("", |c| c.variant.as_str()),
                bench.id()
            ));
            new_rows = run_benchmark(
                &mut gpu,
                criterion,
                &sampling,
                config,
                budget,
                bench,
                None,
                history.as_mut(),
                ahead.as_ref(),
                &mut collected,
            );
        }
        drop(quiet);
        let searched = !cache_held;
        let chosen = new_rows
            .iter()
            .find(|r| r.chosen)
            .map(|r| r.variant.clone());
        for (variant, secs) in &collected.measure_s {
            if searched && chosen.as_ref() != Some(variant) {
                time.measure_search_s += secs;
            } else {
                time.measure_chosen_s += secs;
            }
        }
        for (variant, secs) in &collected.repeat_s {
            if chosen.as_ref() == Some(variant) {
                time.measure_repeat_s += secs;
                time.repeats += 1;
            }
        }
        time.measure_search_s += collected.screen_s;
        time.analysis_s += collected.analysis_s;
        time.search_warm_up_s += collected.warm_up_s;
        time.compile_s += collected.compile_s;
        time.verify_s += collected.verify_s;
        time.native_s += collected.native_s;
        // Compiled and run: not unsupported on this adapter or shape, not pruned.
        let tried = new_rows
            .iter()
            .filter(|r| r.variant != native::VARIANT)
            .filter(|r| r.verified || r.status != Status::Skipped)
            .count() as u32;
        let tuning_note = if let (true, Some(c)) = (cache_held, cached.as_ref()) {
            time.cached += 1;
            format!(
                "tuning: cached choice of a {:.0} s search over {} variants on {} (--retune searches again)",
                c.search_seconds, c.variants_tried, c.searched_at
            )
        } else {
            time.searched += 1;
            let secs = search_started.elapsed().as_secs_f64() - collected.native_s;
            if let (Some(t), Some(v)) = (tuning.as_mut(), chosen.as_ref()) {
                t.record(bench, v, secs, tried);
            }
            let mut untried = Vec::new();
            if collected.pruned > 0 {
                untried.push(format!("{} more pruned", collected.pruned));
            }
            // One adapter's reasons all name the same place (llvmpipe or GPUs).
            if let Some(why) = collected.left_out.first() {
                untried.push(format!(
                    "{} left out on {}",
                    collected.left_out.len(),
                    why.on()
                ));
            }
            let base = format!("tuning: chosen by a {secs:.0} s search over {tried} variants");
            if untried.is_empty() {
                base
            } else {
                format!("{base} ({})", untried.join(", "))
            }
        };
        let time_line = collected.describe(search_started.elapsed().as_secs_f64());
        let samples = collected.samples;
        let new_rows: Vec<KernelRow> = new_rows
            .into_iter()
            .map(|mut r| {
                if r.chosen && config.variants.is_none() {
                    r.add_note(&tuning_note);
                }
                if let Some(wide) = r.chosen.then(|| results::wide_interval(&r)).flatten() {
                    r.add_note(&wide);
                }
                with_pct_of_peak(r, accel.as_ref(), peaks.as_ref())
            })
            .collect();
        results::append_rows(&kernels_csv, &new_rows)?;
        // Raw per-iteration samples of the measured rows, for compare's rank test.
        let pairs: Vec<(KernelRow, Vec<f64>)> = new_rows
            .iter()
            .filter_map(|r| {
                samples
                    .iter()
                    .find(|(v, _)| *v == r.variant)
                    .map(|(_, s)| (r.clone(), s.clone()))
            })
            .collect();
        crate::history::append_samples(&dir, &pairs)?;
        for r in &new_rows {
            progress.row(&crate::report::kernel_line(r));
        }
        progress.row(&time_line);
        progress.benchmark_done();
        rows.extend(new_rows);
    }
    if let Some(start) = speed_start.filter(|_| !interrupted) {
        let t = Instant::now();
        if let Ok(end) = SpeedCheck::probe(&gpu, config.timeout) {
            let check = SpeedCheck {
                start_gflops: start,
                end_gflops: end,
            };
            notes.extend(check.note());
            info.speed_check = Some(check);
        }
        time.speed_check_s += t.elapsed().as_secs_f64();
    }
    progress.finish();
    notes.extend(results::noisy_note(&rows));
    notes.extend(results::over_bandwidth_note(&rows));

    let (tokens, compose_notes) = compose::token_rates(&runs, &rows);
    notes.extend(compose_notes);
    let vcpus = crate::gpu::cpu_adapter_threads() as u32;
    let (costs, price_notes) = pricing::price_run(
        &catalog,
        &summary,
        vcpus,
        &tokens,
        model_dtype,
        &config.pricing,
    )?;
    notes.extend(price_notes);
    results::write_csv(&dir.join("tokens.csv"), &tokens)?;
    results::write_csv(&dir.join("costs.csv"), &costs)?;

    info.finished = Some(chrono::Utc::now().to_rfc3339());
    info.interrupted = interrupted;
    time.total_s = run_started.elapsed().as_secs_f64();
    time.setup_s = (time.total_s
        - time.peaks_s
        - time.speed_check_s
        - time.compile_s
        - time.verify_s
        - time.measure_chosen_s
        - time.measure_search_s
        - time.analysis_s
        - time.native_s)
        .max(0.0);
    info.time = Some(time.clone());
    write_json(&dir.join("run.json"), &info)?;
    write_json(
        &dir.join("results.json"),
        &ResultSet {
            run: info.clone(),
            kernels: rows.clone(),
            tokens: tokens.clone(),
            costs: costs.clone(),
            notes: notes.clone(),
        },
    )?;
    Ok(RunOutcome {
        dir,
        rows,
        info,
        tokens,
        costs,
        notes,
        interrupted,
    })
}

/// The models this run prices, resolved against the presets, and notes on those left out.
fn model_runs_for(
    config: &RunConfig,
    summary: &crate::gpu::AdapterSummary,
    accel: Option<&Accelerator>,
    dtype: DType,
) -> Result<(Vec<compose::ModelRun>, Vec<String>)> {
    let presets = ModelPresets::from_file(config.models_file.as_deref(), false)?;
    let (batch, prompt, gen) = if summary.is_cpu() {
        (1, 64, 32)
    } else {
        (1, 512, 128)
    };
    let specs: Vec<(String, u32, u32, u32)> = if !config.models.is_empty() {
        config
            .models
            .iter()
            .map(|m| {
                (
                    m.clone(),
                    config.batch.unwrap_or(batch),
                    config.prompt_len.unwrap_or(prompt),
                    config.gen_len.unwrap_or(gen),
                )
            })
            .collect()
    } else if config.custom.is_empty() {
        compose::suite_models(config.suite, summary.is_cpu())
            .into_iter()
            .map(|(m, b, p, g)| {
                (
                    m.to_string(),
                    config.batch.unwrap_or(b),
                    config.prompt_len.unwrap_or(p),
                    config.gen_len.unwrap_or(g),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let memory = if summary.is_cpu() {
        system_memory_bytes()
    } else {
        accel.and_then(|a| a.memory_gb).map(|gb| (gb * 1e9) as u64)
    };
    let (mut runs, notes) = compose::model_runs(&presets, &specs, dtype, memory)?;
    for r in &mut runs {
        r.max_binding_bytes = summary.max_storage_binding_bytes;
    }
    Ok((runs, notes))
}

/// Physical memory, for the does-it-fit check on software adapters.
fn system_memory_bytes() -> Option<u64> {
    let text = fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Fill `pct_of_peak` from the matched accelerator's spec peak for the row's dtype, and the
/// `pct_of_measured_*` columns from the adapter's measured peaks (not for the native CPU
/// GEMM, which does not run on the adapter).
fn with_pct_of_peak(
    mut row: KernelRow,
    accel: Option<&Accelerator>,
    peaks: Option<&crate::measure::peaks::Peaks>,
) -> KernelRow {
    if let (Some(g), Some(peak_tflops)) = (row.gflops, accel.and_then(|a| a.peak_tflops(row.dtype)))
    {
        row.pct_of_peak = Some(100.0 * g / (peak_tflops * 1000.0));
    }
    if let Some(p) = peaks.filter(|_| row.variant != native::VARIANT) {
        if let (Some(g), Some(peak)) = (row.gflops, p.gflops(row.dtype)) {
            row.pct_of_measured_flops = Some(100.0 * g / peak);
        }
        if let (Some(g), Some((peak, _))) = (row.gbps, p.bandwidth()) {
            row.pct_of_measured_bw = Some(100.0 * g / peak);
        }
    }
    row
}

/// Seconds one variant may take to measure: the suite's budget; none for `--kernel` runs.
fn variant_budget_s(config: &RunConfig) -> Option<f64> {
    if config.custom.is_empty() {
        config.suite.variant_budget_s()
    } else {
        None
    }
}

/// The ratio at which this run's searches prune ([`ScreenHistory`]): suite runs within a
/// time budget prune; `--suite full`, `--kernel` runs and `--prune-ratio 0` do not.
fn active_prune_ratio(config: &RunConfig) -> Option<f64> {
    config
        .prune_ratio
        .filter(|_| variant_budget_s(config).is_some())
}

/// The commit this binary was built from (`build.rs`), `+dirty` where its sources differed.
fn git_commit() -> Option<String> {
    option_env!("PRICEPERF_GIT_COMMIT").map(str::to_string)
}

fn hostname() -> String {
    fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}
