//! `priceperf compare` on synthetic result sets: unchanged, 20% slower, noisy but unchanged,
//! failed verification, missing rows, malformed folders; thresholds files; exit codes and
//! the three output formats through the binary.

mod result_fixtures;

use std::path::Path;

use priceperf::compare::{self, Comparison, Options, Thresholds, TimingGate, Verdict};
use priceperf::dataset;
use priceperf::results::{KernelRow, Status};
use result_fixtures::*;

const VARIANTS: [&str; 3] = ["naive", "tiled", "reg"];

/// A run of three variants at 256^3 with `noise` spread; `slow` scales one variant.
fn write_side(dir: &Path, seed: u64, noise: f64, slow: Option<(&str, f64)>, keep_samples: bool) {
    let mut rows = Vec::new();
    let mut kept = Vec::new();
    for (i, v) in VARIANTS.iter().enumerate() {
        let base = 1.0e6 * (i as f64 + 1.0);
        let factor = match slow {
            Some((name, f)) if name == *v => f,
            _ => 1.0,
        };
        let s = samples(base * factor, noise, 20, seed * 31 + i as u64);
        rows.push(measured(256, v, GPU, &s));
        if keep_samples {
            kept.push((i, s));
        }
    }
    write_run(dir, &info(&format!("run-{seed}"), "ci", GPU), &rows, &kept);
}

fn compare_dirs(base: &Path, head: &Path, opts: &Options) -> Comparison {
    let b = dataset::load(base).unwrap();
    let h = dataset::load(head).unwrap();
    compare::compare("base", &b, "head", &h, opts).unwrap()
}

fn verdict_of(c: &Comparison, variant: &str) -> Verdict {
    c.rows
        .iter()
        .find(|r| r.key.variant == variant)
        .unwrap_or_else(|| panic!("no row {variant}"))
        .verdict
}

#[test]
fn unchanged_runs_pass() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, true);
    write_side(&root.join("head"), 2, 0.02, None, true);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.exit_code(), 0);
    assert_eq!(c.count(Verdict::Unchanged), 3, "{c:#?}");
    for r in &c.rows {
        let (lo, mid, hi) = (
            r.change_low_pct.unwrap(),
            r.change_pct.unwrap(),
            r.change_high_pct.unwrap(),
        );
        assert!(lo <= mid && mid <= hi, "interval brackets the change");
    }
}

#[test]
fn twenty_percent_slower_regresses_with_its_interval() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    write_side(&root.join("head"), 2, 0.02, Some(("tiled", 1.2)), false);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.exit_code(), 1);
    let r = c.rows.iter().find(|r| r.key.variant == "tiled").unwrap();
    assert_eq!(r.verdict, Verdict::Regressed);
    let change = r.change_pct.unwrap();
    assert!((change - 20.0).abs() < 4.0, "{change}");
    assert!(
        r.change_low_pct.unwrap() > 10.0,
        "the interval clears the threshold"
    );
    assert!(r.reason.contains("intervals separate"), "{}", r.reason);
    assert_eq!(
        c.rows[0].verdict,
        Verdict::Regressed,
        "regressions sort first"
    );
    assert_eq!(verdict_of(&c, "naive"), Verdict::Unchanged);

    // A per-benchmark threshold above the change lets it pass; the default still applies
    // elsewhere.
    let t = Thresholds::parse(Path::new("t"), "25 /tiled$\n").unwrap();
    let opts = Options {
        thresholds: t,
        ..Options::default()
    };
    let c = compare_dirs(&root.join("base"), &root.join("head"), &opts);
    assert_eq!(verdict_of(&c, "tiled"), Verdict::Unchanged);
    assert_eq!(c.exit_code(), 0);

    // Faster by 20% is an improvement, never a failure.
    let c = compare_dirs(&root.join("head"), &root.join("base"), &Options::default());
    assert_eq!(verdict_of(&c, "tiled"), Verdict::Improved);
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn noisy_but_unchanged_is_not_a_regression() {
    // +-45% noise: the medians differ by more than the threshold by chance, but the
    // intervals overlap and the rank test does not reject.
    let (_t, root) = tmp();
    let mut found_big_change = false;
    for seed in 0..8u64 {
        let dir = root.join(format!("s{seed}"));
        write_side(&dir.join("base"), 100 + seed, 0.45, None, true);
        write_side(&dir.join("head"), 200 + seed, 0.45, None, true);
        let c = compare_dirs(&dir.join("base"), &dir.join("head"), &Options::default());
        assert_eq!(
            c.exit_code(),
            0,
            "seed {seed}: {}",
            compare::render_table(&c)
        );
        for r in &c.rows {
            assert!(
                matches!(r.verdict, Verdict::Unchanged | Verdict::Inconclusive),
                "{r:?}"
            );
            if r.change_pct.unwrap().abs() > compare::DEFAULT_THRESHOLD_PCT {
                found_big_change = true;
                assert_eq!(r.verdict, Verdict::Inconclusive);
            }
        }
    }
    assert!(
        found_big_change,
        "the noise should push some medians past the threshold"
    );
}

#[test]
fn the_rank_test_on_stored_samples_decides_when_intervals_are_missing() {
    let (_t, root) = tmp();
    for (side, factor, seed) in [("base", 1.0, 1), ("head", 1.3, 2)] {
        let s = samples(1.0e6 * factor, 0.05, 20, seed);
        let mut row = measured(256, "tiled", GPU, &s);
        row.ci_low_ns = None;
        row.ci_high_ns = None;
        write_run(&root.join(side), &info(side, "ci", GPU), &[row], &[(0, s)]);
    }
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    let r = &c.rows[0];
    assert_eq!(r.verdict, Verdict::Regressed, "{r:?}");
    assert!(r.p_value.unwrap() < 1e-3);
    assert!(r.reason.contains("Mann-Whitney"), "{}", r.reason);
    assert_eq!(r.base.as_ref().unwrap().raw_samples, 20);
}

#[test]
fn failed_verification_always_fails() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    let mut rows: Vec<_> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| measured(256, v, GPU, &samples(1.0e6 * (i as f64 + 1.0), 0.02, 20, 9)))
        .collect();
    rows[1] = failed(256, "tiled", GPU);
    // A new variant that fails is a correctness regression too.
    rows.push(failed(256, "subgroup", GPU));
    write_run(&root.join("head"), &info("h", "ci", GPU), &rows, &[]);
    let opts = Options {
        timing_gate: TimingGate::Off,
        ..Options::default()
    };
    let c = compare_dirs(&root.join("base"), &root.join("head"), &opts);
    assert_eq!(verdict_of(&c, "tiled"), Verdict::Failed);
    assert_eq!(verdict_of(&c, "subgroup"), Verdict::Failed);
    assert_eq!(c.exit_code(), 1, "even with the timing gate off");

    // The other way round it is a fix, and failing on both sides is reported, not failed.
    let c = compare_dirs(&root.join("head"), &root.join("base"), &Options::default());
    assert_eq!(verdict_of(&c, "tiled"), Verdict::Fixed);
    assert_eq!(verdict_of(&c, "subgroup"), Verdict::OnlyBase);
    assert_eq!(c.exit_code(), 0);
    let c = compare_dirs(&root.join("head"), &root.join("head"), &Options::default());
    assert_eq!(verdict_of(&c, "tiled"), Verdict::StillFailed);
    assert_eq!(c.exit_code(), 0);
}

/// A BASE row that passed verification and then timed out while measuring, against a
/// HEAD row that fails verification: the kernel broke, which is FAILED (exit 1), not
/// "still failed". Timing out again, or a HEAD that also verified before failing, stays
/// "still failed".
#[test]
fn verified_then_timed_out_base_against_failed_head_fails() {
    let (_t, root) = tmp();
    let timed_out = |verified: bool| KernelRow {
        status: Status::Timeout,
        verified,
        note: "timed out after 2 s".into(),
        ..blank(256, "tiled", GPU)
    };
    let verified_then_lost = KernelRow {
        verified: true,
        ..failed(256, "tiled", GPU)
    };
    let write = |side: &str, row: KernelRow| {
        write_run(&root.join(side), &info(side, "ci", GPU), &[row], &[]);
    };
    write("base", timed_out(true));
    write("head", failed(256, "tiled", GPU));
    write("head_timeout", timed_out(true));
    write("base_unverified", timed_out(false));
    write("head_lost", verified_then_lost);
    let cmp = |b: &str, h: &str| compare_dirs(&root.join(b), &root.join(h), &Options::default());

    let c = cmp("base", "head");
    assert_eq!(
        verdict_of(&c, "tiled"),
        Verdict::Failed,
        "{:?}",
        c.rows[0].reason
    );
    assert!(
        c.rows[0].reason.contains("verified in base"),
        "{}",
        c.rows[0].reason
    );
    assert_eq!(c.exit_code(), 1);
    for (b, h) in [
        ("base", "head_timeout"),
        ("base_unverified", "head"),
        ("base", "head_lost"),
    ] {
        let c = cmp(b, h);
        assert_eq!(verdict_of(&c, "tiled"), Verdict::StillFailed, "{b} -> {h}");
        assert_eq!(c.exit_code(), 0, "{b} -> {h}");
    }
}

#[test]
fn rows_on_one_side_are_listed_and_other_adapters_summarised() {
    let (_t, root) = tmp();
    let s = |seed| samples(1.0e6, 0.02, 20, seed);
    let base_rows = vec![
        measured(256, "naive", GPU, &s(1)),
        measured(256, "tiled", GPU, &s(2)),
        blank(1024, "naive", GPU),
    ];
    write_run(
        &root.join("base/lavapipe"),
        &info("b1", "ci", GPU),
        &base_rows,
        &[],
    );
    // The baselines folder also holds another adapter the head never ran.
    write_run(
        &root.join("base/a10g"),
        &info("b2", "gpu", "NVIDIA A10G"),
        &[measured(256, "naive", "NVIDIA A10G", &s(3))],
        &[],
    );
    let head_rows = vec![
        measured(256, "naive", GPU, &s(4)),
        measured(256, "reg", GPU, &s(5)),
        measured(1024, "naive", GPU, &s(6)),
    ];
    write_run(&root.join("head"), &info("h", "ci", GPU), &head_rows, &[]);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(verdict_of(&c, "tiled"), Verdict::OnlyBase);
    assert_eq!(verdict_of(&c, "reg"), Verdict::OnlyHead);
    let big = c
        .rows
        .iter()
        .find(|r| r.key.benchmark.contains("1024"))
        .unwrap();
    assert_eq!(big.verdict, Verdict::NotMeasured, "skipped in base");
    assert_eq!(c.adapters_only_in_base.len(), 1);
    assert_eq!(c.adapters_only_in_base[0].adapter, "NVIDIA A10G");
    assert_eq!(c.exit_code(), 0);
    let table = compare::render_table(&c);
    assert!(
        table.contains("only in base, not compared: NVIDIA A10G (1 rows)"),
        "{table}"
    );
    assert!(table.contains("only in head"), "{table}");
}

#[test]
fn bad_inputs_exit_2_with_a_place_and_a_fix() {
    let (_t, root) = tmp();
    write_side(&root.join("good"), 1, 0.02, None, false);
    write_side(&root.join("bad"), 2, 0.02, None, false);
    let csv = root.join("bad/kernels.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut cells: Vec<String> = lines[2].split(',').map(String::from).collect();
    // The quoted shape spans cells 0-2 and 5-7 of the split; find median_ns by counting
    // from the end instead (15 cells after it).
    let n = cells.len();
    cells[n - 15] = "fast".into();
    lines[2] = cells.join(",");
    std::fs::write(&csv, lines.join("\n") + "\n").unwrap();
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("bad")),
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("kernels.csv:3:11"), "{err}");
    assert!(err.contains("median_ns"), "{err}");

    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("nope")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");

    std::fs::create_dir_all(root.join("empty")).unwrap();
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("empty")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("holds no result folder"), "{err}");

    std::fs::create_dir_all(root.join("junk")).unwrap();
    std::fs::write(root.join("junk/run.json"), "{\"run_id\": 3").unwrap();
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("junk")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("run.json:1:"), "{err}");

    // Two sides with nothing in common: almost always a wrong path or a new driver.
    write_run(
        &root.join("gpu"),
        &info("g", "gpu", "NVIDIA A10G"),
        &[measured(
            256,
            "naive",
            "NVIDIA A10G",
            &samples(1e6, 0.02, 20, 1),
        )],
        &[],
    );
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("gpu")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("different adapters"), "{err}");

    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("good")),
        "--threshold",
        "-3",
    ]);
    assert_eq!(code, 2, "{err}");
    let thresholds = root.join("t.txt");
    std::fs::write(&thresholds, "# per benchmark\n12 ok\nfive matmul\n").unwrap();
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("good")),
        path_str(&root.join("good")),
        "--thresholds",
        path_str(&thresholds),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("t.txt:3:1"), "{err}");

    // A run.json from a newer schema is refused, not read as if it were this one.
    let newer = root.join("newer");
    write_side(&newer, 3, 0.02, None, false);
    let text = std::fs::read_to_string(newer.join("run.json")).unwrap();
    let text = text.replace(
        &format!("\"schema_version\": {}", priceperf::results::SCHEMA_VERSION),
        "\"schema_version\": 99",
    );
    std::fs::write(newer.join("run.json"), text).unwrap();
    let (code, _, err) = priceperf(&["compare", path_str(&root.join("good")), path_str(&newer)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("run.json:2:1") && err.contains("schema_version 99"),
        "{err}"
    );
}

/// A run that crashed (no finish time) or was stopped early lacks the rows of the
/// benchmarks it never reached; those rows would be "only in base", which never fails, so
/// the comparison itself exits 2 and says why.
#[test]
fn an_unfinished_run_makes_the_comparison_incomplete() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, true);
    for (name, crashed) in [("crashed", true), ("stopped", false)] {
        let dir = root.join(name);
        let mut i = info(name, "ci", GPU);
        if crashed {
            i.finished = None;
        } else {
            i.interrupted = true;
        }
        let s = samples(1e6, 0.02, 20, 5);
        write_run(&dir, &i, &[measured(256, "naive", GPU, &s)], &[]);
        let c = compare_dirs(&root.join("base"), &dir, &Options::default());
        assert_eq!(c.exit_code(), 2, "{c:#?}");
        assert_eq!(c.count(Verdict::OnlyBase), 2, "{c:#?}");
        let why = if crashed {
            "did not finish"
        } else {
            "stopped early"
        };
        assert!(
            c.warnings
                .iter()
                .any(|w| w.contains(why) && w.contains("--resume")),
            "{:?}",
            c.warnings
        );
        let (code, out, _) = priceperf(&["compare", path_str(&root.join("base")), path_str(&dir)]);
        assert_eq!(code, 2, "{out}");
        assert!(out.contains(why), "{out}");
        // The pull-request comment's headline says so too, not "no regressions".
        assert!(compare::render_markdown(&c).contains(":x: **incomplete**"));
    }
}

/// The search's other rows carry a screen's or a final's few timings, whose interval is no
/// confidence interval (one timing: zero width, so "intervals separate" on any change).
/// Their verdicts are shown, never gated; the same for rows timed by other methods.
#[test]
fn screen_rows_and_changed_timing_methods_do_not_gate() {
    let (_t, root) = tmp();
    let write = |dir: &Path, ns: f64, n: usize, wall: bool| {
        let s = samples(ns, 0.0, n, 1);
        let mut r = measured(256, "naive", GPU, &s);
        if wall {
            r.timing = Some(priceperf::measure::TimingMethod::Wall);
        }
        write_run(dir, &info("r", "ci", GPU), &[r], &[]);
    };
    let opts = Options {
        threshold_pct: 5.0,
        ..Options::default()
    };
    write(&root.join("b1"), 1e6, 1, false);
    write(&root.join("h1"), 1.06e6, 1, false);
    let c = compare_dirs(&root.join("b1"), &root.join("h1"), &opts);
    assert_eq!(c.rows[0].verdict, Verdict::Regressed, "{c:#?}");
    assert!(!c.rows[0].timing_gated && c.rows[0].reason.contains("1 samples"));
    assert_eq!(c.exit_code(), 0);
    // The same change measured in full fails.
    write(&root.join("b2"), 1e6, 20, false);
    write(&root.join("h2"), 1.25e6, 20, false);
    let c = compare_dirs(&root.join("b2"), &root.join("h2"), &opts);
    assert_eq!(c.exit_code(), 1, "{c:#?}");
    // A hang is gated whatever the other side's timings were.
    let mut hung = blank(256, "naive", GPU);
    hung.status = priceperf::results::Status::Timeout;
    write_run(&root.join("h4"), &info("r", "ci", GPU), &[hung], &[]);
    let c = compare_dirs(&root.join("b1"), &root.join("h4"), &opts);
    assert_eq!(c.rows[0].verdict, Verdict::TimedOut, "{c:#?}");
    assert_eq!(c.exit_code(), 1, "{c:#?}");
    write(&root.join("h3"), 1.25e6, 20, true);
    let c = compare_dirs(&root.join("b2"), &root.join("h3"), &opts);
    assert_eq!(c.rows[0].verdict, Verdict::Regressed, "{c:#?}");
    assert!(
        c.rows[0]
            .reason
            .contains("timed by device in base and by wall"),
        "{}",
        c.rows[0].reason
    );
    assert_eq!(c.exit_code(), 0);
}

/// With a warm tuning cache a run measures only each benchmark's chosen variant. When the
/// head chose another, slower variant, the two rows are each on one side only; the chosen
/// rows are compared with each other, and that is the regression prices would show.
#[test]
fn a_slower_chosen_variant_regresses() {
    let (_t, root) = tmp();
    let write = |dir: &Path, variant: &str, ns: f64| {
        let mut r = measured(256, variant, GPU, &samples(ns, 0.02, 20, 2));
        r.chosen = true;
        write_run(dir, &info("r", "ci", GPU), &[r], &[]);
    };
    write(&root.join("base"), "tiled", 1e6);
    write(&root.join("head"), "reg", 1.7e6);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    let row = c
        .rows
        .iter()
        .find(|r| r.key.variant == "chosen: tiled -> reg")
        .unwrap_or_else(|| panic!("{c:#?}"));
    assert_eq!(row.verdict, Verdict::Regressed, "{row:#?}");
    assert!(
        row.reason.contains("changed from tiled to reg"),
        "{}",
        row.reason
    );
    assert_eq!(c.count(Verdict::OnlyBase) + c.count(Verdict::OnlyHead), 2);
    assert_eq!(c.exit_code(), 1);
    // Two runs of the adapter on one side that chose differently are refused, not paired
    // at random.
    write(&root.join("both/one"), "reg", 1.7e6);
    let mut other = measured(256, "naive", GPU, &samples(2e6, 0.02, 20, 3));
    other.chosen = true;
    write_run(
        &root.join("both/two"),
        &info("r2", "ci", GPU),
        &[other],
        &[],
    );
    let b = dataset::load(&root.join("base")).unwrap();
    let h = dataset::load(&root.join("both")).unwrap();
    let err = compare::compare("base", &b, "both", &h, &Options::default()).unwrap_err();
    assert!(err.to_string().contains("chose two variants"), "{err}");
    // A faster new choice is an improvement, and passes.
    write(&root.join("head2"), "reg", 0.6e6);
    let c = compare_dirs(&root.join("base"), &root.join("head2"), &Options::default());
    assert_eq!(c.count(Verdict::Improved), 1, "{c:#?}");
    assert_eq!(c.exit_code(), 0);
}

#[test]
fn two_runs_of_one_adapter_on_one_side_are_refused() {
    let (_t, root) = tmp();
    write_side(&root.join("many/a"), 1, 0.02, None, false);
    write_side(&root.join("many/b"), 2, 0.02, None, false);
    write_side(&root.join("head"), 3, 0.02, None, false);
    let (code, _, err) = priceperf(&[
        "compare",
        path_str(&root.join("many")),
        path_str(&root.join("head")),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("holds two rows"), "{err}");
}

#[test]
fn the_binary_prints_table_markdown_and_json_with_exit_codes() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, true);
    write_side(&root.join("head"), 2, 0.02, Some(("reg", 1.25)), true);
    let (base, head) = (root.join("base"), root.join("head"));
    let (b, h) = (path_str(&base), path_str(&head));

    let (code, out, _) = priceperf(&["compare", b, h]);
    assert_eq!(code, 1);
    assert!(out.contains("REGRESSED"), "{out}");
    assert!(out.contains("summary: 1 regressed, 2 unchanged"), "{out}");

    let (code, out, _) = priceperf(&["compare", b, h, "--format", "md"]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("### priceperf compare: :x: **1 regression**"),
        "{out}"
    );
    assert!(
        out.contains("| **REGRESSED** | matmul/f32/m=256,n=256,k=256 | reg |"),
        "{out}"
    );
    assert!(
        out.contains("<details><summary>2 unchanged</summary>"),
        "{out}"
    );

    let (code, out, _) = priceperf(&["compare", b, h, "--format", "json"]);
    assert_eq!(code, 1);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["counts"]["regressed"], 1);
    assert_eq!(v["rows"][0]["verdict"], "regressed");
    assert_eq!(v["rows"][0]["key"]["variant"], "reg");
    assert!(v["rows"][0]["change_pct"].as_f64().unwrap() > 20.0);

    let (code, out, _) = priceperf(&["compare", b, h, "--threshold", "30"]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = priceperf(&["compare", b, h, "--timing-gate", "off", "--format", "md"]);
    assert_eq!(code, 0);
    assert!(out.contains("(informational, not gated)"), "{out}");
    let (code, _, _) = priceperf(&["compare", b, b]);
    assert_eq!(code, 0);
}

#[test]
fn a_timeout_fails_like_a_timing_regression() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    let mut rows: Vec<_> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| measured(256, v, GPU, &samples(1.0e6 * (i as f64 + 1.0), 0.02, 20, 9)))
        .collect();
    let mut hung = blank(256, "naive", GPU);
    hung.status = priceperf::results::Status::Timeout;
    hung.note = "device: the GPU did not finish within 60 s".into();
    rows[0] = hung;
    write_run(&root.join("head"), &info("h", "ci", GPU), &rows, &[]);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(verdict_of(&c, "naive"), Verdict::TimedOut);
    assert_eq!(c.exit_code(), 1);
    let relaxed = Options {
        timing_gate: TimingGate::Off,
        ..Options::default()
    };
    let c = compare_dirs(&root.join("base"), &root.join("head"), &relaxed);
    assert_eq!(
        c.exit_code(),
        0,
        "a slow software adapter may time out under load"
    );
}

#[test]
fn a_machine_wide_slowdown_is_flagged() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    let mut rows = Vec::new();
    for (i, v) in VARIANTS.iter().enumerate() {
        let s = samples(1.6e6 * (i as f64 + 1.0), 0.02, 20, 50 + i as u64);
        rows.push(measured(256, v, GPU, &s));
    }
    write_run(&root.join("head"), &info("h", "ci", GPU), &rows, &[]);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.count(Verdict::Regressed), 3);
    let m = c.median_change_pct.unwrap();
    assert!((m - 60.0).abs() < 5.0, "{m}");
    assert_eq!(c.warnings.len(), 1);
    assert!(compare::render_markdown(&c)
        .contains("> :warning: the median change over all 3 timed rows"));
    // Unchanged runs carry no warning.
    let c = compare_dirs(&root.join("base"), &root.join("base"), &Options::default());
    assert!(c.warnings.is_empty());
}

#[test]
fn a_run_whose_machine_changed_speed_is_flagged() {
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    let rows: Vec<_> = VARIANTS
        .iter()
        .enumerate()
        .map(|(i, v)| {
            measured(
                256,
                v,
                GPU,
                &samples(1.0e6 * (i as f64 + 1.0), 0.02, 20, 70),
            )
        })
        .collect();
    let mut head = info("h", "ci", GPU);
    head.speed_check = Some(priceperf::measure::peaks::SpeedCheck {
        start_gflops: 94.0,
        end_gflops: 59.0,
    });
    write_run(&root.join("head"), &head, &rows, &[]);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    assert!(
        c.warnings[0].starts_with("HEAD run h (")
            && c.warnings[0].contains("94.0 GFLOP/s at its start, 59.0 at its end, -37%"),
        "{}",
        c.warnings[0]
    );
    // A steady check (within the limit) says nothing.
    head.speed_check = Some(priceperf::measure::peaks::SpeedCheck {
        start_gflops: 94.0,
        end_gflops: 90.0,
    });
    write_run(&root.join("steady"), &head, &rows, &[]);
    let c = compare_dirs(
        &root.join("base"),
        &root.join("steady"),
        &Options::default(),
    );
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn software_adapters_report_timing_but_gate_only_correctness_by_default() {
    // Back-to-back runs on a loaded lavapipe machine: everything 40% slower, one row hung.
    let (_t, root) = tmp();
    let rows = |factor: f64, seed: u64| -> Vec<_> {
        VARIANTS
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let s = samples(1.0e6 * factor * (i as f64 + 1.0), 0.02, 20, seed + i as u64);
                measured(256, v, LAVAPIPE, &s)
            })
            .collect()
    };
    write_run(
        &root.join("base"),
        &info("b", "ci", LAVAPIPE),
        &rows(1.0, 1),
        &[],
    );
    let mut head = rows(1.4, 10);
    head[0].status = priceperf::results::Status::Timeout;
    head[0].median_ns = None;
    write_run(&root.join("head"), &info("h", "ci", LAVAPIPE), &head, &[]);
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.count(Verdict::Regressed), 2);
    assert_eq!(c.count(Verdict::TimedOut), 1);
    assert!(c.rows.iter().all(|r| !r.timing_gated));
    assert_eq!(c.exit_code(), 0);
    let md = compare::render_markdown(&c);
    assert!(
        md.contains(":warning: **3 timing regressions** (informational, not gated)"),
        "{md}"
    );
    assert!(md.contains("informational: software adapter"), "{md}");
    let on = Options {
        timing_gate: TimingGate::On,
        ..Options::default()
    };
    assert_eq!(
        compare_dirs(&root.join("base"), &root.join("head"), &on).exit_code(),
        1
    );

    // A wrong result still fails on a software adapter.
    let mut broken = rows(1.0, 20);
    broken[1] = failed(256, "tiled", LAVAPIPE);
    write_run(
        &root.join("broken"),
        &info("x", "ci", LAVAPIPE),
        &broken,
        &[],
    );
    let c = compare_dirs(
        &root.join("base"),
        &root.join("broken"),
        &Options::default(),
    );
    assert_eq!(verdict_of(&c, "tiled"), Verdict::Failed);
    assert_eq!(c.exit_code(), 1);
}

const TOKENS_HEADER: &str =
    "model,phase,batch,prompt_len,context_len,tokens_per_s,tokens_per_s_low,tokens_per_s_high,basis\n";

#[test]
fn token_rates_on_both_sides_are_listed_informationally() {
    let (_t, root) = tmp();
    let (base, head) = (root.join("base"), root.join("head"));
    write_side(&base, 1, 0.02, None, true);
    write_side(&head, 2, 0.02, None, true);
    // gpt2 decode with intervals (separate), the rest without (counted as overlapping).
    let tokens = |dir: &Path, decode: &str, llama_basis: &str| {
        let text = format!(
            "{TOKENS_HEADER}gpt2,prefill,1,512,,1000,,,measured\ngpt2,decode,1,,576,{decode},{decode},{decode},measured\nllama,decode,1,,576,30,,,{llama_basis}\n"
        );
        std::fs::write(dir.join("tokens.csv"), text).unwrap();
    };
    tokens(&base, "200", "measured");
    tokens(&head, "150", "projected");
    let c = compare_dirs(&base, &head, &Options::default());
    // llama's rate changed basis, so it is not compared; the kernel rows decide the exit.
    let got: Vec<(&str, &str, f64)> = c
        .tokens
        .iter()
        .map(|t| (t.key.model.as_str(), t.key.phase.as_str(), t.change_pct))
        .collect();
    assert_eq!(got, [("gpt2", "decode", -25.0), ("gpt2", "prefill", 0.0)]);
    assert_eq!(c.exit_code(), 0, "token rates are informational");
    let table = compare::render_table(&c);
    assert!(table.contains("token rates (2 on both sides"), "{table}");
    assert!(
        table.contains("200.00 tok/s") && table.contains("-25.0%"),
        "{table}"
    );
    assert!(
        table.contains("separate") && table.contains("overlap (may be noise)"),
        "{table}"
    );
    let md = compare::render_markdown(&c);
    assert!(md.contains("<summary>token rates (2 on both sides"), "{md}");
    assert!(
        md.contains("| gpt2 | decode | batch 1, context 576 |"),
        "{md}"
    );
    let json = compare::render_json(&c);
    assert!(json.contains("\"tokens_per_s\": 150.0"), "{json}");
    assert!(json.contains("\"intervals_overlap\": false"), "{json}");
}

#[test]
fn token_rates_that_cannot_be_compared_say_why() {
    let (_t, root) = tmp();
    let (base, head) = (root.join("base"), root.join("head"));
    write_side(&base, 1, 0.02, None, true);
    write_side(&head, 2, 0.02, None, true);
    std::fs::write(
        base.join("tokens.csv"),
        format!("{TOKENS_HEADER}gpt2,decode,1,,576,200,,,measured\n"),
    )
    .unwrap();
    // An older layout without the workload columns.
    std::fs::write(
        head.join("tokens.csv"),
        "model,phase,tokens_per_s\ngpt2,decode,100\n",
    )
    .unwrap();
    let c = compare_dirs(&base, &head, &Options::default());
    assert!(c.tokens.is_empty());
    assert!(
        c.warnings.iter().any(|w| w.contains("no `batch` column")),
        "{:?}",
        c.warnings
    );
    // A rate that is not a number is bad input, named by file and line.
    std::fs::write(
        head.join("tokens.csv"),
        format!("{TOKENS_HEADER}gpt2,decode,1,,576,fast,,,measured\n"),
    )
    .unwrap();
    let (b, h) = (dataset::load(&base).unwrap(), dataset::load(&head).unwrap());
    let err = compare::compare("base", &b, "head", &h, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokens.csv:2"), "{err}");
}

const COSTS_HEADER: &str = "model,phase,batch,prompt_len,context_len,accelerator,provider,instance,region,tier,usd_per_hour,accelerators_per_instance,usd_per_accelerator_hour,tokens_per_s,usd_per_mtok,usd_per_mtok_low,usd_per_mtok_high,price_as_of,basis\n";

/// A `costs.csv` row of gpt2 decode at context 576 on CPU: `offering` is `provider,instance`.
fn cost_row(offering: &str, usd_per_hour: f64, tokens_per_s: f64, as_of: &str) -> String {
    let usd_per_mtok = usd_per_hour / (tokens_per_s * 3600.0) * 1e6;
    format!("gpt2,decode,1,,576,CPU,{offering},eastus,spot,{usd_per_hour},1,{usd_per_hour},{tokens_per_s},{usd_per_mtok},,,{as_of},measured\n")
}

/// `dir`'s `costs.csv`: the header and `rows` ([`cost_row`]).
fn write_costs(dir: &Path, rows: &[String]) {
    std::fs::write(
        dir.join("costs.csv"),
        format!("{COSTS_HEADER}{}", rows.concat()),
    )
    .unwrap();
}

#[test]
fn costs_on_both_sides_say_whether_a_rate_or_a_price_moved_them() {
    let (_t, root) = tmp();
    let (base, head) = (root.join("base"), root.join("head"));
    write_side(&base, 1, 0.02, None, true);
    write_side(&head, 2, 0.02, None, true);
    // The rate fell from 200 to 150 tok/s; Azure F2s stayed at $0.0093/h; GCP e2 fell from
    // $0.02 to $0.005/h and became the cheapest; AWS c7g is priced in HEAD only.
    write_costs(
        &base,
        &[
            cost_row("Azure,Standard_F2s_v2", 0.0093, 200.0, ""),
            cost_row("GCP,e2-standard-2", 0.02, 200.0, "2026-07-30"),
        ],
    );
    write_costs(
        &head,
        &[
            cost_row("Azure,Standard_F2s_v2", 0.0093, 150.0, ""),
            cost_row("GCP,e2-standard-2", 0.005, 150.0, "2026-11-01"),
            cost_row("AWS,c7g.large", 0.0725, 150.0, "2026-07-20"),
        ],
    );
    let c = compare_dirs(&base, &head, &Options::default());
    assert_eq!(c.exit_code(), 0, "costs are informational");
    assert_eq!(c.costs.cheapest.len(), 1, "{:?}", c.costs);
    let cheapest = &c.costs.cheapest[0];
    assert_eq!(cheapest.base.offering.instance, "Standard_F2s_v2");
    assert_eq!(cheapest.head.offering.instance, "e2-standard-2");
    // $0.0093/h at 200 tok/s against $0.005/h at 150 tok/s.
    let expected = (0.005 / 150.0) / (0.0093 / 200.0) * 100.0 - 100.0;
    assert!(
        (cheapest.change_pct - expected).abs() < 1e-9,
        "{} against {expected}",
        cheapest.change_pct
    );
    assert_eq!(c.costs.offerings_on_both, 2);
    assert_eq!(c.costs.offerings_only_in_base, 0);
    assert_eq!(c.costs.offerings_only_in_head, 1);
    let changed: Vec<(&str, f64)> = c
        .costs
        .prices
        .iter()
        .map(|p| (p.offering.instance.as_str(), p.change_pct))
        .collect();
    assert_eq!(changed, [("e2-standard-2", -75.0)]);
    let table = compare::render_table(&c);
    assert!(
        table.contains("cheapest $/Mtok (1 rates priced on both sides"),
        "{table}"
    );
    assert!(
        table.contains("(Azure Standard_F2s_v2 eastus spot (CPU))")
            && table.contains("(GCP e2-standard-2 eastus spot (CPU))"),
        "{table}"
    );
    assert!(
        table.contains("prices: 1 of the 2 offerings priced on both sides changed price (0 only in base, 1 only in head)"),
        "{table}"
    );
    assert!(
        table.contains("$0.0200/h as of 2026-07-30")
            && table.contains("$0.0050/h as of 2026-11-01")
            && table.contains("-75.0%"),
        "{table}"
    );
    let md = compare::render_markdown(&c);
    assert!(md.contains("<summary>cheapest $/Mtok (1 rates"), "{md}");
    assert!(
        md.contains("| GCP e2-standard-2 eastus spot (CPU) |"),
        "{md}"
    );
    let json = compare::render_json(&c);
    assert!(json.contains("\"offerings_only_in_head\": 1"), "{json}");

    // With the prices unchanged the section says so, and a costs.csv without the columns
    // is named and left out, not guessed at.
    write_costs(
        &head,
        &[cost_row("Azure,Standard_F2s_v2", 0.0093, 150.0, "")],
    );
    let c = compare_dirs(&base, &head, &Options::default());
    let table = compare::render_table(&c);
    assert!(
        table.contains("prices: none of the 1 offerings priced on both sides changed price (1 only in base, 0 only in head)"),
        "{table}"
    );
    // One offering at two prices on a side (runs priced with different catalogs, merged):
    // neither is the side's price, so it is left out of the price comparison, with a warning.
    write_costs(
        &base,
        &[
            cost_row("Azure,Standard_F2s_v2", 0.0093, 200.0, ""),
            cost_row("Azure,Standard_F2s_v2", 0.0106, 200.0, ""),
        ],
    );
    let c = compare_dirs(&base, &head, &Options::default());
    // Still priced on both sides: counted there, not as one-sided.
    assert_eq!(
        (
            c.costs.offerings_on_both,
            c.costs.offerings_only_in_base,
            c.costs.offerings_only_in_head
        ),
        (1, 0, 0),
        "{:?}",
        c.costs
    );
    assert!(c.costs.prices.is_empty(), "{:?}", c.costs);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("1 offering(s) have more than one price in BASE")),
        "{:?}",
        c.warnings
    );
    std::fs::write(
        head.join("costs.csv"),
        "model,phase,usd_per_mtok\ngpt2,decode,1\n",
    )
    .unwrap();
    let c = compare_dirs(&base, &head, &Options::default());
    assert!(c.costs.cheapest.is_empty());
    assert!(
        c.warnings.iter().any(|w| w.contains("no `batch` column")),
        "{:?}",
        c.warnings
    );
    // One price dated twice is one price, with the later date.
    write_costs(
        &base,
        &[
            cost_row("Azure,Standard_F2s_v2", 0.0093, 200.0, "2026-07-01"),
            cost_row("Azure,Standard_F2s_v2", 0.0093, 200.0, "2026-08-01"),
        ],
    );
    write_costs(
        &head,
        &[cost_row("Azure,Standard_F2s_v2", 0.0106, 150.0, "")],
    );
    let c = compare_dirs(&base, &head, &Options::default());
    assert!(
        !c.warnings.iter().any(|w| w.contains("more than one price")),
        "{:?}",
        c.warnings
    );
    assert_eq!(c.costs.prices.len(), 1, "{:?}", c.costs);
    assert_eq!(c.costs.prices[0].base.as_of.as_deref(), Some("2026-08-01"));
    // A price of zero prices nothing; a price that is not a number is bad input, named by
    // file and line.
    write_costs(&head, &[cost_row("Azure,Standard_F2s_v2", 0.0, 150.0, "")]);
    let c = compare_dirs(&base, &head, &Options::default());
    assert_eq!(c.costs.offerings_on_both, 0, "{:?}", c.costs);
    assert!(c.costs.prices.is_empty(), "{:?}", c.costs);
    write_costs(
        &head,
        &[cost_row("Azure,Standard_F2s_v2", 0.0093, 150.0, "").replace("0.0093,1,", "cheap,1,")],
    );
    let (b, h) = (dataset::load(&base).unwrap(), dataset::load(&head).unwrap());
    let err = compare::compare("base", &b, "head", &h, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("costs.csv:2"), "{err}");
    // With costs on one side only there is nothing to compare, and no section says there is.
    std::fs::remove_file(head.join("costs.csv")).unwrap();
    let c = compare_dirs(&base, &head, &Options::default());
    assert!(!c.costs.both_sides && c.costs.cheapest.is_empty());
    let table = compare::render_table(&c);
    assert!(!table.contains("prices:"), "{table}");
    assert!(!compare::render_markdown(&c).contains("prices:"));
}

#[test]
fn a_driver_change_on_one_adapter_of_several_is_refused_not_passed() {
    // BASE and HEAD each hold a run on two adapters; the second's driver changed. Its rows
    // match nothing, and listed as one-sided they would never fail: a 30% regression there
    // passed while the first adapter's rows compared.
    let (_t, root) = tmp();
    let side = |name: &str, driver: &str, factor: f64, seed: u64| {
        let ours = measured(256, "tiled", GPU, &samples(1e6, 0.02, 20, seed));
        let mut theirs = measured(
            256,
            "tiled",
            "NVIDIA A10G",
            &samples(1e6 * factor, 0.02, 20, seed + 1),
        );
        theirs.driver = driver.into();
        write_run(
            &root.join(name).join("a"),
            &info(&format!("{name}-a"), "ci", GPU),
            &[ours],
            &[],
        );
        write_run(
            &root.join(name).join("b"),
            &info(&format!("{name}-b"), "ci", "NVIDIA A10G"),
            &[theirs],
            &[],
        );
    };
    side("base", "NVIDIA 550.54.15", 1.0, 1);
    side("head", "NVIDIA 555.42.02", 1.3, 5);
    let b = dataset::load(&root.join("base")).unwrap();
    let h = dataset::load(&root.join("head")).unwrap();
    let err = compare::compare("base", &b, "head", &h, &Options::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("on NVIDIA A10G") && err.contains("the driver changed"),
        "{err}"
    );
    // The same driver on both sides: compared, and the regression found.
    side("head2", "NVIDIA 550.54.15", 1.3, 5);
    let h = dataset::load(&root.join("head2")).unwrap();
    let c = compare::compare("base", &b, "head2", &h, &Options::default()).unwrap();
    assert_eq!(c.exit_code(), 1, "{c:#?}");
}

#[test]
fn a_failing_row_on_an_adapter_only_head_ran_fails() {
    // HEAD adds a first run on another adapter, where a kernel fails verification: the
    // module promises that a new row that fails always fails, one-sided adapter or not.
    let (_t, root) = tmp();
    write_side(&root.join("base"), 1, 0.02, None, false);
    write_side(&root.join("head/l4"), 2, 0.02, None, false);
    write_run(
        &root.join("head/a10g"),
        &info("head-a10g", "ci", "NVIDIA A10G"),
        &[
            measured(256, "naive", "NVIDIA A10G", &samples(1e6, 0.02, 20, 9)),
            failed(256, "tiled", "NVIDIA A10G"),
        ],
        &[],
    );
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.exit_code(), 1, "{c:#?}");
    let r = c
        .rows
        .iter()
        .find(|r| r.key.adapter == "NVIDIA A10G")
        .expect("the failing row is listed");
    assert_eq!(r.verdict, Verdict::Failed);
    // Its passing row is still summarised with the adapter, not listed.
    assert_eq!(
        c.rows
            .iter()
            .filter(|r| r.key.adapter == "NVIDIA A10G")
            .count(),
        1
    );
}

#[test]
fn a_benchmark_head_did_not_measure_fails_as_missing_unless_allowed() {
    // BASE measured two benchmarks; HEAD (same adapter and driver) ran one, and its other
    // chosen row has no time (a test-mode run). Both used to pass as "no regressions".
    let (_t, root) = tmp();
    let chosen = |m: u32, seed: u64| {
        let mut r = measured(m, "tiled", GPU, &samples(1e6, 0.02, 20, seed));
        r.chosen = true;
        r
    };
    write_run(
        &root.join("base"),
        &info("base", "ci", GPU),
        &[chosen(256, 1), chosen(512, 2), chosen(1024, 3)],
        &[],
    );
    let mut untimed = blank(512, "tiled", GPU);
    untimed.verified = true;
    untimed.chosen = true;
    untimed.note = "verified; not measured".into();
    write_run(
        &root.join("head"),
        &info("head", "ci", GPU),
        &[chosen(256, 4), untimed],
        &[],
    );
    let c = compare_dirs(&root.join("base"), &root.join("head"), &Options::default());
    assert_eq!(c.exit_code(), 1, "{c:#?}");
    let missing: Vec<(&str, &str)> = c
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::Missing)
        .map(|r| (r.key.benchmark.as_str(), r.reason.as_str()))
        .collect();
    assert_eq!(missing.len(), 2, "{missing:?}");
    assert!(missing[0].0.contains("m=1024") && missing[0].1.contains("did not run it"));
    assert!(missing[1].0.contains("m=512") && missing[1].1.contains("has no time"));
    let allowed = Options {
        allow_missing: true,
        ..Options::default()
    };
    let c = compare_dirs(&root.join("base"), &root.join("head"), &allowed);
    assert_eq!(c.count(Verdict::Missing), 2);
    assert_eq!(c.exit_code(), 0, "{c:#?}");
    // Through the binary: MISSING in the table, exit 1; --allow-missing, exit 0.
    let (code, out, _) = priceperf(&[
        "compare",
        path_str(&root.join("base")),
        path_str(&root.join("head")),
    ]);
    assert_eq!(code, 1);
    assert!(out.contains("MISSING"), "{out}");
    // The summary counts them: it said "1 unchanged" and nothing of what failed.
    assert!(out.contains("summary: 2 missing, 1 unchanged"), "{out}");
    let (_, md, _) = priceperf(&[
        "compare",
        path_str(&root.join("base")),
        path_str(&root.join("head")),
        "--format",
        "md",
    ]);
    assert!(md.contains("Summary: 2 missing, 1 unchanged,"), "{md}");
    let (code, _, _) = priceperf(&[
        "compare",
        path_str(&root.join("base")),
        path_str(&root.join("head")),
        "--allow-missing",
    ]);
    assert_eq!(code, 0);
}
