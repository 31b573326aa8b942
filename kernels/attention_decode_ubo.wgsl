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
// binds windows of them (<= 64 KiB) as uniform buffers, NW window pairs per dispatch: a
// lavapipe dispatch costs about 25 us of host work, a third of a 64 KiB window's time, so
// one window per dispatch left decode well short of memory speed.
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
//   0 uniform  Params (attention_params.wgsl, the PARAMS field)
//   1 uniform  Windows { slot[NW] = (k0, nkeys, kv_off, split0),
//                        head[NW] = (batch, g, q_off, 0) }
//   2 uniform  qw: array<vec4<KW>, QV>  (a Q window holding the REP query rows of every
//              slot's head, slot i's starting head[i].z vec4s in)
//   3 + 2i, 4 + 2i uniform  kw{i}, vw{i}: array<vec4<KW>, NV>  (K and V windows of slot i;
//              key k0 starts kv_off vec4s in; unused slots repeat a used window)
//   3 + 2·NW   storage read_write  part_o: array<vec4<f32>>
//   4 + 2·NW   storage read_write  part_ml: array<vec2<f32>>
// Dispatch: one per NW consecutive windows in (b, g, window) order, which may belong to
// different heads (short contexts: at skv = 80 a head is one window, and one dispatch per
// head cost more host time than the kernel), NSUB x windows workgroups of 8 invocations
// (x = sub-chunk, y = window slot). Needs SUBGROUP and subgroups of at least
// 8 invocations, so that the workgroup is one subgroup.
// Tile parameters (text-substituted): REP query heads per KV head (unrolled; the host
// refuses REP·D > 1024 to bound private state), TK keys per lane per step (8·TK keys per
// workgroup step), D4 = D / 4 (unrolled), QV and NV (the K/V bindings) window sizes, NW
// window pairs per dispatch (3 + 2·NW uniform bindings must fit the adapter's per-stage
// limit: NW <= 6 at lavapipe's 15, 4 at WebGPU's default 12; each slot repeats the step, so
// the host also keeps REP·D·NW <= 1024, which bounds compile time and spills); the vec4s per
// K/V row are a literal in the generated STEP code.
// Template fields: PARAMS ENABLE_F16 ELEM KW QV NW D4 TK KV_BINDINGS LOAD_Q INIT WINDOWS REDUCE.
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

struct Windows {
    // Per slot: first key, keys, vec4 offset of the first key in the window, first split.
    slot: array<vec4<u32>, {{NW}}>,
    // Per slot: batch, KV head, vec4 offset of its first query row in the Q window, unused.
    head: array<vec4<u32>, {{NW}}>,
}

const D4: u32 = {{D4}}u;
const TK: u32 = {{TK}}u;
// "Minus infinity" for max and masks: finite, so no inf - inf can make a NaN.
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> w: Windows;
@group(0) @binding(2) var<uniform> qw: array<vec4<{{KW}}>, {{QV}}>;
{{KV_BINDINGS}}

@compute @workgroup_size(8, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let sub = wid.x;
    let slot = w.slot[wid.y];
    let head = w.head[wid.y];
    let k0 = slot.x;
    let kv_off = slot.z;
    let split0 = slot.w;
    let k_begin = i32(k0 + sub * p.chunk);
    let k_end = min(i32(k0 + slot.y), k_begin + i32(p.chunk));
    var lim = i32(p.skv) - 1;
    if (p.causal != 0u) {
        lim = min(p.shift, lim);
    }
    let see_end = min(k_end, lim + 1);
{{LOAD_Q}}
{{INIT}}
    // One loop per window slot: WGSL cannot index bindings, so the step is repeated with
    // each slot's K and V names.
{{WINDOWS}}
{{REDUCE}}
}
