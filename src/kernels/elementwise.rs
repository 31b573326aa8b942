//! The elementwise (and row-reduction) kernels between a transformer layer's matmuls: what
//! each variant is, its WGSL (rendered from `kernels/elementwise_*.wgsl`), its dispatch
//! geometry and the limits it needs, plus [`prepare_op`], which turns a model op
//! ([`Op::Elementwise`]) into a program and its check.
//!
//! Ops ([`ElementwiseKind`], all on `[rows, cols]` row-major activations, f32 or f16
//! storage with f32 math):
//! - `rmsnorm`: `y = x / sqrt(mean(x²) + eps) · w`, one workgroup per row, eps = [`NORM_EPS`].
//! - `layernorm`: `y = (x - mean) / sqrt(var + eps) · w + b`, two-pass variance.
//! - `rope`: rotary embedding, half-split (Llama / Hugging Face `rotate_half`) convention,
//!   `theta_j = pos · base^(-2j/head_dim)`, base [`ROPE_BASE`], heads laid out
//!   `[tokens, heads · head_dim]`; row `r` is at position `start_pos + r % seq_len`.
//! - `silu_mul`: `y = silu(gate) · up` (SwiGLU), two inputs.
//! - `gelu`: GPT-2's tanh approximation.
//! - `add`: `y = a + b` (residual).
//!
//! Variants ([`ElementwiseVariant`]): a [`Method`] (map; tree or subgroup reduction for the
//! norms; cos/sin table or inline angles for RoPE), a scalar path (any shape) or a vec4 path
//! (16-byte f32 / 8-byte f16 accesses; needs `cols % 4 == 0`, RoPE `head_dim % 8 == 0`),
//! and a workgroup size. Dispatches beyond 65535 workgroups use a 2-D grid, so any `rows`
//! works.

use std::fmt;

use super::{
    bind, check_buffer, check_workgroup, check_workgroups, compile, enable_line, output_buffer,
    render, storage_buffer, uniform_buffer, Dispatch, HostTensor, PrepareError, Program,
};
use crate::gpu::Gpu;
pub use crate::model::ElementwiseKind;
use crate::model::Op;
use crate::shape::DType;
use crate::verify::Verdict;

const COMMON: &str = include_str!("../../kernels/elementwise_common.wgsl");
const ADD: &str = include_str!("../../kernels/elementwise_add.wgsl");
const SILU_MUL: &str = include_str!("../../kernels/elementwise_silu_mul.wgsl");
const GELU: &str = include_str!("../../kernels/elementwise_gelu.wgsl");
const RMSNORM: &str = include_str!("../../kernels/elementwise_rmsnorm.wgsl");
const LAYERNORM: &str = include_str!("../../kernels/elementwise_layernorm.wgsl");
const ROPE: &str = include_str!("../../kernels/elementwise_rope.wgsl");

/// The epsilon of both norms (Llama 3 and GPT-2 use 1e-5).
pub const NORM_EPS: f32 = 1e-5;
/// RoPE's frequency base (Llama 2, Mistral; Llama 3 uses 500000, which costs the same).
pub const ROPE_BASE: f64 = 10000.0;
/// Workgroups per grid dimension: WebGPU's guaranteed minimum of
/// `max_compute_workgroups_per_dimension`; larger dispatches continue in y.
pub const MAX_GRID_X: u32 = 65535;
/// Largest element count: indices are u32, and the 2-D grid may overshoot by one row of
/// workgroups, so stay well under 2^32.
pub const MAX_ELEMENTS: u64 = 1 << 31;
/// RoPE positions must stay below this (exact in f32; the inline angle split needs it).
pub const MAX_POSITION: u64 = 1 << 24;

/// An elementwise problem: the op, the activation shape, and for RoPE the head size and the
/// positions of the rows (ignored by the other ops).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElementwiseShape {
    pub kind: ElementwiseKind,
    /// Tokens.
    pub rows: u32,
    /// Features per token (RoPE: heads · head_dim).
    pub cols: u32,
    /// RoPE only: elements per head (even; divides `cols`).
    pub head_dim: u32,
    /// RoPE only: position of row 0.
    pub start_pos: u32,
    /// RoPE only: tokens per sequence; row `r` is at position `start_pos + r % seq_len`.
    pub seq_len: u32,
}

impl ElementwiseShape {
    /// A shape for any kind. RoPE gets [`default_head_dim`] and positions `0..rows` (one
    /// sequence); use [`ElementwiseShape::rope`] and [`ElementwiseShape::at_positions`] to
    /// say what they are.
    pub fn new(kind: ElementwiseKind, rows: u32, cols: u32) -> Self {
        let head_dim = if kind == ElementwiseKind::Rope {
            default_head_dim(cols)
        } else {
            0
        };
        ElementwiseShape {
            kind,
            rows,
            cols,
            head_dim,
            start_pos: 0,
            seq_len: rows.max(1),
        }
    }

    /// RoPE over `rows` tokens of `cols / head_dim` heads, positions `0..rows`.
    pub fn rope(rows: u32, cols: u32, head_dim: u32) -> Self {
        ElementwiseShape {
            head_dim,
            ..ElementwiseShape::new(ElementwiseKind::Rope, rows, cols)
        }
    }

    /// Rows are `seq_len`-token sequences back to back, the first token at `start_pos`.
    /// Prefill of `batch` prompts: `(0, prompt_len)`. Decode where `context_len` counts the
    /// new token (as [`crate::model::Phase::Decode`] does): `(context_len - 1, 1)`.
    pub fn at_positions(self, start_pos: u32, seq_len: u32) -> Self {
        ElementwiseShape {
            start_pos,
            seq_len,
            ..self
        }
    }

    /// The shape of a model op, or `None` for a matmul or attention op. RoPE ops do not
    /// carry their head size: [`default_head_dim`] of `cols`, positions `0..rows` (neither
    /// changes the work done; use [`ElementwiseShape::rope`] where the preset is at hand).
    pub fn from_op(op: &Op) -> Option<Self> {
        match *op {
            Op::Elementwise {
                kind, rows, cols, ..
            } => Some(ElementwiseShape::new(kind, rows, cols)),
            _ => None,
        }
    }

    /// The model op this shape is (named after its kind).
    pub fn op(&self) -> Op {
        Op::Elementwise {
            name: self.kind.as_str(),
            kind: self.kind,
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Elements of each activation tensor.
    pub fn len(&self) -> u64 {
        u64::from(self.rows) * u64::from(self.cols)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Position of `row` (RoPE).
    pub fn position(&self, row: u32) -> u64 {
        u64::from(self.start_pos) + u64::from(row % self.seq_len.max(1))
    }

    /// Distinct positions the rows use: `min(seq_len, rows)`.
    pub fn positions(&self) -> u32 {
        self.seq_len.min(self.rows)
    }

    /// FLOPs, as the model counts them.
    pub fn flops(&self) -> u64 {
        self.op().flops()
    }

    /// Compulsory bytes at `dtype`, as the model counts them (RoPE's tables not counted).
    pub fn bytes(&self, dtype: DType) -> u64 {
        self.op().bytes(dtype)
    }

    /// Why this shape cannot be computed, if it cannot.
    pub fn validate(&self) -> Result<(), String> {
        if self.rows == 0 || self.cols == 0 {
            return Err(format!("{self}: rows and cols must be at least 1"));
        }
        if self.len() > MAX_ELEMENTS {
            return Err(format!(
                "{self}: {} elements, over the {MAX_ELEMENTS} that u32 indexing allows",
                self.len()
            ));
        }
        if self.kind == ElementwiseKind::Rope {
            if self.head_dim == 0
                || !self.head_dim.is_multiple_of(2)
                || !self.cols.is_multiple_of(self.head_dim)
            {
                return Err(format!(
                    "{self}: RoPE needs an even head_dim that divides cols"
                ));
            }
            if self.seq_len == 0 {
                return Err(format!("{self}: seq_len must be at least 1"));
            }
            let last = u64::from(self.start_pos) + u64::from(self.positions()) - 1;
            if last >= MAX_POSITION {
                return Err(format!(
                    "{self}: position {last} is past the {MAX_POSITION} RoPE supports"
                ));
            }
        }
        Ok(())
    }
}

/// A head size for a RoPE op that does not say: the first of 128, 64, 256, 96, 80, 32 that
/// divides `cols`, else 2 (else `cols`, which [`ElementwiseShape::validate`] refuses when odd).
pub fn default_head_dim(cols: u32) -> u32 {
    [128, 64, 256, 96, 80, 32, 2]
        .into_iter()
        .find(|d| cols.is_multiple_of(*d))
        .unwrap_or(cols)
}

impl fmt::Display for ElementwiseShape {
    /// The `shape` column: `rows=..,cols=..` (as the model op prints), plus
    /// `head_dim=..,start_pos=..,seq_len=..` for RoPE.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rows={},cols={}", self.rows, self.cols)?;
        if self.kind == ElementwiseKind::Rope {
            write!(
                f,
                ",head_dim={},start_pos={},seq_len={}",
                self.head_dim, self.start_pos, self.seq_len
            )?;
        }
        Ok(())
    }
}

/// How a kernel reads and writes memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// One element per access; any shape.
    Scalar,
    /// `vec4` accesses; needs `cols % 4 == 0` (RoPE: `head_dim % 8 == 0`).
    Vec4,
}

/// How a variant computes its op; each method belongs to one family of kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// add, silu_mul, gelu: one storage unit per invocation over the flattened tensor.
    Map,
    /// rmsnorm, layernorm: strided partial sums, then a tree in workgroup memory
    /// (log2(workgroup) + 2 barriers per sum). Portable.
    Tree,
    /// rmsnorm, layernorm: `subgroupAdd`, then one workgroup-memory slot per subgroup (two
    /// barriers per sum, none when the workgroup is a single subgroup). Needs SUBGROUP.
    Subgroup,
    /// rope: cos and sin from a `[positions, head_dim / 2]` f32 table computed on the host
    /// in f64.
    RopeTable,
    /// rope: the angle computed in the kernel from the position, with an exact reduction
    /// to turns.
    RopeInline,
}

impl Method {
    /// Whether this method computes `kind`.
    pub fn computes(self, kind: ElementwiseKind) -> bool {
        match self {
            Method::Map => matches!(
                kind,
                ElementwiseKind::Add | ElementwiseKind::SiluMul | ElementwiseKind::Gelu
            ),
            Method::Tree | Method::Subgroup => is_row_kind(kind),
            Method::RopeTable | Method::RopeInline => kind == ElementwiseKind::Rope,
        }
    }

    /// The method of [`ElementwiseVariant::default_for`]: map, tree, or the RoPE table.
    pub fn default_for(kind: ElementwiseKind) -> Method {
        match kind {
            ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm => Method::Tree,
            ElementwiseKind::Rope => Method::RopeTable,
            _ => Method::Map,
        }
    }
}

/// One elementwise kernel variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ElementwiseVariant {
    pub method: Method,
    pub access: Access,
    /// Invocations per workgroup (a power of two: the norms' tree halves it).
    pub workgroup: u32,
}

impl ElementwiseVariant {
    pub fn new(method: Method, access: Access, workgroup: u32) -> Self {
        ElementwiseVariant {
            method,
            access,
            workgroup,
        }
    }

    /// Every variant the suite tries for `kind`, in the order they are reported.
    pub fn all(kind: ElementwiseKind) -> Vec<ElementwiseVariant> {
        use Access::*;
        use Method::*;
        let v = Self::new;
        match kind {
            ElementwiseKind::Add | ElementwiseKind::SiluMul | ElementwiseKind::Gelu => {
                vec![v(Map, Scalar, 256), v(Map, Vec4, 256)]
            }
            ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm => vec![
                v(Tree, Scalar, 256),
                v(Tree, Vec4, 256),
                // Fewest barrier steps: the fastest on lavapipe.
                v(Tree, Vec4, 8),
                v(Subgroup, Vec4, 256),
                // One subgroup per row on 32-wide hardware (NVIDIA, AMD wave32).
                v(Subgroup, Vec4, 32),
            ],
            ElementwiseKind::Rope => vec![
                v(RopeTable, Scalar, 256),
                v(RopeTable, Vec4, 256),
                v(RopeInline, Scalar, 256),
                v(RopeInline, Vec4, 256),
            ],
        }
    }

    /// The variant [`prepare_op`] uses: the kind's portable method ([`Method::default_for`]),
    /// vec4 where the shape allows, else scalar; 256 invocations.
    pub fn default_for(shape: &ElementwiseShape) -> ElementwiseVariant {
        let access = if vec4_fits(shape) {
            Access::Vec4
        } else {
            Access::Scalar
        };
        Self::new(Method::default_for(shape.kind), access, 256)
    }

    /// The `variant` column, e.g. `vec4_wg256`, `vec4_subgroup_wg32`, `scalar_inline_wg256`.
    pub fn name(&self) -> String {
        let access = match self.access {
            Access::Scalar => "scalar",
            Access::Vec4 => "vec4",
        };
        let method = match self.method {
            Method::Map | Method::Tree => "",
            Method::Subgroup => "_subgroup",
            Method::RopeTable => "_table",
            Method::RopeInline => "_inline",
        };
        format!("{access}{method}_wg{}", self.workgroup)
    }

    /// The WGSL file `kind` is rendered from (after `kernels/elementwise_common.wgsl`).
    pub fn file(kind: ElementwiseKind) -> &'static str {
        match kind {
            ElementwiseKind::Add => "kernels/elementwise_add.wgsl",
            ElementwiseKind::SiluMul => "kernels/elementwise_silu_mul.wgsl",
            ElementwiseKind::Gelu => "kernels/elementwise_gelu.wgsl",
            ElementwiseKind::RmsNorm => "kernels/elementwise_rmsnorm.wgsl",
            ElementwiseKind::LayerNorm => "kernels/elementwise_layernorm.wgsl",
            ElementwiseKind::Rope => "kernels/elementwise_rope.wgsl",
        }
    }

    /// Elements per storage unit.
    pub fn width(&self) -> u32 {
        match self.access {
            Access::Scalar => 1,
            Access::Vec4 => 4,
        }
    }

    /// Workgroup memory in bytes (the norms' reduction array).
    pub fn workgroup_bytes(&self, kind: ElementwiseKind) -> u32 {
        if is_row_kind(kind) {
            4 * self.workgroup
        } else {
            0
        }
    }

    /// Work items of the dispatch: rows for the norms, storage units for add / silu_mul /
    /// gelu, pairs of units for RoPE.
    pub fn units(&self, shape: &ElementwiseShape) -> u64 {
        let w = u64::from(self.width());
        match shape.kind {
            ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm => u64::from(shape.rows),
            ElementwiseKind::Rope => shape.len() / (2 * w),
            _ => shape.len().div_ceil(w),
        }
    }

    /// Workgroup counts: one workgroup per row (norms) or per `workgroup` work items,
    /// laid over a 2-D grid of at most [`MAX_GRID_X`] in x.
    pub fn workgroups(&self, shape: &ElementwiseShape) -> [u32; 3] {
        let groups = if is_row_kind(shape.kind) {
            self.units(shape)
        } else {
            self.units(shape).div_ceil(u64::from(self.workgroup))
        };
        grid(groups)
    }

    /// Why this variant cannot run `shape` whatever the adapter, if it cannot.
    pub fn applies(&self, shape: &ElementwiseShape) -> Result<(), String> {
        if !self.method.computes(shape.kind) {
            return Err(format!(
                "variant {} ({:?}) does not compute {}",
                self.name(),
                self.method,
                shape.kind
            ));
        }
        if !self.workgroup.is_power_of_two() {
            return Err(format!(
                "workgroup size {} is not a power of two",
                self.workgroup
            ));
        }
        if self.access == Access::Vec4 && !vec4_fits(shape) {
            return Err(if shape.kind == ElementwiseKind::Rope {
                format!(
                    "the vec4 path needs head_dim % 8 == 0; {shape} has head_dim {}",
                    shape.head_dim
                )
            } else {
                format!(
                    "the vec4 path needs cols % 4 == 0; {shape} has cols {}",
                    shape.cols
                )
            });
        }
        Ok(())
    }

    /// The WGSL source for `shape`'s kind and `dtype`.
    pub fn source(&self, shape: &ElementwiseShape, dtype: DType) -> String {
        let (unit, math, hsum) = match self.access {
            Access::Scalar => ("E".to_string(), "f32", "v"),
            Access::Vec4 => (
                "vec4<E>".to_string(),
                "vec4<f32>",
                "(v.x + v.y) + (v.z + v.w)",
            ),
        };
        let common = render(
            COMMON,
            &[
                ("ENABLE_F16", enable_line(dtype)),
                ("ELEM", dtype.wgsl().into()),
                ("UNIT", unit),
                ("MATH", math.into()),
                ("WIDTH", self.width().to_string()),
                ("WG", self.workgroup.to_string()),
            ],
        );
        let body = match shape.kind {
            ElementwiseKind::Add => ADD.to_string(),
            ElementwiseKind::SiluMul => SILU_MUL.to_string(),
            ElementwiseKind::Gelu => GELU.to_string(),
            ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm => {
                let template = if shape.kind == ElementwiseKind::RmsNorm {
                    RMSNORM
                } else {
                    LAYERNORM
                };
                let (reduce, builtins, ids) = if self.method == Method::Subgroup {
                    (
                        REDUCE_SUBGROUP,
                        SUBGROUP_BUILTINS,
                        "Ids(li, sg_lane, sg_id, n_sg)",
                    )
                } else {
                    (REDUCE_TREE, "", "Ids(li, 0u, 0u, 1u)")
                };
                render(
                    template,
                    &[
                        ("HSUM", hsum.into()),
                        ("REDUCE", reduce.into()),
                        ("SUBGROUP_BUILTINS", builtins.into()),
                        ("IDS", ids.into()),
                    ],
                )
            }
            ElementwiseKind::Rope => {
                let (trig, out) = match self.method {
                    Method::RopeInline => (TRIG_INLINE, 3),
                    _ => (TRIG_TABLE, 4),
                };
                render(
                    ROPE,
                    &[("OUT_BINDING", out.to_string()), ("TRIG", trig.into())],
                )
            }
        };
        format!("{common}\n{body}")
    }

    /// Build the program for `shape`: check limits, compile, upload `inputs` (and RoPE's
    /// tables), NaN-fill the output.
    pub fn prepare(
        &self,
        gpu: &Gpu,
        shape: &ElementwiseShape,
        dtype: DType,
        inputs: &ElementwiseInputs,
    ) -> Result<Program, PrepareError> {
        shape
            .validate()
            .map_err(|e| PrepareError::Failed(format!("invalid shape: {e}")))?;
        inputs.matches(shape, dtype).map_err(PrepareError::Failed)?;
        self.applies(shape).map_err(PrepareError::Unsupported)?;
        if dtype == DType::F16 && !gpu.has_f16() {
            return Err(PrepareError::Unsupported("adapter lacks SHADER_F16".into()));
        }
        if self.method == Method::Subgroup
            && !gpu.device.features().contains(wgpu::Features::SUBGROUP)
        {
            return Err(PrepareError::Unsupported("adapter lacks SUBGROUP".into()));
        }
        check_workgroup(gpu, self.workgroup, self.workgroup_bytes(shape.kind), "")?;
        let act_bytes = shape.len() * dtype.size();
        check_buffer(gpu, "activations", act_bytes)?;
        let workgroups = self.workgroups(shape);
        check_workgroups(gpu, workgroups)?;

        let label = format!("{} {} {shape} {dtype}", shape.kind, self.name());
        let pipeline = compile(gpu, &label, &self.source(shape, dtype), "main")?;

        let w = self.width();
        let params: [u32; 8] = [
            shape.rows,
            shape.cols,
            u32::try_from(self.units(shape)).expect("validated under 2^31 elements"),
            shape.cols / w,
            shape.head_dim,
            shape.start_pos,
            shape.seq_len.max(1),
            NORM_EPS.to_bits(),
        ];
        let uniforms = uniform_buffer(gpu, "elementwise params", bytemuck::bytes_of(&params));
        let mut keep = vec![uniforms];
        keep.push(storage_buffer(gpu, "x", inputs.x.bytes(), false));
        for t in [&inputs.y, &inputs.weight, &inputs.bias]
            .into_iter()
            .flatten()
        {
            keep.push(storage_buffer(gpu, "input", t.bytes(), false));
        }
        match self.method {
            Method::RopeTable => {
                let (cos, sin) = rope_tables(shape);
                check_buffer(gpu, "RoPE cos table", 4 * cos.len() as u64)?;
                keep.push(storage_buffer(
                    gpu,
                    "cos",
                    bytemuck::cast_slice(&cos),
                    false,
                ));
                keep.push(storage_buffer(
                    gpu,
                    "sin",
                    bytemuck::cast_slice(&sin),
                    false,
                ));
            }
            Method::RopeInline => {
                let freq = rope_split_frequencies(shape);
                keep.push(storage_buffer(
                    gpu,
                    "freq",
                    bytemuck::cast_slice(&freq),
                    false,
                ));
            }
            _ => {}
        }
        let output = output_buffer(gpu, "y", dtype, shape.len());
        let bind_group = {
            let mut all: Vec<&wgpu::Buffer> = keep.iter().collect();
            all.push(&output);
            bind(gpu, &pipeline, &all)
        };
        Ok(Program::single(
            Dispatch::new(pipeline, bind_group, workgroups),
            output,
            dtype,
            shape.len(),
            keep,
        ))
    }
}

const REDUCE_TREE: &str = "\
fn workgroup_sum(ids: Ids, v: f32) -> f32 {
    red[ids.li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
        if (ids.li < s) {
            red[ids.li] = red[ids.li] + red[ids.li + s];
        }
        workgroupBarrier();
    }
    let total = red[0];
    // Everyone has read the total before red is written again.
    workgroupBarrier();
    return total;
}";

const REDUCE_SUBGROUP: &str = "\
fn workgroup_sum(ids: Ids, v: f32) -> f32 {
    let partial = subgroupAdd(v);
    // n_sg is the same for the whole workgroup, so this exit keeps the barriers below in
    // uniform control flow.
    if (ids.n_sg == 1u) {
        return partial;
    }
    if (ids.sg_lane == 0u) {
        red[ids.sg_id] = partial;
    }
    workgroupBarrier();
    var total = 0.0;
    for (var k = 0u; k < ids.n_sg; k++) {
        total += red[k];
    }
    // Everyone has read the slots before they are written again.
    workgroupBarrier();
    return total;
}";

const SUBGROUP_BUILTINS: &str = "
    @builtin(subgroup_invocation_id) sg_lane: u32,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(num_subgroups) n_sg: u32,";

const TRIG_TABLE: &str = "\
@group(0) @binding(2) var<storage, read> cos_t: array<F>;
@group(0) @binding(3) var<storage, read> sin_t: array<F>;

// cos and sin of theta for sequence offset t and frequency unit j, from the host's tables.
fn cos_sin(t: u32, j: u32, hw: u32) -> CosSin {
    let k = t * hw + j;
    return CosSin(cos_t[k], sin_t[k]);
}";

const TRIG_INLINE: &str = "\
@group(0) @binding(2) var<storage, read> freq: array<F>;

const TWO_PI: f32 = 6.283185307179586;

// cos and sin of theta for position start_pos + t and frequency unit j. Each product of a
// 12-bit position part and a 12-bit frequency part is exact in f32, and fract() of an exact
// value is exact, so the angle in turns is reduced with only a few roundings of numbers
// below 2.
fn cos_sin(t: u32, j: u32, hw: u32) -> CosSin {
    let pos = p.start_pos + t;
    let ph = f32(pos & 0xfff000u);
    let pl = f32(pos & 0xfffu);
    let f_hi = freq[j];
    let f_mid = freq[hw + j];
    let f_lo = freq[2u * hw + j];
    var turns = fract(ph * f_hi) + fract(pl * f_hi);
    turns = fract(turns) + fract(ph * f_mid);
    turns = fract(turns) + fract(pl * f_mid);
    turns = fract(turns) + f32(pos) * f_lo;
    let theta = (turns - round(turns)) * TWO_PI;
    return CosSin(cos(theta), sin(theta));
}";

fn is_row_kind(kind: ElementwiseKind) -> bool {
    matches!(kind, ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm)
}

/// Whether the vec4 path applies: `cols % 4 == 0`, and for RoPE `head_dim % 8 == 0` (each
/// half head a whole number of vec4s).
pub fn vec4_fits(shape: &ElementwiseShape) -> bool {
    if shape.kind == ElementwiseKind::Rope {
        shape.head_dim.is_multiple_of(8) && shape.head_dim > 0
    } else {
        shape.cols.is_multiple_of(4)
    }
}

/// `groups` workgroups as (x, y, 1) with x at most [`MAX_GRID_X`]; x · y >= groups.
pub fn grid(groups: u64) -> [u32; 3] {
    let groups = groups.max(1);
    let x = groups.min(u64::from(MAX_GRID_X));
    let y = groups.div_ceil(x);
    [x as u32, u32::try_from(y).unwrap_or(u32::MAX), 1]
}

/// RoPE's angular frequency for pair `j` of a `head_dim` head: `base^(-2j / head_dim)`.
pub fn rope_frequency(j: u32, head_dim: u32) -> f64 {
    ROPE_BASE.powf(-2.0 * f64::from(j) / f64::from(head_dim))
}

/// cos and sin tables, f32 `[positions, head_dim / 2]`, computed in f64.
pub fn rope_tables(shape: &ElementwiseShape) -> (Vec<f32>, Vec<f32>) {
    let half = shape.head_dim / 2;
    let n = shape.positions() as usize * half as usize;
    let (mut cos, mut sin) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for t in 0..shape.positions() {
        let pos = shape.position(t) as f64;
        for j in 0..half {
            let theta = pos * rope_frequency(j, shape.head_dim);
            cos.push(theta.cos() as f32);
            sin.push(theta.sin() as f32);
        }
    }
    (cos, sin)
}

/// `v` rounded to `bits` significant bits (v positive and normal).
fn round_to_bits(v: f64, bits: i32) -> f64 {
    if v == 0.0 {
        return 0.0;
    }
    let e = ((v.abs().to_bits() >> 52) & 0x7ff) as i32 - 1023;
    let scale = 2f64.powi(bits - 1 - e);
    (v * scale).round() / scale
}

/// The inline kernel's frequencies in turns per position, `base^(-2j/d) / 2π`, as three
/// f32 blocks `[hi; mid; lo]` of `head_dim / 2`: hi and mid carry 12 significant bits each
/// (so their products with 12-bit parts of the position are exact), lo the remainder.
pub fn rope_split_frequencies(shape: &ElementwiseShape) -> Vec<f32> {
    let half = shape.head_dim / 2;
    let (mut hi, mut mid, mut lo) = (Vec::new(), Vec::new(), Vec::new());
    for j in 0..half {
        let f = rope_frequency(j, shape.head_dim) / (2.0 * std::f64::consts::PI);
        let h = round_to_bits(f, 12);
        let m = round_to_bits(f - h, 12);
        hi.push(h as f32);
        mid.push(m as f32);
        lo.push((f - h - m) as f32);
    }
    hi.extend(mid);
    hi.extend(lo);
    hi
}

/// Inputs of one elementwise op, in the storage type.
///
/// | kind | x | y | weight | bias |
/// |---|---|---|---|---|
/// | add | a | b | | |
/// | silu_mul | gate | up | | |
/// | gelu, rope | x | | | |
/// | rmsnorm | x | | w `[cols]` | |
/// | layernorm | x | | w `[cols]` | b `[cols]` |
#[derive(Debug, Clone)]
pub struct ElementwiseInputs {
    pub x: HostTensor,
    pub y: Option<HostTensor>,
    pub weight: Option<HostTensor>,
    pub bias: Option<HostTensor>,
}

impl ElementwiseInputs {
    /// Seeded values in ranges that exercise each op: activations in [-2, 2) (add, rope),
    /// gate in [-8, 8) and up in [-2, 2) (silu reaches its flat tail), x in [-6, 6) for
    /// gelu (both tails), norm inputs in [-1.5, 2.5) (a non-zero mean for layernorm) with
    /// gains in [0.5, 1.5) and biases in [-0.5, 0.5). The norms' last row (of two or more) is
    /// a thousandth that size: its mean square, about 2e-6, is under [`NORM_EPS`], so a
    /// kernel that drops eps or adds it outside the square root fails there; on rows of
    /// ordinary size eps moves the result by less than the tolerance.
    pub fn random(shape: &ElementwiseShape, dtype: DType, seed: u64) -> Self {
        let mut rng = crate::verify::Rng::new(seed);
        let n = shape.len();
        let cols = u64::from(shape.cols);
        let norm = matches!(
            shape.kind,
            ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm
        );
        let tiny_from = if norm && shape.rows >= 2 { n - cols } else { n };
        let mut tensor = |len: u64, scale: f32, offset: f32| {
            let mut i = 0;
            Some(HostTensor::generate(dtype, len, || {
                let v = rng.uniform() * scale + offset;
                // x only: gains and biases are `cols` long.
                let v = if len == n && i >= tiny_from {
                    v * 1e-3
                } else {
                    v
                };
                i += 1;
                v
            }))
        };
        let (x, y, weight, bias) = match shape.kind {
            ElementwiseKind::Add => (tensor(n, 2.0, 0.0), tensor(n, 2.0, 0.0), None, None),
            ElementwiseKind::SiluMul => (tensor(n, 8.0, 0.0), tensor(n, 2.0, 0.0), None, None),
            ElementwiseKind::Gelu => (tensor(n, 6.0, 0.0), None, None, None),
            ElementwiseKind::Rope => (tensor(n, 2.0, 0.0), None, None, None),
            ElementwiseKind::RmsNorm => (tensor(n, 2.0, 0.5), None, tensor(cols, 0.5, 1.0), None),
            ElementwiseKind::LayerNorm => (
                tensor(n, 2.0, 0.5),
                None,
                tensor(cols, 0.5, 1.0),
                tensor(cols, 0.5, 0.0),
            ),
        };
        ElementwiseInputs {
            x: x.expect("every kind has x"),
            y,
            weight,
            bias,
        }
    }

    /// Why these inputs do not fit `shape` at `dtype`, if they do not.
    pub fn matches(&self, shape: &ElementwiseShape, dtype: DType) -> Result<(), String> {
        let (n, cols) = (shape.len() as usize, shape.cols as usize);
        let (y, w, b) = match shape.kind {
            ElementwiseKind::Add | ElementwiseKind::SiluMul => (true, false, false),
            ElementwiseKind::RmsNorm => (false, true, false),
            ElementwiseKind::LayerNorm => (false, true, true),
            ElementwiseKind::Gelu | ElementwiseKind::Rope => (false, false, false),
        };
        let slots = [
            ("x", Some(&self.x), true, n),
            ("y", self.y.as_ref(), y, n),
            ("weight", self.weight.as_ref(), w, cols),
            ("bias", self.bias.as_ref(), b, cols),
        ];
        for (name, tensor, wanted, len) in slots {
            match (tensor, wanted) {
                (None, true) => return Err(format!("{} needs input {name}", shape.kind)),
                (Some(_), false) => return Err(format!("{} takes no input {name}", shape.kind)),
                (Some(t), true) => {
                    let t_dtype = match t {
                        HostTensor::F32(_) => DType::F32,
                        HostTensor::F16(_) => DType::F16,
                    };
                    if t.len() != len || t_dtype != dtype {
                        return Err(format!(
                            "input {name} has {} {t_dtype} elements; {} {shape} needs {len} {dtype}",
                            t.len(),
                            shape.kind
                        ));
                    }
                }
                (None, false) => {}
            }
        }
        Ok(())
    }
}

/// A program's output check, as the runner calls it.
pub type Check = Box<dyn Fn(&HostTensor) -> Verdict>;

/// Inputs (from `seed`), program and check for `shape` with `variant`.
pub fn prepare_checked(
    gpu: &Gpu,
    shape: &ElementwiseShape,
    variant: &ElementwiseVariant,
    dtype: DType,
    seed: u64,
) -> Result<(Program, Check), PrepareError> {
    let inputs = ElementwiseInputs::random(shape, dtype, seed);
    let program = variant.prepare(gpu, shape, dtype, &inputs)?;
    let shape = *shape;
    let check: Check =
        Box::new(move |out| crate::verify::elementwise::check(&shape, dtype, &inputs, out, seed));
    Ok((program, check))
}

/// Program and check for an elementwise model op with [`ElementwiseVariant::default_for`]
/// its shape. A matmul or attention op is a `Failed` error. RoPE ops get the head size and
/// positions of [`ElementwiseShape::from_op`].
pub fn prepare_op(
    gpu: &Gpu,
    op: &Op,
    dtype: DType,
    seed: u64,
) -> Result<(Program, Check), PrepareError> {
    let shape = op_shape(op)?;
    prepare_checked(
        gpu,
        &shape,
        &ElementwiseVariant::default_for(&shape),
        dtype,
        seed,
    )
}

/// [`prepare_op`] with a chosen variant (one of [`ElementwiseVariant::all`] of the op's
/// kind), for runners that time every variant and keep the fastest verified one.
pub fn prepare_op_with(
    gpu: &Gpu,
    op: &Op,
    variant: &ElementwiseVariant,
    dtype: DType,
    seed: u64,
) -> Result<(Program, Check), PrepareError> {
    prepare_checked(gpu, &op_shape(op)?, variant, dtype, seed)
}

fn op_shape(op: &Op) -> Result<ElementwiseShape, PrepareError> {
    ElementwiseShape::from_op(op).ok_or_else(|| {
        PrepareError::Failed(format!(
            "{} ({}) is not an elementwise op",
            op.name(),
            op.kernel()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [ElementwiseKind; 6] = [
        ElementwiseKind::RmsNorm,
        ElementwiseKind::LayerNorm,
        ElementwiseKind::Rope,
        ElementwiseKind::SiluMul,
        ElementwiseKind::Gelu,
        ElementwiseKind::Add,
    ];

    fn shape(kind: ElementwiseKind, rows: u32, cols: u32) -> ElementwiseShape {
        if kind == ElementwiseKind::Rope {
            ElementwiseShape::rope(rows, cols, 16).at_positions(3, 5)
        } else {
            ElementwiseShape::new(kind, rows, cols)
        }
    }

    #[test]
    fn names_are_unique_per_kind() {
        for kind in KINDS {
            let names: std::collections::BTreeSet<String> = ElementwiseVariant::all(kind)
                .iter()
                .map(|v| v.name())
                .collect();
            assert_eq!(names.len(), ElementwiseVariant::all(kind).len(), "{kind}");
        }
        assert_eq!(
            ElementwiseVariant::new(Method::RopeInline, Access::Vec4, 256).name(),
            "vec4_inline_wg256"
        );
    }

    #[test]
    fn every_variant_renders_for_every_kind_and_dtype() {
        for kind in KINDS {
            for v in ElementwiseVariant::all(kind) {
                for dtype in [DType::F32, DType::F16] {
                    let s = shape(kind, 3, 64);
                    assert!(v.applies(&s).is_ok(), "{kind} {}", v.name());
                    let src = v.source(&s, dtype);
                    assert!(!src.contains("{{"), "{kind} {}", v.name());
                    assert_eq!(
                        src.lines().any(|l| l.trim() == "enable f16;"),
                        dtype == DType::F16
                    );
                }
            }
        }
    }

    #[test]
    fn vec4_needs_aligned_rows_and_heads() {
        let v = ElementwiseVariant::new(Method::Map, Access::Vec4, 256);
        assert!(v
            .applies(&ElementwiseShape::new(ElementwiseKind::Add, 3, 10))
            .unwrap_err()
            .contains("cols % 4"));
        let r = ElementwiseVariant::new(Method::RopeTable, Access::Vec4, 256);
        assert!(r.applies(&ElementwiseShape::rope(2, 12, 4)).is_err());
        assert!(r.applies(&ElementwiseShape::rope(2, 16, 8)).is_ok());
        // A rope variant is not an add variant and vice versa.
        assert!(r
            .applies(&ElementwiseShape::new(ElementwiseKind::Add, 3, 16))
            .is_err());
        assert!(v.applies(&ElementwiseShape::rope(2, 16, 8)).is_err());
    }

    #[test]
    fn grid_covers_every_group_within_the_limit() {
        assert_eq!(grid(1), [1, 1, 1]);
        assert_eq!(grid(65535), [65535, 1, 1]);
        assert_eq!(grid(65536), [65535, 2, 1]);
        let [x, y, _] = grid(10_000_000);
        assert!(u64::from(x) * u64::from(y) >= 10_000_000);
        assert!(u64::from(x) * u64::from(y - 1) < 10_000_000);
        // A 2^31-element add at 64 invocations still fits the y limit.
        let v = ElementwiseVariant::new(Method::Map, Access::Scalar, 64);
        let big = ElementwiseShape::new(ElementwiseKind::Add, 1 << 16, 1 << 15);
        assert!(v.workgroups(&big)[1] <= MAX_GRID_X);
    }

    #[test]
    fn units_and_groups_per_kind() {
        let t = ElementwiseVariant::new(Method::Tree, Access::Vec4, 256);
        let norm = ElementwiseShape::new(ElementwiseKind::RmsNorm, 70_000, 8);
        assert_eq!(t.units(&norm), 70_000);
        assert_eq!(t.workgroups(&norm), [65535, 2, 1]);
        let v = ElementwiseVariant::new(Method::Map, Access::Vec4, 256);
        let add = ElementwiseShape::new(ElementwiseKind::Add, 5, 1028);
        assert_eq!(v.units(&add), 5 * 257);
        assert_eq!(v.workgroups(&add), [6, 1, 1]);
        let rope = ElementwiseShape::rope(3, 48, 16);
        let r = ElementwiseVariant::new(Method::RopeTable, Access::Vec4, 256);
        assert_eq!(r.units(&rope), 3 * 48 / 8);
    }

    #[test]
    fn shapes_validate_and_print() {
        let s = ElementwiseShape::rope(4, 64, 16).at_positions(10, 2);
        assert_eq!(
            s.to_string(),
            "rows=4,cols=64,head_dim=16,start_pos=10,seq_len=2"
        );
        assert_eq!(s.position(3), 11);
        assert!(s.validate().is_ok());
        assert!(ElementwiseShape::rope(4, 60, 16).validate().is_err());
        assert!(ElementwiseShape::rope(4, 63, 63).validate().is_err());
        assert!(ElementwiseShape::rope(4, 64, 16)
            .at_positions(1 << 24, 1)
            .validate()
            .is_err());
        assert!(ElementwiseShape::new(ElementwiseKind::Add, 0, 3)
            .validate()
            .is_err());
        assert_eq!(
            ElementwiseShape::new(ElementwiseKind::Gelu, 2, 3).to_string(),
            "rows=2,cols=3"
        );
        assert_eq!(default_head_dim(2560), 128);
        assert_eq!(default_head_dim(12 * 64 + 4 * 64), 128);
        assert_eq!(default_head_dim(6), 2);
    }

    #[test]
    fn shape_bytes_and_flops_are_the_model_ops() {
        let op = Op::Elementwise {
            name: "mlp_norm",
            kind: ElementwiseKind::RmsNorm,
            rows: 7,
            cols: 4096,
        };
        let s = ElementwiseShape::from_op(&op).unwrap();
        assert_eq!(s.bytes(DType::F16), op.bytes(DType::F16));
        assert_eq!(s.flops(), op.flops());
        assert!(ElementwiseShape::from_op(&Op::Matmul {
            name: "q",
            shape: crate::shape::MatmulShape::new(1, 1, 1)
        })
        .is_none());
    }

    #[test]
    fn split_frequencies_sum_to_the_frequency_and_multiply_exactly() {
        let s = ElementwiseShape::rope(1, 128, 128);
        let f = rope_split_frequencies(&s);
        assert_eq!(f.len(), 3 * 64);
        for j in 0..64 {
            let (h, m, l) = (f[j] as f64, f[64 + j] as f64, f[128 + j] as f64);
            let want = rope_frequency(j as u32, 128) / (2.0 * std::f64::consts::PI);
            assert!(((h + m + l) - want).abs() <= want * 1e-14, "j={j}");
            // 12 significant bits: times any 12-bit integer (shifted) is exact in f32.
            for part in [h, m] {
                let p = 4095.0 * 4096.0;
                assert_eq!((part as f32 * p as f32) as f64, part * p);
                assert_eq!((part as f32 * 4095.0) as f64, part * 4095.0);
            }
        }
    }

    #[test]
    fn tables_hold_cos_and_sin_of_each_position() {
        let s = ElementwiseShape::rope(6, 8, 8).at_positions(100, 3);
        let (cos, sin) = rope_tables(&s);
        assert_eq!(cos.len(), 3 * 4);
        // Row t = 2 is position 102; pair j = 1 has frequency 10000^(-1/4) = 0.1.
        let theta = 102.0 * 0.1f64;
        assert!((cos[2 * 4 + 1] as f64 - theta.cos()).abs() < 1e-7);
        assert!((sin[2 * 4 + 1] as f64 - theta.sin()).abs() < 1e-7);
    }

    #[test]
    fn random_inputs_match_their_shape() {
        for kind in KINDS {
            let s = shape(kind, 3, 32);
            for dtype in [DType::F32, DType::F16] {
                let inputs = ElementwiseInputs::random(&s, dtype, 1);
                assert_eq!(inputs.matches(&s, dtype), Ok(()), "{kind} {dtype}");
            }
        }
        let add = ElementwiseShape::new(ElementwiseKind::Add, 2, 2);
        let mut inputs = ElementwiseInputs::random(&add, DType::F32, 1);
        assert!(inputs.matches(&add, DType::F16).is_err());
        inputs.y = None;
        assert!(inputs
            .matches(&add, DType::F32)
            .unwrap_err()
            .contains("needs input y"));
    }

    #[test]
    fn every_variant_fits_webgpu_default_limits() {
        for kind in KINDS {
            for v in ElementwiseVariant::all(kind) {
                assert!(v.workgroup <= 256);
                assert!(v.workgroup_bytes(kind) <= 16384);
            }
        }
    }
}
