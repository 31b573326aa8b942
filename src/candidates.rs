//! A benchmark's variants as candidates: the benchmark's random inputs, how each variant
//! compiles against them, how its output is checked, and which variants a suite's search on
//! llvmpipe leaves out. The run loop ([`crate::runner`]) verifies and times them.

use std::sync::OnceLock;

use crate::gpu::Gpu;
use crate::kernels::attention::{AttentionInputs, AttentionVariant};
use crate::kernels::elementwise::{prepare_op_with, ElementwiseKind, ElementwiseVariant};
use crate::kernels::matmul::{MatmulInputs, MatmulVariant};
use crate::kernels::{HostTensor, PrepareError, Program};
use crate::shape::{AttentionShape, DType, MatmulShape};
use crate::suite::{Benchmark, Op};
use crate::tuning::LeftOut;
use crate::verify;

/// One variant of a benchmark: its name, and how to compile it together with the check of
/// its output.
pub(crate) struct Candidate<'a> {
    pub variant: String,
    /// Why a suite's search on llvmpipe leaves it out, if it does
    /// ([`crate::tuning::LeftOut`]).
    pub llvmpipe_left_out: Option<LeftOut>,
    /// Why a suite's search on a GPU leaves it out, if it does (`Searched::gpu_left_out`).
    pub gpu_left_out: Option<LeftOut>,
    pub prepare: Prepare<'a>,
}

pub(crate) type Check<'a> = Box<dyn Fn(&HostTensor) -> verify::Verdict + 'a>;
/// Send and Sync so that helper devices can compile a candidate on other threads
/// ([`crate::compile_ahead`]).
pub(crate) type Prepare<'a> =
    Box<dyn Fn(&Gpu) -> std::result::Result<(Program, Check<'a>), PrepareError> + Send + Sync + 'a>;

/// A benchmark's inputs (random, from the run's seed) and, for matmul and attention, the CPU
/// reference shared by every candidate's check, built on the first check so that its time
/// counts as verification. Elementwise variants make their own inputs and reference.
pub(crate) struct BenchInputs {
    dtype: DType,
    seed: u64,
    op: OpInputs,
}

enum OpInputs {
    Matmul {
        shape: MatmulShape,
        inputs: MatmulInputs,
        reference: OnceLock<verify::matmul::Reference>,
    },
    Attention {
        shape: AttentionShape,
        inputs: AttentionInputs,
        reference: OnceLock<verify::attention::Reference>,
    },
    Elementwise {
        op: crate::model::Op,
        kind: ElementwiseKind,
    },
}

impl BenchInputs {
    pub fn random(bench: &Benchmark, seed: u64) -> BenchInputs {
        BenchInputs::made(bench, seed, false)
    }

    /// Inputs of the right shapes, all zero, for devices that only compile
    /// ([`crate::gpu::Gpu::compiles_only`]): a kernel compiles the same whatever its
    /// inputs hold, and the compile-ahead pool had spent 0.65 s of a fresh quick run
    /// generating random ones on the run's thread while its helpers waited (zeros: 0.19 s).
    /// Never verified or timed: their references would be meaningless.
    pub fn zeros(bench: &Benchmark, seed: u64) -> BenchInputs {
        BenchInputs::made(bench, seed, true)
    }

    fn made(bench: &Benchmark, seed: u64, zeros: bool) -> BenchInputs {
        let dtype = bench.dtype;
        let op = match bench.op {
            Op::Matmul(shape) => OpInputs::Matmul {
                shape,
                inputs: if zeros {
                    MatmulInputs::zeros(&shape, dtype)
                } else {
                    MatmulInputs::random(&shape, dtype, seed)
                },
                reference: OnceLock::new(),
            },
            Op::Attention(shape) => OpInputs::Attention {
                shape,
                inputs: if zeros {
                    AttentionInputs::zeros(&shape, dtype)
                } else {
                    AttentionInputs::random(&shape, dtype, seed)
                },
                reference: OnceLock::new(),
            },
            Op::Elementwise { kind, .. } => OpInputs::Elementwise {
                op: bench.op.to_model(),
                kind,
            },
        };
        BenchInputs { dtype, seed, op }
    }

    /// The variants whose names `keep` accepts, in the kernel's list order.
    pub fn candidates<'a>(&'a self, keep: &dyn Fn(&str) -> bool) -> Vec<Candidate<'a>> {
        let (dtype, seed) = (self.dtype, self.seed);
        match &self.op {
            OpInputs::Matmul {
                shape,
                inputs,
                reference,
            } => checked_candidates(
                MatmulVariant::all(),
                shape,
                dtype,
                keep,
                move |v, gpu| v.prepare(gpu, shape, dtype, inputs),
                move || self.matmul_reference(shape, inputs, reference),
                verify::matmul::Reference::check,
            ),
            OpInputs::Attention {
                shape,
                inputs,
                reference,
            } => checked_candidates(
                AttentionVariant::all(),
                shape,
                dtype,
                keep,
                move |v, gpu| v.prepare(gpu, shape, dtype, inputs),
                move || {
                    reference.get_or_init(|| {
                        verify::attention::Reference::new(shape, dtype, inputs, seed)
                    })
                },
                verify::attention::Reference::check,
            ),
            OpInputs::Elementwise { op, kind } => ElementwiseVariant::all(*kind)
                .into_iter()
                .filter(|v| keep(&v.name()))
                .map(|v| Candidate {
                    variant: v.name(),
                    llvmpipe_left_out: None,
                    gpu_left_out: None,
                    prepare: Box::new(move |gpu: &Gpu| {
                        let (program, check) = prepare_op_with(gpu, op, &v, dtype, seed)?;
                        Ok((program, check as Check))
                    }),
                })
                .collect(),
        }
    }

    /// A matmul's inputs and its reference (built now if no check has built it yet), for the
    /// native GEMM yardstick; `None` for other ops.
    pub fn matmul(&self) -> Option<(&MatmulInputs, &verify::matmul::Reference)> {
        let OpInputs::Matmul {
            shape,
            inputs,
            reference,
        } = &self.op
        else {
            return None;
        };
        Some((inputs, self.matmul_reference(shape, inputs, reference)))
    }

    /// The matmul reference in `cell`, built on first use.
    fn matmul_reference<'a>(
        &self,
        shape: &MatmulShape,
        inputs: &MatmulInputs,
        cell: &'a OnceLock<verify::matmul::Reference>,
    ) -> &'a verify::matmul::Reference {
        cell.get_or_init(|| verify::matmul::Reference::new(shape, self.dtype, inputs, self.seed))
    }
}

/// What a search needs to know about a kernel's variants besides how to build them.
pub(crate) trait Searched: Copy {
    /// The op's shape type.
    type Shape;
    fn name(&self) -> String;
    fn loads_storage_per_lane(&self) -> bool;
    /// Whether it reads its operands through uniform windows at per-lane addresses.
    fn loads_uniform_per_lane(&self) -> bool;
    /// The sibling that always beat it on llvmpipe at `shape` in `dtype` (a few matmul and
    /// attention variants).
    fn superseded_on_llvmpipe(&self, shape: &Self::Shape, dtype: DType) -> Option<&'static str>;
    /// Whether it trailed the fastest variant on every shape measured on llvmpipe in
    /// `dtype` (a few matmul tiles), with no one sibling always ahead.
    fn trails_on_llvmpipe(&self, _dtype: DType) -> bool {
        false
    }
    /// See [`Candidate::llvmpipe_left_out`].
    fn llvmpipe_left_out(&self, shape: &Self::Shape, dtype: DType) -> Option<LeftOut> {
        if self.loads_storage_per_lane() {
            return Some(LeftOut::StoragePerLane);
        }
        self.superseded_on_llvmpipe(shape, dtype)
            .map(|by| LeftOut::Superseded { by })
            .or_else(|| self.trails_on_llvmpipe(dtype).then_some(LeftOut::Trailing))
    }
    /// See [`Candidate::gpu_left_out`].
    fn gpu_left_out(&self) -> Option<LeftOut> {
        self.loads_uniform_per_lane()
            .then_some(LeftOut::UniformPerLane)
    }
}

impl Searched for MatmulVariant {
    type Shape = MatmulShape;
    fn name(&self) -> String {
        MatmulVariant::name(self)
    }
    fn loads_storage_per_lane(&self) -> bool {
        MatmulVariant::loads_storage_per_lane(self)
    }
    fn loads_uniform_per_lane(&self) -> bool {
        match self {
            MatmulVariant::Gemv(_) => true,
            MatmulVariant::Naive
            | MatmulVariant::Reg { .. }
            | MatmulVariant::Tiled { .. }
            | MatmulVariant::Subgroup { .. }
            | MatmulVariant::Texture { .. }
            | MatmulVariant::GemvTexture(_)
            | MatmulVariant::GemvCoop(_) => false,
        }
    }
    fn superseded_on_llvmpipe(&self, shape: &MatmulShape, dtype: DType) -> Option<&'static str> {
        MatmulVariant::superseded_on_llvmpipe(self, shape, dtype)
    }
    fn trails_on_llvmpipe(&self, dtype: DType) -> bool {
        MatmulVariant::trails_on_llvmpipe(self, dtype)
    }
}

impl Searched for AttentionVariant {
    type Shape = AttentionShape;
    fn name(&self) -> String {
        AttentionVariant::name(self)
    }
    fn loads_storage_per_lane(&self) -> bool {
        AttentionVariant::loads_storage_per_lane(self)
    }
    fn loads_uniform_per_lane(&self) -> bool {
        match *self {
            AttentionVariant::Flash { kv, .. } => kv.uniform(),
            AttentionVariant::Decode { .. } => true,
            AttentionVariant::Naive
            | AttentionVariant::DecodeTexture { .. }
            | AttentionVariant::DecodeCoop { .. } => false,
        }
    }
    /// The same at every shape and dtype.
    fn superseded_on_llvmpipe(&self, _: &AttentionShape, _: DType) -> Option<&'static str> {
        AttentionVariant::superseded_on_llvmpipe(self)
    }
}

/// The wanted `variants` as candidates at `shape` in `dtype`: each compiled by `prepare`,
/// each output compared with one shared reference, which `reference` builds on first use
/// (inside the first check, so its time counts as verification).
fn checked_candidates<'a, V: Searched + Send + Sync + 'a, R: 'a>(
    variants: Vec<V>,
    shape: &V::Shape,
    dtype: DType,
    keep: &dyn Fn(&str) -> bool,
    prepare: impl Fn(V, &Gpu) -> std::result::Result<Program, PrepareError> + Copy + Send + Sync + 'a,
    reference: impl Fn() -> &'a R + Copy + Send + Sync + 'a,
    check: fn(&R, &HostTensor) -> verify::Verdict,
) -> Vec<Candidate<'a>> {
    variants
        .into_iter()
        .filter(|v| keep(&v.name()))
        .map(|v| Candidate {
            variant: v.name(),
            llvmpipe_left_out: v.llvmpipe_left_out(shape, dtype),
            gpu_left_out: v.gpu_left_out(),
            prepare: Box::new(move |gpu: &Gpu| {
                let program = prepare(v, gpu)?;
                let check: Check = Box::new(move |output: &HostTensor| check(reference(), output));
                Ok((program, check))
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_inputs_have_the_random_ones_shapes_and_hold_zeros() {
        let matmul = Benchmark::new(Op::Matmul(MatmulShape::new(3, 5, 7)), DType::F16);
        let attention = Benchmark::new(
            Op::Attention(AttentionShape {
                b: 1,
                hq: 4,
                hkv: 2,
                sq: 3,
                skv: 5,
                d: 8,
                causal: true,
            }),
            DType::F32,
        );
        for bench in [matmul, attention] {
            let tensors = |inputs: &BenchInputs| -> Vec<HostTensor> {
                match &inputs.op {
                    OpInputs::Matmul { inputs, .. } => vec![inputs.a.clone(), inputs.b.clone()],
                    OpInputs::Attention { inputs, .. } => {
                        vec![inputs.q.clone(), inputs.k.clone(), inputs.v.clone()]
                    }
                    OpInputs::Elementwise { .. } => vec![],
                }
            };
            let (random, zeros) = (
                tensors(&BenchInputs::random(&bench, 7)),
                tensors(&BenchInputs::zeros(&bench, 7)),
            );
            assert!(!zeros.is_empty());
            for (r, z) in random.iter().zip(&zeros) {
                assert_eq!(r.len(), z.len());
                assert_eq!(std::mem::discriminant(r), std::mem::discriminant(z));
                assert!((0..z.len()).all(|i| z.get(i) == 0.0));
                assert!((0..r.len()).any(|i| r.get(i) != 0.0));
            }
        }
    }

    /// Every variant the llvmpipe search leaves out as superseded at `shape` in `dtype` names
    /// a sibling (by name prefix) that the search still tries there; returns how many are
    /// superseded.
    fn superseded_have_searched_siblings<V: Searched>(
        all: &[V],
        shape: &V::Shape,
        dtype: DType,
    ) -> usize {
        let mut superseded = 0;
        for v in all {
            if let Some(LeftOut::Superseded { by }) = v.llvmpipe_left_out(shape, dtype) {
                superseded += 1;
                assert!(
                    all.iter()
                        .any(|s| s.name().starts_with(by)
                            && s.llvmpipe_left_out(shape, dtype).is_none()),
                    "{} is left out for {by} in {dtype}, which no searched variant is",
                    v.name()
                );
            }
        }
        superseded
    }

    #[test]
    fn a_variant_superseded_on_llvmpipe_leaves_its_sibling_searched() {
        let matmuls = MatmulVariant::all();
        let gemm = MatmulShape::new(64, 768, 768).transposed_b();
        assert_eq!(
            superseded_have_searched_siblings(&matmuls, &gemm, DType::F32),
            4
        );
        // And in f16 the eight rgba16float subgroup_stex tiles (by the packed subgroup_stexh).
        assert_eq!(
            superseded_have_searched_siblings(&matmuls, &gemm, DType::F16),
            12
        );
        // At m = 1 with B stored [n, k] every GEMM tile gives way to gemv_stex: the ten
        // storage-texture and three packed tiles as well, whatever the dtype; with row-major
        // B gemv_stex does not apply and the GEMM tiles stay.
        let decode = MatmulShape::new(1, 768, 768).transposed_b();
        for dtype in [DType::F32, DType::F16] {
            assert_eq!(
                superseded_have_searched_siblings(&matmuls, &decode, dtype),
                17
            );
        }
        let row_major = MatmulShape::new(1, 768, 768);
        assert_eq!(
            superseded_have_searched_siblings(&matmuls, &row_major, DType::F32),
            4
        );
        // flash_ubo_r8_q4_c4 (by flash_ubs), the three decode_ubo tiles (by decode_stex) and
        // the three key-per-lane decode_stex tiles (by decode_stex_l8_sd).
        let attention: AttentionShape = "b=1,hq=8,hkv=2,sq=1,skv=64,d=64".parse().unwrap();
        for dtype in [DType::F32, DType::F16] {
            assert_eq!(
                superseded_have_searched_siblings(&AttentionVariant::all(), &attention, dtype),
                7
            );
        }
    }

    /// Only the two f32 storage-texture tiles that never came close are left out as
    /// trailing, and only at shapes where no sibling supersedes them (in f16 the packed
    /// tiles do, at m = 1 gemv_stex does).
    #[test]
    fn only_two_f32_tiles_trail_on_llvmpipe() {
        let matmuls = MatmulVariant::all();
        let trailing = |shape: &MatmulShape, dtype| -> Vec<String> {
            matmuls
                .iter()
                .filter(|v| v.llvmpipe_left_out(shape, dtype) == Some(LeftOut::Trailing))
                .map(|v| v.name())
                .collect()
        };
        let gemm = MatmulShape::new(97, 61, 131);
        assert_eq!(
            trailing(&gemm, DType::F32),
            ["subgroup_stex8_x8_t8x12", "subgroup_stex8_x8_t8x4"]
        );
        assert!(trailing(&gemm, DType::F16).is_empty());
        assert!(trailing(&MatmulShape::new(1, 768, 768).transposed_b(), DType::F32).is_empty());
        // The attention variants never trail.
        let attention: AttentionShape = "b=1,hq=8,hkv=2,sq=64,skv=64,d=64".parse().unwrap();
        assert!(AttentionVariant::all()
            .iter()
            .all(|v| v.llvmpipe_left_out(&attention, DType::F32) != Some(LeftOut::Trailing)));
    }

    /// On GPUs only the uniform-window kernels are left out, by name: the GPU designs and
    /// the texture kernels stay searched for every op.
    #[test]
    fn gpus_leave_out_exactly_the_uniform_window_kernels() {
        let left_out = |names: Vec<(String, Option<LeftOut>)>| -> Vec<String> {
            names
                .into_iter()
                .filter_map(|(n, why)| why.map(|w| (n, w)))
                .map(|(n, w)| {
                    assert_eq!(w, LeftOut::UniformPerLane, "{n}");
                    n
                })
                .collect()
        };
        let matmul = left_out(
            MatmulVariant::all()
                .iter()
                .map(|v| (v.name(), v.gpu_left_out()))
                .collect(),
        );
        assert_eq!(matmul, ["gemv_ubo_r4_b4", "gemv_ubo_r1_b16"]);
        let attention = left_out(
            AttentionVariant::all()
                .iter()
                .map(|v| (v.name(), v.gpu_left_out()))
                .collect(),
        );
        assert!(
            attention.iter().all(|n| n.starts_with("flash_ubo")
                || n.starts_with("flash_ubs")
                || n.starts_with("decode_ubo")),
            "{attention:?}"
        );
        assert_eq!(attention.len(), 6, "{attention:?}");
    }
}
