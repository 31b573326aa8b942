//! Attention variants: what each one is, its WGSL (rendered from `kernels/attention_*.wgsl`),
//! its dispatch geometry, and the limits it needs.
//!
//! Layout everywhere: Q[B, Hq, Sq, D], K and V [B, Hkv, Skv, D], O[B, Hq, Sq, D], row-major,
//! in the storage dtype; scores, softmax statistics and accumulators are f32. Query head h
//! reads KV head h / (Hq / Hkv). Causal queries are aligned to the last keys: query i sees keys
//! 0 ..= i + Skv - Sq.
//!
//! Variants (every one verified against the f64 reference before it is timed; the runner
//! marks the fastest verified one per adapter and shape as chosen):
//! - `naive`: scores = scale·Q·Kᵀ materialised in an f32 [B, Hq, Sq, Skv] buffer, a row
//!   softmax in place, then P·V: three dispatches, O(Sq·Skv) extra memory. The baseline.
//! - `flash_row_*`: fused FlashAttention-2 forward (online softmax, f32 statistics and
//!   accumulator), one query row per invocation, the GQA heads of a KV head packed into one
//!   workgroup, K/V read straight from storage with workgroup-uniform indices, no barriers.
//!   No extra memory. Good where uniform storage loads are cheap (GPUs, newer Mesa).
//! - `flash_wg_*`: the same with each BC x D tile of K and V staged in workgroup memory
//!   between barriers (ONNX Runtime WebGPU style): the GPU design.
//! - `flash_ubo_*`: the same online softmax reading K/V through 64 KiB uniform-buffer windows
//!   of the unchanged K/V buffers, one dispatch per (batch, KV head, window), the softmax
//!   state carried between windows in an O(rows·D) buffer; several query rows per
//!   invocation. The lavapipe design: there a storage or workgroup load is a scalar loop
//!   over the SIMD lanes (~15x a uniform-buffer load), so K/V must come through uniforms.
//! - `flash_split_*`: flash-decoding for decode (Sq = 1) and other shapes with few query rows
//!   per KV head: the keys are cut into chunks across workgroups, each writes its max, sum
//!   and partial output, and a second pass merges them. Extra memory O(Sq·chunks·D). Only
//!   offered up to [`SPLIT_MAX_ROWS`] query rows per KV head. Portable (no barriers, no
//!   optional features).
//! - `decode_ubo_*`: decode (Sq = 1) for lavapipe: flash-decoding over uniform windows with
//!   one key per SIMD lane (so every gather brings 8 different rows), the rep = Hq / Hkv
//!   query heads of a KV head handled together (K/V read once for all of them), the 8 lanes
//!   combined with subgroup reductions, then the same merge pass. Needs SUBGROUP.
//! - `decode_stex_*`: the same step with Q, K and V in rgba32uint storage textures (bytes as
//!   they are, one key a texture row, tall caches wrapped), one dispatch for every head and
//!   chunk: on lavapipe a texel load is vectorised where a uniform gather goes component by
//!   component, and the best tile ran 1.2-2.7x `decode_ubo_l8_t1_s1` in turns on every
//!   decode shape tried (2.7x at the quick suite's GQA d = 128 decode, skv = 1024, f32).
//!   Its `sd` tiles split the head dim across the lanes for P·V (see the kernel header).
//!   Needs SUBGROUP.
//! - `decode_coop_*`: decode (Sq = 1) for GPUs: a workgroup of 128 lanes on one query
//!   head's chunk of keys, K and V read as 16-byte units from storage buffers, the scores'
//!   max and sum by trees in workgroup memory, P·V by groups of lanes reading V rows
//!   coalesced, then the same merge pass. On the H200 it ran 7-21x the best lavapipe
//!   decode kernel in the same search. Its `s8` tiles score each key with 8 lanes (needs
//!   SUBGROUP).
//!
//! Variant names: `r` invocations per workgroup, `q` query rows per invocation (at d=64; see
//! [`rows_per_invocation`]), `c` keys per tile, `k` keys per split chunk; for `decode_ubo`,
//! `l8` lanes, `t` keys per lane per step, `s` workgroups per window (`k` keys per workgroup
//! and `sd` split-d P·V for `decode_stex`); for `decode_coop`, `w` lanes per workgroup, `k`
//! keys per workgroup and `s8` eight lanes per key in the scores.

use std::fmt::Write as _;

use super::attention_decode::{prepare_decode, prepare_decode_coop, prepare_decode_texture};
use super::{
    bind, check_buffer, check_workgroup, check_workgroups, compile, enable_line, output_buffer,
    render, require_subgroups, storage_buffer, uniform_buffer, unpack_halves, weights, Dispatch,
    HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{AttentionShape, DType};

const NAIVE_SCORES: &str = include_str!("../../kernels/attention_naive_scores.wgsl");
const NAIVE_SOFTMAX: &str = include_str!("../../kernels/attention_naive_softmax.wgsl");
const NAIVE_PV: &str = include_str!("../../kernels/attention_naive_pv.wgsl");
const FLASH_ROW: &str = include_str!("../../kernels/attention_flash_row.wgsl");
const FLASH_MERGE: &str = include_str!("../../kernels/attention_flash_merge.wgsl");
const FLASH_UBO: &str = include_str!("../../kernels/attention_flash_ubo.wgsl");
/// [`FlashParams`] in WGSL, each fused kernel's `PARAMS` field.
pub(super) const FLASH_PARAMS: &str = include_str!("../../kernels/attention_params.wgsl");
/// [`NaiveParams`] in WGSL, the naive kernels' `PARAMS` field.
const NAIVE_PARAMS: &str = include_str!("../../kernels/attention_naive_params.wgsl");

/// log2(e): scores are kept in log2 units so the kernels can use exp2.
pub(super) const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// Workgroups per grid row for the 1-D-indexed passes (softmax, merge); WebGPU caps each
/// dimension at 65,535.
const GRID_X_MAX: u32 = 65_535;

/// An attention kernel and its tile parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttentionVariant {
    /// Scores, softmax and P·V as three dispatches over a materialised score matrix.
    Naive,
    /// Fused online-softmax attention, TQ query rows per invocation.
    Flash {
        /// How K and V are read.
        kv: KvAccess,
        /// Invocations per workgroup.
        br: u32,
        /// Query rows per invocation.
        tq: u32,
        /// Keys per tile.
        bc: u32,
        /// Flash-decoding: keys per workgroup chunk (plus a merge pass); `None`: no split.
        /// Not offered with uniform windows (decode there is [`AttentionVariant::Decode`]).
        chunk: Option<u32>,
    },
    /// Decode (Sq = 1) over uniform windows with one key per SIMD lane, 8 lanes combined by
    /// subgroup reductions, then a merge pass (flash-decoding): the lavapipe decode design.
    Decode {
        /// Keys per lane per step.
        tk: u32,
        /// Workgroups (key sub-chunks) per window.
        subs: u32,
    },
    /// Decode (Sq = 1) as [`AttentionVariant::Decode`], K and V read from rgba32uint
    /// storage textures instead of uniform windows: one dispatch for every head and chunk.
    DecodeTexture {
        /// Keys per lane per step.
        tk: u32,
        /// Keys per workgroup (split chunk).
        chunk: u32,
        /// P·V with the head dim split across the lanes (one key per lane for the scores).
        split_d: bool,
    },
    /// Decode (Sq = 1) with a workgroup of `wg` lanes on one query head (or on all the
    /// query heads of one KV head) and `chunk` keys, K and V from storage buffers, then the
    /// merge pass: the GPU decode design (`kernels/attention_decode_coop.wgsl`).
    DecodeCoop {
        /// Lanes per workgroup.
        wg: u32,
        /// Keys per workgroup (split chunk).
        chunk: u32,
        /// Lanes per key in the scores: 1, or 8 (splitting the key's row, added by subgroup
        /// shuffles).
        key_lanes: u32,
        /// One workgroup for all the query heads that share a KV head (GQA), reading each K
        /// and V row once for them all, instead of one per query head.
        share_kv: bool,
    },
}

/// The uniform block of the fused kernels (`attention_params.wgsl`, [`FLASH_PARAMS`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
pub(super) struct FlashParams {
    pub b: u32,
    pub hq: u32,
    pub hkv: u32,
    pub sq: u32,
    pub skv: u32,
    pub rep: u32,
    pub causal: u32,
    pub nsplit: u32,
    pub shift: i32,
    pub chunk: u32,
    pub scale_log2e: f32,
    pub _pad: u32,
}

/// The uniform block of the naive kernels (`attention_naive_params.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct NaiveParams {
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

/// How a uniform-window variant cuts the keys (see `attention_flash_ubo.wgsl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowPlan {
    /// Bytes bound per window (a multiple of 16, at most 64 KiB).
    pub window_bytes: u64,
    /// Binding offset alignment.
    pub align: u64,
    /// Keys per window (a multiple of the tile and of the split chunk).
    pub keys: u32,
    /// Windows per KV head.
    pub windows: u32,
    /// Split chunks per window (1 without split).
    pub subs: u32,
}

impl AttentionVariant {
    /// Every variant the suite tries, in the order they are reported.
    pub fn all() -> Vec<AttentionVariant> {
        use AttentionVariant::Flash;
        vec![
            AttentionVariant::Naive,
            Flash {
                kv: KvAccess::Direct,
                br: 32,
                tq: 1,
                bc: 8,
                chunk: None,
            },
            Flash {
                kv: KvAccess::Staged,
                br: 64,
                tq: 1,
                bc: 8,
                chunk: None,
            },
            Flash {
                kv: KvAccess::Uniform,
                br: 8,
                tq: 4,
                bc: 4,
                chunk: None,
            },
            Flash {
                kv: KvAccess::UniformShared,
                br: 8,
                tq: 4,
                bc: 4,
                chunk: None,
            },
            Flash {
                kv: KvAccess::UniformShared,
                br: 8,
                tq: 2,
                bc: 4,
                chunk: None,
            },
            Flash {
                kv: KvAccess::Direct,
                br: 8,
                tq: 1,
                bc: 8,
                chunk: Some(256),
            },
            // One key per lane keeps the per-lane state smallest (fewest spills on
            // lavapipe); two keys per lane and two sub-chunks suit wider machines.
            AttentionVariant::Decode { tk: 1, subs: 1 },
            AttentionVariant::Decode { tk: 1, subs: 2 },
            AttentionVariant::Decode { tk: 2, subs: 2 },
            // The chunk is a uniform (t1_k256 and t1_k1024 share a compiled kernel); two
            // keys per lane ran 1.1-1.6x one in f32 and 0.66-1.0x in f16 (lavapipe).
            AttentionVariant::DecodeTexture {
                tk: 1,
                chunk: 256,
                split_d: false,
            },
            AttentionVariant::DecodeTexture {
                tk: 1,
                chunk: 1024,
                split_d: false,
            },
            AttentionVariant::DecodeTexture {
                tk: 2,
                chunk: 1024,
                split_d: false,
            },
            // Split-d P·V: 1.1-2.2x t1 and t2 on every decode shape timed in turns on
            // lavapipe, and it compiles in 1-1.6 s where t1 takes 6.5-8 s (d = 128, rep 4).
            AttentionVariant::DecodeTexture {
                tk: 1,
                chunk: 256,
                split_d: true,
            },
            AttentionVariant::DecodeTexture {
                tk: 1,
                chunk: 1024,
                split_d: true,
            },
            // The GPU decode design: 128-key chunks give llama-3.1-8b's 32 heads 160
            // workgroups at context 576; 512-key chunks a quarter of the partials at long
            // contexts. Left out of searches on llvmpipe, with the other storage-load kernels.
            // On the H200 (lane-per-key scores, K and V read as vec4<E>), k128 won at
            // context 576 and k512 at 8192, where f16 read K at 13% of the copy bandwidth:
            // each lane reads its own 256-byte row. Eight lanes a key read it coalesced.
            AttentionVariant::DecodeCoop {
                wg: 128,
                chunk: 128,
                key_lanes: 1,
                share_kv: false,
            },
            AttentionVariant::DecodeCoop {
                wg: 128,
                chunk: 512,
                key_lanes: 1,
                share_kv: false,
            },
            AttentionVariant::DecodeCoop {
                wg: 128,
                chunk: 128,
                key_lanes: 8,
                share_kv: false,
            },
            AttentionVariant::DecodeCoop {
                wg: 128,
                chunk: 512,
                key_lanes: 8,
                share_kv: false,
            },
            // A KV head's query heads in one workgroup (GQA): on the H200 each KV head was
            // read by its 4 query heads' workgroups separately, and the decode attention ran
            // at a third of the copy bandwidth or less at 8192. A grid of hkv, not hq, rows
            // of chunks, so smaller chunks than the one-head winners keep an H200's 132 SMs
            // fed: llama-3.1-8b at context 576 gets 72 workgroups of 64 lanes, at 8192 512
            // of 128 (s8_k512 would give it 16 and 128).
            AttentionVariant::DecodeCoop {
                wg: 64,
                chunk: 64,
                key_lanes: 1,
                share_kv: true,
            },
            AttentionVariant::DecodeCoop {
                wg: 128,
                chunk: 128,
                key_lanes: 8,
                share_kv: true,
            },
        ]
    }

    /// Whether the inner loop reads K and V from storage buffers at per-lane addresses: the
    /// GPU designs. Lavapipe compiles each such load to a scalar loop over the SIMD lanes,
    /// so these ran 2-100x behind the uniform-window kernels on every quick-suite shape
    /// there, and flash_row, flash_wg and flash_split took 25-50 s each to compile at
    /// d = 128 with an empty Mesa cache.
    pub fn loads_storage_per_lane(&self) -> bool {
        match *self {
            AttentionVariant::Naive | AttentionVariant::DecodeCoop { .. } => true,
            AttentionVariant::Flash { kv, .. } => !kv.uniform(),
            AttentionVariant::Decode { .. } | AttentionVariant::DecodeTexture { .. } => false,
        }
    }

    /// The sibling family that ran faster than this variant on lavapipe on every
    /// quick-suite shape in every recorded run, where this one is also among the slowest
    /// to compile there (empty Mesa shader cache, 2-core VM, Mesa 22.3); `None` for most:
    /// - `flash_ubo_r8_q4_c4` (each lane gathers its own K/V rows) screened 1.2-1.9x behind
    ///   `flash_ubs` (one row per lane, shared by subgroupBroadcast) on the quick prefill
    ///   shapes and took 8-15 s to compile;
    /// - `decode_ubo_*` (K/V through uniform windows) ran 1.2-2.7x behind `decode_stex`
    ///   (K/V in textures) in turns on every decode shape tried (d = 64 and 128, MHA and
    ///   GQA, skv = 1024 and 8192, f32 and f16), and took 15 s to compile at d = 128, rep 4,
    ///   where `decode_stex_l8_t1` took 6.5-8 s;
    /// - `decode_stex_l8_t1_*` and `t2_*` (each lane accumulates its own keys' whole V
    ///   rows) ran 1.1-2.2x behind `decode_stex_l8_sd` (split-d P·V) in turns on every
    ///   decode shape tried (skv = 24 to 32768, d = 64 and 128, MHA and GQA, f32 and f16),
    ///   and took 6.5-10 s to compile at d = 128, rep 4, where `sd` took 1.1-1.6 s.
    pub fn superseded_on_llvmpipe(&self) -> Option<&'static str> {
        match *self {
            AttentionVariant::Flash {
                kv: KvAccess::Uniform,
                ..
            } => Some("flash_ubs"),
            AttentionVariant::Decode { .. } => Some("decode_stex"),
            AttentionVariant::DecodeTexture { split_d: false, .. } => Some("decode_stex_l8_sd"),
            _ => None,
        }
    }

    /// The `variant` column: kernel family and tile parameters.
    pub fn name(&self) -> String {
        match *self {
            AttentionVariant::Naive => "naive".into(),
            AttentionVariant::Decode { tk, subs } => format!("decode_ubo_l8_t{tk}_s{subs}"),
            AttentionVariant::DecodeTexture { tk, chunk, split_d } => {
                if split_d {
                    format!("decode_stex_l8_sd_k{chunk}")
                } else {
                    format!("decode_stex_l8_t{tk}_k{chunk}")
                }
            }
            AttentionVariant::DecodeCoop {
                wg,
                chunk,
                key_lanes,
                share_kv,
            } => {
                let g = if share_kv { "g_" } else { "" };
                let s = if key_lanes > 1 {
                    format!("s{key_lanes}_")
                } else {
                    String::new()
                };
                format!("decode_coop_{g}{s}w{wg}_k{chunk}")
            }
            AttentionVariant::Flash {
                kv,
                br,
                tq,
                bc,
                chunk,
            } => {
                let family = match (kv, chunk.is_some()) {
                    (KvAccess::Direct, false) => "flash_row",
                    (KvAccess::Direct, true) => "flash_split",
                    (KvAccess::Staged, false) => "flash_wg",
                    (KvAccess::Staged, true) => "flash_split_wg",
                    (KvAccess::Uniform, false) => "flash_ubo",
                    // Not offered (prepare refuses it): decode is `Decode`.
                    (KvAccess::Uniform, true) => "flash_ubo_split",
                    (KvAccess::UniformShared, false) => "flash_ubs",
                    (KvAccess::UniformShared, true) => "flash_ubs_split",
                };
                let mut s = format!("{family}_r{br}_q{tq}_c{bc}");
                if let Some(k) = chunk {
                    let _ = write!(s, "_k{k}");
                }
                s
            }
        }
    }

    /// Workgroups of packed query rows (rep·Sq per KV head) of a fused variant: BR
    /// invocations of TQ rows each; 1 for the others.
    fn row_blocks(&self, shape: &AttentionShape) -> u32 {
        match *self {
            AttentionVariant::Flash { br, tq, .. } => {
                let rep = shape.hq / shape.hkv;
                (rep * shape.sq).div_ceil(br * rows_per_invocation(tq, shape.d))
            }
            _ => 1,
        }
    }

    /// Invocations per workgroup of the main kernel.
    pub fn invocations(&self) -> u32 {
        match *self {
            AttentionVariant::Naive => 256,
            AttentionVariant::Flash { br, .. } => br,
            AttentionVariant::Decode { .. } | AttentionVariant::DecodeTexture { .. } => 8,
            AttentionVariant::DecodeCoop { wg, .. } => wg,
        }
    }

    /// Query heads one workgroup of the main kernel serves: the heads that share a KV head
    /// for `decode_coop_g`, else one.
    pub fn heads_per_workgroup(&self, shape: &AttentionShape) -> u32 {
        match *self {
            AttentionVariant::DecodeCoop { share_kv: true, .. } => {
                (shape.hq / shape.hkv.max(1)).max(1)
            }
            _ => 1,
        }
    }

    /// Workgroup memory in bytes for `shape` in `dtype`.
    pub fn workgroup_bytes(&self, shape: &AttentionShape, dtype: DType) -> u32 {
        let d = shape.d;
        match *self {
            AttentionVariant::Flash {
                kv: KvAccess::Staged,
                bc,
                ..
            } => 2 * bc * d * dtype.size() as u32,
            // Per head: q, the chunk's scores, the tree and the groups' P·V sums (a 16-byte
            // unit is two vec4<f32>s in f16).
            AttentionVariant::DecodeCoop { wg, chunk, .. } => {
                let vec4s_per_unit = 4 / dtype.size() as u32;
                let heads = self.heads_per_workgroup(shape);
                heads * (4 * d + 4 * chunk + 4 * wg + 16 * vec4s_per_unit * wg)
            }
            _ => 0,
        }
    }

    /// How a uniform-window variant cuts the keys, for an adapter whose uniform bindings
    /// reach `max_binding` bytes at offsets aligned to `align`; `None` for other variants or
    /// when a window cannot hold one tile.
    pub fn window_plan(
        &self,
        shape: &AttentionShape,
        dtype: DType,
        max_binding: u64,
        align: u64,
    ) -> Option<WindowPlan> {
        let (unit, subs) = match *self {
            AttentionVariant::Flash {
                kv: KvAccess::Uniform | KvAccess::UniformShared,
                bc,
                chunk: None,
                ..
            } => (bc as u64, 1),
            // Each sub-chunk a multiple of the 8 lanes.
            AttentionVariant::Decode { subs, .. } => (8 * subs as u64, subs),
            _ => return None,
        };
        let window_bytes = max_binding.min(1 << 16) / 16 * 16;
        let align = align.max(16);
        let row_bytes = shape.d as u64 * dtype.size();
        // Binding offsets are aligned down, so a window may start up to align - 16 bytes
        // before its first key.
        let raw = window_bytes.saturating_sub(align - 16) / row_bytes;
        let keys = (raw / unit * unit) as u32;
        if keys == 0 {
            return None;
        }
        Some(WindowPlan {
            window_bytes,
            align,
            keys,
            windows: shape.skv.div_ceil(keys),
            subs,
        })
    }

    /// Key chunks whose partial results the merge pass combines: 1 without split. Uniform
    /// variants assume 64 KiB windows at 256-byte alignment here (the adapter decides).
    pub fn splits(&self, shape: &AttentionShape, dtype: DType) -> u32 {
        match *self {
            AttentionVariant::Decode { .. } => self
                .window_plan(shape, dtype, 1 << 16, 256)
                .map_or(1, |p| p.windows * p.subs),
            AttentionVariant::Flash { chunk: Some(k), .. }
            | AttentionVariant::DecodeTexture { chunk: k, .. }
            | AttentionVariant::DecodeCoop { chunk: k, .. } => shape.skv.div_ceil(k),
            _ => 1,
        }
    }

    /// Extra device memory the variant allocates beyond Q, K, V and O, in bytes: the
    /// materialised f32 scores for `naive` (B·Hq·Sq·Skv·4: O(S²)), the carried softmax state
    /// for `flash_ubo` (B·Hq·Sq·(D+4)·4: O(S)), the partial outputs and statistics of the
    /// split variants (B·Hq·Sq·chunks·(D+2)·4), nothing for the other fused kernels.
    pub fn scratch_bytes(&self, shape: &AttentionShape, dtype: DType) -> u64 {
        let rows = shape.b as u64 * shape.hq as u64 * shape.sq as u64;
        match *self {
            AttentionVariant::Naive => rows * shape.skv as u64 * 4,
            AttentionVariant::Flash {
                kv: KvAccess::Uniform | KvAccess::UniformShared,
                chunk: None,
                ..
            } => rows * (shape.d as u64 + 4) * 4,
            AttentionVariant::Flash { chunk: None, .. } => 0,
            AttentionVariant::Flash { .. }
            | AttentionVariant::Decode { .. }
            | AttentionVariant::DecodeTexture { .. }
            | AttentionVariant::DecodeCoop { .. } => {
                rows * self.splits(shape, dtype) as u64 * (shape.d as u64 + 2) * 4
            }
        }
    }

    /// Workgroup counts of the main kernel (of each window's dispatch for uniform variants).
    pub fn workgroups(&self, shape: &AttentionShape, subs: u32) -> [u32; 3] {
        match *self {
            AttentionVariant::Naive => [
                shape.skv.div_ceil(16),
                shape.sq.div_ceil(16),
                shape.b * shape.hq,
            ],
            AttentionVariant::Decode { .. } => [subs, 1, 1],
            AttentionVariant::DecodeTexture { chunk, .. } => {
                [shape.skv.div_ceil(chunk), shape.hkv, shape.b]
            }
            AttentionVariant::DecodeCoop { chunk, .. } => [
                shape.skv.div_ceil(chunk),
                shape.hq / self.heads_per_workgroup(shape),
                shape.b,
            ],
            AttentionVariant::Flash { kv, chunk, .. } => {
                let blocks = self.row_blocks(shape);
                if kv.uniform() {
                    // Bit-reversed block order needs a power of two (see the kernel).
                    [blocks.next_power_of_two(), 1, 1]
                } else {
                    let splits = chunk.map_or(1, |k| shape.skv.div_ceil(k));
                    [blocks, shape.hkv, shape.b * splits]
                }
            }
        }
    }

    /// The WGSL source of the fused kernel (`Flash` variants) for head dim `d` and `dtype`;
    /// `window_vec4s` sizes the uniform windows of `flash_ubo` (4096 for 64 KiB).
    pub fn flash_source(&self, d: u32, dtype: DType, window_vec4s: u32) -> Option<String> {
        let AttentionVariant::Flash {
            kv,
            br,
            tq,
            bc,
            chunk,
        } = *self
        else {
            return None;
        };
        if kv.uniform() && chunk.is_some() {
            return None;
        }
        let d4 = d / 4;
        let gen = Gen {
            br,
            tq: rows_per_invocation(tq, d),
            bc,
            d4,
            kv,
            f16: dtype == DType::F16,
            split: chunk.is_some(),
        };
        let first = if kv.uniform() { 5 } else { 4 };
        let q_vec = if gen.packed_io() {
            "vec4<u32>"
        } else {
            "vec4<E>"
        };
        let out_bindings = if gen.split {
            format!(
                "@group(0) @binding({first}) var<storage, read_write> part_o: array<vec4<f32>>;\n@group(0) @binding({}) var<storage, read_write> part_ml: array<vec2<f32>>;",
                first + 1
            )
        } else if kv.uniform() {
            format!("@group(0) @binding(5) var<storage, read_write> state: array<vec4<f32>>;\n@group(0) @binding(6) var<storage, read_write> out: array<{q_vec}>;")
        } else {
            "@group(0) @binding(4) var<storage, read_write> out: array<vec4<E>>;".into()
        };
        let common = [
            ("PARAMS", FLASH_PARAMS.to_string()),
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().to_string()),
            ("BR", br.to_string()),
            ("TQ", gen.tq.to_string()),
            ("BC", bc.to_string()),
            ("D4", d4.to_string()),
            ("OUT_BINDINGS", out_bindings),
            ("ROWS", gen.rows()),
            ("TILE", gen.tile()),
            ("STORE", gen.store()),
        ];
        let mut fields: Vec<(&str, String)> = common.to_vec();
        if kv.uniform() {
            let (elem, row) = if dtype == DType::F16 {
                ("u32", d4 / 2)
            } else {
                ("f32", d4)
            };
            fields.push(("KW", elem.into()));
            fields.push(("NV", window_vec4s.to_string()));
            fields.push(("KV_ROW", row.to_string()));
            fields.push(("Q_VEC", q_vec.into()));
            Some(render(FLASH_UBO, &fields))
        } else {
            let wg_decls = if kv == KvAccess::Staged {
                format!(
                    "var<workgroup> ks: array<vec4<E>, {n}>;\nvar<workgroup> vs: array<vec4<E>, {n}>;",
                    n = bc * d4
                )
            } else {
                String::new()
            };
            fields.push(("WG_DECLS", wg_decls));
            Some(render(FLASH_ROW, &fields))
        }
    }

    /// Build the program for `shape`: check limits, compile, upload `inputs`.
    pub fn prepare(
        &self,
        gpu: &Gpu,
        shape: &AttentionShape,
        dtype: DType,
        inputs: &AttentionInputs,
    ) -> Result<Program, PrepareError> {
        self.prepare_with_shift(gpu, shape, dtype, inputs, causal_shift(shape))
    }

    /// [`prepare`](Self::prepare) with an explicit causal diagonal: causal query i sees keys
    /// 0 ..= i + `shift`. `prepare` passes Skv - Sq (queries aligned to the last keys, where
    /// no row is ever fully masked); tests pass other shifts to exercise fully masked rows.
    pub fn prepare_with_shift(
        &self,
        gpu: &Gpu,
        shape: &AttentionShape,
        dtype: DType,
        inputs: &AttentionInputs,
        shift: i32,
    ) -> Result<Program, PrepareError> {
        if dtype == DType::F16 && !gpu.has_f16() {
            return Err(PrepareError::Unsupported("adapter lacks SHADER_F16".into()));
        }
        if !AttentionShape::HEAD_DIMS.contains(&shape.d) {
            return Err(PrepareError::Unsupported(format!(
                "head dim {} is not one of {:?}",
                shape.d,
                AttentionShape::HEAD_DIMS
            )));
        }
        if shape.hkv == 0 || !shape.hq.is_multiple_of(shape.hkv) {
            return Err(PrepareError::Unsupported(format!(
                "hq={} is not a multiple of hkv={}",
                shape.hq, shape.hkv
            )));
        }
        if let AttentionVariant::Flash { chunk: Some(_), .. } = self {
            let rows = shape.hq / shape.hkv * shape.sq;
            if rows > SPLIT_MAX_ROWS {
                return Err(PrepareError::Unsupported(format!(
                    "split-KV (flash-decoding) variants are for few query rows per KV head (at most {SPLIT_MAX_ROWS}; this shape has {rows})"
                )));
            }
        }
        check_workgroup(
            gpu,
            self.invocations(),
            self.workgroup_bytes(shape, dtype),
            &format!(" for d={}", shape.d),
        )?;
        let (q_len, kv_len) = (shape.q_len(), shape.kv_len());
        check_buffer(gpu, "Q", q_len * dtype.size())?;
        check_buffer(gpu, "K", kv_len * dtype.size())?;
        check_buffer(gpu, "V", kv_len * dtype.size())?;
        check_buffer(gpu, "O", q_len * dtype.size())?;
        if inputs.q.len() as u64 != q_len
            || inputs.k.len() as u64 != kv_len
            || inputs.v.len() as u64 != kv_len
        {
            return Err(PrepareError::Failed(format!(
                "inputs do not match the shape {shape} (q has {} elements, expected {q_len})",
                inputs.q.len()
            )));
        }
        let label = format!("attention {} {shape} {dtype}", self.name());
        let rep = shape.hq / shape.hkv;
        let scale = 1.0 / (shape.d as f64).sqrt();
        let rows = shape.b as u64 * shape.hq as u64 * shape.sq as u64;
        if let AttentionVariant::Decode { tk, subs } = *self {
            return prepare_decode(gpu, shape, dtype, inputs, shift, tk, subs, &label);
        }
        if let AttentionVariant::DecodeCoop { .. } = *self {
            return prepare_decode_coop(gpu, shape, dtype, inputs, shift, *self, &label);
        }
        if let AttentionVariant::DecodeTexture { tk, chunk, split_d } = *self {
            return prepare_decode_texture(
                gpu, shape, dtype, inputs, shift, tk, chunk, split_d, &label,
            );
        }
        let q = storage_buffer(gpu, "Q", inputs.q.bytes(), false);
        let out = output_buffer(gpu, "O", dtype, q_len);
        let program = |dispatches: Vec<Dispatch>, keep: Vec<wgpu::Buffer>, out: wgpu::Buffer| {
            Ok(Program::new(dispatches, out, dtype, q_len, keep))
        };
        let AttentionVariant::Flash { kv, chunk, .. } = *self else {
            // The naive path: scores, softmax, P·V.
            let (ks, vs) = kv_buffers(gpu, shape, dtype, inputs, None);
            let scores_bytes = self.scratch_bytes(shape, dtype);
            check_buffer(gpu, "the score matrix", scores_bytes)?;
            let workgroups = self.workgroups(shape, 1);
            check_workgroups(gpu, workgroups)?;
            let pv_groups = [1, shape.sq, shape.b * shape.hq];
            check_workgroups(gpu, pv_groups)?;
            let softmax_groups = grid_1d(rows);
            check_workgroups(gpu, softmax_groups)?;
            let params = NaiveParams {
                b: shape.b,
                hq: shape.hq,
                hkv: shape.hkv,
                sq: shape.sq,
                skv: shape.skv,
                d: shape.d,
                rep,
                causal: shape.causal as u32,
                shift,
                scale: scale as f32,
                _pad0: 0,
                _pad1: 0,
            };
            let [scores_src, softmax_src, pv_src] = naive_sources(dtype);
            let p_scores = compile(gpu, &format!("{label} scores"), &scores_src, "main")?;
            let p_softmax = compile(gpu, &format!("{label} softmax"), &softmax_src, "main")?;
            let p_pv = compile(gpu, &format!("{label} pv"), &pv_src, "main")?;
            let uniforms = uniform_buffer(gpu, "attention params", bytemuck::bytes_of(&params));
            let scores = scratch(gpu, "attention scores", scores_bytes);
            // Execution e reads copy e of K and of V (see kv_copies).
            let (b_scores, b_softmax, b_pv) = (
                ks.iter()
                    .map(|k| bind(gpu, &p_scores, &[&uniforms, &q, k, &scores]))
                    .collect(),
                bind(gpu, &p_softmax, &[&uniforms, &scores]),
                vs.iter()
                    .map(|v| bind(gpu, &p_pv, &[&uniforms, &scores, v, &out]))
                    .collect(),
            );
            let dispatches = vec![
                Dispatch::cycling(p_scores, b_scores, workgroups),
                Dispatch::new(p_softmax, b_softmax, softmax_groups),
                Dispatch::cycling(p_pv, b_pv, pv_groups),
            ];
            let mut keep = vec![uniforms, q, scores];
            keep.extend(ks.into_iter().chain(vs));
            return program(dispatches, keep, out);
        };

        // Fused variants.
        if kv == KvAccess::UniformShared {
            require_subgroups(
                gpu,
                self.invocations(),
                "shares K/V loads across the workgroup's lanes",
            )?;
        }
        if kv.uniform() && chunk.is_some() {
            return Err(PrepareError::Unsupported(
                "uniform windows are offered without split; decode uses the decode_ubo kernel"
                    .into(),
            ));
        }
        let limits = gpu.limits();
        let plan = if kv.uniform() {
            Some(
                self.window_plan(
                    shape,
                    dtype,
                    limits.max_uniform_buffer_binding_size,
                    limits.min_uniform_buffer_offset_alignment as u64,
                )
                .ok_or_else(|| {
                    PrepareError::Unsupported(format!(
                        "a {}-byte uniform window cannot hold one tile of d={} keys",
                        limits.max_uniform_buffer_binding_size, shape.d
                    ))
                })?,
            )
        } else {
            None
        };
        let nsplit = match (plan, chunk) {
            (Some(p), Some(_)) => p.windows * p.subs,
            (None, Some(k)) => shape.skv.div_ceil(k),
            (_, None) => 1,
        };
        let chunk_keys = match (plan, chunk) {
            (_, Some(k)) => k,
            (Some(p), None) => p.keys,
            (None, None) => shape.skv,
        };
        let workgroups = self.workgroups(shape, plan.map_or(1, |p| p.subs));
        check_workgroups(gpu, workgroups)?;
        let params = FlashParams {
            b: shape.b,
            hq: shape.hq,
            hkv: shape.hkv,
            sq: shape.sq,
            skv: shape.skv,
            rep,
            causal: shape.causal as u32,
            nsplit,
            shift,
            chunk: chunk_keys,
            scale_log2e: (scale * LOG2_E) as f32,
            _pad: 0,
        };
        let window_vec4s = plan.map_or(0, |p| (p.window_bytes / 16) as u32);
        let source = self
            .flash_source(shape.d, dtype, window_vec4s)
            .expect("flash variants have a source");
        let main = compile(gpu, &label, &source, "main")?;
        let uniforms = uniform_buffer(gpu, "attention params", bytemuck::bytes_of(&params));
        let mut keep = vec![];
        // Outputs of the main kernel: O, the carried state, or the split partials.
        let (part_o, part_ml) = if chunk.is_some() {
            let part_o_bytes = rows * nsplit as u64 * shape.d as u64 * 4;
            check_buffer(gpu, "the partial outputs", part_o_bytes)?;
            (
                Some(scratch(gpu, "attention partial o", part_o_bytes)),
                Some(scratch(
                    gpu,
                    "attention partial m, l",
                    rows * nsplit as u64 * 8,
                )),
            )
        } else {
            (None, None)
        };
        let mut dispatches = Vec::new();
        if let Some(plan) = plan {
            // A whole window past the last key must stay inside the buffer.
            let (ks, vs) = kv_buffers(gpu, shape, dtype, inputs, Some(plan.window_bytes));
            let state = if chunk.is_none() {
                let bytes = rows * (shape.d as u64 / 4 + 1) * 16;
                check_buffer(gpu, "the softmax state", bytes)?;
                Some(scratch(gpu, "attention state", bytes))
            } else {
                None
            };
            let blocks = self.row_blocks(shape);
            let slot = 32u64.next_multiple_of(plan.align);
            let count = shape.b as u64 * shape.hkv as u64 * plan.windows as u64;
            let mut slots = vec![0u8; (count * slot) as usize];
            let row_bytes = shape.d as u64 * dtype.size();
            let mut ranges = Vec::new();
            let mut i = 0u64;
            for batch in 0..shape.b {
                for g in 0..shape.hkv {
                    for wi in 0..plan.windows {
                        let k0 = wi * plan.keys;
                        let first_byte = ((batch as u64 * shape.hkv as u64 + g as u64)
                            * shape.skv as u64
                            + k0 as u64)
                            * row_bytes;
                        let start = first_byte / plan.align * plan.align;
                        let window = [
                            batch,
                            g,
                            k0,
                            plan.keys.min(shape.skv - k0),
                            ((first_byte - start) / 16) as u32,
                            (wi == 0) as u32,
                            // Row blocks: the kernel dispatches a power of two of them.
                            blocks,
                            0,
                        ];
                        let at = (i * slot) as usize;
                        slots[at..at + 32].copy_from_slice(bytemuck::bytes_of(&window));
                        ranges.push((i * slot, start));
                        i += 1;
                    }
                }
            }
            let windows = uniform_buffer(gpu, "attention windows", &slots);
            for (slot_at, start) in ranges {
                // One bind group per copy of K and V (see kv_copies).
                let bind_groups = ks
                    .iter()
                    .zip(&vs)
                    .map(|(k, v)| {
                        let mut entries = vec![
                            whole(&uniforms),
                            range(&windows, slot_at, 32),
                            whole(&q),
                            range(k, start, plan.window_bytes),
                            range(v, start, plan.window_bytes),
                        ];
                        match (&state, &part_o, &part_ml) {
                            (Some(st), _, _) => {
                                entries.push(whole(st));
                                entries.push(whole(&out));
                            }
                            (None, Some(po), Some(pm)) => {
                                entries.push(whole(po));
                                entries.push(whole(pm));
                            }
                            _ => unreachable!("either state or partials"),
                        }
                        bind_entries(gpu, &main, &entries)
                    })
                    .collect();
                dispatches.push(Dispatch::cycling(main.clone(), bind_groups, workgroups));
            }
            keep.extend([uniforms.clone(), windows, q.clone()]);
            keep.extend(ks.into_iter().chain(vs));
            keep.extend(state);
        } else {
            let (ks, vs) = kv_buffers(gpu, shape, dtype, inputs, None);
            let bind_groups = ks
                .iter()
                .zip(&vs)
                .map(|(k, v)| match (&part_o, &part_ml) {
                    (Some(po), Some(pm)) => bind(gpu, &main, &[&uniforms, &q, k, v, po, pm]),
                    _ => bind(gpu, &main, &[&uniforms, &q, k, v, &out]),
                })
                .collect();
            dispatches.push(Dispatch::cycling(main, bind_groups, workgroups));
            keep.extend([uniforms.clone(), q.clone()]);
            keep.extend(ks.into_iter().chain(vs));
        }
        if let (Some(po), Some(pm)) = (part_o, part_ml) {
            let merge_groups = grid_1d(rows * shape.d as u64 / 4);
            check_workgroups(gpu, merge_groups)?;
            let merge = compile(
                gpu,
                &format!("{label} merge"),
                &merge_source(shape.d, dtype),
                "main",
            )?;
            let bind_group = bind(gpu, &merge, &[&uniforms, &po, &pm, &out]);
            dispatches.push(Dispatch::new(merge, bind_group, merge_groups));
            keep.extend([po, pm]);
        }
        program(dispatches, keep, out)
    }
}

/// The WGSL of the naive path's three steps: scores, softmax, P·V.
pub fn naive_sources(dtype: DType) -> [String; 3] {
    let fields = [
        ("PARAMS", NAIVE_PARAMS.to_string()),
        ("ENABLE_F16", enable_line(dtype)),
        ("ELEM", dtype.wgsl().to_string()),
    ];
    [
        render(NAIVE_SCORES, &fields),
        render(NAIVE_SOFTMAX, &fields[..1]),
        render(NAIVE_PV, &fields),
    ]
}

/// The WGSL of the split variants' merge pass.
pub fn merge_source(d: u32, dtype: DType) -> String {
    render(
        FLASH_MERGE,
        &[
            ("PARAMS", FLASH_PARAMS.into()),
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("D4", (d / 4).to_string()),
        ],
    )
}

/// Query rows per invocation at head dim `d` for a variant with `tq` rows at d=64: scaled by
/// 64/d (at least 1), which bounds each invocation's private state (q and o: 2·tq·64 floats)
/// and the size of the unrolled shader, whose compile time grows faster than its length.
pub fn rows_per_invocation(tq: u32, d: u32) -> u32 {
    (tq * 64 / d).max(1)
}

/// Query rows per sequence up to which attention is a decode step.
pub const DECODE_MAX_SQ: u32 = crate::tuning::DECODE_MAX_ROWS;

/// How many copies of K and V the timing cycles through, one per execution. A decode step
/// reads its layer's KV cache, which the other layers' weights streamed since have evicted,
/// so like weights ([`weights::weight_copies`]) it must come from memory, not from the cache
/// the previous execution filled: an H100's 50 MB L2 holds a 37.7 MB layer cache of
/// llama-3.1-8b at batch 16 and context 576. Prefill reads the K and V its layer has just
/// written, from cache as in a forward pass: one copy.
pub fn kv_copies(shape: &AttentionShape, dtype: DType) -> usize {
    if shape.sq > DECODE_MAX_SQ {
        return 1;
    }
    let kv_bytes = 2 * shape.kv_len() * dtype.size();
    weights::weight_copies(kv_bytes)
}

/// [`kv_copies`] copies of K and of V in storage buffers; with `window_bytes`, also
/// bindable as uniform windows of that size and padded by one (rounded up to 16), so a
/// whole window past the last key stays inside the buffer.
pub(super) fn kv_buffers(
    gpu: &Gpu,
    shape: &AttentionShape,
    dtype: DType,
    inputs: &AttentionInputs,
    window_bytes: Option<u64>,
) -> (Vec<wgpu::Buffer>, Vec<wgpu::Buffer>) {
    let copies = kv_copies(shape, dtype);
    let usage = match window_bytes {
        Some(_) => wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
        None => wgpu::BufferUsages::STORAGE,
    };
    let copy = |label: &str, t: &HostTensor| {
        let len = (t.bytes().len() as u64 + window_bytes.unwrap_or(0)).next_multiple_of(16);
        weights::buffer_copies(gpu, label, t.bytes(), len, usage, copies)
    };
    (copy("K", &inputs.k), copy("V", &inputs.v))
}

/// Split variants apply to shapes with at most this many query rows per KV head (decode,
/// short chunks); above it the unsplit kernels already fill the device.
pub const SPLIT_MAX_ROWS: u32 = 256;

/// A device-only f32 scratch buffer.
pub(super) fn scratch(gpu: &Gpu, label: &str, bytes: u64) -> wgpu::Buffer {
    gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.next_multiple_of(4).max(4),
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

pub(super) fn whole(buffer: &wgpu::Buffer) -> wgpu::BufferBinding<'_> {
    buffer.as_entire_buffer_binding()
}

pub(super) fn range(buffer: &wgpu::Buffer, offset: u64, size: u64) -> wgpu::BufferBinding<'_> {
    wgpu::BufferBinding {
        buffer,
        offset,
        size: std::num::NonZeroU64::new(size),
    }
}

/// Bind buffer ranges to bindings 0.. of the pipeline's group 0.
pub(super) fn bind_entries(
    gpu: &Gpu,
    pipeline: &wgpu::ComputePipeline,
    buffers: &[wgpu::BufferBinding<'_>],
) -> wgpu::BindGroup {
    let resources = buffers
        .iter()
        .map(|b| wgpu::BindingResource::Buffer(b.clone()))
        .collect();
    super::bind_resources(gpu, pipeline, None, resources)
}

/// The causal diagonal offset for `shape`: queries aligned to the last keys.
pub fn causal_shift(shape: &AttentionShape) -> i32 {
    shape.skv as i32 - shape.sq as i32
}

/// A 2-D grid of 64-invocation workgroups covering `n` invocations (x at most 65,535).
pub(super) fn grid_1d(n: u64) -> [u32; 3] {
    let groups = n.div_ceil(64).max(1);
    let x = groups.min(GRID_X_MAX as u64);
    let y = groups.div_ceil(x);
    [x as u32, y.min(u32::MAX as u64) as u32, 1]
}

/// Inputs of one attention problem, in the storage type.
pub struct AttentionInputs {
    pub q: HostTensor,
    pub k: HostTensor,
    pub v: HostTensor,
}

impl AttentionInputs {
    /// Q, K, V ~ N(0, 1) from a seeded generator (kernel-anchors §8).
    pub fn random(shape: &AttentionShape, dtype: DType, seed: u64) -> Self {
        Self::with_logit_scale(shape, dtype, seed, 1.0)
    }

    /// All zeros, for programs that are only compiled ([`HostTensor::zeros`]).
    pub fn zeros(shape: &AttentionShape, dtype: DType) -> Self {
        let (q_len, kv_len) = (shape.q_len(), shape.kv_len());
        AttentionInputs {
            q: HostTensor::zeros(dtype, q_len),
            k: HostTensor::zeros(dtype, kv_len),
            v: HostTensor::zeros(dtype, kv_len),
        }
    }

    /// As [`random`](Self::random), with Q multiplied by `factor`: the logits scale by it, so
    /// large factors exercise the running max (scores far beyond exp's f32 range) and small
    /// ones the near-uniform softmax.
    pub fn with_logit_scale(shape: &AttentionShape, dtype: DType, seed: u64, factor: f32) -> Self {
        let mut rng = crate::verify::Rng::new(seed);
        let (q_len, kv_len) = (shape.q_len(), shape.kv_len());
        // Box-Muller from two draws; u1 in (0, 1] so the log is finite.
        let normal = |rng: &mut crate::verify::Rng| {
            let u1 = 1.0 - (rng.uniform() as f64 + 1.0) / 2.0;
            let u2 = (rng.uniform() as f64 + 1.0) / 2.0;
            ((-2.0 * u1.max(f64::MIN_POSITIVE).ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
                as f32
        };
        let q = HostTensor::drawn(dtype, q_len, &mut rng, 2, |r| normal(r) * factor);
        let k = HostTensor::drawn(dtype, kv_len, &mut rng, 2, normal);
        let v = HostTensor::drawn(dtype, kv_len, &mut rng, 2, normal);
        AttentionInputs { q, k, v }
    }
}

/// How the fused kernel reads K and V.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KvAccess {
    /// Straight from the storage buffers with workgroup-uniform indices, no barriers.
    Direct,
    /// BC x D tiles staged in workgroup memory between barriers (the GPU design).
    Staged,
    /// Through uniform-buffer windows of the K/V buffers, one dispatch per window (the
    /// lavapipe design: uniform loads are vector gathers there, storage loads scalar loops).
    Uniform,
    /// As `Uniform`, but each lane of the 8-lane subgroup loads its own share of a key row
    /// and `subgroupBroadcast` hands the vec4s to every lane: on lavapipe a load at a
    /// workgroup-uniform address is still an 8-lane gather, so this gathers 8 different
    /// vec4s where `Uniform` gathers one 8 times. Needs subgroups of at least BR lanes.
    UniformShared,
}

impl KvAccess {
    /// Whether K and V come through uniform-buffer windows.
    pub fn uniform(self) -> bool {
        matches!(self, KvAccess::Uniform | KvAccess::UniformShared)
    }
}

/// Text generation for the fused kernels: everything unrolled over TQ rows, D4 vec4 columns
/// and BC keys, column-major so each loaded K/V vec4 serves TQ rows and each q/o vec4 BC keys.
struct Gen {
    br: u32,
    tq: u32,
    bc: u32,
    d4: u32,
    kv: KvAccess,
    f16: bool,
    split: bool,
}

pub(super) const IND: &str = "        ";

impl Gen {
    /// Per-row setup: index, causal limit, pre-scaled q, accumulators (and, for uniform
    /// windows without split, the state carried from the previous window).
    fn rows(&self) -> String {
        let mut s = String::new();
        for r in 0..self.tq {
            let off = r * self.br;
            let _ = writeln!(s, "    let pk{r} = min(pr0 + {off}u + li, rows - 1u);");
            let _ = writeln!(s, "    let valid{r} = pr0 + {off}u + li < rows;");
            let _ = writeln!(s, "    let pos{r} = pk{r} / p.rep;");
            let _ = writeln!(
                s,
                "    let row{r} = (batch * p.hq + g * p.rep + pk{r} % p.rep) * p.sq + pos{r};"
            );
            let _ = writeln!(s, "    var lim{r} = skv - 1;");
            let _ = writeln!(
                s,
                "    if (p.causal != 0u) {{\n        lim{r} = min(i32(pos{r}) + p.shift, skv - 1);\n    }}"
            );
            if self.packed_io() {
                // Q and O as vec4<u32> of 8 halves: half the per-lane storage accesses.
                let _ = writeln!(s, "    let qb{r} = row{r} * (D4 / 2u);");
                for c2 in 0..self.d4 / 2 {
                    let _ = writeln!(s, "    let qu{r}_{c2} = q[qb{r} + {c2}u];");
                    for (h, (x, y)) in [("x", "y"), ("z", "w")].iter().enumerate() {
                        let _ = writeln!(
                            s,
                            "    let q{r}_{} = vec4<f32>(unpack2x16float(qu{r}_{c2}.{x}), unpack2x16float(qu{r}_{c2}.{y})) * p.scale_log2e;",
                            2 * c2 + h as u32
                        );
                    }
                }
            } else {
                let _ = writeln!(s, "    let qb{r} = row{r} * D4;");
                for c in 0..self.d4 {
                    let _ = writeln!(
                        s,
                        "    let q{r}_{c} = vec4<f32>(q[qb{r} + {c}u]) * p.scale_log2e;"
                    );
                }
            }
            for c in 0..self.d4 {
                let _ = writeln!(s, "    var o{r}_{c} = vec4<f32>(0.0);");
            }
            let _ = writeln!(s, "    var m{r} = NEG;");
            let _ = writeln!(s, "    var l{r} = 0.0;");
            if self.kv.uniform() && !self.split {
                let _ = writeln!(s, "    let sb{r} = row{r} * (D4 + 1u);");
                let _ = writeln!(s, "    if (w.first == 0u && lim{r} >= i32(w.k0)) {{");
                for c in 0..self.d4 {
                    let _ = writeln!(s, "        o{r}_{c} = state[sb{r} + {c}u];");
                }
                let _ = writeln!(s, "        let ml = state[sb{r} + D4];");
                let _ = writeln!(s, "        m{r} = ml.x;");
                let _ = writeln!(s, "        l{r} = ml.y;");
                let _ = writeln!(s, "    }}");
            }
        }
        s.trim_end().to_string()
    }

    /// Whether Q and O are bound as `vec4<u32>` of 8 halves (f16, uniform windows, unsplit):
    /// each lane's storage accesses are scalar loops on lavapipe, so half as many of them
    /// cost half as much (f16 had run 0.92x f32 at gpt2's 64-token prefill).
    fn packed_io(&self) -> bool {
        self.f16 && self.kv.uniform() && !self.split
    }

    /// Columns loaded together: f16 uniform windows pack 8 halves in one `vec4<u32>`.
    fn group(&self) -> u32 {
        if self.kv.uniform() && self.f16 {
            2
        } else {
            1
        }
    }

    /// Statements loading the vec4s `c0 .. c0 + group` of key `j` of `buf` (k or v) into
    /// `{name}0`, `{name}1`, ...
    fn load(&self, buf: &str, j: u32, c0: u32, name: &str) -> String {
        let d4 = self.d4;
        match self.kv {
            KvAccess::Direct => {
                format!("let {name}0 = vec4<f32>({buf}[kb{j} + {c0}u]);")
            }
            KvAccess::Staged => {
                format!("let {name}0 = vec4<f32>({buf}s[{}u]);", j * d4 + c0)
            }
            // The lane loads of `lane_loads` hold vec4 c of key j in lane c % 8 of
            // `{buf}l{j}_{c / 8}` (f16: packed vec4 c / 2).
            KvAccess::UniformShared if !self.f16 => format!(
                "let {name}0 = subgroupBroadcast({buf}l{j}_{}, {}u);",
                c0 / 8,
                c0 % 8
            ),
            // f16: each lane unpacked its own load (`lane_loads`), once for all rows and
            // columns; the broadcasts share f32 vec4s.
            KvAccess::UniformShared => format!(
                "let {name}0 = subgroupBroadcast({buf}l{j}_{u}_0, {l}u); let {name}1 = subgroupBroadcast({buf}l{j}_{u}_1, {l}u);",
                u = c0 / 16,
                l = (c0 / 2) % 8,
            ),
            KvAccess::Uniform if !self.f16 => {
                format!("let {name}0 = {buf}w[kb + {}u];", j * d4 + c0)
            }
            KvAccess::Uniform => format!(
                "let {name}u = {buf}w[kb + {}u]; {}",
                j * (d4 / 2) + c0 / 2,
                unpack_halves(name)
            ),
        }
    }

    /// For `UniformShared`: each lane's share of the tile's BC key rows of `buf` (k or v),
    /// window vec4 u·8 + lane of row j in `{buf}l{j}_{u}` (clamped to the row's last vec4
    /// when the row is not a multiple of 8 vec4s), in f16 unpacked by the lane into
    /// `{buf}l{j}_{u}_0` and `_1`: one unpack per load, where unpacking after the broadcast
    /// took one per row vec4 per key (f16 had run 0.95x f32 at gpt2's prefill); empty for the
    /// other accesses.
    fn lane_loads(&self, buf: &str) -> String {
        let mut s = String::new();
        if self.kv != KvAccess::UniformShared {
            return s;
        }
        // Window vec4s per key row: f16 rows pack 8 halves per vec4<u32>.
        let row = if self.f16 { self.d4 / 2 } else { self.d4 };
        for j in 0..self.bc {
            for u in 0..row.div_ceil(8) {
                let _ = writeln!(
                    s,
                    "{IND}let {buf}l{j}_{u} = {buf}w[kb + {}u + min({}u + li, {}u)];",
                    j * row,
                    u * 8,
                    row - 1
                );
                if self.f16 {
                    let t = format!("{buf}l{j}_{u}");
                    let _ = writeln!(
                        s,
                        "{IND}let {t}_0 = vec4<f32>(unpack2x16float({t}.x), unpack2x16float({t}.y)); let {t}_1 = vec4<f32>(unpack2x16float({t}.z), unpack2x16float({t}.w));"
                    );
                }
            }
        }
        s
    }

    /// One tile of BC keys starting at key `t`, masked per row.
    fn tile(&self) -> String {
        let (bc, d4, tq) = (self.bc, self.d4, self.tq);
        let mut s = String::new();
        match self.kv {
            KvAccess::Staged => {
                // Cooperative load of the K and V tiles (coalesced: consecutive invocations
                // read consecutive vec4s), between barriers. Keys past Skv are clamped (and
                // masked below).
                let total = bc * d4;
                let _ = writeln!(s, "{IND}workgroupBarrier();");
                for it in 0..total.div_ceil(self.br) {
                    let guard = (it + 1) * self.br > total;
                    let _ = writeln!(s, "{IND}{{");
                    let _ = writeln!(s, "{IND}    let idx = li + {}u;", it * self.br);
                    let inner = if guard { "        " } else { "    " };
                    if guard {
                        let _ = writeln!(s, "{IND}    if (idx < {total}u) {{");
                    }
                    let _ = writeln!(
                        s,
                        "{IND}{inner}let src = (kv_row0 + u32(min(t + i32(idx / D4), skv - 1))) * D4 + idx % D4;"
                    );
                    let _ = writeln!(s, "{IND}{inner}ks[idx] = k[src];");
                    let _ = writeln!(s, "{IND}{inner}vs[idx] = v[src];");
                    if guard {
                        let _ = writeln!(s, "{IND}    }}");
                    }
                    let _ = writeln!(s, "{IND}}}");
                }
                let _ = writeln!(s, "{IND}workgroupBarrier();");
            }
            KvAccess::Direct => {
                for j in 0..bc {
                    let _ = writeln!(
                        s,
                        "{IND}let kb{j} = (kv_row0 + u32(min(t + {j}, skv - 1))) * D4;"
                    );
                }
            }
            KvAccess::Uniform | KvAccess::UniformShared => {}
        }
        // Scores s_r_j = q_r · k_j.
        for r in 0..tq {
            for j in 0..bc {
                let _ = writeln!(s, "{IND}var s{r}_{j} = 0.0;");
            }
        }
        let group = self.group();
        s.push_str(&self.lane_loads("k"));
        for c0 in (0..d4).step_by(group as usize) {
            for j in 0..bc {
                let _ = writeln!(s, "{IND}{{");
                let _ = writeln!(s, "{IND}    {}", self.load("k", j, c0, "x"));
                for gi in 0..group {
                    let c = c0 + gi;
                    for r in 0..tq {
                        let _ = writeln!(
                            s,
                            "{IND}    s{r}_{j} = fma(q{r}_{c}.w, x{gi}.w, fma(q{r}_{c}.z, x{gi}.z, fma(q{r}_{c}.y, x{gi}.y, fma(q{r}_{c}.x, x{gi}.x, s{r}_{j}))));"
                        );
                    }
                }
                let _ = writeln!(s, "{IND}}}");
            }
        }
        // Mask, then the online-softmax update per row. A masked key adds exactly 0, even
        // while the row has seen no key yet (mn = NEG).
        for r in 0..tq {
            for j in 0..bc {
                let _ = writeln!(s, "{IND}let out{r}_{j} = t + {j} > lim{r};");
                let _ = writeln!(s, "{IND}s{r}_{j} = select(s{r}_{j}, NEG, out{r}_{j});");
            }
            let names: Vec<String> = (0..bc).map(|j| format!("s{r}_{j}")).collect();
            let _ = writeln!(s, "{IND}let mn{r} = max(m{r}, {});", tree(&names, "max"));
            let _ = writeln!(s, "{IND}let alpha{r} = exp2(m{r} - mn{r});");
            for j in 0..bc {
                let _ = writeln!(
                    s,
                    "{IND}let p{r}_{j} = select(exp2(s{r}_{j} - mn{r}), 0.0, out{r}_{j});"
                );
            }
            let ps: Vec<String> = (0..bc).map(|j| format!("p{r}_{j}")).collect();
            let _ = writeln!(s, "{IND}l{r} = fma(l{r}, alpha{r}, {});", tree(&ps, "+"));
            let _ = writeln!(s, "{IND}m{r} = mn{r};");
        }
        // o_r = alpha_r·o_r + Σ_j p_r_j·v_j.
        s.push_str(&self.lane_loads("v"));
        for c0 in (0..d4).step_by(group as usize) {
            for gi in 0..group {
                for r in 0..tq {
                    let c = c0 + gi;
                    let _ = writeln!(s, "{IND}o{r}_{c} = o{r}_{c} * alpha{r};");
                }
            }
            for j in 0..bc {
                let _ = writeln!(s, "{IND}{{");
                let _ = writeln!(s, "{IND}    {}", self.load("v", j, c0, "y"));
                for gi in 0..group {
                    let c = c0 + gi;
                    for r in 0..tq {
                        let _ = writeln!(
                            s,
                            "{IND}    o{r}_{c} = fma(vec4<f32>(p{r}_{j}), y{gi}, o{r}_{c});"
                        );
                    }
                }
                let _ = writeln!(s, "{IND}}}");
            }
        }
        s.trim_end().to_string()
    }

    fn store(&self) -> String {
        let mut s = String::new();
        for r in 0..self.tq {
            let final_cond = match (self.kv, self.split) {
                (_, true) => None,
                (KvAccess::Uniform | KvAccess::UniformShared, false) => Some(format!(
                    "valid{r} && lim{r} < i32(w.k0 + w.nkeys) && (lim{r} >= i32(w.k0) || w.first != 0u)"
                )),
                _ => Some(format!("valid{r}")),
            };
            if let Some(cond) = final_cond {
                // A row that saw no key has l = 0 and o = 0: it writes 0, not NaN.
                let _ = writeln!(s, "    if ({cond}) {{");
                let _ = writeln!(s, "        let inv = select(0.0, 1.0 / l{r}, l{r} > 0.0);");
                if self.packed_io() {
                    for c2 in 0..self.d4 / 2 {
                        let (lo, hi) = (2 * c2, 2 * c2 + 1);
                        let _ = writeln!(
                            s,
                            "        let ou{c2}_{r} = vec4<f32>(o{r}_{lo} * inv); let ov{c2}_{r} = vec4<f32>(o{r}_{hi} * inv);"
                        );
                        let _ = writeln!(
                            s,
                            "        out[qb{r} + {c2}u] = vec4<u32>(pack2x16float(ou{c2}_{r}.xy), pack2x16float(ou{c2}_{r}.zw), pack2x16float(ov{c2}_{r}.xy), pack2x16float(ov{c2}_{r}.zw));"
                        );
                    }
                } else {
                    for c in 0..self.d4 {
                        let _ = writeln!(s, "        out[qb{r} + {c}u] = vec4<E>(o{r}_{c} * inv);");
                    }
                }
                if self.kv.uniform() {
                    // Not final in this window: carry the state to the next one.
                    let _ = writeln!(s, "    }} else if (valid{r} && lim{r} >= i32(w.k0)) {{");
                    for c in 0..self.d4 {
                        let _ = writeln!(s, "        state[sb{r} + {c}u] = o{r}_{c};");
                    }
                    let _ = writeln!(
                        s,
                        "        state[sb{r} + D4] = vec4<f32>(m{r}, l{r}, 0.0, 0.0);"
                    );
                }
                let _ = writeln!(s, "    }}");
            } else {
                let _ = writeln!(s, "    if (valid{r}) {{");
                let _ = writeln!(s, "        let pb = row{r} * p.nsplit + split;");
                for c in 0..self.d4 {
                    let _ = writeln!(s, "        part_o[pb * D4 + {c}u] = o{r}_{c};");
                }
                let _ = writeln!(s, "        part_ml[pb] = vec2<f32>(m{r}, l{r});");
                let _ = writeln!(s, "    }}");
            }
        }
        s.trim_end().to_string()
    }
}

/// A balanced expression tree: `max(max(a, b), max(c, d))` or `((a + b) + (c + d))`.
pub(super) fn tree(items: &[String], op: &str) -> String {
    match items.len() {
        0 => unreachable!("empty tile"),
        1 => items[0].clone(),
        n => {
            let (a, b) = items.split_at(n / 2);
            let (a, b) = (tree(a, op), tree(b, op));
            if op == "max" {
                format!("max({a}, {b})")
            } else {
                format!("({a} {op} {b})")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(spec: &str) -> AttentionShape {
        spec.parse().unwrap()
    }

    /// The WGSL uniform blocks and the host structs written into them name the same fields
    /// in the same order, every one 4 bytes: a field added on one side only would shift
    /// every field after it.
    #[test]
    fn the_wgsl_params_structs_mirror_the_host_ones() {
        fn wgsl_fields(source: &str) -> Vec<String> {
            let body = source
                .split("struct Params {")
                .nth(1)
                .expect("a Params struct");
            let body = &body[..body.find('}').expect("the struct's end")];
            body.lines()
                .filter_map(|l| l.trim().split_once(':'))
                .map(|(name, _)| name.trim().to_string())
                .collect()
        }
        // `Name { a: 0, b: 0 }`, from the derived Debug.
        fn host_fields(debug: String) -> Vec<String> {
            let body = &debug[debug.find('{').unwrap() + 1..debug.rfind('}').unwrap()];
            body.split(',')
                .filter_map(|f| f.split_once(':'))
                .map(|(name, _)| name.trim().to_string())
                .collect()
        }
        let flash = host_fields(format!(
            "{:?}",
            <FlashParams as bytemuck::Zeroable>::zeroed()
        ));
        assert_eq!(wgsl_fields(FLASH_PARAMS), flash);
        assert_eq!(4 * flash.len(), std::mem::size_of::<FlashParams>());
        let naive = host_fields(format!(
            "{:?}",
            <NaiveParams as bytemuck::Zeroable>::zeroed()
        ));
        assert_eq!(wgsl_fields(NAIVE_PARAMS), naive);
        assert_eq!(4 * naive.len(), std::mem::size_of::<NaiveParams>());
    }

    #[test]
    fn names_are_unique() {
        let names: std::collections::BTreeSet<String> =
            AttentionVariant::all().iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), AttentionVariant::all().len());
    }

    #[test]
    fn every_variant_renders_for_every_head_dim() {
        for v in AttentionVariant::all() {
            for d in AttentionShape::HEAD_DIMS {
                for dtype in [DType::F32, DType::F16] {
                    if let Some(src) = v.flash_source(d, dtype, 4096) {
                        assert!(!src.contains("{{"), "{} d={d}", v.name());
                        assert_eq!(
                            src.lines().any(|l| l.trim() == "enable f16;"),
                            dtype == DType::F16
                        );
                        // The last column of the accumulator is updated.
                        assert!(
                            src.contains(&format!("o0_{} = fma(", d / 4 - 1)),
                            "{}",
                            v.name()
                        );
                    }
                }
            }
        }
    }

    /// Parse and validate with naga (what wgpu runs before any driver sees the shader), for
    /// every variant, head dim and dtype: catches WGSL errors without an adapter.
    #[test]
    fn every_source_validates() {
        let validate = crate::kernels::validate_wgsl;
        for dtype in [DType::F32, DType::F16] {
            for (i, src) in naive_sources(dtype).iter().enumerate() {
                validate(&format!("naive step {i} {dtype}"), src);
            }
            for d in AttentionShape::HEAD_DIMS {
                validate(&format!("merge d={d} {dtype}"), &merge_source(d, dtype));
                for v in AttentionVariant::all() {
                    if let Some(src) = v.flash_source(d, dtype, 4096) {
                        validate(&format!("{} d={d} {dtype}", v.name()), &src);
                    }
                }
            }
        }
    }

    #[test]
    fn geometry_covers_every_row() {
        let s = shape("b=3,hq=12,hkv=4,sq=37,skv=300,d=128,causal=1");
        for v in AttentionVariant::all() {
            let [x, y, z] = v.workgroups(&s, 3);
            match v {
                AttentionVariant::Naive => {
                    assert!(x * 16 >= s.skv && y * 16 >= s.sq && z == s.b * s.hq)
                }
                AttentionVariant::Decode { .. } => assert_eq!([x, y, z], [3, 1, 1]),
                AttentionVariant::DecodeTexture { chunk, .. } => {
                    assert!(x * chunk >= s.skv && (x - 1) * chunk < s.skv);
                    assert_eq!((y, z), (s.hkv, s.b));
                }
                AttentionVariant::DecodeCoop {
                    chunk, share_kv, ..
                } => {
                    assert!(x * chunk >= s.skv && (x - 1) * chunk < s.skv);
                    let heads = if share_kv { s.hkv } else { s.hq };
                    assert_eq!((y, z), (heads, s.b));
                }
                AttentionVariant::Flash {
                    kv, br, tq, chunk, ..
                } => {
                    let rows = 3 * s.sq;
                    let per_group = br * rows_per_invocation(tq, s.d);
                    let blocks = if kv.uniform() {
                        assert_eq!((y, z), (1, 1));
                        // A power of two of workgroups, the blocks past the last return.
                        assert!(x.is_power_of_two(), "{}", v.name());
                        let blocks = rows.div_ceil(per_group);
                        assert_eq!(x, blocks.next_power_of_two(), "{}", v.name());
                        blocks
                    } else {
                        assert_eq!(y, s.hkv);
                        let splits = chunk.map_or(1, |k| s.skv.div_ceil(k));
                        assert_eq!(z, s.b * splits);
                        x
                    };
                    assert!(
                        blocks * per_group >= rows && (blocks - 1) * per_group < rows,
                        "{}",
                        v.name()
                    );
                }
            }
        }
    }

    #[test]
    fn rows_per_invocation_shrink_with_the_head_dim() {
        assert_eq!(rows_per_invocation(4, 64), 4);
        assert_eq!(rows_per_invocation(4, 80), 3);
        assert_eq!(rows_per_invocation(4, 128), 2);
        assert_eq!(rows_per_invocation(4, 256), 1);
        assert_eq!(rows_per_invocation(1, 256), 1);
    }

    #[test]
    fn windows_fit_the_binding_and_cover_every_key() {
        let v = AttentionVariant::Flash {
            kv: KvAccess::Uniform,
            br: 8,
            tq: 4,
            bc: 4,
            chunk: None,
        };
        for d in AttentionShape::HEAD_DIMS {
            for dtype in [DType::F32, DType::F16] {
                let s = shape(&format!("b=1,hq=2,sq=1000,d={d}"));
                let p = v.window_plan(&s, dtype, 1 << 16, 256).unwrap();
                let bytes = p.keys as u64 * d as u64 * dtype.size();
                assert!(bytes + 256 - 16 <= 1 << 16, "d={d} {dtype}");
                assert_eq!(p.keys % 4, 0);
                assert!(p.windows * p.keys >= 1000 && (p.windows - 1) * p.keys < 1000);
                assert_eq!(p.subs, 1);
            }
        }
        let decode = AttentionVariant::Decode { tk: 2, subs: 2 };
        let s = shape("b=1,hq=32,hkv=8,sq=1,skv=8192,d=128");
        let p = decode.window_plan(&s, DType::F32, 1 << 16, 256).unwrap();
        // (65536 - 240) / 512 = 127 keys, rounded down to whole 8-lane sub-chunks.
        assert_eq!((p.keys, p.subs, p.windows), (112, 2, 74));
        assert_eq!(decode.splits(&s, DType::F32), 74 * 2);
        // Not a uniform variant, or a window too small for a tile.
        assert!(AttentionVariant::Naive
            .window_plan(&s, DType::F32, 1 << 16, 256)
            .is_none());
        assert!(decode.window_plan(&s, DType::F32, 256, 256).is_none());
    }

    #[test]
    fn extra_memory_is_quadratic_only_for_naive() {
        let small = shape("b=1,hq=8,sq=1024,d=64,causal=1");
        let big = shape("b=1,hq=8,sq=2048,d=64,causal=1");
        let naive = AttentionVariant::Naive;
        assert_eq!(naive.scratch_bytes(&small, DType::F32), 8 * 1024 * 1024 * 4);
        assert_eq!(
            naive.scratch_bytes(&big, DType::F32),
            4 * naive.scratch_bytes(&small, DType::F32)
        );
        for v in AttentionVariant::all().into_iter().skip(1) {
            if matches!(v, AttentionVariant::Flash { chunk: None, .. }) {
                let (a, b) = (
                    v.scratch_bytes(&small, DType::F32),
                    v.scratch_bytes(&big, DType::F32),
                );
                assert!(b <= 2 * a, "{}: {a} -> {b}", v.name());
            }
        }
    }

    #[test]
    fn grid_1d_stays_within_limits() {
        assert_eq!(grid_1d(1), [1, 1, 1]);
        assert_eq!(grid_1d(64 * 65_535), [65_535, 1, 1]);
        let [x, y, _] = grid_1d(64 * 65_536);
        assert!(x <= 65_535 && x as u64 * y as u64 >= 65_536);
    }

    #[test]
    fn inputs_are_standard_normal() {
        let s = shape("b=1,hq=4,sq=256,d=64");
        let inputs = AttentionInputs::random(&s, DType::F32, 9);
        let n = inputs.q.len();
        let mean: f64 = (0..n).map(|i| inputs.q.get(i)).sum::<f64>() / n as f64;
        let var: f64 = (0..n).map(|i| inputs.q.get(i).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.05, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
