// matmul_tiled.wgsl: C = A·B (or A·Bᵀ) with shared-memory tiles and register blocking:
// the portable GPU workhorse (the TF.js / Nomic / gpu.cpp design).
//
// A workgroup computes a BM x BN block of C. Per k-step of BK it stages A (transposed to
// k-major, so a thread reads its TM rows as vec4s) and B (BK x BN) in workgroup memory,
// then every invocation accumulates a TM x (4·TN4) register tile with a fully unrolled
// inner product.
//
// Bindings and operand access: see matmul_common.wgsl (prepended by the host).
// Dispatch: (ceil(n / BN), ceil(m / BM), batch) workgroups of (BN / (4·TN4)) x (BM / TM).
// Tile parameters (text-substituted):
//   BM, BN  block of C per workgroup; BM % TM == 0, BN % (4·TN4) == 0, BM % 4 == 0.
//   BK      k-step; BK % 4 == 0. Workgroup memory = (BM + BN)·BK·4 bytes, which must fit
//           max_compute_workgroup_storage_size (16 KiB by default; the host requests the
//           adapter's own limit).
//   TM, TN4 register tile per invocation; invocations = BM·BN / (TM·4·TN4) must fit
//           max_compute_invocations_per_workgroup (256 by default).
// Template fields: BM BN BK TM TN4 TX TY NT and the
// generated DECLARE LOAD_TILES INNER STORE blocks.

const BM: u32 = {{BM}}u;
const BN: u32 = {{BN}}u;
const BK: u32 = {{BK}}u;

// k-major: as_[kk * BM/4 + r/4][r % 4] = A(row0 + r, k0 + kk).
var<workgroup> as_: array<vec4<f32>, {{AS_LEN}}>;
// bs[kk * BN/4 + c/4][c % 4] = B(k0 + kk, col0 + c).
var<workgroup> bs: array<vec4<f32>, {{BS_LEN}}>;

@compute @workgroup_size({{TX}}, {{TY}}, 1)
fn main(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let batch = wg.z;
    let row0 = wg.y * BM;
    let col0 = wg.x * BN;
    let last_row = p.m - 1u;
{{DECLARE}}
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
{{LOAD_TILES}}
        workgroupBarrier();
{{INNER}}
        workgroupBarrier();
    }
{{STORE}}
}
