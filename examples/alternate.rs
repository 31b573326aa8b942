//! Compare kernel variants on a shared, noisy machine: verify each one, then time them in
//! turns, round after round, and print each variant's median throughput and its median
//! ratio to the first variant taken round by round.
//!
//! Why: on a shared host the same kernel can run 1.6x faster or slower minutes apart (seen
//! on the 2-core lavapipe VM: 1024^3 f32 matmul at 24-26 GFLOP/s, then at 38-46), so two
//! variants timed one after the other compare the machine, not the kernels. Timed in
//! turns, both see the same states; the per-round ratio is what a tuning change claims.
//! Turns still have an order: an A/A run of three identical programs (lavapipe, 1024³ f32)
//! put the second and third 1.5-3% ahead of the first, and an 8% "gain" measured with the
//! change always second vanished with it first. So every other round runs the variants
//! last to first, as the tuning final does (`priceperf::tuning::turn_order`); three A/A
//! runs with that read 0.99-1.035, so a few percent is still noise.
//!
//! ```sh
//! cargo run --release --example alternate -- matmul m=64,n=3072,k=768,transpose_b=1 f16 \
//!     'stex8_x(2_t8x8|2_t16x8)$' 25 3
//! cargo run --release --example alternate -- attention \
//!     b=1,hq=8,hkv=8,sq=1024,skv=1024,d=64,causal=1 f32 'flash_ubs' 10 1
//! cargo run --release --example alternate -- matmul m=1024,n=1024,k=1024 f32,f16 \
//!     'stex8_x2_t16x8$' 20 1
//! ```
//! Arguments: op (`matmul` or `attention`), shape, dtype (or several, comma-separated, to
//! time the dtypes against each other), a regular expression over the variant names
//! (`priceperf run` prints them), rounds, and dispatches per timing.
//!
//! With `ALTERNATE_HOT=1`, each variant that cycles copies of its weights (see
//! `priceperf::kernels::weights`) is also timed with one copy only, named `... hot`: the
//! cache's share of a memory-bound kernel's speed, measured in turns.
use std::time::{Duration, Instant};

use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{AttentionInputs, AttentionVariant};
use priceperf::kernels::matmul::{MatmulInputs, MatmulVariant};
use priceperf::kernels::{HostTensor, PrepareError, Program};
use priceperf::measure::{run_and_read, Timer};
use priceperf::shape::{AttentionShape, DType, MatmulShape};
use priceperf::verify::{self, Verdict};

const TIMEOUT: Duration = Duration::from_secs(600);

/// A variant's name and its program, or why it could not be built.
type Prepared = (String, Result<Program, PrepareError>);
/// The op's reference check of one output.
type Check = Box<dyn Fn(&HostTensor) -> Verdict>;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 6 {
        eprintln!("usage: alternate matmul|attention SHAPE DTYPE VARIANT_REGEX ROUNDS ITERS");
        std::process::exit(2);
    }
    let dtypes: Vec<DType> = args[2].split(',').map(|d| parse("dtype", d)).collect();
    let wanted = regex::Regex::new(&args[3]).unwrap_or_else(|e| fail(&format!("regex: {e}")));
    let rounds: usize = parse("ROUNDS", &args[4]);
    let iters: u64 = parse("ITERS", &args[5]);
    let gpu = Gpu::open(None).unwrap_or_else(|e| fail(&format!("no adapter: {e}")));
    println!("{} ({})", gpu.summary.name, gpu.summary.driver_info);

    // Every matching variant in every dtype, verified; the dtype joins the name when there
    // are several.
    let mut flops = 0;
    let mut timed: Vec<(String, Program, Vec<f64>)> = Vec::new();
    let hot = std::env::var("ALTERNATE_HOT").is_ok_and(|v| v == "1");
    let runs = if hot {
        [false, true].as_slice()
    } else {
        &[false]
    };
    for (&dtype, &hot) in dtypes.iter().flat_map(|d| runs.iter().map(move |h| (d, h))) {
        let (op_flops, prepared, check) = prepare_op(&gpu, &args[0], &args[1], dtype, &wanted);
        flops = op_flops;
        let mut tag = if dtypes.len() > 1 {
            format!(" {dtype}")
        } else {
            String::new()
        };
        if hot {
            tag.push_str(" hot");
        }
        for (name, program) in prepared {
            let name = format!("{name}{tag}");
            match program {
                Ok(mut p) => {
                    if hot {
                        if p.copies() == 1 {
                            continue;
                        }
                        for d in &mut p.dispatches {
                            d.bind_groups.truncate(1);
                        }
                    }
                    // Lavapipe compiles at the first dispatch, so this is mostly compiling.
                    let start = Instant::now();
                    let out = run_and_read(&gpu, &p, TIMEOUT)
                        .unwrap_or_else(|e| fail(&format!("{name}: {e:?}")));
                    println!("{name:28} first run in {:.2?}", start.elapsed());
                    let verdict = check(&out);
                    if verdict.passed {
                        timed.push((name, p, Vec::new()));
                    } else {
                        println!("{name:28} failed verification: {:?}", verdict.failure);
                    }
                }
                Err(e) => println!("{name:28} not built: {e:?}"),
            }
        }
    }
    if timed.is_empty() {
        fail("no variant matched, built and verified");
    }
    let timer = Timer::new(&gpu, TIMEOUT);
    for round in 0..rounds {
        for i in priceperf::tuning::turn_order(round, timed.len()) {
            let (name, program, gflops) = &mut timed[i];
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

/// The op's variants matching `wanted` for `shape` in `dtype`, each prepared, with the op's
/// FLOPs and its reference check.
fn prepare_op(
    gpu: &Gpu,
    op: &str,
    shape: &str,
    dtype: DType,
    wanted: &regex::Regex,
) -> (u64, Vec<Prepared>, Check) {
    match op {
        "matmul" => {
            let shape: MatmulShape = parse("shape", shape);
            let inputs = MatmulInputs::random(&shape, dtype, 42);
            let reference = verify::matmul::Reference::new(&shape, dtype, &inputs, 42);
            let prepared = matching(MatmulVariant::all(), wanted, MatmulVariant::name, |v| {
                v.prepare(gpu, &shape, dtype, &inputs)
            });
            (
                shape.flops(),
                prepared,
                Box::new(move |o| reference.check(o)),
            )
        }
        "attention" => {
            let shape: AttentionShape = parse("shape", shape);
            let inputs = AttentionInputs::random(&shape, dtype, 42);
            let reference = verify::attention::Reference::new(&shape, dtype, &inputs, 42);
            let prepared = matching(
                AttentionVariant::all(),
                wanted,
                AttentionVariant::name,
                |v| v.prepare(gpu, &shape, dtype, &inputs),
            );
            (
                shape.flops(),
                prepared,
                Box::new(move |o| reference.check(o)),
            )
        }
        other => fail(&format!("op `{other}`: matmul or attention")),
    }
}

/// The variants of `all` whose names match `wanted`, each prepared (compiled, inputs
/// uploaded), saying how long that took.
fn matching<V>(
    all: Vec<V>,
    wanted: &regex::Regex,
    name: fn(&V) -> String,
    prepare: impl Fn(&V) -> Result<Program, PrepareError>,
) -> Vec<Prepared> {
    all.iter()
        .filter(|v| wanted.is_match(&name(v)))
        .map(|v| {
            let t0 = Instant::now();
            let program = prepare(v);
            println!("{:28} prepared in {:.2?}", name(v), t0.elapsed());
            (name(v), program)
        })
        .collect()
}

fn parse<T: std::str::FromStr>(what: &str, text: &str) -> T
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .unwrap_or_else(|e| fail(&format!("{what} `{text}`: {e}")))
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
