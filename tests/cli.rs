//! The `priceperf` binary end to end: a tiny run writes a readable result folder; bad input
//! exits 2 with a readable paragraph; an unmatched adapter exits 3.

mod result_fixtures;
use std::process::Command;

fn priceperf() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_priceperf"));
    result_fixtures::isolated(&mut c);
    c.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    c
}

fn has_adapter() -> bool {
    let out = priceperf()
        .args(["devices", "--format", "json"])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "skipping: no adapter ({})",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out.status.success()
}

#[test]
fn devices_lists_adapters_as_json() {
    if !has_adapter() {
        return;
    }
    let out = priceperf()
        .args(["devices", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &v.as_array().unwrap()[0];
    for key in [
        "name",
        "backend",
        "device_type",
        "timestamps",
        "f16",
        "max_storage_binding_bytes",
    ] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
}

#[test]
fn a_small_run_writes_the_result_folder() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let wgsl_dir = dir.path().join("wgsl");
    let out = priceperf()
        .current_dir(dir.path())
        .env("PRICEPERF_DUMP_WGSL", &wgsl_dir)
        .args([
            "run",
            "--kernel",
            "matmul",
            "--shape",
            "m=33,n=17,k=9",
            "--variant",
            "naive|texture_w8x8_t8x8",
        ])
        .args(["--sample-size", "10", "--measurement-time", "0.2", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("GFLOP/s") && stdout.contains("chosen"),
        "{stdout}"
    );

    let rows = priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows
        .iter()
        .all(|r| r.verified && r.status == priceperf::results::Status::Ok));
    assert_eq!(rows.iter().filter(|r| r.chosen).count(), 1);
    for r in &rows {
        let (lo, med, hi) = (
            r.ci_low_ns.unwrap(),
            r.median_ns.unwrap(),
            r.ci_high_ns.unwrap(),
        );
        assert!(lo <= med && med <= hi && lo > 0.0, "{r:?}");
        assert_eq!(r.flops, 2 * 33 * 17 * 9);
        assert!((r.gflops.unwrap() - r.flops as f64 / med).abs() < 1e-9);
    }
    let info = priceperf::runner::read_run_info(&out_dir.join("run.json")).unwrap();
    assert!(info.finished.is_some());
    // The commit is the one the binary was built from (this checkout's HEAD), whatever the
    // working directory: a binary carried to another machine kept reporting that one's.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(head) = head {
        let head = String::from_utf8_lossy(&head.stdout).trim().to_string();
        let commit = info.git_commit.clone().unwrap_or_default();
        assert!(
            commit == head || commit == format!("{head}+dirty"),
            "{commit} against {head}"
        );
    }
    assert_eq!(info.schema_version, priceperf::results::SCHEMA_VERSION);
    assert!(out_dir.join("results.json").exists());

    // PRICEPERF_DUMP_WGSL: each variant's WGSL as built for this shape, a file per source.
    let dumped: Vec<(String, String)> = std::fs::read_dir(&wgsl_dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                text,
            )
        })
        .collect();
    for variant in ["naive", "texture_w8x8_t8x8"] {
        let prefix = format!("matmul_{variant}_m=33,n=17,k=9_f32-");
        assert!(
            dumped.iter().any(|(name, text)| name.starts_with(&prefix)
                && text.contains("@compute")
                && !text.contains("{{")),
            "{prefix}: {:?}",
            dumped.iter().map(|d| &d.0).collect::<Vec<_>>()
        );
    }

    // The same folder again without --resume is refused, and nothing is lost.
    let again = priceperf()
        .args([
            "run",
            "--kernel",
            "matmul",
            "--shape",
            "m=33,n=17,k=9",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    assert_eq!(
        priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap(),
        rows
    );

    // --resume at `shape`, with the other settings the run started with.
    let resume = |shape: &str| {
        priceperf()
            .args(["run", "--kernel", "matmul", "--shape", shape])
            .args(["--variant", "naive|texture_w8x8_t8x8"])
            .args(["--sample-size", "10", "--measurement-time", "0.2"])
            .args(["--resume", "--out"])
            .arg(&out_dir)
            .output()
            .unwrap()
    };
    // --resume, with the settings the run started with, runs only what is missing: here,
    // nothing.
    let resumed = resume("m=33,n=17,k=9");
    assert!(
        resumed.status.success(),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    assert_eq!(
        priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap(),
        rows
    );

    // --resume as another run (here another shape, so other benchmarks) is refused, naming
    // the setting, and the folder is left as it was.
    let before = std::fs::read(out_dir.join("run.json")).unwrap();
    let other = resume("m=34,n=17,k=9");
    let stderr = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("as a different run") && stderr.contains("custom"),
        "{stderr}"
    );
    assert_eq!(std::fs::read(out_dir.join("run.json")).unwrap(), before);
    assert_eq!(
        priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap(),
        rows
    );
}

#[test]
fn bad_input_exits_2_with_what_was_expected() {
    for args in [
        &["run", "--kernel", "matmul", "--shape", "m=1,n=2"][..],
        &["run", "--kernel", "matmul", "--shape", "m=0,n=2,k=3"],
        &["run", "--suite", "enormous"],
        &["run", "--filter", "("],
    ] {
        let out = priceperf().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !err.contains("panicked") && !err.contains("RUST_BACKTRACE"),
            "{err}"
        );
        assert!(err.len() > 20, "{err}");
    }
}

#[test]
fn unknown_adapter_exits_3_and_lists_the_real_ones() {
    if !has_adapter() {
        return;
    }
    let out = priceperf()
        .args([
            "run",
            "--kernel",
            "matmul",
            "--shape",
            "m=1,n=1,k=1",
            "--adapter",
            "no-such-gpu-xyz",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("available:"));
}

/// Pruning: within a suite run, a variant that screened behind the fastest on two earlier
/// benchmarks of the same kind (here any margin, with --prune-ratio just above 1) is left out
/// of the third benchmark's search with a note, while that search still chooses a verified
/// winner. On llvmpipe, kernels built on per-lane storage loads are left out of every
/// search with their own note. A ratio below 1 is refused.
#[test]
fn searches_prune_variants_that_kept_losing() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    // Three prefill-shaped projections of gpt2 (f16 where the adapter has it). At least
    // three variants are searched on each (three packed tiles on llvmpipe), and two searches
    // have at most two winners, so some variant lost both and the third search must prune
    // it. At m = 1 only two gemv tiles are searched on llvmpipe; they run within noise of
    // each other, and when each won once nothing was pruned (a CI failure).
    let out = priceperf()
        .env("PRICEPERF_CACHE_DIR", dir.path().join("cache"))
        .env("PRICEPERF_PEAKS", "skip")
        .args(["run", "--suite", "quick", "--filter"])
        .arg("^matmul/[^/]+/m=64,n=(768|3072),k=(768|3072),")
        .args(["--prune-ratio", "1.001", "--sample-size", "10"])
        .args(["--measurement-time", "0.1", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rows = priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap();
    let mut benchmarks: Vec<&str> = Vec::new();
    for r in &rows {
        if !benchmarks.contains(&r.benchmark.as_str()) {
            benchmarks.push(&r.benchmark);
        }
    }
    assert_eq!(benchmarks.len(), 3, "{benchmarks:?}");
    let pruned = |b: &str| -> Vec<&priceperf::results::KernelRow> {
        rows.iter()
            .filter(|r| r.benchmark == b && r.note.contains("pruned from the tuning search"))
            .collect()
    };
    assert!(pruned(benchmarks[0]).is_empty() && pruned(benchmarks[1]).is_empty());
    let last = pruned(benchmarks[2]);
    assert!(!last.is_empty(), "nothing pruned on {}", benchmarks[2]);
    for r in &last {
        assert!(
            r.status == priceperf::results::Status::Skipped
                && !r.verified
                && !r.chosen
                && r.note.contains(&format!("--variant '^{}$'", r.variant)),
            "{r:?}"
        );
    }
    let chosen: Vec<_> = rows
        .iter()
        .filter(|r| r.benchmark == benchmarks[2] && r.chosen)
        .collect();
    assert!(chosen.len() == 1 && chosen[0].verified, "{chosen:?}");
    // On llvmpipe the GPU designs (per-lane storage loads) are left out from the start.
    if rows[0].adapter.contains("llvmpipe") {
        for b in &benchmarks {
            let naive = rows
                .iter()
                .find(|r| r.benchmark == *b && r.variant == "naive")
                .unwrap();
            assert!(
                naive.status == priceperf::results::Status::Skipped
                    && !naive.verified
                    && naive.note.starts_with("not searched on llvmpipe")
                    && naive.note.contains("--variant '^naive$'"),
                "{naive:?}"
            );
            let chosen = rows.iter().find(|r| r.benchmark == *b && r.chosen).unwrap();
            assert!(
                chosen.note.contains("left out on llvmpipe"),
                "{}",
                chosen.note
            );
        }
    }

    let out = priceperf()
        .args(["run", "--kernel", "matmul", "--shape", "m=4,n=4,k=4"])
        .args(["--prune-ratio", "0.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--prune-ratio 0.5"));
}

/// The tuning cache: a first run searches every variant (screening them all, measuring the
/// finalists in full) and caches the winner; a second run measures only that winner and says
/// so; `--retune` searches again. The peak probes run once, fill the measured-peak columns
/// and are reused from the cache.
#[test]
fn tuning_choices_and_peaks_are_cached_and_retune_searches_again() {
    if !has_adapter() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = |name: &str, extra: &[&str]| {
        let out_dir = dir.path().join(name);
        let out = priceperf()
            .env("PRICEPERF_CACHE_DIR", &cache)
            .env_remove("PRICEPERF_PEAKS")
            .args(["run", "--kernel", "matmul", "--shape", "m=40,n=24,k=16"])
            .args(["--sample-size", "10", "--measurement-time", "0.1", "--out"])
            .arg(&out_dir)
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Every probe verified: a failed one is a warning ("... probe: why") or, where its
        // buffer or texture twin passed, a note ("one ... probe failed").
        assert!(
            !stderr.contains(" probe: ") && !stderr.contains("probe failed"),
            "{stderr}"
        );
        let rows = priceperf::results::read_kernel_rows(&out_dir.join("kernels.csv")).unwrap();
        let info = priceperf::runner::read_run_info(&out_dir.join("run.json")).unwrap();
        // The summary's peaks line, which says whether this run probed them.
        let peaks_line = String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| l.starts_with("measured peaks:"))
            .unwrap_or_default()
            .to_string();
        (rows, info, peaks_line)
    };
    let gpu_rows = |rows: &[priceperf::results::KernelRow]| {
        rows.iter()
            .filter(|r| r.variant != "native_cpu_matrixmultiply")
            .count()
    };

    let (first, info, peaks_line) = run("first", &[]);
    assert!(peaks_line.contains("probes took"), "{peaks_line}");
    assert!(gpu_rows(&first) > 3, "a search tries every variant");
    let chosen = first.iter().find(|r| r.chosen).expect("a chosen row");
    assert!(chosen.note.contains("search over"), "{}", chosen.note);
    // The chosen row has criterion's samples; the rows the screen left out carry only the
    // screening timings and say so.
    assert!(chosen.samples.is_some_and(|n| n >= 10), "{chosen:?}");
    let screened: Vec<_> = first
        .iter()
        .filter(|r| r.note.contains("tuning screen only"))
        .collect();
    // The other finalists keep the timings of the final, taken in turns: every round's, or
    // fewer from FINAL_DECIDED_AFTER on for one that left it early and says so (three for
    // kernels slower than a turn).
    const FINAL_ROUNDS: u64 = priceperf::tuning::FINAL_ROUNDS as u64;
    const DECIDED: u64 = priceperf::tuning::FINAL_DECIDED_AFTER as u64;
    let finalists: Vec<_> = first
        .iter()
        .filter(|r| r.note.contains("tuning final only"))
        .collect();
    let final_timings = |r: &priceperf::results::KernelRow| match r.samples {
        Some(3) | Some(FINAL_ROUNDS) => true,
        Some(n) => (DECIDED..FINAL_ROUNDS).contains(&n) && r.note.contains("left the final early"),
        None => false,
    };
    assert!(
        finalists.len() < priceperf::tuning::MAX_FINALISTS
            && finalists.iter().all(|r| !r.chosen && final_timings(r)),
        "{finalists:?}"
    );
    let full = first
        .iter()
        .filter(|r| r.status == priceperf::results::Status::Ok)
        .filter(|r| r.variant != "native_cpu_matrixmultiply")
        .count()
        - screened.len()
        - finalists.len();
    assert_eq!(full, 1, "only the winner of the final is measured in full");
    assert!(
        !screened.is_empty()
            && screened
                .iter()
                .all(|r| !r.chosen && r.samples.is_some_and(|n| (1..=5).contains(&n))),
        "{screened:?}"
    );
    assert!(cache.join("tuning.json").exists() && cache.join("peaks.json").exists());
    let peaks = info.peaks.expect("peaks in run.json");
    assert!(
        peaks.fma_f32_gflops.is_some_and(|g| g > 0.0)
            && peaks.copy_gbps.is_some_and(|g| g > 0.0)
            && peaks.read_gbps.is_some_and(|g| g > 0.0),
        "{peaks:?}"
    );
    assert!(chosen.pct_of_measured_flops.is_some_and(|p| p > 0.0));
    let time = info.time.expect("time in run.json");
    assert!(
        time.searched == 1 && time.cached == 0 && time.peaks_s > 0.0,
        "{time:?}"
    );

    let (second, info, peaks_line) = run("second", &[]);
    assert!(peaks_line.contains("cached from"), "{peaks_line}");
    assert_eq!(gpu_rows(&second), 1, "{second:?}");
    let again = second.iter().find(|r| r.chosen).unwrap();
    assert_eq!(again.variant, chosen.variant);
    assert!(again.note.contains("cached choice"), "{}", again.note);
    let time = info.time.unwrap();
    assert!(time.cached == 1 && time.peaks_s == 0.0, "{time:?}");
    // The speed check still probes the machine at both ends of the run.
    let check = info.speed_check.expect("speed_check in run.json");
    assert!(
        check.start_gflops > 0.0 && check.end_gflops > 0.0,
        "{check:?}"
    );
    assert!(time.speed_check_s > 0.0, "{time:?}");
    assert_eq!(info.peaks.unwrap().measured_at, peaks.measured_at);

    let (third, info, _) = run("third", &["--retune"]);
    assert_eq!(gpu_rows(&third), gpu_rows(&first));
    assert_ne!(info.peaks.unwrap().measured_at, peaks.measured_at);
}

/// A machine's quote is shared by its accelerators: a run measures one, and $/Mtok is per
/// accelerator's tokens. p5.48xlarge's $55.04/h over 8 GPUs at 1800 tokens/s is $1.06/Mtok,
/// the same as pricing the catalog's instance; charged to one GPU it was 8x that.
#[test]
fn a_machine_quote_is_shared_by_its_accelerators() {
    let cost = |extra: &[&str]| {
        let args = ["cost", "--tokens-per-second", "1800", "--format", "json"];
        let (code, out, err) = result_fixtures::priceperf(&[&args[..], extra].concat());
        assert_eq!(code, 0, "{err}");
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        rows[0]["usd_per_mtok"].as_f64().unwrap()
    };
    let quote = cost(&[
        "--price-per-hour",
        "55.04",
        "--accelerators-per-machine",
        "8",
    ]);
    assert!(
        (quote - 55.04 / 8.0 / (1800.0 * 3600.0) * 1e6).abs() < 1e-6,
        "{quote}"
    );
    assert!((cost(&["--price-per-hour", "55.04"]) - 8.0 * quote).abs() < 1e-6);
    let out = priceperf()
        .args([
            "cost",
            "--tokens-per-second",
            "1800",
            "--instance",
            "p5.48xlarge",
        ])
        .args(["--accelerators-per-machine", "8"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "needs --price-per-hour");
}

/// $/Mtok below a cent keeps three significant digits in the table: $0.94/h at 300000
/// tokens/s is $0.000870/Mtok, which four fixed decimals printed as 0.0009.
#[test]
fn a_cheap_rate_keeps_its_significant_digits() {
    let (code, table, err) = result_fixtures::priceperf(&[
        "cost",
        "--tokens-per-second",
        "300000",
        "--price-per-hour",
        "0.94",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(table.contains(" 0.000870 "), "{table}");
}

/// An accelerator the catalog lists but prices nowhere (MI300X) is an error naming the
/// flags that price it, not an empty table and exit 0; owned hardware prices it.
#[test]
fn an_unpriced_accelerator_asks_for_a_price() {
    let mi300x = [
        "cost",
        "--tokens-per-second",
        "1000",
        "--accelerator",
        "MI300X",
    ];
    for format in ["table", "json"] {
        let out = priceperf()
            .args(mi300x)
            .args(["--format", format])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format}: {err}");
        assert!(
            err.contains("no priced offering for MI300X in the catalog")
                && err.contains("--price-per-hour")
                && err.contains("--capex with --watts"),
            "{err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let owned = |format: &str| {
        let hardware = ["--capex", "15000", "--watts", "750", "--format", format];
        let (code, out, err) = result_fixtures::priceperf(&[&mi300x[..], &hardware].concat());
        assert_eq!(code, 0, "{err}");
        // The modelled energy line goes to stderr, so stdout stays one csv or json document.
        assert!(err.contains("energy:"), "{err}");
        out
    };
    let csv = owned("csv");
    let rows: Vec<&str> = csv
        .lines()
        .skip(1)
        .filter(|l| l.contains(",owned,"))
        .collect();
    assert_eq!(rows.len(), 1, "{csv}");
    let json: serde_json::Value = serde_json::from_str(&owned("json")).expect("stdout is json");
    assert_eq!(json.as_array().map(Vec::len), Some(1), "{json}");
}
