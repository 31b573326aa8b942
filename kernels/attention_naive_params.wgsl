// attention_naive_params.wgsl: the uniform block of the naive attention path's three steps,
// NaiveParams in src/kernels/attention.rs (same fields, same order). Not a kernel on its
// own: the host puts it into attention_naive_scores, _softmax and _pv as their PARAMS
// field, bound at group 0, binding 0.
//   b, hq, hkv, sq, skv, d  batch, query heads, KV heads, query and key positions, head dim
//   rep                     hq / hkv, query heads per KV head (GQA)
//   causal                  1: query pos sees keys 0 ..= pos + shift (shift = skv - sq)
//   scale                   1/sqrt(d)
struct Params {
    b: u32,
    hq: u32,
    hkv: u32,
    sq: u32,
    skv: u32,
    d: u32,
    rep: u32,
    causal: u32,
    shift: i32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
}
