// attention_flash_merge.wgsl: second pass of flash-decoding (split mode of
// attention_flash_row.wgsl). Each of the NSPLIT key chunks left, per query row, its running
// max m_c, sum l_c (log2 units) and unnormalised output o_c; this pass combines them:
//   M = max_c m_c,  L = Σ_c l_c·2^(m_c - M),  O = Σ_c o_c·2^(m_c - M),  out = O / L
// (0 when L = 0, i.e. the row saw no key). Causal rows read only the chunks that hold keys
// they see (the first pass skipped the others and never wrote them).
//
// Memory layout: part_o[B, Hq, Sq, NSPLIT, D] f32, part_ml[B, Hq, Sq, NSPLIT] vec2<f32>,
// O[B, Hq, Sq, D] row-major in the storage type E; row r = (b·Hq + h)·Sq + i.
//
// Bindings (group 0):
//   0 uniform  Params (attention_params.wgsl, the PARAMS field)
//   1 storage read        part_o: array<vec4<f32>>
//   2 storage read        part_ml: array<vec2<f32>>
//   3 storage read_write  out: array<vec4<E>>
// Dispatch: one invocation per output vec4 (B·Hq·Sq·D/4 of them), workgroups of 64 on a
// 2-D grid (x <= 65535); index = (wid.y · nwg.x + wid.x) · 64 + lid.
// Tile parameters: D4 = D / 4 (text-substituted).
// Template fields: PARAMS, ENABLE_F16, ELEM (f32 | f16), D4.
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

const D4: u32 = {{D4}}u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part_o: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> part_ml: array<vec2<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<E>>;

@compute @workgroup_size(64, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let idx = (wid.y * nwg.x + wid.x) * 64u + li;
    if (idx >= p.b * p.hq * p.sq * D4) {
        return;
    }
    let r = idx / D4;
    let c = idx % D4;
    let i = r % p.sq;
    var n = p.nsplit;
    if (p.causal != 0u) {
        let last = min(i32(i) + p.shift, i32(p.skv) - 1);
        n = select(0u, min(p.nsplit, u32(last) / p.chunk + 1u), last >= 0);
    }
    let base = r * p.nsplit;
    var mx = -3.0e38;
    for (var s = 0u; s < n; s++) {
        mx = max(mx, part_ml[base + s].x);
    }
    var sum = 0.0;
    var acc = vec4<f32>(0.0);
    for (var s = 0u; s < n; s++) {
        let ml = part_ml[base + s];
        let w = exp2(ml.x - mx);
        sum = fma(ml.y, w, sum);
        acc = fma(part_o[(base + s) * D4 + c], vec4<f32>(w), acc);
    }
    out[idx] = vec4<E>(select(vec4<f32>(0.0), acc / sum, sum > 0.0));
}
