//! Hostile and careless input through the binary: every reader refuses a malformed file
//! with exit code 2 and one paragraph naming file:line:column and the fix, never panics, and
//! leaves what exists untouched; absurd numbers are refused with a clear message; text
//! that reaches a CSV export cannot run as a spreadsheet formula.
//!
//! None of these needs an adapter: `run` checks its arguments and user files before it
//! opens one.

mod result_fixtures;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use result_fixtures as fx;

/// Runs priceperf and checks the refusal: exit 2, one line `priceperf: error: ...` with no
/// control characters and no panic. Returns the message.
fn refused(args: &[&str]) -> String {
    let (code, _out, err) = fx::priceperf(args);
    assert_eq!(code, 2, "{args:?} exited {code}: {err}");
    assert!(
        !err.contains("panicked") && !err.contains("internal error"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "not one paragraph: {err}");
    let msg = lines[0];
    assert!(msg.starts_with("priceperf: error: "), "{msg}");
    assert!(
        !msg.chars().any(char::is_control),
        "control character: {msg:?}"
    );
    record(args, msg);
    msg.to_string()
}

/// With `PRICEPERF_BAD_INPUT_LOG=FILE`, append each refused input and its message as a
/// Markdown table row: the list of bad inputs tried, from the tests themselves
/// (`scripts/bad-inputs.sh` renders it to docs/bad-inputs.md).
fn record(args: &[&str], msg: &str) {
    let Some(path) = std::env::var_os("PRICEPERF_BAD_INPUT_LOG") else {
        return;
    };
    // Temporary folders differ per run; show them as TMP.
    let tmp = std::env::temp_dir().to_string_lossy().into_owned();
    let clean = |s: &str| {
        let s = s.replace('|', "\\|");
        match s.find(&tmp) {
            Some(_) => regex::Regex::new(&format!("{}/[^/ ]+", regex::escape(&tmp)))
                .unwrap()
                .replace_all(&s, "TMP")
                .into_owned(),
            None => s,
        }
    };
    let line = format!(
        "| `priceperf {}` | {} |\n",
        clean(&args.join(" ")),
        clean(msg.trim_start_matches("priceperf: error: "))
    );
    use std::io::Write as _;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(line.as_bytes()).unwrap();
}

/// `refused`, and the message names `place` (`file:line:column`) and contains `needle`.
fn refused_at(args: &[&str], place: &str, needle: &str) -> String {
    let msg = refused(args);
    assert!(msg.contains(place), "expected {place} in: {msg}");
    assert!(msg.contains(needle), "expected {needle:?} in: {msg}");
    msg
}

/// Every file below `dir` with its bytes, to check that nothing changed.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), fs::read(&p).unwrap());
            }
        }
    }
    out
}

const INSTANCES_HEADER: &str = "provider,instance,accelerator,accelerator_count,region,usd_per_hour_on_demand,usd_per_hour_spot,as_of,source";
const ACCELERATORS_HEADER: &str = "accelerator,vendor,kind,adapter_name_patterns,fp32_tflops,fp16_tensor_tflops,bf16_tensor_tflops,memory_gb,memory_bandwidth_gbs,tdp_w,launch_year,reachable_by_wgpu,source";

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let p = dir.join(name);
    fs::write(&p, bytes).unwrap();
    p.to_str().unwrap().to_string()
}

#[test]
fn catalog_files_are_refused_at_the_bad_cell() {
    let (_t, dir) = fx::tmp();
    let row = |cells: &str| format!("{INSTANCES_HEADER}\n{cells}\n");
    // (file text, line:column, what the message says)
    let cases: Vec<(String, &str, &str)> = vec![
        (
            row("AWS,x1,H100 SXM,1,us,-2,,2026-01-01,s"),
            "2:6",
            "is not above 0",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,NaN,,2026-01-01,s"),
            "2:6",
            "not a finite number",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,inf,,2026-01-01,s"),
            "2:6",
            "not a finite number",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,1e300,,2026-01-01,s"),
            "2:6",
            "implausibly large",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,0,,2026-01-01,s"),
            "2:6",
            "is not above 0",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,$2.50,,2026-01-01,s"),
            "2:6",
            "no currency sign",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,2,-0.5,2026-01-01,s"),
            "2:7",
            "is not above 0",
        ),
        (
            row("AWS,x1,H100 SXM,0,us,2,,2026-01-01,s"),
            "2:4",
            "below 1",
        ),
        (
            row("AWS,x1,H100 SXM,99999999999,us,2,,2026-01-01,s"),
            "2:4",
            "too large",
        ),
        (
            row("AWS,x1,H100 SXM,-8,us,2,,2026-01-01,s"),
            "2:4",
            "not a whole number",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,2,,2026-13-45,s"),
            "2:8",
            "not a date",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,2"),
            "2:7",
            "6 cells but the header has 9",
        ),
        (
            row("AWS,\"x1,H100 SXM,1,us,2,,2026-01-01,s"),
            "2:3",
            "quote cells",
        ),
        (
            row("AWS,x1,Quantum9000,1,us,2,,2026-01-01,s"),
            "2:3",
            "not in the accelerator spec file",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,2,,2026-01-01,s\nAWS,X1,h100 sxm,1,US,3,,2026-01-01,s"),
            "3:2",
            "listed twice (first on line 2)",
        ),
        (
            row("AWS,x1,H100 SXM,1,us,2,,2026-01-01,\"a\u{1b}[31mred\""),
            "2:9",
            "control character",
        ),
        (String::new(), "1:1", "is empty"),
        (
            "provider,instance,acelerator\n".into(),
            "1:3",
            "Did you mean `accelerator`?",
        ),
        (
            format!("{INSTANCES_HEADER},provider\n"),
            "1:10",
            "appears twice",
        ),
    ];
    for (i, (text, place, needle)) in cases.iter().enumerate() {
        let f = write(&dir, &format!("instances{i}.csv"), text.as_bytes());
        refused_at(
            &["prices", "--catalog", &f],
            &format!("{f}:{place}"),
            needle,
        );
        // The same file through `cost` and `run` (before any adapter is opened).
        refused_at(
            &[
                "cost",
                "--tokens-per-second",
                "100",
                "--accelerator",
                "H100 SXM",
                "--catalog",
                &f,
            ],
            &format!("{f}:{place}"),
            needle,
        );
    }
    // Bytes that are not UTF-8 (Latin-1 `ü`): the line and cell of the first bad byte.
    let bytes = [
        INSTANCES_HEADER.as_bytes(),
        b"\nAWS,x1,H100 SXM,1,us,2,,2026-01-01,M\xfcnchen\n",
    ]
    .concat();
    let f = write(&dir, "latin1.csv", &bytes);
    refused_at(&["prices", "--catalog", &f], &format!("{f}:2:9"), "UTF-8");

    // Accelerator specs.
    let acc = |cells: &str| format!("{ACCELERATORS_HEADER}\n{cells}\n");
    for (i, (text, place, needle)) in [
        (
            acc("Q,Acme,gpu,re:(unclosed,1,1,1,1,1,1,2025,true,s"),
            "2:4",
            "not a valid regex",
        ),
        (
            acc("Q,Acme,gpu,Q1,-5,1,1,1,1,1,2025,true,s"),
            "2:5",
            "is not above 0",
        ),
        (
            acc("Q,Acme,gpu,Q1,1e12,1,1,1,1,1,2025,true,s"),
            "2:5",
            "implausibly large",
        ),
        (
            acc("Q,Acme,tpu,Q1,1,1,1,1,1,1,2025,true,s"),
            "2:3",
            "gpu, cpu, asic",
        ),
        (
            acc("Q,Acme,gpu,Q1,1,1,1,1,1,1,1800,true,s"),
            "2:11",
            "below 1990",
        ),
        (
            acc("Q,Acme,gpu,Q1,1,1,1,1,1,1,2025,maybe,s"),
            "2:12",
            "true or false",
        ),
        (
            acc("Q,Acme,gpu,(TM),1,1,1,1,1,1,2025,true,s"),
            "2:4",
            "empty once trademark",
        ),
    ]
    .iter()
    .enumerate()
    {
        let f = write(&dir, &format!("acc{i}.csv"), text.as_bytes());
        refused_at(
            &[
                "cost",
                "--tokens-per-second",
                "1",
                "--accelerator",
                "H100 SXM",
                "--accelerators",
                &f,
            ],
            &format!("{f}:{place}"),
            needle,
        );
    }
    // Missing files and folders are bad input too, with what to check.
    let missing = dir.join("nope.csv");
    let msg = refused(&["prices", "--catalog", missing.to_str().unwrap()]);
    assert!(
        msg.contains("nope.csv") && msg.contains("readable"),
        "{msg}"
    );
    let msg = refused(&["prices", "--catalog", dir.to_str().unwrap()]);
    assert!(
        msg.contains("Is a directory") || msg.contains("directory"),
        "{msg}"
    );
}

const MODELS_HEADER: &str = "model,family,hidden_size,num_layers,num_attention_heads,num_kv_heads,head_dim,intermediate_size,mlp,norm,position_embedding,max_context,vocab_size,tied_embeddings,source";

#[test]
fn model_files_are_refused_before_anything_runs() {
    let (_t, dir) = fx::tmp();
    let out = dir.join("never-made");
    let row = |cells: &str| format!("{MODELS_HEADER}\n{cells}\n");
    for (i, (text, place, needle)) in [
        (row("m,llama,4096,32,32,8,100,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:7", "head_dim 100"),
        (row("m,llama,4096,32,32,8,16,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:7", "64, 80, 96, 128 or 256"),
        (row("m,llama,4096,32,32,8,128,14336,swiglu,rmsnorm,rope,8192,4000000000,false,s"), "2:13", "u32 indexing"),
        (row("m,llama,4000000000,32,32,8,128,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:3", "u32 indexing"),
        (row("m,llama,4096,1000000,32,8,128,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:4", "implausibly large"),
        (row("m,gpt2,65536,2,4,4,64,128,gelu,layernorm,learned,4000000,32000,false,s"), "2:12", "position table"),
        (row("m,llama,4096,32,32,12,128,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:6", "not a multiple"),
        (row("m,llama,4096,32,32,8,128,4294967296,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:8", "too large"),
        (row("m,llama,4096,32,32,0,128,14336,swiglu,rmsnorm,rope,8192,32000,false,s"), "2:6", "below 1"),
        (row("m,llama,4096,32,32,8,128,14336,moe,rmsnorm,rope,8192,32000,false,s"), "2:9", "swiglu, gelu"),
        (format!("{MODELS_HEADER},params_billion\nm,llama,4096,32,32,8,128,14336,swiglu,rmsnorm,rope,8192,32000,false,s,NaN\n"), "2:16", "not a finite number"),
    ]
    .iter()
    .enumerate()
    {
        let f = write(&dir, &format!("models{i}.csv"), text.as_bytes());
        refused_at(
            &["run", "--models-file", &f, "--model", "m", "--out", out.to_str().unwrap()],
            &format!("{f}:{place}"),
            needle,
        );
        assert!(!out.exists(), "a refused run made its folder");
    }
    // An unknown model is refused before the adapter opens, with the closest name.
    let msg = refused(&[
        "run",
        "--model",
        "lama-3.1-8b",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(msg.contains("llama-3.1-8b"), "{msg}");
    assert!(!out.exists());
    // So is an unknown instance, which the cost table at the end would otherwise refuse
    // after every benchmark had run.
    let msg = refused(&[
        "run",
        "--instance",
        "p5.48xlarg",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        msg.contains("unknown instance `p5.48xlarg`") && msg.contains("p5.48xlarge"),
        "{msg}"
    );
    assert!(!out.exists());
}

#[test]
fn absurd_numbers_on_the_command_line_are_refused() {
    let cost = |extra: &[&str]| {
        let mut args = vec!["cost"];
        args.extend_from_slice(extra);
        refused(&args)
    };
    for tps in ["0", "NaN", "-1", "inf", "-inf", "1e300", "1e-400"] {
        let flag = format!("--tokens-per-second={tps}");
        let msg = cost(&[&flag, "--price-per-hour", "2"]);
        assert!(
            msg.contains("--tokens-per-second") && msg.contains("above 0"),
            "{tps}: {msg}"
        );
    }
    for u in ["0", "1.5", "NaN", "-0.5", "inf"] {
        let msg = cost(&[
            "--tokens-per-second",
            "100",
            "--price-per-hour",
            "2",
            "--utilization",
            u,
        ]);
        assert!(msg.contains("outside (0, 1]"), "{u}: {msg}");
    }
    for p in ["-1", "0", "NaN", "inf"] {
        let msg = cost(&["--tokens-per-second", "100", "--price-per-hour", p]);
        assert!(msg.contains("not a finite number above 0"), "{p}: {msg}");
    }
    let msg = cost(&["--tokens-per-second", "100", "--price-per-hour", "1e300"]);
    assert!(
        msg.contains("--price-per-hour 1e300 is implausibly large"),
        "{msg}"
    );
    let msg = cost(&[
        "--tokens-per-second",
        "100",
        "--capex",
        "-5",
        "--watts",
        "300",
    ]);
    assert!(msg.contains("capex is -5"), "{msg}");
    let msg = cost(&[
        "--tokens-per-second",
        "100",
        "--capex",
        "5000",
        "--watts",
        "NaN",
    ]);
    assert!(msg.contains("power draw is NaN"), "{msg}");
    let msg = cost(&[
        "--tokens-per-second",
        "100",
        "--capex",
        "5000",
        "--watts",
        "300",
        "--pue",
        "0.5",
    ]);
    assert!(msg.contains("PUE 0.5"), "{msg}");
    // Seconds that Duration cannot hold used to panic.
    for (flag, v) in [
        ("--timeout", "1e300"),
        ("--timeout", "0"),
        ("--timeout", "NaN"),
        ("--measurement-time", "1e300"),
        ("--measurement-time", "inf"),
    ] {
        let msg = refused(&[
            "run",
            flag,
            v,
            "--kernel",
            "matmul",
            "--shape",
            "m=1,n=1,k=1",
        ]);
        assert!(
            msg.contains(flag) && msg.contains("seconds above 0"),
            "{msg}"
        );
    }
    // A value clap cannot parse is still exit 2 (clap's own message).
    let (code, _, err) = fx::priceperf(&["cost", "--tokens-per-second", "fast"]);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn shapes_beyond_u32_indexing_or_unsupported_are_refused() {
    let (_t, dir) = fx::tmp();
    let out = dir.join("never-made");
    let out = out.to_str().unwrap();
    for (kernel, shape, needle) in [
        (
            "matmul",
            "m=4294967295,n=4294967295,k=4294967295,batch=4294967295",
            "u32 indexing",
        ),
        ("matmul", "m=65536,n=65536,k=2", "u32 indexing"),
        ("matmul", "m=4294967296,n=1,k=1", "not a whole number"),
        ("matmul", "m=-1,n=1,k=1", "not a whole number"),
        ("matmul", "m=0,n=1,k=1", "m is 0"),
        ("matmul", "m=1,n=1", "`k` is missing"),
        ("matmul", "m=1,n=1,k=1,q=3", "unknown key `q`"),
        ("matmul", "m=1,n=1,k=1,transpose_b=2", "must be 0 or 1"),
        (
            "attention",
            "b=4294967295,hq=4294967295,sq=4294967295,d=256",
            "u32 indexing",
        ),
        ("attention", "hq=8,sq=16,d=100", "d=100 is not supported"),
        ("attention", "hq=8,hkv=3,sq=16,d=64", "not a multiple"),
        (
            "attention",
            "hq=8,sq=17,skv=16,d=64,causal=1",
            "sq must be at most skv",
        ),
        ("warp_drive", "m=1,n=1,k=1", "warp_drive"),
    ] {
        let msg = refused(&["run", "--kernel", kernel, "--shape", shape, "--out", out]);
        assert!(msg.contains(needle), "{kernel} {shape}: {msg}");
    }
    assert!(!Path::new(out).exists());
}

/// A valid run folder to break one file of.
fn good_run(dir: &Path) {
    let samples = fx::samples(1000.0, 0.05, 20, 1);
    let rows = vec![
        fx::measured(64, "naive", fx::LAVAPIPE, &samples),
        fx::failed(64, "tiled", fx::LAVAPIPE),
    ];
    fx::write_run(
        dir,
        &fx::info("run-1", "host", fx::LAVAPIPE),
        &rows,
        &[(0, samples)],
    );
    fx::add_token_and_cost_tables(dir);
}

#[test]
fn result_folders_are_refused_at_the_bad_cell_and_left_as_they_are() {
    let (_t, root) = fx::tmp();
    let good = root.join("good");
    good_run(&good);
    let kernels = fs::read_to_string(good.join("kernels.csv")).unwrap();
    // kernels.csv with cell `col` (0-based) of the first data row replaced.
    let with_cell = |col: usize, value: &str| -> String {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(kernels.as_bytes());
        let mut w = csv::Writer::from_writer(Vec::new());
        for (i, rec) in r.records().enumerate() {
            let mut cells: Vec<String> = rec.unwrap().iter().map(str::to_string).collect();
            if i == 1 {
                cells[col] = value.to_string();
            }
            w.write_record(&cells).unwrap();
        }
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    };
    // (file, new contents, line:column, needle)
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "kernels.csv",
            with_cell(10, "fast").into(),
            "2:11",
            "not a number",
        ),
        (
            "kernels.csv",
            with_cell(10, "-5").into(),
            "2:11",
            "not above 0",
        ),
        (
            "kernels.csv",
            with_cell(10, "0").into(),
            "2:11",
            "not above 0",
        ),
        (
            "kernels.csv",
            with_cell(10, "NaN").into(),
            "2:11",
            "not a number",
        ),
        (
            "kernels.csv",
            with_cell(15, "-1").into(),
            "2:16",
            "not 0 or more",
        ),
        (
            "kernels.csv",
            with_cell(13, "-2").into(),
            "2:14",
            "not a whole number",
        ),
        (
            "kernels.csv",
            with_cell(3, "bf16").into(),
            "2:4",
            "unknown dtype",
        ),
        (
            "kernels.csv",
            with_cell(20, "great").into(),
            "2:21",
            "status `great`",
        ),
        (
            "kernels.csv",
            with_cell(18, "yes").into(),
            "2:19",
            "not true or false",
        ),
        (
            "kernels.csv",
            with_cell(8, "sundial").into(),
            "2:9",
            "not device or wall",
        ),
        (
            "kernels.csv",
            kernels.replacen("median_ns", "median", 1).into(),
            "1:11",
            "expected column `median_ns`",
        ),
        (
            "kernels.csv",
            format!("{kernels}a,b,c\n").into(),
            "4:1",
            "malformed CSV",
        ),
        (
            "kernels.csv",
            [kernels.as_bytes(), b"\xff\xfe\n"].concat(),
            "4:1",
            "not UTF-8",
        ),
        (
            "run.json",
            b"{\"schema_version\": 1,\n \"run_id\": 7}".to_vec(),
            "run.json:2:",
            "not a priceperf run.json",
        ),
        (
            "run.json",
            b"".to_vec(),
            "run.json:1:",
            "not a priceperf run.json",
        ),
        (
            "tokens.csv",
            b"model,tokens_per_s\nllama,1,2\n".to_vec(),
            "tokens.csv:2:3",
            "3 cells",
        ),
        (
            "samples.jsonl",
            b"{oops\n{\"also\": \"bad\"}\n".to_vec(),
            "samples.jsonl:1:",
            "not a samples line",
        ),
    ];
    for (i, (file, bytes, place, needle)) in cases.iter().enumerate() {
        let dir = root.join(format!("case{i}"));
        good_run(&dir);
        fs::write(dir.join(file), bytes).unwrap();
        let before = snapshot(&dir);
        let d = dir.to_str().unwrap();
        let g = good.to_str().unwrap();
        let merged = root.join(format!("merged{i}"));
        for args in [
            vec!["compare", g, d],
            vec!["compare", d, g],
            vec!["export", d, "--format", "csv"],
            vec!["export", d, "--format", "bmf"],
            vec!["merge", g, d, "--out", merged.to_str().unwrap()],
        ] {
            let msg = refused(&args);
            assert!(
                msg.contains(&format!("{}", dir.join(file).display())) || msg.contains(place),
                "{args:?}: {msg}"
            );
            assert!(
                msg.contains(place) && msg.contains(needle),
                "{args:?}: expected {place} {needle:?} in {msg}"
            );
        }
        assert_eq!(
            snapshot(&dir),
            before,
            "a refused read changed {}",
            dir.display()
        );
        assert!(
            !merged.exists(),
            "a refused merge left {}",
            merged.display()
        );
    }
}

/// `run --resume` over a damaged kernels.csv refuses before it opens an adapter, takes a
/// lock or writes anything.
#[test]
fn resume_refuses_a_damaged_folder_and_leaves_it_alone() {
    let (_t, root) = fx::tmp();
    let dir = root.join("run");
    good_run(&dir);
    let kernels = dir.join("kernels.csv");
    let text = fs::read_to_string(&kernels).unwrap();
    fs::write(&kernels, format!("{text}matmul/f32/m=1,n=1,k=1,matmul\n")).unwrap();
    let before = snapshot(&dir);
    let d = dir.to_str().unwrap();
    let k = kernels.to_str().unwrap();
    refused_at(
        &[
            "run",
            "--resume",
            "--out",
            d,
            "--kernel",
            "matmul",
            "--shape",
            "m=4,n=4,k=4",
        ],
        &format!("{k}:4:1"),
        "malformed CSV",
    );
    assert_eq!(
        snapshot(&dir),
        before,
        "the refused resume changed the folder"
    );
}

#[test]
fn thresholds_files_are_refused_at_the_bad_place() {
    let (_t, root) = fx::tmp();
    let good = root.join("good");
    good_run(&good);
    let g = good.to_str().unwrap();
    for (i, (text, place, needle)) in [
        (
            "25 ^matmul\nfast ^attention\n",
            "2:1",
            "`fast` is not a percentage",
        ),
        ("-5 .*\n", "1:1", "`-5` is not a percentage"),
        ("NaN .*\n", "1:1", "not a percentage"),
        ("  10 (unclosed\n", "1:6", "not a regular expression"),
        ("# comment\n10\n", "2:", "regular expression is missing"),
        ("\u{1b}[31m .*\n", "1:1", "\\u{1b}"),
    ]
    .iter()
    .enumerate()
    {
        let f = write(&root, &format!("thresholds{i}.txt"), text.as_bytes());
        refused_at(
            &["compare", g, g, "--thresholds", &f],
            &format!("{f}:{place}"),
            needle,
        );
    }
    let msg = refused(&["compare", g, g, "--threshold", "-5"]);
    assert!(msg.contains("--threshold -5"), "{msg}");
}

/// Text a hostile catalog or result folder carries comes out of every CSV export as text:
/// a leading `= + - @`, tab or CR gets a `'`, numbers stay numbers.
#[test]
fn formula_injection_is_neutralised_in_every_csv_export() {
    let (_t, root) = fx::tmp();
    let evil = [
        "=HYPERLINK(\"http://x\",\"y\")",
        "+cmd",
        "-2+3",
        "@SUM(A1)",
        "\tx",
        "\rx",
    ];
    let unsafe_cell = |cell: &str| {
        cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.parse::<f64>().is_err()
    };
    let check = |csv: &str, what: &str| {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
        let mut escaped = 0;
        for rec in r.records() {
            for cell in rec.unwrap().iter() {
                assert!(!unsafe_cell(cell), "{what}: formula cell {cell:?}\n{csv}");
                escaped += usize::from(cell.starts_with('\'') && unsafe_cell(&cell[1..]));
            }
        }
        assert!(
            escaped > 0,
            "{what}: nothing hostile reached the export\n{csv}"
        );
    };

    // The catalog: prices --format csv.
    // (A catalog cell cannot hold a tab or CR at all: control characters are refused.)
    let quoted = |e: &str| format!("\"{}\"", e.replace('"', "\"\""));
    let catalog = |accelerator: &str| {
        let rows: Vec<String> = evil
            .iter()
            .filter(|e| !e.starts_with(['\t', '\r']))
            .enumerate()
            .map(|(i, e)| {
                let e = quoted(e);
                format!("{e},inst{i},{accelerator},1,{e},2,,2026-01-01,{e}")
            })
            .collect();
        format!("{INSTANCES_HEADER}\n{}\n", rows.join("\n"))
    };
    let cat = write(&root, "evil.csv", catalog("H100 SXM").as_bytes());
    let (code, out, err) = fx::priceperf(&["prices", "--catalog", &cat, "--format", "csv"]);
    assert_eq!(code, 0, "{err}");
    check(&out, "prices");

    // cost --format csv over hostile offerings of a hostile accelerator.
    let cat = write(&root, "evil2.csv", catalog("=EVIL").as_bytes());
    let acc = write(
        &root,
        "evil-acc.csv",
        format!(
            "{ACCELERATORS_HEADER}\n=EVIL,@vendor,gpu,Evil GPU,1,2,2,8,100,50,2025,true,+src\n"
        )
        .as_bytes(),
    );
    let (code, out, err) = fx::priceperf(&[
        "cost",
        "--tokens-per-second",
        "100",
        "--accelerator",
        "=EVIL",
        "--catalog",
        &cat,
        "--accelerators",
        &acc,
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    check(&out, "cost");
    // prices reads the user's accelerator file too (it refused the catalog's own
    // accelerator before: "not in the accelerator spec file").
    let (code, out, err) = fx::priceperf(&[
        "prices",
        "--catalog",
        &cat,
        "--accelerators",
        &acc,
        "--format",
        "csv",
    ]);
    assert_eq!(code, 0, "{err}");
    check(&out, "prices");

    // A result folder whose text cells are hostile: export csv (every table) and merge.
    let dir = root.join("run");
    let samples = fx::samples(1000.0, 0.05, 20, 1);
    let mut rows = vec![fx::measured(64, "naive", fx::LAVAPIPE, &samples)];
    for (i, e) in evil.iter().enumerate() {
        let mut r = fx::failed(8 + i as u32, e, e);
        r.note = e.to_string();
        r.driver = e.to_string();
        rows.push(r);
    }
    let mut info = fx::info("=run", "@host", fx::LAVAPIPE);
    info.adapter.name = "-adapter".into();
    fx::write_run(&dir, &info, &rows, &[]);
    fx::add_token_and_cost_tables(&dir);
    let d = dir.to_str().unwrap();
    for table in ["kernels", "tokens", "costs"] {
        let (code, out, err) = fx::priceperf(&["export", d, "--format", "csv", "--table", table]);
        assert_eq!(code, 0, "{err}");
        check(&out, table);
    }
    let merged = root.join("merged");
    let (code, _, err) = fx::priceperf(&["merge", d, "--out", merged.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let mut found = 0;
    for (p, bytes) in snapshot(&merged) {
        if p.extension().is_some_and(|e| e == "csv") {
            let text = String::from_utf8(bytes).unwrap();
            if text.contains("'=") || text.contains("'@") {
                check(&text, &p.display().to_string());
                found += 1;
            }
        }
    }
    assert!(
        found > 0,
        "the merge wrote no kernels.csv with the hostile text"
    );
}

/// A run.json is data: its run id cannot move a folder outside `runs/` when `cargo bench`
/// archives the previous `results/latest`.
#[test]
fn an_archived_folder_stays_inside_runs() {
    let (_t, root) = fx::tmp();
    for id in ["../../escaped", "/tmp/absolute", "..", ""] {
        let latest = root.join("results/latest");
        good_run(&latest);
        let mut info: serde_json::Value =
            serde_json::from_slice(&fs::read(latest.join("run.json")).unwrap()).unwrap();
        info["run_id"] = id.into();
        fs::write(latest.join("run.json"), serde_json::to_vec(&info).unwrap()).unwrap();
        let moved = priceperf::runner::archive_folder(&latest).unwrap();
        assert_eq!(
            moved.parent().unwrap(),
            root.join("results/runs"),
            "{id:?} -> {}",
            moved.display()
        );
        assert!(moved.join("kernels.csv").is_file());
        assert!(!latest.exists());
    }
    assert!(!root.join("escaped").exists());
}
