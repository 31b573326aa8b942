//! Hostile-input harness: every reader of user files fed arbitrary bytes, with the invariants
//! a malformed or malicious input must not break. Shared by the cargo-fuzz targets in
//! `fuzz/` and by the seeded mutation tests in `tests/fuzz_mutations.rs` (which run on
//! stable Rust in CI), so both check exactly the same thing.
//!
//! Invariants, for every entry point:
//! - no panic (the targets are built with overflow checks and debug assertions on);
//! - a refusal is a bad-input error (exit code 2); a file error names the file given and a
//!   line and column of at least 1, and its printed paragraph holds no control characters;
//! - what a reader accepts survives what the program then does with it (pricing, model
//!   composition, exports, comparison) and every CSV it exports is spreadsheet-safe: no text
//!   cell starts with `= + - @`, tab or CR;
//! - `kernels.csv` rows that were read are written back and read again unchanged;
//! - reading a result folder changes none of its files.
//!
//! The functions panic when an invariant breaks (that is what a fuzzer reports) and return
//! whether the reader accepted the input.

use std::path::Path;

use crate::catalog::table::Source;
use crate::catalog::Catalog;
use crate::compose;
use crate::error::{Error, EXIT_BAD_INPUT};
use crate::model::{self, ModelPresets, Phase};
use crate::results::{self, csv_cells};
use crate::shape::{AttentionShape, DType, MatmulShape};

/// The path the in-memory readers put in their messages.
const INPUT: &str = "fuzz/input.csv";

/// A refusal must be a located, printable, bad-input error.
pub fn check_error(e: &Error, path: Option<&Path>) {
    assert_eq!(
        e.exit_code(),
        EXIT_BAD_INPUT,
        "not a bad-input error: {e:?}"
    );
    match e {
        Error::BadFile {
            path: p,
            line,
            column,
            what,
            fix,
        } => {
            assert!(*line >= 1 && *column >= 1, "no place: {e:?}");
            assert!(!what.is_empty() && !fix.is_empty(), "no what or fix: {e:?}");
            if let Some(path) = path {
                assert_eq!(p, path, "names another file: {e:?}");
            }
        }
        Error::BadInput { what, fix } => {
            assert!(!what.is_empty() && !fix.is_empty(), "no what or fix: {e:?}")
        }
        Error::Io { .. } => {}
        other => panic!("a reader failed with {other:?}"),
    }
    let p = e.paragraph();
    assert!(
        !p.chars().any(char::is_control),
        "control character in the message: {p:?}"
    );
}

/// Every cell of `csv` that starts with a formula trigger is a number.
pub fn assert_csv_safe(csv: &str) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    for rec in reader.records() {
        let rec = rec.expect("our own CSV parses");
        for cell in rec.iter() {
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                assert!(
                    cell.parse::<f64>().is_ok(),
                    "formula trigger in an exported text cell: {cell:?}\n{csv}"
                );
            }
        }
    }
}

/// Splits `data` at the first `sep` byte.
fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The catalog readers: the first byte chooses replace or extend and which files are given;
/// the rest is the instance file, then (after a 0 byte) the accelerator file.
pub fn catalog(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let (inst, acc) = split(rest, 0);
    let inst_path = Path::new("fuzz/instances.csv");
    let acc_path = Path::new("fuzz/accelerators.csv");
    let inst_src = (mode & 2 == 0).then_some(Source {
        path: inst_path,
        bytes: inst,
    });
    let acc_src = (mode & 4 == 0 && !acc.is_empty()).then_some(Source {
        path: acc_path,
        bytes: acc,
    });
    let catalog = match Catalog::from_sources(inst_src, acc_src, mode & 1 == 1) {
        Ok(c) => c,
        Err(e) => {
            match &e {
                Error::BadFile { path, .. } => assert!(
                    path == inst_path
                        || path == acc_path
                        || path.to_string_lossy().starts_with("<built-in>"),
                    "{e:?}"
                ),
                _ => panic!("catalog refusal without a place: {e:?}"),
            }
            check_error(&e, None);
            return false;
        }
    };
    // Everything the commands do with a catalog.
    let rows = catalog
        .prices(None, None)
        .expect("an accepted catalog lists");
    assert_csv_safe(&crate::report::prices_csv(&rows));
    let _ = crate::report::prices_table(&rows);
    for a in catalog.accelerators() {
        let offers = catalog.offerings_for(&a.name);
        for o in &offers {
            assert!(
                o.usd_per_accelerator_hour.is_finite() && o.usd_per_accelerator_hour > 0.0,
                "{o:?}"
            );
        }
        let _ = catalog.match_adapter(&a.name, false);
        let _ = catalog.match_adapter(&a.name, true);
        for p in &a.adapter_name_patterns {
            let _ = catalog.match_adapter(p, false);
        }
        let _ = catalog.prices(Some(&a.name), None);
    }
    for i in catalog.instances() {
        let _ = catalog.offerings_for_instance(&i.instance);
        let _ = catalog.prices(None, Some(&i.provider));
    }
    for v in [1, 3, 64, u32::MAX] {
        for o in catalog.cpu_offerings(v) {
            assert!(o.usd_per_accelerator_hour.is_finite(), "{o:?}");
        }
    }
    true
}

/// The model preset reader, then every op list and size the run derives from a preset,
/// at small, maximal and overflowing phases.
pub fn models(data: &[u8]) -> bool {
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let path = Path::new(INPUT);
    let src = Source { path, bytes: rest };
    let presets = match ModelPresets::from_sources(Some(src), mode & 1 == 1) {
        Ok(p) => p,
        Err(e) => {
            check_error(&e, None);
            return false;
        }
    };
    for m in presets.all() {
        let _ = m.total_params();
        for dtype in [DType::F32, DType::F16] {
            let _ = model::weight_bytes(m, dtype);
            let _ = model::kv_cache_bytes(m, u32::MAX, u32::MAX, dtype);
        }
        let phases = [
            Phase::Prefill {
                batch: 1,
                prompt_len: m.max_context.min(16),
            },
            Phase::Decode {
                batch: 1,
                context_len: m.max_context,
            },
            Phase::Prefill {
                batch: u32::MAX,
                prompt_len: m.max_context,
            },
            Phase::Decode {
                batch: 0,
                context_len: 1,
            },
        ];
        for phase in phases {
            for r in [model::layer_ops(m, phase), model::head_ops(m, phase)] {
                match r {
                    Ok(ops) => {
                        for op in ops {
                            let _ = (op.flops(), op.bytes(DType::F32), op.shape_text());
                        }
                    }
                    Err(e) => check_error(&e, None),
                }
            }
            for r in [
                model::pass_flops(m, phase),
                model::pass_bytes(m, phase, DType::F16),
            ] {
                if let Err(e) = r {
                    check_error(&e, None);
                }
            }
        }
        let specs = [
            (m.name.clone(), 1, 8, 4),
            (m.name.clone(), u32::MAX, u32::MAX, u32::MAX),
        ];
        match compose::model_runs(&presets, &specs, DType::F32, Some(1 << 30)) {
            Ok((runs, _)) => {
                if let Err(e) = compose::benchmarks(&runs) {
                    check_error(&e, None);
                }
            }
            Err(e) => check_error(&e, None),
        }
    }
    true
}

/// `kernels.csv`: read, then written back and read again unchanged, composed into token
/// rates, and exported spreadsheet-safe.
pub fn kernel_rows(data: &[u8]) -> bool {
    let path = Path::new("fuzz/kernels.csv");
    let text = String::from_utf8_lossy(data);
    let rows = match results::parse_kernel_rows(path, &text) {
        Ok(rows) => rows,
        Err(e) => {
            check_error(&e, Some(path));
            return false;
        }
    };
    let written = csv_cells::encode(&rows, true);
    assert_csv_safe(&written);
    let again = results::parse_kernel_rows(path, &written)
        .unwrap_or_else(|e| panic!("our own kernels.csv does not read back: {e}\n{written}"));
    assert_eq!(
        again, rows,
        "kernels.csv changed in a write and read\n{written}"
    );
    let _ = crate::report::kernel_table(&rows);
    for r in &rows {
        let _ = crate::report::kernel_line(r);
    }
    // Composition of whatever the rows claim, for a small preset.
    let presets = ModelPresets::load_default().expect("built-in presets");
    let specs = [("gpt2".to_string(), 1, 8, 4)];
    if let Ok((runs, _)) = compose::model_runs(&presets, &specs, DType::F32, None) {
        let (tokens, _) = compose::token_rates(&runs, &rows);
        for t in &tokens {
            assert!(t.tokens_per_s.is_finite() && t.tokens_per_s > 0.0, "{t:?}");
        }
    }
    true
}

/// A whole result folder (run.json, kernels.csv, tokens.csv, costs.csv, samples.jsonl, in
/// that order, separated by 0 bytes) written to `dir` and read as `compare`, `merge` and
/// `export` read it, then merged into `dir/merged`, which must read back. The files must not
/// change. `dir` is emptied first.
pub fn result_folder(data: &[u8], dir: &Path) -> bool {
    const NAMES: [&str; 5] = [
        "run.json",
        "kernels.csv",
        "tokens.csv",
        "costs.csv",
        "samples.jsonl",
    ];
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).expect("create the fuzz folder");
    let mut rest = data;
    let mut files = Vec::new();
    for name in NAMES {
        if rest.is_empty() {
            break;
        }
        let (part, tail) = split(rest, 0);
        std::fs::write(dir.join(name), part).expect("write a fuzz file");
        files.push((dir.join(name), part.to_vec()));
        rest = tail;
    }
    let result = crate::dataset::load(dir);
    for (p, bytes) in &files {
        assert_eq!(
            &std::fs::read(p).expect("read back"),
            bytes,
            "{} changed",
            p.display()
        );
    }
    let runs = match result {
        Ok(r) => r,
        Err(e) => {
            if let Error::BadFile { path, .. } = &e {
                assert!(
                    path.starts_with(dir),
                    "names a file outside the folder: {e:?}"
                );
            }
            check_error(&e, None);
            return false;
        }
    };
    use crate::export;
    for sheet in [
        export::kernels_sheet(&runs),
        export::tokens_sheet(&runs),
        export::costs_sheet(&runs),
    ] {
        assert_csv_safe(&sheet.to_csv(false));
        assert_csv_safe(&sheet.to_csv(true));
        let _ = sheet.to_json_rows();
    }
    let _ = export::json_document(&runs);
    let _ = export::jsonl(&runs);
    let _ = export::markdown(&runs);
    for r in [
        export::bmf(&runs).map(|_| ()),
        export::gab(&runs).map(|_| ()),
    ] {
        if let Err(e) = r {
            check_error(&e, None);
        }
    }
    let dir_text = dir.to_string_lossy();
    match crate::compare::compare(
        &dir_text,
        &runs,
        &dir_text,
        &runs,
        &crate::compare::Options::default(),
    ) {
        Ok(c) => {
            let _ = crate::compare::render_table(&c);
            let _ = crate::compare::render_markdown(&c);
            let _ = crate::compare::render_json(&c);
        }
        Err(e) => check_error(&e, None),
    }
    // A merge of what was read writes a folder that reads back.
    let plan = crate::merge::plan(&[dir.to_path_buf()], runs);
    let out = dir.join("merged");
    let _ = plan.report.summary(&out);
    if let Err(e) = crate::merge::write(&plan, &out) {
        panic!("merging an accepted folder failed: {e:?}");
    }
    if let Err(e) = crate::dataset::load(&out) {
        panic!("a merged folder does not read back: {e}");
    }
    true
}

/// `run.json` alone.
pub fn run_info(data: &[u8]) -> bool {
    let path = Path::new("fuzz/run.json");
    match crate::runner::parse_run_info(path, &String::from_utf8_lossy(data)) {
        Ok(_) => true,
        Err(e) => {
            check_error(&e, Some(path));
            false
        }
    }
}

/// A `compare --thresholds` file, then matching keys against it.
pub fn thresholds(data: &[u8]) -> bool {
    let path = Path::new("fuzz/thresholds.txt");
    match crate::compare::Thresholds::parse(path, &String::from_utf8_lossy(data)) {
        Ok(t) => {
            let key = crate::dataset::NaturalKey {
                benchmark: "matmul/f32/m=8,n=8,k=8".into(),
                variant: "naive".into(),
                shape: "m=8,n=8,k=8".into(),
                dtype: "f32".into(),
                adapter: "x".into(),
                driver: "y".into(),
            };
            if let Some(p) = t.for_key(&key) {
                assert!(p.is_finite() && p >= 0.0, "threshold {p}");
            }
            true
        }
        Err(e) => {
            check_error(&e, Some(path));
            false
        }
    }
}

/// The shape parsers (matmul and attention) and, for accepted shapes, the FLOP and byte
/// counts, which must not overflow; a parsed shape prints back as itself.
pub fn shape(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data);
    let mut accepted = false;
    match text.parse::<MatmulShape>() {
        Ok(s) => {
            accepted = true;
            let _ = (
                s.flops(),
                s.bytes(DType::F32),
                s.a_len(),
                s.b_len(),
                s.c_len(),
            );
            assert_eq!(s.to_string().parse::<MatmulShape>().ok(), Some(s));
        }
        Err(e) => check_error(&e, None),
    }
    match text.parse::<AttentionShape>() {
        Ok(s) => {
            accepted = true;
            let _ = (s.flops(), s.bytes(DType::F16));
            assert_eq!(s.to_string().parse::<AttentionShape>().ok(), Some(s));
        }
        Err(e) => check_error(&e, None),
    }
    for kernel in ["matmul", "attention", "rmsnorm", "rope", "bogus"] {
        match crate::suite::Op::parse(kernel, &text) {
            Ok(_) => accepted = true,
            Err(e) => check_error(&e, None),
        }
    }
    accepted
}
