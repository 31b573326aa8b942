// attention_flash_row.wgsl: fused attention, FlashAttention-2 forward with online softmax,
// one query row (or TQ rows) per invocation, the ONNX Runtime WebGPU design. O = softmax(scale·Q·Kᵀ)·V
// without materialising the scores: per row a running max m, running sum l and an f32
// output accumulator o[D], updated once per tile of BC keys; out = o / l at the end.
//
// Memory layout: Q[B, Hq, Sq, D], K and V [B, Hkv, Skv, D], O[B, Hq, Sq, D], all row-major
// in the storage type E (f32, or f16 where SHADER_F16 exists); scores, statistics and o are
// f32 whatever E is. D % 4 == 0, so rows are read and written as vec4<E>.
//
// Rows: the rep = Hq / Hkv query heads that share a KV head are packed together (GQA): for
// KV head g, packed row pr = pos·rep + hi is query position pos of query head g·rep + hi, and
// a workgroup takes BR·TQ consecutive packed rows. Every row of a workgroup therefore reads
// the same K/V rows at the same time, the K/V index is workgroup-uniform, and a causal
// diagonal spans only BR·TQ / rep positions.
//
// Keys: causal query pos sees keys 0 ..= pos + shift (shift = Skv - Sq: queries aligned to the
// last keys; the host refuses causal with Sq > Skv, and tests may pass other shifts to make
// fully masked rows). The tile loop stops at the last key any row of the workgroup sees, so
// tiles above the diagonal are never visited and causal costs about half of non-causal;
// inside a tile each row masks the keys past its own diagonal (and past Skv). A masked key
// adds exactly 0 even before the row has seen any key, and a row that sees no key writes 0,
// not NaN.
//
// Rows per invocation: each invocation owns TQ packed rows (pr0 + r·BR + li, r < TQ), so
// every K/V vec4 it loads feeds TQ rows: on adapters where loads cost far more than
// arithmetic (lavapipe) this is the register blocking that matters.
//
// Split mode (flash-decoding, for small Sq such as decode): the keys are cut into NSPLIT
// chunks of CHUNK keys and grid z = B·NSPLIT; each workgroup runs its chunk only and writes
// the raw (o, m, l) of each row to part_o / part_ml; attention_flash_merge.wgsl combines them.
// Without split, NSPLIT = 1, CHUNK >= Skv, and the kernel writes O directly.
//
// Key/value access: the generated TILE either reads K/V straight from the storage buffers with
// workgroup-uniform indices (no barriers; fast where the driver turns uniform loads into one
// scalar load and a broadcast), or stages a BC x D tile of K and V in workgroup memory,
// loaded cooperatively between two barriers (the GPU design: coalesced loads, on-chip reuse).
//
// Bindings (group 0):
//   0 uniform  Params (attention_params.wgsl, the PARAMS field)
//   1 storage read        q: array<vec4<E>>
//   2 storage read        k: array<vec4<E>>
//   3 storage read        v: array<vec4<E>>
//   4 storage read_write  out: array<vec4<E>>          (no split)
//   4 storage read_write  part_o: array<vec4<f32>>     (split: [B, Hq, Sq, NSPLIT, D])
//   5 storage read_write  part_ml: array<vec2<f32>>    (split: [B, Hq, Sq, NSPLIT] of (m, l))
// Dispatch: (ceil(rep·Sq / (BR·TQ)), Hkv, B·NSPLIT) workgroups of BR invocations.
// Tile parameters (text-substituted, since WGSL private arrays cannot be sized by `override`):
//   BR  rows (invocations) per workgroup: <= max_compute_invocations_per_workgroup; a multiple
//       of the SIMD width (8 on lavapipe) keeps lanes full; smaller BR wastes less on the
//       causal diagonal.
//   TQ  rows per invocation: private state is TQ·(2·D + BC) f32 (q, o, scores); K/V reuse
//       grows with TQ. 1 to 4.
//   BC  keys per tile: the tile's scores live in TQ·BC registers, and each q/o vec4 load is
//       reused for BC keys.
//   D4  = D / 4: the head dim, fully unrolled (q and o are D4 vec4 registers each).
//   Workgroup memory (staged variant): 2·BC·D·sizeof(E) <= max_compute_workgroup_storage_size.
//   u32 indices: every buffer has < 2^32 elements (the shape parser refuses more).
// Scores are kept in log2 units (q is pre-scaled by scale·log2(e)) so exp2 does the softmax.
// Template fields: PARAMS ENABLE_F16 ELEM BR TQ BC D4 OUT_BINDINGS WG_DECLS ROWS TILE
// STORE.
{{ENABLE_F16}}
alias E = {{ELEM}};

{{PARAMS}}

const BR: u32 = {{BR}}u;
const TQ: u32 = {{TQ}}u;
const BC: u32 = {{BC}}u;
const D4: u32 = {{D4}}u;
// "Minus infinity" for max and masks: finite, so no inf - inf can make a NaN.
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<E>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<E>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<E>>;
{{OUT_BINDINGS}}
{{WG_DECLS}}

@compute @workgroup_size({{BR}}, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
    let g = wid.y;
    let batch = wid.z / p.nsplit;
    let split = wid.z % p.nsplit;
    let rows = p.rep * p.sq;
    let pr0 = wid.x * (BR * TQ);

    // Keys this chunk covers, and the last key any row of the workgroup sees (uniform).
    let skv = i32(p.skv);
    let k_begin = i32(split * p.chunk);
    let k_end = min(skv, k_begin + i32(p.chunk));
    var any_see = k_end;
    if (p.causal != 0u) {
        let pos_last = i32(min(pr0 + BR * TQ - 1u, rows - 1u) / p.rep);
        any_see = clamp(pos_last + p.shift + 1, k_begin, k_end);
    }
    let kv_row0 = (batch * p.hkv + g) * p.skv;
{{ROWS}}
    for (var t = k_begin; t < any_see; t += i32(BC)) {
{{TILE}}
    }
{{STORE}}
}
