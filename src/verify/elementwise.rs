//! The elementwise CPU references (f64 throughout, from the exact stored input values) and
//! their check.
//!
//! Tolerance rule, like matmul's: each element's error is measured relative to the
//! magnitude rounding actually follows, `|y - ref| / mag`, and must stay under
//! [`bound`]`(shape, dtype) = c_op · u + u_out`, with u = 2⁻²⁴ (f32 math) and u_out the
//! output rounding: 2⁻²⁴ for f32, 2⁻¹⁰ for f16 (a full f16 ulp, since WGSL lets an f32 -> f16
//! conversion round either way). Per op:
//!
//! | op | mag | c_op | f32 bound | f16 bound |
//! |---|---|---|---|---|
//! | add | \|a\| + \|b\| | 4 | 3.0e-7 | 9.8e-4 |
//! | silu_mul | \|silu(g)·up\| | 64 (exp and divide, up to a few ulp each on GPUs) | 3.9e-6 | 9.8e-4 |
//! | gelu | \|x\| (1 + tanh cancels for x < 0) | 64 | 3.9e-6 | 9.8e-4 |
//! | rmsnorm | \|x\|·r·\|w\| | 8·√cols + 32 | 3.3e-5 at cols 4096 | 1.0e-3 |
//! | layernorm | (\|x\| + mean\|x\|)·r·\|w\| + \|b\| | 8·√cols + 32 | 3.3e-5 at cols 4096 | 1.0e-3 |
//! | rope | \|x_j\| + \|x_(j+d/2)\| | 16, plus 2⁻¹⁸ for the angle and sin/cos | 4.8e-6 | 9.8e-4 |
//!
//! (r = 1/sqrt(mean square or variance + eps).) The norms' √cols term is the matmul rule for
//! a cols-term f32 sum; mean|x| in layernorm's magnitude covers the mean's rounding where
//! x ≈ mean. RoPE's allowance is position-independent because both kernels get the angle to
//! ~1e-6 rad at any position (see `kernels/elementwise_rope.wgsl`).
//!
//! Near zero the denominator is floored at `atol / bound`, so an element may always be off by
//! `atol`: f16's smallest normal, 2⁻¹⁴ (GPUs may flush f16 subnormals), or f32's, 2⁻¹²⁶. A
//! non-finite output (the NaN the output buffer starts as) always fails.

use crate::kernels::elementwise::{
    rope_frequency, ElementwiseInputs, ElementwiseKind, ElementwiseShape, NORM_EPS,
};
use crate::kernels::HostTensor;
use crate::shape::DType;

use super::{atol, output_rounding, Rng, Verdict};

/// Check every row while the tensor has at most this many elements; above it, the first and
/// last rows plus seeded random rows up to about this many elements.
const FULL_CHECK_ELEMENTS: u64 = 1 << 22;
const MIN_SAMPLED_ROWS: u64 = 16;

const U_F32: f64 = 1.0 / (1u64 << 24) as f64;

/// The normalised-error bound for `shape` stored as `dtype` (see the module doc).
pub fn bound(shape: &ElementwiseShape, dtype: DType) -> f64 {
    let c = match shape.kind {
        ElementwiseKind::Add => 4.0 * U_F32,
        ElementwiseKind::SiluMul | ElementwiseKind::Gelu => 64.0 * U_F32,
        ElementwiseKind::RmsNorm | ElementwiseKind::LayerNorm => {
            (8.0 * f64::from(shape.cols).sqrt() + 32.0) * U_F32
        }
        ElementwiseKind::Rope => 16.0 * U_F32 + 2f64.powi(-18),
    };
    c + output_rounding(dtype)
}

/// Reference values and magnitudes of one row: `(ref, mag)` per column.
pub fn reference_row(
    shape: &ElementwiseShape,
    inputs: &ElementwiseInputs,
    row: u32,
) -> Vec<(f64, f64)> {
    let cols = shape.cols as usize;
    let base = row as usize * cols;
    let x = |c: usize| inputs.x.get(base + c);
    let second = |c: usize| inputs.y.as_ref().map_or(0.0, |t| t.get(base + c));
    let weight = |c: usize| inputs.weight.as_ref().map_or(1.0, |t| t.get(c));
    let bias = |c: usize| inputs.bias.as_ref().map_or(0.0, |t| t.get(c));
    match shape.kind {
        ElementwiseKind::Add => (0..cols)
            .map(|c| (x(c) + second(c), x(c).abs() + second(c).abs()))
            .collect(),
        ElementwiseKind::SiluMul => (0..cols)
            .map(|c| {
                let g = x(c);
                let v = g / (1.0 + (-g).exp()) * second(c);
                (v, v.abs())
            })
            .collect(),
        ElementwiseKind::Gelu => (0..cols)
            .map(|c| {
                let v = x(c);
                let z = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v * v * v);
                (0.5 * v * (1.0 + z.tanh()), v.abs())
            })
            .collect(),
        ElementwiseKind::RmsNorm => {
            let ms = (0..cols).map(|c| x(c) * x(c)).sum::<f64>() / cols as f64;
            let r = 1.0 / (ms + f64::from(NORM_EPS)).sqrt();
            (0..cols)
                .map(|c| (x(c) * r * weight(c), x(c).abs() * r * weight(c).abs()))
                .collect()
        }
        ElementwiseKind::LayerNorm => {
            let n = cols as f64;
            let mean = (0..cols).map(x).sum::<f64>() / n;
            let mean_abs = (0..cols).map(|c| x(c).abs()).sum::<f64>() / n;
            let var = (0..cols).map(|c| (x(c) - mean).powi(2)).sum::<f64>() / n;
            let r = 1.0 / (var + f64::from(NORM_EPS)).sqrt();
            (0..cols)
                .map(|c| {
                    let want = (x(c) - mean) * r * weight(c) + bias(c);
                    let mag = (x(c).abs() + mean_abs) * r * weight(c).abs() + bias(c).abs();
                    (want, mag)
                })
                .collect()
        }
        ElementwiseKind::Rope => {
            let d = shape.head_dim as usize;
            let half = d / 2;
            let pos = shape.position(row) as f64;
            let mut out = vec![(0.0, 0.0); cols];
            for head in 0..cols / d {
                for j in 0..half {
                    let (i0, i1) = (head * d + j, head * d + j + half);
                    let theta = pos * rope_frequency(j as u32, shape.head_dim);
                    let (s, c) = theta.sin_cos();
                    let (x0, x1) = (x(i0), x(i1));
                    let mag = x0.abs() + x1.abs();
                    out[i0] = (x0 * c - x1 * s, mag);
                    out[i1] = (x1 * c + x0 * s, mag);
                }
            }
            out
        }
    }
}

/// Rows to compare: all of them for small tensors, else the first and last rows (where
/// tails and grid edges live) plus seeded random rows.
pub fn rows_to_check(shape: &ElementwiseShape, seed: u64) -> Vec<u32> {
    let rows = shape.rows;
    if shape.len() <= FULL_CHECK_ELEMENTS {
        return (0..rows).collect();
    }
    let budget = (FULL_CHECK_ELEMENTS / u64::from(shape.cols).max(1)).max(MIN_SAMPLED_ROWS);
    let mut picks = vec![0, rows - 1];
    let mut rng = Rng::new(seed);
    for _ in 0..budget {
        picks.push(rng.below(u64::from(rows)) as u32);
    }
    picks.sort_unstable();
    picks.dedup();
    picks
}

/// Compare a kernel's output with the f64 reference under [`bound`].
pub fn check(
    shape: &ElementwiseShape,
    dtype: DType,
    inputs: &ElementwiseInputs,
    output: &HostTensor,
    seed: u64,
) -> Verdict {
    let limit = bound(shape, dtype);
    let floor = atol(dtype) / limit;
    if let Err(e) = inputs.matches(shape, dtype) {
        return Verdict::unusable(limit, format!("inputs do not fit the shape: {e}"));
    }
    if output.len() as u64 != shape.len() {
        return Verdict::unusable(
            limit,
            format!(
                "output has {} elements, expected {}",
                output.len(),
                shape.len()
            ),
        );
    }
    let mut verdict = Verdict::new(limit);
    'rows: for row in rows_to_check(shape, seed) {
        let base = row as usize * shape.cols as usize;
        for (col, (want, mag)) in reference_row(shape, inputs, row).into_iter().enumerate() {
            let got = output.get(base + col);
            let err = if got == want {
                0.0
            } else {
                (got - want).abs() / mag.max(floor)
            };
            let at = || format!("{} y[row={row}, col={col}]", shape.kind);
            if !verdict.record(at, got, want, err, "normalised error") {
                break 'rows;
            }
        }
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference rounded to `dtype`: what a perfect kernel writes.
    fn perfect(shape: &ElementwiseShape, inputs: &ElementwiseInputs, dtype: DType) -> HostTensor {
        let mut values = Vec::new();
        for row in 0..shape.rows {
            values.extend(
                reference_row(shape, inputs, row)
                    .into_iter()
                    .map(|(v, _)| v),
            );
        }
        let mut it = values.into_iter();
        HostTensor::generate(dtype, shape.len(), || it.next().unwrap() as f32)
    }

    fn shapes() -> Vec<ElementwiseShape> {
        vec![
            ElementwiseShape::new(ElementwiseKind::Add, 3, 7),
            ElementwiseShape::new(ElementwiseKind::SiluMul, 3, 7),
            ElementwiseShape::new(ElementwiseKind::Gelu, 3, 7),
            ElementwiseShape::new(ElementwiseKind::RmsNorm, 3, 7),
            ElementwiseShape::new(ElementwiseKind::LayerNorm, 3, 7),
            ElementwiseShape::rope(3, 16, 8).at_positions(5000, 2),
        ]
    }

    #[test]
    fn references_match_hand_computed_cases() {
        let t = |v: &[f32]| HostTensor::F32(v.to_vec());
        let row = |shape: &ElementwiseShape, inputs: &ElementwiseInputs| {
            reference_row(shape, inputs, 0)
                .into_iter()
                .map(|(v, _)| v)
                .collect::<Vec<f64>>()
        };
        let plain = |x: &[f32]| ElementwiseInputs {
            x: t(x),
            y: None,
            weight: None,
            bias: None,
        };
        // RMSNorm of [3, 4] with w = [1, 2]: rms = sqrt(12.5 + eps).
        let s = ElementwiseShape::new(ElementwiseKind::RmsNorm, 1, 2);
        let inputs = ElementwiseInputs {
            weight: Some(t(&[1.0, 2.0])),
            ..plain(&[3.0, 4.0])
        };
        let r = (12.5 + 1e-5f64).sqrt();
        let got = row(&s, &inputs);
        assert!((got[0] - 3.0 / r).abs() < 1e-7 && (got[1] - 8.0 / r).abs() < 1e-7);
        // LayerNorm of [1, 3]: mean 2, var 1 -> [-1, 1]/sqrt(1 + eps) * w + b.
        let s = ElementwiseShape::new(ElementwiseKind::LayerNorm, 1, 2);
        let inputs = ElementwiseInputs {
            weight: Some(t(&[2.0, 2.0])),
            bias: Some(t(&[0.5, 0.5])),
            ..plain(&[1.0, 3.0])
        };
        let got = row(&s, &inputs);
        assert!((got[0] - (0.5 - 2.0 / 1.000005f64)).abs() < 1e-6);
        // GELU(1) = 0.841192 (tanh form); silu(1)·2 = 2/(1 + e^-1) = 1.462117.
        let got = row(
            &ElementwiseShape::new(ElementwiseKind::Gelu, 1, 1),
            &plain(&[1.0]),
        );
        assert!((got[0] - 0.841_192).abs() < 1e-6);
        let inputs = ElementwiseInputs {
            y: Some(t(&[2.0])),
            ..plain(&[1.0])
        };
        let got = row(
            &ElementwiseShape::new(ElementwiseKind::SiluMul, 1, 1),
            &inputs,
        );
        assert!((got[0] - 1.462_117).abs() < 1e-6);
        // RoPE at position 1, head_dim 4: pair 0 turns by 1 rad, pair 1 by 0.01 rad; the
        // partner of element 0 is element 2 (half split).
        let s = ElementwiseShape::rope(2, 4, 4).at_positions(0, 2);
        let inputs = plain(
            &[0.0; 4]
                .iter()
                .chain(&[1.0, 0.0, 0.0, 1.0])
                .copied()
                .collect::<Vec<_>>(),
        );
        let got = reference_row(&s, &inputs, 1);
        assert!((got[0].0 - 1f64.cos()).abs() < 1e-12);
        assert!((got[2].0 - 1f64.sin()).abs() < 1e-12);
        assert!((got[1].0 - -(0.01f64.sin())).abs() < 1e-12);
        assert!((got[3].0 - 0.01f64.cos()).abs() < 1e-12);
    }

    #[test]
    fn a_correct_output_passes_and_a_wrong_one_fails() {
        for shape in shapes() {
            for dtype in [DType::F32, DType::F16] {
                let inputs = ElementwiseInputs::random(&shape, dtype, 9);
                let good = perfect(&shape, &inputs, dtype);
                let v = check(&shape, dtype, &inputs, &good, 0);
                assert!(v.passed, "{} {dtype}: {:?}", shape.kind, v.failure);
                assert_eq!(v.checked, shape.len());

                // Off by 1% of the element's magnitude: far above every bound.
                let mut bad = match &good {
                    HostTensor::F32(v) => v.iter().map(|&x| x as f64).collect::<Vec<_>>(),
                    HostTensor::F16(v) => v.iter().map(|x| x.to_f64()).collect(),
                };
                let idx = shape.len() as usize - 2;
                let (_, mag) =
                    reference_row(&shape, &inputs, shape.rows - 1)[shape.cols as usize - 2];
                bad[idx] += 0.01 * mag + 1e-3;
                let mut it = bad.into_iter();
                let bad = HostTensor::generate(dtype, shape.len(), || it.next().unwrap() as f32);
                let v = check(&shape, dtype, &inputs, &bad, 0);
                assert!(!v.passed, "{} {dtype}", shape.kind);
                assert!(v
                    .failure
                    .unwrap()
                    .contains(&format!("row={}", shape.rows - 1)));
            }
        }
    }

    #[test]
    fn the_nan_prefilled_output_fails() {
        for shape in shapes() {
            let inputs = ElementwiseInputs::random(&shape, DType::F32, 1);
            let v = check(
                &shape,
                DType::F32,
                &inputs,
                &HostTensor::nan(DType::F32, shape.len()),
                0,
            );
            assert!(!v.passed);
            assert!(v.failure.unwrap().contains("never wrote"));
        }
        let shape = ElementwiseShape::new(ElementwiseKind::Add, 2, 2);
        let inputs = ElementwiseInputs::random(&shape, DType::F32, 1);
        let short = HostTensor::F32(vec![0.0; 3]);
        assert!(check(&shape, DType::F32, &inputs, &short, 0)
            .failure
            .unwrap()
            .contains("3 elements"));
    }

    #[test]
    fn bounds_follow_op_and_dtype() {
        let add = ElementwiseShape::new(ElementwiseKind::Add, 1, 4096);
        let norm = ElementwiseShape::new(ElementwiseKind::RmsNorm, 1, 4096);
        let rope = ElementwiseShape::rope(1, 4096, 128);
        assert!(bound(&add, DType::F32) < 5e-7);
        assert!(bound(&norm, DType::F32) < 5e-5);
        assert!(bound(&rope, DType::F32) < 1e-5);
        for s in [add, norm, rope] {
            assert!(bound(&s, DType::F16) < 2e-3);
            assert!(bound(&s, DType::F16) > 10.0 * bound(&s, DType::F32));
        }
    }

    #[test]
    fn big_tensors_are_sampled_by_rows_with_their_edges() {
        let shape = ElementwiseShape::new(ElementwiseKind::Add, 100_000, 4096);
        let rows = rows_to_check(&shape, 3);
        assert!(rows.len() < 2000 && rows.len() > 16);
        assert_eq!((rows[0], *rows.last().unwrap()), (0, 99_999));
        let small = ElementwiseShape::new(ElementwiseKind::Add, 10, 10);
        assert_eq!(rows_to_check(&small, 3).len(), 10);
    }

    /// The norms' inputs end in a row small enough that eps matters: RMSNorm without eps,
    /// or with eps outside the square root, fails there in both dtypes.
    #[test]
    fn a_norm_that_misplaces_eps_fails() {
        let shape = ElementwiseShape::new(ElementwiseKind::RmsNorm, 4, 256);
        for dtype in [DType::F32, DType::F16] {
            let inputs = ElementwiseInputs::random(&shape, dtype, 9);
            let output = |denominator: fn(f64) -> f64| {
                let cols = shape.cols as usize;
                let mut out = Vec::new();
                for row in 0..shape.rows as usize {
                    let x = |c: usize| inputs.x.get(row * cols + c);
                    let ms = (0..cols).map(|c| x(c) * x(c)).sum::<f64>() / cols as f64;
                    let w = |c: usize| inputs.weight.as_ref().unwrap().get(c);
                    out.extend((0..cols).map(|c| (x(c) / denominator(ms) * w(c)) as f32));
                }
                HostTensor::generate(dtype, out.len() as u64, {
                    let mut values = out.into_iter();
                    move || values.next().unwrap()
                })
            };
            let right = check(
                &shape,
                dtype,
                &inputs,
                &output(|ms| (ms + f64::from(NORM_EPS)).sqrt()),
                0,
            );
            assert!(right.passed, "{dtype}: {right:?}");
            for wrong in [f64::sqrt as fn(f64) -> f64, |ms: f64| {
                ms.sqrt() + f64::from(NORM_EPS)
            }] {
                let v = check(&shape, dtype, &inputs, &output(wrong), 0);
                assert!(!v.passed && v.failure.unwrap().contains("row"), "{dtype}");
            }
        }
    }

    #[test]
    fn f16_subnormal_flushes_are_allowed() {
        // silu(-8)·0.001 ≈ -2.7e-6: an f16 subnormal a GPU may flush to zero.
        let shape = ElementwiseShape::new(ElementwiseKind::SiluMul, 1, 1);
        let t = |v: f32| HostTensor::generate(DType::F16, 1, || v);
        let inputs = ElementwiseInputs {
            x: t(-8.0),
            y: Some(t(0.001)),
            weight: None,
            bias: None,
        };
        assert!(check(&shape, DType::F16, &inputs, &t(0.0), 0).passed);
    }
}
