//! Elementwise kernels on the real adapter: every variant of every op against the f64
//! reference, f32 and (where the adapter has SHADER_F16) f16, with tails, long RoPE
//! positions, dispatches past 65535 workgroups, the model's own ops through `prepare_op`,
//! and the NaN-prefilled output failing when the kernel never runs. Skipped with a message
//! when there is no adapter.

use std::time::Duration;

use priceperf::gpu::Gpu;
use priceperf::kernels::elementwise::{
    prepare_op, Access, ElementwiseInputs, ElementwiseKind, ElementwiseShape, ElementwiseVariant,
    Method,
};
use priceperf::kernels::{HostTensor, PrepareError};
use priceperf::measure::{read_buffer, run_and_read, Timer};
use priceperf::model::{head_ops, layer_ops, ModelPresets, Op, Phase};
use priceperf::shape::DType;
use priceperf::verify::elementwise::check;

const TIMEOUT: Duration = Duration::from_secs(60);

fn gpu() -> Option<Gpu> {
    match Gpu::open(None) {
        Ok(gpu) => Some(gpu),
        Err(e) => {
            eprintln!("skipping: no GPU adapter ({e})");
            None
        }
    }
}

/// Prepare, run and check one variant; `None` when the variant does not apply.
fn verify(
    gpu: &Gpu,
    shape: &ElementwiseShape,
    variant: &ElementwiseVariant,
    dtype: DType,
) -> Option<f64> {
    let inputs = ElementwiseInputs::random(shape, dtype, 11);
    let program = match variant.prepare(gpu, shape, dtype, &inputs) {
        Ok(p) => p,
        Err(PrepareError::Unsupported(why)) => {
            eprintln!(
                "{} {} {shape} {dtype}: skipped: {why}",
                shape.kind,
                variant.name()
            );
            return None;
        }
        Err(PrepareError::Failed(why)) => panic!("{} {}: {why}", shape.kind, variant.name()),
    };
    let out = run_and_read(gpu, &program, TIMEOUT).expect("run");
    let v = check(shape, dtype, &inputs, &out, 11);
    assert!(
        v.passed,
        "{} {} {shape} {dtype}: {}",
        shape.kind,
        variant.name(),
        v.failure.unwrap_or_default()
    );
    if shape.len() <= 1 << 22 {
        assert_eq!(v.checked, shape.len());
    }
    Some(v.max_err / v.bound)
}

/// Small shapes for `kind`: an aligned one (both paths) and a ragged one (scalar only).
fn small_shapes(kind: ElementwiseKind) -> Vec<ElementwiseShape> {
    if kind == ElementwiseKind::Rope {
        vec![
            // 3 heads of 16; 7 rows = sequences of 3 starting at position 1000.
            ElementwiseShape::rope(7, 48, 16).at_positions(1000, 3),
            // head_dim 6: no vec4 path.
            ElementwiseShape::rope(5, 18, 6).at_positions(0, 5),
        ]
    } else {
        vec![
            ElementwiseShape::new(kind, 5, 36),
            ElementwiseShape::new(kind, 3, 37),
            // Wider than a 256-invocation workgroup's first sweep, with a tail.
            ElementwiseShape::new(kind, 2, 1100),
        ]
    }
}

const KINDS: [ElementwiseKind; 6] = [
    ElementwiseKind::RmsNorm,
    ElementwiseKind::LayerNorm,
    ElementwiseKind::Rope,
    ElementwiseKind::SiluMul,
    ElementwiseKind::Gelu,
    ElementwiseKind::Add,
];

fn every_variant(gpu: &Gpu, dtype: DType) {
    for kind in KINDS {
        for shape in small_shapes(kind) {
            let mut ran = 0;
            for variant in ElementwiseVariant::all(kind) {
                if let Some(ratio) = verify(gpu, &shape, &variant, dtype) {
                    eprintln!(
                        "{kind} {} {shape} {dtype}: max error {ratio:.3} of the bound",
                        variant.name()
                    );
                    ran += 1;
                }
            }
            // The scalar path runs every shape.
            assert!(ran >= 1, "{kind} {shape}: no variant ran");
            if kind != ElementwiseKind::Rope && shape.cols % 4 == 0 {
                let subgroups = gpu.device.features().contains(wgpu::Features::SUBGROUP);
                let expected = ElementwiseVariant::all(kind)
                    .iter()
                    .filter(|v| subgroups || v.method != Method::Subgroup)
                    .count();
                assert_eq!(ran, expected, "{kind} {shape}");
            }
        }
    }
}

#[test]
fn every_variant_verifies_f32() {
    let Some(gpu) = gpu() else { return };
    every_variant(&gpu, DType::F32);
}

#[test]
fn every_variant_verifies_f16() {
    let Some(gpu) = gpu() else { return };
    if !gpu.has_f16() {
        eprintln!("skipping: adapter lacks SHADER_F16");
        return;
    }
    every_variant(&gpu, DType::F16);
}

#[test]
fn vec4_on_ragged_rows_is_skipped_not_failed() {
    let Some(gpu) = gpu() else { return };
    let shape = ElementwiseShape::new(ElementwiseKind::Add, 2, 6);
    let inputs = ElementwiseInputs::random(&shape, DType::F32, 1);
    let err = ElementwiseVariant::new(Method::Map, Access::Vec4, 256)
        .prepare(&gpu, &shape, DType::F32, &inputs)
        .err()
        .expect("vec4 cannot run cols = 6");
    assert!(matches!(err, PrepareError::Unsupported(ref m) if m.contains("cols % 4")));
}

#[test]
fn rope_holds_the_tight_bound_at_long_positions() {
    let Some(gpu) = gpu() else { return };
    // Decode-like rows (one token each) deep into a long context, and near the 2^24 limit:
    // a plain f32 angle would be off by ~pos * 6e-8 rad here, far past the bound.
    for start in [131_071, (1 << 24) - 8] {
        let shape = ElementwiseShape::rope(4, 256, 128).at_positions(start, 4);
        for variant in ElementwiseVariant::all(ElementwiseKind::Rope) {
            let ratio = verify(&gpu, &shape, &variant, DType::F32).expect("applies");
            eprintln!(
                "rope {} at {start}: {ratio:.3} of the bound",
                variant.name()
            );
        }
    }
}

#[test]
fn dispatches_past_65535_workgroups_use_the_second_grid_dimension() {
    let Some(gpu) = gpu() else { return };
    // 70,000 rows: one workgroup each.
    let norm = ElementwiseShape::new(ElementwiseKind::RmsNorm, 70_000, 4);
    let variant = ElementwiseVariant::new(Method::Tree, Access::Vec4, 64);
    assert_eq!(variant.workgroups(&norm), [65535, 2, 1]);
    verify(&gpu, &norm, &variant, DType::F32).expect("applies");
    if gpu.device.features().contains(wgpu::Features::SUBGROUP) {
        let variant = ElementwiseVariant::new(Method::Subgroup, Access::Vec4, 8);
        verify(&gpu, &norm, &variant, DType::F32).expect("applies");
    }
    // 4100 x 1024 elements at 64 per workgroup: 65,600 workgroups.
    let add = ElementwiseShape::new(ElementwiseKind::Add, 4100, 1024);
    let variant = ElementwiseVariant::new(Method::Map, Access::Scalar, 64);
    assert_eq!(variant.workgroups(&add), [65535, 2, 1]);
    verify(&gpu, &add, &variant, DType::F32).expect("applies");
}

#[test]
fn an_output_the_kernel_never_wrote_fails() {
    let Some(gpu) = gpu() else { return };
    for kind in KINDS {
        let shape = small_shapes(kind)[0];
        let inputs = ElementwiseInputs::random(&shape, DType::F32, 2);
        let variant = ElementwiseVariant::default_for(&shape);
        let program = variant
            .prepare(&gpu, &shape, DType::F32, &inputs)
            .expect("prepare");
        // Read the output buffer without dispatching: it still holds the NaN prefill.
        let raw = read_buffer(&gpu, &program.output, shape.len() * 4, TIMEOUT).expect("read");
        let out = HostTensor::from_bytes(DType::F32, &raw);
        let v = check(&shape, DType::F32, &inputs, &out, 2);
        assert!(!v.passed, "{kind}");
        assert!(v.failure.unwrap().contains("never wrote"), "{kind}");
    }
}

/// Every elementwise op of a layer and the head of `model` in `phase`.
fn model_ops(model: &str, phase: Phase) -> Vec<Op> {
    let presets = ModelPresets::load_default().expect("presets");
    let preset = presets.get(model).expect("preset");
    let mut ops = layer_ops(preset, phase).expect("layer");
    ops.extend(head_ops(preset, phase).expect("head"));
    ops.retain(|op| matches!(op, Op::Elementwise { .. }));
    ops
}

#[test]
fn model_ops_verify_through_prepare_op() {
    let Some(gpu) = gpu() else { return };
    let cases = [
        (
            "gpt2",
            Phase::Decode {
                batch: 2,
                context_len: 64,
            },
        ),
        (
            "tinyllama-1.1b",
            Phase::Decode {
                batch: 1,
                context_len: 100,
            },
        ),
        (
            "llama-3.2-1b",
            Phase::Prefill {
                batch: 1,
                prompt_len: 3,
            },
        ),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (model, phase) in cases {
        for op in model_ops(model, phase) {
            for dtype in [DType::F32, DType::F16] {
                if dtype == DType::F16 && !gpu.has_f16() {
                    continue;
                }
                let (program, check) = prepare_op(&gpu, &op, dtype, 5).expect("prepare_op");
                let out = run_and_read(&gpu, &program, TIMEOUT).expect("run");
                let v = check(&out);
                assert!(
                    v.passed,
                    "{model} {phase} {} {dtype}: {}",
                    op.name(),
                    v.failure.unwrap_or_default()
                );
                kinds.insert(op.kernel());
            }
        }
    }
    // The three models cover every kind.
    assert_eq!(kinds.len(), 6, "{kinds:?}");

    let matmul = Op::Matmul {
        name: "q_proj",
        shape: priceperf::shape::MatmulShape::new(1, 8, 8),
    };
    assert!(matches!(
        prepare_op(&gpu, &matmul, DType::F32, 0),
        Err(PrepareError::Failed(m)) if m.contains("not an elementwise op")
    ));
}

/// Bandwidth of every variant at rows=512, cols=4096 f32 (RoPE: 32 heads of 128), from the
/// compulsory bytes of the model's op: `cargo test --release --test elementwise --
/// --ignored --nocapture`.
#[test]
#[ignore = "timing; run by hand"]
fn bandwidth_at_512_by_4096() {
    let Some(gpu) = gpu() else { return };
    let timer = Timer::new(&gpu, TIMEOUT);
    let dtypes: &[DType] = if std::env::var("PRICEPERF_F16").is_ok() {
        &[DType::F32, DType::F16]
    } else {
        &[DType::F32]
    };
    eprintln!(
        "adapter: {} ({}), timing: {}",
        gpu.summary.name,
        gpu.summary.backend,
        timer.method()
    );
    for &dtype in dtypes {
        for kind in KINDS {
            let shape = if kind == ElementwiseKind::Rope {
                ElementwiseShape::rope(512, 4096, 128)
            } else {
                ElementwiseShape::new(kind, 512, 4096)
            };
            for variant in ElementwiseVariant::all(kind) {
                let inputs = ElementwiseInputs::random(&shape, dtype, 3);
                let Ok(program) = variant.prepare(&gpu, &shape, dtype, &inputs) else {
                    continue;
                };
                let out = run_and_read(&gpu, &program, TIMEOUT).expect("run");
                assert!(check(&shape, dtype, &inputs, &out, 3).passed);
                timer.time(&gpu, &program, 2).expect("warm up");
                let iters = 20;
                let t = timer.time(&gpu, &program, iters).expect("time");
                let per = t.as_secs_f64() / iters as f64;
                let gbps = shape.bytes(dtype) as f64 / per / 1e9;
                eprintln!(
                    "{kind:<10} {:<20} {dtype}  {:>8.1} us  {gbps:>6.2} GB/s",
                    variant.name(),
                    per * 1e6
                );
            }
        }
    }
}
