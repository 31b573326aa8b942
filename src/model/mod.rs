//! Transformer presets and the op list of one layer for prefill and decode.
//!
//! Owns `data/models.csv` ([`ModelPresets`], [`ModelPreset`]), the [`Phase`] a pass runs in,
//! and the exact-shape op lists ([`layer_ops`], [`head_ops`]) that the suite measures and
//! composes into token rates: a forward pass is `num_layers x (one layer) + head`.

mod ops;
mod presets;

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

pub use ops::{
    head_ops, kv_cache_bytes, layer_ops, pass_bytes, pass_flops, weight_bytes, ElementwiseKind, Op,
};
pub use presets::{
    Mlp, ModelPreset, ModelPresets, Norm, PositionEmbedding, DEFAULT_MODELS_CSV,
    DEFAULT_MODELS_LABEL,
};

use crate::error::{Error, Result};

/// Which pass of inference a forward pass is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Process `batch` prompts of `prompt_len` tokens each (causal attention over the prompt).
    Prefill { batch: u32, prompt_len: u32 },
    /// Generate one token for each of `batch` sequences, each attending to `context_len` keys
    /// (the cached tokens plus the new one).
    Decode { batch: u32, context_len: u32 },
}

impl Phase {
    pub fn kind(&self) -> PhaseKind {
        match self {
            Phase::Prefill { .. } => PhaseKind::Prefill,
            Phase::Decode { .. } => PhaseKind::Decode,
        }
    }

    pub fn batch(&self) -> u32 {
        match *self {
            Phase::Prefill { batch, .. } | Phase::Decode { batch, .. } => batch,
        }
    }

    /// Tokens one forward pass processes: batch x prompt_len (prefill) or batch (decode).
    /// Tokens/s = this / pass time. Callers go through [`layer_ops`], which has checked the
    /// product fits a u32; here it saturates rather than wraps.
    pub fn tokens_per_pass(&self) -> u32 {
        match *self {
            Phase::Prefill { batch, prompt_len } => batch.saturating_mul(prompt_len),
            Phase::Decode { batch, .. } => batch,
        }
    }

    /// Sizes are at least 1, within the model's context, and small enough for u32 indexing.
    pub fn check(&self, preset: &ModelPreset) -> Result<()> {
        let (batch, len, what) = match *self {
            Phase::Prefill { batch, prompt_len } => (batch, prompt_len, "prompt_len"),
            Phase::Decode { batch, context_len } => (batch, context_len, "context_len"),
        };
        if batch == 0 || len == 0 {
            return Err(Error::bad_input(
                format!("{self}: batch and {what} must be at least 1"),
                "Give a batch of 1 or more and a length of 1 or more",
            ));
        }
        if len > preset.max_context {
            return Err(Error::bad_input(
                format!(
                    "{self}: {what} {len} is longer than {}'s context of {} tokens",
                    preset.name, preset.max_context
                ),
                format!("Use a {what} of at most {}", preset.max_context),
            ));
        }
        if let Phase::Prefill { batch, prompt_len } = *self {
            if batch.checked_mul(prompt_len).is_none() {
                return Err(Error::bad_input(
                    format!("{self}: batch x prompt_len overflows 32 bits"),
                    "Use a smaller batch or prompt",
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Phase::Prefill { batch, prompt_len } => {
                write!(f, "prefill batch={batch} prompt_len={prompt_len}")
            }
            Phase::Decode { batch, context_len } => {
                write!(f, "decode batch={batch} context_len={context_len}")
            }
        }
    }
}

/// The `phase` column of tokens.csv and costs.csv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhaseKind {
    Prefill,
    Decode,
    /// A request mix: prefill of the input plus decode of the output (see `compose::token_rates`).
    Workload,
}

impl PhaseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseKind::Prefill => "prefill",
            PhaseKind::Decode => "decode",
            PhaseKind::Workload => "workload",
        }
    }
}

impl fmt::Display for PhaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PhaseKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "prefill" => Ok(PhaseKind::Prefill),
            "decode" => Ok(PhaseKind::Decode),
            "workload" => Ok(PhaseKind::Workload),
            other => Err(Error::bad_input(
                format!("unknown phase `{other}`"),
                "Use prefill, decode or workload",
            )),
        }
    }
}

#[cfg(test)]
mod tests;
