//! Model presets (`data/models.csv`): the architecture numbers of named transformers, with
//! the embedded default file optionally extended or replaced by a user file.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::names;
use crate::catalog::table::{self, Schema, Source};
use crate::error::{Error, Result};
use crate::shape::AttentionShape;

/// The embedded default presets.
pub const DEFAULT_MODELS_CSV: &str = include_str!("../../data/models.csv");
/// How errors name the embedded file.
pub const DEFAULT_MODELS_LABEL: &str = "<built-in> data/models.csv";

/// Feed-forward block type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mlp {
    /// down(silu(gate(x)) * up(x)): Llama, Mistral, Qwen.
    Swiglu,
    /// down(gelu(up(x))): GPT-2.
    Gelu,
}

/// Normalization layer type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    RmsNorm,
    LayerNorm,
}

/// How positions enter the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PositionEmbedding {
    /// Rotary embeddings applied to Q and K in every layer.
    Rope,
    /// A learned table added to the token embeddings once per pass (GPT-2).
    Learned,
}

/// One model's architecture.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelPreset {
    pub name: String,
    pub family: String,
    pub hidden_size: u32,
    pub num_layers: u32,
    pub num_attention_heads: u32,
    pub num_kv_heads: u32,
    pub head_dim: u32,
    pub intermediate_size: u32,
    pub mlp: Mlp,
    pub norm: Norm,
    pub position_embedding: PositionEmbedding,
    /// Longest context the model supports (max_position_embeddings).
    pub max_context: u32,
    /// Sliding-window attention span (Mistral-7B v0.1: 4096); None for full attention.
    pub sliding_window: Option<u32>,
    pub vocab_size: u32,
    /// LM head shares the token-embedding matrix.
    pub tied_embeddings: bool,
    /// Parameter count published with the model, for cross-checks; not used in formulas.
    pub params_billion: Option<f64>,
    pub source: String,
}

impl ModelPreset {
    /// Width of the concatenated query heads (hq x head_dim).
    pub fn q_dim(&self) -> u64 {
        u64::from(self.num_attention_heads) * u64::from(self.head_dim)
    }

    /// Width of the key (or value) heads (hkv x head_dim).
    pub fn kv_dim(&self) -> u64 {
        u64::from(self.num_kv_heads) * u64::from(self.head_dim)
    }

    /// Weights of the matmuls of one layer (Q, K, V, O and the MLP), biases excluded.
    pub fn layer_matmul_params(&self) -> u64 {
        let h = u64::from(self.hidden_size);
        let i = u64::from(self.intermediate_size);
        let attn = h * self.q_dim() + 2 * h * self.kv_dim() + self.q_dim() * h;
        let mlp = match self.mlp {
            Mlp::Swiglu => 3 * h * i,
            Mlp::Gelu => 2 * h * i,
        };
        attn + mlp
    }

    /// Weights of one norm: a scale, plus a bias for LayerNorm.
    pub fn norm_params(&self) -> u64 {
        let per_element = match self.norm {
            Norm::RmsNorm => 1,
            Norm::LayerNorm => 2,
        };
        per_element * u64::from(self.hidden_size)
    }

    /// Token-embedding table (plus GPT-2's learned position table).
    pub fn embedding_params(&self) -> u64 {
        let h = u64::from(self.hidden_size);
        let pos = match self.position_embedding {
            PositionEmbedding::Learned => u64::from(self.max_context) * h,
            PositionEmbedding::Rope => 0,
        };
        u64::from(self.vocab_size) * h + pos
    }

    /// LM-head weights that are not the embedding table (0 when tied).
    pub fn lm_head_params(&self) -> u64 {
        if self.tied_embeddings {
            0
        } else {
            u64::from(self.vocab_size) * u64::from(self.hidden_size)
        }
    }

    /// Every parameter modelled: layers, final norm, embeddings, untied LM head. Linear-layer
    /// biases (GPT-2, Qwen's q/k/v) are not modelled; they are under 0.1% of the weights.
    pub fn total_params(&self) -> u64 {
        // Two norms per layer (before attention, before the MLP) and one final norm.
        let layers =
            u64::from(self.num_layers) * (self.layer_matmul_params() + 2 * self.norm_params());
        layers + self.norm_params() + self.embedding_params() + self.lm_head_params()
    }
}

impl fmt::Display for ModelPreset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The set of known presets.
#[derive(Debug, Clone)]
pub struct ModelPresets {
    presets: Vec<ModelPreset>,
}

const SCHEMA: Schema = Schema {
    required: &[
        "model",
        "family",
        "hidden_size",
        "num_layers",
        "num_attention_heads",
        "num_kv_heads",
        "head_dim",
        "intermediate_size",
        "mlp",
        "norm",
        "position_embedding",
        "max_context",
        "vocab_size",
        "tied_embeddings",
        "source",
    ],
    optional: &["sliding_window", "params_billion"],
    what: "model preset file",
};

impl ModelPresets {
    /// The embedded defaults.
    pub fn load_default() -> Result<Self> {
        Self::from_file(None, false)
    }

    /// The defaults with a user file applied: with `replace` the file replaces them, otherwise
    /// it extends them and a preset with the same name overrides the default one.
    pub fn from_file(path: Option<&Path>, replace: bool) -> Result<Self> {
        let user = path
            .map(|p| {
                std::fs::read(p)
                    .map_err(|e| Error::io("read", PathBuf::from(p), e))
                    .map(|b| (p, b))
            })
            .transpose()?;
        Self::from_sources(
            user.as_ref().map(|(p, b)| Source { path: p, bytes: b }),
            replace,
        )
    }

    pub(crate) fn from_sources(user: Option<Source<'_>>, replace: bool) -> Result<Self> {
        let default = Source {
            path: Path::new(DEFAULT_MODELS_LABEL),
            bytes: DEFAULT_MODELS_CSV.as_bytes(),
        };
        let presets = match user {
            Some(src) if replace => parse(src)?,
            Some(src) => {
                let user = parse(src)?;
                let mut base = parse(default)?;
                base.retain(|m| !user.iter().any(|u| u.name.eq_ignore_ascii_case(&m.name)));
                base.extend(user);
                base
            }
            None => parse(default)?,
        };
        Ok(ModelPresets { presets })
    }

    pub fn all(&self) -> &[ModelPreset] {
        &self.presets
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.presets.iter().map(|m| m.name.as_str())
    }

    /// The preset with this name (case-insensitive), or a bad-input error naming the closest.
    pub fn get(&self, name: &str) -> Result<&ModelPreset> {
        self.presets
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(name.trim()))
            .ok_or_else(|| {
                Error::bad_input(
                    format!("unknown model `{name}`"),
                    format!(
                        "{} (or add it in a user models file)",
                        names::suggestion(name, self.presets.iter().map(|m| m.name.as_str()))
                    ),
                )
            })
    }
}

pub(crate) fn parse(src: Source<'_>) -> Result<Vec<ModelPreset>> {
    let mut out: Vec<ModelPreset> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for rec in table::read(src, &SCHEMA)? {
        let name = rec.required("model", "the preset name, e.g. llama-3.1-8b")?;
        if let Some(prev) = out.iter().position(|m| m.name.eq_ignore_ascii_case(&name)) {
            return Err(rec.error(
                "model",
                format!(
                    "model `{name}` is listed twice (first on line {})",
                    lines[prev]
                ),
                "Keep one row per model",
            ));
        }
        let mlp = match rec.choice("mlp", &["swiglu", "gelu"])?.as_str() {
            "swiglu" => Mlp::Swiglu,
            _ => Mlp::Gelu,
        };
        let norm = match rec.choice("norm", &["rmsnorm", "layernorm"])?.as_str() {
            "rmsnorm" => Norm::RmsNorm,
            _ => Norm::LayerNorm,
        };
        let position_embedding = match rec
            .choice("position_embedding", &["rope", "learned"])?
            .as_str()
        {
            "rope" => PositionEmbedding::Rope,
            _ => PositionEmbedding::Learned,
        };
        let m = ModelPreset {
            name,
            family: rec.required("family", "the architecture family, e.g. llama")?,
            hidden_size: rec.u32("hidden_size", 1, "the hidden size")?,
            num_layers: rec.u32("num_layers", 1, "the number of transformer layers")?,
            num_attention_heads: rec.u32("num_attention_heads", 1, "the number of query heads")?,
            num_kv_heads: rec.u32("num_kv_heads", 1, "the number of key/value heads")?,
            head_dim: rec.u32("head_dim", 1, "the per-head dimension")?,
            intermediate_size: rec.u32("intermediate_size", 1, "the MLP hidden size")?,
            mlp,
            norm,
            position_embedding,
            max_context: rec.u32(
                "max_context",
                1,
                "the longest supported context (max_position_embeddings)",
            )?,
            sliding_window: rec.opt_u32(
                "sliding_window",
                1,
                "the sliding-window span in tokens",
            )?,
            vocab_size: rec.u32("vocab_size", 1, "the vocabulary size")?,
            tied_embeddings: rec.bool("tied_embeddings")?,
            params_billion: rec.positive_f64(
                "params_billion",
                "the published parameter count in billions",
            )?,
            source: rec.required(
                "source",
                "where the numbers come from (e.g. the config.json)",
            )?,
        };
        if !m.num_attention_heads.is_multiple_of(m.num_kv_heads) {
            return Err(rec.error(
                "num_kv_heads",
                format!(
                    "num_attention_heads {} is not a multiple of num_kv_heads {}",
                    m.num_attention_heads, m.num_kv_heads
                ),
                "Grouped-query attention needs the query heads to divide evenly among the KV heads",
            ));
        }
        check_sizes(&rec, &m)?;
        lines.push(rec.line());
        out.push(m);
    }
    Ok(out)
}

/// More layers than this is a typo: published models have at most a few hundred.
pub const MAX_LAYERS: u32 = 10_000;

/// Sizes the kernels can run: a head dim the attention kernels are generated for, every
/// weight matrix within the u32 indexing of the kernels, a layer count that is not a typo.
fn check_sizes(rec: &table::Record<'_>, m: &ModelPreset) -> Result<()> {
    if !AttentionShape::HEAD_DIMS.contains(&m.head_dim) {
        return Err(rec.error(
            "head_dim",
            format!(
                "head_dim {} is not one the attention kernels are generated for",
                m.head_dim
            ),
            "Use a head_dim of 64, 80, 96, 128 or 256 (hidden_size need not equal heads x head_dim)",
        ));
    }
    if m.num_layers > MAX_LAYERS {
        return Err(rec.error(
            "num_layers",
            format!("num_layers {} is implausibly large", m.num_layers),
            format!("Give the transformer's layer count, at most {MAX_LAYERS}"),
        ));
    }
    let h = u64::from(m.hidden_size);
    for (col, name, other) in [
        ("num_attention_heads", "the query projection", m.q_dim()),
        ("num_kv_heads", "the key/value projections", m.kv_dim()),
        (
            "intermediate_size",
            "the MLP projections",
            u64::from(m.intermediate_size),
        ),
        ("vocab_size", "the LM head", u64::from(m.vocab_size)),
        (
            "max_context",
            "the learned position table",
            match m.position_embedding {
                PositionEmbedding::Learned => u64::from(m.max_context),
                PositionEmbedding::Rope => 0,
            },
        ),
    ] {
        let elements = u128::from(h) * u128::from(other);
        if elements > u128::from(u32::MAX) {
            let col = if h > other { "hidden_size" } else { col };
            return Err(rec.error(
                col,
                format!(
                    "{name} would be a {h} x {other} weight matrix, {elements} elements: more than the 2^32 that the kernels' u32 indexing reaches"
                ),
                "Check hidden_size, the head counts, head_dim, intermediate_size and vocab_size for a typo",
            ));
        }
    }
    Ok(())
}
