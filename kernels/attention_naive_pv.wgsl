// attention_naive_pv.wgsl: step 3 of the naive attention path. O = P·V over the materialised
// probabilities, one output vec4 (4 columns) per invocation.
//
// Memory layout: P[B, Hq, Sq, Skv] row-major f32 (from attention_naive_softmax.wgsl);
// V[B, Hkv, Skv, D] and O[B, Hq, Sq, D] row-major in the storage type E. Query head h reads
// KV head h / rep. Causal rows stop at key i + shift (the rest of P is 0 anyway).
//
// Bindings (group 0):
//   0 uniform  Params (attention_naive_params.wgsl, the PARAMS field)
//   1 storage read        s: array<f32>   (P)
//   2 storage read        v: array<vec4<E>>   (D % 4 == 0)
//   3 storage read_write  o: array<vec4<E>>
// Dispatch: (1, Sq, B·Hq) workgroups of 64; x = column vec4 (D / 4 <= 64), y = query,
// z = batch·head.
// Tile parameters: none.
// Template fields: PARAMS, ENABLE_F16, ELEM (f32 | f16).
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> s: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<vec4<E>>;
@group(0) @binding(3) var<storage, read_write> o: array<vec4<E>>;

@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    let i = gid.y;
    let bh = gid.z;
    let d4 = p.d / 4u;
    if (c >= d4) {
        return;
    }
    let batch = bh / p.hq;
    let g = (bh % p.hq) / p.rep;
    var n = p.skv;
    if (p.causal != 0u) {
        n = u32(clamp(i32(i) + p.shift + 1, 0, i32(p.skv)));
    }
    let s0 = (bh * p.sq + i) * p.skv;
    let v0 = (batch * p.hkv + g) * p.skv * d4 + c;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < n; j++) {
        acc = fma(vec4<f32>(s[s0 + j]), vec4<f32>(v[v0 + j * d4]), acc);
    }
    o[(bh * p.sq + i) * d4 + c] = vec4<E>(acc);
}
