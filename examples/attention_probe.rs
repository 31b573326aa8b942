//! Temporary probe (issue 3): verify and time attention variants. Not part of the crate.
use priceperf::gpu::Gpu;
use priceperf::kernels::attention::{AttentionInputs, AttentionVariant, KvAccess};
use priceperf::measure::{run_and_read, Timer};
use priceperf::shape::{AttentionShape, DType};
use priceperf::verify::attention::Reference;
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args[1] == "copy" {
        copy();
        return;
    }
    if args[1] == "dispatch" {
        dispatch_overhead();
        return;
    }
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
        if spec.starts_with("dec") {
            variants.push(AttentionVariant::Decode {
                tk: f[0],
                subs: f[1],
            });
            continue;
        }
        let kv = match spec.split(':').next().unwrap() {
            "ubo" => KvAccess::Uniform,
            "ubs" => KvAccess::UniformShared,
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

fn copy() {
    use priceperf::kernels::{bind, compile, storage_buffer, Dispatch, Program};
    let gpu = Gpu::open(None).unwrap();
    let n: u32 = 1 << 22; // vec4s: 64 MiB
    let src = "@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;\n@group(0) @binding(1) var<storage, read_write> b: array<vec4<f32>>;\n@compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {\n let i = gid.y * nwg.x * 64u + gid.x;\n b[i] = a[i];\n}\n";
    let pipeline = compile(&gpu, "copy", src, "main").unwrap();
    let a = storage_buffer(&gpu, "a", &vec![0u8; n as usize * 16], false);
    let b = storage_buffer(&gpu, "b", &vec![0u8; n as usize * 16], true);
    let bind_group = bind(&gpu, &pipeline, &[&a, &b]);
    let program = Program {
        dispatches: vec![Dispatch {
            pipeline,
            bind_group,
            workgroups: [16384, n / 64 / 16384, 1],
        }],
        output: b,
        output_dtype: DType::F32,
        output_len: 4,
        _keep: vec![a],
    };
    let timer = Timer::new(&gpu, Duration::from_secs(600));
    let c0 = cpu_seconds();
    let mut best = f64::MAX;
    for _ in 0..3 {
        best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
    }
    let cpu = (cpu_seconds() - c0) / 3.0;
    let bytes = 2.0 * n as f64 * 16.0;
    println!(
        "ssbo copy: {:.1} ms, {:.3} GB/s (cpu-based x2: {:.3} GB/s)",
        best * 1e3,
        bytes / best / 1e9,
        2.0 * bytes / cpu / 1e9
    );
}

fn dispatch_overhead() {
    use priceperf::kernels::{bind, compile, storage_buffer, Dispatch, Program};
    let gpu = Gpu::open(None).unwrap();
    let src = "@group(0) @binding(0) var<storage, read_write> b: array<f32>;\n@compute @workgroup_size(8)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>) {\n b[gid.x] = 1.0;\n}\n";
    let pipeline = compile(&gpu, "empty", src, "main").unwrap();
    let b = storage_buffer(&gpu, "b", &vec![0u8; 4096], true);
    let mut dispatches = vec![];
    for _ in 0..1000 {
        dispatches.push(Dispatch {
            pipeline: pipeline.clone(),
            bind_group: bind(&gpu, &pipeline, &[&b]),
            workgroups: [2, 1, 1],
        });
    }
    let program = Program {
        dispatches,
        output: b,
        output_dtype: DType::F32,
        output_len: 4,
        _keep: vec![],
    };
    let timer = Timer::new(&gpu, Duration::from_secs(600));
    let mut best = f64::MAX;
    for _ in 0..5 {
        best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
    }
    println!(
        "1000 dispatches: {:.1} ms -> {:.1} us each",
        best * 1e3,
        best * 1e3
    );
}
