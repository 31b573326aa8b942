//! Attention on the real adapter: every variant against the f64 reference, over the shapes
//! where attention kernels go wrong (tails, GQA, causal with Sq != Skv, Skv = 1, decode,
//! fully masked rows, extreme logits), and the CLI's handling of bad shapes.
//!
//! Tests that need an adapter print a message and pass when none exists.

mod result_fixtures;
use std::process::Command;
use std::time::Duration;

use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{causal_shift, AttentionInputs, AttentionVariant};
use priceperf::kernels::PrepareError;
use priceperf::measure::run_and_read;
use priceperf::shape::{AttentionShape, DType};
use priceperf::verify::attention::Reference;

fn gpu() -> Option<Gpu> {
    match Gpu::open(None) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no adapter, skipping: {e}");
            None
        }
    }
}

fn shape(spec: &str) -> AttentionShape {
    spec.parse().unwrap()
}

/// Run `variant` on `inputs` and check it against the reference for `shift`; `None` when the
/// adapter cannot run it (the reason is printed).
fn check(
    gpu: &Gpu,
    variant: &AttentionVariant,
    s: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    shift: i32,
) -> Option<f64> {
    let program = match variant.prepare_with_shift(gpu, s, dtype, inputs, shift) {
        Ok(p) => p,
        Err(PrepareError::Unsupported(why)) => {
            eprintln!("{} {s} {dtype}: skipped ({why})", variant.name());
            return None;
        }
        Err(PrepareError::Failed(why)) => panic!("{} {s} {dtype}: {why}", variant.name()),
    };
    let out = run_and_read(gpu, &program, Duration::from_secs(300)).unwrap();
    let reference = Reference::with_shift(s, dtype, inputs, 7, shift);
    let verdict = reference.check(&out);
    assert!(
        verdict.passed,
        "{} {s} {dtype} shift={shift}: {}",
        variant.name(),
        verdict.failure.unwrap_or_default()
    );
    Some(verdict.max_err)
}

/// Check every variant the adapter can run at every shape. At least one must run at each,
/// or the test would pass having verified nothing there.
fn run_all(gpu: &Gpu, specs: &[&str], dtype: DType, variants: &[AttentionVariant]) {
    for spec in specs {
        let s = shape(spec);
        let inputs = AttentionInputs::random(&s, dtype, 11);
        let mut ran = 0;
        for v in variants {
            if let Some(err) = check(gpu, v, &s, dtype, &inputs, causal_shift(&s)) {
                eprintln!("{} {s} {dtype}: max error {err:.2e}", v.name());
                ran += 1;
            }
        }
        let names: Vec<String> = variants.iter().map(AttentionVariant::name).collect();
        assert!(ran > 0, "none of {names:?} ran at {s} {dtype}");
    }
}

/// The lavapipe variants (uniform windows, with and without shared lane loads): the ones
/// every head dim and dtype must reach.
fn ubo() -> Vec<AttentionVariant> {
    AttentionVariant::all()
        .into_iter()
        .filter(|v| matches!(v, AttentionVariant::Flash { kv, chunk: None, .. } if kv.uniform()))
        .collect()
}

/// The texture-fed decode variants: lavapipe's decode kernels.
fn decode_texture() -> Vec<AttentionVariant> {
    AttentionVariant::all()
        .into_iter()
        .filter(|v| matches!(v, AttentionVariant::DecodeTexture { .. }))
        .collect()
}

/// The decode variants that take every head dim and dtype at Sq = 1: the texture-fed ones
/// (lavapipe's) and the cooperative ones (the GPUs').
fn decode_kernels() -> Vec<AttentionVariant> {
    AttentionVariant::all()
        .into_iter()
        .filter(|v| {
            matches!(
                v,
                AttentionVariant::DecodeTexture { .. } | AttentionVariant::DecodeCoop { .. }
            )
        })
        .collect()
}

/// Decode timing cycles through copies of K and V, one pair per execution, so the KV cache
/// comes from memory as in a forward pass; prefill keeps one copy (its K and V were just
/// written). A copy staged wrong would change the answer of every execution that binds it:
/// run each decode program once per copy, and once more to come back to the first.
#[test]
fn every_copy_of_the_kv_cache_gives_the_same_answer() {
    use priceperf::kernels::attention::kv_copies;
    let Some(gpu) = gpu() else { return };
    let decode = shape("b=1,hq=4,hkv=2,sq=1,skv=37,d=64,causal=1");
    let prefill = shape("b=1,hq=4,hkv=2,sq=37,skv=37,d=64,causal=1");
    let copies = kv_copies(&decode, DType::F32);
    assert_eq!(
        copies as u64,
        priceperf::kernels::weights::MAX_WEIGHT_COPIES,
        "a few KB of KV cache: the most copies there are"
    );
    assert_eq!(kv_copies(&prefill, DType::F32), 1);
    let inputs = AttentionInputs::random(&decode, DType::F32, 5);
    let reference = Reference::with_shift(&decode, DType::F32, &inputs, 7, causal_shift(&decode));
    let mut ran = 0;
    for v in AttentionVariant::all() {
        let program = match v.prepare(&gpu, &decode, DType::F32, &inputs) {
            Ok(p) => p,
            Err(PrepareError::Unsupported(why)) => {
                eprintln!("{}: unsupported here ({why})", v.name());
                continue;
            }
            Err(PrepareError::Failed(why)) => panic!("{}: {why}", v.name()),
        };
        assert_eq!(program.copies(), copies, "{}", v.name());
        for execution in 0..=copies {
            let out = run_and_read(&gpu, &program, Duration::from_secs(300)).unwrap();
            let verdict = reference.check(&out);
            assert!(
                verdict.passed,
                "{} execution {execution}: {}",
                v.name(),
                verdict.failure.unwrap_or_default()
            );
        }
        ran += 1;
    }
    assert!(ran >= 3, "only {ran} variants ran");
    let prefill_inputs = AttentionInputs::random(&prefill, DType::F32, 5);
    for v in ubo() {
        if let Ok(p) = v.prepare(&gpu, &prefill, DType::F32, &prefill_inputs) {
            assert_eq!(p.copies(), 1, "{}", v.name());
        }
    }
}

#[test]
fn every_variant_verifies_on_awkward_shapes() {
    let Some(gpu) = gpu() else { return };
    run_all(
        &gpu,
        &[
            // Plain, tile-aligned.
            "b=1,hq=4,hkv=4,sq=64,skv=64,d=64,causal=0",
            // GQA 4:1, causal with Sq < Skv, tails everywhere, batch 2.
            "b=2,hq=8,hkv=2,sq=37,skv=101,d=64,causal=1",
            // MQA (8:1), causal square, a tail.
            "b=1,hq=8,hkv=1,sq=19,skv=19,d=64,causal=1",
            // Skv = 1.
            "b=1,hq=2,hkv=2,sq=1,skv=1,d=64,causal=1",
            "b=1,hq=2,hkv=1,sq=5,skv=1,d=64,causal=0",
            // Decode over several uniform windows and split chunks, with a tail.
            "b=2,hq=8,hkv=2,sq=1,skv=777,d=64,causal=1",
            // Decode over more windows than one dispatch binds (9 of 240 keys: a full and a
            // partly used dispatch per KV head).
            "b=1,hq=4,hkv=2,sq=1,skv=2000,d=64,causal=1",
            // Chunked prefill: a few queries over several windows.
            "b=1,hq=4,hkv=4,sq=3,skv=600,d=64,causal=1",
        ],
        DType::F32,
        &AttentionVariant::all(),
    );
    // Decode where rep·d caps the windows per dispatch (16·64 = 1024: one window per
    // dispatch, 3 dispatches per KV head, the last partly used); the decode kernels only, as
    // 16 query rows per KV head make the others slow to compile.
    let decode: Vec<AttentionVariant> = AttentionVariant::all()
        .into_iter()
        .filter(|v| {
            matches!(
                v,
                AttentionVariant::Decode { .. } | AttentionVariant::DecodeTexture { .. }
            )
        })
        .collect();
    // And short contexts, whose windows from several heads share a dispatch: 12 KV heads
    // of one window each (GQA, rep 2) in two dispatches of 6, the first crossing a batch.
    run_all(
        &gpu,
        &[
            "b=1,hq=16,hkv=1,sq=1,skv=600,d=64,causal=1",
            "b=3,hq=8,hkv=4,sq=1,skv=5,d=64,causal=1",
        ],
        DType::F32,
        &decode,
    );
}

#[test]
fn every_head_dim_verifies() {
    let Some(gpu) = gpu() else { return };
    let mut variants = ubo();
    variants.push(AttentionVariant::Naive);
    for d in [80, 96, 128, 256] {
        // Odd lengths: window starts are not aligned to the binding alignment.
        run_all(
            &gpu,
            &[&format!("b=1,hq=4,hkv=2,sq=33,skv=301,d={d},causal=1")],
            DType::F32,
            &variants,
        );
        run_all(
            &gpu,
            &[&format!("b=1,hq=4,hkv=2,sq=1,skv=301,d={d},causal=1")],
            DType::F32,
            &decode_kernels(),
        );
    }
}

#[test]
fn decode_texture_wraps_a_kv_cache_taller_than_a_texture() {
    let Some(gpu) = gpu() else { return };
    // More keys than the adapter's texture rows (16384 on lavapipe), so two keys share each
    // texture row: 2 KV heads x (max/2 + 8) keys, the second head starting mid-texture, and
    // an odd count (max + 3) whose last texture row is half filled.
    let max = gpu.limits().max_texture_dimension_2d;
    let mut dtypes = vec![DType::F32];
    if gpu.has_f16() {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        run_all(
            &gpu,
            &[
                &format!("b=1,hq=4,hkv=2,sq=1,skv={},d=64,causal=1", max / 2 + 8),
                &format!("b=1,hq=2,hkv=1,sq=1,skv={},d=64,causal=1", max + 3),
            ],
            dtype,
            &decode_texture(),
        );
    }
}

/// The decode kernel that gives a KV head's query heads one workgroup (`decode_coop_g_*`)
/// runs, and verifies, wherever heads share a KV head and the adapter has what the tile
/// needs: GQA ratios of 2, 3, 4 and 8 (where the heads' Q rows outnumber the lanes that
/// load them), with its heads' Q rows and partials at the right places (b = 2), in both
/// dtypes. `run_all` alone would pass with it skipped everywhere.
#[test]
fn kv_sharing_decode_runs_and_verifies_on_gqa_shapes() {
    let Some(gpu) = gpu() else { return };
    let shared: Vec<AttentionVariant> = AttentionVariant::all()
        .into_iter()
        .filter(|v| matches!(v, AttentionVariant::DecodeCoop { share_kv: true, .. }))
        .collect();
    assert!(!shared.is_empty());
    let mut dtypes = vec![DType::F32];
    if gpu.has_f16() {
        dtypes.push(DType::F16);
    }
    for dtype in dtypes {
        for spec in [
            "b=2,hq=8,hkv=2,sq=1,skv=777,d=64,causal=1",
            "b=1,hq=6,hkv=2,sq=1,skv=129,d=80,causal=0",
            "b=1,hq=16,hkv=4,sq=1,skv=300,d=128,causal=1",
            "b=1,hq=8,hkv=1,sq=1,skv=300,d=128,causal=1",
        ] {
            let s = shape(spec);
            let inputs = AttentionInputs::random(&s, dtype, 5);
            for v in &shared {
                let ran = check(&gpu, v, &s, dtype, &inputs, causal_shift(&s)).is_some();
                let AttentionVariant::DecodeCoop { key_lanes, .. } = *v else {
                    unreachable!()
                };
                let a = &gpu.summary;
                let fits = v.workgroup_bytes(&s, dtype)
                    <= gpu.limits().max_compute_workgroup_storage_size
                    && (key_lanes == 1 || (a.subgroups && a.subgroup_min_size >= key_lanes));
                assert!(ran || !fits, "{} did not run at {s} {dtype}", v.name());
            }
        }
    }
}

#[test]
fn f16_storage_verifies() {
    let Some(gpu) = gpu() else { return };
    if !gpu.has_f16() {
        eprintln!("adapter lacks SHADER_F16, skipping");
        return;
    }
    run_all(
        &gpu,
        &[
            "b=2,hq=8,hkv=2,sq=37,skv=101,d=64,causal=1",
            "b=1,hq=8,hkv=2,sq=1,skv=777,d=64,causal=1",
        ],
        DType::F16,
        &AttentionVariant::all(),
    );
    run_all(
        &gpu,
        // Q and O packed 8 halves per vec4<u32>: d = 80 has an odd count of vec4s per
        // packed row (10).
        &[
            "b=1,hq=4,hkv=2,sq=33,skv=301,d=128,causal=0",
            "b=1,hq=2,hkv=1,sq=19,skv=45,d=80,causal=1",
        ],
        DType::F16,
        &ubo(),
    );
    // d = 80 and 96: rows of 10 and 12 16-byte units, which 8 lanes a key split unevenly
    // and P·V groups leave lanes idle (decode_coop); d = 256: 32 units.
    run_all(
        &gpu,
        &[
            "b=1,hq=8,hkv=2,sq=1,skv=301,d=128,causal=0",
            "b=1,hq=4,hkv=2,sq=1,skv=301,d=80,causal=1",
            "b=1,hq=4,hkv=2,sq=1,skv=301,d=96,causal=1",
            "b=1,hq=4,hkv=2,sq=1,skv=301,d=256,causal=1",
        ],
        DType::F16,
        &decode_kernels(),
    );
}

#[test]
fn extreme_logits_stay_finite_and_correct() {
    let Some(gpu) = gpu() else { return };
    // x300: scores of several hundred (e^300 overflows f32 without the running max);
    // x1e-4: scores near 0, an almost uniform softmax. Prefill and decode.
    for (spec, factor) in [
        ("b=1,hq=4,hkv=2,sq=40,skv=70,d=64,causal=1", 300.0),
        ("b=1,hq=4,hkv=2,sq=40,skv=70,d=64,causal=1", 30.0),
        ("b=1,hq=4,hkv=2,sq=40,skv=70,d=64,causal=1", 1e-4),
        ("b=1,hq=4,hkv=2,sq=1,skv=70,d=64,causal=1", 300.0),
    ] {
        let s = shape(spec);
        for dtype in [DType::F32, DType::F16] {
            if dtype == DType::F16 && !gpu.has_f16() {
                continue;
            }
            let inputs = AttentionInputs::with_logit_scale(&s, dtype, 5, factor);
            for v in AttentionVariant::all() {
                check(&gpu, &v, &s, dtype, &inputs, causal_shift(&s));
            }
        }
    }
}

#[test]
fn fully_masked_rows_give_zero_not_nan() {
    let Some(gpu) = gpu() else { return };
    // Shift -5: causal query i sees keys 0 ..= i - 5, so queries 0..=4 see nothing. The
    // shapes `prepare` builds never have such rows (queries are aligned to the last keys and
    // causal with Sq > Skv is refused); this drives each kernel's guard directly.
    for (spec, shift) in [
        ("b=1,hq=4,hkv=2,sq=20,skv=20,d=64,causal=1", -5),
        ("b=1,hq=4,hkv=2,sq=3,skv=600,d=64,causal=1", -5),
        // Decode: the one query sees nothing, or only the first 101 of 300 keys (the split
        // chunks past them are skipped by the merge).
        ("b=1,hq=4,hkv=2,sq=1,skv=300,d=64,causal=1", -5),
        ("b=1,hq=4,hkv=2,sq=1,skv=300,d=64,causal=1", 100),
    ] {
        let s = shape(spec);
        let inputs = AttentionInputs::random(&s, DType::F32, 3);
        for v in AttentionVariant::all() {
            check(&gpu, &v, &s, DType::F32, &inputs, shift);
        }
    }
}

#[test]
fn naive_scores_are_quadratic_and_fused_state_linear() {
    let s = shape("b=1,hq=8,hkv=8,sq=1024,skv=1024,d=64,causal=1");
    assert_eq!(
        AttentionVariant::Naive.scratch_bytes(&s, DType::F32),
        32 << 20
    );
    for v in ubo() {
        assert_eq!(v.scratch_bytes(&s, DType::F32), 8 * 1024 * 68 * 4);
    }
}

fn priceperf(args: &[&str]) -> std::process::Output {
    result_fixtures::isolated(&mut Command::new(env!("CARGO_BIN_EXE_priceperf")))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

#[test]
fn bad_attention_shapes_exit_2_with_a_reason() {
    for (spec, needle) in [
        ("b=1,hq=8,sq=16,d=48", "d=48 is not supported"),
        ("b=1,hq=6,hkv=4,sq=16,d=64", "not a multiple of hkv"),
        (
            "b=1,hq=8,sq=17,skv=16,d=64,causal=1",
            "sq must be at most skv",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = priceperf(&[
            "run",
            "--kernel",
            "attention",
            "--shape",
            spec,
            "--out",
            dir.path().join("r").to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{spec}: {stderr}");
        assert!(stderr.contains(needle), "{spec}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn cli_runs_an_attention_shape() {
    if gpu().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("r");
    let out = priceperf(&[
        "run",
        "--kernel",
        "attention",
        "--shape",
        "b=1,hq=4,hkv=2,sq=1,skv=300,d=64,causal=1",
        // Rows and correctness are checked here, not speed: a shared 2-core machine that
        // also runs the other GPU tests must not turn a slow variant into a timeout row.
        "--timeout",
        "600",
        "--out",
        folder.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let csv = std::fs::read_to_string(folder.join("kernels.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), AttentionVariant::all().len(), "{csv}");
    assert!(rows.iter().all(|r| r.contains("attention")), "{csv}");
    assert!(!csv.contains(",failed,"), "{csv}");
}
