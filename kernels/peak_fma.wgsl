// peak_fma.wgsl: the FMA throughput probe. Measures the adapter's practical arithmetic peak
// for one storage type, the ceiling the kernels' % of measured peak is taken against.
//
// What it computes: every invocation runs CHAINS independent vec4 chains of a = a·a + c (one fma)
// for ITERS iterations of the loop, each unrolled UNROLL times, and writes the sum of its
// chains so the compiler cannot drop them. FLOPs = invocations · ITERS · UNROLL · CHAINS · 8.
// Nothing may be known at compile time: every lane of every chain starts from the
// invocation's s, and each step squares its own value (no constant multiplier whose powers a
// compiler could precompute). The first probe started three lanes of each vec4 from
// constants, and NVIDIA's Vulkan driver computed those at compile time: the H200 read
// 184 TFLOP/s f32 against a 67 TFLOP/s spec, timestamps and wall clock alike. Every chain
// converges to the fixed point p = p² + C (about
// 0.1127 for C = 0.1), whose square stays a normal f16, and the host checks each output is
// CHAINS·p, so a dropped chain fails. Independent chains hide the fma latency; on lavapipe
// every invocation is one SIMD lane, so each vec4 chain takes 4 vector registers; GPUs
// hide latency across threads anyway.
//
// Bindings (group 0):
//   0 storage rw  out: array<vec4<f32>>, one per invocation
// Dispatch: (GROUPS, 1, 1) workgroups of 64 invocations.
// Tile parameters: CHAINS, ITERS and UNROLL (text-substituted); the host sizes the dispatch
// so one execution takes tens of milliseconds.
// Template fields: ENABLE_F16 ELEM C DECLARE ITERS BODY SUM.
{{ENABLE_F16}}
alias E = {{ELEM}};

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = E(f32(gid.x & 255u) * 1e-3);
    let c = vec4<E>(E({{C}}));
{{DECLARE}}
    for (var i = 0u; i < {{ITERS}}u; i++) {
{{BODY}}
    }
    out[gid.x] = vec4<f32>({{SUM}});
}
