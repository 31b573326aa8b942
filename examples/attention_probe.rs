//! Temporary probe (issue 3): verify and time attention variants. Not part of the crate.
use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{AttentionInputs, AttentionVariant, KvAccess};
use priceperf::measure::{run_and_read, Timer};
use priceperf::shape::{AttentionShape, DType};
use priceperf::verify::attention::Reference;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let shape: AttentionShape = args[1].parse().unwrap();
    let dtype: DType = args.get(2).map_or("f32", |s| s).parse().unwrap();
    let filter = args.get(3).cloned().unwrap_or_default();
    let reps: usize = args.get(4).map_or(3, |s| s.parse().unwrap());
    let mut variants = AttentionVariant::all();
    // extra experimental variants: "ubo:br:tq:bc"
    for spec in args.iter().skip(5) {
        let f: Vec<u32> = spec
            .split(':')
            .skip(1)
            .map(|x| x.parse().unwrap())
            .collect();
        let kv = match spec.split(':').next().unwrap() {
            "ubo" => KvAccess::Uniform,
            "row" => KvAccess::Direct,
            _ => KvAccess::Staged,
        };
        variants.push(AttentionVariant::Flash {
            kv,
            br: f[0],
            tq: f[1],
            bc: f[2],
            chunk: f.get(3).copied(),
        });
    }
    let gpu = Gpu::open(None).unwrap();
    let inputs = AttentionInputs::random(&shape, dtype, 42);
    let reference = Reference::new(&shape, dtype, &inputs, 42);
    for v in variants {
        if !v.name().contains(&filter) {
            continue;
        }
        let t0 = Instant::now();
        let program = match v.prepare(&gpu, &shape, dtype, &inputs) {
            Ok(p) => p,
            Err(e) => {
                println!("{:28} {e:?}", v.name());
                continue;
            }
        };
        let out = run_and_read(&gpu, &program, Duration::from_secs(600)).unwrap();
        let first = t0.elapsed();
        let verdict = reference.check(&out);
        let timer = Timer::new(&gpu, Duration::from_secs(600));
        let mut best = f64::MAX;
        let c0 = cpu_seconds();
        for _ in 0..reps {
            best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
        }
        let cpu = (cpu_seconds() - c0) / reps as f64;
        println!(
            "{:28} {:9.2} ms {:7.3} GFLOP/s [cpu-based x2 cores: {:7.3} GFLOP/s {:7.3} GB/s] {:7.3} GB/s  pass={} err={:.2e} (bound {:.1e})  prepare+first {:.1?} dispatches {}",
            v.name(),
            best * 1e3,
            shape.flops() as f64 / best / 1e9,
            2.0 * shape.flops() as f64 / cpu / 1e9,
            2.0 * shape.bytes(dtype) as f64 / cpu / 1e9,
            shape.bytes(dtype) as f64 / best / 1e9,
            verdict.passed,
            verdict.max_err,
            verdict.bound,
            first,
            program.dispatches.len()
        );
        if !verdict.passed {
            println!("   {}", verdict.failure.unwrap_or_default());
        }
    }
}

fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 (1-based) of the whole line: 12 and 13 here.
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}
