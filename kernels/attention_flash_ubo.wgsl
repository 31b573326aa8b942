// attention_flash_ubo.wgsl: fused attention (FlashAttention-2 online softmax, f32 statistics
// and accumulators) that reads K and V through uniform-buffer windows: the lavapipe design.
//
// Why: on lavapipe (Mesa 22.x) every storage-buffer or workgroup-memory load is a scalar loop
// over the 8 SIMD lanes with a bounds check per element, about 15x the cost of a uniform-
// buffer load, which is one vector gather (or a scalar load and a broadcast). The K and V
// buffers stay where they are, in the [B, Hkv, Skv, D] layout; the host binds a window of
// at most max_uniform_buffer_binding_size bytes (64 KiB) of each as a uniform buffer, one
// dispatch per window, and the softmax state (m, l, o) of each query row is carried from one
// window to the next in a state buffer (O(rows·D) memory, never O(Sq·Skv)).
//
// Memory layout: Q[B, Hq, Sq, D], K and V [B, Hkv, Skv, D], O[B, Hq, Sq, D], row-major in the
// storage type E; f16 K/V windows are read as vec4<u32> (8 halves, unpack2x16float), since
// uniform arrays need a 16-byte stride. state[B·Hq·Sq, D/4 + 1] vec4<f32>: o, then (m, l).
// Rows: as attention_flash_row.wgsl, the rep = Hq / Hkv query heads of KV head g are packed
// (packed row pr = pos·rep + hi), and each invocation owns TQ packed rows pr0 + r·BR + li.
// Window: keys k0 .. k0 + nkeys of KV head (batch, g); key k0 starts kv_off vec4s into the
// bound window (binding offsets are aligned down to min_uniform_buffer_offset_alignment). The
// buffers are padded so a whole window is always in bounds; keys past the window's end are
// masked (they read finite values of the next head or zero padding, times p = 0).
// Per row and window: a row is active if it sees key k0; it starts from the state (or from
// m = -inf, l = 0, o = 0 in the first window), runs the window's tiles with its causal mask,
// and then either saves the state or, in the window that holds its last visible key, writes
// O = o / l (0 when l = 0: a row that sees no key writes 0 in the first window, never NaN).
// The tile loop stops at the last key any row of the workgroup sees (causal skips tiles), and
// a workgroup none of whose rows sees the window returns at once. Row blocks run in
// bit-reversed order (see main).
//
// Decode (Sq = 1) has its own kernel, attention_decode_ubo.wgsl: with one row per KV head
// this one would leave all but one SIMD lane idle.
//
// Bindings (group 0):
//   0 uniform  Params (attention_params.wgsl, the PARAMS field)
//   1 uniform  Window { batch, g, k0, nkeys, kv_off, first, blocks, _ } (one slot per dispatch)
//   2 storage read        q: array<vec4<E>>
//   3 uniform             kw: array<vec4<KW>, NV>   (KW = f32, or u32 for f16 pairs)
//   4 uniform             vw: array<vec4<KW>, NV>
//   5 storage read_write  state: array<vec4<f32>>
//   6 storage read_write  out: array<vec4<E>>
// Dispatch: one per (batch, KV head, window), in key order (each window continues the state
// the previous one left); each (blocks rounded up to a power of two, 1, 1) workgroups of BR
// invocations, blocks = ceil(rep·Sq / (BR·TQ)).
// Tile parameters (text-substituted):
//   BR  invocations per workgroup (a multiple of the 8-lane SIMD width keeps lanes full).
//   TQ  rows per invocation: each K/V vec4 loaded feeds TQ rows; private state TQ·(2·D + BC).
//   BC  keys per tile; a window holds a multiple of BC keys.
//   D4  = D / 4, fully unrolled.  NV = window bytes / 16 <= 4096 (64 KiB).
// Template fields: PARAMS ENABLE_F16 ELEM KW NV KV_ROW Q_VEC BR TQ BC D4 OUT_BINDINGS ROWS TILE STORE.
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

struct Window {
    batch: u32,
    g: u32,
    k0: u32,
    nkeys: u32,
    kv_off: u32,
    first: u32,
    blocks: u32,
    _pad: u32,
}

const BR: u32 = {{BR}}u;
const TQ: u32 = {{TQ}}u;
const BC: u32 = {{BC}}u;
const D4: u32 = {{D4}}u;
// "Minus infinity" for max and masks: finite, so no inf - inf can make a NaN.
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<uniform> w: Window;
@group(0) @binding(2) var<storage, read> q: array<{{Q_VEC}}>;
@group(0) @binding(3) var<uniform> kw: array<vec4<{{KW}}>, {{NV}}>;
@group(0) @binding(4) var<uniform> vw: array<vec4<{{KW}}>, {{NV}}>;
{{OUT_BINDINGS}}

@compute @workgroup_size({{BR}}, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let batch = w.batch;
    let g = w.g;
    let rows = p.rep * p.sq;
    // Row blocks in bit-reversed order. Lavapipe splits a dispatch's workgroups into one
    // contiguous run per thread (T threads, N/T each), and with causal masking a window's
    // work per block grows with the block index; bit reversal gives every run of N/T
    // workgroups (T a power of two) an even share of early and late blocks. The host
    // dispatches N = the block count rounded up to a power of two; the extra ones return.
    var block = 0u;
    if (nwg.x > 1u) {
        block = reverseBits(wid.x) >> (32u - countTrailingZeros(nwg.x));
    }
    if (block >= w.blocks) {
        return;
    }
    let pr0 = block * (BR * TQ);
    let skv = i32(p.skv);
    let k_begin = i32(w.k0);
    let k_end = i32(w.k0 + w.nkeys);
    var any_see = k_end;
    if (p.causal != 0u) {
        let pos_last = i32(min(pr0 + BR * TQ - 1u, rows - 1u) / p.rep);
        any_see = clamp(pos_last + p.shift + 1, k_begin, k_end);
    }
    // No row of this workgroup sees a key of this window: they all finished earlier (after
    // the first window, which must still write the rows that see no key at all).
    if (any_see <= k_begin && w.first == 0u) {
        return;
    }
{{ROWS}}
    for (var t = k_begin; t < any_see; t += i32(BC)) {
        let kb = w.kv_off + u32(t - i32(w.k0)) * {{KV_ROW}}u;
{{TILE}}
    }
{{STORE}}
}
