//! `priceperf report`: the formats, and the HTML page rendered in a real browser.
//!
//! The browser test renders the page in headless Chromium (Debian's `chromium` package,
//! which `.ci/run` installs through `scripts/setup.sh`; `PRICEPERF_CHROMIUM` names another
//! binary). A copy of the page gets a probe script that records, after the load event:
//! how many charts have a laid-out size, how many SVG text elements they hold, how many
//! data tables have visible rows, every error event, and every resource the page fetched
//! (there must be none: the page is self-contained). The test reads that record from
//! `--dump-dom`, then takes a screenshot (kept in the target folder for people to look at).
//! Where no Chromium is installed, the test says so and passes without rendering.
//!
//! The result folders are synthetic (no GPU needed): two runs of an NVIDIA L4, priced with
//! the embedded catalog through priceperf's own cost formulas.

mod result_fixtures;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use priceperf::catalog::Catalog;
use priceperf::cost::{self, Basis, TokensRow};
use priceperf::gpu::AdapterSummary;
use priceperf::measure::TimingMethod;
use priceperf::model::PhaseKind;
use priceperf::results::{self, KernelRow, ResultSet, RunInfo, Status};
use priceperf::shape::DType;

const ADAPTER: &str = "NVIDIA L4";

fn adapter() -> AdapterSummary {
    AdapterSummary {
        name: ADAPTER.into(),
        backend: "vulkan".into(),
        device_type: "discrete".into(),
        driver: "NVIDIA".into(),
        driver_info: "550.54.15".into(),
        vendor_id: 0x10de,
        device_id: 0x27b8,
        timestamps: true,
        f16: true,
        subgroups: true,
        subgroup_min_size: 32,
        subgroup_max_size: 32,
        max_workgroup_storage_bytes: 49152,
        max_invocations_per_workgroup: 1024,
        max_workgroups_per_dimension: 65535,
        max_storage_binding_bytes: 1 << 31,
        max_buffer_bytes: 1 << 32,
    }
}

/// A kernel row with a measured median (ns); `speed` scales every time (a second run).
#[allow(clippy::too_many_arguments)]
fn row(
    kernel: &str,
    shape: &str,
    variant: &str,
    flops: u64,
    bytes: u64,
    median_ns: f64,
    chosen: bool,
    status: Status,
) -> KernelRow {
    let mut r = KernelRow {
        benchmark: format!("{kernel}/f16/{shape}"),
        kernel: kernel.into(),
        variant: variant.into(),
        dtype: DType::F16,
        shape: shape.into(),
        adapter: ADAPTER.into(),
        backend: "vulkan".into(),
        driver: "NVIDIA 550.54.15".into(),
        timing: None,
        samples: None,
        median_ns: None,
        ci_low_ns: None,
        ci_high_ns: None,
        flops,
        bytes,
        gflops: None,
        gbps: None,
        pct_of_peak: None,
        verified: false,
        max_rel_err: None,
        status,
        chosen,
        note: String::new(),
        pct_of_measured_flops: None,
        pct_of_measured_bw: None,
    };
    match status {
        Status::Ok => {
            r.timing = Some(TimingMethod::Device);
            r.samples = Some(20);
            r.verified = true;
            r.max_rel_err = Some(3e-4);
            r = r.with_time(median_ns, median_ns * 0.97, median_ns * 1.04);
            r.pct_of_peak = r.gflops.map(|g| 100.0 * g / 121_000.0);
        }
        Status::Failed => {
            r.max_rel_err = Some(0.5);
            r.note = "verification: 12 of 4096 elements differ (worst 0.5 at [3, 7]) <b>".into();
        }
        _ => r.note = "needs SUBGROUP, which this adapter lacks".into(),
    }
    r
}

fn kernel_rows(speed: f64) -> Vec<KernelRow> {
    let mm = |m: u64, n: u64, k: u64| (2 * m * n * k, 2 * (m * k + k * n + m * n));
    let (f1, b1) = mm(512, 4096, 4096);
    let (f2, b2) = mm(1, 4096, 4096);
    let s = |ns: f64| ns * speed;
    vec![
        row(
            "matmul",
            "m=512,n=4096,k=4096",
            "naive",
            f1,
            b1,
            s(9.0e6),
            false,
            Status::Ok,
        ),
        row(
            "matmul",
            "m=512,n=4096,k=4096",
            "tiled_64x64",
            f1,
            b1,
            s(0.6e6),
            true,
            Status::Ok,
        ),
        row(
            "matmul",
            "m=512,n=4096,k=4096",
            "reg_4x4",
            f1,
            b1,
            s(1.1e6),
            false,
            Status::Ok,
        ),
        row(
            "matmul",
            "m=512,n=4096,k=4096",
            "subgroup8",
            f1,
            b1,
            0.0,
            false,
            Status::Skipped,
        ),
        row(
            "matmul",
            "m=1,n=4096,k=4096",
            "naive",
            f2,
            b2,
            s(140e3),
            true,
            Status::Ok,
        ),
        row(
            "matmul",
            "m=1,n=4096,k=4096",
            "tiled_64x64",
            f2,
            b2,
            s(210e3),
            false,
            Status::Ok,
        ),
        row(
            "matmul",
            "m=1,n=4096,k=4096",
            "texture_w8x8",
            f2,
            b2,
            0.0,
            false,
            Status::Failed,
        ),
        row(
            "attention",
            "b=1,hq=32,hkv=8,sq=512,skv=512,d=128,causal=1",
            "flash_row",
            2 * 4 * 32 * 512 * 512 * 128 / 2,
            4 * 2 * 512 * 128 * 48,
            s(1.9e6),
            true,
            Status::Ok,
        ),
        row(
            "attention",
            "b=1,hq=32,hkv=8,sq=512,skv=512,d=128,causal=1",
            "naive",
            2 * 4 * 32 * 512 * 512 * 128 / 2,
            4 * 2 * 512 * 128 * 48,
            s(6.5e6),
            false,
            Status::Ok,
        ),
        row(
            "rmsnorm",
            "rows=512,cols=4096",
            "vec4_wg256",
            4 * 512 * 4096,
            2 * 2 * 512 * 4096,
            s(40e3),
            true,
            Status::Ok,
        ),
        row(
            "silu_mul",
            "rows=512,cols=14336",
            "vec4_wg256",
            5 * 512 * 14336,
            3 * 2 * 512 * 14336,
            s(180e3),
            true,
            Status::Ok,
        ),
    ]
}

/// Write one run folder the way a run does: run.json, kernels.csv, tokens.csv, costs.csv
/// (priced on the catalog's L4 offerings by priceperf's formulas), results.json.
fn write_run(dir: &Path, run_id: &str, started: &str, speed: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let info = RunInfo {
        schema_version: results::SCHEMA_VERSION,
        run_id: run_id.into(),
        started: started.into(),
        finished: Some(started.replace("T10:", "T11:")),
        interrupted: false,
        git_commit: Some("0123456789ab".into()),
        host: "ci-l4".into(),
        os: "linux x86_64".into(),
        cpu_threads: 8,
        priceperf_version: "0.1.0".into(),
        wgpu_version: "30".into(),
        adapter: adapter(),
        settings: serde_json::json!({ "suite": "standard", "sample_size": 20 }),
        peaks: None,
        speed_check: None,
        time: None,
    };
    let kernels = kernel_rows(speed);
    let tokens: Vec<TokensRow> = [
        (PhaseKind::Prefill, Some(512), None, 2450.0),
        (PhaseKind::Decode, None, Some(576), 38.0),
        (PhaseKind::Workload, Some(512), Some(640), 180.0),
    ]
    .into_iter()
    .map(|(phase, prompt_len, context_len, tps)| TokensRow {
        model: "llama-3.1-8b".into(),
        phase,
        batch: 1,
        prompt_len,
        context_len,
        tokens_per_s: tps / speed,
        tokens_per_s_low: Some(0.97 * tps / speed),
        tokens_per_s_high: Some(1.03 * tps / speed),
        basis: Basis::Measured,
    })
    .collect();
    let catalog = Catalog::load_default().unwrap();
    let offerings = catalog.offerings_for("L4");
    assert!(offerings.len() >= 2, "the catalog prices L4 instances");
    let costs = cost::price_offerings(&tokens, &offerings, None).unwrap();
    std::fs::write(
        dir.join("run.json"),
        serde_json::to_vec_pretty(&info).unwrap(),
    )
    .unwrap();
    results::append_rows(&dir.join("kernels.csv"), &kernels).unwrap();
    results::write_csv(&dir.join("tokens.csv"), &tokens).unwrap();
    results::write_csv(&dir.join("costs.csv"), &costs).unwrap();
    let set = ResultSet {
        run: info,
        kernels,
        tokens,
        costs,
        notes: vec!["adapter `NVIDIA L4` matched accelerator `L4`".into()],
    };
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_vec_pretty(&set).unwrap(),
    )
    .unwrap();
}

/// Two runs (the second 10% faster) and a criterion report in the first.
fn fixture() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("runs/a");
    let b = tmp.path().join("runs/b");
    write_run(
        &a,
        "20250101T100000Z-nvidia-l4",
        "2025-01-01T10:00:00+00:00",
        1.0,
    );
    write_run(
        &b,
        "20250201T100000Z-nvidia-l4",
        "2025-02-01T10:00:00+00:00",
        0.9,
    );
    let report = a.join("criterion/report");
    std::fs::create_dir_all(&report).unwrap();
    std::fs::write(
        report.join("index.html"),
        "<html><body>criterion</body></html>",
    )
    .unwrap();
    (tmp, a, b)
}

fn priceperf(args: &[&str]) -> (i32, String, String) {
    let out = result_fixtures::isolated(&mut Command::new(env!("CARGO_BIN_EXE_priceperf")))
        .args(args)
        .output()
        .expect("run priceperf");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The page for the two runs, written to `<tmp>/site/report.html`.
fn html_report(tmp: &Path, a: &Path, b: &Path) -> (PathBuf, String) {
    let out = tmp.join("site/report.html");
    let (code, _, err) = priceperf(&["report", s(a), s(b), "--format", "html", "--out", s(&out)]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    (out, html)
}

#[test]
fn html_report_is_one_self_contained_page() {
    let (tmp, a, b) = fixture();
    let (_, html) = html_report(tmp.path(), &a, &b);
    assert!(html.starts_with("<!DOCTYPE html>"));
    // Nothing to fetch: no scripts, stylesheets, images, fonts or remote URLs.
    for needle in [
        "<script", "<link", "<img", "@import", "url(", "src=", "http://", "https://",
    ] {
        let hit = html
            .find(needle)
            .map(|i| &html[i.saturating_sub(80)..(i + 80).min(html.len())]);
        // The SVG namespace is an identifier, not a fetch.
        let ok = needle == "http://"
            && html.matches("http://").count()
                == html.matches("http://www.w3.org/2000/svg").count();
        assert!(hit.is_none() || ok, "{needle}: {hit:?}");
    }
    // Provenance, ranked costs with the front marked, charts, kernels with verification.
    for needle in [
        "Provenance",
        "NVIDIA L4",
        "550.54.15",
        "0123456789ab",
        "2025-01-01T10:00:00+00:00",
        "price as of",
        "id=\"costs-llama-3-1-8b-workload-batch-1-512-128-in-out\"",
        "★",
        "id=\"kernels-table\"",
        "status-failed",
        "✓ yes",
        "adapter `NVIDIA L4` matched accelerator `L4`",
    ] {
        assert!(html.contains(needle), "missing {needle}");
    }
    // Text from the rows is escaped.
    assert!(html.contains("&lt;b&gt;") && !html.contains("[3, 7]) <b>"));
    // One chart of each kind: price/performance, roofline (spec roofs: the L4 is known),
    // comparison bars, trend, compare.
    for id in [
        "price-performance-llama-3-1-8b-workload-batch-1-512-128-in-out",
        "roofline-nvidia-l4",
        "comparison-tokens",
        "trend-tokens",
        "compare",
    ] {
        assert!(
            html.contains(&format!("<figure id=\"{id}\"")),
            "no chart {id}"
        );
    }
    assert!(
        html.contains("Spec-sheet roofs of L4"),
        "roofs from the spec sheet"
    );
    assert_eq!(html.matches("<svg").count(), 5);
    // The link to criterion's report is relative to the page.
    assert!(
        html.contains("href=\"../runs/a/criterion/report/index.html\""),
        "criterion link"
    );
}

#[test]
fn report_formats_for_terminals_pull_requests_and_programs() {
    let (tmp, a, _b) = fixture();
    let (code, table, err) = priceperf(&["report", s(&a)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("Cost per million tokens: llama-3.1-8b workload"),
        "{table}"
    );
    assert!(
        table.contains("tiled_64x64") && table.contains("GFLOP/s"),
        "{table}"
    );

    let (code, md, _) = priceperf(&["report", s(&a), "--format", "md", "--top", "2"]);
    assert_eq!(code, 0);
    assert!(md.starts_with("## priceperf report"), "{md}");
    assert!(md.contains("| # | provider | instance |"), "{md}");
    assert!(md.contains("### Kernels: chosen variants and rows that did not pass"));
    assert!(md.contains("<details><summary>All 11 kernel rows</summary>"));

    let (code, csv, _) = priceperf(&["report", s(&a), "--format", "csv"]);
    assert_eq!(code, 0);
    let mut lines = csv.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("run_id,rank,pareto_front,instance_tokens_per_s,model,phase"));
    let first = lines.next().unwrap();
    assert!(
        first.contains(",1,true,") && first.contains(",workload,"),
        "{first}"
    );

    let (code, json, _) = priceperf(&["report", s(&a), "--format", "json"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["runs"][0]["run"]["adapter"]["name"], ADAPTER);
    assert_eq!(v["costs"][0]["rank"], 1);
    assert_eq!(v["costs"][0]["phase"], "workload");
    assert_eq!(v["kernels"].as_array().unwrap().len(), 11);

    let out = tmp.path().join("out/report.md");
    let (code, stdout, _) = priceperf(&["report", s(&a), "--format", "md", "--out", s(&out)]);
    assert_eq!(code, 0);
    assert!(stdout.is_empty());
    assert!(std::fs::read_to_string(out)
        .unwrap()
        .contains("## priceperf report"));

    let (code, _, err) = priceperf(&["report", s(&tmp.path().join("nope"))]);
    assert_eq!(code, 2, "{err}");
}

/// Chromium, if installed: `PRICEPERF_CHROMIUM`, else the usual names on PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PRICEPERF_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in [
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Run headless Chromium on `url` with the given extra flags; stdout, or a panic with
/// stderr after `limit`.
fn run_chromium(bin: &Path, profile: &Path, extra: &[&str], url: &str, limit: Duration) -> String {
    let mut child = Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium did not finish within {limit:?}: {}",
                err.join().unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(status.success(), "chromium failed ({status}): {stderr}");
    stdout
}

/// Put first in a copy of the page's `<head>`: records every error event (scripts, failed
/// loads of any element) from the start.
const ERRORS: &str = r#"<script>
window.__errors = [];
window.addEventListener('error', function (e) { window.__errors.push(String(e.message || (e.target && e.target.outerHTML) || e.type)); }, true);
</script>
"#;

/// Appended to the copy's `<body>`: after the load event, record what the browser laid out.
const PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var charts = Array.prototype.slice.call(document.querySelectorAll('figure.chart svg'));
  var sized = charts.filter(function (s) { var r = s.getBoundingClientRect(); return r.width > 300 && r.height > 60; });
  var tables = Array.prototype.slice.call(document.querySelectorAll('table.data'));
  var shown = tables.filter(function (t) {
    return t.getBoundingClientRect().height > 0 && t.tBodies.length > 0 && t.tBodies[0].rows.length > 0;
  });
  var record = {
    charts: charts.length,
    sized: sized.length,
    chart_texts: document.querySelectorAll('figure.chart svg text').length,
    chart_marks: document.querySelectorAll('figure.chart svg circle, figure.chart svg rect, figure.chart svg polyline, figure.chart svg path').length,
    tables: tables.length,
    shown_tables: shown.length,
    fetched: performance.getEntriesByType('resource').map(function (r) { return r.name; }),
    errors: window.__errors,
    title: document.title
  };
  document.body.setAttribute('data-probe', JSON.stringify(record));
});
</script>
"#;

#[test]
fn html_report_renders_in_headless_chromium() {
    let Some(bin) = chromium() else {
        eprintln!(
            "SKIPPED html_report_renders_in_headless_chromium: no Chromium found (install Debian's `chromium`, as .ci/run does, or set PRICEPERF_CHROMIUM)"
        );
        return;
    };
    let (tmp, a, b) = fixture();
    let (page, html) = html_report(tmp.path(), &a, &b);
    let probed = page.with_file_name("probed.html");
    let copy = html
        .replacen("<head>", &format!("<head>\n{ERRORS}"), 1)
        .replace("</body>", &format!("{PROBE}</body>"));
    std::fs::write(&probed, copy).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(
        &bin,
        profile.path(),
        &["--dump-dom", "--virtual-time-budget=3000"],
        &format!("file://{}", probed.display()),
        Duration::from_secs(120),
    );
    let start =
        dom.find("data-probe=\"").expect("the probe ran after load") + "data-probe=\"".len();
    let end = start + dom[start..].find('"').unwrap();
    let json = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let probe: serde_json::Value = serde_json::from_str(&json).expect("probe record");
    eprintln!("chromium probe: {probe}");
    assert_eq!(
        probe["errors"],
        serde_json::json!([]),
        "errors while loading"
    );
    assert_eq!(
        probe["fetched"],
        serde_json::json!([]),
        "the page fetched resources"
    );
    assert_eq!(probe["charts"], 5, "charts in the DOM");
    assert_eq!(probe["sized"], 5, "every chart laid out at a visible size");
    assert!(
        probe["chart_texts"].as_u64().unwrap() > 50,
        "axis labels and legends are text"
    );
    assert!(
        probe["chart_marks"].as_u64().unwrap() > 50,
        "points, bars and lines"
    );
    let tables = probe["tables"].as_u64().unwrap();
    // Cost tables per model and phase (3, plus folded remainders), tokens, kernels.
    assert!(tables >= 5, "{probe}");
    assert_eq!(
        probe["shown_tables"].as_u64().unwrap() + folded(&html),
        tables,
        "{probe}"
    );
    assert!(probe["title"]
        .as_str()
        .unwrap()
        .starts_with("priceperf report"));

    // A screenshot of the real page, for people: target/tmp/report_html/report.png.
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report_html");
    std::fs::create_dir_all(&shots).unwrap();
    let png = shots.join("report.png");
    let _ = std::fs::remove_file(&png);
    let profile = tempfile::tempdir().unwrap();
    run_chromium(
        &bin,
        profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,2600",
        ],
        &format!("file://{}", page.display()),
        Duration::from_secs(120),
    );
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
    std::fs::copy(&page, shots.join("report.html")).unwrap();
    eprintln!("screenshot: {}", png.display());
}

/// Tables inside closed `<details>` have no layout height.
fn folded(html: &str) -> u64 {
    html.split("<details>")
        .skip(1)
        .filter(|part| {
            let end = part.find("</details>").unwrap_or(part.len());
            part[..end].contains("<table class=\"data")
        })
        .count() as u64
}

/// A reader that stops early (`| head`) is not an error, as for `export`.
#[test]
fn report_to_a_closed_pipe_is_not_an_error() {
    let (_t, root) = result_fixtures::tmp();
    write_run(&root.join("a"), "pipe", "2025-01-01T10:00:00+00:00", 1.0);
    let mut child = result_fixtures::isolated(&mut Command::new(env!("CARGO_BIN_EXE_priceperf")))
        .args([
            "report",
            result_fixtures::path_str(&root.join("a")),
            "--format",
            "json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before anything is written, as `| head -0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
