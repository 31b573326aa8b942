//! `priceperf export`: CSV injection and spreadsheet rules, JSON/JSONL/Markdown, and the
//! Bencher Metric Format and github-action-benchmark files checked against their
//! documented shapes.

mod result_fixtures;

use std::path::Path;

use priceperf::dataset;
use priceperf::export::{self, ExportFormat, ExportRequest, TableName};
use result_fixtures::*;
use serde_json::Value;

const EVIL_ADAPTER: &str = "=HYPERLINK(\"http://x\",\"µGPU\")";

/// One run with hostile text in every text column that comes from outside, a failed row,
/// a skipped row, and token and cost tables.
fn hostile_run(dir: &Path) {
    let mut ok = measured(64, "tiled", EVIL_ADAPTER, &samples(2.0e5, 0.03, 10, 1));
    ok.note = "+cmd|' /C calc'!A0".into();
    ok.chosen = true;
    let mut fail = failed(64, "@naive", EVIL_ADAPTER);
    fail.note = "-2+3".into();
    let mut skipped = blank(64, "\treg", EVIL_ADAPTER);
    skipped.note = "\rline".into();
    let rows = vec![ok, fail, skipped];
    let mut i = info("run-1", "-host", EVIL_ADAPTER);
    i.adapter.backend = "vulkan".into();
    write_run(dir, &i, &rows, &[(0, samples(2.0e5, 0.03, 10, 1))]);
    add_token_and_cost_tables(dir);
}

fn plain_run(dir: &Path, run_id: &str, adapter_name: &str) {
    let rows = vec![
        measured(64, "naive", adapter_name, &samples(4.0e5, 0.03, 10, 2)),
        measured(64, "tiled", adapter_name, &samples(1.0e5, 0.03, 10, 3)),
    ];
    write_run(dir, &info(run_id, "h", adapter_name), &rows, &[]);
}

fn csv_records(text: &str) -> Vec<Vec<String>> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.trim_start_matches('\u{feff}').as_bytes());
    r.records()
        .map(|rec| rec.unwrap().iter().map(String::from).collect())
        .collect()
}

fn run_export(runs: &[dataset::Run], format: ExportFormat, table: TableName) -> String {
    export::export(
        runs,
        &ExportRequest {
            format,
            out: None,
            table,
            bom: false,
        },
    )
    .unwrap()
    .0
}

#[test]
fn csv_neutralises_formulas_and_keeps_numbers_numbers() {
    let (_t, root) = tmp();
    hostile_run(&root.join("run"));
    let runs = dataset::load(&root.join("run")).unwrap();
    let text = run_export(&runs, ExportFormat::Csv, TableName::Kernels);
    let recs = csv_records(&text);
    let header = &recs[0];
    assert_eq!(&header[..4], ["run_id", "host", "benchmark", "kernel"]);
    for unit_col in [
        "median_ns",
        "ci_low_ns",
        "ci_high_ns",
        "gflops",
        "gbps",
        "pct_of_peak",
    ] {
        assert!(header.contains(&unit_col.to_string()), "{unit_col}");
    }
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    // Every text cell from outside that starts with a trigger gets the quote prefix.
    for rec in &recs[1..] {
        assert!(rec[col("adapter")].starts_with("'="), "{rec:?}");
        assert_eq!(rec[col("host")], "'-host");
    }
    assert_eq!(recs[1][col("note")], "'+cmd|' /C calc'!A0");
    assert_eq!(recs[2][col("variant")], "'@naive");
    assert_eq!(recs[2][col("note")], "'-2+3");
    assert_eq!(recs[3][col("variant")], "'\treg");
    assert_eq!(recs[3][col("note")], "'\rline");
    // UTF-8 survives; missing numbers are empty; numbers are bare.
    assert!(recs[1][col("adapter")].contains("µGPU"));
    assert_eq!(recs[2][col("median_ns")], "");
    assert_eq!(recs[3][col("max_rel_err")], "");
    let median: f64 = recs[1][col("median_ns")].parse().unwrap();
    assert!(median > 1.0e5);
    // No cell anywhere starts with a formula trigger.
    for rec in &recs {
        for cell in rec {
            if cell.parse::<f64>().is_err() {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "unescaped {cell:?}"
                );
            }
        }
    }

    // The cost table: hostile provider, instance and region escaped; negative-looking
    // numbers would stay numbers; run columns first.
    let costs = csv_records(&run_export(&runs, ExportFormat::Csv, TableName::Costs));
    let h = &costs[0];
    assert_eq!(&h[..3], ["run_id", "host", "adapter"]);
    let c = |name: &str| h.iter().position(|x| x == name).unwrap();
    assert_eq!(costs[2][c("provider")], "'=evil");
    assert_eq!(costs[2][c("instance")], "'@SUM(A1)");
    assert_eq!(costs[2][c("region")], "'-eu");
    assert_eq!(costs[2][c("price_as_of")], "", "a missing date stays empty");
    assert_eq!(costs[1][c("usd_per_mtok")], "6.734");
    let tokens = csv_records(&run_export(&runs, ExportFormat::Csv, TableName::Tokens));
    let t = &tokens[0];
    let prompt = t.iter().position(|x| x == "prompt_len").unwrap();
    assert_eq!(tokens[2][prompt], "", "decode has no prompt length");

    // The BOM is opt-in; --table all writes every table to a folder.
    let (_, files) = export::export(
        &runs,
        &ExportRequest {
            format: ExportFormat::Csv,
            out: Some(&root.join("sheets")),
            table: TableName::All,
            bom: true,
        },
    )
    .unwrap();
    assert_eq!(files.len(), 3);
    let bytes = std::fs::read(root.join("sheets/kernels.csv")).unwrap();
    assert_eq!(&bytes[..3], b"\xef\xbb\xbf");
    assert!(root.join("sheets/costs.csv").is_file());
}

#[test]
fn folders_without_token_and_cost_tables_export_everything_else() {
    let (_t, root) = tmp();
    plain_run(&root.join("run"), "r", LAVAPIPE);
    let runs = dataset::load(&root.join("run")).unwrap();
    for f in [
        ExportFormat::Bmf,
        ExportFormat::Json,
        ExportFormat::Jsonl,
        ExportFormat::Md,
    ] {
        let out = run_export(&runs, f, TableName::Kernels);
        assert!(!out.is_empty(), "{f:?}");
    }
    let costs = run_export(&runs, ExportFormat::Csv, TableName::Costs);
    assert_eq!(csv_records(&costs).len(), 1, "header only");
    let md = run_export(&runs, ExportFormat::Md, TableName::Kernels);
    assert!(
        md.contains("### Kernels") && !md.contains("### Costs"),
        "{md}"
    );
}

/// The Bencher Metric Format: an object of benchmark names, each an object of measure
/// slugs, each an object with a numeric `value` and optional numeric `lower_value` and
/// `upper_value` (https://bencher.dev/bmf.json), names at most 1024 characters.
fn assert_bmf_shape(v: &Value) {
    let benches = v.as_object().expect("top level is an object");
    assert!(!benches.is_empty());
    for (name, measures) in benches {
        assert!(!name.is_empty() && name.len() <= 1024, "{name}");
        let measures = measures.as_object().expect("measures object");
        assert!(!measures.is_empty());
        for (slug, m) in measures {
            assert!(!slug.is_empty() && slug.len() <= 64);
            let m = m.as_object().expect("metric object");
            for key in m.keys() {
                assert!(
                    ["value", "lower_value", "upper_value"].contains(&key.as_str()),
                    "{key}"
                );
            }
            let value = m["value"].as_f64().expect("numeric value");
            if let Some(l) = m.get("lower_value") {
                assert!(l.as_f64().unwrap() <= value);
            }
            if let Some(u) = m.get("upper_value") {
                assert!(u.as_f64().unwrap() >= value);
            }
        }
    }
}

#[test]
fn bmf_has_latency_throughput_and_cost_measures() {
    let (_t, root) = tmp();
    hostile_run(&root.join("run"));
    let runs = dataset::load(&root.join("run")).unwrap();
    let v: Value =
        serde_json::from_str(&run_export(&runs, ExportFormat::Bmf, TableName::Kernels)).unwrap();
    assert_bmf_shape(&v);
    let k = &v["matmul/f32/m=64,n=64,k=64/tiled"];
    let row = &runs[0].kernels[0];
    // serde_json's default float parsing may differ from the written value in the last bit.
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() <= want * 1e-15;
    assert!(close(&k["latency"]["value"], row.median_ns.unwrap()));
    assert!(close(&k["latency"]["lower_value"], row.ci_low_ns.unwrap()));
    assert!(close(&k["latency"]["upper_value"], row.ci_high_ns.unwrap()));
    let flops_per_s = k["throughput"]["value"].as_f64().unwrap();
    assert!((flops_per_s - row.flops as f64 / row.median_ns.unwrap() * 1e9).abs() < 1.0);
    assert_eq!(
        v.as_object().unwrap().len(),
        1 + 2 + 2,
        "failed and skipped rows left out"
    );
    let t = &v["tokens/llama-3.1-8b/prefill/batch=1,prompt=1000"]["throughput"];
    assert_eq!(t["value"], 5234.5);
    assert_eq!(t["lower_value"], 5100.25);
    assert_eq!(t["upper_value"], 5301.0);
    let c =
        &v["cost/llama-3.1-8b/decode/aws/g5.xlarge/us-east-1/on_demand/measured"]["usd-per-mtok"];
    assert_eq!(c["value"], 6.734);
    assert_eq!(c["lower_value"], 6.614);
    assert!(!serde_json::to_string(&v).unwrap().contains("null"));

    // Several adapters: names carry the adapter so they do not collide.
    plain_run(&root.join("fleet/a"), "a", LAVAPIPE);
    plain_run(&root.join("fleet/b"), "b", "NVIDIA L4");
    let runs = dataset::load(&root.join("fleet")).unwrap();
    let v: Value =
        serde_json::from_str(&run_export(&runs, ExportFormat::Bmf, TableName::Kernels)).unwrap();
    assert_bmf_shape(&v);
    assert_eq!(v.as_object().unwrap().len(), 4);
    assert!(
        v.get(format!("matmul/f32/m=64,n=64,k=64/naive [{LAVAPIPE}]"))
            .is_some(),
        "{v}"
    );
    assert!(v
        .get("matmul/f32/m=64,n=64,k=64/naive [NVIDIA L4]")
        .is_some());
}

/// A tuning screen's row has a time but no confidence interval (one timing: zero width):
/// trackers get its value without bounds, which they would take for a measured spread.
#[test]
fn screen_rows_export_without_bounds() {
    let (_t, root) = tmp();
    let rows = vec![
        measured(64, "naive", LAVAPIPE, &samples(4.0e5, 0.03, 3, 2)),
        measured(64, "tiled", LAVAPIPE, &samples(1.0e5, 0.03, 10, 3)),
    ];
    write_run(&root.join("run"), &info("r", "h", LAVAPIPE), &rows, &[]);
    let runs = dataset::load(&root.join("run")).unwrap();
    let v: Value =
        serde_json::from_str(&run_export(&runs, ExportFormat::Bmf, TableName::Kernels)).unwrap();
    assert_bmf_shape(&v);
    let screen = &v["matmul/f32/m=64,n=64,k=64/naive"]["latency"];
    assert!(
        screen["value"].as_f64().is_some() && screen.get("lower_value").is_none(),
        "{v}"
    );
    let full = &v["matmul/f32/m=64,n=64,k=64/tiled"]["latency"];
    assert!(full.get("lower_value").is_some(), "{v}");
}

/// github-action-benchmark's custom format: an array of {name, unit, value, range?,
/// extra?}; `range` must match the action's `(\+-|±)\s*<number>` so it shows as the spread.
fn assert_gab_shape(v: &Value) -> Vec<String> {
    let entries = v.as_array().expect("an array");
    assert!(!entries.is_empty());
    let mut names = Vec::new();
    for e in entries {
        let o = e.as_object().unwrap();
        for key in o.keys() {
            assert!(
                ["name", "unit", "value", "range", "extra"].contains(&key.as_str()),
                "{key}"
            );
        }
        names.push(o["name"].as_str().expect("name").to_string());
        assert!(o["unit"].is_string());
        assert!(o["value"].as_f64().unwrap().is_finite());
        if let Some(r) = o.get("range") {
            let r = r.as_str().unwrap();
            let rest = r.strip_prefix("± ").expect("± prefix");
            assert!(rest.parse::<f64>().unwrap() >= 0.0, "{r}");
        }
        if let Some(x) = o.get("extra") {
            assert!(x.is_string());
        }
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are unique");
    names
}

#[test]
fn gab_writes_bigger_and_smaller_files() {
    let (_t, root) = tmp();
    hostile_run(&root.join("run"));
    let out = root.join("gab");
    let (code, _, err) = priceperf(&[
        "export",
        path_str(&root.join("run")),
        "--format",
        "gab",
        "--out",
        path_str(&out),
    ]);
    assert_eq!(code, 0, "{err}");
    let read = |f: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(out.join(f)).unwrap()).unwrap()
    };
    let bigger = read("gab-bigger.json");
    let smaller = read("gab-smaller.json");
    assert_gab_shape(&bigger);
    assert_gab_shape(&smaller);
    let units = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|e| e["unit"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(units(&bigger), ["GFLOP/s", "tokens/s", "tokens/s"]);
    assert_eq!(units(&smaller), ["ns", "USD/Mtok", "USD/Mtok"]);
    let latency = &smaller[0];
    assert_eq!(latency["name"], "matmul/f32/m=64,n=64,k=64/tiled");
    let extra = latency["extra"].as_str().unwrap();
    assert!(
        extra.contains("95% CI")
            && extra.contains("run: run-1")
            && extra.contains("commit: abc123"),
        "{extra}"
    );

    // gab needs a folder.
    let (code, _, err) = priceperf(&["export", path_str(&root.join("run")), "--format", "gab"]);
    assert_eq!(code, 2);
    assert!(err.contains("--out DIR"), "{err}");
}

#[test]
fn json_jsonl_and_markdown_carry_every_table() {
    let (_t, root) = tmp();
    hostile_run(&root.join("run"));
    plain_run(&root.join("run2"), "r2", LAVAPIPE);
    let (code, out, err) = priceperf(&[
        "export",
        path_str(&root.join("run")),
        path_str(&root.join("run2")),
        "--format",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["runs"].as_array().unwrap().len(), 2);
    assert_eq!(v["kernels"].as_array().unwrap().len(), 5);
    assert_eq!(v["kernels"][0]["run_id"], "run-1");
    assert_eq!(
        v["kernels"][0]["adapter"], EVIL_ADAPTER,
        "JSON keeps text raw"
    );
    assert_eq!(v["kernels"][1]["median_ns"], Value::Null);
    assert_eq!(v["tokens"][0]["tokens_per_s"], 5234.5);
    assert_eq!(v["costs"][1]["provider"], "=evil");

    let (code, out, _) = priceperf(&["export", path_str(&root.join("run")), "--format", "jsonl"]);
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let tables: Vec<&str> = lines.iter().map(|l| l["table"].as_str().unwrap()).collect();
    assert_eq!(
        tables,
        ["runs", "kernels", "kernels", "kernels", "tokens", "tokens", "costs", "costs"]
    );

    let file = root.join("out/report.md");
    let (code, out, _) = priceperf(&[
        "export",
        path_str(&root.join("run")),
        "--format",
        "md",
        "--out",
        path_str(&file),
    ]);
    assert_eq!(code, 0);
    assert!(out.is_empty());
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(
        md.contains("### Kernels") && md.contains("### Token rates") && md.contains("### Costs"),
        "{md}"
    );
    assert!(md.contains("tiled (chosen)"), "{md}");
    assert!(md.contains("| failed: -2+3 |"), "{md}");
    // Every table row has as many cells as its header.
    let mut width = 0;
    for line in md.lines() {
        if !line.starts_with('|') {
            width = 0;
            continue;
        }
        let cells = line.replace("\\|", "").matches('|').count();
        if width == 0 {
            width = cells;
        }
        assert_eq!(cells, width, "{line}");
    }
}

/// `--out` onto the folders being read replaced the run's own files with exports of a
/// different shape and exited 0. Every case must exit 2 and leave the folder byte for byte.
#[test]
fn out_never_overwrites_an_input_run() {
    let (_t, root) = tmp();
    let run = root.join("e1");
    hostile_run(&run);
    plain_run(&root.join("other"), "r2", LAVAPIPE);
    let snapshot = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    };
    let (before, other_before) = (snapshot(&run), snapshot(&root.join("other")));
    let r = path_str(&run);
    let into = |f: &str| root.join(f).to_string_lossy().to_string();
    let cases: Vec<Vec<String>> = vec![
        vec!["export", r, "--format", "csv", "--table", "all", "--out", r],
        vec!["export", r, "--format", "gab", "--out", r],
        vec![
            "export",
            r,
            "--format",
            "json",
            "--out",
            &into("e1/run.json"),
        ],
        vec![
            "export",
            r,
            "--format",
            "csv",
            "--out",
            &into("e1/kernels.csv"),
        ],
        vec![
            "export",
            r,
            "--format",
            "md",
            "--out",
            &into("./e1/../e1/new.md"),
        ],
        vec![
            "export",
            r,
            "--format",
            "csv",
            "--table",
            "all",
            "--out",
            &into("other"),
        ],
        vec![
            "report",
            r,
            "--format",
            "csv",
            "--out",
            &into("e1/costs.csv"),
        ],
        vec![
            "report",
            r,
            "--format",
            "json",
            "--out",
            &into("other/results.json"),
        ],
    ]
    .into_iter()
    .map(|c| c.into_iter().map(String::from).collect())
    .collect();
    for args in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = priceperf(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("result folder") && err.contains("Pick an --out outside"),
            "{args:?}: {err}"
        );
    }
    assert!(snapshot(&run) == before, "the input run is untouched");
    assert!(snapshot(&root.join("other")) == other_before);

    // Beside the run is fine.
    let (code, _, err) = priceperf(&[
        "report",
        r,
        "--format",
        "csv",
        "--out",
        &into("e1-costs.csv"),
    ]);
    assert_eq!(code, 0, "{err}");
}
