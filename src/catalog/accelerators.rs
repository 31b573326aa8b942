//! Accelerator spec rows (`data/accelerators.csv`) and matching a wgpu adapter name to one.
//!
//! Peaks are dense (no sparsity) spec-sheet figures; an unknown figure is `None`, never 0.

use std::fmt;

use serde::Serialize;

use crate::catalog::table::{self, Schema, Source};
use crate::error::Result;
use crate::shape::DType;

/// What kind of chip a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceleratorKind {
    Gpu,
    Cpu,
    /// Trainium, Inferentia and the like: no wgpu adapter, priced through projections only.
    Asic,
}

impl AcceleratorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AcceleratorKind::Gpu => "gpu",
            AcceleratorKind::Cpu => "cpu",
            AcceleratorKind::Asic => "asic",
        }
    }
}

impl fmt::Display for AcceleratorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One accelerator model with its spec-sheet figures.
#[derive(Debug, Clone, Serialize)]
pub struct Accelerator {
    /// Catalog key, e.g. `H100 SXM`; `data/instances.csv` refers to it.
    pub name: String,
    pub vendor: String,
    pub kind: AcceleratorKind,
    /// As written in the file: whole adapter names, or regexes prefixed with `re:`.
    pub adapter_name_patterns: Vec<String>,
    /// Vector (non-tensor) FP32 peak.
    pub fp32_tflops: Option<f64>,
    /// Dense FP16 tensor-core / matrix-unit peak.
    pub fp16_tensor_tflops: Option<f64>,
    /// Dense BF16 tensor-core / matrix-unit peak.
    pub bf16_tensor_tflops: Option<f64>,
    pub memory_gb: Option<f64>,
    pub memory_bandwidth_gbs: Option<f64>,
    /// Board power (TDP or the enforced power cap; see the source column).
    pub tdp_w: Option<f64>,
    pub launch_year: Option<u32>,
    /// False for chips wgpu cannot drive (no Vulkan/Metal/DX12/GL adapter).
    pub reachable_by_wgpu: bool,
    pub source: String,
    #[serde(skip)]
    matchers: Vec<Matcher>,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// A normalized name the whole normalized adapter name must equal. Not a substring: a
    /// listed name followed by more words is another board (`... RTX 4090 Laptop GPU`,
    /// `... H200 NVL`) with other memory, bandwidth and prices.
    Whole(String),
    /// For the rows that do want more: Apple's exact names, or a family of suffixes, spelled
    /// out in the row so the tolerance is visible where it applies.
    Regex(regex::Regex),
}

impl Accelerator {
    /// True when the adapter name matches one of this accelerator's patterns.
    ///
    /// Names are compared after [`normalize_adapter_name`]: lowercased, `(R)`/`(TM)` marks and
    /// a trailing driver suffix such as `(RADV NAVI31)` or `(LLVM 15.0.6, 256 bits)` removed.
    /// A plain pattern must equal the whole name, so `NVIDIA A10` does not match `NVIDIA A10G`
    /// and `NVIDIA GeForce RTX 4090` does not match `NVIDIA GeForce RTX 4090 Laptop GPU`; a
    /// `re:` pattern matches anywhere in the name (anchor it with `^...$` for the whole name).
    pub fn matches_adapter(&self, adapter_name: &str) -> bool {
        self.match_len(&normalize_adapter_name(adapter_name))
            .is_some()
    }

    /// Length of the longest pattern matching an already-normalized name (longer = more specific).
    pub(crate) fn match_len(&self, normalized: &str) -> Option<usize> {
        self.matchers
            .iter()
            .filter_map(|m| match m {
                Matcher::Whole(p) => (normalized == p).then_some(p.len()),
                Matcher::Regex(r) => r.find(normalized).map(|_| r.as_str().len()),
            })
            .max()
    }

    /// The spec-sheet peak FLOP/s in TFLOPS for kernels of this dtype: FP32 vector peak for
    /// f32, the FP16 tensor peak for f16 (the figure vendors quote; WGSL f16 kernels usually
    /// run on the vector units, so % of this peak is low by design).
    pub fn peak_tflops(&self, dtype: DType) -> Option<f64> {
        match dtype {
            DType::F32 => self.fp32_tflops,
            DType::F16 => self.fp16_tensor_tflops,
        }
    }
}

/// Lowercase, strip trademark marks and trailing parenthesised driver suffixes, collapse spaces.
pub fn normalize_adapter_name(name: &str) -> String {
    let mut s = name.to_lowercase();
    for mark in ["(r)", "(tm)", "®", "™"] {
        s = s.replace(mark, "");
    }
    // Repeatedly drop a trailing "(...)" group: Mesa and others append driver details there.
    loop {
        let t = s.trim_end();
        if t.ends_with(')') {
            if let Some(open) = t.rfind('(') {
                if open > 0 {
                    s = t[..open].to_string();
                    continue;
                }
            }
        }
        break;
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

const SCHEMA: Schema = Schema {
    required: &[
        "accelerator",
        "vendor",
        "kind",
        "adapter_name_patterns",
        "fp32_tflops",
        "fp16_tensor_tflops",
        "bf16_tensor_tflops",
        "memory_gb",
        "memory_bandwidth_gbs",
        "tdp_w",
        "reachable_by_wgpu",
        "source",
    ],
    optional: &["launch_year"],
    what: "accelerator spec file",
};

/// Parses an accelerators file; duplicate names (case-insensitive) are errors.
pub(crate) fn parse(src: Source<'_>) -> Result<Vec<Accelerator>> {
    let mut out: Vec<Accelerator> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    for rec in table::read(src, &SCHEMA)? {
        let name = rec.required("accelerator", "the accelerator name, e.g. `H100 SXM`")?;
        if let Some(prev) = out.iter().position(|a| a.name.eq_ignore_ascii_case(&name)) {
            return Err(rec.error(
                "accelerator",
                format!(
                    "accelerator `{name}` is listed twice (first on line {})",
                    lines[prev]
                ),
                "Keep one row per accelerator",
            ));
        }
        lines.push(rec.line());
        let kind = match rec.choice("kind", &["gpu", "cpu", "asic"])?.as_str() {
            "gpu" => AcceleratorKind::Gpu,
            "cpu" => AcceleratorKind::Cpu,
            _ => AcceleratorKind::Asic,
        };
        let raw_patterns = rec.text("adapter_name_patterns");
        let mut adapter_name_patterns = Vec::new();
        let mut matchers = Vec::new();
        for p in raw_patterns
            .split('|')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            adapter_name_patterns.push(p.to_string());
            if let Some(re) = p.strip_prefix("re:") {
                let r = regex::RegexBuilder::new(re.trim())
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| {
                        rec.error(
                            "adapter_name_patterns",
                            format!("pattern `{p}` is not a valid regex ({e})"),
                            "Fix the regex after `re:`, or drop the `re:` prefix to match the whole adapter name",
                        )
                    })?;
                matchers.push(Matcher::Regex(r));
            } else {
                let n = normalize_adapter_name(p);
                if n.is_empty() {
                    return Err(rec.error(
                        "adapter_name_patterns",
                        format!("pattern `{p}` is empty once trademark marks and driver suffixes are removed"),
                        "Give the adapter name as wgpu reports it, e.g. `NVIDIA H100 80GB HBM3`",
                    ));
                }
                matchers.push(Matcher::Whole(n));
            }
        }
        out.push(Accelerator {
            name,
            vendor: rec.required("vendor", "the vendor, e.g. NVIDIA")?,
            kind,
            adapter_name_patterns,
            fp32_tflops: rec.positive_f64("fp32_tflops", "the dense FP32 peak in TFLOPS")?,
            fp16_tensor_tflops: rec
                .positive_f64("fp16_tensor_tflops", "the dense FP16 tensor peak in TFLOPS")?,
            bf16_tensor_tflops: rec
                .positive_f64("bf16_tensor_tflops", "the dense BF16 tensor peak in TFLOPS")?,
            memory_gb: rec.positive_f64("memory_gb", "the accelerator memory in GB")?,
            memory_bandwidth_gbs: rec
                .positive_f64("memory_bandwidth_gbs", "the memory bandwidth in GB/s")?,
            tdp_w: rec.positive_f64("tdp_w", "the board power in watts")?,
            launch_year: rec.opt_u32("launch_year", 1990, "the launch year")?,
            reachable_by_wgpu: rec.bool("reachable_by_wgpu")?,
            source: rec.required("source", "where the figures come from")?,
            matchers,
        });
    }
    Ok(out)
}
