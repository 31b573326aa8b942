//! Every matmul variant against the f64 reference on the real adapter, at the edge shapes
//! where tiling bugs live: 1x1x1, primes, non-multiples of every tile size, batched and
//! transposed B. Skips (with a message) where no adapter exists.

use std::time::Duration;

use priceperf::gpu::Gpu;
use priceperf::kernels::gemv;
use priceperf::kernels::matmul::{MatmulInputs, MatmulVariant};
use priceperf::kernels::{HostTensor, PrepareError};
use priceperf::measure::{prime, read_output, run_and_read, Timer, TimingMethod};
use priceperf::shape::{DType, MatmulShape};
use priceperf::verify;

const TIMEOUT: Duration = Duration::from_secs(60);

fn gpu() -> Option<Gpu> {
    match Gpu::open(std::env::var("PRICEPERF_ADAPTER").ok().as_deref()) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

fn edge_shapes() -> Vec<MatmulShape> {
    vec![
        MatmulShape::new(1, 1, 1),
        MatmulShape::new(97, 61, 131),
        MatmulShape::new(33, 65, 17),
        MatmulShape::new(64, 64, 64),
        MatmulShape::new(130, 132, 36),
        MatmulShape::new(13, 29, 37).batched(3),
        MatmulShape::new(20, 24, 8).batched(2),
        MatmulShape::new(97, 61, 131).transposed_b(),
        MatmulShape::new(40, 36, 20).transposed_b().batched(2),
        MatmulShape::new(3, 5, 2).transposed_b(),
        // Decode shapes for gemv_ubo: 33 windows of 31 rows (three dispatches, the last
        // partly used), and a 4-row A with a tail.
        MatmulShape::new(1, 1000, 512).transposed_b(),
        MatmulShape::new(4, 37, 36).transposed_b(),
    ]
}

#[test]
fn every_variant_is_exact_on_integer_inputs() {
    let Some(gpu) = gpu() else { return };
    let mut failures = Vec::new();
    let mut ran = 0;
    for shape in edge_shapes() {
        let inputs = MatmulInputs::exact(&shape, DType::F32, 7);
        for v in MatmulVariant::all() {
            let program = match v.prepare(&gpu, &shape, DType::F32, &inputs) {
                Ok(p) => p,
                Err(PrepareError::Unsupported(why)) => {
                    eprintln!("{} {shape}: unsupported here ({why})", v.name());
                    continue;
                }
                Err(PrepareError::Failed(why)) => {
                    failures.push(format!("{} {shape}: {why}", v.name()));
                    continue;
                }
            };
            let out = run_and_read(&gpu, &program, TIMEOUT).expect("device ran");
            let verdict = verify::matmul::check_exact(&shape, &inputs, &out);
            ran += 1;
            if !verdict.passed {
                failures.push(format!(
                    "{} {shape}: {}",
                    v.name(),
                    verdict.failure.unwrap_or_default()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        ran >= edge_shapes().len() * 4,
        "too few variants ran: {ran}"
    );
}

#[test]
fn f16_storage_variants_pass_the_tolerance() {
    let Some(gpu) = gpu() else { return };
    if !gpu.has_f16() {
        eprintln!("skipping: adapter lacks SHADER_F16");
        return;
    }
    let mut failures = Vec::new();
    let mut packed_ran = 0;
    for shape in [
        MatmulShape::new(97, 61, 131),
        MatmulShape::new(32, 64, 48).transposed_b().batched(2),
        // Packed halves (8 per texel along k) with k not a multiple of 8, and below 8; and
        // row-major B, which they stage transposed, batch by batch.
        MatmulShape::new(19, 37, 45).transposed_b(),
        MatmulShape::new(5, 9, 3).transposed_b(),
        MatmulShape::new(13, 29, 37).batched(3),
        // gemv_ubo in f16: 23 windows of 31 rows over two dispatches; 3 rows of A.
        MatmulShape::new(1, 700, 1024).transposed_b(),
        MatmulShape::new(3, 19, 24).transposed_b(),
    ] {
        let inputs = MatmulInputs::random(&shape, DType::F16, 11);
        for v in MatmulVariant::all() {
            let program = match v.prepare(&gpu, &shape, DType::F16, &inputs) {
                Ok(p) => p,
                Err(PrepareError::Unsupported(_)) => continue,
                Err(PrepareError::Failed(why)) => {
                    failures.push(format!("{} {shape}: {why}", v.name()));
                    continue;
                }
            };
            let out = run_and_read(&gpu, &program, TIMEOUT).expect("device ran");
            let verdict = verify::matmul::check(&shape, DType::F16, &inputs, &out, 1);
            packed_ran += usize::from(v.name().starts_with("subgroup_stexh"));
            if !verdict.passed {
                failures.push(format!(
                    "{} {shape}: {}",
                    v.name(),
                    verdict.failure.unwrap_or_default()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Where the subgroup kernels run at all (fixed 8-lane subgroups: lavapipe), the packed
    // ones must have run, not been skipped.
    let s = &gpu.summary;
    if s.subgroups && s.subgroup_min_size == 8 && s.subgroup_max_size == 8 {
        assert!(
            packed_ran >= 8,
            "packed-halves variants ran {packed_ran} times"
        );
    }
}

#[test]
fn a_broken_kernel_is_caught() {
    // The same check that gates timing must reject a wrong answer: feed it the output of
    // a different shape's inputs.
    let Some(gpu) = gpu() else { return };
    let shape = MatmulShape::new(16, 16, 16);
    let inputs = MatmulInputs::random(&shape, DType::F32, 1);
    let other = MatmulInputs::random(&shape, DType::F32, 2);
    let program = MatmulVariant::Naive
        .prepare(&gpu, &shape, DType::F32, &other)
        .unwrap();
    let out = run_and_read(&gpu, &program, TIMEOUT).unwrap();
    assert!(!verify::matmul::check(&shape, DType::F32, &inputs, &out, 0).passed);
}

#[test]
fn priming_compiles_without_touching_the_output() {
    // Verification relies on the output starting as NaN (an element a kernel never writes
    // fails): the empty dispatches that make lavapipe compile before timing must write
    // nothing. Every multi-pass variant too (split-K writes partials, then merges).
    let Some(gpu) = gpu() else { return };
    let shape = MatmulShape::new(33, 65, 17);
    let inputs = MatmulInputs::random(&shape, DType::F32, 1);
    let mut primed = 0;
    for v in MatmulVariant::all() {
        let program = match v.prepare(&gpu, &shape, DType::F32, &inputs) {
            Ok(p) => p,
            Err(PrepareError::Unsupported(_)) => continue,
            Err(PrepareError::Failed(why)) => panic!("{}: {why}", v.name()),
        };
        prime(&gpu, &program, TIMEOUT).expect("primed");
        let out = read_output(&gpu, &program, TIMEOUT).unwrap();
        assert!(
            (0..out.len()).all(|i| out.get(i).is_nan()),
            "{} wrote its output while primed",
            v.name()
        );
        // And the real run after it still verifies.
        let out = run_and_read(&gpu, &program, TIMEOUT).unwrap();
        assert!(
            verify::matmul::check(&shape, DType::F32, &inputs, &out, 0).passed,
            "{}",
            v.name()
        );
        primed += 1;
    }
    assert!(primed >= 2, "only {primed} variants ran");
}

#[test]
fn timer_measures_real_work() {
    let Some(gpu) = gpu() else { return };
    let shape = MatmulShape::new(64, 64, 64);
    let inputs = MatmulInputs::random(&shape, DType::F32, 3);
    let program = MatmulVariant::Naive
        .prepare(&gpu, &shape, DType::F32, &inputs)
        .unwrap();
    let timer = Timer::new(&gpu, TIMEOUT);
    // Timestamps on GPUs that have them; the wall clock on CPU adapters (same clock).
    let expected = if gpu.has_timestamps() && !gpu.summary.is_cpu() {
        TimingMethod::Device
    } else {
        TimingMethod::Wall
    };
    if std::env::var_os("PRICEPERF_TIMING").is_none() {
        assert_eq!(timer.method(), expected);
    }
    // A first run outside the timings, then the fastest of several of each: a neighbour's
    // load on a shared machine can slow any one timing, never all of them, so 64 dispatches
    // against one cannot come out the wrong way round by chance.
    timer.time(&gpu, &program, 1).unwrap();
    let fastest = |iters: u64, repeats: usize| {
        (0..repeats)
            .map(|_| timer.time(&gpu, &program, iters).unwrap())
            .min()
            .unwrap()
    };
    let one = fastest(1, 5);
    let many = fastest(64, 3);
    assert!(one > Duration::ZERO);
    assert!(many > one, "64 iterations {many:?} vs 1 iteration {one:?}");
}

#[test]
fn warming_up_runs_for_at_least_its_span_and_stops() {
    let Some(gpu) = gpu() else { return };
    let shape = MatmulShape::new(64, 64, 64);
    let inputs = MatmulInputs::random(&shape, DType::F32, 5);
    let program = MatmulVariant::Naive
        .prepare(&gpu, &shape, DType::F32, &inputs)
        .unwrap();
    let timer = Timer::new(&gpu, TIMEOUT);
    assert!(gpu.idle_for().is_none(), "nothing timed yet");
    // One run first, so that lavapipe's compiling on the first dispatch is not part of the
    // warm-up: then a 64³ product takes well under a millisecond.
    let once = timer.time(&gpu, &program, 1).unwrap();
    let span = Duration::from_millis(60);
    let start = std::time::Instant::now();
    let runs = timer
        .warm(&gpu, &program, span, Duration::from_millis(10))
        .unwrap();
    let took = start.elapsed();
    // It keeps running until the span is over, in runs of about 10 ms: several of them,
    // and not much past the span (one run of at most about 10 ms, with slack for a slow
    // shared host).
    assert!(took >= span, "warmed for {took:?}, asked for {span:?}");
    assert!(
        runs >= 2,
        "{runs} runs in {took:?} (one iteration takes {once:?})"
    );
    assert!(took < span + Duration::from_secs(2), "warmed for {took:?}");
    // The device counts as busy until the warm-up's end, not since its first run.
    let idle = gpu.idle_for().expect("the warm-up was timed work");
    assert!(
        idle < span / 2,
        "idle for {idle:?} after a {took:?} warm-up"
    );
    // The program is left as it was: its next run still verifies.
    let out = run_and_read(&gpu, &program, TIMEOUT).unwrap();
    assert!(verify::matmul::check(&shape, DType::F32, &inputs, &out, 0).passed);
}

#[test]
fn shapes_beyond_limits_are_skipped_with_a_reason() {
    let Some(gpu) = gpu() else { return };
    // More workgroups along x than any adapter allows per dimension.
    let max = gpu.summary.max_workgroups_per_dimension;
    let shape = MatmulShape::new(1, 16 * (max + 1), 1);
    let inputs = MatmulInputs {
        a: HostTensor::F32(vec![1.0]),
        b: HostTensor::F32(vec![1.0; shape.b_len() as usize]),
    };
    match MatmulVariant::Naive.prepare(&gpu, &shape, DType::F32, &inputs) {
        Err(PrepareError::Unsupported(why)) => assert!(
            why.contains("per dimension") || why.contains("bytes"),
            "{why}"
        ),
        Err(PrepareError::Failed(why)) => panic!("should be skipped, not failed: {why}"),
        Ok(_) => panic!("dispatch beyond the limit was accepted"),
    }
}

/// Prepare `v` for `shape`, run it and check its output with `check`: true when it ran,
/// false (said on stderr) where the adapter cannot run it; a compile failure or a wrong
/// output panics.
fn runs_and_verifies(
    gpu: &Gpu,
    v: &MatmulVariant,
    shape: &MatmulShape,
    dtype: DType,
    inputs: &MatmulInputs,
    check: impl Fn(&HostTensor) -> verify::Verdict,
) -> bool {
    let program = match v.prepare(gpu, shape, dtype, inputs) {
        Ok(p) => p,
        Err(PrepareError::Unsupported(why)) => {
            eprintln!("{} {shape} {dtype}: unsupported here ({why})", v.name());
            return false;
        }
        Err(PrepareError::Failed(why)) => panic!("{} {shape} {dtype}: {why}", v.name()),
    };
    let out = run_and_read(gpu, &program, TIMEOUT).expect("device ran");
    let verdict = check(&out);
    assert!(
        verdict.passed,
        "{} {shape} {dtype}: {}",
        v.name(),
        verdict.failure.unwrap_or_default()
    );
    true
}

#[test]
fn operands_taller_than_the_texture_limit_are_folded() {
    let Some(gpu) = gpu() else { return };
    let max = gpu.limits().max_texture_dimension_2d;
    let tall = max + 12;
    // Each shape puts one operand texture past the limit: Bᵀ (n rows), row-major B (k
    // rows), Bᵀ over two batches, A (m rows).
    let shapes = [
        MatmulShape::new(9, tall, 8).transposed_b(),
        MatmulShape::new(6, 8, tall),
        MatmulShape::new(5, tall / 2 + 3, 4)
            .transposed_b()
            .batched(2),
        MatmulShape::new(tall, 7, 8),
    ];
    let textured = MatmulVariant::all()
        .into_iter()
        .filter(|v| {
            let n = v.name();
            n.starts_with("subgroup_stex8_x8_t8x4")
                || n.starts_with("subgroup_tex8")
                || n.starts_with("texture_")
        })
        .collect::<Vec<_>>();
    assert_eq!(
        textured.len(),
        3,
        "the storage, sampled and register-tile texture kernels"
    );
    let mut ran = 0;
    for shape in shapes {
        let inputs = MatmulInputs::exact(&shape, DType::F32, 5);
        for v in &textured {
            ran += usize::from(runs_and_verifies(
                &gpu,
                v,
                &shape,
                DType::F32,
                &inputs,
                |out| verify::matmul::check_exact(&shape, &inputs, out),
            ));
        }
    }
    // Where the adapter has the texture kernels' needs (subgroups of 8 for two of them),
    // every shape ran on them.
    let eight_lanes = gpu.summary.subgroup_min_size == 8 && gpu.summary.subgroup_max_size == 8;
    if eight_lanes {
        assert_eq!(ran, shapes.len() * textured.len());
    }

    // f16 texels are 8 bytes: the folded upload and loads within the f16 tolerance.
    let shape = MatmulShape::new(9, tall, 16).transposed_b();
    let inputs = MatmulInputs::random(&shape, DType::F16, 5);
    let mut ran = 0;
    for v in &textured {
        ran += usize::from(runs_and_verifies(
            &gpu,
            v,
            &shape,
            DType::F16,
            &inputs,
            |out| verify::matmul::check(&shape, DType::F16, &inputs, out, 1),
        ));
    }

    if eight_lanes && gpu.has_f16() {
        assert_eq!(ran, textured.len());
    }

    // Packed halves (16-byte texels of 8 halves): tall Bᵀ, and tall A with row-major B,
    // which is staged transposed.
    let packed = MatmulVariant::all()
        .into_iter()
        .find(|v| v.name().starts_with("subgroup_stexh8_x2_t8x8"))
        .expect("a packed-halves variant");
    let mut ran = 0;
    for shape in [
        MatmulShape::new(9, tall, 16).transposed_b(),
        MatmulShape::new(tall, 7, 12),
    ] {
        let inputs = MatmulInputs::random(&shape, DType::F16, 5);
        ran += usize::from(runs_and_verifies(
            &gpu,
            &packed,
            &shape,
            DType::F16,
            &inputs,
            |out| verify::matmul::check(&shape, DType::F16, &inputs, out, 1),
        ));
    }
    if eight_lanes && gpu.has_f16() {
        assert_eq!(ran, 2);
    }

    // A product gemv takes is not folded: gemv streams it far faster. One it does not take
    // (batch 2) is. The register-tile texture kernel needs no subgroups.
    let texture = textured
        .iter()
        .find(|v| v.name().starts_with("texture_"))
        .unwrap();
    for (shape, gemv_takes_it) in [
        (MatmulShape::new(4, tall, 8).transposed_b(), true),
        (
            MatmulShape::new(2, tall / 2 + 3, 8)
                .transposed_b()
                .batched(2),
            false,
        ),
    ] {
        let inputs = MatmulInputs::exact(&shape, DType::F32, 5);
        let refused = gemv_takes_it && gemv::applies(&gpu, &shape, DType::F32);
        match texture.prepare(&gpu, &shape, DType::F32, &inputs) {
            Err(PrepareError::Unsupported(why)) if refused => {
                assert!(why.contains("left to gemv_ubo"), "{why}")
            }
            Ok(program) if !refused => {
                let out = run_and_read(&gpu, &program, TIMEOUT).expect("device ran");
                assert!(verify::matmul::check_exact(&shape, &inputs, &out).passed);
            }
            Err(why) => panic!("{shape}: {why:?}"),
            Ok(_) => panic!("{shape}: folded although gemv takes it"),
        }
    }
}

/// gemv_stex reads B from a texture: a B taller than the texture limit is folded into
/// blocks, in f32 (exact) and f16 (within its tolerance), with one, four and eight rows of A.
#[test]
fn the_texture_gemv_reads_folded_weights() {
    let Some(gpu) = gpu() else { return };
    let tall = gpu.limits().max_texture_dimension_2d + 12;
    let gemvs: Vec<MatmulVariant> = MatmulVariant::all()
        .into_iter()
        .filter(|v| v.name().starts_with("gemv_stex"))
        .collect();
    assert_eq!(gemvs.len(), 2);
    let mut ran = 0;
    for m in [1, 4, 8] {
        let shape = MatmulShape::new(m, tall, 16).transposed_b();
        for v in &gemvs {
            let inputs = MatmulInputs::exact(&shape, DType::F32, 5);
            ran += usize::from(runs_and_verifies(
                &gpu,
                v,
                &shape,
                DType::F32,
                &inputs,
                |out| verify::matmul::check_exact(&shape, &inputs, out),
            ));
            if gpu.has_f16() {
                let inputs = MatmulInputs::random(&shape, DType::F16, 5);
                ran += usize::from(runs_and_verifies(
                    &gpu,
                    v,
                    &shape,
                    DType::F16,
                    &inputs,
                    |out| verify::matmul::check(&shape, DType::F16, &inputs, out, 1),
                ));
            }
        }
    }
    // It needs no optional feature but f16 for its f16 runs.
    assert!(ran >= 2 * gemvs.len());
}

/// gemv_coop lays its workgroups out on a 2-D grid past 65535 of them (llama-3.1-8b's LM
/// head has 128256 rows): every row of such a B is computed once, with one and eight rows
/// of A (eight by two B rows: 16 results a workgroup), exactly in f32.
#[test]
fn the_cooperative_gemv_covers_a_grid_of_several_rows() {
    let Some(gpu) = gpu() else { return };
    let coops: Vec<MatmulVariant> = MatmulVariant::all()
        .into_iter()
        .filter(|v| v.name().starts_with("gemv_coop"))
        .collect();
    assert_eq!(coops.len(), 2);
    for (m, n) in [(1, 2 * 65_535 + 3), (8, 37)] {
        let shape = MatmulShape::new(m, n, 8).transposed_b();
        for v in &coops {
            let [_, rows, _] = v.workgroups(&shape);
            assert_eq!(rows > 1, n > 65_535, "{} n={n}", v.name());
            let inputs = MatmulInputs::exact(&shape, DType::F32, 5);
            assert!(runs_and_verifies(
                &gpu,
                v,
                &shape,
                DType::F32,
                &inputs,
                |out| verify::matmul::check_exact(&shape, &inputs, out),
            ));
        }
    }
}

#[test]
fn every_copy_of_the_weights_gives_the_same_answer() {
    // The timing cycles through copies of B so that it comes from memory, not a cache; each
    // execution binds the next copy, so a copy staged wrong (or not at all) would change
    // the answer of every execution that uses it. Run each program once per copy, and once
    // more to come back to the first.
    let Some(gpu) = gpu() else { return };
    let cases = [
        (
            MatmulShape::new(9, 13, 20),
            DType::F32,
            "subgroup_stex8_x8_t8x8",
        ),
        (MatmulShape::new(9, 13, 20), DType::F32, "naive"),
        (
            MatmulShape::new(1, 40, 24).transposed_b(),
            DType::F32,
            "gemv_stex_t2_x4",
        ),
        (
            MatmulShape::new(1, 40, 24).transposed_b(),
            DType::F32,
            "gemv_ubo_r4_b4",
        ),
        (
            MatmulShape::new(5, 12, 20),
            DType::F16,
            "subgroup_stexh8_x2_t8x8",
        ),
    ];
    let mut ran = 0;
    for (shape, dtype, name) in cases {
        if dtype == DType::F16 && !gpu.has_f16() {
            continue;
        }
        let v = MatmulVariant::all()
            .into_iter()
            .find(|v| v.name() == name)
            .unwrap_or_else(|| panic!("no variant {name}"));
        let inputs = MatmulInputs::exact(&shape, dtype, 9);
        let program = match v.prepare(&gpu, &shape, dtype, &inputs) {
            Ok(p) => p,
            Err(PrepareError::Unsupported(why)) => {
                eprintln!("{name} {shape}: unsupported here ({why})");
                continue;
            }
            Err(PrepareError::Failed(why)) => panic!("{name} {shape}: {why}"),
        };
        // B is a few hundred bytes: the most copies there are.
        let copies = priceperf::kernels::weights::weight_copies(inputs.b.bytes().len() as u64);
        assert_eq!(
            copies as u64,
            priceperf::kernels::weights::MAX_WEIGHT_COPIES
        );
        assert_eq!(program.copies(), copies, "{name}");
        for execution in 0..=copies {
            let out = run_and_read(&gpu, &program, TIMEOUT).expect("device ran");
            // f16 output rounds the exact sums: held to the f16 bound instead.
            let verdict = match dtype {
                DType::F32 => verify::matmul::check_exact(&shape, &inputs, &out),
                DType::F16 => verify::matmul::check(&shape, dtype, &inputs, &out, 1),
            };
            assert!(
                verdict.passed,
                "{name} {shape} {dtype}, execution {execution}: {}",
                verdict.failure.unwrap_or_default()
            );
        }
        ran += 1;
    }
    assert!(ran >= 2, "only {ran} programs ran");
}
