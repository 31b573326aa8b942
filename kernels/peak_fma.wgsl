// peak_fma.wgsl: the FMA throughput probe. Measures the adapter's practical arithmetic peak
// for one storage type, the ceiling the kernels' % of measured peak is taken against.
//
// What it computes: every invocation runs CHAINS independent vec4 fma chains (a = a·m + c)
// for ITERS iterations of the loop, each unrolled UNROLL times, and writes the sum of its
// chains so the compiler cannot drop them. FLOPs = invocations · ITERS · UNROLL · CHAINS · 8.
// Independent chains hide the fma latency; on lavapipe every invocation is one SIMD lane,
// so each vec4 chain takes 4 vector registers and CHAINS = 2 (8 registers) is what keeps
// two fma units busy without spilling; GPUs hide latency across threads anyway. m slightly
// below 1 and c small keep every value finite and normal.
//
// Bindings (group 0):
//   0 storage rw  out: array<vec4<f32>>, one per invocation
// Dispatch: (GROUPS, 1, 1) workgroups of 64 invocations.
// Tile parameters: CHAINS, ITERS and UNROLL (text-substituted); the host sizes the dispatch
// so one execution takes tens of milliseconds.
// Template fields: ENABLE_F16 ELEM DECLARE ITERS BODY SUM.
{{ENABLE_F16}}
alias E = {{ELEM}};

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let s = E(f32(gid.x & 255u) * 1e-3);
    let m = vec4<E>(E(0.999));
    let c = vec4<E>(E(0.001));
{{DECLARE}}
    for (var i = 0u; i < {{ITERS}}u; i++) {
{{BODY}}
    }
    out[gid.x] = vec4<f32>({{SUM}});
}
