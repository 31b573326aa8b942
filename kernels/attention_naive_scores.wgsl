// attention_naive_scores.wgsl: step 1 of the naive attention path (the baseline every fused
// kernel is compared against). S = scale · Q·Kᵀ, materialised in full: one score per
// invocation, the plain "matmul with transposed B" with the GQA head mapping.
//
// Memory layout: Q[B, Hq, Sq, D], K[B, Hkv, Skv, D] row-major (storage type E); the scores
// S[B, Hq, Sq, Skv] row-major in f32 (O(Sq·Skv) per head: the memory the fused kernels avoid).
// Query head h reads KV head h / rep (rep = Hq / Hkv). Causal: query i sits at key position
// i + shift (shift = Skv - Sq: queries aligned to the last keys) and sees keys 0 ..= i + shift;
// masked scores are not computed (the softmax step never reads them).
//
// Bindings (group 0):
//   0 uniform  Params (attention_naive_params.wgsl, the PARAMS field)
//   1 storage read        q: array<vec4<E>>   (D % 4 == 0 for every supported head dim)
//   2 storage read        k: array<vec4<E>>
//   3 storage read_write  s: array<f32>
// Dispatch: (ceil(Skv / 16), ceil(Sq / 16), B·Hq) workgroups of 16 x 16; x = key, y = query.
// Tile parameters: none (no workgroup memory, no register tile); D is a uniform.
// Template fields: PARAMS, ENABLE_F16, ELEM (f32 | f16).
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<E>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<E>>;
@group(0) @binding(3) var<storage, read_write> s: array<f32>;

@compute @workgroup_size(16, 16, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let i = gid.y;
    let bh = gid.z;
    if (i >= p.sq || j >= p.skv) {
        return;
    }
    if (p.causal != 0u && i32(j) > i32(i) + p.shift) {
        return;
    }
    let batch = bh / p.hq;
    let h = bh % p.hq;
    let g = h / p.rep;
    let d4 = p.d / 4u;
    let q0 = (bh * p.sq + i) * d4;
    let k0 = ((batch * p.hkv + g) * p.skv + j) * d4;
    var acc = 0.0;
    for (var c = 0u; c < d4; c++) {
        acc += dot(vec4<f32>(q[q0 + c]), vec4<f32>(k[k0 + c]));
    }
    s[(bh * p.sq + i) * p.skv + j] = acc * p.scale;
}
