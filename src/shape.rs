//! Problem shapes and element types: the typed form of the `shape` and `dtype` columns.
//!
//! A shape spec is a `key=value` list, the same text the `shape` column prints, e.g.
//! `m=1000,n=333,k=77` (optional `batch=`, `transpose_b=1`) for matmul and
//! `b=1,hq=32,hkv=8,sq=1000,skv=1000,d=128,causal=1` for attention. Parsing checks every
//! value, refuses unknown keys, and refuses sizes whose element indices overflow the u32
//! indexing the kernels use.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Element type of a kernel's inputs and outputs in memory. Accumulation is always f32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    F32,
    F16,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 => 2,
        }
    }

    /// The WGSL scalar type name.
    pub fn wgsl(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
        }
    }

    pub fn as_str(self) -> &'static str {
        self.wgsl()
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(DType::F32),
            "f16" | "fp16" | "half" | "float16" => Ok(DType::F16),
            other => Err(Error::bad_input(
                format!("unknown dtype `{other}`"),
                "Use f32 or f16.",
            )),
        }
    }
}

/// C[batch, m, n] = A[batch, m, k] · B[batch, k, n] (or Bᵀ when `transpose_b`, B stored
/// [batch, n, k]). All row-major, densely packed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MatmulShape {
    pub batch: u32,
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub transpose_b: bool,
}

impl MatmulShape {
    pub fn new(m: u32, n: u32, k: u32) -> Self {
        MatmulShape {
            batch: 1,
            m,
            n,
            k,
            transpose_b: false,
        }
    }

    pub fn batched(self, batch: u32) -> Self {
        MatmulShape { batch, ..self }
    }

    pub fn transposed_b(self) -> Self {
        MatmulShape {
            transpose_b: true,
            ..self
        }
    }

    /// 2·M·N·K per batch (one multiply and one add per term).
    pub fn flops(&self) -> u64 {
        2 * self.batch as u64 * self.m as u64 * self.n as u64 * self.k as u64
    }

    /// Elements of A, B and C.
    pub fn a_len(&self) -> u64 {
        self.batch as u64 * self.m as u64 * self.k as u64
    }
    pub fn b_len(&self) -> u64 {
        self.batch as u64 * self.k as u64 * self.n as u64
    }
    pub fn c_len(&self) -> u64 {
        self.batch as u64 * self.m as u64 * self.n as u64
    }

    /// Compulsory memory traffic: A and B read once, C written once.
    pub fn bytes(&self, dtype: DType) -> u64 {
        (self.a_len() + self.b_len() + self.c_len()) * dtype.size()
    }

    /// Every dimension at least 1 and every buffer within u32 indexing: what parsing checks,
    /// for shapes built in code (a model's layer at a user's batch and prompt).
    pub fn validate(&self) -> Result<()> {
        self.check()
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("batch", self.batch),
            ("m", self.m),
            ("n", self.n),
            ("k", self.k),
        ] {
            if v == 0 {
                return Err(Error::bad_input(
                    format!("matmul shape `{self}`: {name} is 0"),
                    "Every dimension must be at least 1.",
                ));
            }
        }
        // u128: three u32 factors can overflow u64 (and panic in a debug build).
        let (b, m, n, k) = (
            u128::from(self.batch),
            u128::from(self.m),
            u128::from(self.n),
            u128::from(self.k),
        );
        check_u32_indexable(&self.to_string(), (b * m * k).max(b * k * n).max(b * m * n))
    }
}

impl fmt::Display for MatmulShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m={},n={},k={}", self.m, self.n, self.k)?;
        if self.batch != 1 {
            write!(f, ",batch={}", self.batch)?;
        }
        if self.transpose_b {
            write!(f, ",transpose_b=1")?;
        }
        Ok(())
    }
}

impl FromStr for MatmulShape {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Self> {
        const EXPECTED: &str = "Expected `m=..,n=..,k=..` with optional `batch=..` and `transpose_b=0|1`, e.g. `m=1000,n=333,k=77`.";
        let mut kv = parse_pairs(spec, &["m", "n", "k", "batch", "transpose_b"], EXPECTED)?;
        let shape = MatmulShape {
            m: take_required(&mut kv, "m", spec, EXPECTED)?,
            n: take_required(&mut kv, "n", spec, EXPECTED)?,
            k: take_required(&mut kv, "k", spec, EXPECTED)?,
            batch: kv.remove("batch").unwrap_or(1),
            transpose_b: take_bool(&mut kv, "transpose_b", spec)?,
        };
        shape.check()?;
        Ok(shape)
    }
}

/// Scaled dot-product attention over Q[b, hq, sq, d], K/V[b, hkv, skv, d], O[b, hq, sq, d].
/// Grouped-query attention when hkv < hq (query head h reads KV head h / (hq / hkv)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AttentionShape {
    pub b: u32,
    pub hq: u32,
    pub hkv: u32,
    pub sq: u32,
    pub skv: u32,
    pub d: u32,
    pub causal: bool,
}

impl AttentionShape {
    /// The head dims the attention kernels are generated for (`d` must be one of them).
    pub const HEAD_DIMS: [u32; 5] = [64, 80, 96, 128, 256];

    /// 4·B·Hq·Sq·Skv·D (two matmuls: Q·Kᵀ and P·V), halved for causal when Sq = Skv: the
    /// FlashAttention benchmark convention. Causal with Sq < Skv (decode, chunked prefill)
    /// counts the unmasked pairs exactly.
    pub fn flops(&self) -> u64 {
        let per_pair = 4 * self.b as u64 * self.hq as u64 * self.d as u64;
        if !self.causal {
            return per_pair * self.sq as u64 * self.skv as u64;
        }
        if self.sq == self.skv {
            return per_pair * self.sq as u64 * self.skv as u64 / 2;
        }
        // Query i (0-based) sits at position skv - sq + i and sees that many + 1 keys.
        let (sq, skv) = (self.sq as u64, self.skv as u64);
        let visible = sq * (skv - sq) + sq * (sq + 1) / 2;
        per_pair * visible
    }

    /// Compulsory traffic: Q read, K and V read once, O written.
    pub fn bytes(&self, dtype: DType) -> u64 {
        (2 * self.q_len() + 2 * self.kv_len()) * dtype.size()
    }

    /// Elements of Q (and of O): b·hq·sq·d.
    pub fn q_len(&self) -> u64 {
        self.b as u64 * self.hq as u64 * self.sq as u64 * self.d as u64
    }

    /// Elements of K (and of V): b·hkv·skv·d.
    pub fn kv_len(&self) -> u64 {
        self.b as u64 * self.hkv as u64 * self.skv as u64 * self.d as u64
    }

    fn check(&self) -> Result<()> {
        for (name, v) in [
            ("b", self.b),
            ("hq", self.hq),
            ("hkv", self.hkv),
            ("sq", self.sq),
            ("skv", self.skv),
            ("d", self.d),
        ] {
            if v == 0 {
                return Err(Error::bad_input(
                    format!("attention shape `{self}`: {name} is 0"),
                    "Every dimension must be at least 1.",
                ));
            }
        }
        if !Self::HEAD_DIMS.contains(&self.d) {
            return Err(Error::bad_input(
                format!(
                    "attention shape `{self}`: head dim d={} is not supported",
                    self.d
                ),
                "Use d=64, 80, 96, 128 or 256: the head dims the attention kernels are generated for.",
            ));
        }
        if !self.hq.is_multiple_of(self.hkv) {
            return Err(Error::bad_input(
                format!(
                    "attention shape `{self}`: hq={} is not a multiple of hkv={}",
                    self.hq, self.hkv
                ),
                "Grouped-query attention needs hq divisible by hkv (e.g. hq=32,hkv=8).",
            ));
        }
        if self.causal && self.sq > self.skv {
            return Err(Error::bad_input(
                format!(
                    "attention shape `{self}`: causal with sq={} > skv={}",
                    self.sq, self.skv
                ),
                "Causal attention aligns queries to the last keys, so sq must be at most skv.",
            ));
        }
        // u128: four u32 factors can overflow u64 (and panic in a debug build).
        let w = |x: u32| u128::from(x);
        let q = w(self.b) * w(self.hq) * w(self.sq) * w(self.d);
        let kv = w(self.b) * w(self.hkv) * w(self.skv) * w(self.d);
        let scores = w(self.b) * w(self.hq) * w(self.sq) * w(self.skv);
        check_u32_indexable(&self.to_string(), q.max(kv).max(scores))
    }
}

impl fmt::Display for AttentionShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "b={},hq={},hkv={},sq={},skv={},d={},causal={}",
            self.b, self.hq, self.hkv, self.sq, self.skv, self.d, self.causal as u8
        )
    }
}

impl FromStr for AttentionShape {
    type Err = Error;
    fn from_str(spec: &str) -> Result<Self> {
        const EXPECTED: &str = "Expected `b=..,hq=..,hkv=..,sq=..,skv=..,d=..,causal=0|1`, e.g. `b=1,hq=32,hkv=8,sq=1000,skv=1000,d=128,causal=1` (b defaults to 1, hkv to hq, skv to sq).";
        let mut kv = parse_pairs(
            spec,
            &["b", "hq", "hkv", "sq", "skv", "d", "causal"],
            EXPECTED,
        )?;
        let hq = take_required(&mut kv, "hq", spec, EXPECTED)?;
        let sq = take_required(&mut kv, "sq", spec, EXPECTED)?;
        let shape = AttentionShape {
            b: kv.remove("b").unwrap_or(1),
            hq,
            hkv: kv.remove("hkv").unwrap_or(hq),
            sq,
            skv: kv.remove("skv").unwrap_or(sq),
            d: take_required(&mut kv, "d", spec, EXPECTED)?,
            causal: take_bool(&mut kv, "causal", spec)?,
        };
        shape.check()?;
        Ok(shape)
    }
}

/// Kernels index with u32; refuse anything whose largest buffer has more elements.
fn check_u32_indexable(spec: &str, elements: u128) -> Result<()> {
    if elements > u128::from(u32::MAX) {
        return Err(Error::bad_input(
            format!("shape `{spec}` needs {elements} elements in one buffer, more than the 2^32 that u32 indexing reaches"),
            "Use smaller dimensions (split the batch across runs).",
        ));
    }
    Ok(())
}

fn parse_pairs(spec: &str, allowed: &[&str], expected: &str) -> Result<BTreeMap<String, u32>> {
    let mut out = BTreeMap::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            return Err(Error::bad_input(
                format!("shape spec `{spec}`: `{part}` is not key=value"),
                expected,
            ));
        };
        let key = key.trim().to_ascii_lowercase();
        if !allowed.contains(&key.as_str()) {
            return Err(Error::bad_input(
                format!(
                    "shape spec `{spec}`: unknown key `{key}` (known: {})",
                    allowed.join(", ")
                ),
                expected,
            ));
        }
        let value: u32 = value.trim().parse().map_err(|_| {
            Error::bad_input(
                format!(
                    "shape spec `{spec}`: `{key}={}` is not a whole number from 0 to {}",
                    value.trim(),
                    u32::MAX
                ),
                expected,
            )
        })?;
        if out.insert(key.clone(), value).is_some() {
            return Err(Error::bad_input(
                format!("shape spec `{spec}`: `{key}` is given twice"),
                expected,
            ));
        }
    }
    Ok(out)
}

fn take_required(
    kv: &mut BTreeMap<String, u32>,
    key: &str,
    spec: &str,
    expected: &str,
) -> Result<u32> {
    kv.remove(key).ok_or_else(|| {
        Error::bad_input(format!("shape spec `{spec}`: `{key}` is missing"), expected)
    })
}

fn take_bool(kv: &mut BTreeMap<String, u32>, key: &str, spec: &str) -> Result<bool> {
    match kv.remove(key) {
        None | Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(v) => Err(Error::bad_input(
            format!("shape spec `{spec}`: `{key}={v}` must be 0 or 1"),
            format!("Write `{key}=1` to turn it on, `{key}=0` (or leave it out) for off."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matmul_spec_round_trips() {
        for spec in [
            "m=1000,n=333,k=77",
            "m=4,n=5,k=6,batch=3,transpose_b=1",
            "m=1,n=1,k=1",
        ] {
            let s: MatmulShape = spec.parse().unwrap();
            assert_eq!(s.to_string(), spec);
        }
        let s: MatmulShape = " M=2, n=3 ,k=4,batch=1,transpose_b=0".parse().unwrap();
        assert_eq!(s, MatmulShape::new(2, 3, 4));
    }

    #[test]
    fn matmul_flops_are_2mnk_per_batch() {
        let s: MatmulShape = "m=1000,n=333,k=77,batch=2".parse().unwrap();
        assert_eq!(s.flops(), 2 * 2 * 1000 * 333 * 77);
    }

    #[test]
    fn matmul_bad_specs_say_what_was_expected() {
        for (spec, needle) in [
            ("m=1,n=2", "`k` is missing"),
            ("m=1,n=2,k=x", "not a whole number"),
            ("m=1,n=2,k=3,q=4", "unknown key `q`"),
            ("m=0,n=2,k=3", "m is 0"),
            ("m=1,n=2,k=3,transpose_b=2", "must be 0 or 1"),
            ("m=1,m=2,n=2,k=3", "given twice"),
            ("m=100000,n=100000,k=1", "u32 indexing"),
            ("m=-1,n=2,k=3", "not a whole number"),
            ("garbage", "not key=value"),
        ] {
            let err = spec.parse::<MatmulShape>().unwrap_err();
            assert_eq!(err.exit_code(), crate::error::EXIT_BAD_INPUT);
            assert!(err.to_string().contains(needle), "{spec}: {err}");
            assert!(
                ["Expected", "must", "Use"]
                    .iter()
                    .any(|fix| err.to_string().contains(fix)),
                "{err}"
            );
        }
    }

    #[test]
    fn attention_spec_round_trips_and_defaults() {
        let spec = "b=1,hq=32,hkv=8,sq=1000,skv=1000,d=128,causal=1";
        let s: AttentionShape = spec.parse().unwrap();
        assert_eq!(s.to_string(), spec);
        let s: AttentionShape = "hq=8,sq=16,d=64".parse().unwrap();
        assert_eq!((s.b, s.hkv, s.skv, s.causal), (1, 8, 16, false));
    }

    #[test]
    fn attention_flops_follow_flashattention_convention() {
        let full: AttentionShape = "b=1,hq=8,sq=1024,d=64".parse().unwrap();
        assert_eq!(full.flops(), 4 * 8 * 1024 * 1024 * 64);
        let causal: AttentionShape = "b=1,hq=8,sq=1024,d=64,causal=1".parse().unwrap();
        assert_eq!(causal.flops(), full.flops() / 2);
        // Decode: one query sees every key.
        let decode: AttentionShape = "b=1,hq=8,sq=1,skv=100,d=64,causal=1".parse().unwrap();
        assert_eq!(decode.flops(), 4 * 8 * 100 * 64);
    }

    #[test]
    fn attention_bad_specs() {
        for (spec, needle) in [
            ("hq=6,hkv=4,sq=8,d=64", "not a multiple"),
            ("hq=8,sq=9,skv=8,d=64,causal=1", "sq must be at most skv"),
            ("hq=8,sq=9,d=64,causal=yes", "not a whole number"),
            ("hq=8,sq=9,d=48", "d=48 is not supported"),
            ("hq=8,sq=9,d=0", "d is 0"),
        ] {
            let err = spec.parse::<AttentionShape>().unwrap_err();
            assert!(err.to_string().contains(needle), "{spec}: {err}");
        }
    }
}
