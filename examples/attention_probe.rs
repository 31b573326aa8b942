//! Temporary probe (issue 3): cost of load kinds on the adapter. Not part of the crate.
use priceperf::gpu::Gpu;
use priceperf::kernels::{bind, compile, storage_buffer, uniform_buffer, Dispatch, Program};
use priceperf::measure::Timer;
use std::time::Duration;

fn main() {
    let gpu = Gpu::open(None).unwrap();
    let l = gpu.limits();
    println!(
        "ubo max {} align {} tex2d {}",
        l.max_uniform_buffer_binding_size,
        l.min_uniform_buffer_offset_alignment,
        l.max_texture_dimension_2d
    );
    let iters = 4096u32;
    let kinds = [
        ("ssbo_uniform", "@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;", "src[(i * 7u) & 4095u]"),
        ("ssbo_lane", "@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;", "src[(i * 7u + li) & 4095u]"),
        ("ubo_uniform", "@group(0) @binding(1) var<uniform> src: array<vec4<f32>, 4096>;", "src[(i * 7u) & 4095u]"),
        ("ubo_lane", "@group(0) @binding(1) var<uniform> src: array<vec4<f32>, 4096>;", "src[(i * 7u + li) & 4095u]"),
        ("shared_uniform", "var<workgroup> src: array<vec4<f32>, 4096>;", "src[(i * 7u) & 4095u]"),
        ("ubo_f16x8", "@group(0) @binding(1) var<uniform> src: array<vec4<u32>, 4096>;", "vec4<f32>(unpack2x16float(src[(i * 7u) & 4095u].x), unpack2x16float(src[(i * 7u) & 4095u].y))"),
        ("alu_only", "", "vec4<f32>(f32(i))"),
    ];
    for (name, off) in [
        ("unrolled_const", "0u"),
        ("unrolled_var", "(gid.y * 64u)"),
        ("unrolled_wid", "(wid.y * 64u)"),
    ] {
        let mut body = String::new();
        for k in 0..1024 {
            body.push_str(&format!(
                "    acc = fma(src[{off} + {}u], acc, src[{off} + {}u]);\n",
                k % 4000,
                (k * 3 + 1) % 4000
            ));
        }
        let src = format!(
            "@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;\n@group(0) @binding(1) var<uniform> src: array<vec4<f32>, 4096>;\n\
             @compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {{\n\
             var acc = vec4<f32>(0.0);\n for (var i = 0u; i < 32u; i++) {{\n{body} }}\n out[gid.x] = acc;\n}}\n"
        );
        let t0 = std::time::Instant::now();
        let pipeline = compile(&gpu, name, &src, "main").unwrap();
        let ct = t0.elapsed();
        let out = storage_buffer(&gpu, "out", &vec![0u8; 64 * 64 * 16], true);
        let ubo = uniform_buffer(&gpu, "src", &vec![0u8; 4096 * 16]);
        let bind_group = bind(&gpu, &pipeline, &[&out, &ubo]);
        let program = Program {
            dispatches: vec![Dispatch {
                pipeline,
                bind_group,
                workgroups: [64, 1, 1],
            }],
            output: out,
            output_dtype: priceperf::shape::DType::F32,
            output_len: 16,
            _keep: vec![],
        };
        let timer = Timer::new(&gpu, Duration::from_secs(60));
        let mut best = f64::MAX;
        for _ in 0..5 {
            best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
        }
        let batches = 64.0 * 64.0 / 8.0 * 32.0 * 2048.0;
        println!(
            "{name:16} {:8.2} ms  {:6.1} ns per vec4 load per 8-lane batch (compile {ct:?})",
            best * 1e3,
            best * 1e9 / batches * 2.0
        );
    }
    for (name, decl, expr) in kinds {
        let src = format!(
            "@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;\n{decl}\n\
             @compute @workgroup_size(64)\nfn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_index) li: u32) {{\n\
             var acc = vec4<f32>(0.0);\n for (var i = 0u; i < {iters}u; i++) {{ let x = {expr}; acc = fma(x, acc, x); }}\n out[gid.x] = acc;\n}}\n"
        );
        let pipeline = compile(&gpu, name, &src, "main").unwrap();
        let out = storage_buffer(&gpu, "out", &vec![0u8; 64 * 64 * 16], true);
        let data = vec![0u8; 4096 * 16];
        let src_buf = if name.starts_with("ubo") {
            Some(uniform_buffer(&gpu, "src", &data))
        } else if name.starts_with("ssbo") {
            Some(storage_buffer(&gpu, "src", &data, false))
        } else {
            None
        };
        let mut bufs = vec![&out];
        if let Some(b) = &src_buf {
            bufs.push(b);
        }
        let bind_group = bind(&gpu, &pipeline, &bufs);
        let program = Program {
            dispatches: vec![Dispatch {
                pipeline,
                bind_group,
                workgroups: [64, 1, 1],
            }],
            output: out,
            output_dtype: priceperf::shape::DType::F32,
            output_len: 16,
            _keep: vec![],
        };
        let timer = Timer::new(&gpu, Duration::from_secs(60));
        let mut best = f64::MAX;
        for _ in 0..5 {
            best = best.min(timer.time(&gpu, &program, 1).unwrap().as_secs_f64());
        }
        // 64 workgroups x 64 invocations x iters loads; per 8-lane batch:
        let batches = 64.0 * 64.0 / 8.0 * iters as f64;
        println!(
            "{name:16} {:8.2} ms  {:6.1} ns per vec4 load per 8-lane batch",
            best * 1e3,
            best * 1e9 / batches * 2.0
        );
    }
}
