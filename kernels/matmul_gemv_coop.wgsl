// matmul_gemv_coop.wgsl: C = A·Bᵀ for skinny A (M <= 8 rows: decode, batched up to 8
// sequences), B stored [n, k] (the weights, one row per output column), each workgroup
// reading R whole B rows together: the GPU decode design.
//
// Why: the lavapipe gemv kernels (matmul_gemv_texture.wgsl, matmul_gemv_ubo.wgsl) give each
// lane whole B rows, a serial walk along k per lane. On an H200 that kept only n/TN lanes
// busy and ran llama-3.1-8b's 4096x4096 decode product in 85 µs whatever n was (396 GB/s
// against a 4.2 TB/s copy). Here the WG lanes of a workgroup stride along the same rows
// together (lane l reads 16-byte units l, l + WG, ...: consecutive lanes, consecutive
// addresses), so n/R workgroups of WG lanes fill the GPU and every load is coalesced; the
// lanes' partial sums are then added by a tree in workgroup memory.
//
// Memory layout: A [M, K] and B [N, K] row-major in the storage type E, both read as
// 16-byte units (array<vec4<u32>>: 4 f32 bit patterns or 8 halves), KV units a row (the
// host checks that K fills whole units). C [M, N] row-major in E.
//
// Bindings (group 0):
//   0 uniform  Params { n, kv, groups_x }
//   1 storage read  a: array<vec4<u32>>
//   2 storage read  b: array<vec4<u32>>
//   3 storage read_write  c: array<E>
// Dispatch: ceil(n / R) workgroups of WG invocations on a 2-D grid, groups_x a row (WebGPU
// caps a dimension at 65535; llama-3.1-8b's LM head has 128256 rows): workgroup
// w = wid.y·groups_x + wid.x owns B rows w·R .. w·R + R - 1, loads clamped to row n - 1 and
// stores skipped past it (every lane reaches every barrier).
// Tile parameters (substituted): M (A rows), R (B rows per workgroup: each A unit a lane
// reads, from cache after the first row, serves R rows; M·R accumulators a lane), WG (lanes per workgroup, a power of two
// for the tree and at least M·R, which lanes 0 .. M·R - 1 store: more lanes per row suit
// long rows, fewer leave more workgroups for short ones). Workgroup memory: WG·M·R f32
// (8 KiB at WG 128 and M·R 16, inside WebGPU's 16 KiB default).
// Template fields: ENABLE_F16 ELEM M R WG DOT.
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    n: u32,
    kv: u32,
    groups_x: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> c: array<E>;

const M: u32 = {{M}}u;
const R: u32 = {{R}}u;
const WG: u32 = {{WG}}u;
const MR: u32 = M * R;

var<workgroup> partial: array<f32, {{WG}} * {{M}} * {{R}}>;

// The dot product of two 16-byte units, in f32: 8 halves or 4 f32 bit patterns each.
fn dot_units(xu: vec4<u32>, yu: vec4<u32>) -> f32 {
{{DOT}}
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let row0 = (wid.y * p.groups_x + wid.x) * R;
    var acc: array<f32, MR>;
    for (var t = li; t < p.kv; t += WG) {
        for (var r = 0u; r < R; r++) {
            let bu = b[min(row0 + r, p.n - 1u) * p.kv + t];
            for (var m = 0u; m < M; m++) {
                acc[m * R + r] += dot_units(a[m * p.kv + t], bu);
            }
        }
    }
    for (var i = 0u; i < MR; i++) {
        partial[i * WG + li] = acc[i];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            for (var i = 0u; i < MR; i++) {
                partial[i * WG + li] += partial[i * WG + li + s];
            }
        }
        workgroupBarrier();
    }
    if (li < MR) {
        let row = row0 + li % R;
        if (row < p.n) {
            c[(li / R) * p.n + row] = E(partial[li * WG]);
        }
    }
}
