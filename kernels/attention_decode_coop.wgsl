// attention_decode_coop.wgsl: decode attention (Sq = 1) with a whole workgroup on one chunk
// of keys of one KV head, for HEADS of the query heads that read it: the GPU design of
// flash-decoding. First pass of two; the second is attention_flash_merge.wgsl.
//
// What it computes: for query heads h0 .. h0 + HEADS - 1 of batch b (h0 = HEADS·y; all of
// them read KV head h0 / rep: GQA), over the keys of chunk s (keys s·CHUNK .. s·CHUNK +
// CHUNK - 1, those the causal limit lets it see): each head's max score m, sum
// l = Σ 2^(score - m) and unnormalised output o = Σ 2^(score - m)·V[key] (scores in log2
// units, q pre-scaled by scale·log2(e)), written raw to part_o / part_ml for the merge.
// HEADS = 1 gives each query head its own workgroups; HEADS = rep (the `g` variants) gives
// a KV head's query heads one workgroup, which reads each K and V row once for all of them
// instead of once per head.
//
// Why: the lavapipe decode kernels (attention_decode_texture.wgsl, attention_decode_ubo.wgsl)
// give each 8-lane workgroup a KV head and a chunk, one key per lane at a time. On an H200
// (32-lane subgroups) that kept a few hundred lanes busy and ran llama-3.1-8b's decode
// attention at context 576 in 227 µs (10 GB/s against a 4.2 TB/s copy). Here WG lanes
// share a chunk of HEADS query heads in three steps: S lanes score each key (S = 1: each lane its
// own keys; S = 8: eight lanes split the key's row, consecutive lanes reading consecutive
// 16 bytes, and add their parts by subgroupShuffleXor), a tree in workgroup memory finds
// the max and the sum, and for P·V the lanes split into groups of U (the row's 16-byte
// units), lane u of a group reading unit u of every (WG / U)-th key, so a group's loads of a
// V row are consecutive; the groups' sums are added at the end. B·(Hq / HEADS)·NSPLIT
// workgroups fill the GPU at every context length, given a CHUNK small enough.
//
// Memory layout: Q[B, Hq, 1, D], K and V [B, Hkv, Skv, D] row-major in the storage type E,
// read as 16-byte units (array<vec4<u32>>: 8 halves or 4 f32 bit patterns, U = D·size(E)/16
// a row; every head dim and dtype fills whole units); part_o[B, Hq, 1, NSPLIT, D] and
// part_ml[B, Hq, 1, NSPLIT] f32. A chunk past the causal limit (key > shift) sees no key and
// writes m = -inf (finite), l = 0, o = 0; keys past Skv are masked the same way.
//
// Bindings (group 0):
//   0 uniform  Params (attention_params.wgsl, the PARAMS field)
//   1 storage read  q: array<vec4<u32>>
//   2 storage read  k: array<vec4<u32>>
//   3 storage read  v: array<vec4<u32>>
//   4 storage read_write  part_o: array<vec4<f32>>
//   5 storage read_write  part_ml: array<vec2<f32>>
// Dispatch: (NSPLIT, Hq / HEADS, B) workgroups of WG invocations, NSPLIT = ceil(Skv / CHUNK).
// Tile parameters (substituted): WG (lanes, a power of two for the trees and at least U),
// CHUNK (keys per workgroup, a multiple of WG: more workgroups and partials when small,
// more keys per lane when large), S (lanes per key in the scores: 1, or 8 with subgroups of
// at least 8 lanes, the host checks, and lanes 8i .. 8i + 7 in one subgroup, which
// verification would catch were it not so), U, NV = vec4<f32>s a unit (2 for f16, 1 for
// f32), D4 = D / 4, HEADS (1, or the shape's rep). Workgroup memory, HEADS times a head's
// 16·D4 (q) + 4·CHUNK (scores) + 4·WG (tree) + 16·NV·WG (P·V sums) bytes: 7 KiB at WG 128,
// CHUNK 512, d 128, f16, one head; 22 KiB at CHUNK 128 with 4 heads. Private: HEADS·NV
// vec4 accumulators a lane.
// Template fields: PARAMS ENABLE_F16 ELEM WG CHUNK S U NV D4 HEADS UNPACK REDUCE.
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

const WG: u32 = {{WG}}u;
const CHUNK: u32 = {{CHUNK}}u;
const S: u32 = {{S}}u;
const U: u32 = {{U}}u;
const NV: u32 = {{NV}}u;
const D4: u32 = {{D4}}u;
const HEADS: u32 = {{HEADS}}u;
// P·V groups of U lanes; group g sums keys g, g + GROUPS, ... (lanes past them idle).
const GROUPS: u32 = WG / U;
// "Minus infinity" for max and masks: finite, so no inf - inf can make a NaN.
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<u32>>;
@group(0) @binding(4) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> part_ml: array<vec2<f32>>;

// Head r's q at qs[r·D4 ..], its weights at w[r·CHUNK ..], its tree at tree[r·WG ..], and
// lane l's P·V sum i for it at po[(r·NV + i)·WG + l] (consecutive lanes, consecutive
// 16 bytes: no bank conflicts).
var<workgroup> qs: array<vec4<f32>, {{D4}} * {{HEADS}}>;
var<workgroup> w: array<f32, {{CHUNK}} * {{HEADS}}>;
var<workgroup> tree: array<f32, {{WG}} * {{HEADS}}>;
var<workgroup> po: array<vec4<f32>, {{WG}} * {{NV}} * {{HEADS}}>;

// A 16-byte unit as NV vec4<f32>s, in row order.
fn unpack_unit(xu: vec4<u32>) -> array<vec4<f32>, NV> {
{{UNPACK}}
}

// Every head's max (or sum) of every lane's x[r], all heads in the same steps (one
// barrier a step, however many heads); called by all lanes together.
fn tree_max(x: array<f32, HEADS>, li: u32) -> array<f32, HEADS> {
    for (var r = 0u; r < HEADS; r++) {
        tree[r * WG + li] = x[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            for (var r = 0u; r < HEADS; r++) {
                tree[r * WG + li] = max(tree[r * WG + li], tree[r * WG + li + s]);
            }
        }
        workgroupBarrier();
    }
    var out: array<f32, HEADS>;
    for (var r = 0u; r < HEADS; r++) {
        out[r] = tree[r * WG];
    }
    workgroupBarrier();
    return out;
}

fn tree_sum(x: array<f32, HEADS>, li: u32) -> array<f32, HEADS> {
    for (var r = 0u; r < HEADS; r++) {
        tree[r * WG + li] = x[r];
    }
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            for (var r = 0u; r < HEADS; r++) {
                tree[r * WG + li] += tree[r * WG + li + s];
            }
        }
        workgroupBarrier();
    }
    var out: array<f32, HEADS>;
    for (var r = 0u; r < HEADS; r++) {
        out[r] = tree[r * WG];
    }
    workgroupBarrier();
    return out;
}

@compute @workgroup_size({{WG}}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let s = wid.x;
    let h0 = wid.y * HEADS;
    // Head r's row of Q (and of the partials) is row0 + r.
    let row0 = wid.z * p.hq + h0;
    // The first K/V row of these heads' KV head.
    let kv0 = (wid.z * p.hkv + h0 / p.rep) * p.skv;
    let k0 = s * CHUNK;
    var last = i32(p.skv) - 1;
    if (p.causal != 0u) {
        last = min(p.shift, last);
    }
    // Keys k0 .. k0 + n - 1 are seen; none when the chunk lies past the limit.
    let n = u32(clamp(last + 1 - i32(k0), 0, i32(CHUNK)));
    for (var t = li; t < U * HEADS; t += WG) {
        // Unit t % U of head t / U's q: the heads' rows are consecutive.
        let qu = unpack_unit(q[row0 * U + t]);
        for (var i = 0u; i < NV; i++) {
            qs[t * NV + i] = qu[i] * p.scale_log2e;
        }
    }
    workgroupBarrier();
    // Scores: key j0 + li / S in each step, its row split over S lanes, each unit of it
    // loaded once for every head.
    let sl = li % S;
    var mx: array<f32, HEADS>;
    for (var r = 0u; r < HEADS; r++) {
        mx[r] = NEG;
    }
    for (var j0 = 0u; j0 < CHUNK; j0 += WG / S) {
        let j = j0 + li / S;
        var part: array<f32, HEADS>;
        if (j < n) {
            let at = (kv0 + k0 + j) * U;
            for (var t = sl; t < U; t += S) {
                let ku = unpack_unit(k[at + t]);
                for (var r = 0u; r < HEADS; r++) {
                    for (var i = 0u; i < NV; i++) {
                        part[r] += dot(qs[(r * U + t) * NV + i], ku[i]);
                    }
                }
            }
        }
        for (var r = 0u; r < HEADS; r++) {
{{REDUCE}}
            let score = select(NEG, part[r], j < n);
            if (sl == 0u) {
                w[r * CHUNK + j] = score;
            }
            mx[r] = max(mx[r], score);
        }
    }
    var m = tree_max(mx, li);
    var sum: array<f32, HEADS>;
    for (var r = 0u; r < HEADS; r++) {
        for (var j = li; j < CHUNK; j += WG) {
            let e = select(0.0, exp2(w[r * CHUNK + j] - m[r]), j < n);
            w[r * CHUNK + j] = e;
            sum[r] += e;
        }
    }
    // tree_sum's barriers also publish every lane's weights for P·V.
    var l = tree_sum(sum, li);
    let u = li % U;
    let group = li / U;
    // Head r's sums at o[r·NV ..]; each V unit loaded once for every head.
    var o: array<vec4<f32>, NV * HEADS>;
    if (group < GROUPS) {
        for (var j = group; j < n; j += GROUPS) {
            let vu = unpack_unit(v[(kv0 + k0 + j) * U + u]);
            for (var r = 0u; r < HEADS; r++) {
                let wj = vec4<f32>(w[r * CHUNK + j]);
                for (var i = 0u; i < NV; i++) {
                    o[r * NV + i] = fma(vu[i], wj, o[r * NV + i]);
                }
            }
        }
    }
    for (var ri = 0u; ri < NV * HEADS; ri++) {
        po[ri * WG + li] = o[ri];
    }
    workgroupBarrier();
    // Each (head r, vec4 i, unit u) adds up its groups' sums: the lanes share the work.
    for (var c = li; c < U * NV * HEADS; c += WG) {
        let u = c % U;
        let ri = c / U;
        var total = po[ri * WG + u];
        for (var g = 1u; g < GROUPS; g++) {
            total += po[ri * WG + g * U + u];
        }
        let row = row0 + ri / NV;
        part_o[(row * p.nsplit + s) * D4 + u * NV + ri % NV] = total;
    }
    for (var r = li; r < HEADS; r += WG) {
        part_ml[(row0 + r) * p.nsplit + s] = vec2<f32>(m[r], l[r]);
    }
}
