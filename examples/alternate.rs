//! Compare kernel variants on a shared, noisy machine: verify each one, then time them in
//! turns, round after round, and print each variant's median throughput and its median
//! ratio to the first variant taken round by round.
//!
//! Why: on a shared host the same kernel can run 1.6x faster or slower minutes apart (seen
//! on the 2-core lavapipe VM: 1024^3 f32 matmul at 24-26 GFLOP/s, then at 38-46), so two
//! variants timed one after the other compare the machine, not the kernels. Timed in
//! turns, both see the same states; the per-round ratio is what a tuning change claims.
//!
//! ```sh
//! cargo run --release --example alternate -- matmul m=64,n=3072,k=768,transpose_b=1 f16 \
//!     'stex8_x(2_t8x8|2_t16x8)$' 25 3
//! cargo run --release --example alternate -- attention \
//!     b=1,hq=8,hkv=8,sq=1024,skv=1024,d=64,causal=1 f32 'flash_ubs' 10 1
//! ```
//! Arguments: op (`matmul` or `attention`), shape, dtype, a regular expression over the
//! variant names (`priceperf run` prints them), rounds, and dispatches per timing.
use std::time::{Duration, Instant};

use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{AttentionInputs, AttentionVariant};
use priceperf::kernels::matmul::{MatmulInputs, MatmulVariant};
use priceperf::kernels::{PrepareError, Program};
use priceperf::measure::{run_and_read, Timer};
use priceperf::shape::{AttentionShape, DType, MatmulShape};
use priceperf::verify::{self, Verdict};

const TIMEOUT: Duration = Duration::from_secs(600);

/// A variant's name, its program (or why it could not be built) and its verdict.
type Candidate = (String, Result<Program, PrepareError>, Verdict);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 6 {
        eprintln!("usage: alternate matmul|attention SHAPE DTYPE VARIANT_REGEX ROUNDS ITERS");
        std::process::exit(2);
    }
    let dtype: DType = args[2]
        .parse()
        .unwrap_or_else(|e| fail(&format!("dtype: {e}")));
    let wanted = regex::Regex::new(&args[3]).unwrap_or_else(|e| fail(&format!("regex: {e}")));
    let rounds: usize = args[4].parse().unwrap_or_else(|_| fail("ROUNDS: a count"));
    let iters: u64 = args[5].parse().unwrap_or_else(|_| fail("ITERS: a count"));
    let gpu = Gpu::open(None).unwrap_or_else(|e| fail(&format!("no adapter: {e}")));
    println!("{} ({})", gpu.summary.name, gpu.summary.driver_info);

    // Each candidate: name, program, verdict; built by the op's own prepare and reference.
    let (flops, candidates): (u64, Vec<Candidate>) = match args[0].as_str() {
        "matmul" => {
            let shape: MatmulShape = args[1]
                .parse()
                .unwrap_or_else(|e| fail(&format!("shape: {e}")));
            let inputs = MatmulInputs::random(&shape, dtype, 42);
            let reference = verify::matmul::Reference::new(&shape, dtype, &inputs, 42);
            let built = MatmulVariant::all()
                .into_iter()
                .filter(|v| wanted.is_match(&v.name()))
                .map(|v| {
                    build(
                        &gpu,
                        v.name(),
                        || v.prepare(&gpu, &shape, dtype, &inputs),
                        |o| reference.check(o),
                    )
                })
                .collect();
            (shape.flops(), built)
        }
        "attention" => {
            let shape: AttentionShape = args[1]
                .parse()
                .unwrap_or_else(|e| fail(&format!("shape: {e}")));
            let inputs = AttentionInputs::random(&shape, dtype, 42);
            let reference = verify::attention::Reference::new(&shape, dtype, &inputs, 42);
            let built = AttentionVariant::all()
                .into_iter()
                .filter(|v| wanted.is_match(&v.name()))
                .map(|v| {
                    build(
                        &gpu,
                        v.name(),
                        || v.prepare(&gpu, &shape, dtype, &inputs),
                        |o| reference.check(o),
                    )
                })
                .collect();
            (shape.flops(), built)
        }
        other => fail(&format!("op `{other}`: matmul or attention")),
    };

    let mut timed: Vec<(String, Program, Vec<f64>)> = Vec::new();
    for (name, program, verdict) in candidates {
        match program {
            Ok(p) if verdict.passed => timed.push((name, p, Vec::new())),
            Ok(_) => println!("{name:28} failed verification: {:?}", verdict.failure),
            Err(e) => println!("{name:28} not built: {e:?}"),
        }
    }
    if timed.is_empty() {
        fail("no variant matched, built and verified");
    }
    let timer = Timer::new(&gpu, TIMEOUT);
    for _ in 0..rounds {
        for (name, program, gflops) in timed.iter_mut() {
            let t = timer
                .time(&gpu, program, iters)
                .unwrap_or_else(|e| fail(&format!("{name}: {e:?}")));
            gflops.push(flops as f64 * iters as f64 / t.as_secs_f64() / 1e9);
        }
    }
    let first = timed[0].2.clone();
    for (name, _, gflops) in &timed {
        let ratios: Vec<f64> = gflops.iter().zip(&first).map(|(g, f)| g / f).collect();
        println!(
            "{name:28} median {:7.2} GFLOP/s (min {:.2}, max {:.2}); ratio to {}: median {:.3}",
            median(gflops),
            gflops.iter().copied().fold(f64::INFINITY, f64::min),
            gflops.iter().copied().fold(0.0, f64::max),
            timed[0].0,
            median(&ratios)
        );
    }
}

/// Prepare, run once, check: the program with its verdict (a default verdict when it could
/// not be built).
fn build(
    gpu: &Gpu,
    name: String,
    prepare: impl FnOnce() -> Result<Program, PrepareError>,
    check: impl FnOnce(&priceperf::kernels::HostTensor) -> Verdict,
) -> Candidate {
    let t0 = Instant::now();
    let program = prepare();
    let verdict = match &program {
        Ok(p) => {
            let out =
                run_and_read(gpu, p, TIMEOUT).unwrap_or_else(|e| fail(&format!("{name}: {e:?}")));
            check(&out)
        }
        Err(_) => Verdict {
            passed: false,
            max_err: 0.0,
            bound: 0.0,
            checked: 0,
            failure: None,
        },
    };
    println!(
        "{name:28} compiled, ran and checked in {:.2?}",
        t0.elapsed()
    );
    (name, program, verdict)
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s[s.len() / 2]
}

fn fail(why: &str) -> ! {
    eprintln!("alternate: {why}");
    std::process::exit(2);
}
