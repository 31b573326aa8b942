//! Matmul variants: what each one is, its WGSL (rendered from `kernels/matmul_*.wgsl`), its
//! dispatch geometry, and the limits it needs.
//!
//! Variants (all f32 accumulation; f16 storage where the adapter has `SHADER_F16`):
//! - `naive`: one output per invocation; the correctness baseline.
//! - `tiled_*`: workgroup-memory tiles plus a register tile; the GPU workhorse.
//! - `reg_*`: register tile without workgroup memory or barriers.
//! - `texture_*`: the same register tile reading A and B from sampled textures.
//! - `subgroup*`: outer products within a subgroup (each lane loads rows nobody else loads
//!   and shares them with subgroupBroadcast), from buffers, sampled textures (`_tex`) or
//!   read-only storage textures (`_stex`); `subgroup_stex` is the fast one on lavapipe.
//!   `subgroup_stexh` packs 8 halves per rgba32uint texel along k (f16 with B stored
//!   [n, k], the models' products): half the texel loads per k.
//! - `gemv_ubo_*`: matrix-vector products for decode (A of at most 4 rows, B stored [n, k])
//!   streaming B through uniform windows; in [`super::gemv`].
//! - `gemv_stex_*`: the same products with B in a storage texture, each lane walking whole
//!   B rows: the lavapipe decode design; in [`super::gemv_texture`].
//! - `gemv_coop_*`: matrix-vector products for decode (A of at most 8 rows, B stored [n, k])
//!   with a workgroup's lanes striding together along a few B rows from a storage buffer:
//!   the GPU decode design; in [`super::gemv_coop`].
//!
//! Texture operands are staged (zero-padded) before timing, like a BLAS packing step; for
//! inference the weights (B) are staged once at load time.

use std::fmt::Write as _;

use super::{
    bind, bind_resources, check_buffer, check_workgroup, check_workgroups, compile, enable_line,
    gemv, gemv::GemvTile, gemv_coop, gemv_coop::GemvCoopTile, gemv_texture,
    gemv_texture::GemvTexTile, output_buffer, render, storage_buffer, texel_layout::TexelLayout,
    uniform_buffer, weights, Dispatch, HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{DType, MatmulShape};

const NAIVE: &str = include_str!("../../kernels/matmul_naive.wgsl");
const COMMON: &str = include_str!("../../kernels/matmul_common.wgsl");
const REGBLOCK: &str = include_str!("../../kernels/matmul_regblock.wgsl");
const TILED: &str = include_str!("../../kernels/matmul_tiled.wgsl");
const SUBGROUP: &str = include_str!("../../kernels/matmul_subgroup.wgsl");
const TEXTURE_COMMON: &str = include_str!("../../kernels/matmul_texture_common.wgsl");
const PACK: &str = include_str!("../../kernels/matmul_pack.wgsl");

/// A matmul kernel and its tile parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatmulVariant {
    Naive,
    /// Register tile of `tm` rows x `4·tn4` columns per invocation, `wx` x `wy` workgroup.
    Reg {
        wx: u32,
        wy: u32,
        tm: u32,
        tn4: u32,
    },
    /// `bm` x `bn` block per workgroup, k-step `bk`, register tile `tm` x `4·tn4`.
    Tiled {
        bm: u32,
        bn: u32,
        bk: u32,
        tm: u32,
        tn4: u32,
    },
    /// Subgroup outer products: subgroups of `s` lanes, `nsg` per workgroup, each lane
    /// loading `ra` A rows and owning `4·tn4` columns.
    Subgroup {
        s: u32,
        nsg: u32,
        ra: u32,
        tn4: u32,
        operands: Operands,
    },
    /// The register-tile kernel reading A and B from textures staged before timing.
    Texture {
        wx: u32,
        wy: u32,
        tm: u32,
        tn4: u32,
    },
    /// Matrix-vector product over uniform windows of B (decode shapes only; see
    /// [`super::gemv`]): an 8-lane workgroup takes blocks of B rows one after another.
    Gemv(GemvTile),
    /// Matrix-vector product with B in a storage texture (decode shapes only; see
    /// [`super::gemv_texture`]): each lane walks whole B rows.
    GemvTexture(GemvTexTile),
    /// Matrix-vector product with B in a storage buffer (decode shapes only; see
    /// [`super::gemv_coop`]): a workgroup's lanes stride together along a few B rows.
    GemvCoop(GemvCoopTile),
}

/// Where a kernel reads A and B from. On lavapipe the choice decides speed: a storage-buffer
/// load whose address differs per lane is a scalar loop over the SIMD lanes, a sampled
/// texel fetch is vectorised, and a read-only storage-texture load is cheaper still
/// (1024^3 f32, subgroup kernel t16x4: 4.4, 19.7 and 28.8 GFLOP/s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operands {
    /// Storage buffers (`matmul_common.wgsl`).
    Buffers,
    /// Sampled textures, `texture_2d<f32>` (`matmul_texture_common.wgsl`).
    Textures,
    /// Read-only storage textures, `texture_storage_2d<rgba32float|rgba16float, read>`.
    StorageTextures,
    /// The same, with B staged as Bᵀ ([n, k]) whichever way it is stored, as weights are
    /// repacked at load time. f32 only (in f16 the packed halves do this). On lavapipe B
    /// stored [k, n] at 1024³ and 2048³ is read down power-of-two row pitches, and the
    /// same tiles ran 1.10-1.31x faster from Bᵀ; at 512³ and below 0.92-0.96x, so the
    /// search tries both. (Measured before textures got sides that are never powers of two
    /// (`texel_layout::allocated`), which changes their pitches too: a fresh standard run
    /// since chose row-major B at 1024³ and Bᵀ at 2048³.)
    StorageTexturesBt,
    /// Read-only storage textures of `rgba32uint` texels that each hold 8 consecutive f16
    /// values along k, unpacked in the kernel (`unpack2x16float`): half the texel loads of
    /// `rgba16float` per k. So f16 only, and both operands k-contiguous: B is staged as Bᵀ
    /// ([n, k]) whichever way it is stored, as weights are repacked at load time.
    PackedHalves,
}

impl Operands {
    fn textured(self) -> bool {
        self != Operands::Buffers
    }

    /// Elements of k per texel: the k-step of the textured kernels and the padding of k.
    fn k_per_texel(self) -> u32 {
        if self == Operands::PackedHalves {
            8
        } else {
            4
        }
    }

    /// How the kernel binds an operand texture.
    fn binding_usage(self) -> wgpu::TextureUsages {
        match self {
            Operands::StorageTextures | Operands::StorageTexturesBt | Operands::PackedHalves => {
                wgpu::TextureUsages::STORAGE_BINDING
            }
            _ => wgpu::TextureUsages::TEXTURE_BINDING,
        }
    }

    /// Why these operands cannot serve `dtype`; `None` when they can.
    fn unsupported(self, dtype: DType) -> Option<String> {
        match (self, dtype) {
            (Operands::PackedHalves, DType::F32) => {
                Some("packs 8 halves per texel, so is for f16 only".to_string())
            }
            (Operands::StorageTexturesBt, DType::F16) => Some(
                "f32 only: in f16 the packed-halves tiles (subgroup_stexh) stage B as Bᵀ".into(),
            ),
            _ => None,
        }
    }

    /// The shape as the kernel sees it: packed halves stage B transposed, k-contiguous.
    fn staged(self, shape: &MatmulShape) -> MatmulShape {
        if matches!(self, Operands::PackedHalves | Operands::StorageTexturesBt) {
            shape.transposed_b()
        } else {
            *shape
        }
    }
}

impl MatmulVariant {
    /// Every variant the suite tries, in the order they are reported.
    pub fn all() -> Vec<MatmulVariant> {
        use MatmulVariant::{Naive, Reg, Subgroup, Texture, Tiled};
        vec![
            Naive,
            Tiled {
                bm: 64,
                bn: 64,
                bk: 16,
                tm: 4,
                tn4: 1,
            },
            Tiled {
                bm: 128,
                bn: 128,
                bk: 8,
                tm: 8,
                tn4: 2,
            },
            // Half the barriers per FLOP of bk 8, at the 16 KiB default workgroup memory: on
            // the H200, bk 8 reached 49.6% of the FP32 spec at 4096 (33.2 TFLOP/s).
            Tiled {
                bm: 128,
                bn: 128,
                bk: 16,
                tm: 8,
                tn4: 2,
            },
            Reg {
                wx: 8,
                wy: 8,
                tm: 4,
                tn4: 1,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 2,
                tn4: 1,
                operands: Operands::Buffers,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 2,
                tn4: 1,
                operands: Operands::Textures,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 1,
                tn4: 2,
                operands: Operands::StorageTextures,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 2,
                tn4: 1,
                operands: Operands::StorageTextures,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 1,
                tn4: 3,
                operands: Operands::StorageTextures,
            },
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 1,
                tn4: 1,
                operands: Operands::StorageTextures,
            },
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 1,
                tn4: 2,
                operands: Operands::StorageTextures,
            },
            // 32 accumulator vec4s per lane: more spilled than t8x8, but each loaded texel
            // serves twice the rows. Timed in turns with the others (examples/alternate.rs)
            // it ran 1.19-1.29x the best earlier tile at gpt2's m = 64 prefill shapes (f16),
            // and 1.0x (host slow) to 1.2x (host fast) x8_t16x4 at 1024^3 f32.
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 2,
                tn4: 2,
                operands: Operands::StorageTextures,
            },
            // Taller still, 48 and 64 accumulator vec4s: with one add into each per k-step
            // (see `subgroup_step`) spills cost less, and more rows per loaded B texel paid.
            // In turns with x2_t16x8 (f32, lavapipe, 2-core Intel Xeon): t24x8 1.10-1.27x at
            // 1024³, 1.19-1.33x at 2048³, 1.03-1.04x at 1024³ with Bᵀ; t32x8 1.13x, 1.31x, 1.06x.
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 3,
                tn4: 2,
                operands: Operands::StorageTextures,
            },
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 4,
                tn4: 2,
                operands: Operands::StorageTextures,
            },
            // The two tallest again, from Bᵀ (see `Operands::StorageTexturesBt`).
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 3,
                tn4: 2,
                operands: Operands::StorageTexturesBt,
            },
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 4,
                tn4: 2,
                operands: Operands::StorageTexturesBt,
            },
            // Three of the tiles above, reading 8 halves per texel (f16 only): x2_t8x8 and
            // x2_t16x8, which the searches chose for the models' products, and x8_t16x4,
            // chosen at 1024³. Timed in turns against the same tiles from rgba16float, the
            // faster packed tile ran 1.04-1.28x the faster unpacked one at gpt2's and
            // llama-3.2-1b's prefill shapes (m = 64, 16) and at 1024³.
            Subgroup {
                s: 8,
                nsg: 8,
                ra: 2,
                tn4: 1,
                operands: Operands::PackedHalves,
            },
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 1,
                tn4: 2,
                operands: Operands::PackedHalves,
            },
            Subgroup {
                s: 8,
                nsg: 2,
                ra: 2,
                tn4: 2,
                operands: Operands::PackedHalves,
            },
            Texture {
                wx: 8,
                wy: 8,
                tm: 8,
                tn4: 2,
            },
            // Several blocks per workgroup amortise lavapipe's fixed cost per workgroup.
            // Four-row blocks share each A load between rows (eight unrolled rows were no
            // faster, sixteen spilled); one-row blocks read B in address order, which won
            // on most m = 1 shapes, while m = 4 and some k >= 2048 shapes chose 4 x 4.
            MatmulVariant::Gemv(GemvTile { tr: 4, rb: 4 }),
            MatmulVariant::Gemv(GemvTile { tr: 1, rb: 16 }),
            // Timed in turns with the gemv_ubo pair at gpt2's and llama-3.2-1b's decode
            // shapes: 1.24-1.95x the faster of the two in f16, 1.35-2.25x in f32.
            MatmulVariant::GemvTexture(GemvTexTile { tn: 2, nsg: 4 }),
            MatmulVariant::GemvTexture(GemvTexTile { tn: 4, nsg: 4 }),
            // The GPU decode design: one B row per 128 lanes suits long rows (llama's k of
            // 4096 and 14336), two rows per 64 lanes gpt2's k of 768 (96 loads of 8 halves a
            // row). Left out of searches on llvmpipe, with the other storage-load kernels.
            MatmulVariant::GemvCoop(GemvCoopTile { r: 1, wg: 128 }),
            MatmulVariant::GemvCoop(GemvCoopTile { r: 2, wg: 64 }),
        ]
    }

    /// Whether the inner loop reads A or B from storage buffers at per-lane addresses: the
    /// GPU designs. Lavapipe compiles each such load to a scalar loop over the SIMD lanes
    /// (see [`Operands`]), so these ran 4-85x behind the texture-fed kernels on every
    /// quick-suite shape there.
    pub fn loads_storage_per_lane(&self) -> bool {
        match *self {
            MatmulVariant::Naive
            | MatmulVariant::Reg { .. }
            | MatmulVariant::Tiled { .. }
            | MatmulVariant::GemvCoop(_) => true,
            MatmulVariant::Subgroup { operands, .. } => operands == Operands::Buffers,
            MatmulVariant::Texture { .. }
            | MatmulVariant::Gemv(_)
            | MatmulVariant::GemvTexture(_) => false,
        }
    }

    /// The variant (or family, by name prefix) that ran faster than this one on lavapipe
    /// on every quick-suite shape in every recorded run; `None` for most. Two are the
    /// sampled-texture designs, which storage textures beat on llvmpipe (see [`Operands`]):
    /// - `subgroup_tex8_x8_t16x4` screened 1.24-3.4x behind the chosen variant (fresh
    ///   quick run, Mesa 22.3.6), 1.3-1.6x behind the same tile from storage textures (in
    ///   f16 it gives way to that tile packed, `subgroup_stexh8_x8_t16x4`);
    /// - `texture_w8x8_t8x8` screened 1.6-2.3x behind.
    ///
    /// The uniform-window decode matmuls (`gemv_ubo_*`) ran behind `gemv_stex_t2_x4` on
    /// every decode shape of the quick suite's models, f16 and f32, m = 1 and 4, timed in
    /// turns (1.24-1.95x in f16, 1.3-2.3x in f32), and the quick run's search chose
    /// `gemv_stex` for all nine; each gemv_ubo kernel is compiled per shape (1-2.3 s).
    ///
    /// In f16 the rgba16float `subgroup_stex` tiles give way to the packed-halves ones
    /// (`subgroup_stexh`): timed in turns, the faster packed tile ran 1.04-1.28x the faster
    /// unpacked one at each of gpt2's and llama-3.2-1b's seven prefill products and at
    /// 1024³ with row-major B.
    ///
    /// At m = 1, where `gemv_stex` applies (B stored [n, k], batch 1), the GEMM tiles give way
    /// to it: they screened 4-22x behind it at every decode shape of the quick suite (a tile
    /// of 8 or 16 rows computes one, and reads B as the gemv does).
    pub fn superseded_on_llvmpipe(
        &self,
        shape: &MatmulShape,
        dtype: DType,
    ) -> Option<&'static str> {
        let gemm_tile = matches!(
            self,
            MatmulVariant::Subgroup { .. } | MatmulVariant::Texture { .. }
        );
        if gemm_tile && shape.m == 1 && gemv_texture::layout(shape, dtype, u32::MAX).is_ok() {
            return Some("gemv_stex");
        }
        match *self {
            MatmulVariant::Subgroup {
                operands: Operands::Textures,
                ..
            } => Some(if dtype == DType::F16 {
                "subgroup_stexh8_x8_t16x4"
            } else {
                "subgroup_stex8_x8_t16x4"
            }),
            MatmulVariant::Subgroup {
                operands: Operands::StorageTextures,
                ..
            } if dtype == DType::F16 => Some("subgroup_stexh"),
            MatmulVariant::Texture { .. } => Some("subgroup_stex"),
            MatmulVariant::Gemv(_) => Some("gemv_stex"),
            _ => None,
        }
    }

    /// Whether llvmpipe's search leaves this variant out in `dtype` (at every shape) because
    /// it trailed on every shape measured there ([`crate::tuning::LeftOut::Trailing`]): the f32
    /// storage-texture tiles `subgroup_stex8_x8_t8x12` and `subgroup_stex8_x8_t8x4`. Over 40
    /// recorded llvmpipe runs (quick and standard suites, Mesa 22.3.6, 2-core Intel Xeon),
    /// 138 f32 matmul benchmarks from 64³ to 2048³, neither was ever chosen nor came within
    /// 1.08x of the fastest variant (t8x12 1.10-1.31x at best per shape, t8x4 1.09-1.54x),
    /// while each cost a compile per texture layout and a screen per benchmark. No single
    /// sibling beat them every time (the x2 tiles did at most shapes, `x8_t8x8` on most),
    /// so this is not [`MatmulVariant::superseded_on_llvmpipe`].
    pub fn trails_on_llvmpipe(&self, dtype: DType) -> bool {
        matches!(
            *self,
            MatmulVariant::Subgroup {
                s: 8,
                nsg: 8,
                ra: 1,
                tn4: 1 | 3,
                operands: Operands::StorageTextures,
            }
        ) && dtype == DType::F32
    }

    /// The `variant` column: kernel family and tile parameters.
    pub fn name(&self) -> String {
        match *self {
            MatmulVariant::Naive => "naive".into(),
            MatmulVariant::Reg { wx, wy, tm, tn4 } => format!("reg_w{wx}x{wy}_t{tm}x{}", 4 * tn4),
            MatmulVariant::Tiled {
                bm,
                bn,
                bk,
                tm,
                tn4,
            } => {
                format!("tiled_{bm}x{bn}x{bk}_t{tm}x{}", 4 * tn4)
            }
            MatmulVariant::Subgroup {
                s,
                nsg,
                ra,
                tn4,
                operands,
            } => {
                let family = match operands {
                    Operands::Buffers => "subgroup",
                    Operands::Textures => "subgroup_tex",
                    Operands::StorageTextures => "subgroup_stex",
                    Operands::StorageTexturesBt => "subgroup_stexbt",
                    Operands::PackedHalves => "subgroup_stexh",
                };
                format!("{family}{s}_x{nsg}_t{}x{}", s * ra, 4 * tn4)
            }
            MatmulVariant::Texture { wx, wy, tm, tn4 } => {
                format!("texture_w{wx}x{wy}_t{tm}x{}", 4 * tn4)
            }
            MatmulVariant::Gemv(GemvTile { tr, rb }) => format!("gemv_ubo_r{tr}_b{rb}"),
            MatmulVariant::GemvTexture(GemvTexTile { tn, nsg }) => {
                format!("gemv_stex_t{tn}_x{nsg}")
            }
            MatmulVariant::GemvCoop(GemvCoopTile { r, wg }) => format!("gemv_coop_r{r}_w{wg}"),
        }
    }

    /// How the operands are bound, for the variants that read them from textures.
    fn texture_operands(&self) -> Option<Operands> {
        match *self {
            MatmulVariant::Texture { .. } => Some(Operands::Textures),
            MatmulVariant::Subgroup { operands, .. } if operands.textured() => Some(operands),
            _ => None,
        }
    }

    /// Invocations per workgroup.
    pub fn invocations(&self) -> u32 {
        match *self {
            MatmulVariant::Naive => 256,
            MatmulVariant::Reg { wx, wy, .. } => wx * wy,
            MatmulVariant::Tiled {
                bm, bn, tm, tn4, ..
            } => (bn / (4 * tn4)) * (bm / tm),
            MatmulVariant::Subgroup { s, nsg, .. } => s * nsg,
            MatmulVariant::Texture { wx, wy, .. } => wx * wy,
            MatmulVariant::Gemv(_) => 8,
            MatmulVariant::GemvTexture(tile) => tile.invocations(),
            MatmulVariant::GemvCoop(tile) => tile.wg,
        }
    }

    /// Workgroup memory in bytes.
    pub fn workgroup_bytes(&self) -> u32 {
        match *self {
            MatmulVariant::Tiled { bm, bn, bk, .. } => (bm + bn) * bk * 4,
            // At the most rows of A it takes (the prepare checks the shape's own).
            MatmulVariant::GemvCoop(tile) => tile.workgroup_bytes(gemv_texture::MAX_M),
            _ => 0,
        }
    }

    /// Workgroup counts for `shape`; for `Gemv`, per dispatch with one 64 KiB window (the
    /// adapter's limits decide the real split, in [`super::gemv::prepare`]).
    pub fn workgroups(&self, shape: &MatmulShape) -> [u32; 3] {
        let (rows, cols) = match *self {
            MatmulVariant::GemvTexture(tile) => return tile.workgroups(shape),
            MatmulVariant::GemvCoop(tile) => return tile.workgroups(shape),
            MatmulVariant::Gemv(tile) => {
                let per_window = gemv::plan(shape, DType::F32, tile, 1 << 16, 256)
                    .map_or(1, |p| p.workgroups_per_window());
                return [per_window, 1, 1];
            }
            MatmulVariant::Naive => (16, 16),
            MatmulVariant::Reg { wx, wy, tm, tn4 } | MatmulVariant::Texture { wx, wy, tm, tn4 } => {
                (wy * tm, wx * 4 * tn4)
            }
            MatmulVariant::Tiled { bm, bn, .. } => (bm, bn),
            MatmulVariant::Subgroup {
                s, nsg, ra, tn4, ..
            } => (nsg * s * ra, s * 4 * tn4),
        };
        [shape.n.div_ceil(cols), shape.m.div_ceil(rows), shape.batch]
    }

    /// The WGSL source for `shape` and `dtype`; texture-fed variants lay their operands out
    /// for textures of at most `max_texture` texels a side (`texture_layouts`).
    pub fn source(&self, shape: &MatmulShape, dtype: DType, max_texture: u32) -> String {
        match *self {
            MatmulVariant::Naive => {
                let b_index = if shape.transpose_b {
                    "b0 + col * p.k + i"
                } else {
                    "b0 + i * p.n + col"
                };
                render(
                    NAIVE,
                    &[
                        ("ENABLE_F16", enable_line(dtype)),
                        ("ELEM", dtype.wgsl().into()),
                        ("B_INDEX", b_index.into()),
                    ],
                )
            }
            MatmulVariant::Reg { wx, wy, tm, tn4 } => {
                let body = reg_body(wx, wy, tm, tn4, shape.transpose_b);
                format!("{}\n{body}", common(shape, dtype))
            }
            MatmulVariant::Tiled {
                bm,
                bn,
                bk,
                tm,
                tn4,
            } => {
                let (tx, ty) = (bn / (4 * tn4), bm / tm);
                let body = render(
                    TILED,
                    &[
                        ("BM", bm.to_string()),
                        ("BN", bn.to_string()),
                        ("BK", bk.to_string()),
                        ("AS_LEN", (bk * bm / 4).to_string()),
                        ("BS_LEN", (bk * bn / 4).to_string()),
                        ("TX", tx.to_string()),
                        ("TY", ty.to_string()),
                        ("DECLARE", declare_block(tm, tn4, "        ")),
                        (
                            "LOAD_TILES",
                            tiled_loads(bm, bn, bk, tx * ty, shape.transpose_b),
                        ),
                        ("INNER", tiled_inner(bm, bn, bk, tm, tn4, tx)),
                        ("STORE", tiled_store(tm, tn4, tx)),
                    ],
                );
                format!("{}\n{body}", common(shape, dtype))
            }
            MatmulVariant::Texture { wx, wy, tm, tn4 } => {
                match texture_layouts(shape, max_texture, Operands::Textures) {
                    Ok(layouts) => {
                        let body = reg_body(wx, wy, tm, tn4, shape.transpose_b);
                        let access = texture_common(shape, dtype, Operands::Textures, &layouts);
                        format!("{access}\n{body}")
                    }
                    Err(why) => format!("// no texture layout for {shape}: {why:?}\n"),
                }
            }
            // With one 64 KiB window per dispatch; prepare renders it for the adapter.
            MatmulVariant::GemvTexture(tile) => {
                match gemv_texture::layout(shape, dtype, max_texture) {
                    Ok(layout) => gemv_texture::source(shape, dtype, tile, &layout),
                    Err(why) => format!("// gemv_stex does not apply to {shape}: {why:?}\n"),
                }
            }
            MatmulVariant::GemvCoop(tile) => match gemv_coop::refusal(shape, dtype, tile) {
                None => gemv_coop::source(shape, dtype, tile),
                Some(why) => format!("// gemv_coop does not apply to {shape}: {why}\n"),
            },
            MatmulVariant::Gemv(tile) => match gemv::plan(shape, dtype, tile, 1 << 16, 256) {
                Ok(plan) => gemv::source(shape, dtype, &plan, 1),
                Err(why) => format!("// gemv_ubo does not apply to {shape}: {why}\n"),
            },
            MatmulVariant::Subgroup {
                s,
                nsg,
                ra,
                tn4,
                operands,
            } => {
                if let Some(why) = operands.unsupported(dtype) {
                    return format!("// {why}\n");
                }
                let shape = &operands.staged(shape);
                let body = render(
                    SUBGROUP,
                    &[
                        ("WG", (s * nsg).to_string()),
                        ("NSG", nsg.to_string()),
                        ("R", (s * ra).to_string()),
                        ("BN", (s * 4 * tn4).to_string()),
                        ("DECLARE", declare_block(s * ra, tn4, "")),
                        ("KSTEP", operands.k_per_texel().to_string()),
                        (
                            "STEP",
                            subgroup_step(
                                s,
                                ra,
                                tn4,
                                shape.transpose_b,
                                operands == Operands::PackedHalves,
                            ),
                        ),
                        ("STORE", subgroup_store(s, ra, tn4)),
                    ],
                );
                let access = if operands.textured() {
                    match texture_layouts(shape, max_texture, operands) {
                        Ok(layouts) => texture_common(shape, dtype, operands, &layouts),
                        Err(why) => return format!("// no texture layout for {shape}: {why:?}\n"),
                    }
                } else {
                    common(shape, dtype)
                };
                format!("{access}\n{body}")
            }
        }
    }

    /// Build the program for `shape`: check limits, compile, upload `inputs`.
    pub fn prepare(
        &self,
        gpu: &Gpu,
        shape: &MatmulShape,
        dtype: DType,
        inputs: &MatmulInputs,
    ) -> Result<Program, PrepareError> {
        if dtype == DType::F16 && !gpu.has_f16() {
            return Err(PrepareError::Unsupported("adapter lacks SHADER_F16".into()));
        }
        let label = format!("matmul {} {shape} {dtype}", self.name());
        if let MatmulVariant::Gemv(tile) = *self {
            return gemv::prepare(gpu, shape, dtype, &inputs.a, &inputs.b, tile, &label);
        }
        if let MatmulVariant::GemvTexture(tile) = *self {
            return gemv_texture::prepare(gpu, shape, dtype, &inputs.a, &inputs.b, tile, &label);
        }
        if let MatmulVariant::GemvCoop(tile) = *self {
            return gemv_coop::prepare(gpu, shape, dtype, &inputs.a, &inputs.b, tile, &label);
        }
        let s = &gpu.summary;
        if let MatmulVariant::Subgroup { s: size, .. } = *self {
            if !s.subgroups || s.subgroup_min_size != size || s.subgroup_max_size != size {
                return Err(PrepareError::Unsupported(format!(
                    "needs subgroups of exactly {size} lanes; the adapter has {}",
                    if s.subgroups {
                        format!("{}..{}", s.subgroup_min_size, s.subgroup_max_size)
                    } else {
                        "none".into()
                    }
                )));
            }
        }
        check_workgroup(gpu, self.invocations(), self.workgroup_bytes(), "")?;
        check_buffer(gpu, "A", shape.a_len() * dtype.size())?;
        if self.texture_operands().is_none() {
            // The texture-fed variants stage B into a texture, not a storage binding.
            check_buffer(gpu, "B", shape.b_len() * dtype.size())?;
        }
        check_buffer(gpu, "C", shape.c_len() * dtype.size())?;
        let workgroups = self.workgroups(shape);
        check_workgroups(gpu, workgroups)?;

        if let Some(operands) = self.texture_operands() {
            if let Some(why) = operands.unsupported(dtype) {
                return Err(PrepareError::Unsupported(why));
            }
            return self.prepare_textured(gpu, shape, dtype, inputs, &label, operands);
        }
        let max_texture = gpu.limits().max_texture_dimension_2d;
        let pipeline = compile(gpu, &label, &self.source(shape, dtype, max_texture), "main")?;
        let params: [u32; 4] = [shape.m, shape.n, shape.k, shape.batch];
        let uniforms = uniform_buffer(gpu, "matmul params", bytemuck::bytes_of(&params));
        let a = storage_buffer(gpu, "A", inputs.a.bytes(), false);
        // Copies of B, the weights, for the timing to cycle through (see `weights`).
        let bs = weights::buffers(gpu, "B", inputs.b.bytes(), 4, wgpu::BufferUsages::STORAGE);
        let c = output_buffer(gpu, "C", dtype, shape.c_len());
        let bind_groups = bs
            .iter()
            .map(|b| bind(gpu, &pipeline, &[&uniforms, &a, b, &c]))
            .collect();
        let mut keep = vec![uniforms, a];
        keep.extend(bs);
        Ok(Program::single(
            Dispatch::cycling(pipeline, bind_groups, workgroups),
            c,
            dtype,
            shape.c_len(),
            keep,
        ))
    }
}

impl MatmulVariant {
    /// The texture variant's program: operands staged into zero-padded textures (outside
    /// the timed region, like a BLAS packing step), C in a storage buffer.
    fn prepare_textured(
        &self,
        gpu: &Gpu,
        shape: &MatmulShape,
        dtype: DType,
        inputs: &MatmulInputs,
        label: &str,
        operands: Operands,
    ) -> Result<Program, PrepareError> {
        // Checked against the adapter's limits by `prepare`.
        let workgroups = self.workgroups(shape);
        let kt = operands.k_per_texel();
        let (kp, np) = (shape.k.next_multiple_of(kt), shape.n.next_multiple_of(4));
        let max_texture = gpu.limits().max_texture_dimension_2d;
        let staged = operands.staged(shape);
        let layouts = texture_layouts(&staged, max_texture, operands)?;
        if (layouts.a.folded() || layouts.b.folded()) && gemv::applies(gpu, shape, dtype) {
            return Err(PrepareError::Unsupported(format!(
                "an operand is taller than the adapter's max texture dimension {max_texture}, and this product is left to gemv_ubo, which streams it far faster (at m <= {} the GEMM tiles are mostly padding)",
                gemv::GEMV_MAX_M
            )));
        }
        // A is written by the pack dispatch inside the timed program.
        let a = layouts.a.texture(
            gpu,
            "A",
            texture_format(dtype, operands),
            operands.binding_usage() | wgpu::TextureUsages::STORAGE_BINDING,
        );
        let b_bytes = if shape.transpose_b {
            pad_matrix(&inputs.b, shape.batch, shape.n, shape.k, shape.n, kp)
        } else if staged.transpose_b {
            let bt = transpose(&inputs.b, shape.batch, shape.k, shape.n);
            pad_matrix(&bt, shape.batch, shape.n, shape.k, shape.n, kp)
        } else {
            pad_matrix(&inputs.b, shape.batch, shape.k, shape.n, kp, np)
        };
        // Each block is one upload, staged by wgpu in a buffer of its size.
        let (width, rows) = layouts.b.block();
        let block_bytes = u64::from(width) * u64::from(rows) * u64::from(kt) * dtype.size();
        if block_bytes > gpu.summary.max_buffer_bytes {
            return Err(PrepareError::Unsupported(format!(
                "B's texture takes uploads of {block_bytes} bytes, over the adapter's max buffer size of {} bytes",
                gpu.summary.max_buffer_bytes
            )));
        }
        // Copies of B, the weights, for the timing to cycle through (see `weights`).
        let b_views: Vec<wgpu::TextureView> = weights::textures(
            gpu,
            &layouts.b,
            "B",
            texture_format(dtype, operands),
            operands.binding_usage(),
            &b_bytes,
            kt * dtype.size() as u32,
        )
        .iter()
        .map(|b| b.create_view(&Default::default()))
        .collect();
        let pipeline = compile(gpu, label, &self.source(shape, dtype, max_texture), "main")?;
        let params: [u32; 8] = [shape.m, shape.n, shape.k, shape.batch, kp, np, 0, 0];
        let uniforms = uniform_buffer(gpu, "matmul params", bytemuck::bytes_of(&params));
        let c = output_buffer(gpu, "C", dtype, shape.c_len());
        let a_view = a.create_view(&Default::default());
        let pack_pipeline = compile(
            gpu,
            &format!("{label} pack A"),
            &pack_source(shape, dtype, operands, &layouts),
            "main",
        )?;
        let pack_groups = [kp.div_ceil(kt * 64), shape.batch * shape.m, 1];
        check_workgroups(gpu, pack_groups)?;
        let a_buffer = storage_buffer(gpu, "A", inputs.a.bytes(), false);
        let pack_bind_group = bind_resources(
            gpu,
            &pack_pipeline,
            Some("pack A"),
            vec![
                uniforms.as_entire_binding(),
                a_buffer.as_entire_binding(),
                wgpu::BindingResource::TextureView(&a_view),
            ],
        );
        let pack = Dispatch::new(pack_pipeline, pack_bind_group, pack_groups);
        let bind_groups = b_views
            .iter()
            .map(|b_view| {
                let resources = vec![
                    uniforms.as_entire_binding(),
                    wgpu::BindingResource::TextureView(&a_view),
                    wgpu::BindingResource::TextureView(b_view),
                    c.as_entire_binding(),
                ];
                bind_resources(gpu, &pipeline, Some(label), resources)
            })
            .collect();
        let main = Dispatch::cycling(pipeline, bind_groups, workgroups);
        Ok(Program::new(
            vec![pack, main],
            c,
            dtype,
            shape.c_len(),
            vec![uniforms, a_buffer],
        ))
    }
}

/// Inputs of one matmul, in the storage type.
pub struct MatmulInputs {
    pub a: HostTensor,
    pub b: HostTensor,
}

impl MatmulInputs {
    /// Uniform values in [-1, 1) from a seeded generator.
    pub fn random(shape: &MatmulShape, dtype: DType, seed: u64) -> Self {
        let mut rng = crate::verify::Rng::new(seed);
        MatmulInputs {
            a: HostTensor::uniform(dtype, shape.a_len(), &mut rng),
            b: HostTensor::uniform(dtype, shape.b_len(), &mut rng),
        }
    }

    /// All zeros, for programs that are only compiled ([`HostTensor::zeros`]).
    pub fn zeros(shape: &MatmulShape, dtype: DType) -> Self {
        MatmulInputs {
            a: HostTensor::zeros(dtype, shape.a_len()),
            b: HostTensor::zeros(dtype, shape.b_len()),
        }
    }

    /// Multiples of 1/8 in [-2, 2]: every product and partial sum is exact in f32 while
    /// k·4 < 2^21, so any mismatch is an indexing bug, not rounding.
    pub fn exact(shape: &MatmulShape, dtype: DType, seed: u64) -> Self {
        let mut rng = crate::verify::Rng::new(seed);
        let mut gen = || (rng.below(33) as f32 - 16.0) / 8.0;
        MatmulInputs {
            a: HostTensor::generate(dtype, shape.a_len(), &mut gen),
            b: HostTensor::generate(dtype, shape.b_len(), &mut gen),
        }
    }
}

/// The barrier-free register-tile kernel body; the operand access is prepended separately.
fn reg_body(wx: u32, wy: u32, tm: u32, tn4: u32, transpose_b: bool) -> String {
    render(
        REGBLOCK,
        &[
            ("WX", wx.to_string()),
            ("WY", wy.to_string()),
            ("TM", tm.to_string()),
            ("TN", (4 * tn4).to_string()),
            ("DECLARE", declare_block(tm, tn4, "        ")),
            ("STEP", reg_step(tm, tn4, transpose_b)),
            ("STORE", reg_store(tm, tn4)),
        ],
    )
}

/// How C is bound and stored: vec4 stores when n % 4 == 0, else guarded scalar stores.
fn store_c_body(n_aligned: bool) -> (&'static str, String) {
    if n_aligned {
        return ("vec4<E>", "    c[base >> 2u] = vec4<E>(v);".into());
    }
    let mut store = String::from("    c[base] = E(v.x);\n");
    for (i, lane) in ["y", "z", "w"].iter().enumerate() {
        let i = i + 1;
        let _ = writeln!(
            store,
            "    if (col + {i}u < p.n) {{\n        c[base + {i}u] = E(v.{lane});\n    }}"
        );
    }
    ("E", store.trim_end().to_string())
}

/// The layouts of a texture-fed matmul's A and B textures.
#[derive(Debug, Clone, Copy)]
struct TextureLayouts {
    a: TexelLayout,
    b: TexelLayout,
}

/// A and B of `shape` as textures of at most `max` texels a side (layout in
/// matmul_texture_common.wgsl), folded where an operand is taller than that; a texel holds
/// `operands.k_per_texel()` elements along k (B row-major: 4 along n).
fn texture_layouts(
    shape: &MatmulShape,
    max: u32,
    operands: Operands,
) -> Result<TextureLayouts, PrepareError> {
    let kt = operands.k_per_texel();
    let (kp, np) = (shape.k.next_multiple_of(kt), shape.n.next_multiple_of(4));
    let rows = |what: &str, per_batch: u32| {
        shape.batch.checked_mul(per_batch).ok_or_else(|| {
            PrepareError::Unsupported(format!(
                "{what} has {} x {per_batch} rows, more than a u32 texel coordinate can address",
                shape.batch
            ))
        })
    };
    let b = if shape.transpose_b {
        TexelLayout::new("B", kp / kt, rows("B", shape.n)?, max)?
    } else {
        TexelLayout::new("B", np / 4, rows("B", kp)?, max)?
    };
    Ok(TextureLayouts {
        a: TexelLayout::new("A", kp / kt, rows("A", shape.m)?, max)?,
        b,
    })
}

/// The texture operand access (see matmul_texture_common.wgsl).
fn texture_common(
    shape: &MatmulShape,
    dtype: DType,
    operands: Operands,
    layouts: &TextureLayouts,
) -> String {
    let (tex_type, level) = match operands {
        Operands::StorageTextures | Operands::StorageTexturesBt | Operands::PackedHalves => (
            format!(
                "texture_storage_2d<{}, read>",
                texture_format_name(dtype, operands)
            ),
            "",
        ),
        _ => ("texture_2d<f32>".to_string(), ", 0"),
    };
    // A texel of packed halves is 8 along k, unpacked into a mat2x4 (k .. k+4, k+4 .. k+8).
    let (operand, shift, unpack) = if operands == Operands::PackedHalves {
        ("mat2x4<f32>", 3, "unpack8")
    } else {
        ("vec4<f32>", 2, "")
    };
    let load_a =
        format!("    return {unpack}(textureLoad(a_tex, a_texel(k >> {shift}u, batch * p.m + row){level}));");
    let load_b = if shape.transpose_b {
        format!("    return {unpack}(textureLoad(b_tex, b_texel(k >> {shift}u, batch * p.n + min(col, p.n - 1u)){level}));")
    } else {
        format!("    return textureLoad(b_tex, b_texel(min(col, p.np - 4u) >> 2u, batch * p.kp + k){level});")
    };
    let texels = format!(
        "{}\n{}",
        layouts.a.wgsl("a_texel"),
        layouts.b.wgsl("b_texel")
    );
    let (array, store) = store_c_body(shape.n.is_multiple_of(4));
    render(
        TEXTURE_COMMON,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("ARRAY", array.into()),
            ("TEX_TYPE", tex_type),
            ("TEXELS", texels),
            ("OPERAND", operand.into()),
            ("LOAD_A", load_a),
            ("LOAD_B", load_b),
            ("STORE_C", store),
        ],
    )
}

/// The texel format of an operand texture: four elements of the storage type, or eight
/// halves as raw bits.
fn texture_format(dtype: DType, operands: Operands) -> wgpu::TextureFormat {
    match (operands, dtype) {
        (Operands::PackedHalves, _) => wgpu::TextureFormat::Rgba32Uint,
        (_, DType::F32) => wgpu::TextureFormat::Rgba32Float,
        (_, DType::F16) => wgpu::TextureFormat::Rgba16Float,
    }
}

/// [`texture_format`] as WGSL spells it.
fn texture_format_name(dtype: DType, operands: Operands) -> &'static str {
    match (operands, dtype) {
        (Operands::PackedHalves, _) => "rgba32uint",
        (_, DType::F32) => "rgba32float",
        (_, DType::F16) => "rgba16float",
    }
}

/// The WGSL of the dispatch that packs A into its texture (matmul_pack.wgsl).
fn pack_source(
    shape: &MatmulShape,
    dtype: DType,
    operands: Operands,
    layouts: &TextureLayouts,
) -> String {
    let (array, load) = pack_load(shape, operands);
    render(
        PACK,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("FORMAT", texture_format_name(dtype, operands).into()),
            ("KT", operands.k_per_texel().to_string()),
            ("ARRAY", array.into()),
            ("LOAD", load.into()),
            ("A_TEXEL", layouts.a.wgsl("a_texel")),
        ],
    )
}

/// The pack dispatch's A binding type and the WGSL that loads `v`, the texel at `base`
/// (k0 = its first k; zero past k): 16-byte loads when k is a multiple of the texel's
/// elements, else one element at a time.
fn pack_load(shape: &MatmulShape, operands: Operands) -> (&'static str, &'static str) {
    match (operands, shape.k.is_multiple_of(operands.k_per_texel())) {
        // The halves' bits as they are.
        (Operands::PackedHalves, true) => ("vec4<u32>", "    let v = a[base >> 3u];"),
        (Operands::PackedHalves, false) => (
            "E",
            "    var h = array<f32, 8>();\n    for (var i = 0u; i < 8u; i++) {\n        if (k0 + i < p.k) {\n            h[i] = f32(a[base + i]);\n        }\n    }\n    var v = vec4<u32>(0u);\n    for (var i = 0u; i < 4u; i++) {\n        v[i] = pack2x16float(vec2<f32>(h[2u * i], h[2u * i + 1u]));\n    }",
        ),
        (_, true) => ("vec4<E>", "    let v = vec4<f32>(a[base >> 2u]);"),
        (_, false) => (
            "E",
            "    var v = vec4<f32>(0.0);\n    for (var i = 0u; i < 4u; i++) {\n        if (k0 + i < p.k) {\n            v[i] = f32(a[base + i]);\n        }\n    }",
        ),
    }
}

/// The [batch, cols, rows] transpose of a row-major [batch, rows, cols] tensor.
fn transpose(t: &HostTensor, batch: u32, rows: u32, cols: u32) -> HostTensor {
    let (batch, rows, cols) = (batch as usize, rows as usize, cols as usize);
    fn flip<T: Copy>(v: &[T], batch: usize, rows: usize, cols: usize) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len());
        for b in 0..batch {
            let m = &v[b * rows * cols..(b + 1) * rows * cols];
            for c in 0..cols {
                out.extend((0..rows).map(|r| m[r * cols + c]));
            }
        }
        out
    }
    match t {
        HostTensor::F32(v) => HostTensor::F32(flip(v, batch, rows, cols)),
        HostTensor::F16(v) => HostTensor::F16(flip(v, batch, rows, cols)),
    }
}

/// Copy a row-major [batch, rows, cols] tensor into a zero-padded [batch, rows_p, cols_p]
/// one, as texture bytes.
fn pad_matrix(
    t: &HostTensor,
    batch: u32,
    rows: u32,
    cols: u32,
    rows_p: u32,
    cols_p: u32,
) -> Vec<u8> {
    let (batch, rows, cols, rows_p, cols_p) = (
        batch as usize,
        rows as usize,
        cols as usize,
        rows_p as usize,
        cols_p as usize,
    );
    let index = |b: usize, r: usize| (b * rows_p + r) * cols_p;
    match t {
        HostTensor::F32(v) => {
            let mut out = vec![0f32; batch * rows_p * cols_p];
            for b in 0..batch {
                for r in 0..rows {
                    let src = (b * rows + r) * cols;
                    out[index(b, r)..index(b, r) + cols].copy_from_slice(&v[src..src + cols]);
                }
            }
            bytemuck::cast_slice(&out).to_vec()
        }
        HostTensor::F16(v) => {
            let mut out = vec![half::f16::ZERO; batch * rows_p * cols_p];
            for b in 0..batch {
                for r in 0..rows {
                    let src = (b * rows + r) * cols;
                    out[index(b, r)..index(b, r) + cols].copy_from_slice(&v[src..src + cols]);
                }
            }
            bytemuck::cast_slice(&out).to_vec()
        }
    }
}

/// Whether the 16-byte vec4 access path applies: k, and for row-major B and C also n, are
/// multiples of 4.
pub fn aligned(shape: &MatmulShape) -> bool {
    shape.k.is_multiple_of(4) && shape.n.is_multiple_of(4)
}

/// The shared declarations with the loaders for this shape's access path.
fn common(shape: &MatmulShape, dtype: DType) -> String {
    let (array, load_a, load_b, store_c) = if aligned(shape) {
        let load_a = "    if (k >= p.k) {\n        return vec4<f32>(0.0);\n    }\n    return vec4<f32>(a[base >> 2u]);";
        let load_b = if shape.transpose_b {
            "    if (k >= p.k) {\n        return vec4<f32>(0.0);\n    }\n    let cc = min(col, p.n - 1u);\n    return vec4<f32>(b[((batch * p.n + cc) * p.k + k) >> 2u]);"
        } else {
            "    if (k >= p.k) {\n        return vec4<f32>(0.0);\n    }\n    let cc = min(col, p.n - 4u);\n    return vec4<f32>(b[((batch * p.k + k) * p.n + cc) >> 2u]);"
        };
        let store = "    c[base >> 2u] = vec4<E>(v);";
        (
            "vec4<E>",
            load_a.to_string(),
            load_b.to_string(),
            store.to_string(),
        )
    } else {
        let mut load_a = String::from("    var v = vec4<f32>(0.0);\n");
        for (i, lane) in ["x", "y", "z", "w"].iter().enumerate() {
            let _ = writeln!(
                load_a,
                "    if (k + {i}u < p.k) {{\n        v.{lane} = f32(a[base + {i}u]);\n    }}"
            );
        }
        load_a.push_str("    return v;");
        let mut load_b = String::from("    var v = vec4<f32>(0.0);\n");
        if shape.transpose_b {
            load_b.push_str("    if (col >= p.n) {\n        return v;\n    }\n    let base = (batch * p.n + col) * p.k + k;\n");
            for (i, lane) in ["x", "y", "z", "w"].iter().enumerate() {
                let _ = writeln!(
                    load_b,
                    "    if (k + {i}u < p.k) {{\n        v.{lane} = f32(b[base + {i}u]);\n    }}"
                );
            }
        } else {
            load_b.push_str("    if (k >= p.k) {\n        return v;\n    }\n    let base = (batch * p.k + k) * p.n + col;\n");
            for (i, lane) in ["x", "y", "z", "w"].iter().enumerate() {
                let _ = writeln!(
                    load_b,
                    "    if (col + {i}u < p.n) {{\n        v.{lane} = f32(b[base + {i}u]);\n    }}"
                );
            }
        }
        load_b.push_str("    return v;");
        let mut store = String::from("    c[base] = E(v.x);\n");
        for (i, lane) in ["y", "z", "w"].iter().enumerate() {
            let i = i + 1;
            let _ = writeln!(
                store,
                "    if (col + {i}u < p.n) {{\n        c[base + {i}u] = E(v.{lane});\n    }}"
            );
        }
        ("E", load_a, load_b, store.trim_end().to_string())
    };
    render(
        COMMON,
        &[
            ("ENABLE_F16", enable_line(dtype)),
            ("ELEM", dtype.wgsl().into()),
            ("ARRAY", array.into()),
            ("LOAD_A", load_a),
            ("LOAD_B", load_b),
            ("STORE_C", store_c),
        ],
    )
}

const LANES: [&str; 4] = ["x", "y", "z", "w"];

/// `acc_r_j` accumulators, all zero.
fn declare_block(tm: u32, tn4: u32, _indent: &str) -> String {
    let mut s = String::new();
    for r in 0..tm {
        for j in 0..tn4 {
            let _ = writeln!(s, "    var acc_{r}_{j} = vec4<f32>(0.0);");
        }
    }
    s
}

/// One k-step of 4 for the barrier-free kernel, fully unrolled.
fn reg_step(tm: u32, tn4: u32, transpose_b: bool) -> String {
    let mut s = String::new();
    let ind = "        ";
    for r in 0..tm {
        let _ = writeln!(
            s,
            "{ind}let a_{r} = load_a(batch, min(row0 + {r}u, last_row), k);"
        );
    }
    for j in 0..tn4 {
        if transpose_b {
            // Rows of Bᵀ are columns of B: acc += a · [bt_0 bt_1 bt_2 bt_3] (vector x matrix).
            for i in 0..4 {
                let _ = writeln!(
                    s,
                    "{ind}let bt_{j}_{i} = load_b(batch, k, col0 + {}u);",
                    4 * j + i
                );
            }
            let _ = writeln!(
                s,
                "{ind}let m_{j} = mat4x4<f32>(bt_{j}_0, bt_{j}_1, bt_{j}_2, bt_{j}_3);"
            );
            for r in 0..tm {
                let _ = writeln!(s, "{ind}acc_{r}_{j} += a_{r} * m_{j};");
            }
        } else {
            for i in 0..4 {
                let _ = writeln!(
                    s,
                    "{ind}let b_{j}_{i} = load_b(batch, k + {i}u, col0 + {}u);",
                    4 * j
                );
            }
            for r in 0..tm {
                for (i, lane) in LANES.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "{ind}acc_{r}_{j} = fma(vec4<f32>(a_{r}.{lane}), b_{j}_{i}, acc_{r}_{j});"
                    );
                }
            }
        }
    }
    s.trim_end().to_string()
}

fn reg_store(tm: u32, tn4: u32) -> String {
    let mut s = String::new();
    for r in 0..tm {
        for j in 0..tn4 {
            let _ = writeln!(
                s,
                "    store_c(batch, row0 + {r}u, col0 + {}u, acc_{r}_{j});",
                4 * j
            );
        }
    }
    s.trim_end().to_string()
}

/// One k-step for the subgroup kernel: own loads, then broadcast rows to every lane. The
/// step is 4 (a loaded texel is a vec4), or 8 with `packed` halves: each texel is a
/// mat2x4 of two k-quarters, and each quarter runs the 4-step's products.
fn subgroup_step(s: u32, ra: u32, tn4: u32, transpose_b: bool, packed: bool) -> String {
    let mut out = String::new();
    let ind = "        ";
    for q in 0..ra {
        let _ = writeln!(
            out,
            "{ind}let av_{q} = load_a(batch, min(row0 + {}u + lane, last_row), k);",
            q * s
        );
    }
    // The k-quarters of a texel: `[0]`, `[1]` of a packed mat2x4, or the vec4 itself.
    let halves: &[&str] = if packed { &["[0]", "[1]"] } else { &[""] };
    for j in 0..tn4 {
        let col = format!("col0 + ({}u + lane) * 4u", j * s);
        if transpose_b {
            for i in 0..4 {
                let _ = writeln!(out, "{ind}let bt_{j}_{i} = load_b(batch, k, {col} + {i}u);");
            }
            for (h, half) in halves.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "{ind}let m_{j}_{h} = mat4x4<f32>(bt_{j}_0{half}, bt_{j}_1{half}, bt_{j}_2{half}, bt_{j}_3{half});"
                );
            }
        } else {
            for i in 0..4 {
                let _ = writeln!(out, "{ind}let b_{j}_{i} = load_b(batch, k + {i}u, {col});");
            }
            let _ = writeln!(
                out,
                "{ind}let m_{j} = mat4x4<f32>(b_{j}_0, b_{j}_1, b_{j}_2, b_{j}_3);"
            );
        }
    }
    for r in 0..s * ra {
        for (h, half) in halves.iter().enumerate() {
            let _ = writeln!(
                out,
                "{ind}let a_{r}_{h} = subgroupBroadcast(av_{}{half}, {}u);",
                r / s,
                r % s
            );
            for j in 0..tn4 {
                // One add into the accumulator per k-step, not one per k: on lavapipe the
                // accumulators are spilled, and a chain of four fma through each of them
                // ran 0.77-0.81x this (in turns, x2_t16x8 f32: 38.3 -> 47.0 GFLOP/s at 1024³,
                // 31.9 -> 41.4 at 2048³). Bᵀ gets the same from its dot products.
                if transpose_b {
                    let _ = writeln!(out, "{ind}acc_{r}_{j} += a_{r}_{h} * m_{j}_{h};");
                } else {
                    let _ = writeln!(out, "{ind}acc_{r}_{j} += m_{j} * a_{r}_{h};");
                }
            }
        }
    }
    out.trim_end().to_string()
}

fn subgroup_store(s: u32, ra: u32, tn4: u32) -> String {
    let mut out = String::new();
    for r in 0..s * ra {
        for j in 0..tn4 {
            let _ = writeln!(
                out,
                "    store_c(batch, row0 + {r}u, col0 + ({}u + lane) * 4u, acc_{r}_{j});",
                j * s
            );
        }
    }
    out.trim_end().to_string()
}

/// Cooperative loads of one k-step's A and B tiles into workgroup memory.
fn tiled_loads(bm: u32, bn: u32, bk: u32, nt: u32, transpose_b: bool) -> String {
    let mut s = String::new();
    let ind = "        ";
    // A: BM x BK as vec4 along k, transposed to k-major on store.
    let a_vecs = bm * bk / 4;
    for t in 0..a_vecs.div_ceil(nt) {
        let guard = (t + 1) * nt > a_vecs;
        let _ = writeln!(s, "{ind}{{");
        let _ = writeln!(s, "{ind}    let idx = li + {}u;", t * nt);
        if guard {
            let _ = writeln!(s, "{ind}    if (idx < {a_vecs}u) {{");
        }
        let _ = writeln!(s, "{ind}    let r = idx / {}u;", bk / 4);
        let _ = writeln!(s, "{ind}    let kq = idx % {}u;", bk / 4);
        let _ = writeln!(
            s,
            "{ind}    let v = load_a(batch, min(row0 + r, last_row), k0 + kq * 4u);"
        );
        for (i, lane) in LANES.iter().enumerate() {
            let _ = writeln!(
                s,
                "{ind}    as_[(kq * 4u + {i}u) * {}u + r / 4u][r % 4u] = v.{lane};",
                bm / 4
            );
        }
        if guard {
            let _ = writeln!(s, "{ind}    }}");
        }
        let _ = writeln!(s, "{ind}}}");
    }
    let b_vecs = bk * bn / 4;
    for t in 0..b_vecs.div_ceil(nt) {
        let guard = (t + 1) * nt > b_vecs;
        let _ = writeln!(s, "{ind}{{");
        let _ = writeln!(s, "{ind}    let idx = li + {}u;", t * nt);
        if guard {
            let _ = writeln!(s, "{ind}    if (idx < {b_vecs}u) {{");
        }
        if transpose_b {
            // Bᵀ rows (B columns) as vec4 along k, scattered to k-major.
            let _ = writeln!(s, "{ind}    let cn = idx / {}u;", bk / 4);
            let _ = writeln!(s, "{ind}    let kq = idx % {}u;", bk / 4);
            let _ = writeln!(
                s,
                "{ind}    let v = load_b(batch, k0 + kq * 4u, col0 + cn);"
            );
            for (i, lane) in LANES.iter().enumerate() {
                let _ = writeln!(
                    s,
                    "{ind}    bs[(kq * 4u + {i}u) * {}u + cn / 4u][cn % 4u] = v.{lane};",
                    bn / 4
                );
            }
        } else {
            let _ = writeln!(s, "{ind}    let kk = idx / {}u;", bn / 4);
            let _ = writeln!(s, "{ind}    let cq = idx % {}u;", bn / 4);
            let _ = writeln!(
                s,
                "{ind}    bs[kk * {}u + cq] = load_b(batch, k0 + kk, col0 + cq * 4u);",
                bn / 4
            );
        }
        if guard {
            let _ = writeln!(s, "{ind}    }}");
        }
        let _ = writeln!(s, "{ind}}}");
    }
    s.trim_end().to_string()
}

/// The unrolled inner product over one k-step from workgroup memory. A thread owns rows
/// ty·TM .. ty·TM+TM and vec4 columns tx, tx + TX, ... (strided so neighbouring threads read
/// neighbouring vec4s).
fn tiled_inner(bm: u32, bn: u32, bk: u32, tm: u32, tn4: u32, tx: u32) -> String {
    let mut s = String::new();
    let ind = "        ";
    for kk in 0..bk {
        let _ = writeln!(s, "{ind}{{");
        for q in 0..tm / 4 {
            let _ = writeln!(
                s,
                "{ind}    let a{q} = as_[{}u + lid.y * {}u + {q}u];",
                kk * bm / 4,
                tm / 4
            );
        }
        for j in 0..tn4 {
            let _ = writeln!(
                s,
                "{ind}    let b{j} = bs[{}u + lid.x + {}u];",
                kk * bn / 4,
                j * tx
            );
        }
        for r in 0..tm {
            for j in 0..tn4 {
                let _ = writeln!(
                    s,
                    "{ind}    acc_{r}_{j} = fma(vec4<f32>(a{}.{}), b{j}, acc_{r}_{j});",
                    r / 4,
                    LANES[(r % 4) as usize]
                );
            }
        }
        let _ = writeln!(s, "{ind}}}");
    }
    s.trim_end().to_string()
}

fn tiled_store(tm: u32, tn4: u32, tx: u32) -> String {
    let mut s = String::new();
    for r in 0..tm {
        for j in 0..tn4 {
            let _ = writeln!(
                s,
                "    store_c(batch, row0 + lid.y * {tm}u + {r}u, col0 + (lid.x + {}u) * 4u, acc_{r}_{j});",
                j * tx
            );
        }
    }
    s.trim_end().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let names: std::collections::BTreeSet<String> =
            MatmulVariant::all().iter().map(|v| v.name()).collect();
        assert_eq!(names.len(), MatmulVariant::all().len());
    }

    #[test]
    fn geometry_covers_the_output() {
        let shape = MatmulShape::new(97, 61, 131).batched(3);
        for v in MatmulVariant::all() {
            let [x, y, z] = v.workgroups(&shape);
            let (rows, cols) = match v {
                MatmulVariant::Naive => (16, 16),
                MatmulVariant::Reg { wx, wy, tm, tn4 }
                | MatmulVariant::Texture { wx, wy, tm, tn4 } => (wy * tm, wx * 4 * tn4),
                MatmulVariant::Tiled { bm, bn, .. } => (bm, bn),
                MatmulVariant::Subgroup {
                    s, nsg, ra, tn4, ..
                } => (nsg * s * ra, s * 4 * tn4),
                // Its geometry follows the windows (gemv.rs tests it).
                MatmulVariant::Gemv(_) => continue,
                // Batch 1 only (gemv_texture.rs and gemv_coop.rs test them).
                MatmulVariant::GemvTexture(_) | MatmulVariant::GemvCoop(_) => continue,
            };
            assert!(x * cols >= 61 && (x - 1) * cols < 61, "{}", v.name());
            assert!(y * rows >= 97 && (y - 1) * rows < 97, "{}", v.name());
            assert_eq!(z, 3);
        }
    }

    #[test]
    fn every_variant_renders_for_every_path() {
        for v in MatmulVariant::all() {
            for shape in [
                MatmulShape::new(64, 64, 64),
                MatmulShape::new(97, 61, 131),
                MatmulShape::new(8, 8, 8).transposed_b(),
                MatmulShape::new(9, 7, 5).transposed_b(),
            ] {
                for dtype in [DType::F32, DType::F16] {
                    if let MatmulVariant::Gemv(tile) = v {
                        // Only for skinny transposed shapes (gemv.rs tests them).
                        if gemv::plan(&shape, dtype, tile, 1 << 16, 256).is_err() {
                            continue;
                        }
                    }
                    if let MatmulVariant::GemvTexture(_) = v {
                        if gemv_texture::layout(&shape, dtype, 16384).is_err() {
                            continue;
                        }
                    }
                    if let MatmulVariant::GemvCoop(tile) = v {
                        if gemv_coop::refusal(&shape, dtype, tile).is_some() {
                            continue;
                        }
                    }
                    if let Some(operands) = v.texture_operands() {
                        if operands.unsupported(dtype).is_some() {
                            continue;
                        }
                    }
                    let src = v.source(&shape, dtype, 16384);
                    assert!(!src.contains("{{"), "{} {shape}", v.name());
                    assert_eq!(
                        src.lines().any(|l| l.trim() == "enable f16;"),
                        dtype == DType::F16
                    );
                }
            }
        }
    }

    #[test]
    fn texture_rows_past_u32_are_refused_not_wrapped() {
        let shape = MatmulShape::new(1, 1 << 20, 8)
            .transposed_b()
            .batched(1 << 13);
        let Err(PrepareError::Unsupported(why)) =
            texture_layouts(&shape, 1 << 20, Operands::StorageTextures)
        else {
            panic!("2^33 rows of B fit a u32 coordinate?");
        };
        assert!(why.contains("8192 x 1048576 rows"), "{why}");
        let shape = MatmulShape::new(5, 20000, 8).transposed_b();
        let fits = texture_layouts(&shape, 16384, Operands::StorageTextures).unwrap();
        assert!(fits.b.folded() && !fits.a.folded());
    }

    #[test]
    fn packed_halves_sources_validate_and_are_f16_only() {
        let packed: Vec<MatmulVariant> = MatmulVariant::all()
            .into_iter()
            .filter(|v| v.texture_operands() == Some(Operands::PackedHalves))
            .collect();
        assert!(!packed.is_empty());
        // k = 48 packs by 16-byte loads, k = 37 and 5 element by element (zero past k).
        for shape in [
            MatmulShape::new(64, 96, 48).transposed_b(),
            MatmulShape::new(9, 7, 37).transposed_b().batched(2),
            MatmulShape::new(3, 5, 5).transposed_b(),
        ] {
            let layouts = texture_layouts(&shape, 16384, Operands::PackedHalves).unwrap();
            assert_eq!(layouts.a.width, shape.k.div_ceil(8), "{shape}");
            let pack = pack_source(&shape, DType::F16, Operands::PackedHalves, &layouts);
            crate::kernels::validate_wgsl(&format!("pack A {shape}"), &pack);
            for v in &packed {
                let src = v.source(&shape, DType::F16, 16384);
                crate::kernels::validate_wgsl(&format!("{} {shape}", v.name()), &src);
                assert!(src.contains("k += 8u"), "{}", v.name());
            }
        }
        // Row-major B is staged transposed: the same kernel as for B stored [n, k].
        let shape = MatmulShape::new(64, 96, 48);
        assert_eq!(
            packed[0].source(&shape, DType::F16, 16384),
            packed[0].source(&shape.transposed_b(), DType::F16, 16384)
        );
        let why = Operands::PackedHalves.unsupported(DType::F32).unwrap();
        assert!(why.contains("f16 only"), "{why}");
        assert!(packed[0]
            .source(&shape, DType::F32, 16384)
            .starts_with("// packs"));
    }

    #[test]
    fn transpose_flips_each_batch() {
        // Two batches of [2, 3] -> [3, 2].
        let t = HostTensor::F32((0..12).map(|i| i as f32).collect());
        let HostTensor::F32(v) = transpose(&t, 2, 2, 3) else {
            unreachable!()
        };
        assert_eq!(
            v,
            [0., 3., 1., 4., 2., 5., 6., 9., 7., 10., 8., 11.].to_vec()
        );
    }

    #[test]
    fn tiled_limits_are_within_webgpu_defaults() {
        for v in MatmulVariant::all() {
            assert!(v.invocations() <= 256, "{}", v.name());
            assert!(v.workgroup_bytes() <= 16384, "{}", v.name());
        }
    }
}
