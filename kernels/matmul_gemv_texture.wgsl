// matmul_gemv_texture.wgsl: C = A·Bᵀ for skinny A (M <= 8 rows: decode, batched up to 8
// sequences), B stored [n, k] (the weights, one row per output column) in a read-only
// storage texture, each lane walking whole B rows.
//
// Why: on lavapipe a texel load is vectorised (8 lanes' 16-byte texels in one sequence),
// while a uniform- or storage-buffer load at per-lane addresses is a scalar load per lane
// and component. matmul_gemv_ubo.wgsl reads B through uniform windows at 62-66% of the
// copy bandwidth; the same products from a texture ran 1.24-2.25x faster in turns with it
// (examples/alternate.rs, gpt2 and llama-3.2-1b decode shapes, f16 and f32). Lane l of each
// 8-lane group owns output columns base + l + 8j: at each texel step the 8 lanes read the
// same texel column of 8 different B rows, 8 streams through memory.
//
// Memory layout: B [N, K] row-major in the storage type E, uploaded bytes as they are into
// an rgba32uint texture of KT = K·size(E)/16 texels a row (8 halves, or 4 f32 bit patterns,
// a texel), N rows, folded into blocks side by side when N passes the adapter's
// max_texture_dimension_2d (b_texel, from src/kernels/texel_layout.rs). A [M, K] in a
// uniform buffer, read as the same 16-byte texels: every lane reads the same one, so it
// serves TN columns. C [M, N] row-major in E. K must fill whole texels (the host checks).
// N and KT are uniforms and the A binding is declared whole (64 KiB), so shapes share a
// compiled kernel unless M, the dtype or B's folding differ.
//
// Bindings (group 0):
//   0 uniform  Params { n, kt }
//   1 uniform  aw: array<vec4<u32>, AV>  (A in its first M·KT texels; AV = 4096, 64 KiB)
//   2 texture_storage_2d<rgba32uint, read>  B
//   3 storage read_write  c: array<E>
// Dispatch: (ceil(n / (8·NSG·TN)), 1, 1) workgroups of 8·NSG invocations; invocation li
// owns columns wid.x·8·NSG·TN + (li / 8)·8·TN + li % 8 + 8j for j < TN, clamped to n - 1 on
// load and skipped on store.
// Tile parameters (unrolled by the host into DECLARE, STEP and STORE, or substituted): M
// (A rows; at 16 rows the GEMM kernels won), TN (columns per lane: TN·M accumulators and
// TN texels in flight; 2 and 4 were fastest, 8 slower), NSG (8-lane groups per workgroup,
// WG = 8·NSG: lavapipe pays a fixed cost per workgroup, and four groups amortised it).
// Nothing here needs subgroup operations: on any adapter the result is the same, only the
// access pattern is tuned for 8-lane SIMD.
// Template fields: ENABLE_F16 ELEM AV B_TEXEL WG COLS GROUP_COLS DECLARE STEP STORE.
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    n: u32,
    kt: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> aw: array<vec4<u32>, {{AV}}>;
@group(0) @binding(2) var b_tex: texture_storage_2d<rgba32uint, read>;
@group(0) @binding(3) var<storage, read_write> c: array<E>;

{{B_TEXEL}}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let base = wid.x * {{COLS}}u + (li / 8u) * {{GROUP_COLS}}u + li % 8u;
    let last = p.n - 1u;
{{DECLARE}}
    for (var t = 0u; t < p.kt; t++) {
{{STEP}}
    }
{{STORE}}
}
