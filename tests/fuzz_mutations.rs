//! The fuzz targets of `fuzz/` as plain tests on stable Rust: each reader is fed seeded
//! mutations of valid inputs (bit flips, byte edits, hostile tokens such as `NaN`, `1e309`,
//! `4294967296`, `=cmd`, escape sequences and bare quotes, splices and truncations) for a
//! bounded number of iterations, and `priceperf::fuzzing` checks the invariants (no panic,
//! located bad-input errors, round trips, spreadsheet-safe exports, folders unchanged).
//!
//! `PRICEPERF_FUZZ_ITERS=N` multiplies the iterations (scripts/fuzz.sh uses it when
//! cargo-fuzz cannot run); `PRICEPERF_FUZZ_SEED` changes the seed. A failure prints the
//! seed and iteration, and the input in Rust escape form, to replay it.
//!
//! `cargo test --test fuzz_mutations -- --ignored write_fuzz_seeds` writes the seed inputs
//! into `fuzz/corpus/<target>/` for cargo-fuzz.

mod result_fixtures;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use priceperf::fuzzing;
use priceperf::results::{self, csv_cells, KernelRow, Status};
use result_fixtures as fx;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Text a hostile or careless file holds.
const TOKENS: &[&str] = &[
    "NaN",
    "nan",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "-0",
    "1e-320",
    "1e300",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "99999999999999999999999",
    "0x10",
    "1_000",
    "$2.50",
    "=cmd|' /C calc'!A0",
    "+1",
    "-2+3",
    "@SUM(A1)",
    "\t",
    "\r",
    "\r\n",
    "\n",
    ",",
    ",,,,",
    "\"",
    "\"\"",
    "\"a,b\"",
    "'",
    "'=",
    "\u{feff}",
    "\u{1b}[31m",
    "\u{202e}",
    "\0",
    "\u{ff}",
    "é",
    "re:(",
    "re:a{9999}{9999}",
    "re:.*",
    "|",
    "#",
    "true",
    "false",
    "TRUE",
    "yes",
    "2026-02-30",
    "2026-1-1",
    "9999-12-31",
    "m=",
    "k=4294967295",
    "batch=65536",
    "transpose_b=2",
    "d=100",
    "causal=1",
    "hq=0",
    "=",
    "%",
    "25%",
    "{",
    "}",
    "[",
    "]",
    ":",
    "null",
    "\"schema_version\":",
    "ok",
    "failed",
    "skipped",
    "device",
    "wall",
    "f16",
];

fn mutate(rng: &mut Rng, input: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = d.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = b",\"\n\r=-+@0 9.e'\t\x00\xff|#"[rng.below(18)];
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let i = rng.below(len + 1);
                d.splice(i..i, t.iter().copied());
            }
            3 if len > 0 => {
                // Replace one field-like run (between separators) with a token.
                let i = rng.below(len);
                let is_sep = |b: u8| matches!(b, b',' | b'\n' | b'=' | b':' | b' ');
                let start = d[..i].iter().rposition(|b| is_sep(*b)).map_or(0, |p| p + 1);
                let end = d[i..]
                    .iter()
                    .position(|b| is_sep(*b))
                    .map_or(len, |p| i + p);
                let t = TOKENS[rng.below(TOKENS.len())].as_bytes();
                d.splice(start..end, t.iter().copied());
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below((len - i).min(64)) + 1;
                d.drain(i..i + n);
            }
            5 if len > 0 => {
                // Duplicate a chunk (repeated rows, columns, keys).
                let i = rng.below(len);
                let n = rng.below((len - i).min(256)) + 1;
                let chunk = d[i..i + n].to_vec();
                let at = rng.below(len + 1);
                d.splice(at..at, chunk);
            }
            6 if len > 0 => d.truncate(rng.below(len)),
            7 if !seeds.is_empty() => {
                // Splice in part of another seed.
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = rng.below((other.len() - i).min(512)) + 1;
                    let at = rng.below(len + 1);
                    d.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            _ if len > 0 => {
                let i = rng.below(len);
                d.insert(i, rng.next() as u8);
            }
            _ => d.extend_from_slice(TOKENS[rng.below(TOKENS.len())].as_bytes()),
        }
    }
    d.truncate(1 << 16);
    d
}

fn scale() -> usize {
    std::env::var("PRICEPERF_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

fn base_seed() -> u64 {
    std::env::var("PRICEPERF_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED)
}

/// Runs `target` on every seed, then on `iters` x scale mutations; returns how many inputs
/// ran and how many the reader accepted. Panics (with the input) on the first broken
/// invariant.
fn fuzz(
    name: &str,
    seeds: &[Vec<u8>],
    iters: usize,
    target: impl Fn(&[u8]) -> bool,
) -> (usize, usize) {
    let run = |input: &[u8], what: &str| -> bool {
        match catch_unwind(AssertUnwindSafe(|| target(input))) {
            Ok(accepted) => accepted,
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "fuzz target {name} broke on {what}: {msg}\ninput: \"{}\"",
                    input.escape_ascii()
                );
            }
        }
    };
    let mut accepted = 0;
    for (i, s) in seeds.iter().enumerate() {
        accepted += usize::from(run(s, &format!("seed {i}")));
    }
    let seed = base_seed();
    let mut rng = Rng::new(seed ^ name.bytes().fold(0u64, |h, b| h.rotate_left(5) ^ b as u64));
    let total = iters * scale();
    let mut current = seeds.to_vec();
    for i in 0..total {
        let pick = rng.below(current.len());
        let input = mutate(&mut rng, &current[pick], seeds);
        let ok = run(
            &input,
            &format!("iteration {i} (PRICEPERF_FUZZ_SEED={seed})"),
        );
        accepted += usize::from(ok);
        // Accepted mutants become parents, so mutations stack up while still reaching past
        // the readers (a refused input's mutants would mostly be refused at the same place).
        if ok && input != current[pick] {
            if current.len() < 64 {
                current.push(input);
            } else {
                let j = rng.below(current.len());
                current[j] = input;
            }
        }
    }
    (seeds.len() + total, accepted)
}

// ---------------------------------------------------------------------------------------
// Seeds: valid inputs, built from the embedded data files and priceperf's own writers.

fn catalog_seeds() -> Vec<Vec<u8>> {
    let both = |mode: u8, inst: &str, acc: &str| {
        let mut v = vec![mode];
        v.extend_from_slice(inst.as_bytes());
        v.push(0);
        v.extend_from_slice(acc.as_bytes());
        v
    };
    let inst = priceperf::catalog::DEFAULT_INSTANCES_CSV;
    let acc = priceperf::catalog::DEFAULT_ACCELERATORS_CSV;
    let small_inst = "provider,instance,accelerator,accelerator_count,accelerator_memory_gb,vcpus,host_cpu,region,usd_per_hour_on_demand,usd_per_hour_spot,as_of,source\n\
        AWS,p5.48xlarge,H100 SXM,8,80,192,,us-east-1,55.04,20.99,2026-01-21,test\n\
        AWS,c7a.large,CPU,1,,2,AMD EPYC,us-east-1,0.1,,2026-01-21,test\n\
        Lab,box,Quark,1,,,,,3.5,1.25,,test\n";
    let small_acc = "accelerator,vendor,kind,adapter_name_patterns,fp32_tflops,fp16_tensor_tflops,bf16_tensor_tflops,memory_gb,memory_bandwidth_gbs,tdp_w,launch_year,reachable_by_wgpu,source\n\
        Quark,Acme,gpu,Acme Quark|re:quark\\s*\\d+,10,100,100,24,900,300,2025,true,test\n";
    vec![
        both(1, inst, acc),
        both(0, small_inst, small_acc),
        both(
            1,
            small_inst,
            &format!("{acc}{}", small_acc.lines().nth(1).unwrap()),
        ),
        [&[4u8][..], small_inst.as_bytes()].concat(),
        vec![2],
    ]
}

fn models_seeds() -> Vec<Vec<u8>> {
    let m = priceperf::model::DEFAULT_MODELS_CSV;
    let header = m.lines().next().unwrap();
    let tiny = format!("{header}\ntiny,llama,64,2,4,2,64,128,swiglu,rmsnorm,rope,512,256,1000,false,,test\ntinygpt,gpt2,64,2,4,4,64,256,gelu,layernorm,learned,128,,500,true,0.001,test\n");
    vec![
        [&[1u8][..], m.as_bytes()].concat(),
        [&[0u8][..], tiny.as_bytes()].concat(),
    ]
}

fn kernel_rows() -> Vec<KernelRow> {
    let samples = fx::samples(1000.0, 0.05, 20, 7);
    let mut a = fx::measured(64, "tiled_4x4", fx::LAVAPIPE, &samples);
    a.chosen = true;
    a.note = "=cmd|' /C calc'!A0, \"quoted\"\nsecond line".into();
    let b = fx::failed(64, "naive", "'=weird adapter");
    let mut c = fx::blank(8, "reg_2x2", "-lead");
    c.status = Status::Timeout;
    // A row of every op family the composition looks for.
    let mut d = fx::measured(8, "naive", fx::GPU, &samples);
    d.kernel = "rmsnorm".into();
    d.shape = "rows=8,cols=768".into();
    d.benchmark = "rmsnorm/f32/rows=8,cols=768".into();
    d.pct_of_peak = Some(12.5);
    vec![a, b, c, d]
}

fn kernel_rows_seeds() -> Vec<Vec<u8>> {
    let rows = kernel_rows();
    vec![
        csv_cells::encode(&rows, true).into_bytes(),
        csv_cells::encode(&rows[..1], true).into_bytes(),
        csv_cells::encode::<KernelRow>(&[], true).into_bytes(),
    ]
}

fn result_folder_seeds() -> Vec<Vec<u8>> {
    let info = serde_json::to_vec_pretty(&fx::info("run-1", "host-a", fx::LAVAPIPE)).unwrap();
    let rows = kernel_rows();
    let samples = fx::samples(1000.0, 0.05, 20, 7);
    let line = priceperf::history::SampleLine::new(&rows[0], &samples);
    let jsonl = format!("{}\n", serde_json::to_string(&line).unwrap());
    let join = |parts: &[&[u8]]| parts.join(&0u8);
    let kernels = csv_cells::encode(&rows, true);
    vec![
        join(&[
            &info,
            kernels.as_bytes(),
            fx::TOKENS_CSV.as_bytes(),
            fx::COSTS_CSV.as_bytes(),
            jsonl.as_bytes(),
        ]),
        join(&[&info, kernels.as_bytes()]),
        info.clone(),
    ]
}

fn shape_seeds() -> Vec<Vec<u8>> {
    [
        "m=1000,n=333,k=77",
        "m=4,n=5,k=6,batch=3,transpose_b=1",
        "b=1,hq=32,hkv=8,sq=1000,skv=1000,d=128,causal=1",
        "hq=8,sq=1,skv=100,d=64,causal=1",
        "rows=8,cols=768",
        "rows=4,cols=256,head_dim=64,start_pos=3,seq_len=2",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn thresholds_seeds() -> Vec<Vec<u8>> {
    vec![
        b"# per-benchmark thresholds\n25 ^matmul/f32/.*/naive$\n  10%  attention/.*\n\n5 .*\n"
            .to_vec(),
    ]
}

// ---------------------------------------------------------------------------------------

#[test]
fn fuzz_catalog_readers() {
    let (n, ok) = fuzz("catalog", &catalog_seeds(), 400, fuzzing::catalog);
    eprintln!("catalog: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

#[test]
fn fuzz_model_reader() {
    let (n, ok) = fuzz("models", &models_seeds(), 1500, fuzzing::models);
    eprintln!("models: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

#[test]
fn fuzz_kernel_rows_reader() {
    let (n, ok) = fuzz(
        "kernel_rows",
        &kernel_rows_seeds(),
        3000,
        fuzzing::kernel_rows,
    );
    eprintln!("kernel_rows: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

#[test]
fn fuzz_result_folder_reader() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let (n, ok) = fuzz("result_folder", &result_folder_seeds(), 300, |d| {
        fuzzing::result_folder(d, &run)
    });
    eprintln!("result_folder: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

#[test]
fn fuzz_shape_parser() {
    let (n, ok) = fuzz("shape", &shape_seeds(), 5000, fuzzing::shape);
    eprintln!("shape: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

#[test]
fn fuzz_thresholds_reader() {
    let (n, ok) = fuzz("thresholds", &thresholds_seeds(), 1500, fuzzing::thresholds);
    eprintln!("thresholds: {n} inputs, {ok} accepted");
    assert!(ok > 0, "no input was accepted");
}

/// The seeds are valid inputs: each is accepted (so the mutations start from the readers'
/// happy path, not from a refusal).
#[test]
fn seeds_are_accepted() {
    let path = Path::new("seed/kernels.csv");
    for s in kernel_rows_seeds() {
        results::parse_kernel_rows(path, std::str::from_utf8(&s).unwrap()).unwrap();
    }
    let rows = kernel_rows();
    let text = csv_cells::encode(&rows, true);
    assert_eq!(results::parse_kernel_rows(path, &text).unwrap(), rows);
    for s in shape_seeds().iter().take(4) {
        let s = std::str::from_utf8(s).unwrap();
        assert!(
            s.parse::<priceperf::shape::MatmulShape>().is_ok()
                || s.parse::<priceperf::shape::AttentionShape>().is_ok(),
            "{s}"
        );
    }
}

/// Writes the seeds into fuzz/corpus/<target>/ for cargo-fuzz (scripts/fuzz.sh).
#[test]
#[ignore = "writes fuzz/corpus; run by scripts/fuzz.sh"]
fn write_fuzz_seeds() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (target, seeds) in [
        ("catalog", catalog_seeds()),
        ("models", models_seeds()),
        ("kernel_rows", kernel_rows_seeds()),
        ("result_folder", result_folder_seeds()),
        ("shape", shape_seeds()),
        ("thresholds", thresholds_seeds()),
    ] {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in seeds.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).unwrap();
        }
    }
}
