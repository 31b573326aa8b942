//! What runs: the one benchmark list shared by `cargo bench` and `priceperf run`.
//!
//! A benchmark is an op at a shape and dtype; the runner tries every applicable variant of
//! it. Suites are sized per adapter class: software adapters (lavapipe) get shapes that
//! finish in minutes, GPUs get shapes big enough to fill them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::gpu::AdapterSummary;
use crate::model::{self, ElementwiseKind};
use crate::shape::{AttentionShape, DType, MatmulShape};

/// Which list to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum SuiteName {
    /// Minutes on lavapipe: a few shapes, for smoke tests and CI.
    Quick,
    /// The default for `cargo bench`: the shapes that decide throughput and price.
    Standard,
    /// Everything, without a time budget per variant.
    Full,
}

impl SuiteName {
    /// The longest a single variant may take to measure (estimated from its verification
    /// run) before it is skipped; the naive reference at 2048³ on lavapipe would otherwise
    /// take minutes.
    pub fn variant_budget_s(self) -> Option<f64> {
        match self {
            SuiteName::Quick => Some(15.0),
            SuiteName::Standard => Some(60.0),
            SuiteName::Full => None,
        }
    }
}

impl fmt::Display for SuiteName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SuiteName::Quick => "quick",
            SuiteName::Standard => "standard",
            SuiteName::Full => "full",
        })
    }
}

impl FromStr for SuiteName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "quick" => Ok(SuiteName::Quick),
            "standard" => Ok(SuiteName::Standard),
            "full" => Ok(SuiteName::Full),
            other => Err(Error::bad_input(
                format!("unknown suite `{other}`"),
                "Use quick, standard or full.",
            )),
        }
    }
}

/// The op a benchmark measures, at its exact shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Matmul(MatmulShape),
    Attention(AttentionShape),
    /// A transformer layer's elementwise or row-wise op (norms, RoPE, activations, adds) over
    /// `rows` tokens of `cols` features.
    Elementwise {
        kind: ElementwiseKind,
        rows: u32,
        cols: u32,
    },
}

impl Op {
    /// The benchmark op for a model op (the op's role name does not change the kernel).
    pub fn from_model(op: &model::Op) -> Op {
        match *op {
            model::Op::Matmul { shape, .. } => Op::Matmul(shape),
            model::Op::Attention { shape, .. } => Op::Attention(shape),
            model::Op::Elementwise {
                kind, rows, cols, ..
            } => Op::Elementwise { kind, rows, cols },
        }
    }

    /// The model op an elementwise benchmark runs (named by its kind).
    pub fn to_model(&self) -> model::Op {
        match *self {
            Op::Matmul(shape) => model::Op::Matmul {
                name: "matmul",
                shape,
            },
            Op::Attention(shape) => model::Op::Attention {
                name: "attention",
                shape,
            },
            Op::Elementwise { kind, rows, cols } => model::Op::Elementwise {
                name: kind.as_str(),
                kind,
                rows,
                cols,
            },
        }
    }

    pub fn kernel(&self) -> &'static str {
        match self {
            Op::Matmul(_) => "matmul",
            Op::Attention(_) => "attention",
            Op::Elementwise { kind, .. } => kind.as_str(),
        }
    }

    pub fn shape(&self) -> String {
        match self {
            Op::Matmul(s) => s.to_string(),
            Op::Attention(s) => s.to_string(),
            Op::Elementwise { .. } => self.to_model().shape_text(),
        }
    }

    pub fn flops(&self) -> u64 {
        match self {
            Op::Matmul(s) => s.flops(),
            Op::Attention(s) => s.flops(),
            Op::Elementwise { .. } => self.to_model().flops(),
        }
    }

    pub fn bytes(&self, dtype: DType) -> u64 {
        match self {
            Op::Matmul(s) => s.bytes(dtype),
            Op::Attention(s) => s.bytes(dtype),
            Op::Elementwise { .. } => self.to_model().bytes(dtype),
        }
    }

    /// Parse `--kernel NAME --shape SPEC`.
    pub fn parse(kernel: &str, spec: &str) -> Result<Op> {
        match kernel.trim().to_ascii_lowercase().as_str() {
            "matmul" => Ok(Op::Matmul(spec.parse()?)),
            "attention" => Ok(Op::Attention(spec.parse()?)),
            other => Err(Error::bad_input(
                format!("unknown kernel `{other}`"),
                "Use --kernel matmul (with --shape m=..,n=..,k=..) or --kernel attention (with --shape b=..,hq=..,hkv=..,sq=..,skv=..,d=..,causal=0|1).",
            )),
        }
    }
}

/// One benchmark: an op at a shape in a dtype.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Benchmark {
    pub op: Op,
    pub dtype: DType,
}

impl Benchmark {
    pub fn new(op: Op, dtype: DType) -> Self {
        Benchmark { op, dtype }
    }

    /// `kernel/dtype/shape`, the `benchmark` column and the criterion id.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.op.kernel(), self.dtype, self.op.shape())
    }
}

fn square(n: u32) -> Op {
    Op::Matmul(MatmulShape::new(n, n, n))
}

/// The suite's benchmarks for this adapter, in run order.
pub fn benchmarks(suite: SuiteName, adapter: &AdapterSummary) -> Vec<Benchmark> {
    use DType::{F16, F32};
    let cpu = adapter.is_cpu();
    let mut list = Vec::new();
    let mut add = |op: Op, dtypes: &[DType]| {
        for &d in dtypes {
            list.push(Benchmark::new(op, d));
        }
    };
    match (suite, cpu) {
        // Small shapes first: the search prunes a variant at the big ones only after it lost
        // widely on two earlier benchmarks of its kind (`crate::tuning::ScreenHistory`).
        (SuiteName::Quick, true) => {
            add(square(256), &[F32]);
            add(Op::Matmul(MatmulShape::new(97, 61, 131)), &[F32]);
            add(square(1024), &[F32, F16]);
        }
        (SuiteName::Quick, false) => {
            add(square(1024), &[F32]);
            add(square(4096), &[F32, F16]);
            add(Op::Matmul(MatmulShape::new(97, 61, 131)), &[F32]);
        }
        (SuiteName::Standard, true) => {
            for n in [256, 512, 1024, 2048] {
                add(square(n), &[F32]);
            }
            add(square(1024), &[F16]);
            add(
                Op::Matmul(MatmulShape::new(1024, 1024, 1024).transposed_b()),
                &[F32],
            );
            add(
                Op::Matmul(MatmulShape::new(128, 128, 128).batched(8)),
                &[F32],
            );
        }
        (SuiteName::Standard, false) => {
            for n in [1024, 2048, 4096, 8192] {
                add(square(n), &[F32, F16]);
            }
            add(
                Op::Matmul(MatmulShape::new(4096, 4096, 4096).transposed_b()),
                &[F32],
            );
            add(
                Op::Matmul(MatmulShape::new(512, 512, 512).batched(16)),
                &[F32],
            );
        }
        (SuiteName::Full, _) => {
            let sizes: &[u32] = if cpu {
                &[256, 512, 1024, 2048]
            } else {
                &[512, 1024, 2048, 4096, 8192]
            };
            for &n in sizes {
                add(square(n), &[F32, F16]);
                add(
                    Op::Matmul(MatmulShape::new(n, n, n).transposed_b()),
                    &[F32, F16],
                );
            }
            add(Op::Matmul(MatmulShape::new(97, 61, 131)), &[F32, F16]);
            add(
                Op::Matmul(MatmulShape::new(128, 128, 128).batched(8)),
                &[F32],
            );
        }
    }
    for (op, dtypes) in attention_benchmarks(suite, cpu) {
        add(op, dtypes);
    }
    list
}

fn attention(b: u32, hq: u32, hkv: u32, sq: u32, skv: u32, d: u32, causal: bool) -> Op {
    Op::Attention(AttentionShape {
        b,
        hq,
        hkv,
        sq,
        skv,
        d,
        causal,
    })
}

/// Attention: prefill at Llama-3-8B's heads (b=1, hq=32, hkv=8, d=128), causal and not, and
/// decode (Sq = 1) over growing KV caches; CPU adapters get the short end of each range plus
/// the b=1, hq=8, d=64, s=1024 comparison shape, and quick keeps one of each.
fn attention_benchmarks(suite: SuiteName, cpu: bool) -> Vec<(Op, &'static [DType])> {
    use DType::{F16, F32};
    let prefill = |s: u32, causal: bool| attention(1, 32, 8, s, s, 128, causal);
    let decode = |skv: u32| attention(1, 32, 8, 1, skv, 128, true);
    let mut list: Vec<(Op, &'static [DType])> = Vec::new();
    match (suite, cpu) {
        (SuiteName::Quick, true) => {
            list.push((prefill(256, true), &[F32]));
            list.push((decode(1024), &[F32]));
        }
        (SuiteName::Quick, false) => {
            list.push((prefill(1024, true), &[F32]));
            list.push((decode(8192), &[F32]));
        }
        (SuiteName::Standard, true) => {
            list.push((attention(1, 8, 8, 1024, 1024, 64, true), &[F32]));
            list.push((attention(1, 8, 8, 1024, 1024, 64, false), &[F32]));
            list.push((prefill(512, true), &[F32, F16]));
            list.push((prefill(512, false), &[F32]));
            for skv in [1024, 8192] {
                list.push((decode(skv), &[F32]));
            }
            list.push((decode(8192), &[F16]));
        }
        (SuiteName::Standard, false) => {
            for s in [512, 1024, 2048, 4096] {
                list.push((prefill(s, true), &[F32, F16]));
                list.push((prefill(s, false), &[F32, F16]));
            }
            for skv in [1024, 4096, 8192, 16384, 32768] {
                list.push((decode(skv), &[F32, F16]));
            }
        }
        (SuiteName::Full, _) => {
            let (sizes, decode_sizes): (&[u32], &[u32]) = if cpu {
                (&[512, 1024], &[1024, 8192, 32768])
            } else {
                (&[512, 1024, 2048, 4096], &[1024, 4096, 8192, 16384, 32768])
            };
            for &s in sizes {
                list.push((prefill(s, true), &[F32, F16]));
                list.push((prefill(s, false), &[F32, F16]));
            }
            for &skv in decode_sizes {
                list.push((decode(skv), &[F32, F16]));
            }
            list.push((attention(1, 8, 8, 1024, 1024, 64, true), &[F32, F16]));
            list.push((attention(1, 8, 8, 1024, 1024, 64, false), &[F32]));
            // Every head dim, a tail length, batch > 1.
            for d in [64, 80, 96, 256] {
                list.push((attention(1, 32, 8, 1000, 1000, d, true), &[F32]));
            }
            list.push((attention(4, 32, 8, 512, 512, 128, true), &[F32]));
        }
    }
    list
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A test adapter named `test`: a CPU one with lavapipe's features and limits (8-lane
    /// subgroups, 32 KiB of workgroup memory, 128 MiB bindings) or a discrete GPU with the
    /// same.
    pub(crate) fn adapter(cpu: bool) -> AdapterSummary {
        AdapterSummary {
            name: "test".into(),
            backend: "vulkan".into(),
            device_type: if cpu { "cpu" } else { "discrete" }.into(),
            driver: String::new(),
            driver_info: String::new(),
            vendor_id: 0,
            device_id: 0,
            timestamps: true,
            f16: true,
            subgroups: true,
            subgroup_min_size: 8,
            subgroup_max_size: 8,
            max_workgroup_storage_bytes: 32768,
            max_invocations_per_workgroup: 1024,
            max_workgroups_per_dimension: 65535,
            max_storage_binding_bytes: 1 << 27,
            max_buffer_bytes: 1 << 31,
        }
    }

    #[test]
    fn ids_are_unique_in_every_suite() {
        for suite in [SuiteName::Quick, SuiteName::Standard, SuiteName::Full] {
            for cpu in [true, false] {
                let list = benchmarks(suite, &adapter(cpu));
                let ids: std::collections::BTreeSet<String> =
                    list.iter().map(Benchmark::id).collect();
                assert_eq!(ids.len(), list.len(), "{suite} cpu={cpu}");
            }
        }
    }

    #[test]
    fn cpu_suites_stay_small() {
        for suite in [SuiteName::Quick, SuiteName::Standard] {
            for b in benchmarks(suite, &adapter(true)) {
                assert!(b.op.flops() <= 2 * 2048u64.pow(3), "{}", b.id());
            }
        }
    }

    #[test]
    fn attention_is_in_every_suite_with_prefill_and_decode() {
        for suite in [SuiteName::Quick, SuiteName::Standard, SuiteName::Full] {
            for cpu in [true, false] {
                let shapes: Vec<AttentionShape> = benchmarks(suite, &adapter(cpu))
                    .into_iter()
                    .filter_map(|b| match b.op {
                        Op::Attention(s) => Some(s),
                        _ => None,
                    })
                    .collect();
                assert!(shapes.iter().any(|s| s.sq > 1), "{suite} cpu={cpu}");
                assert!(shapes.iter().any(|s| s.sq == 1), "{suite} cpu={cpu}");
                for s in shapes {
                    // Every suite shape parses back from its own spec (the shape column).
                    assert_eq!(s.to_string().parse::<AttentionShape>().unwrap(), s);
                }
            }
        }
        let op = Op::parse(
            "attention",
            "b=1,hq=32,hkv=8,sq=1000,skv=1000,d=128,causal=1",
        )
        .unwrap();
        assert_eq!(op.kernel(), "attention");
        assert_eq!(op.flops(), 4 * 32 * 1000 * 1000 * 128 / 2);
        assert!(Op::parse("attention", "b=1,hq=32,sq=10,d=100")
            .unwrap_err()
            .to_string()
            .contains("d=100"));
    }

    #[test]
    fn custom_ops_parse() {
        let op = Op::parse("matmul", "m=3,n=4,k=5").unwrap();
        assert_eq!(
            Benchmark::new(op, DType::F32).id(),
            "matmul/f32/m=3,n=4,k=5"
        );
        assert!(Op::parse("conv", "m=1")
            .unwrap_err()
            .to_string()
            .contains("unknown kernel"));
    }
}
