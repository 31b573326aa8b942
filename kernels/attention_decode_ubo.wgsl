// attention_decode_ubo.wgsl: decode attention (Sq = 1) for lavapipe: flash-decoding over
// uniform-buffer windows with one key per SIMD lane. First pass of two; the second is
// attention_flash_merge.wgsl.
//
// What it computes: for KV head g of batch b, the REP query heads g·REP .. g·REP + REP - 1
// (GQA: they share K and V, which are therefore read once for all of them) attend to the
// keys of one window sub-chunk; each lane runs FlashAttention-2's online softmax (f32 running
// max, sum and output per head) over its own keys, then the 8 lanes are combined with
// subgroupMax / subgroupAdd (rescaling each lane by 2^(m_lane - m_max)) and lane 0 writes the
// chunk's raw (o, m, l) per head to part_o / part_ml.
//
// Why this shape: on lavapipe a storage-buffer load is a scalar loop over the 8 SIMD lanes,
// a uniform-buffer load one vector gather. With one key per lane every gather brings 8
// different K (or V) rows' worth of useful bytes, so decode runs at memory speed instead of
// load-instruction speed. The K/V buffers stay in their [B, Hkv, Skv, D] layout; the host
// binds windows of them (<= 64 KiB) as uniform buffers, one dispatch per (b, g, window).
//
// Memory layout: Q[B, Hq, 1, D], K and V [B, Hkv, Skv, D] row-major in the storage type E;
// f16 windows are read as vec4<u32> (8 halves, unpack2x16float). part_o[B, Hq, 1, NSPLIT, D]
// and part_ml[B, Hq, 1, NSPLIT] are f32. Split index = split0 + sub, keys of split s are
// s·CHUNK .. s·CHUNK + CHUNK - 1.
// Keys past the window's keys or past the causal limit (key > shift, queries aligned to the
// last key) are masked: they add exactly 0 (the window padding and the next head's rows are
// finite). A lane or a whole chunk that sees no key contributes m = -inf (finite), l = 0.
//
// Bindings (group 0):
//   0 uniform  Params (as attention_flash_row.wgsl)
//   1 uniform  Window { batch, g, k0, nkeys, kv_off, q_off, split0, nsub }
//   2 uniform  qw: array<vec4<KW>, QV>  (the REP query rows, starting q_off vec4s in)
//   3 uniform  kw: array<vec4<KW>, NV>  (K window; key k0 starts kv_off vec4s in)
//   4 uniform  vw: array<vec4<KW>, NV>
//   5 storage read_write  part_o: array<vec4<f32>>
//   6 storage read_write  part_ml: array<vec2<f32>>
// Dispatch: one per (b, g, window) in any order, each NSUB workgroups of 8 invocations
// (x = sub-chunk). Needs SUBGROUP and subgroups of at least 8 invocations, so that the
// workgroup is one subgroup.
// Tile parameters (text-substituted): REP query heads per KV head (unrolled; the host
// refuses REP·D > 1024 to bound private state), TK keys per lane per step (8·TK keys per
// workgroup step), D4 = D / 4 (unrolled), QV and NV window sizes; the vec4s per K/V row
// are a literal in the generated STEP code.
// Template fields: ENABLE_F16 ELEM KW QV NV D4 TK LOAD_Q INIT STEP REDUCE.
{{ENABLE_F16}}
alias E = {{ELEM}};

struct Params {
    b: u32,
    hq: u32,
    hkv: u32,
    sq: u32,
    skv: u32,
    rep: u32,
    causal: u32,
    nsplit: u32,
    shift: i32,
    chunk: u32,
    scale_log2e: f32,
    _pad: u32,
}

struct Window {
    batch: u32,
    g: u32,
    k0: u32,
    nkeys: u32,
    kv_off: u32,
    q_off: u32,
    split0: u32,
    nsub: u32,
}

const D4: u32 = {{D4}}u;
const TK: u32 = {{TK}}u;
// "Minus infinity" for max and masks: finite, so no inf - inf can make a NaN.
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> w: Window;
@group(0) @binding(2) var<uniform> qw: array<vec4<{{KW}}>, {{QV}}>;
@group(0) @binding(3) var<uniform> kw: array<vec4<{{KW}}>, {{NV}}>;
@group(0) @binding(4) var<uniform> vw: array<vec4<{{KW}}>, {{NV}}>;
@group(0) @binding(5) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> part_ml: array<vec2<f32>>;

@compute @workgroup_size(8, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let sub = wid.x;
    let k_begin = i32(w.k0 + sub * p.chunk);
    let k_end = min(i32(w.k0 + w.nkeys), k_begin + i32(p.chunk));
    var lim = i32(p.skv) - 1;
    if (p.causal != 0u) {
        lim = min(p.shift, lim);
    }
    let see_end = min(k_end, lim + 1);
{{LOAD_Q}}
{{INIT}}
    for (var t0 = k_begin; t0 < see_end; t0 += i32(8u * TK)) {
{{STEP}}
    }
{{REDUCE}}
}
