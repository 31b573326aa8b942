//! Attention variants: what each one is, its WGSL (rendered from `kernels/attention_*.wgsl`),
//! its dispatch geometry, and the limits it needs.
//!
//! Layout everywhere: Q[B, Hq, Sq, D], K and V [B, Hkv, Skv, D], O[B, Hq, Sq, D], row-major,
//! in the storage dtype; scores, softmax statistics and accumulators are f32. Query head h
//! reads KV head h / (Hq / Hkv). Causal queries are aligned to the last keys: query i sees keys
//! 0 ..= i + Skv - Sq.
//!
//! Variants:
//! - `naive`: scores = scale·Q·Kᵀ materialised in an f32 [B, Hq, Sq, Skv] buffer, a row
//!   softmax in place, then P·V: three dispatches, O(Sq·Skv) extra memory. The baseline.
//! - `flash_row_*`: fused FlashAttention-2 forward (online softmax, f32 statistics), one
//!   query row per invocation, GQA heads packed into a workgroup, K/V read with
//!   workgroup-uniform indices and no barriers: the lavapipe design. O(1) extra memory.
//! - `flash_wg_*`: the same, with each BC x D tile of K and V staged in workgroup memory
//!   between barriers: the GPU design (ONNX Runtime WebGPU style).
//! - `flash_split_*`: flash-decoding: the keys are cut into chunks across workgroups (each
//!   writes its max, sum and partial output) and a second pass merges them; for decode
//!   (Sq = 1) and other shapes with few query rows. Extra memory O(Sq·chunks·D).

use std::fmt::Write as _;

use super::{
    bind, check_buffer, check_workgroups, compile, enable_line, render, storage_buffer,
    uniform_buffer, Dispatch, HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
use crate::shape::{AttentionShape, DType};

const NAIVE_SCORES: &str = include_str!("../../kernels/attention_naive_scores.wgsl");
const NAIVE_SOFTMAX: &str = include_str!("../../kernels/attention_naive_softmax.wgsl");
const NAIVE_PV: &str = include_str!("../../kernels/attention_naive_pv.wgsl");
const FLASH_ROW: &str = include_str!("../../kernels/attention_flash_row.wgsl");
const FLASH_MERGE: &str = include_str!("../../kernels/attention_flash_merge.wgsl");

/// log2(e): scores are kept in log2 units so the kernels can use exp2.
const LOG2_E: f64 = std::f64::consts::LOG2_E;

/// Workgroups per grid row for the 1-D-indexed passes (softmax, merge); WebGPU caps each
/// dimension at 65,535.
const GRID_X_MAX: u32 = 65_535;

/// An attention kernel and its tile parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttentionVariant {
    /// Scores, softmax and P·V as three dispatches over a materialised score matrix.
    Naive,
    /// Fused online-softmax attention, one query row per invocation.
    Flash {
        /// Rows (invocations) per workgroup.
        br: u32,
        /// Keys per tile.
        bc: u32,
        /// Stage K/V tiles in workgroup memory (GPU design) instead of uniform direct loads.
        staged: bool,
        /// Keys per chunk for flash-decoding (split-KV plus a merge pass); `None`: no split.
        chunk: Option<u32>,
    },
}

/// The uniform block of the fused kernels (see `attention_flash_row.wgsl`).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct FlashParams {
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

/// The uniform block of the naive kernels (see `attention_naive_scores.wgsl`).
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

impl AttentionVariant {
    /// Every variant the suite tries, in the order they are reported.
    pub fn all() -> Vec<AttentionVariant> {
        use AttentionVariant::Flash;
        vec![
            AttentionVariant::Naive,
            Flash {
                br: 32,
                bc: 8,
                staged: false,
                chunk: None,
            },
            Flash {
                br: 64,
                bc: 16,
                staged: true,
                chunk: None,
            },
            Flash {
                br: 8,
                bc: 8,
                staged: false,
                chunk: Some(256),
            },
        ]
    }

    /// The `variant` column: kernel family and tile parameters.
    pub fn name(&self) -> String {
        match *self {
            AttentionVariant::Naive => "naive".into(),
            AttentionVariant::Flash {
                br,
                bc,
                staged,
                chunk,
            } => {
                let family = match (chunk.is_some(), staged) {
                    (false, false) => "flash_row",
                    (false, true) => "flash_wg",
                    (true, false) => "flash_split",
                    (true, true) => "flash_split_wg",
                };
                let mut s = format!("{family}_r{br}_c{bc}");
                if let Some(k) = chunk {
                    let _ = write!(s, "_k{k}");
                }
                s
            }
        }
    }

    /// The WGSL files the variant is rendered from.
    pub fn files(&self) -> &'static [&'static str] {
        match self {
            AttentionVariant::Naive => &[
                "kernels/attention_naive_scores.wgsl",
                "kernels/attention_naive_softmax.wgsl",
                "kernels/attention_naive_pv.wgsl",
            ],
            AttentionVariant::Flash { chunk: None, .. } => &["kernels/attention_flash_row.wgsl"],
            AttentionVariant::Flash { chunk: Some(_), .. } => &[
                "kernels/attention_flash_row.wgsl",
                "kernels/attention_flash_merge.wgsl",
            ],
        }
    }

    /// Invocations per workgroup of the main kernel.
    pub fn invocations(&self) -> u32 {
        match *self {
            AttentionVariant::Naive => 256,
            AttentionVariant::Flash { br, .. } => br,
        }
    }

    /// Workgroup memory in bytes for head dim `d` in `dtype`.
    pub fn workgroup_bytes(&self, d: u32, dtype: DType) -> u32 {
        match *self {
            AttentionVariant::Flash {
                bc, staged: true, ..
            } => 2 * bc * d * dtype.size() as u32,
            _ => 0,
        }
    }

    /// Key chunks (workgroups along the key axis) for `shape`: 1 without split.
    pub fn splits(&self, shape: &AttentionShape) -> u32 {
        match *self {
            AttentionVariant::Flash { chunk: Some(k), .. } => shape.skv.div_ceil(k),
            _ => 1,
        }
    }

    /// Extra device memory the variant allocates beyond Q, K, V and O, in bytes: the
    /// materialised scores for `naive` (O(Sq·Skv) per head), the partial outputs and
    /// statistics for `flash_split` (O(Sq·chunks·D)), nothing for the fused kernels.
    pub fn scratch_bytes(&self, shape: &AttentionShape) -> u64 {
        let rows = shape.b as u64 * shape.hq as u64 * shape.sq as u64;
        match *self {
            AttentionVariant::Naive => rows * shape.skv as u64 * 4,
            AttentionVariant::Flash { chunk: None, .. } => 0,
            AttentionVariant::Flash { .. } => {
                rows * self.splits(shape) as u64 * (shape.d as u64 + 2) * 4
            }
        }
    }

    /// Workgroup counts of the main fused kernel for `shape`.
    pub fn workgroups(&self, shape: &AttentionShape) -> [u32; 3] {
        match *self {
            AttentionVariant::Naive => [
                shape.skv.div_ceil(16),
                shape.sq.div_ceil(16),
                shape.b * shape.hq,
            ],
            AttentionVariant::Flash { br, .. } => {
                let rep = shape.hq / shape.hkv;
                [
                    (rep * shape.sq).div_ceil(br),
                    shape.hkv,
                    shape.b * self.splits(shape),
                ]
            }
        }
    }

    /// The WGSL source of the fused kernel (`Flash` variants) for head dim `d` and `dtype`.
    pub fn flash_source(&self, d: u32, dtype: DType) -> Option<String> {
        let AttentionVariant::Flash {
            br,
            bc,
            staged,
            chunk,
        } = *self
        else {
            return None;
        };
        let d4 = d / 4;
        let gen = Gen {
            br,
            bc,
            d4,
            staged,
            split: chunk.is_some(),
        };
        let out_bindings = if gen.split {
            "@group(0) @binding(4) var<storage, read_write> part_o: array<vec4<f32>>;\n@group(0) @binding(5) var<storage, read_write> part_ml: array<vec2<f32>>;"
        } else {
            "@group(0) @binding(4) var<storage, read_write> out: array<vec4<E>>;"
        };
        let wg_decls = if staged {
            format!(
                "var<workgroup> ks: array<vec4<E>, {n}>;\nvar<workgroup> vs: array<vec4<E>, {n}>;",
                n = bc * d4
            )
        } else {
            String::new()
        };
        Some(render(
            FLASH_ROW,
            &[
                ("ENABLE_F16", enable_line(dtype)),
                ("ELEM", dtype.wgsl().into()),
                ("BR", br.to_string()),
                ("BC", bc.to_string()),
                ("D4", d4.to_string()),
                ("OUT_BINDINGS", out_bindings.into()),
                ("WG_DECLS", wg_decls),
                ("LOAD_Q", gen.load_q()),
                ("INIT", gen.init()),
                ("TILE_FULL", gen.tile(false)),
                ("TILE_MASKED", gen.tile(true)),
                ("STORE", gen.store()),
            ],
        ))
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
        let s = &gpu.summary;
        if self.invocations() > s.max_invocations_per_workgroup {
            return Err(PrepareError::Unsupported(format!(
                "{} invocations per workgroup, over the adapter's {}",
                self.invocations(),
                s.max_invocations_per_workgroup
            )));
        }
        let wg_bytes = self.workgroup_bytes(shape.d, dtype);
        if wg_bytes > s.max_workgroup_storage_bytes {
            return Err(PrepareError::Unsupported(format!(
                "{wg_bytes} bytes of workgroup memory for d={}, over the adapter's {}",
                shape.d, s.max_workgroup_storage_bytes
            )));
        }
        let q_len = shape.b as u64 * shape.hq as u64 * shape.sq as u64 * shape.d as u64;
        let kv_len = shape.b as u64 * shape.hkv as u64 * shape.skv as u64 * shape.d as u64;
        check_buffer(gpu, "Q", q_len * dtype.size())?;
        check_buffer(gpu, "K", kv_len * dtype.size())?;
        check_buffer(gpu, "V", kv_len * dtype.size())?;
        check_buffer(gpu, "O", q_len * dtype.size())?;
        if inputs.q.len() as u64 != q_len || inputs.k.len() as u64 != kv_len {
            return Err(PrepareError::Failed(format!(
                "inputs do not match the shape {shape} (q has {} elements, expected {q_len})",
                inputs.q.len()
            )));
        }
        let label = format!("attention {} {shape} {dtype}", self.name());
        let q = storage_buffer(gpu, "Q", inputs.q.bytes(), false);
        let k = storage_buffer(gpu, "K", inputs.k.bytes(), false);
        let v = storage_buffer(gpu, "V", inputs.v.bytes(), false);
        let out = storage_buffer(gpu, "O", HostTensor::nan(dtype, q_len).bytes(), true);
        let rep = shape.hq / shape.hkv;
        let scale = 1.0 / (shape.d as f64).sqrt();
        match *self {
            AttentionVariant::Naive => {
                let scores_bytes = self.scratch_bytes(shape);
                check_buffer(gpu, "the score matrix", scores_bytes)?;
                let workgroups = self.workgroups(shape);
                check_workgroups(gpu, workgroups)?;
                let pv_groups = [shape.d.div_ceil(64), shape.sq, shape.b * shape.hq];
                check_workgroups(gpu, pv_groups)?;
                let rows = shape.b as u64 * shape.hq as u64 * shape.sq as u64;
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
                let fields = [
                    ("ENABLE_F16", enable_line(dtype)),
                    ("ELEM", dtype.wgsl().to_string()),
                ];
                let p_scores = compile(
                    gpu,
                    &format!("{label} scores"),
                    &render(NAIVE_SCORES, &fields),
                    "main",
                )?;
                let p_softmax = compile(gpu, &format!("{label} softmax"), NAIVE_SOFTMAX, "main")?;
                let p_pv = compile(
                    gpu,
                    &format!("{label} pv"),
                    &render(NAIVE_PV, &fields),
                    "main",
                )?;
                let uniforms = uniform_buffer(gpu, "attention params", bytemuck::bytes_of(&params));
                let scores = gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("attention scores"),
                    size: scores_bytes.next_multiple_of(4).max(4),
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                });
                let dispatches = vec![
                    Dispatch {
                        bind_group: bind(gpu, &p_scores, &[&uniforms, &q, &k, &scores]),
                        pipeline: p_scores,
                        workgroups,
                    },
                    Dispatch {
                        bind_group: bind(gpu, &p_softmax, &[&uniforms, &scores]),
                        pipeline: p_softmax,
                        workgroups: softmax_groups,
                    },
                    Dispatch {
                        bind_group: bind(gpu, &p_pv, &[&uniforms, &scores, &v, &out]),
                        pipeline: p_pv,
                        workgroups: pv_groups,
                    },
                ];
                Ok(Program {
                    dispatches,
                    output: out,
                    output_dtype: dtype,
                    output_len: q_len,
                    _keep: vec![uniforms, q, k, v, scores],
                })
            }
            AttentionVariant::Flash { chunk, .. } => {
                let workgroups = self.workgroups(shape);
                check_workgroups(gpu, workgroups)?;
                let nsplit = self.splits(shape);
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
                    chunk: chunk.unwrap_or(shape.skv),
                    scale_log2e: (scale * LOG2_E) as f32,
                    _pad: 0,
                };
                let source = self
                    .flash_source(shape.d, dtype)
                    .expect("flash variants have a source");
                let main = compile(gpu, &label, &source, "main")?;
                let uniforms = uniform_buffer(gpu, "attention params", bytemuck::bytes_of(&params));
                if chunk.is_none() {
                    let bind_group = bind(gpu, &main, &[&uniforms, &q, &k, &v, &out]);
                    return Ok(Program {
                        dispatches: vec![Dispatch {
                            pipeline: main,
                            bind_group,
                            workgroups,
                        }],
                        output: out,
                        output_dtype: dtype,
                        output_len: q_len,
                        _keep: vec![uniforms, q, k, v],
                    });
                }
                let rows = shape.b as u64 * shape.hq as u64 * shape.sq as u64;
                let part_o_bytes = rows * nsplit as u64 * shape.d as u64 * 4;
                let part_ml_bytes = rows * nsplit as u64 * 8;
                check_buffer(gpu, "the partial outputs", part_o_bytes)?;
                let merge_groups = grid_1d(rows * shape.d as u64 / 4);
                check_workgroups(gpu, merge_groups)?;
                let merge_src = render(
                    FLASH_MERGE,
                    &[
                        ("ENABLE_F16", enable_line(dtype)),
                        ("ELEM", dtype.wgsl().into()),
                        ("D4", (shape.d / 4).to_string()),
                    ],
                );
                let merge = compile(gpu, &format!("{label} merge"), &merge_src, "main")?;
                let scratch = |label: &str, size: u64| {
                    gpu.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some(label),
                        size: size.next_multiple_of(4).max(4),
                        usage: wgpu::BufferUsages::STORAGE,
                        mapped_at_creation: false,
                    })
                };
                let part_o = scratch("attention partial o", part_o_bytes);
                let part_ml = scratch("attention partial m, l", part_ml_bytes);
                let dispatches = vec![
                    Dispatch {
                        bind_group: bind(gpu, &main, &[&uniforms, &q, &k, &v, &part_o, &part_ml]),
                        pipeline: main,
                        workgroups,
                    },
                    Dispatch {
                        bind_group: bind(gpu, &merge, &[&uniforms, &part_o, &part_ml, &out]),
                        pipeline: merge,
                        workgroups: merge_groups,
                    },
                ];
                Ok(Program {
                    dispatches,
                    output: out,
                    output_dtype: dtype,
                    output_len: q_len,
                    _keep: vec![uniforms, q, k, v, part_o, part_ml],
                })
            }
        }
    }
}

/// The causal diagonal offset for `shape`: queries aligned to the last keys.
pub fn causal_shift(shape: &AttentionShape) -> i32 {
    shape.skv as i32 - shape.sq as i32
}

/// A 2-D grid of 64-invocation workgroups covering `n` invocations (x at most 65,535).
fn grid_1d(n: u64) -> [u32; 3] {
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

    /// As [`random`](Self::random), with Q multiplied by `factor`: the logits scale by it, so
    /// large factors exercise the running max (scores far beyond exp's f32 range) and small
    /// ones the near-uniform softmax.
    pub fn with_logit_scale(shape: &AttentionShape, dtype: DType, seed: u64, factor: f32) -> Self {
        let mut rng = crate::verify::Rng::new(seed);
        let q_len = shape.b as u64 * shape.hq as u64 * shape.sq as u64 * shape.d as u64;
        let kv_len = shape.b as u64 * shape.hkv as u64 * shape.skv as u64 * shape.d as u64;
        let mut normal = move || {
            // Box-Muller; u1 in (0, 1] so the log is finite.
            let u1 = 1.0 - (rng.uniform() as f64 + 1.0) / 2.0;
            let u2 = (rng.uniform() as f64 + 1.0) / 2.0;
            ((-2.0 * u1.max(f64::MIN_POSITIVE).ln()).sqrt() * (std::f64::consts::TAU * u2).cos())
                as f32
        };
        let q = HostTensor::generate(dtype, q_len, || normal() * factor);
        let k = HostTensor::generate(dtype, kv_len, &mut normal);
        let v = HostTensor::generate(dtype, kv_len, &mut normal);
        AttentionInputs { q, k, v }
    }
}

/// Text generation for the fused kernel: everything unrolled over D4 vec4 columns and BC keys,
/// in an order that keeps the BC scores and one q (or o) vec4 in registers.
struct Gen {
    br: u32,
    bc: u32,
    d4: u32,
    staged: bool,
    split: bool,
}

const IND: &str = "        ";

impl Gen {
    fn load_q(&self) -> String {
        let mut s = String::from("    let qb = row * D4;\n");
        for c in 0..self.d4 {
            let _ = writeln!(s, "    let q{c} = vec4<f32>(q[qb + {c}u]) * p.scale_log2e;");
        }
        s.trim_end().to_string()
    }

    fn init(&self) -> String {
        let mut s = String::new();
        for c in 0..self.d4 {
            let _ = writeln!(s, "    var o{c} = vec4<f32>(0.0);");
        }
        s.trim_end().to_string()
    }

    /// Expression for the vec4 `c` of key `j` of the current tile of `buf` (k or v).
    fn kv(&self, buf: &str, j: u32, c: u32, masked: bool) -> String {
        if self.staged {
            format!("vec4<f32>({buf}s[{}u])", j * self.d4 + c)
        } else if masked {
            format!("vec4<f32>({buf}[kb{j} + {c}u])")
        } else {
            format!("vec4<f32>({buf}[kb + {}u])", j * self.d4 + c)
        }
    }

    /// One tile of BC keys starting at key `t`.
    fn tile(&self, masked: bool) -> String {
        let (bc, d4) = (self.bc, self.d4);
        let mut s = String::new();
        if self.staged {
            // Cooperative load of the K and V tiles (coalesced: consecutive invocations read
            // consecutive vec4s), between barriers.
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
                let key = if masked {
                    "u32(min(t + i32(idx / D4), skv - 1))"
                } else {
                    "u32(t) + idx / D4"
                };
                let _ = writeln!(
                    s,
                    "{IND}{inner}let src = (kv_row0 + {key}) * D4 + idx % D4;"
                );
                let _ = writeln!(s, "{IND}{inner}ks[idx] = k[src];");
                let _ = writeln!(s, "{IND}{inner}vs[idx] = v[src];");
                if guard {
                    let _ = writeln!(s, "{IND}    }}");
                }
                let _ = writeln!(s, "{IND}}}");
            }
            let _ = writeln!(s, "{IND}workgroupBarrier();");
        } else if masked {
            for j in 0..bc {
                let _ = writeln!(
                    s,
                    "{IND}let kb{j} = (kv_row0 + u32(min(t + {j}, skv - 1))) * D4;"
                );
            }
        } else {
            let _ = writeln!(s, "{IND}let kb = (kv_row0 + u32(t)) * D4;");
        }
        // Scores: s_j = q · k_j, column-major so each q vec4 serves BC keys.
        for j in 0..bc {
            let _ = writeln!(s, "{IND}var s{j} = 0.0;");
        }
        for c in 0..d4 {
            for j in 0..bc {
                let _ = writeln!(
                    s,
                    "{IND}{{ let x = {}; s{j} = fma(q{c}.w, x.w, fma(q{c}.z, x.z, fma(q{c}.y, x.y, fma(q{c}.x, x.x, s{j})))); }}",
                    self.kv("k", j, c, masked)
                );
            }
        }
        if masked {
            for j in 0..bc {
                let _ = writeln!(s, "{IND}let out{j} = t + {j} > lim;");
                let _ = writeln!(s, "{IND}s{j} = select(s{j}, NEG, out{j});");
            }
        }
        let names: Vec<String> = (0..bc).map(|j| format!("s{j}")).collect();
        let _ = writeln!(s, "{IND}let mn = max(m, {});", tree(&names, "max"));
        let _ = writeln!(s, "{IND}let alpha = exp2(m - mn);");
        for j in 0..bc {
            if masked {
                // A masked key adds nothing even when the row has seen no key yet (mn = NEG).
                let _ = writeln!(s, "{IND}let p{j} = select(exp2(s{j} - mn), 0.0, out{j});");
            } else {
                let _ = writeln!(s, "{IND}let p{j} = exp2(s{j} - mn);");
            }
        }
        let ps: Vec<String> = (0..bc).map(|j| format!("p{j}")).collect();
        let _ = writeln!(s, "{IND}l = fma(l, alpha, {});", tree(&ps, "+"));
        let _ = writeln!(s, "{IND}m = mn;");
        // o = alpha·o + Σ_j p_j·v_j, column-major so each o vec4 is loaded and stored once.
        for c in 0..d4 {
            let mut e = format!("o{c} * alpha");
            for j in 0..bc {
                e = format!("fma(vec4<f32>(p{j}), {}, {e})", self.kv("v", j, c, masked));
            }
            let _ = writeln!(s, "{IND}o{c} = {e};");
        }
        s.trim_end().to_string()
    }

    fn store(&self) -> String {
        let mut s = String::new();
        if self.split {
            let _ = writeln!(s, "{IND}let pb = row * p.nsplit + split;");
            for c in 0..self.d4 {
                let _ = writeln!(s, "{IND}part_o[pb * D4 + {c}u] = o{c};");
            }
            let _ = writeln!(s, "{IND}part_ml[pb] = vec2<f32>(m, l);");
        } else {
            // A row that saw no key has l = 0 and o = 0: it writes 0, not NaN.
            let _ = writeln!(s, "{IND}let inv = select(0.0, 1.0 / l, l > 0.0);");
            let _ = writeln!(s, "{IND}let ob = row * D4;");
            for c in 0..self.d4 {
                let _ = writeln!(s, "{IND}out[ob + {c}u] = vec4<E>(o{c} * inv);");
            }
        }
        s.trim_end().to_string()
    }
}

/// A balanced expression tree: `max(max(a, b), max(c, d))` or `((a + b) + (c + d))`.
fn tree(items: &[String], op: &str) -> String {
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
                    if let Some(src) = v.flash_source(d, dtype) {
                        assert!(!src.contains("{{"), "{} d={d}", v.name());
                        assert_eq!(
                            src.lines().any(|l| l.trim() == "enable f16;"),
                            dtype == DType::F16
                        );
                        assert!(src.contains(&format!("o{} =", d / 4 - 1)));
                    }
                }
            }
        }
    }

    #[test]
    fn geometry_covers_every_row() {
        let s = shape("b=3,hq=12,hkv=4,sq=37,skv=300,d=64,causal=1");
        for v in AttentionVariant::all() {
            let [x, y, z] = v.workgroups(&s);
            match v {
                AttentionVariant::Naive => {
                    assert!(x * 16 >= s.skv && y * 16 >= s.sq && z == s.b * s.hq)
                }
                AttentionVariant::Flash { br, chunk, .. } => {
                    let rows = 3 * s.sq;
                    assert!(x * br >= rows && (x - 1) * br < rows, "{}", v.name());
                    assert_eq!(y, s.hkv);
                    let splits = chunk.map_or(1, |k| s.skv.div_ceil(k));
                    assert_eq!(z, s.b * splits);
                }
            }
        }
    }

    #[test]
    fn extra_memory_is_quadratic_only_for_naive() {
        let small = shape("b=1,hq=8,sq=1024,d=64,causal=1");
        let big = shape("b=1,hq=8,sq=2048,d=64,causal=1");
        let naive = AttentionVariant::Naive;
        assert_eq!(naive.scratch_bytes(&small), 8 * 1024 * 1024 * 4);
        assert_eq!(naive.scratch_bytes(&big), 4 * naive.scratch_bytes(&small));
        for v in AttentionVariant::all().into_iter().skip(1) {
            assert!(v.scratch_bytes(&big) <= 4 * v.scratch_bytes(&small).max(1));
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
