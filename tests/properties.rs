//! Property tests on the real adapter: random small shapes, every kernel variant, checked
//! against the CPU reference (16 matmul shapes, about 2 s each on lavapipe; 8 attention
//! shapes, about 25 s each, since every variant is compiled for every head dim). Matmul on small-integer inputs, where any difference at all is
//! an indexing bug (`verify::matmul::check_exact`); attention against the f64 reference with
//! its tolerance (`verify::attention::Reference`). Cases are few (lavapipe compiles every
//! variant for every shape) and the RNG is seeded, so a failure replays; proptest shrinks a
//! failing shape to a small one. Tests that need an adapter print a message and pass when
//! none exists.
//!
//! `PROPTEST_CASES=N` runs more cases.

use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{AttentionInputs, AttentionVariant};
use priceperf::kernels::matmul::{MatmulInputs, MatmulVariant};
use priceperf::kernels::PrepareError;
use priceperf::measure::run_and_read;
use priceperf::shape::{AttentionShape, DType, MatmulShape};
use priceperf::verify;
use priceperf::verify::attention::Reference;

const TIMEOUT: Duration = Duration::from_secs(120);

fn gpu() -> Option<Gpu> {
    match Gpu::open(std::env::var("PRICEPERF_ADAPTER").ok().as_deref()) {
        Ok(g) => Some(g),
        Err(e) => {
            eprintln!("no adapter, skipping: {e}");
            None
        }
    }
}

/// `default` cases, or `PROPTEST_CASES`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A seeded runner with `cases` cases, no failure files.
fn runner(cases: u32) -> TestRunner {
    let config = Config {
        cases,
        failure_persistence: None,
        // A shrink step reruns every variant; keep shrinking bounded on a slow adapter.
        max_shrink_iters: 64,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn matmul_shapes() -> impl Strategy<Value = MatmulShape> {
    (1u32..=40, 1u32..=40, 1u32..=40, 1u32..=3, any::<bool>()).prop_map(
        |(m, n, k, batch, transpose_b)| MatmulShape {
            batch,
            m,
            n,
            k,
            transpose_b,
        },
    )
}

#[test]
fn every_matmul_variant_is_exact_on_random_small_shapes() {
    let Some(gpu) = gpu() else { return };
    let ran = std::cell::Cell::new(0usize);
    let result = runner(cases(16)).run(&matmul_shapes(), |shape| {
        let inputs = MatmulInputs::exact(&shape, DType::F32, 3);
        for v in MatmulVariant::all() {
            let program = match v.prepare(&gpu, &shape, DType::F32, &inputs) {
                Ok(p) => p,
                Err(PrepareError::Unsupported(_)) => continue,
                Err(PrepareError::Failed(why)) => {
                    return Err(TestCaseError::fail(format!("{} {shape}: {why}", v.name())))
                }
            };
            let out = run_and_read(&gpu, &program, TIMEOUT)
                .map_err(|e| TestCaseError::fail(format!("{} {shape}: {e:?}", v.name())))?;
            let verdict = verify::matmul::check_exact(&shape, &inputs, &out);
            prop_assert!(
                verdict.passed,
                "{} {shape}: {}",
                v.name(),
                verdict.failure.unwrap_or_default()
            );
            ran.set(ran.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // Naive and the tiled variants run everywhere.
    assert!(
        ran.get() >= 2 * cases(16) as usize,
        "too few variant runs: {}",
        ran.get()
    );
}

/// The head dims drawn: every supported one but 256. lavapipe compiles a kernel on its first
/// dispatch, and with nothing in Mesa's shader cache (a fresh machine) the workgroup-barrier
/// kernels (flash_row, flash_wg, flash_split) unrolled for d = 256 each took over 60 s to
/// compile (LLVM's coroutine splitting), past this test's timeout. d = 256 is verified by
/// tests/attention.rs (`every_head_dim_verifies`: the uniform-window kernels and naive,
/// 33 s of compilation in all from an empty cache).
const PROPERTY_HEAD_DIMS: [u32; 4] = [64, 80, 96, 128];

fn attention_shapes() -> impl Strategy<Value = AttentionShape> {
    (
        1u32..=2,
        1u32..=2,
        1u32..=3,
        1u32..=24,
        0u32..=16,
        prop::sample::select(PROPERTY_HEAD_DIMS.to_vec()),
        any::<bool>(),
    )
        .prop_map(|(b, hkv, group, sq, extra, d, causal)| AttentionShape {
            b,
            hq: hkv * group,
            hkv,
            sq,
            // Causal needs sq <= skv (queries aligned to the last keys); decode-like and
            // chunked-prefill shapes come from `extra`.
            skv: if causal {
                sq + extra
            } else {
                (sq + extra).max(1)
            },
            d,
            causal,
        })
}

#[test]
fn every_attention_variant_matches_the_reference_on_random_small_shapes() {
    let Some(gpu) = gpu() else { return };
    let ran = std::cell::Cell::new(0usize);
    let result = runner(cases(8)).run(&attention_shapes(), |shape| {
        // The shape is one the parser would accept.
        prop_assert_eq!(
            shape.to_string().parse::<AttentionShape>().ok(),
            Some(shape)
        );
        let dtype = DType::F32;
        let inputs = AttentionInputs::random(&shape, dtype, 5);
        let reference = Reference::new(&shape, dtype, &inputs, 7);
        for v in AttentionVariant::all() {
            let program = match v.prepare(&gpu, &shape, dtype, &inputs) {
                Ok(p) => p,
                Err(PrepareError::Unsupported(_)) => continue,
                Err(PrepareError::Failed(why)) => {
                    return Err(TestCaseError::fail(format!("{} {shape}: {why}", v.name())))
                }
            };
            let out = run_and_read(&gpu, &program, TIMEOUT)
                .map_err(|e| TestCaseError::fail(format!("{} {shape}: {e:?}", v.name())))?;
            let verdict = reference.check(&out);
            prop_assert!(
                verdict.passed,
                "{} {shape}: {}",
                v.name(),
                verdict.failure.unwrap_or_default()
            );
            ran.set(ran.get() + 1);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    assert!(
        ran.get() >= cases(8) as usize,
        "too few variant runs: {}",
        ran.get()
    );
}

/// Without an adapter: every generated shape is one the parsers accept and print back,
/// and the CSV cell escaping round-trips any text.
#[test]
fn shapes_round_trip_and_csv_text_survives_escaping() {
    let mut r = runner(cases(256));
    r.run(&matmul_shapes(), |s| {
        prop_assert_eq!(s.to_string().parse::<MatmulShape>().ok(), Some(s));
        Ok(())
    })
    .unwrap();
    r.run(&attention_shapes(), |s| {
        prop_assert_eq!(s.to_string().parse::<AttentionShape>().ok(), Some(s));
        Ok(())
    })
    .unwrap();
    use priceperf::results::csv_cells::{escape_text, unescape_text};
    let alphabet = vec![
        '\'', '=', '+', '-', '@', '\t', '\r', ' ', 'a', '1', ',', '"', '\n',
    ];
    let text = prop::collection::vec(prop::sample::select(alphabet), 0..6)
        .prop_map(|cs| cs.into_iter().collect::<String>());
    r.run(&text, |s| {
        let e = escape_text(&s);
        prop_assert_eq!(unescape_text(&e), s.clone());
        prop_assert!(!e.starts_with(['=', '+', '-', '@', '\t', '\r']), "{:?}", e);
        Ok(())
    })
    .unwrap();
}
