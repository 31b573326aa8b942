//! The op list of one transformer layer, and of the once-per-pass head, at exact shapes.
//!
//! Conventions:
//! - Activations are `[tokens, features]` row-major, tokens = batch x tokens per sequence.
//! - Weights are stored `[out, in]` like PyTorch's `nn.Linear`, so `x · Wᵀ` is a
//!   [`MatmulShape`] with `m = tokens, n = out, k = in, transpose_b = true`.
//! - Elementwise FLOPs count each add, multiply, divide and transcendental (exp, tanh, rsqrt)
//!   as one FLOP; bytes are the compulsory traffic (each input read once, output written once).
//! - Linear-layer biases (GPT-2, Qwen q/k/v) are not modelled: under 0.1% of the FLOPs.
//! - Sliding-window attention (Mistral-7B v0.1) caps decode's keys at the window; a prefill
//!   longer than the window is counted as full causal attention, an overestimate.

use std::fmt;

use crate::error::{Error, Result};
use crate::model::presets::{Mlp, ModelPreset, Norm, PositionEmbedding};
use crate::model::Phase;
use crate::shape::{AttentionShape, DType, MatmulShape};

/// The elementwise (and row-reduction) ops between the matmuls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementwiseKind {
    /// y = x / sqrt(mean(x²) + eps) · g, per row.
    RmsNorm,
    /// y = (x - mean) / sqrt(var + eps) · g + b, per row.
    LayerNorm,
    /// Rotary position embedding on the query and key heads (cols = (hq + hkv) · head_dim).
    Rope,
    /// silu(gate) · up, SwiGLU's gating (rows x intermediate; reads gate and up).
    SiluMul,
    /// GELU (tanh form), GPT-2's activation.
    Gelu,
    /// Residual add (or GPT-2's position-embedding add): y = a + b.
    Add,
}

impl ElementwiseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ElementwiseKind::RmsNorm => "rmsnorm",
            ElementwiseKind::LayerNorm => "layernorm",
            ElementwiseKind::Rope => "rope",
            ElementwiseKind::SiluMul => "silu_mul",
            ElementwiseKind::Gelu => "gelu",
            ElementwiseKind::Add => "add",
        }
    }

    /// FLOPs per output element (see the module doc for what counts as one).
    pub fn flops_per_element(self) -> u64 {
        match self {
            // square, accumulate, scale by rsqrt, scale by weight
            ElementwiseKind::RmsNorm => 4,
            // mean accumulate, subtract, square, var accumulate, scale by rstd, weight, bias
            ElementwiseKind::LayerNorm => 7,
            // per pair (x0, x1): 4 multiplies + 2 adds -> 3 per element
            ElementwiseKind::Rope => 3,
            // neg, exp, add 1, divide (silu), multiply by up
            ElementwiseKind::SiluMul => 5,
            // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))): 9 operations
            ElementwiseKind::Gelu => 9,
            ElementwiseKind::Add => 1,
        }
    }

    /// Compulsory bytes for `rows x cols` elements of `size` bytes.
    fn bytes(self, rows: u64, cols: u64, size: u64) -> u64 {
        let n = rows * cols;
        let elems = match self {
            // read x, write y, read the weight row once
            ElementwiseKind::RmsNorm => 2 * n + cols,
            // ... plus the bias row
            ElementwiseKind::LayerNorm => 2 * n + 2 * cols,
            // in-place read and write; cos/sin tables (or their on-the-fly computation) not counted
            ElementwiseKind::Rope => 2 * n,
            // read gate and up, write out
            ElementwiseKind::SiluMul => 3 * n,
            ElementwiseKind::Gelu => 2 * n,
            // read a and b, write y
            ElementwiseKind::Add => 3 * n,
        };
        elems * size
    }
}

impl fmt::Display for ElementwiseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One op of a layer or of the head, with its exact shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Matmul {
        name: &'static str,
        shape: MatmulShape,
    },
    Attention {
        name: &'static str,
        shape: AttentionShape,
    },
    Elementwise {
        name: &'static str,
        kind: ElementwiseKind,
        rows: u32,
        cols: u32,
    },
}

impl Op {
    /// The op's role in the layer, e.g. `q_proj`, `attention`, `mlp_norm`.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Matmul { name, .. } | Op::Attention { name, .. } | Op::Elementwise { name, .. } => {
                name
            }
        }
    }

    /// The kernel family that runs it: `matmul`, `attention` or the elementwise kind.
    pub fn kernel(&self) -> &'static str {
        match self {
            Op::Matmul { .. } => "matmul",
            Op::Attention { .. } => "attention",
            Op::Elementwise { kind, .. } => kind.as_str(),
        }
    }

    /// The `shape` column text (`m=..,n=..,k=..`; attention spec; `rows=..,cols=..`).
    pub fn shape_text(&self) -> String {
        match self {
            Op::Matmul { shape, .. } => shape.to_string(),
            Op::Attention { shape, .. } => shape.to_string(),
            Op::Elementwise { rows, cols, .. } => format!("rows={rows},cols={cols}"),
        }
    }

    /// FLOPs: 2·M·N·K for matmuls, the FlashAttention convention for attention (causal halves
    /// the square case), per-element counts for the rest.
    pub fn flops(&self) -> u64 {
        match self {
            Op::Matmul { shape, .. } => shape.flops(),
            Op::Attention { shape, .. } => shape.flops(),
            Op::Elementwise {
                kind, rows, cols, ..
            } => kind.flops_per_element() * u64::from(*rows) * u64::from(*cols),
        }
    }

    /// Compulsory memory traffic in bytes at `dtype`.
    pub fn bytes(&self, dtype: DType) -> u64 {
        match self {
            Op::Matmul { shape, .. } => shape.bytes(dtype),
            Op::Attention { shape, .. } => shape.bytes(dtype),
            Op::Elementwise {
                kind, rows, cols, ..
            } => kind.bytes(u64::from(*rows), u64::from(*cols), dtype.size()),
        }
    }
}

/// A u64 dimension as u32, or a bad-input error (kernels index with u32).
fn dim(value: u64, what: &str) -> Result<u32> {
    u32::try_from(value).map_err(|_| {
        Error::bad_input(
            format!(
                "{what} is {value}, more than the {} a kernel dimension can hold",
                u32::MAX
            ),
            "Use a smaller batch or sequence length",
        )
    })
}

/// `x · Wᵀ` with W stored [out, in].
fn linear(name: &'static str, tokens: u32, out: u64, inp: u64) -> Result<Op> {
    let shape = MatmulShape::new(tokens, dim(out, name)?, dim(inp, name)?).transposed_b();
    // Activations, weights and outputs within the kernels' u32 indexing.
    shape.validate().map_err(|e| match e {
        Error::BadInput { what, fix } => Error::bad_input(format!("{name}: {what}"), fix),
        other => other,
    })?;
    Ok(Op::Matmul { name, shape })
}

fn elementwise(name: &'static str, kind: ElementwiseKind, rows: u32, cols: u64) -> Result<Op> {
    Ok(Op::Elementwise {
        name,
        kind,
        rows,
        cols: dim(cols, name)?,
    })
}

fn norm_kind(preset: &ModelPreset) -> ElementwiseKind {
    match preset.norm {
        Norm::RmsNorm => ElementwiseKind::RmsNorm,
        Norm::LayerNorm => ElementwiseKind::LayerNorm,
    }
}

/// The ops of ONE transformer layer (all layers have the same shapes), in execution order:
/// attn_norm, q/k/v projections, RoPE (not for learned positions), attention, o_proj,
/// residual add, mlp_norm, the MLP (SwiGLU: gate, up, silu·mul, down; GELU: up, gelu, down),
/// residual add.
///
/// Prefill runs `batch x prompt_len` tokens with causal attention over the prompt
/// (`sq = skv = prompt_len`); decode runs one token per sequence attending to `context_len`
/// keys (the cached ones plus itself), capped at the sliding window where the model has one.
pub fn layer_ops(preset: &ModelPreset, phase: Phase) -> Result<Vec<Op>> {
    phase.check(preset)?;
    let t = phase.tokens_per_pass();
    let h = u64::from(preset.hidden_size);
    let i = u64::from(preset.intermediate_size);
    let (sq, skv) = match phase {
        Phase::Prefill { prompt_len, .. } => (prompt_len, prompt_len),
        Phase::Decode { context_len, .. } => (
            1,
            preset
                .sliding_window
                .map_or(context_len, |w| context_len.min(w)),
        ),
    };
    let attention = AttentionShape {
        b: phase.batch(),
        hq: preset.num_attention_heads,
        hkv: preset.num_kv_heads,
        sq,
        skv,
        d: preset.head_dim,
        causal: true,
    };

    let mut ops = vec![
        elementwise("attn_norm", norm_kind(preset), t, h)?,
        linear("q_proj", t, preset.q_dim(), h)?,
        linear("k_proj", t, preset.kv_dim(), h)?,
        linear("v_proj", t, preset.kv_dim(), h)?,
    ];
    if preset.position_embedding == PositionEmbedding::Rope {
        ops.push(elementwise(
            "rope",
            ElementwiseKind::Rope,
            t,
            preset.q_dim() + preset.kv_dim(),
        )?);
    }
    ops.extend([
        Op::Attention {
            name: "attention",
            shape: attention,
        },
        linear("o_proj", t, h, preset.q_dim())?,
        elementwise("attn_residual", ElementwiseKind::Add, t, h)?,
        elementwise("mlp_norm", norm_kind(preset), t, h)?,
    ]);
    match preset.mlp {
        Mlp::Swiglu => ops.extend([
            linear("gate_proj", t, i, h)?,
            linear("up_proj", t, i, h)?,
            elementwise("silu_mul", ElementwiseKind::SiluMul, t, i)?,
        ]),
        Mlp::Gelu => ops.extend([
            linear("up_proj", t, i, h)?,
            elementwise("gelu", ElementwiseKind::Gelu, t, i)?,
        ]),
    }
    ops.extend([
        linear("down_proj", t, h, i)?,
        elementwise("mlp_residual", ElementwiseKind::Add, t, h)?,
    ]);
    Ok(ops)
}

/// The ops run once per forward pass outside the layers: GPT-2's position-embedding add
/// (learned positions), the final norm over every token, and the LM head.
///
/// Convention: the LM head runs on the LAST token of each sequence only (m = batch), for
/// prefill as for decode, because serving engines compute logits only for the positions they
/// sample from; the token-embedding lookup is a gather with no FLOPs and is not listed.
pub fn head_ops(preset: &ModelPreset, phase: Phase) -> Result<Vec<Op>> {
    phase.check(preset)?;
    let t = phase.tokens_per_pass();
    let h = u64::from(preset.hidden_size);
    let mut ops = Vec::new();
    if preset.position_embedding == PositionEmbedding::Learned {
        ops.push(elementwise(
            "position_embedding_add",
            ElementwiseKind::Add,
            t,
            h,
        )?);
    }
    ops.push(elementwise("final_norm", norm_kind(preset), t, h)?);
    ops.push(linear(
        "lm_head",
        phase.batch(),
        u64::from(preset.vocab_size),
        h,
    )?);
    Ok(ops)
}

/// FLOPs of one forward pass: layers x (one layer) + head.
pub fn pass_flops(preset: &ModelPreset, phase: Phase) -> Result<u64> {
    let layer: u64 = layer_ops(preset, phase)?.iter().map(Op::flops).sum();
    let head: u64 = head_ops(preset, phase)?.iter().map(Op::flops).sum();
    // Saturating: a user preset's layer count times huge shapes must not overflow (or panic).
    Ok(u64::from(preset.num_layers)
        .saturating_mul(layer)
        .saturating_add(head))
}

/// Compulsory bytes of one forward pass at `dtype`: layers x (one layer) + head.
pub fn pass_bytes(preset: &ModelPreset, phase: Phase, dtype: DType) -> Result<u64> {
    let layer: u64 = layer_ops(preset, phase)?
        .iter()
        .map(|o| o.bytes(dtype))
        .sum();
    let head: u64 = head_ops(preset, phase)?
        .iter()
        .map(|o| o.bytes(dtype))
        .sum();
    Ok(u64::from(preset.num_layers)
        .saturating_mul(layer)
        .saturating_add(head))
}

/// Bytes of all weights at `dtype` ([`ModelPreset::total_params`]), for the "does the model
/// fit in this adapter's memory" check.
pub fn weight_bytes(preset: &ModelPreset, dtype: DType) -> u64 {
    preset.total_params().saturating_mul(dtype.size())
}

/// Bytes of the K and V cache for `batch` sequences of `context_len` tokens at `dtype`
/// (2 x layers x batch x cached tokens x hkv x head_dim; a sliding window caps the tokens).
pub fn kv_cache_bytes(preset: &ModelPreset, batch: u32, context_len: u32, dtype: DType) -> u64 {
    let cached = preset
        .sliding_window
        .map_or(context_len, |w| context_len.min(w));
    [
        u64::from(preset.num_layers),
        u64::from(batch),
        u64::from(cached),
        preset.kv_dim(),
        dtype.size(),
    ]
    .into_iter()
    .fold(2u64, u64::saturating_mul)
}
