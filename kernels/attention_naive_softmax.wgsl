// attention_naive_softmax.wgsl: step 2 of the naive attention path. A numerically stable
// row softmax over the materialised scores, in place: P[r, j] = exp(S[r, j] - max_j S) / sum.
//
// Memory layout: S[B, Hq, Sq, Skv] row-major f32 (written by attention_naive_scores.wgsl);
// row r = (b·Hq + h)·Sq + i. Causal rows see keys 0 ..= i + shift (shift = Skv - Sq); the
// masked entries of P are written as 0, and a row that sees no key at all is all zeros (never
// NaN): the P·V step then yields 0 for it.
//
// Bindings (group 0):
//   0 uniform  Params (attention_naive_params.wgsl, the PARAMS field)
//   1 storage read_write  s: array<f32>
// Dispatch: one invocation per row, workgroups of 64 laid out on a 2-D grid
// (x <= 65535, y = as many rows of x as needed); row = (wid.y · nwg.x + wid.x) · 64 + lid.
// Tile parameters: none. Three passes over the row (max, sum, normalise), all in f32.
// Template fields: PARAMS.
{{PARAMS}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let r = (wid.y * nwg.x + wid.x) * 64u + li;
    if (r >= p.b * p.hq * p.sq) {
        return;
    }
    let i = r % p.sq;
    var n = p.skv;
    if (p.causal != 0u) {
        n = u32(clamp(i32(i) + p.shift + 1, 0, i32(p.skv)));
    }
    let base = r * p.skv;
    var m = -3.0e38;
    for (var j = 0u; j < n; j++) {
        m = max(m, s[base + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < n; j++) {
        sum += exp(s[base + j] - m);
    }
    let inv = select(0.0, 1.0 / sum, sum > 0.0);
    for (var j = 0u; j < n; j++) {
        s[base + j] = exp(s[base + j] - m) * inv;
    }
    for (var j = n; j < p.skv; j++) {
        s[base + j] = 0.0;
    }
}
